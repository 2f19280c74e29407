"""The [acme], [tls] acme and [mtasts] keys: valid values load, invalid ones name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailwright.config import ConfigError, parse_config

BASE: dict[str, Any] = {"server": {"hostname": "mail.example.test"},
                        "tls": {"cert": "c.pem", "key": "k.pem"}}


def load(tmp_path: Path, **tables: dict[str, Any]) -> Any:
    data = {k: dict(v) for k, v in BASE.items()}
    for name, table in tables.items():
        data.setdefault(name, {}).update(table)
    return parse_config(data, tmp_path / "mailwright.toml")


def test_acme_keys_load(tmp_path: Path) -> None:
    config = load(tmp_path, tls={"acme": True},
                  acme={"directory": "https://ca.test/dir", "email": "a@example.test",
                        "ca_file": "ca.pem", "names": ["MTA-STS.example.test."],
                        "challenge": "http-01", "check_interval": "10m"},
                  mtasts={"mode": "enforce", "max_age": "1d"})  # fmt: skip
    assert config.tls.acme and config.acme.names == ("mta-sts.example.test",)
    assert config.acme.ca_file == tmp_path / "ca.pem" and config.acme.check_interval == 600
    assert config.mtasts.mode == "enforce" and config.mtasts.max_age == 86400


@pytest.mark.parametrize(("tables", "key"), [
    ({"tls": {"acme": True}}, "tls.acme"),
    ({"acme": {"directory": "ftp://x"}}, "acme.directory"),
    ({"acme": {"names": ["bad name"]}}, "acme.names"),
    ({"acme": {"challenge": "dns-01"}}, "acme.challenge"),
    ({"acme": {"renew": True}}, "acme.renew"),
    ({"mtasts": {"mode": "strict"}}, "mtasts.mode"),
    ({"mtasts": {"max_age": "400d"}}, "mtasts.max_age"),
])
def test_acme_bad_keys_are_named(tmp_path: Path, tables: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, **tables)
    assert err.value.key == key
