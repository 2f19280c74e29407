"""`mailwright serve` starts everything it is configured with, or refuses to start.

Each case runs the real command line in its own interpreter (`python -m mailwright serve`, or
the same `main()` after making one module unimportable, the way a broken install or a missing
dependency would) and checks the exit status, the one-line error naming what could not start,
and that `ready` is never printed. Before start-up failed fast, a protocol that did not import
was skipped with a warning and the server printed `ready` and ran on without it; these tests
then hit their time bound instead of an exit status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.server import MailwrightServer

# A bound on a hang, far above the second or two a refused start takes.
HANG = 60

BROKEN_IMPORT = textwrap.dedent(
    """
    import sys
    for name in sys.argv[1].split(","):
        sys.modules[name] = None  # `import name` now raises ImportError
    from mailwright.cli.main import main
    sys.exit(main(["serve", "-c", sys.argv[2]]))
    """
)


def serve(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=HANG, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve did not exit: it ran on (stderr: {e.stderr!r})")


def serve_without(modules: str, cfg: Path) -> subprocess.CompletedProcess[str]:
    return serve([sys.executable, "-c", BROKEN_IMPORT, modules, str(cfg)])


def assert_refused(r: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "ready" not in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("mailwright:")]
    assert lines, r.stderr
    for name in names:
        assert name in lines[-1], (name, r.stderr)


@pytest.fixture
def inst(tmp_path: Path) -> MailwrightServer:
    return MailwrightServer(tmp_path / "inst")


def test_serve_with_missing_certificate_names_the_file_and_exits_2(
        inst: MailwrightServer) -> None:
    cert = inst.dir / "tls" / "cert.pem"
    from mailwright.config import load_config

    cert = load_config(inst.cfg).tls.cert or cert
    cert.unlink()
    r = serve([sys.executable, "-m", "mailwright", "serve", "-c", str(inst.cfg)])
    assert_refused(r, 2, str(cert), "tls.cert")


def test_serve_with_unloadable_key_names_the_files_and_exits_2(inst: MailwrightServer) -> None:
    from mailwright.config import load_config

    tls = load_config(inst.cfg).tls
    assert tls.key is not None
    tls.key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    r = serve([sys.executable, "-m", "mailwright", "serve", "-c", str(inst.cfg)])
    assert_refused(r, 2, str(tls.key))


def test_serve_with_certificate_path_that_is_a_directory_exits_2(
        inst: MailwrightServer) -> None:
    # root reads any file whatever its mode, so "unreadable" is made with a directory
    from mailwright.config import load_config

    tls = load_config(inst.cfg).tls
    assert tls.cert is not None
    tls.cert.unlink()
    tls.cert.mkdir()
    r = serve([sys.executable, "-m", "mailwright", "serve", "-c", str(inst.cfg)])
    assert_refused(r, 2, str(tls.cert))


@pytest.mark.parametrize(("module", "listener"), [
    ("mailwright.imapd.listener", "imap"),
    ("mailwright.pop3d.listener", "pop3"),
    ("mailwright.smtpd.listener", "smtp"),
])
def test_listener_whose_protocol_cannot_load_stops_the_start(
        inst: MailwrightServer, module: str, listener: str) -> None:
    r = serve_without(module, inst.cfg)
    assert_refused(r, 1, "listener", listener, module)


@pytest.mark.parametrize("module", [
    "mailwright.dns.resolver", "mailwright.queue.service", "mailwright.spam.service",
    "mailwright.sieve.delivery",
])
def test_feature_that_cannot_load_stops_the_start(inst: MailwrightServer, module: str) -> None:
    # the MX would otherwise stop checking SPF/DKIM/DMARC, or accept mail it cannot relay
    r = serve_without(module, inst.cfg)
    assert_refused(r, 1, module)


def test_store_without_the_mime_parser_stops_the_start(inst: MailwrightServer) -> None:
    # the store would otherwise keep messages without their parse (no structure for IMAP)
    r = serve_without("mailwright.mime", inst.cfg)
    assert_refused(r, 1, "mailwright.mime")


BROKEN_COMMAND = textwrap.dedent(
    """
    import sys
    sys.modules[sys.argv[1]] = None  # `import name` now raises ImportError
    from mailwright.cli.main import main
    sys.exit(main(sys.argv[2:]))
    """
)


def test_operator_command_that_cannot_load_names_its_module(inst: MailwrightServer) -> None:
    # before: "'queue' is not available in this build yet", the import error itself hidden
    module = "mailwright.cli.queue_cmd"
    r = serve([sys.executable, "-c", BROKEN_COMMAND, module, "queue", "list", "-c", str(inst.cfg)])
    assert_refused(r, 1, "'queue'", module, "import of mailwright.cli.queue_cmd halted")
    assert "not available" not in r.stderr
    # the other commands still work
    r = serve([sys.executable, "-c", BROKEN_COMMAND, module, "user", "list", "-c", str(inst.cfg)])
    assert r.returncode == 0, r.stderr


def test_a_good_config_still_starts(inst: MailwrightServer) -> None:
    with inst:
        assert any("ready" in line for line in inst.stderr)
