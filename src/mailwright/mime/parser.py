"""Byte-offset MIME parser: one pass over the stored message, never raises.

The structure it finds is the one IMAP clients already see from Dovecot for the same bytes
(the corpus in ../shared/corpus is the oracle), because a client that caches BODYSTRUCTURE or
part numbers must not see a different tree when a mailbox moves to us. The rules, with their
RFC references:

* Header fields end at the first empty line (RFC 5322 2.1); a line without ":" is an odd field,
  not the end; a line that starts with white space continues the field before (RFC 5322 2.2.3).
* Content-* fields count only in a MIME entity: a part of a multipart, or an entity with
  MIME-Version or Content-Type (RFC 2045 4; deployed servers accept Content-Type alone).
  The first occurrence of each Content-* field wins.
* Multipart bodies are split on lines starting with "--" + boundary (RFC 2046 5.1.1). A line is
  tested against every enclosing boundary, the longest match winning, so a part that lacks its
  closing delimiter is ended by an outer one. The CRLF before a delimiter belongs to it.
* A delimiter line met while reading a part's header ends that header (broken mail does this).
* message/rfc822 bodies are parsed as messages (RFC 2046 5.2.1); inside multipart/digest the
  default type is message/rfc822 (RFC 2046 5.1.5), elsewhere text/plain (RFC 2045 5.2).
* Nesting deeper than MAX_DEPTH or more than MAX_PARTS parts: the rest is kept as plain body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .address import parse_address_list
from .model import (
    KIND_MESSAGE,
    KIND_MULTIPART,
    KIND_OTHER,
    KIND_TEXT,
    Envelope,
    MessageInfo,
    Part,
)
from .rfc822 import Scanner, parse_params

MAX_DEPTH = 100
MAX_PARTS = 10000
MAX_BOUNDARY = 80


_BARE_LF = re.compile(rb"(?<!\r)\n")


def normalize_crlf(raw: bytes) -> bytes:
    """Canonical stored form: every bare LF becomes CRLF; a lone CR at the very end is dropped.

    RFC 5322 2.3 wants CRLF line ends; what Dovecot serves (and counts in RFC822.SIZE) is the
    same conversion, including dropping a trailing lone CR.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return _BARE_LF.sub(b"\r\n", raw) if b"\n" in raw else raw


@dataclass(slots=True)
class _Boundary:
    text: bytes
    owner: Part


@dataclass(slots=True)
class _Hit:
    """A delimiter line found while reading: which boundary, where its line starts and ends."""

    boundary: _Boundary
    line_start: int
    next_line: int  # offset after the LF, or -1 when the line runs to the end of data
    closing: bool
    cut_header_of: Part | None = None


@dataclass(slots=True)
class _Field:
    name: bytes  # lower-case
    value: bytes  # after the colon and its white space, folding kept


