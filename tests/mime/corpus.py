"""Shared helpers for the corpus comparison tests: locate the corpus, parse Dovecot's FETCH
responses into values, normalise them as tests/corpus/README.md ("Comparing") says."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Value = Any  # None | int | bytes | str (atom) | list[Value]


def corpus_dir() -> Path | None:
    env = os.environ.get("MAILWRIGHT_CORPUS")
    if env:
        p = Path(env)
        return p if (p / "messages").is_dir() else None
    p = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
    return p.resolve() if (p / "messages").is_dir() else None


SKIP_REASON = (
    "MIME corpus not found: expected ../shared/corpus next to the checkout "
    "or MAILWRIGHT_CORPUS=<dir with messages/ and dovecot/>"
)


@dataclass
class Case:
    stem: str
    raw: bytes
    expect: dict[str, Any]


def load_cases(root: Path) -> list[Case]:
    out = []
    for j in sorted((root / "dovecot").glob("*.json")):
        d = json.loads(j.read_text())
        raw = (root / "messages" / d["file"]).read_bytes()
        out.append(Case(j.stem, raw, d))
    return out


class ParseError(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.d = data
        self.i = 0

    def peek(self) -> int:
        return self.d[self.i] if self.i < len(self.d) else -1

    def skip_sp(self) -> None:
        while self.peek() == 0x20:
            self.i += 1

    def value(self) -> Value:
        self.skip_sp()
        c = self.peek()
        if c == 0x28:
            self.i += 1
            items: list[Value] = []
            while True:
                self.skip_sp()
                if self.peek() == 0x29:
                    self.i += 1
                    return items
                if self.peek() < 0:
                    raise ParseError("unterminated list")
                items.append(self.value())
        if c == 0x22:
            self.i += 1
            out = bytearray()
            while True:
                ch = self.d[self.i]
                if ch == 0x5C:
                    out.append(self.d[self.i + 1])
                    self.i += 2
                    continue
                if ch == 0x22:
                    self.i += 1
                    return bytes(out)
                out.append(ch)
                self.i += 1
        if c in (0x7B, 0x7E):
            if c == 0x7E:
                self.i += 1
            end = self.d.index(b"}", self.i)
            n = int(self.d[self.i + 1 : end].rstrip(b"+"))
            start = end + 3
            self.i = start + n
            return self.d[start : start + n]
        start = self.i
        depth = 0
        while self.i < len(self.d):
            ch = self.d[self.i]
            if ch == 0x5B:
                depth += 1
            elif ch == 0x5D:
                depth -= 1
            elif depth == 0 and ch in b" ()\r\n":
                break
            self.i += 1
        atom = self.d[start : self.i].decode("latin-1")
        if atom.upper() == "NIL":
            return None
        if atom.isdigit():
            return int(atom)
        return atom


def parse_fetch(line: bytes) -> dict[str, Value]:
    """`* n FETCH (...)` -> {ITEM-NAME (upper case): value}."""
    if not line.startswith(b"* "):
        raise ParseError("not untagged")
    rest = line[2:]
    sp = rest.index(b" ")
    rest = rest[sp + 1 :]
    if not rest.upper().startswith(b"FETCH ("):
        raise ParseError("not FETCH")
    r = _Reader(rest[6:])
    lst = r.value()
    if not isinstance(lst, list):
        raise ParseError("no list")
    out: dict[str, Value] = {}
    for k in range(0, len(lst) - 1, 2):
        out[str(lst[k]).upper()] = lst[k + 1]
    return out


def _lower(v: Value) -> Value:
    return v.lower() if isinstance(v, bytes | str) else v


def _norm_params(p: Value) -> Value:
    if not isinstance(p, list):
        return p
    return [(_lower(x) if i % 2 == 0 else x) for i, x in enumerate(p)]


def _norm_disp(d: Value) -> Value:
    if not isinstance(d, list) or not d:
        return d
    return [_lower(d[0]), _norm_params(d[1]) if len(d) > 1 else None, *d[2:]]


def norm_body(b: Value) -> Value:
    """Case-fold the fields MIME defines as case-insensitive (tests/corpus/README.md)."""
    if not isinstance(b, list) or not b:
        return b
    if isinstance(b[0], list):
        i = 0
        kids = []
        while i < len(b) and isinstance(b[i], list):
            kids.append(norm_body(b[i]))
            i += 1
        rest = list(b[i:])
        if rest:
            rest[0] = _lower(rest[0])
        if len(rest) > 1:
            rest[1] = _norm_params(rest[1])
        if len(rest) > 2:
            rest[2] = _norm_disp(rest[2])
        return [*kids, *rest]
    out = list(b)
    out[0] = _lower(out[0])
    out[1] = _lower(out[1])
    out[2] = _norm_params(out[2])
    out[5] = _lower(out[5])
    ext_at = 7
    if out[0] == b"text":
        ext_at = 8
    elif out[0] == b"message" and out[1] == b"rfc822" and len(out) > 9 and isinstance(out[8], list):
        out[8] = norm_body(out[8])
        ext_at = 10
    if len(out) > ext_at + 1:
        out[ext_at + 1] = _norm_disp(out[ext_at + 1])
    return out


# -- differences of storage and of Dovecot's own consistency, shared by the comparison tests --


def dovecot_stored(raw: bytes) -> bytes:
    """The bytes Dovecot keeps for an APPENDed message: line ends made CRLF, a CR directly before
    CRLF dropped (``\\r\\r\\n`` becomes ``\\r\\n``) and a lone CR at the very end dropped. Our blob
    writer keeps those CRs as they were sent, so sizes and section bytes of such messages
    differ by exactly these bytes."""
    out = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    while b"\r\r\n" in out:
        out = out.replace(b"\r\r\n", b"\r\n")
    if out.endswith(b"\r") and not out.endswith(b"\r\n"):
        out = out[:-1]
    return out


def stray_cr(raw: bytes) -> bool:
    """Whether Dovecot's stored form differs from ours by the CRs `dovecot_stored` drops."""
    ours = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return dovecot_stored(raw) != ours


def cte_without_type(raw: bytes, part: Any) -> bool:
    """A part with a Content-Transfer-Encoding field but no Content-Type: Dovecot's
    BODYSTRUCTURE says 7bit (the field ignored) while its BINARY decodes the body anyway; ours
    ignores the field for both, so our BINARY is the raw body, consistent with BODYSTRUCTURE."""
    if getattr(part, "mtype", b"x") is not None or getattr(part, "cte", b"x") is not None:
        return False
    header = raw[part.header_start : part.body_start].lower()
    return b"\ncontent-transfer-encoding:" in b"\n" + header


def binary_of_cte_without_type(info: Any, raw: bytes, key: str) -> bool:
    """Whether FETCH item `key` (BINARY[p] / BINARY.SIZE[p]) is of a part `cte_without_type`."""
    from mailwright.mime import imapfmt

    if not key.startswith("BINARY"):
        return False
    sec = key[key.index("[") + 1 : -1]
    try:
        path = [int(x) for x in sec.split(".") if x]
        part = imapfmt.find_part(info, path).part if path else info.root
    except (ValueError, imapfmt.SectionError):
        return False
    return cte_without_type(raw, part)
