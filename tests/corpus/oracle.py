"""Dovecot as the oracle: the corpus's expected IMAP answers, recorded live by a throwaway Dovecot.

`record(messages)` starts a private Dovecot (tests/support/dovecot.py: its own config, loopback
port and temporary directory, as root with Debian's `dovecot-imapd`), APPENDs every message to
a mailbox of its own and sends this fixed command list:

    FETCH 1 (UID RFC822.SIZE FLAGS INTERNALDATE ENVELOPE BODYSTRUCTURE BODY)
    FETCH 1 (BINARY.SIZE[1])
    FETCH 1 (BODY.PEEK[HEADER]) ... (BODY.PEEK[]), then per leaf and message/rfc822 part p
    FETCH 1 (BODY.PEEK[p] BODY.PEEK[p.MIME]) and FETCH 1 (BINARY.SIZE[p] BINARY.PEEK[p]),
    SEARCH SUBJECT / CHARSET UTF-8 SUBJECT / FROM / BODY / HEADER Message-ID / LARGER,
    FETCH 1 (FLAGS)

and returns, per message, the JSON-shaped record of ../shared/corpus's `dovecot/<stem>.json`
(`commands` with `command`, `response_lines` decoded as Latin-1, `tagged`), so the comparison
tests read the live answers and the recorded ones alike. `own_cases()` does this once per test
process for tests/corpus/messages and fails (never skips) when Dovecot cannot run.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
import socket
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from tests.mime.corpus import Case, Value, parse_fetch
from tests.support.dovecot import private_dovecot

OWN_CORPUS = Path(__file__).resolve().parent / "messages"
APPEND_DATE = "14-Jul-2021 12:34:56 +0200"


def own_messages() -> list[Path]:
    """The in-repository corpus files, in name order (tests/corpus/generate.py writes them)."""
    return sorted(OWN_CORPUS.glob("*.eml"))


class _Connection:
    """A minimal synchronous IMAP client that keeps every response byte (literals included)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.tag = 0
        self.closed = False
        self._line()  # greeting

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _response(self) -> bytes:
        """One complete response: a line and the literals it announces."""
        out = b""
        while True:
            line = self._line()
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}\r\n$", line)
            if not m:
                return out
            out += self._exact(int(m.group(1)))

    def command(self, text: bytes) -> dict[str, Any]:
        """Sends one command (waiting for `+` before each synchronising literal's bytes)."""
        self.tag += 1
        tag = b"A%04d" % self.tag
        record: dict[str, Any] = {"response_lines": [], "tagged": None}
        pieces = re.split(rb"(~?\{\d+\}\r\n)", text)
        try:
            self.sock.sendall(tag + b" " + pieces[0])
            for i in range(1, len(pieces), 2):
                self.sock.sendall(pieces[i])
                while True:
                    resp = self._response()
                    if resp.startswith(b"+"):
                        break
                    if resp.startswith(tag + b" "):
                        record["tagged"] = resp.decode("latin-1")
                        return record
                    record["response_lines"].append(resp.decode("latin-1"))
                self.sock.sendall(pieces[i + 1])
            self.sock.sendall(b"\r\n")
            while True:
                resp = self._response()
                if resp.startswith(tag + b" "):
                    record["tagged"] = resp.decode("latin-1")
                    return record
                record["response_lines"].append(resp.decode("latin-1"))
        except (ConnectionError, OSError):
            record["disconnected"] = True
            self.closed = True
            return record

    def close(self) -> None:
        self.sock.close()


def leaf_parts(bodystructure: Value) -> list[str]:
    """The part numbers of every non-multipart part, a message/rfc822 part followed by the parts
    of the message it encloses (RFC 3501 6.4.5 numbering)."""

    def one(b: Value, number: str) -> list[str]:
        assert isinstance(b, list)
        if b and isinstance(b[0], list):
            return children(b, number)
        out = [number]
        enclosed = b[8] if len(b) > 8 else None
        if (isinstance(b[0], bytes) and isinstance(b[1], bytes) and b[0].lower() == b"message"
                and b[1].lower() == b"rfc822" and isinstance(enclosed, list)):
            if enclosed and isinstance(enclosed[0], list):
                out += children(enclosed, number)
            else:
                out += one(enclosed, number + ".1")
        return out

    def children(b: list[Value], prefix: str) -> list[str]:
        out: list[str] = []
        kids = [c for c in b[: next((i for i, c in enumerate(b) if not isinstance(c, list)),
                                    len(b))]]
        for n, child in enumerate(kids, 1):
            out += one(child, f"{prefix}.{n}" if prefix else str(n))
        return out

    return one(bodystructure, "1") if not (isinstance(bodystructure, list) and bodystructure
                                           and isinstance(bodystructure[0], list)) else children(
        bodystructure, "")


def _decoded(value: str | None) -> tuple[str, bool]:
    """RFC 2047-decoded header text and whether it decoded cleanly."""
    if value is None:
        return "", False
    text = str(value).replace("\r\n", "").replace("\n", "")
    try:
        return str(email.header.make_header(email.header.decode_header(text))), True
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return text, False


def _quoted(word: str) -> bytes | None:
    if not word.isascii() or any(c in word for c in "\r\n\0"):
        return None
    return b'"' + word.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'