_ENVELOPE_STR = {
    b"date": "date",
    b"subject": "subject",
    b"in-reply-to": "in_reply_to",
    b"message-id": "message_id",
    b"references": "references",
}
_ENVELOPE_ADDR = {
    b"from": "from_",
    b"sender": "sender",
    b"reply-to": "reply_to",
    b"to": "to",
    b"cc": "cc",
    b"bcc": "bcc",
}


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        self.stack: list[_Boundary] = []
        self.parts = 0
        self.problems: list[str] = []

    def note(self, text: str, offset: int) -> None:
        """Record what was wrong (kept with the message, for the delivery log); bounded."""
        if len(self.problems) < 20:
            self.problems.append(f"{text} at offset {offset}")

    # --- delimiter lines -------------------------------------------------------------------

    def find_boundary(self, pos: int) -> _Hit | None:
        raw = self.raw
        if not self.stack or raw[pos : pos + 2] != b"--":
            return None
        eol = raw.find(b"\n", pos)
        line_end = self.n if eol < 0 else eol
        line = raw[pos + 2 : line_end]
        exact = len(line.rstrip(b" \t\r"))
        best: _Boundary | None = None
        for b in reversed(self.stack):  # innermost first (RFC 2046 5.1.2)
            blen = len(b.text)
            if line.startswith(b.text) and (best is None or blen > len(best.text)):
                best = b
                if blen == exact or (blen == exact - 2 and line.endswith(b"--")):
                    break
        if best is None:
            return None
        closing = line[len(best.text) : len(best.text) + 2] == b"--"
        return _Hit(best, pos, -1 if eol < 0 else eol + 1, closing)

    def scan_to_boundary(self, pos: int, first_line: bool) -> tuple[int, _Hit | None]:
        """Find the next delimiter line from pos; returns (content end, hit)."""
        raw = self.raw
        if not self.stack:
            return self.n, None
        if first_line:
            hit = self.find_boundary(pos)
            if hit is not None:
                return pos, hit
        while True:
            i = raw.find(b"\n--", pos)
            if i < 0:
                return self.n, None
            hit = self.find_boundary(i + 1)
            if hit is not None:
                end = i - 1 if i > pos and raw[i - 1] == 0x0D else i
                return end, hit
            pos = i + 1

    # --- headers ---------------------------------------------------------------------------

    def read_header(self, part: Part) -> tuple[list[_Field], bool, _Hit | None]:
        """Read header fields from part.header_start; sets part.body_start.

        Returns (fields, ended_by_blank_line, delimiter hit that cut the header short).
        """
        raw = self.raw
        n = self.n
        pos = part.header_start
        fields: list[_Field] = []
        prev_nl = 0
        cur: list[bytes] | None = None
        cur_name = b""
        while True:
            if pos >= n:
                part.body_start = n
                break
            if self.stack and raw[pos] == 0x2D:
                hit = self.find_boundary(pos)
                if hit is not None:
                    if cur is not None:
                        fields.append(_Field(cur_name, b"".join(cur)))
                    part.body_start = pos - prev_nl
                    return fields, False, hit
            eol = raw.find(b"\n", pos)
            if eol < 0:
                line = raw[pos:]
                nl = 0
                nxt = n
            else:
                if eol > pos and raw[eol - 1] == 0x0D:
                    line = raw[pos : eol - 1]
                    nl = 2
                else:
                    line = raw[pos:eol]
                    nl = 1
                nxt = eol + 1
            if not line and nl:
                # RFC 5322 2.1: the empty line ends the header
                if cur is not None:
                    fields.append(_Field(cur_name, b"".join(cur)))
                part.body_start = nxt
                return fields, True, None
            first = line[:1]
            if first in (b" ", b"\t") and cur is not None:
                cur.append(raw[pos - prev_nl : pos])
                cur.append(line)
            else:
                if cur is not None:
                    fields.append(_Field(cur_name, b"".join(cur)))
                colon = line.find(b":")
                if colon < 0:
                    cur = None
                else:
                    cur_name = line[:colon].rstrip(b" \t").lower()
                    value = line[colon + 1 :]
                    cur = [value]
            prev_nl = nl
            pos = nxt
        if cur is not None:
            fields.append(_Field(cur_name, b"".join(cur)))
        return fields, False, None

    # --- parts ----------------------------------------------------------------------------

    def parse_entity(
        self, part: Part, in_multipart: bool, parent_digest: bool, depth: int
    ) -> _Hit | None:
        """Parse header and body of the entity starting at part.header_start; sets part.end."""
        self.parts += 1
        fields, blank_line, hit = self.read_header(part)
        is_mime = in_multipart
        ctype_field: bytes | None = None
        for f in fields:
            if f.name == b"mime-version" or f.name == b"content-type":
                is_mime = True
            if f.name == b"content-type" and ctype_field is None:
                ctype_field = f.value
        boundary: bytes | None = None
        digest = False
        if is_mime:
            boundary, digest = self.apply_content_fields(part, fields, ctype_field)
        if part.mtype is None:
            part.kind = KIND_MESSAGE if parent_digest else KIND_TEXT
        if part.envelope is not None or depth == 0:
            part.envelope = build_envelope(fields)
        if hit is not None:
            # header cut short by a delimiter: empty body
            hit.cut_header_of = part
            self.note("header cut short by a MIME delimiter", part.header_start)
        elif blank_line and self.stack:
            own = part.kind == KIND_MULTIPART and boundary is not None
            if own:
                assert boundary is not None
                self.stack.append(_Boundary(boundary, part))
            hit = self.find_boundary(part.body_start)
            if own:
                self.stack.pop()
                if hit is not None and hit.boundary.owner is part:
                    hit = None  # our own first delimiter: the normal case
            if hit is not None:
                # A foreign delimiter right after the blank line: Dovecot counts that blank
                # line as the delimiter's line break, not as part of the header.
                body = part.body_start
                nl = 2 if self.raw[body - 2 : body] == b"\r\n" else 1
                part.body_start = max(body - nl, part.header_start)
                hit.cut_header_of = part
        if hit is not None:
            part.end = part.body_start
            part.lines = 0
            if part.kind == KIND_MESSAGE:
                empty = Part(header_start=part.end, body_start=part.end, end=part.end)
                empty.envelope = Envelope()
                part.children.append(empty)
            return hit
        body = part.body_start
        if (
            part.kind == KIND_MULTIPART
            and boundary is not None
            and blank_line
            and depth < MAX_DEPTH
            and self.parts < MAX_PARTS
        ):
            hit = self.parse_multipart_body(part, boundary, digest, depth)
            if not part.children:
                self.note("multipart without any body part", part.header_start)
        elif part.kind == KIND_MESSAGE and depth < MAX_DEPTH and self.parts < MAX_PARTS:
            child = Part(header_start=body)
            child.envelope = Envelope()
            hit = self.parse_entity(child, False, False, depth + 1)
            part.children.append(child)
            part.end = child.end
            if hit is not None and hit.cut_header_of is child:
                # the line break before the delimiter stays with the enclosing part here:
                # Dovecot counts it in the message/rfc822 part's size and lines
                part.end = hit.line_start
        else:
            if part.kind == KIND_MULTIPART:
                self.note("multipart without a usable boundary", part.header_start)
            elif part.kind == KIND_MESSAGE or depth >= MAX_DEPTH:
                self.note("nesting or part limit reached", part.header_start)
            if part.kind == KIND_MESSAGE:
                part.kind = KIND_OTHER
            part.end, hit = self.scan_to_boundary(body, True)
        part.lines = self.raw.count(b"\n", body, part.end)
        if self.raw.find(b"\x00", part.header_start, part.end) >= 0:
            part.has_nuls = True
        return hit

    def parse_multipart_body(
        self, part: Part, boundary: bytes, digest: bool, depth: int
    ) -> _Hit | None:
        me = _Boundary(boundary, part)
        self.stack.append(me)
        pos = part.body_start
        first = True
        while True:
            end, hit = self.scan_to_boundary(pos, first)
            if hit is None or hit.boundary.owner is not part:
                part.end = end
                return hit
            while hit is not None and hit.boundary.owner is part:
                idx = next(i for i, b in enumerate(self.stack) if b is hit.boundary)
                if hit.closing:
                    del self.stack[idx:]
                else:
                    del self.stack[idx + 1 :]
                if hit.next_line < 0:
                    part.end = self.n
                    return None
                if hit.closing or self.parts >= MAX_PARTS:
                    # epilogue: belongs to this multipart up to an outer delimiter
                    pos = hit.next_line
                    first = True
                    hit = None
                    break
                child = Part(header_start=hit.next_line)
                hit = self.parse_entity(child, True, digest, depth + 1)
                part.children.append(child)
                if hit is None or hit.boundary.owner is not part:
                    # end of data, or an outer delimiter ends this multipart too
                    part.end = child.end
                    if hit is not None and hit.cut_header_of is child:
                        # Dovecot gives the line break before the delimiter to the parent
                        # of a part whose header the delimiter cut short
                        part.end = hit.line_start
                    return hit

    def apply_content_fields(
        self, part: Part, fields: list[_Field], ctype_field: bytes | None
    ) -> tuple[bytes | None, bool]:
        boundary: bytes | None = None
        digest = False
        if ctype_field is not None:
            sc = Scanner(ctype_field)
            out = bytearray()
            ret = sc.parse_content_type(out)
            if ret == -2:
                # a bare type with nothing after it ("text"): type kept, subtype empty
                out += b"/"
                ret = 0
            elif ret > 0 and sc.peek() != 0x3B:
                ret = -1  # junk after the subtype: not a media type at all
            if ret < 0:
                self.note("unparseable Content-Type", part.header_start)
                part.mtype = b""
                part.subtype = b""
                part.kind = KIND_OTHER
            else:
                mtype, _, sub = bytes(out).partition(b"/")
                part.mtype = mtype
                part.subtype = sub
                lt = mtype.lower()
                if lt == b"message" and sub.lower() == b"rfc822":
                    part.kind = KIND_MESSAGE
                elif lt == b"text":
                    part.kind = KIND_TEXT
                elif lt == b"multipart":
                    part.kind = KIND_MULTIPART
                    digest = sub.lower() == b"digest"
                else:
                    part.kind = KIND_OTHER
                params = parse_params(sc)
                if params.items:
                    part.params = params.items
                if part.kind == KIND_MULTIPART:
                    for k, v in params.items:
                        if k.lower() == b"boundary":
                            # RFC 2046 5.1.1 caps boundaries at 70 characters; longer ones
                            # are cut (at 80, like Dovecot) so that matching stays bounded
                            boundary = v[:MAX_BOUNDARY]
                            break
        for f in fields:
            name = f.name
            if not name.startswith(b"content-"):
                continue
            rest = name[8:]
            if rest == b"transfer-encoding":
                # an unusable value does not count: a later valid one still applies
                if not part.cte:
                    sc = Scanner(f.value)
                    sc.skip_lwsp()
                    out = bytearray()
                    if sc.parse_mime_token(out) >= 0 and sc.skip_lwsp() == 0 and out:
                        part.cte = bytes(out)
                    elif part.cte is None:
                        part.cte = b""  # present but unusable: BODYSTRUCTURE shows 7bit
                        part.cte_hint = bytes(out)
            elif rest == b"id":
                if part.content_id is None:
                    part.content_id = header_value(f.value)
            elif rest == b"description":
                if part.description is None:
                    part.description = header_value(f.value)
            elif rest == b"md5":
                if part.md5 is None:
                    part.md5 = header_value(f.value)
            elif rest == b"location":
                if part.location is None:
                    part.location = header_value(f.value)
            elif rest == b"language":
                if part.language is None:
                    part.language = parse_language(f.value)
            elif rest == b"disposition" and part.disposition_params is None:
                # a later field replaces one without parameters (Dovecot does so)
                sc = Scanner(f.value)
                sc.skip_lwsp()
                out = bytearray()
                if sc.parse_mime_token(out) >= 0:
                    part.disposition = bytes(out)
                    params = parse_params(sc)
                    if params.items:
                        part.disposition_params = params.items
        return boundary, digest


