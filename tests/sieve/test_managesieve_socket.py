"""ManageSieve over real sockets against `mailwright serve`: Debian's sieve-connect as the
client, plus a raw-socket transcript for what sieve-connect does not send (quotas, RENAME,
UNAUTHENTICATE, bans, STARTTLS injection)."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("managesieve"))
    srv.edit_config("[storage]", '[sieve]\nmax_script_size = "4K"\nmax_scripts = 3\n\n[storage]')
    srv.add_user("bob@example.test")
    srv.add_user("carol@example.test")
    srv.start()
    yield srv
    assert srv.stop() == 0


def sieve_connect(server: MailwrightServer, *args: str, user: str = "bob@example.test",
                  password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sieve-connect")
    assert exe, "sieve-connect missing: apt-get install sieve-connect"
    r, w = os.pipe()
    os.write(w, (password + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(
            [exe, "--server", "127.0.0.1", "--port", str(server.port("managesieve")),
             "--user", user, "--passwordfd", str(r), "--notlsverify", "--authmech", "PLAIN",
             "--noclearchan",  # STARTTLS must happen
             *args],
            capture_output=True, text=True, timeout=60, pass_fds=(r,), check=False,
        )
    finally:
        os.close(r)


def test_managesieve_sieve_connect_upload_activate_list_download_delete(
    server: MailwrightServer, tmp_path: Path
) -> None:
    script = tmp_path / "filter.sieve"
    script.write_text('require ["fileinto"];\nif header :contains "subject" "x" { fileinto "X"; }\n')
    res = sieve_connect(server, "--upload", "--localsieve", str(script), "--remotesieve", "main")
    assert res.returncode == 0, res.stderr
    res = sieve_connect(server, "--activate", "--remotesieve", "main")
    assert res.returncode == 0, res.stderr
    res = sieve_connect(server, "--list")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "\"main\" ACTIVE"
    out = tmp_path / "back.sieve"
    res = sieve_connect(server, "--download", "--remotesieve", "main", "--localsieve", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text() == script.read_text()
    assert "main ACTIVE" in server.cli("sieve", "list", "bob@example.test")
    res = sieve_connect(server, "--delete", "--remotesieve", "main")
    assert res.returncode != 0  # the active script cannot be deleted
    res = sieve_connect(server, "--deactivate")
    assert res.returncode == 0, res.stderr
    res = sieve_connect(server, "--delete", "--remotesieve", "main")
    assert res.returncode == 0, res.stderr
    assert "main" not in server.cli("sieve", "list", "bob@example.test")


def test_managesieve_sieve_connect_refuses_invalid_script(
    server: MailwrightServer, tmp_path: Path
) -> None:
    script = tmp_path / "bad.sieve"
    script.write_text('require "fileinto";\n\nfileinto "x"\nkeep;\n')
    res = sieve_connect(server, "--upload", "--localsieve", str(script), "--remotesieve", "bad")
    assert res.returncode != 0
    assert "line 3: missing ';' after fileinto" in res.stdout + res.stderr
    assert "bad" not in server.cli("sieve", "list", "bob@example.test")


def test_managesieve_sieve_connect_wrong_password(server: MailwrightServer) -> None:
    res = sieve_connect(server, "--list", password="wrong")
    assert res.returncode != 0


class Client:
    """A line-level ManageSieve client on a real socket, for transcripts."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def until_status(self) -> list[bytes]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith((b"OK", b"NO", b"BYE")):
                return lines

    def send(self, data: bytes) -> list[bytes]:
        self.sock.sendall(data)
        return self.until_status()

    def starttls(self) -> list[bytes]:
        assert self.send(b"STARTTLS\r\n")[-1].startswith(b"OK")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")
        return self.until_status()

    def login(self, user: str = "bob@example.test", password: str = PASSWORD) -> list[bytes]:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.send(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())

    def close(self) -> None:
        self.file.close()  # the file object holds the socket open too
        self.sock.close()


def _literal(text: str) -> bytes:
    data = text.encode()
    return b"{%d+}\r\n" % len(data) + data


