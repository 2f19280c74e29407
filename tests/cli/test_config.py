"""Configuration validation: every mistake names the file and the key, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailwright.config import ConfigError, load_config, parse_duration, parse_size

BASE = """
[server]
hostname = "mail.example.test"
data_dir = "data"

[[listener]]
protocol = "smtp"
address = "127.0.0.1"
port = 2525
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mailwright.toml"
    p.write_text(text)
    return p


def test_config_loads_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.server.hostname == "mail.example.test"
    assert cfg.server.data_dir == tmp_path / "data"
    assert cfg.outbound.retry_schedule == (60, 300, 900, 1800, 3600, 7200, 14400)
    assert cfg.outbound.max_age == 5 * 86400
    assert cfg.listeners[0].port == 2525 and not cfg.listeners[0].implicit_tls


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[server]\nbogus = 1\n", "server.bogus"),
        ("[outbound]\nport = \"25\"\n", "outbound.port"),
        ("[outbound]\nport = 70000\n", "outbound.port"),
        ("[outbound]\nmax_age = \"5 weeks\"\n", "outbound.max_age"),
        ("[outbound]\nretry_schedule = [\"1m\", \"soon\"]\n", "outbound.retry_schedule[1]"),
        ("[storage]\nbackend = \"mysql\"\n", "storage.backend"),
        ("[storage]\nbackend = \"postgres\"\n", "storage.dsn"),
        ("[dns]\nnameservers = [\"1.2.3.4:99999\"]\n", "dns.nameservers[0]"),
        ("[tls]\ncert = \"c.pem\"\n", "tls.key"),
        ("[[listener]]\nprotocol = \"gopher\"\n", "listener[1].protocol"),
        ("[[listener]]\nprotocol = \"imap\"\nport = 2525\n", "listener[1].port"),
        ("[[listener]]\nprotocol = \"imap\"\naddress = \"not an address!\"\n", "listener[1].address"),
        ("[mystery]\nx = 1\n", "mystery"),
        ("[passwords]\nhash_memory = \"8K\"\n", "passwords.hash_memory"),
        ("[passwords]\nhash_passes = 0\n", "passwords.hash_passes"),
        ("[web]\nidle_timeout = \"0s\"\n", "web.idle_timeout"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, extra: str, key: str) -> None:
    text = BASE.replace("[server]\n", "[server]\n" + extra.split("\n", 1)[1], 1) if extra.startswith("[server]") else BASE + extra
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert exc.value.key == key
    assert str(tmp_path / "mailwright.toml") in str(exc.value)


def test_config_syntax_error_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TOML syntax"):
        load_config(write(tmp_path, "[server\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_config_durations_and_sizes() -> None:
    assert parse_duration("90s") == 90 and parse_duration("5m") == 300
    assert parse_duration("4h") == 14400 and parse_duration("5d") == 432000
    assert parse_duration(30) == 30
    assert parse_size("50M") == 50 * 1024 * 1024 and parse_size("1GiB") == 1024**3
    for bad in ("5w", "-1s", "", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_config_bad_file_exits_2_without_traceback(tmp_path: Path) -> None:
    cfg = write(tmp_path, BASE + "[outbound]\nport = \"x\"\n")
    r = subprocess.run(
        [sys.executable, "-m", "mailwright", "-c", str(cfg), "check"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2
    assert "outbound.port" in r.stderr and "Traceback" not in r.stderr


def test_config_mailauth_table_is_validated_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, BASE + '[mailauth]\non_dmarc_reject = "explode"\n'))
    assert "mailauth.on_dmarc_reject" in str(exc.value)