def header_value(value: bytes) -> bytes:
    """The field value as ENVELOPE/BODYSTRUCTURE show it: white space after the colon skipped
    (all of it, unless the first line is nothing else: then one character), folding line
    breaks removed and the white space after them kept."""
    eol = value.find(b"\n")
    first = value if eol < 0 else value[:eol]
    if first.endswith(b"\r"):
        first = first[:-1]
    i = 0
    n = len(first)
    while i < n and first[i] in b" \t":
        i += 1
    if i == n and n:
        i = 1
    v = value[i:]
    if b"\n" in v or b"\r" in v:
        v = v.replace(b"\r", b"").replace(b"\n", b"")
    return v


def parse_language(value: bytes) -> tuple[bytes, ...] | None:
    # RFC 3282: Content-Language = 1#Language-tag
    sc = Scanner(value)
    sc.skip_lwsp()
    langs: list[bytes] = []
    while True:
        out = bytearray()
        if sc.parse_atom(out) < 0:
            break
        langs.append(bytes(out))
        if sc.at_end() or sc.peek() != 0x2C:
            break
        sc.pos += 1
        sc.skip_lwsp()
    return tuple(langs) if langs else None


def build_envelope(fields: list[_Field]) -> Envelope:
    env = Envelope()
    for f in fields:
        attr = _ENVELOPE_STR.get(f.name)
        if attr is not None:
            # the last one wins, as in Dovecot (clients compare ENVELOPEs)
            setattr(env, attr, header_value(f.value))
            if attr == "date" and env.date_first is None:
                env.date_first = env.date
            elif attr == "subject" and env.subject_first is None:
                env.subject_first = env.subject
            continue
        attr = _ENVELOPE_ADDR.get(f.name)
        if attr is not None:
            addrs = parse_address_list(header_value(f.value))
            old = getattr(env, attr)
            if old is None:
                setattr(env, attr, addrs)
            elif addrs is not None:
                setattr(env, attr, old + addrs)
    return env


def parse_message(raw: bytes) -> MessageInfo:
    """Parse a stored message (canonical CRLF form, see normalize_crlf) once; never raises.

    Offsets in the result index `raw`. Bare LF line ends are tolerated (offsets and sizes then
    describe the bytes as given).
    """
    root = Part(header_start=0)
    root.envelope = Envelope()
    parser = _Parser(raw)
    try:
        parser.parse_entity(root, False, False, 0)
    except Exception as exc:  # never lose a message because of a parser bug
        problems = (f"parser error: {type(exc).__name__}: {exc}",)
        fallback = Part(header_start=0, end=len(raw), kind=KIND_TEXT)
        fallback.envelope = Envelope()
        try:
            fields, _blank, _hit = _Parser(raw).read_header(fallback)
            fallback.envelope = build_envelope(fields)
        except Exception:
            fallback.body_start = 0
        fallback.lines = raw.count(b"\n", fallback.body_start)
        return MessageInfo(size=len(raw), root=fallback, problems=problems)
    return MessageInfo(size=len(raw), root=root, problems=tuple(parser.problems))
