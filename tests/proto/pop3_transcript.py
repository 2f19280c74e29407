"""Reader and driver for POP3 core transcripts (tests/proto/transcripts/pop3/*.txt).

Format, one step per line:

    S: text      a server reply line; consecutive S: lines after +OK form one multi-line reply
    C: text      client bytes, CRLF appended ("C:" alone is an empty line)
    C!escaped    client bytes given with Python escapes, nothing appended
    E: repr      the event the core must produce next (its dataclass repr)
    T: ...       the TLS handshake after STLS has finished
    X: ...       the core must now report the connection closed
    # ...        comment

An S: group right after an E: line (or at the start, the greeting) is a reply the test sends
with ``send()`` and whose bytes must match; an S: line with no E: before it is the -ERR the
core itself must raise as PeerError.
"""

from __future__ import annotations

import base64
import codecs
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwright.proto import pop3

TRANSCRIPT_DIR = Path(__file__).parent / "transcripts" / "pop3"


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # "S", "C", "E", "T", "X"
    text: str
    data: bytes = b""
    lines: tuple[str, ...] = ()


def load(path: Path) -> list[Step]:
    steps: list[Step] = []
    raw_lines = path.read_text(encoding="utf-8").split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    for raw in raw_lines:
        if raw.startswith("#") or not raw:
            continue
        if raw.startswith("C!"):
            data = codecs.escape_decode(raw[2:].encode("utf-8"))[0]
            steps.append(Step("C", raw[2:], data=data))
            continue
        kind, sep, rest = raw.partition(":")
        if not sep or kind not in {"S", "C", "E", "T", "X"}:
            raise ValueError(f"{path.name}: bad line {raw!r}")
        text = rest[1:] if rest.startswith(" ") else rest
        if kind == "C":
            steps.append(Step("C", text, data=text.encode("utf-8") + b"\r\n"))
        else:
            steps.append(Step(kind, text))
    return _group_replies(steps)


def _group_replies(steps: list[Step]) -> list[Step]:
    grouped: list[Step] = []
    i = 0
    while i < len(steps):
        step = steps[i]
        if step.kind != "S":
            grouped.append(step)
            i += 1
            continue
        lines = [step.text]
        i += 1
        if step.text.startswith("+OK"):
            while i < len(steps) and steps[i].kind == "S":
                lines.append(steps[i].text)
                i += 1
        grouped.append(Step("S", step.text, lines=tuple(lines)))
    return grouped


def build_reply(lines: tuple[str, ...]) -> pop3.Reply:
    first = lines[0]
    if first.startswith("+ ") or first == "+":
        return pop3.Continuation(base64.b64decode(first[2:]))
    if first.startswith("-ERR"):
        text = first[5:]
        code = None
        if text.startswith("["):
            code, _, text = text[1:].partition("] ")
        return pop3.Err(text, code)
    text = first[4:]
    if len(lines) == 1:
        return pop3.Ok(text)
    assert lines[-1] == ".", lines
    body = [line[1:] if line.startswith(".") else line for line in lines[1:-1]]
    return pop3.MultiLine(text, data=b"".join(line.encode() + b"\r\n" for line in body))


def expected_bytes(lines: tuple[str, ...]) -> bytes:
    return b"".join(line.encode("utf-8") + b"\r\n" for line in lines)


Splitter = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_splits(seed: int) -> Splitter:
    rng = random.Random(seed)

    def split(data: bytes) -> list[bytes]:
        pieces = []
        i = 0
        while i < len(data):
            n = rng.randint(1, 7)
            pieces.append(data[i : i + n])
            i += n
        return pieces

    return split


class Driver:
    """Runs one transcript against a fresh ServerConnection, feeding bytes lazily."""

    def __init__(self, steps: list[Step], split: Splitter) -> None:
        self.steps = steps
        self.split = split
        self.conn = pop3.ServerConnection()
        self.unfed: list[bytes] = []

    def _pull(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is pop3.NEED_DATA and self.unfed:
                self.conn.receive_data(self.unfed.pop(0))
                continue
            return event

    def _flush(self) -> None:
        # The peer may have pipelined more before we answer; a real adapter may have read it.
        while self.unfed:
            self.conn.receive_data(self.unfed.pop(0))

    def run(self) -> None:
        expect_send = True  # the greeting
        for step in self.steps:
            if step.kind == "C":
                self.unfed.extend(p for p in self.split(step.data) if p)
            elif step.kind == "E":
                event = self._pull()
                assert repr(event) == step.text, (repr(event), step.text)
                expect_send = True
            elif step.kind == "S":
                want = expected_bytes(step.lines)
                if expect_send:
                    self._flush()
                    got = self.conn.send(build_reply(step.lines))
                else:
                    try:
                        event = self._pull()
                    except pop3.PeerError as exc:
                        got = exc.reply.encode()
                        self._flush()
                        self.conn.send(exc.reply)
                    else:
                        raise AssertionError(f"expected {want!r}, got event {event!r}")
                assert got == want, (got, want)
                expect_send = False
            elif step.kind == "T":
                self.conn.tls_started()
                expect_send = False
            elif step.kind == "X":
                assert isinstance(self._pull(), pop3.ConnectionClosed)
        self._flush()
        final = self._pull()
        assert final is pop3.NEED_DATA or isinstance(final, pop3.ConnectionClosed), final
