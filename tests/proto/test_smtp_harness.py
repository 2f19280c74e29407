"""Transcript driver for the SMTP core (style.md): one file per case, S:/C: lines.

File format, one directive per line:
    # comment                      ignored
    !key=value key=value           constructor options for ServerConnection (first lines)
    S: text                        one line the server sends (CRLF added)
    C: text                        one line the client sends (CRLF added)
    R: escaped                     raw client octets, Python escapes, nothing added
    -- tls                         the TLS handshake after STARTTLS completes here
    -- eof                         the client closes its side
    M: text                        a line of an expected message; a run of M lines is one
    MR: escaped                    one whole expected message, raw

The session answering the core is `PolicySession`: a fixed, small policy so transcripts can
show both the accept and the reject path of every event.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailwright.proto.smtp import (
    NEED_DATA,
    PAUSED,
    AuthCredentials,
    BdatChunkEnd,
    DataChunk,
    Hello,
    MailFrom,
    MessageAborted,
    MessageEnd,
    MessageStart,
    RcptTo,
    Reply,
    ServerConnection,
    State,
    TransactionReset,
)

TRANSCRIPT_DIR = Path(__file__).parent / "smtp_transcripts"
HOSTNAME = "mx.example.test"
LOCAL_DOMAIN = "example.test"

Splitter = Callable[[bytes], Iterator[bytes]]


def whole(data: bytes) -> Iterator[bytes]:
    if data:
        yield data


def bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def random_splits(seed: int) -> Splitter:
    def split(data: bytes) -> Iterator[bytes]:
        rng = random.Random(seed * 7919 + len(data))
        i = 0
        while i < len(data):
            n = rng.randint(1, 17)
            yield data[i : i + n]
            i += n

    return split


@dataclass
class Segment:
    client: bytes = b""
    end: str = ""  # "", "tls" or "eof"


@dataclass
class Transcript:
    name: str
    options: dict[str, str] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    server: bytes = b""
    messages: list[bytes] = field(default_factory=list)


def _unescape(text: str) -> bytes:
    return codecs.escape_decode(text.encode("utf-8"))[0]  # type: ignore[no-any-return]


def load(path: Path) -> Transcript:
    t = Transcript(path.stem)
    seg = Segment()
    server = bytearray()
    message: bytearray | None = None
    for raw_line in path.read_text("utf-8").splitlines():
        line = raw_line
        is_message = line.startswith("M:")
        if not is_message and message is not None:
            t.messages.append(bytes(message))
            message = None
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            for word in line[1:].split():
                key, _, value = word.partition("=")
                t.options[key] = value
        elif line.startswith("S:"):
            server += line[3:].encode("utf-8") + b"\r\n"
        elif line.startswith("C:"):
            seg.client += line[3:].encode("utf-8") + b"\r\n"
        elif line.startswith("R:"):
            seg.client += _unescape(line[3:])
        elif line.startswith("-- "):
            seg.end = line[3:].strip()
            t.segments.append(seg)
            seg = Segment()
        elif is_message:
            message = message if message is not None else bytearray()
            message += line[3:].encode("utf-8") + b"\r\n"
        elif line.startswith("MR:"):
            t.messages.append(_unescape(line[4:]))
        else:
            raise ValueError(f"{path.name}: cannot read line {raw_line!r}")
    if message is not None:
        t.messages.append(bytes(message))
    t.segments.append(seg)
    t.server = bytes(server)
    return t


def make_connection(options: dict[str, str]) -> ServerConnection:
    def flag(name: str, default: bool) -> bool:
        return options.get(name, "yes" if default else "no") == "yes"

    size = options.get("max_message_size", "1000000")
    mechs = options.get("auth", "PLAIN,LOGIN")
    return ServerConnection(
        HOSTNAME,
        max_message_size=None if size == "none" else int(size),
        max_recipients=int(options.get("max_recipients", "100")),
        max_line_length=int(options.get("max_line_length", "1000")),
        max_auth_line_length=int(options.get("max_auth_line_length", "12288")),
        max_errors=int(options.get("max_errors", "20")),
        tls_active=flag("tls", False),
        starttls=flag("starttls", True),
        auth_mechanisms=tuple(m for m in mechs.split(",") if m),
        auth_requires_tls=flag("auth_requires_tls", False),
        chunking=flag("chunking", True),
        smtputf8=flag("smtputf8", True),
        dsn=flag("dsn", True),
        helo_required=flag("helo_required", True),
    )


class PolicySession:
    """A tiny fixed policy standing in for smtpd/ in core tests."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.events: list[object] = []
        self.messages: list[bytes] = []
        self._current: bytearray | None = None
        self.queued = 0

    def drain(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return
            assert event is not PAUSED, "the session answers every event at once"
            self.events.append(event)
            self.handle(event)

    def handle(self, event: object) -> None:
        conn = self.conn
        if isinstance(event, Hello):
            if event.name == "reject.example":
                conn.reject(Reply(550, "5.7.1", "Go away"))
            else:
                conn.accept()
        elif isinstance(event, MailFrom):
            if event.path is not None and event.path.domain == "blocked.test":
                conn.reject(Reply(550, "5.7.1", "Sender blocked"))
            else:
                conn.accept()
        elif isinstance(event, RcptTo):
            path = event.path
            if path.domain is None or path.domain == LOCAL_DOMAIN:
                local = path.local_part.lower()
                if local in ("unknown",) or any(c in local for c in "%!@"):
                    conn.reject(Reply(550, "5.1.1", "User unknown"))
                elif local == "full":
                    conn.reject(Reply(452, "4.2.2", "Mailbox full"))
                else:
                    conn.accept()
            else:
                conn.reject(Reply(554, "5.7.1", "Relay access denied"))
        elif isinstance(event, MessageStart):
            self._current = bytearray()
            conn.accept()
        elif isinstance(event, DataChunk):
            assert self._current is not None
            self._current += event.data
        elif isinstance(event, BdatChunkEnd):
            conn.accept()
        elif isinstance(event, MessageEnd):
            assert self._current is not None
            assert event.size == len(self._current)
            self.messages.append(bytes(self._current))
            self._current = None
            self.queued += 1
            conn.accept(Reply(250, "2.0.0", f"Ok: queued as {self.queued}"))
        elif isinstance(event, MessageAborted | TransactionReset):
            self._current = None
        elif isinstance(event, AuthCredentials):
            if event.authcid == "alice" and event.password == "secret":
                conn.accept()
            else:
                conn.reject(Reply(535, "5.7.8", "Error: authentication failed"))


def run(t: Transcript, splitter: Splitter) -> tuple[bytes, PolicySession]:
    conn = make_connection(t.options)
    session = PolicySession(conn)
    greeting = t.options.get("greeting")
    conn.greet(Reply(int(greeting), None, f"{HOSTNAME} go away") if greeting else None)
    out = bytearray(conn.data_to_send())
    for seg in t.segments:
        for piece in splitter(seg.client):
            conn.receive_data(piece)
            session.drain()
            out += conn.data_to_send()
        if seg.end == "tls":
            assert conn.state is State.TLS_PENDING, f"{t.name}: no STARTTLS before -- tls"
            conn.tls_started()
        elif seg.end == "eof":
            conn.receive_data(b"")
        session.drain()
        out += conn.data_to_send()
    return bytes(out), session


def check(t: Transcript, splitter: Splitter) -> None:
    out, session = run(t, splitter)
    assert out.decode("utf-8", "replace").splitlines() == t.server.decode("utf-8").splitlines()
    assert out == t.server
    assert session.messages == t.messages