def search_commands(raw: bytes, size: int) -> list[bytes]:
    """The SEARCH commands for one message (each only when its word exists)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out: list[bytes] = []
    subject, clean = _decoded(msg["Subject"])
    words = re.findall(r"\w+", subject)
    ascii_word = next((w for w in words if w.isascii() and len(w) >= 3), None)
    if ascii_word:
        out.append(b'SEARCH SUBJECT "%s"' % ascii_word.encode())
    utf8_word = next((w for w in words if not w.isascii()), None)
    if utf8_word and clean:
        data = utf8_word.encode("utf-8")
        out.append(b"SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n%s" % (len(data), data))
    sender, _ = _decoded(msg["From"])
    from_word = next((w for w in re.findall(r"\w+", sender) if w.isascii()), None)
    if from_word:
        out.append(b'SEARCH FROM "%s"' % from_word.encode())
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            m = re.search(r"(?<![A-Za-z])[A-Za-z]{5,}(?![A-Za-z])", payload.decode("latin-1"))
            if m:
                out.append(b'SEARCH BODY "%s"' % m.group(0).encode())
        break
    out.append(b'SEARCH BODY "qzxjvkwq"')
    mid = msg["Message-ID"]
    if mid is not None:
        quoted = _quoted(str(mid).replace("\r\n", "").replace("\n", "").strip())
        if quoted and quoted != b'""':
            out.append(b"SEARCH HEADER Message-ID " + quoted)
    out.append(b"SEARCH LARGER %d" % (size - 1))
    out.append(b"SEARCH LARGER %d" % size)
    return out


def _fetch_value(rec: dict[str, Any], item: str) -> Value:
    for line in rec["response_lines"]:
        if line.startswith("* ") and " FETCH (" in line[:24]:
            return parse_fetch(line.encode("latin-1")).get(item)
    return None


def _record_one(conn: _Connection, port: int, stem: str, raw: bytes) -> tuple[_Connection, dict[str, Any]]:
    mailbox = "rec-" + re.sub(r"[^A-Za-z0-9_-]", "_", stem)
    conn.command(b'DELETE "%s"' % mailbox.encode())
    conn.command(b'CREATE "%s"' % mailbox.encode())
    attempts = []
    ok = False
    for prefix in (b"", b"~"):
        rec = conn.command(b'APPEND "%s" () "%s" %s{%d}\r\n' % (
            mailbox.encode(), APPEND_DATE.encode(), prefix, len(raw)) + raw)
        rec["command"] = f'APPEND "{mailbox}" () "{APPEND_DATE}" {prefix.decode()}{{{len(raw)}}}' \
                         f"\r\n<{len(raw)} bytes: message file>"
        attempts.append(rec)
        if " OK " in (rec["tagged"] or ""):
            ok = True
            break
    expect: dict[str, Any] = {
        "file": f"{stem}.eml", "bytes": len(raw), "mailbox": mailbox,
        "internaldate_appended": APPEND_DATE, "flags_appended": "()",
        "append_result": {"ok": ok, "attempts": attempts}, "commands": [], "parts": [],
        "disconnects": 0,
    }
    if not ok:
        return conn, expect
    select = b'SELECT "%s"' % mailbox.encode()

    def send(cmd: bytes, note: str | None = None) -> dict[str, Any]:
        nonlocal conn
        rec = conn.command(cmd)
        rec["command"] = cmd.decode("latin-1")
        if note:
            rec["note"] = note
        expect["commands"].append(rec)
        if rec.get("disconnected"):
            expect["disconnects"] += 1
            conn.close()
            conn = _login(port)
            again = conn.command(select)
            again["command"] = select.decode()
            again["note"] = "re-SELECT after the server closed the connection"
            expect["commands"].append(again)
        return rec

    send(select)
    first = send(b"FETCH 1 (UID RFC822.SIZE FLAGS INTERNALDATE ENVELOPE BODYSTRUCTURE BODY)")
    bodystructure = _fetch_value(first, "BODYSTRUCTURE")
    size = _fetch_value(first, "RFC822.SIZE")
    for cmd in (b"FETCH 1 (BINARY.SIZE[1])", b"FETCH 1 (BODY.PEEK[HEADER])",
                b"FETCH 1 (BODY.PEEK[TEXT])", b"FETCH 1 (BODY.PEEK[1])",
                b"FETCH 1 (BODY.PEEK[1.MIME])",
                b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])",
                b"FETCH 1 (BODY.PEEK[])"):
        send(cmd)
    parts = leaf_parts(bodystructure) if isinstance(bodystructure, list) else []
    expect["parts"] = parts
    for p in parts:
        send(b"FETCH 1 (BODY.PEEK[%s] BODY.PEEK[%s.MIME])" % (p.encode(), p.encode()))
        send(b"FETCH 1 (BINARY.SIZE[%s] BINARY.PEEK[%s])" % (p.encode(), p.encode()))
    for cmd in search_commands(raw, size if isinstance(size, int) else len(raw)):
        send(cmd)
    send(b"FETCH 1 (FLAGS)")
    conn.command(b"CLOSE")
    return conn, expect


def _login(port: int) -> _Connection:
    conn = _Connection(port)
    rec = conn.command(b"LOGIN tester secret")
    assert " OK " in (rec["tagged"] or ""), rec
    return conn


def record(messages: Iterable[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    """Dovecot's answers for each (stem, bytes), as ../shared/corpus's JSON records."""
    out: dict[str, dict[str, Any]] = {}
    with private_dovecot() as dovecot:
        port = dovecot.port
        conn = _login(port)
        try:
            for stem, raw in messages:
                conn, out[stem] = _record_one(conn, port, stem, raw)
        finally:
            conn.close()
    return out


@cache
def own_cases() -> tuple[Case, ...]:
    """The in-repository corpus with Dovecot's live answers (recorded once per test process)."""
    files = [(p.stem, p.read_bytes()) for p in own_messages()]
    answers = record(files)
    return tuple(Case(stem, raw, answers[stem]) for stem, raw in files)


def own_case(stem: str) -> Case:
    for case in own_cases():
        if case.stem == stem:
            return case
    raise KeyError(stem)