def test_managesieve_transcript_capabilities_and_quota(server: MailwrightServer) -> None:
    c = Client(server.port("managesieve"))
    greeting = c.until_status()
    text = b"".join(greeting)
    assert b'"STARTTLS"' in text and b'"SIEVE" "fileinto' in text and b'"VERSION" "1.0"' in text
    assert b"vacation-seconds" in text and b"editheader" in text
    after_tls = b"".join(c.starttls())  # RFC 5804 2.2: capabilities again
    assert b'"SASL" "PLAIN"' in after_tls and b'"STARTTLS"' not in after_tls
    assert c.send(b'LISTSCRIPTS\r\n')[-1].startswith(b"NO")  # not logged in
    assert c.login()[-1].startswith(b"OK")
    assert c.send(b'HAVESPACE "a" 100\r\n')[-1].startswith(b"OK")
    assert c.send(b'HAVESPACE "a" 999999\r\n')[-1].startswith(b"NO (QUOTA/MAXSIZE)")
    for name in ("q1", "q2", "q3"):
        assert c.send(b'PUTSCRIPT "%s" ' % name.encode() + _literal("keep;") + b"\r\n")[-1] \
            .startswith(b"OK")
    assert c.send(b'PUTSCRIPT "q4" ' + _literal("keep;") + b"\r\n")[-1].startswith(
        b"NO (QUOTA/MAXSCRIPTS)")
    assert c.send(b'PUTSCRIPT "q1" ' + _literal("discard;") + b"\r\n")[-1].startswith(b"OK")
    big = "#" + "x" * 5000 + "\r\nkeep;"
    assert c.send(b'PUTSCRIPT "q1" ' + _literal(big) + b"\r\n")[-1].startswith(
        b"NO (QUOTA/MAXSIZE)")
    assert c.send(b"NOOP\r\n")[-1].startswith(b"OK")  # still in step after the big literal
    assert c.send(b'CHECKSCRIPT "keep"\r\n')[-1].startswith(b'NO "line 1')
    assert c.send(b'CHECKSCRIPT "keep;"\r\n')[-1].startswith(b"OK")
    assert c.send(b'RENAMESCRIPT "q1" "q2"\r\n')[-1].startswith(b"NO (ALREADYEXISTS)")
    assert c.send(b'RENAMESCRIPT "nope" "q9"\r\n')[-1].startswith(b"NO (NONEXISTENT)")
    assert c.send(b'RENAMESCRIPT "q1" "renamed"\r\n')[-1].startswith(b"OK")
    lines = c.send(b'GETSCRIPT "renamed"\r\n')
    assert lines[0] == b"{8}\r\n" and lines[1] == b"discard;\r\n" and lines[-1].startswith(b"OK")
    assert c.send(b'SETACTIVE "renamed"\r\n')[-1].startswith(b"OK")
    assert c.send(b'DELETESCRIPT "renamed"\r\n')[-1].startswith(b"NO (ACTIVE)")
    assert c.send(b'SETACTIVE ""\r\n')[-1].startswith(b"OK")
    listed = b"".join(c.send(b"LISTSCRIPTS\r\n"))
    assert b"ACTIVE" not in listed and b'"renamed"' in listed
    for name in (b"renamed", b"q2", b"q3"):
        assert c.send(b'DELETESCRIPT "%s"\r\n' % name)[-1].startswith(b"OK")
    assert c.send(b'NOOP "tag1"\r\n')[-1].startswith(b'OK (TAG "tag1")')
    assert c.send(b"UNAUTHENTICATE\r\n")[-1].startswith(b"OK")
    assert c.send(b"LISTSCRIPTS\r\n")[-1].startswith(b"NO")
    assert c.send(b"LOGOUT\r\n")[-1].startswith(b"OK")
    c.close()


def test_managesieve_plaintext_login_needs_tls_off_loopback(server: MailwrightServer) -> None:
    # 127.0.0.1 is loopback, where plaintext is allowed as for the other protocols; the
    # SASL exchange without an initial response goes through a challenge
    c = Client(server.port("managesieve"))
    c.until_status()
    c.sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
    assert c.file.readline() == b'""\r\n'
    token = base64.b64encode(f"\0bob@example.test\0{PASSWORD}".encode())
    assert c.send(b'"' + token + b'"\r\n')[-1].startswith(b"OK")
    c.close()


def test_managesieve_starttls_injection_is_dropped(server: MailwrightServer) -> None:
    c = Client(server.port("managesieve"))
    c.until_status()
    # a command smuggled behind STARTTLS in the same packet must not run after the handshake
    c.sock.sendall(b"STARTTLS\r\nLOGOUT\r\n")
    assert c.until_status()[-1].startswith(b"OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.sock = ctx.wrap_socket(c.sock)
    c.file = c.sock.makefile("rb")
    assert b'"SASL" "PLAIN"' in b"".join(c.until_status())
    assert c.send(b"NOOP\r\n")[-1].startswith(b"OK")  # LOGOUT did not run
    c.close()


def test_managesieve_garbage_gets_errors_not_a_crash(server: MailwrightServer) -> None:
    c = Client(server.port("managesieve"))
    c.until_status()
    for junk in (b"\x00\xff\r\n", b'"unterminated\r\n', b"{x}\r\n", b"12 34\r\n", b"FROB\r\n"):
        assert c.send(junk)[-1].startswith(b"NO")
    assert c.send(b"NOOP\r\n")[-1].startswith(b"OK")
    c.close()


def test_managesieve_limits_and_bans_are_shared_with_the_other_protocols(tmp_path: Path) -> None:
    import imaplib

    srv = MailwrightServer(tmp_path / "ban")
    srv.edit_config("[storage]", "[limits]\nauth_failures_before_ban = 2\n"
                    "auth_address_failures_before_ban = 2\n"
                    "max_connections_per_ip = 2\n\n[storage]")
    srv.add_user("bob@example.test")
    with srv:
        # the same connection limits as the other listeners, with a ManageSieve refusal
        first, second = Client(srv.port("managesieve")), Client(srv.port("managesieve"))
        first.until_status()
        second.until_status()
        third = Client(srv.port("managesieve"))
        assert third.until_status() == [b'BYE (TRYLATER) "Too many connections, try again later"\r\n']
        for c in (first, second, third):
            c.close()

        def greeted() -> Client | None:  # once the server has seen the two sessions end
            c = Client(srv.port("managesieve"))
            if c.until_status()[-1].startswith(b"OK"):
                return c
            c.close()
            return None

        c = wait_for("a free connection slot", greeted)
        assert c.login(password="wrong")[-1].startswith(b"NO")
        lines = c.login(password="wrong again")
        assert lines[-1].startswith(b"NO")
        assert c.until_status()[-1].startswith(b"BYE")  # banned: the session ends
        c.close()
        again = Client(srv.port("managesieve"))
        assert again.until_status()[-1].startswith(b"BYE")  # no greeting for a banned address
        again.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with pytest.raises(imaplib.IMAP4.error, match="Too many failed logins"):
            imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx)  # IMAP too
