"""Recursive-descent parser for one complete IMAP command (RFC 9051 9, RFC 3501 9).

The framer in :mod:`mailwright.proto.imap.connection` collects a whole command, literals included,
in wire form (``{n}`` CRLF data) and hands it to :func:`parse_command`; this module never sees
partial input.  Every failure raises :class:`GrammarError` with a message that says what was
wrong and where; the framer turns it into a tagged BAD.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from mailwright.proto.imap import ast

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        (b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV",
         b"DEC")
    )
}
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_LIST_WILDCARDS = frozenset(b"%*")
_MAX_NUMBER = 0xFFFFFFFF  # RFC 9051 9 number: unsigned 32-bit
_MAX_NUMBER64 = 0x7FFFFFFFFFFFFFFF  # RFC 9051 9 number64 (RFC 7162 mod-sequence-value)
MAX_SEARCH_DEPTH = 32
#: Charsets we accept for SEARCH/SORT/THREAD (RFC 9051 6.4.4 requires US-ASCII and UTF-8).
SEARCH_CHARSETS = {"UTF-8": "utf-8", "US-ASCII": "ascii", "UTF8": "utf-8", "ISO-8859-1": "latin-1"}


class GrammarError(Exception):
    """Malformed command; ``status``/``code`` allow NO [BADCHARSET] and friends."""

    def __init__(self, text: str, *, status: str = "BAD", code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.code = code


def _atom_char(c: int) -> bool:
    return 0x20 < c < 0x7F and c not in _ATOM_SPECIALS


def _astring_char(c: int) -> bool:
    return _atom_char(c) or c == 0x5D  # "]" (resp-specials) is allowed in astring


def _tag_char(c: int) -> bool:
    return _astring_char(c) and c != 0x2B  # "+"


class Reader:
    """Cursor over one command's bytes; methods consume grammar productions."""

    __slots__ = ("buf", "pos", "utf8")

    def __init__(self, buf: bytes | bytearray, *, utf8: bool = True) -> None:
        self.buf = buf
        self.pos = 0
        self.utf8 = utf8

    # -- primitives ---------------------------------------------------------------------------

    def fail(self, what: str) -> GrammarError:
        if self.pos >= len(self.buf):
            return GrammarError(f"{what} (at end of command)")
        snippet = self.buf[self.pos : self.pos + 20].decode("ascii", "replace")
        snippet = "".join(ch if ch.isprintable() else "?" for ch in snippet)
        return GrammarError(f"{what} (at {snippet!r})")

    def peek(self) -> int:
        return self.buf[self.pos] if self.pos < len(self.buf) else -1

    def at_end(self) -> bool:
        return self.pos >= len(self.buf)

    def end(self) -> None:
        if not self.at_end():
            raise self.fail("unexpected extra arguments")

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise self.fail("expected a space")
        self.pos += 1
        if self.peek() == 0x20:
            # RFC 9051 9: exactly one SP; many clients are strict, so are we.
            raise self.fail("expected exactly one space")

    def char(self, c: bytes) -> None:
        if self.peek() != c[0]:
            raise self.fail(f"expected {c.decode()!r}")
        self.pos += 1

    def try_char(self, c: bytes) -> bool:
        if self.peek() == c[0]:
            self.pos += 1
            return True
        return False

    def try_word(self, word: bytes) -> bool:
        """Consume *word* case-insensitively if it is followed by a non-atom char."""
        end = self.pos + len(word)
        if self.buf[self.pos : end].upper() == word and (
            end >= len(self.buf) or not _atom_char(self.buf[end])
        ):
            self.pos = end
            return True
        return False

    def atom_bytes(self, *, allow: Callable[[int], bool] = _atom_char, what: str = "atom") -> bytes:
        start = self.pos
        buf = self.buf
        n = len(buf)
        while self.pos < n and allow(buf[self.pos]):
            self.pos += 1
        if self.pos == start:
            raise self.fail(f"expected {what}")
        return bytes(buf[start : self.pos])

    def atom(self, what: str = "atom") -> str:
        return self.atom_bytes(what=what).decode("ascii")

    def upper_atom(self, what: str = "atom") -> str:
        return self.atom(what).upper()

    def number(self, *, nz: bool = False, limit: int = _MAX_NUMBER, what: str = "number") -> int:
        start = self.pos
        while self.pos < len(self.buf) and 0x30 <= self.buf[self.pos] <= 0x39:
            self.pos += 1
        if self.pos == start:
            raise self.fail(f"expected {what}")
        if self.pos - start > 20:
            raise self.fail(f"{what} too large")
        value = int(self.buf[start : self.pos])
        if value > limit:
            self.pos = start
            raise self.fail(f"{what} too large")
        if nz and value == 0:
            self.pos = start
            raise self.fail(f"{what} must not be zero")
        return value

    def number64(self, what: str = "number") -> int:
        return self.number(limit=_MAX_NUMBER64, what=what)

    def quoted_bytes(self) -> bytes:
        self.char(b'"')
        out = bytearray()
        buf = self.buf
        while True:
            if self.pos >= len(buf):
                raise GrammarError("unterminated quoted string")
            c = buf[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5C:
                if self.pos >= len(buf) or buf[self.pos] not in b'"\\':
                    raise self.fail("backslash in quoted string must escape '\"' or '\\'")
                out.append(buf[self.pos])
                self.pos += 1
                continue
            if c in (0x00, 0x0D, 0x0A):
                raise GrammarError("CR, LF or NUL in quoted string")
            if c >= 0x80 and not self.utf8:
                raise GrammarError("8-bit character in quoted string")
            out.append(c)

    def literal_bytes(self, *, allow_binary: bool = False) -> tuple[bytes, bool]:
        binary = False
        if self.peek() == 0x7E:  # "~" literal8 (RFC 3516)
            if not allow_binary:
                raise self.fail("literal8 is not allowed here")
            binary = True
            self.pos += 1
        self.char(b"{")
        size = self.number(what="literal size")
        self.try_char(b"+") or self.try_char(b"-")
        self.char(b"}")
        if self.buf[self.pos : self.pos + 2] != b"\r\n":
            raise self.fail("expected CRLF after literal size")
        self.pos += 2
        data = bytes(self.buf[self.pos : self.pos + size])
        if len(data) != size:
            raise GrammarError("literal shorter than announced")
        self.pos += size
        if not binary and b"\x00" in data:
            # RFC 9051 4.3: NUL is not allowed in a (non-binary) literal.
            raise GrammarError("NUL in literal (use literal8)")
        return data, binary

    def string_bytes(self, what: str = "string") -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted_bytes()
        if c == 0x7B:
            return self.literal_bytes()[0]
        raise self.fail(f"expected {what}")

    def astring_bytes(self, what: str = "astring") -> bytes:
        c = self.peek()
        if c in (0x22, 0x7B):
            return self.string_bytes(what)
        return self.atom_bytes(allow=_astring_char, what=what)

    def decode(self, raw: bytes, what: str, charset: str = "utf-8") -> str:
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            raise GrammarError(f"{what} is not valid {charset.upper()}") from None

    def astring(self, what: str = "astring") -> str:
        return self.decode(self.astring_bytes(what), what)

    def string(self, what: str = "string") -> str:
        return self.decode(self.string_bytes(what), what)

    def nstring(self, what: str = "string") -> str | None:
        if self.try_word(b"NIL"):
            return None
        return self.string(what)

    def mailbox(self) -> str:
        name = self.astring("mailbox name")
        # RFC 9051 5.1: INBOX is case-insensitive.
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        c = self.peek()
        if c in (0x22, 0x7B):
            return self.string("mailbox pattern")
        raw = self.atom_bytes(
            allow=lambda ch: _astring_char(ch) or ch in _LIST_WILDCARDS, what="mailbox pattern"
        )
        return self.decode(raw, "mailbox pattern")

    def flag(self, *, allow_star: bool = False) -> str:
        if self.try_char(b"\\"):
            if allow_star and self.try_char(b"*"):
                return "\\*"
            return "\\" + self.atom("flag name")
        return self.atom("flag keyword")

    def flag_list(self) -> tuple[str, ...]:
        self.char(b"(")
        flags: list[str] = []
        if self.try_char(b")"):
            return ()
        while True:
            flags.append(self.flag())
            if self.try_char(b")"):
                return tuple(flags)
            self.sp()

    # -- sequence sets ------------------------------------------------------------------------

    def seq_number(self) -> ast.SequenceSet:
        """``seq-number = nz-number / "*"`` (RFC 9051 9) as a one-element set."""
        n = self._seq_number()
        return ast.SequenceSet((ast.SeqRange(n, n),))

    def _seq_number(self) -> int | None:
        if self.try_char(b"*"):
            return None
        return self.number(nz=True, what="sequence number")

    def sequence_set(self) -> ast.SequenceSet:
        if self.try_char(b"$"):
            return ast.SequenceSet((), saved=True)
        ranges: list[ast.SeqRange] = []
        while True:
            a = self._seq_number()
            b = a
            if self.try_char(b":"):
                b = self._seq_number()
            ranges.append(ast.SeqRange(a, b))
            if not self.try_char(b","):
                return ast.SequenceSet(tuple(ranges))

    # -- dates --------------------------------------------------------------------------------

    def _date_parts(self) -> date:
        day = self.number(what="day")
        self.char(b"-")
        mon = bytes(self.buf[self.pos : self.pos + 3]).upper()
        if mon not in _MONTHS:
            raise self.fail("expected month name")
        self.pos += 3
        self.char(b"-")
        start = self.pos
        year = self.number(what="year")
        if self.pos - start != 4:
            raise GrammarError("year must have four digits")
        try:
            return date(year, _MONTHS[mon], day)
        except ValueError:
            raise GrammarError("invalid date") from None

    def date(self) -> date:
        """RFC 9051 9 date = date-text / DQUOTE date-text DQUOTE."""
        if self.try_char(b'"'):
            d = self._date_parts()
            self.char(b'"')
            return d
        return self._date_parts()

    def date_time(self) -> datetime:
        """RFC 9051 9 date-time: ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (day may be space-padded)."""
        self.char(b'"')
        if self.peek() == 0x20:
            self.pos += 1
        d = self._date_parts()
        self.char(b" ")
        hh = self._two_digits("hour")
        self.char(b":")
        mm = self._two_digits("minute")
        self.char(b":")
        ss = self._two_digits("second")
        self.char(b" ")
        sign = self.peek()
        if sign not in (0x2B, 0x2D):
            raise self.fail("expected zone sign")
        self.pos += 1
        zone = self.buf[self.pos : self.pos + 4]
        if len(zone) != 4 or not zone.isdigit():
            raise self.fail("expected four-digit zone")
        self.pos += 4
        self.char(b'"')
        offset = timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
        if sign == 0x2D:
            offset = -offset
        try:
            return datetime(d.year, d.month, d.day, hh, mm, ss, tzinfo=timezone(offset))
        except ValueError:
            raise GrammarError("invalid date-time") from None

    def _two_digits(self, what: str) -> int:
        raw = self.buf[self.pos : self.pos + 2]
        if len(raw) != 2 or not raw.isdigit():
            raise self.fail(f"expected two-digit {what}")
        self.pos += 2
        return int(raw)


# ---------------------------------------------------------------------------------------------
# FETCH attributes  (RFC 9051 6.4.5, 9 "fetch-att")
# ---------------------------------------------------------------------------------------------

_SIMPLE_FETCH: dict[str, ast.SimpleFetchName] = {
    "FLAGS": "FLAGS",
    "INTERNALDATE": "INTERNALDATE",
    "RFC822.SIZE": "RFC822.SIZE",
    "RFC822": "RFC822",
    "RFC822.HEADER": "RFC822.HEADER",
    "RFC822.TEXT": "RFC822.TEXT",
    "ENVELOPE": "ENVELOPE",
    "BODY": "BODY",
    "BODYSTRUCTURE": "BODYSTRUCTURE",
    "UID": "UID",
    "MODSEQ": "MODSEQ",
    "PREVIEW": "PREVIEW",
    "EMAILID": "EMAILID",
    "THREADID": "THREADID",
    "SAVEDATE": "SAVEDATE",
}


def _fetch_name(r: Reader) -> str:
    start = r.pos
    while r.pos < len(r.buf) and (_atom_char(r.buf[r.pos]) and r.buf[r.pos] not in b"[<"):
        r.pos += 1
    if r.pos == start:
        raise r.fail("expected fetch attribute")
    return r.buf[start : r.pos].decode("ascii").upper()


def _part_numbers(r: Reader) -> tuple[int, ...]:
    parts: list[int] = []
    while 0x30 <= r.peek() <= 0x39:
        parts.append(r.number(nz=True, what="part number"))
        if not r.try_char(b"."):
            break
        if not (0x30 <= r.peek() <= 0x39):
            r.pos -= 1  # the "." belongs to a section text (e.g. 1.MIME)
            break
    return tuple(parts)


def _section(r: Reader) -> ast.Section:
    r.char(b"[")
    if r.try_char(b"]"):
        return ast.Section()
    part = _part_numbers(r)
    text: ast.SectionText | None = None
    fields: tuple[str, ...] = ()
    if part:
        if r.try_char(b"]"):
            return ast.Section(part)
        r.char(b".")
    word = r.atom_bytes(
        allow=lambda c: (0x41 <= c <= 0x5A) or (0x61 <= c <= 0x7A) or c == 0x2E,
        what="section text",
    ).decode("ascii").upper()
    if word == "HEADER":
        text = "HEADER"
    elif word == "HEADER.FIELDS":
        text = "HEADER.FIELDS"
    elif word == "HEADER.FIELDS.NOT":
        text = "HEADER.FIELDS.NOT"
    elif word == "TEXT":
        text = "TEXT"
    elif word == "MIME" and part:
        text = "MIME"
    else:
        r.pos -= len(word)
        raise r.fail("expected HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME")
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        r.sp()
        r.char(b"(")
        names: list[str] = []
        while True:
            names.append(r.astring("header field name"))
            if r.try_char(b")"):
                break
            r.sp()
        fields = tuple(names)
    r.char(b"]")
    return ast.Section(part, text, fields)


def _binary_section(r: Reader) -> tuple[int, ...]:
    r.char(b"[")
    part = _part_numbers(r)
    r.char(b"]")
    return part


def _partial(r: Reader) -> ast.Partial | None:
    if not r.try_char(b"<"):
        return None
    offset = r.number(what="partial offset")
    r.char(b".")
    count = r.number(nz=True, what="partial length")
    r.char(b">")
    return ast.Partial(offset, count)


def fetch_att(r: Reader) -> ast.FetchItem:
    name = _fetch_name(r)
    if name in ("BODY", "BODY.PEEK") and r.peek() == 0x5B:
        section = _section(r)
        return ast.FetchBody(section, _partial(r), peek=name == "BODY.PEEK")
    if name in ("BINARY", "BINARY.PEEK"):
        part = _binary_section(r)
        return ast.FetchBinary(part, _partial(r), peek=name == "BINARY.PEEK")
    if name == "BINARY.SIZE":
        return ast.FetchBinarySize(_binary_section(r))
    simple = _SIMPLE_FETCH.get(name)
    if simple is None:
        raise GrammarError(f"unknown fetch attribute {name}")
    if simple == "PREVIEW" and bytes(r.buf[r.pos : r.pos + 6]).upper() == b" (LAZY":
        # RFC 8970 3.1: PREVIEW (LAZY): the server may answer NIL when the preview is not at
        # hand; ours always is (it is made from the parsed message), so LAZY changes nothing.
        # Only LAZY is looked for, so "FETCH 1 PREVIEW (CHANGEDSINCE 5)" stays a modifier.
        r.pos += 2
        while True:
            if r.upper_atom("preview modifier") != "LAZY":
                raise GrammarError("unknown PREVIEW modifier")
            if r.try_char(b")"):
                break
            r.sp()
    return ast.FetchAttr(simple)


def fetch_items(r: Reader) -> tuple[ast.FetchItem, ...]:
    if r.try_char(b"("):
        items: list[ast.FetchItem] = []
        if r.try_char(b")"):
            raise GrammarError("empty fetch attribute list")
        while True:
            items.append(fetch_att(r))
            if r.try_char(b")"):
                return tuple(items)
            r.sp()
    for macro, expansion in ast.FETCH_MACROS.items():
        if r.try_word(macro.encode()):
            return expansion
    return (fetch_att(r),)


# ---------------------------------------------------------------------------------------------
# SEARCH keys  (RFC 9051 6.4.4, 9 "search-key")
# ---------------------------------------------------------------------------------------------

_FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = {"FROM": "From", "TO": "To", "CC": "Cc", "BCC": "Bcc", "SUBJECT": "Subject"}
_DATE_KEYS: dict[str, tuple[str, str]] = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
    "SAVEDBEFORE": ("saved", "before"),  # RFC 8514 4.2
    "SAVEDON": ("saved", "on"),
    "SAVEDSINCE": ("saved", "since"),
}


class SearchParser:
    """Parses search keys; strings are decoded with the command's CHARSET."""

    def __init__(self, r: Reader, charset: str = "utf-8") -> None:
        self.r = r
        self.charset = charset

    def text(self, what: str) -> str:
        return self.r.decode(self.r.astring_bytes(what), what, self.charset)

    def keys(self) -> ast.SearchKey:
        """One or more keys separated by SP, up to the end of the command."""
        keys = [self.key(0)]
        while not self.r.at_end():
            self.r.sp()
            keys.append(self.key(0))
        return keys[0] if len(keys) == 1 else ast.SearchAnd(tuple(keys))

    def key(self, depth: int) -> ast.SearchKey:
        r = self.r
        if depth > MAX_SEARCH_DEPTH:
            raise GrammarError("search keys nested too deeply")
        c = r.peek()
        if c == 0x28:  # "("
            r.pos += 1
            keys = [self.key(depth + 1)]
            while not r.try_char(b")"):
                r.sp()
                keys.append(self.key(depth + 1))
            return keys[0] if len(keys) == 1 else ast.SearchAnd(tuple(keys))
        if c == 0x24 or c == 0x2A or 0x30 <= c <= 0x39:  # "$", "*", digit
            seq = r.sequence_set()
            return ast.SearchSaved() if seq.saved else ast.SearchSequence(seq)
        name = r.upper_atom("search key")
        if name in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[name]
            return ast.SearchFlag(flag, present)
        if name == "ALL":
            return ast.SearchAll()
        if name == "SAVEDATESUPPORTED":  # RFC 8514 4.2
            return ast.SearchSaveDateSupported()
        if name == "NEW":
            return ast.SearchAnd(
                (ast.SearchFlag("\\Recent", True), ast.SearchFlag("\\Seen", False))
            )
        if name == "OLD":
            return ast.SearchNot(ast.SearchFlag("\\Recent", True))
        if name in ("KEYWORD", "UNKEYWORD"):
            r.sp()
            return ast.SearchFlag(r.atom("keyword"), name == "KEYWORD")
        if name in _HEADER_KEYS:
            r.sp()
            return ast.SearchHeader(_HEADER_KEYS[name], self.text("search string"))
        if name == "HEADER":
            r.sp()
            field = r.astring("header field name")
            r.sp()
            return ast.SearchHeader(field, self.text("search string"))
        if name in ("BODY", "TEXT"):
            r.sp()
            return ast.SearchText("body" if name == "BODY" else "text", self.text("search string"))
        if name in _DATE_KEYS:
            r.sp()
            fld, op = _DATE_KEYS[name]
            return ast.SearchDate(fld, op, r.date())  # type: ignore[arg-type]
        if name in ("LARGER", "SMALLER"):
            r.sp()
            return ast.SearchSize(
                "larger" if name == "LARGER" else "smaller", r.number64("size")
            )
        if name in ("EMAILID", "THREADID"):
            # RFC 8474 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
            r.sp()
            oid = r.atom("object id")
            if len(oid) > 255 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in oid):
                raise GrammarError("invalid object id")
            return ast.SearchObjectId(name, oid)  # type: ignore[arg-type]
        if name in ("OLDER", "YOUNGER"):
            r.sp()
            return ast.SearchWithin(
                "older" if name == "OLDER" else "younger", r.number(nz=True, what="interval")
            )
        if name == "UID":
            r.sp()
            seq = r.sequence_set()
            return ast.SearchUid(seq)
        if name == "NOT":
            r.sp()
            return ast.SearchNot(self.key(depth + 1))
        if name == "OR":
            r.sp()
            left = self.key(depth + 1)
            r.sp()
            return ast.SearchOr(left, self.key(depth + 1))
        if name == "MODSEQ":
            r.sp()
            entry: str | None = None
            entry_type: str | None = None
            if r.peek() == 0x22:  # RFC 7162 3.1.5 search-modsequence with entry
                entry = r.string("entry name")
                r.sp()
                entry_type = r.upper_atom("entry type")
                if entry_type not in ("PRIV", "SHARED", "ALL"):
                    raise GrammarError("entry type must be priv, shared or all")
                entry_type = entry_type.lower()
                r.sp()
            return ast.SearchModSeq(r.number64("mod-sequence"), entry, entry_type)
        raise GrammarError(f"unknown search key {name}")


def search_charset(r: Reader) -> tuple[str | None, str]:
    """``CHARSET x`` if present: (name as sent, python codec)."""
    if not r.try_word(b"CHARSET"):
        return None, "utf-8"
    r.sp()
    name = r.astring("charset")
    codec = SEARCH_CHARSETS.get(name.upper())
    if codec is None:
        # RFC 9051 6.4.4: NO with BADCHARSET listing what we support.
        raise GrammarError(
            f"unsupported charset {name}", status="NO", code="BADCHARSET (UTF-8 US-ASCII)"
        )
    return name, codec


_RETURN_OPTS: dict[str, ast.SearchReturnOption] = {
    "MIN": "MIN", "MAX": "MAX", "ALL": "ALL", "COUNT": "COUNT", "SAVE": "SAVE",
    "PARTIAL": "PARTIAL", "CONTEXT": "CONTEXT", "UPDATE": "UPDATE",
}


def partial_range(r: Reader) -> ast.PartialRange:
    """RFC 9394 3: ``partial-range-first = nz-number ":" nz-number`` or
    ``partial-range-last = "-" nz-number ":" "-" nz-number``."""
    negative = r.try_char(b"-")
    first = r.number(nz=True, what="partial range")
    r.char(b":")
    if negative:
        r.char(b"-")
    elif r.peek() == 0x2D:
        raise r.fail("both ends of a partial range have the same sign")
    last = r.number(nz=True, what="partial range")
    if first > last:
        first, last = last, first
    return ast.PartialRange(-first, -last) if negative else ast.PartialRange(first, last)


def search_return(
    r: Reader,
) -> tuple[tuple[ast.SearchReturnOption, ...] | None, ast.PartialRange | None]:
    """``RETURN (options)`` if present, with the PARTIAL range (RFC 9394) when asked for."""
    if not r.try_word(b"RETURN"):
        return None, None
    r.sp()
    r.char(b"(")
    opts: list[ast.SearchReturnOption] = []
    partial: ast.PartialRange | None = None
    if r.try_char(b")"):
        return (), None
    while True:
        name = r.upper_atom("return option")
        opt = _RETURN_OPTS.get(name)
        if opt is None:
            raise GrammarError(f"unknown search return option {name}")
        if opt in opts:
            raise GrammarError(f"search return option {name} given twice")
        opts.append(opt)
        if opt == "PARTIAL":
            r.sp()
            partial = partial_range(r)
        if r.try_char(b")"):
            break
        r.sp()
    if partial is not None and "ALL" in opts:
        # RFC 9394 3: PARTIAL and ALL are mutually exclusive
        raise GrammarError("PARTIAL and ALL cannot be combined")
    return tuple(opts), partial


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

CommandParser = Callable[[Reader, str, bool], ast.Command]


def _no_args(cls: type) -> CommandParser:
    def parse(r: Reader, tag: str, uid: bool) -> ast.Command:
        r.end()
        return cls(tag)  # type: ignore[no-any-return]

    return parse


def _authenticate(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    mech = r.upper_atom("SASL mechanism")
    initial: bytes | None = None
    if not r.at_end():
        r.sp()
        if r.try_char(b"="):
            initial = b""  # RFC 4959: "=" is an empty initial response
        else:
            raw = r.atom_bytes(
                allow=lambda c: (0x30 <= c <= 0x39) or (0x41 <= c <= 0x5A) or (0x61 <= c <= 0x7A)
                or c in b"+/=",
                what="base64 initial response",
            )
            try:
                initial = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise GrammarError("invalid base64 in initial response") from None
    r.end()
    return ast.Authenticate(tag, mech, initial)


def _login(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    user = r.astring("user name")
    r.sp()
    password = r.astring("password")
    r.end()
    return ast.Login(tag, user, password)


def _enable(r: Reader, tag: str, uid: bool) -> ast.Command:
    caps: list[str] = []
    while not r.at_end():
        r.sp()
        caps.append(r.upper_atom("capability"))
    if not caps:
        raise GrammarError("ENABLE needs at least one capability")
    return ast.Enable(tag, tuple(caps))


def _select(readonly: bool) -> CommandParser:
    def parse(r: Reader, tag: str, uid: bool) -> ast.Command:
        r.sp()
        mailbox = r.mailbox()
        condstore = False
        qresync: ast.QResyncParams | None = None
        if not r.at_end():
            r.sp()
            r.char(b"(")
            while True:
                name = r.upper_atom("select parameter")
                if name == "CONDSTORE":
                    condstore = True
                elif name == "QRESYNC":
                    r.sp()
                    qresync = _qresync_params(r)
                else:
                    raise GrammarError(f"unknown select parameter {name}")
                if r.try_char(b")"):
                    break
                r.sp()
        r.end()
        return ast.Select(tag, mailbox, readonly, condstore, qresync)

    return parse


def _qresync_params(r: Reader) -> ast.QResyncParams:
    # RFC 7162 3.2.5: "(" uidvalidity SP mod-sequence-value [SP known-uids]
    #                 [SP seq-match-data] ")"
    r.char(b"(")
    uidvalidity = r.number(nz=True, what="UIDVALIDITY")
    r.sp()
    modseq = r.number64("mod-sequence")
    known: ast.SequenceSet | None = None
    match: tuple[ast.SequenceSet, ast.SequenceSet] | None = None
    if r.try_char(b" "):
        if r.peek() != 0x28:
            known = r.sequence_set()
            if r.try_char(b" "):
                match = _seq_match(r)
        else:
            match = _seq_match(r)
    r.char(b")")
    return ast.QResyncParams(uidvalidity, modseq, known, match)


def _seq_match(r: Reader) -> tuple[ast.SequenceSet, ast.SequenceSet]:
    r.char(b"(")
    seqs = r.sequence_set()
    r.sp()
    uids = r.sequence_set()
    r.char(b")")
    return seqs, uids


def _create(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    mailbox = r.mailbox()
    uses: tuple[str, ...] = ()
    if not r.at_end():
        # RFC 6154 3: CREATE name (USE (\Drafts))
        r.sp()
        r.char(b"(")
        word = r.upper_atom("create parameter")
        if word != "USE":
            raise GrammarError(f"unknown create parameter {word}")
        r.sp()
        uses = r.flag_list()
        r.char(b")")
    r.end()
    return ast.Create(tag, mailbox, uses)


def _one_mailbox(cls: type) -> CommandParser:
    def parse(r: Reader, tag: str, uid: bool) -> ast.Command:
        r.sp()
        mailbox = r.mailbox()
        r.end()
        return cls(tag, mailbox)  # type: ignore[no-any-return]

    return parse


def _rename(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    old = r.mailbox()
    r.sp()
    new = r.mailbox()
    r.end()
    return ast.Rename(tag, old, new)


_STATUS_ITEMS: dict[str, ast.StatusItem] = {
    "MESSAGES": "MESSAGES",
    "UIDNEXT": "UIDNEXT",
    "UIDVALIDITY": "UIDVALIDITY",
    "UNSEEN": "UNSEEN",
    "DELETED": "DELETED",
    "SIZE": "SIZE",
    "RECENT": "RECENT",
    "HIGHESTMODSEQ": "HIGHESTMODSEQ",
    "MAILBOXID": "MAILBOXID",
}


def _status_items(r: Reader) -> tuple[ast.StatusItem, ...]:
    r.char(b"(")
    items: list[ast.StatusItem] = []
    while True:
        name = r.upper_atom("status item")
        item = _STATUS_ITEMS.get(name)
        if item is None:
            raise GrammarError(f"unknown status item {name}")
        items.append(item)
        if r.try_char(b")"):
            return tuple(items)
        r.sp()


def _status(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    items = _status_items(r)
    r.end()
    return ast.Status(tag, mailbox, items)


def _list(r: Reader, tag: str, uid: bool) -> ast.Command:
    # RFC 5258 3: LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    r.sp()
    selection: list[str] = []
    returns: list[str] = []
    status_items: tuple[ast.StatusItem, ...] = ()
    metadata: tuple[str, ...] = ()
    extended = False
    if r.peek() == 0x28:
        extended = True
        r.pos += 1
        if not r.try_char(b")"):
            while True:
                opt = r.upper_atom("selection option")
                if opt not in ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"):
                    raise GrammarError(f"unknown LIST selection option {opt}")
                selection.append(opt)
                if r.try_char(b")"):
                    break
                r.sp()
        if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
            # RFC 5258 3: RECURSIVEMATCH alone (or only with REMOTE) MUST be answered BAD.
            raise GrammarError("RECURSIVEMATCH needs another selection option")
        r.sp()
    reference = r.astring("reference name")
    r.sp()
    patterns: list[str] = []
    if r.peek() == 0x28:
        extended = True
        r.pos += 1
        while True:
            patterns.append(r.list_mailbox())
            if r.try_char(b")"):
                break
            r.sp()
    else:
        patterns.append(r.list_mailbox())
    if not r.at_end():
        r.sp()
        if not r.try_word(b"RETURN"):
            raise r.fail("expected RETURN")
        extended = True
        r.sp()
        r.char(b"(")
        if not r.try_char(b")"):
            while True:
                opt = r.upper_atom("return option")
                if opt == "STATUS":
                    r.sp()
                    status_items = _status_items(r)
                elif opt == "METADATA" and not metadata:
                    # RFC 9590 2: METADATA (entry ...), optionally after (MAXSIZE n)
                    r.sp()
                    metadata = _entry_list(r)
                elif opt not in ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "MYRIGHTS"):
                    raise GrammarError(f"unknown LIST return option {opt}")
                returns.append(opt)
                if r.try_char(b")"):
                    break
                r.sp()
    r.end()
    return ast.ListCmd(
        tag,
        reference,
        tuple(patterns),
        tuple(selection),
        tuple(returns),
        status_items,
        lsub=False,
        extended=extended,
        metadata=metadata,
    )


#: RFC 5464 3.2: at most this many octets in an entry name (ours; the RFC sets none)
MAX_ENTRY_NAME = 1024


def metadata_entry(r: Reader) -> str:
    """One entry name (RFC 5464 5: ``entry = astring``): a slash-separated path under
    /private or /shared, without "*" or "%", empty components or a trailing "/", in printable
    ASCII; lower-cased, since entry names are case-insensitive (3.2)."""
    raw = r.astring("entry name")
    entry = raw.lower()
    parts = entry.split("/")
    if (
        len(entry) > MAX_ENTRY_NAME
        or len(parts) < 3
        or parts[0] != ""
        or parts[1] not in ("private", "shared")
        or any(p == "" for p in parts[2:])
        or any(not (0x20 < ord(ch) < 0x7F) or ch in "*%" for ch in entry)
    ):
        raise GrammarError(f"invalid entry name {raw[:64]}")
    return entry


def _entry_list(r: Reader) -> tuple[str, ...]:
    """``entries = entry / "(" entry *(SP entry) ")"`` (RFC 5464 5), with an optional leading
    ``(MAXSIZE n)`` of RFC 9590 skipped."""
    if r.try_char(b"("):
        if r.try_word(b"MAXSIZE"):
            r.sp()
            r.number(what="maximum size")
            r.char(b")")
            r.sp()
            r.char(b"(")
        entries = [metadata_entry(r)]
        while not r.try_char(b")"):
            r.sp()
            entries.append(metadata_entry(r))
            if len(entries) > 100:
                raise GrammarError("too many entry names", status="NO", code="LIMIT")
        return tuple(dict.fromkeys(entries))
    return (metadata_entry(r),)


def _getmetadata(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 5464 4.2: ``GETMETADATA [SP getmetadata-options] SP mailbox SP entries``."""
    r.sp()
    maxsize: int | None = None
    depth: ast.MetadataDepth = "0"
    if r.try_char(b"("):
        while True:
            opt = r.upper_atom("metadata option")
            r.sp()
            if opt == "MAXSIZE":
                maxsize = r.number(what="maximum size")
            elif opt == "DEPTH":
                word = r.atom("depth").lower()
                if word not in ("0", "1", "infinity"):
                    raise GrammarError("DEPTH must be 0, 1 or infinity")
                depth = word  # type: ignore[assignment]
            else:
                raise GrammarError(f"unknown GETMETADATA option {opt}")
            if r.try_char(b")"):
                break
            r.sp()
        r.sp()
    mailbox = r.mailbox()
    r.sp()
    entries = _entry_list(r)
    r.end()
    return ast.GetMetadata(tag, mailbox, entries, maxsize, depth)


def _setmetadata(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 5464 4.3: ``SETMETADATA SP mailbox SP "(" entry-value *(SP entry-value) ")"``,
    ``entry-value = entry SP value``, ``value = nstring / literal8``."""
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    r.char(b"(")
    changes: dict[str, bytes | None] = {}
    while True:
        entry = metadata_entry(r)
        r.sp()
        value: bytes | None
        if r.peek() == 0x7E:
            value = r.literal_bytes(allow_binary=True)[0]
        elif r.try_word(b"NIL"):
            value = None
        else:
            value = r.string_bytes("entry value")
        changes[entry] = value  # a later value for the same entry wins
        if len(changes) > 100:
            raise GrammarError("too many entries in one SETMETADATA", status="NO", code="LIMIT")
        if r.try_char(b")"):
            break
        r.sp()
    r.end()
    return ast.SetMetadata(tag, mailbox, tuple(changes.items()))


def _cancelupdate(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 5267 4.2: ``CANCELUPDATE SP tag-string *(SP tag-string)``."""
    tags: list[str] = []
    while True:
        r.sp()
        tags.append(r.string("search tag"))
        if r.at_end():
            break
        if len(tags) >= 100:
            raise GrammarError("too many tags", status="NO", code="LIMIT")
    return ast.CancelUpdate(tag, tuple(tags))


def _lsub(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    reference = r.astring("reference name")
    r.sp()
    pattern = r.list_mailbox()
    r.end()
    return ast.ListCmd(tag, reference, (pattern,), lsub=True)


def _append_opts(r: Reader) -> tuple[tuple[str, ...], datetime | None]:
    """``[flag-list SP] [date-time SP]``: what precedes an append-message's data (RFC 9051
    6.3.12, shared by APPEND, MULTIAPPEND (RFC 3502), CATENATE (RFC 4469) and REPLACE)."""
    flags: tuple[str, ...] = ()
    when: datetime | None = None
    if r.peek() == 0x28:
        flags = r.flag_list()
        r.sp()
    if r.peek() == 0x22:
        when = r.date_time()
        r.sp()
    return flags, when


def _append_message(r: Reader, *, utf8_data: bool) -> ast.AppendMessage:
    """``SP append-message`` with its data in the buffer: ``[flag-list SP] [date-time SP]``
    then a literal or literal8 (RFC 9051 6.3.12, RFC 3516 4.4), or with *utf8_data* also
    ``"UTF8" SP "(" literal8 ")"`` (RFC 6855 4). Shared by APPEND and REPLACE (RFC 8508 6)."""
    r.sp()
    flags, when = _append_opts(r)
    if utf8_data and r.try_word(b"UTF8"):
        r.sp()
        r.char(b"(")
        data, _ = r.literal_bytes(allow_binary=True)
        r.char(b")")
        return ast.AppendMessage(flags, when, data, True)
    if r.peek() not in (0x7B, 0x7E):
        raise r.fail("expected message literal")
    data, binary = r.literal_bytes(allow_binary=True)
    return ast.AppendMessage(flags, when, data, binary)


def _append(r: Reader, tag: str, uid: bool) -> ast.Command:
    """A whole APPEND in one buffer (the connection streams those of authenticated sessions,
    CATENATE included; this parse serves the rest, which are refused by state anyway)."""
    r.sp()
    mailbox = r.mailbox()
    messages: list[ast.AppendMessage] = []
    while not r.at_end():
        # RFC 3502 MULTIAPPEND: append-message *(SP append-message)
        messages.append(_append_message(r, utf8_data=True))
    if not messages:
        raise GrammarError("APPEND needs a message literal")
    return ast.Append(tag, mailbox, tuple(messages))


def _replace(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 8508 6: ``REPLACE SP seq-number SP mailbox append-message`` (one plain message,
    as the streamed REPLACE takes: parse_replace_head)."""
    r.sp()
    seq = r.seq_number()
    r.sp()
    mailbox = r.mailbox()
    message = _append_message(r, utf8_data=False)
    r.end()
    return ast.Replace(tag, seq, mailbox, message, uid)


@dataclass(frozen=True, slots=True)
class AppendMessageHead:
    """What precedes one APPEND message literal, and the literal's header (RFC 9051 6.3.12,
    RFC 3502 MULTIAPPEND, RFC 3516 literal8, RFC 6855 UTF8 data); or, with ``catenate``, the
    start of a ``CATENATE (`` part list (RFC 4469 5), which has no literal of its own."""

    flags: tuple[str, ...]
    internaldate: datetime | None
    size: int
    synchronizing: bool
    binary: bool
    utf8: bool  # "UTF8 (" ... ")": a ")" must follow the literal
    catenate: bool = False


@dataclass(frozen=True, slots=True)
class CatenateUrl:
    """``URL astring`` (RFC 4469 5): a part taken from a message already on the server."""

    url: str


@dataclass(frozen=True, slots=True)
class CatenateUrlLiteral:
    """``URL {n}``: the URL itself is sent as a literal (astring, RFC 4469 5)."""

    size: int
    synchronizing: bool


@dataclass(frozen=True, slots=True)
class CatenateText:
    """``TEXT literal`` (RFC 4469 5; literal8 with BINARY): new data, announced at the end of
    the line; the data follows."""

    size: int
    synchronizing: bool
    binary: bool


@dataclass(frozen=True, slots=True)
class CatenateEnd:
    """The ``)`` that ends a CATENATE part list: the message is complete."""


AppendItem = AppendMessageHead | CatenateUrl | CatenateUrlLiteral | CatenateText | CatenateEnd

#: Where an APPEND's parse stands between two segments (a segment ends at a literal):
#: "first" right after the mailbox, "message" after an append-message, "catpart" inside a
#: CATENATE list after a part, "catopen" right after ``CATENATE (``; "end" at the command's end.
AppendState = str

_LITERAL_HEADER = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")


def _literal_header(r: Reader) -> re.Match[bytes] | None:
    """The literal header ``{n}``/``{n+}``/``~{n}`` when it is all that is left of *r*."""
    return _LITERAL_HEADER.match(bytes(r.buf[r.pos :]))


def _message_head(r: Reader) -> AppendMessageHead:
    """``SP [flag-list SP] [date-time SP] (literal-header / "UTF8" SP "(" literal8-header)``
    up to the end of *r* (the framer cut the line after the literal header)."""
    r.sp()
    flags, when = _append_opts(r)
    utf8 = False
    if r.try_word(b"UTF8"):
        r.sp()
        r.char(b"(")
        utf8 = True
    m = _literal_header(r)
    if m is None:
        raise r.fail("expected message literal")
    if utf8 and not m.group(1):
        raise r.fail("UTF8 data must be a literal8")
    size = int(m.group(2))
    return AppendMessageHead(flags, when, size, not m.group(3), bool(m.group(1)), utf8)


def _append_items(r: Reader, state: AppendState) -> tuple[list[AppendItem], AppendState]:
    """The append-messages and CATENATE parts (RFC 4469 5) of one segment of an APPEND, up to
    the literal header that ends it or the end of the command.  Returns the items and where
    the parse stands: "literal" (a message literal follows), "text" (a TEXT literal
    follows), "urllit" (a URL literal follows) or "end"."""
    items: list[AppendItem] = []
    while True:
        if state in ("first", "message"):
            if state == "message" and r.at_end():
                return items, "end"
            start = r.pos
            r.sp()
            flags, when = _append_opts(r)
            if r.try_word(b"CATENATE"):
                # RFC 4469 5: "CATENATE" SP "(" cat-part *(SP cat-part) ")"
                r.sp()
                r.char(b"(")
                items.append(AppendMessageHead(flags, when, 0, False, False, False, True))
                state = "catopen"
                continue
            r.pos = start  # a literal message: _message_head reads its options again
            items.append(_message_head(r))
            return items, "literal"
        if state == "catpart":
            if r.try_char(b")"):
                items.append(CatenateEnd())
                state = "message"
                continue
            r.sp()
        if r.try_word(b"TEXT"):
            r.sp()
            m = _literal_header(r)
            if m is None:
                raise r.fail("expected TEXT literal")
            items.append(CatenateText(int(m.group(2)), not m.group(3), bool(m.group(1))))
            return items, "text"
        if r.try_word(b"URL"):
            r.sp()
            m = _literal_header(r)
            if m is not None:
                if m.group(1):
                    raise r.fail("a URL is not a literal8")
                items.append(CatenateUrlLiteral(int(m.group(2)), not m.group(3)))
                return items, "urllit"
            items.append(CatenateUrl(r.astring("URL")))
            state = "catpart"
            continue
        raise r.fail("expected TEXT or URL")


def _tagged(buf: bytes | bytearray, utf8: bool) -> tuple[Reader, str]:
    """A reader of *buf* past the command's tag, and the tag (RFC 9051 9 ``tag``);
    :class:`CommandError` without a tag when even that is malformed."""
    r = Reader(buf, utf8=utf8)
    try:
        return r, r.atom_bytes(allow=_tag_char, what="tag").decode("ascii")
    except GrammarError as exc:
        raise CommandError(None, exc) from None


def _command_name(r: Reader) -> tuple[str, bool]:
    """``SP command-name``, or ``SP "UID" SP command-name`` of a UID command (RFC 9051 6.4.9,
    with MOVE, SORT, THREAD and REPLACE): the name, upper-cased, and whether UID came first."""
    r.sp()
    name = r.upper_atom("command name")
    if name != "UID":
        return name, False
    r.sp()
    name = r.upper_atom("command name")
    if name not in UID_COMMANDS:
        raise GrammarError(f"UID {name} is not a UID command")
    return name, True


def _mailbox_before_literal(r: Reader) -> str | None:
    """The mailbox of an APPEND or REPLACE whose first line the framer cut at a literal
    header; ``None`` when that literal is the mailbox name itself (it then comes whole)."""
    if _literal_header(r):
        return None
    return r.mailbox()


def parse_append_head(
    buf: bytes | bytearray, *, utf8: bool = True
) -> tuple[str, str, list[AppendItem], AppendState] | None:
    """The tag, mailbox and the first items of an APPEND (see :func:`_append_items`) whose
    first segment is *buf*: up to a literal header at its end, or the whole command (a
    CATENATE of URLs only); ``None`` when that literal is the mailbox name itself.

    Raises :class:`CommandError` for malformed input.
    """
    r, tag = _tagged(buf, utf8)
    try:
        name, _uid = _command_name(r)
        if name != "APPEND":
            raise GrammarError("expected APPEND")
        r.sp()
        mailbox = _mailbox_before_literal(r)
        if mailbox is None:
            return None
        items, state = _append_items(r, "first")
        return tag, mailbox, items, state
    except GrammarError as exc:
        raise CommandError(tag, exc) from None


def parse_replace_head(
    buf: bytes | bytearray, *, utf8: bool = True
) -> tuple[str, bool, ast.SequenceSet, str, AppendMessageHead] | None:
    """The tag, UID prefix, message set, mailbox and message head of a REPLACE (RFC 8508)
    whose message literal is announced at the end of *buf*; ``None`` when that literal is the
    mailbox name itself.  Raises :class:`CommandError` for malformed input."""
    r, tag = _tagged(buf, utf8)
    try:
        name, uid = _command_name(r)
        if name != "REPLACE":
            raise GrammarError("expected REPLACE")
        r.sp()
        seq = r.seq_number()  # RFC 8508 6: one message
        r.sp()
        mailbox = _mailbox_before_literal(r)
        if mailbox is None:
            return None
        head = _message_head(r)
        if head.utf8:
            raise GrammarError("REPLACE takes a plain message literal")
        return tag, uid, seq, mailbox, head
    except GrammarError as exc:
        raise CommandError(tag, exc) from None


def parse_append_next(
    tag: str, rest: bytes | bytearray, *, state: AppendState, close_paren: bool = False,
    utf8: bool = True,
) -> tuple[list[AppendItem], AppendState]:
    """The items of the next segment of an APPEND, after a literal: a message literal
    (*state* "message"; *close_paren*: it was ``UTF8 (`` data), a TEXT or a URL literal
    (*state* "catpart").  See :func:`_append_items`."""
    r = Reader(rest, utf8=utf8)
    try:
        if close_paren:
            r.char(b")")
        return _append_items(r, state)
    except GrammarError as exc:
        raise CommandError(tag, exc) from None


_MECH_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


def _mechanism(r: Reader) -> str:
    """RFC 4467 9: ``mechanism = "INTERNAL" / 1*uauth-mech-char``."""
    return r.atom_bytes(allow=lambda c: c in _MECH_CHARS, what="mechanism").decode().upper()


#: how many URLs one GENURLAUTH or URLFETCH may name (the line limit bounds them too)
MAX_URLS = 100


def _genurlauth(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 4467 9: ``"GENURLAUTH" 1*(SP url-rump SP mechanism)``."""
    urls: list[tuple[str, str]] = []
    while not r.at_end() or not urls:
        r.sp()
        rump = r.astring("URL")
        r.sp()
        urls.append((rump, _mechanism(r)))
        if len(urls) > MAX_URLS:
            raise GrammarError("too many URLs", code="LIMIT")
    return ast.GenUrlAuth(tag, tuple(urls))


def _resetkey(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 4467 9: ``"RESETKEY" [SP mailbox *(SP mechanism)]``."""
    if r.at_end():
        return ast.ResetKey(tag)
    r.sp()
    mailbox = r.mailbox()
    mechs: list[str] = []
    while not r.at_end():
        r.sp()
        mechs.append(_mechanism(r))
        if len(mechs) > MAX_URLS:
            raise GrammarError("too many mechanisms", code="LIMIT")
    return ast.ResetKey(tag, mailbox, tuple(mechs))


def _urlfetch(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 4467 9: ``"URLFETCH" 1*(SP url)``."""
    urls: list[str] = []
    while not r.at_end() or not urls:
        r.sp()
        urls.append(r.astring("URL"))
        if len(urls) > MAX_URLS:
            raise GrammarError("too many URLs", code="LIMIT")
    return ast.UrlFetch(tag, tuple(urls))


def parse_section_spec(text: bytes) -> ast.Section:
    """A section as in ``BODY[<text>]`` (RFC 9051 6.4.5), e.g. from an IMAP URL's
    ``;SECTION=`` (RFC 5092 3.4).  Raises :class:`GrammarError`."""
    r = Reader(b"[" + text + b"]")
    section = _section(r)
    r.end()
    return section


def _expunge(r: Reader, tag: str, uid: bool) -> ast.Command:
    if uid:
        r.sp()
        uids = r.sequence_set()
        r.end()
        return ast.Expunge(tag, uids)
    r.end()
    return ast.Expunge(tag)


def _search(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    returns, partial = search_return(r)
    if returns is not None:
        r.sp()
    charset, codec = search_charset(r)
    if charset is not None:
        r.sp()
    key = SearchParser(r, codec).keys()
    return ast.Search(tag, key, charset, uid, returns, partial)


_SOURCE_KINDS: dict[str, ast.SourceKind] = {
    k: k  # type: ignore[misc]
    for k in ("SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE",
              "SUBTREE-ONE", "MAILBOXES")
}
_MAX_SOURCES = 100


def _multisearch(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 7377 2: ``ESEARCH [SP "IN" SP "(" source-mbox ")"] [SP search-return-opts]
    SP search-program``; source-mbox = filter-mailboxes *(SP filter-mailboxes)."""
    r.sp()
    sources: list[tuple[ast.SourceKind, tuple[str, ...]]] = []
    if r.try_word(b"IN"):
        r.sp()
        r.char(b"(")
        while True:
            name = r.upper_atom("source mailboxes")
            kind = _SOURCE_KINDS.get(name)
            if kind is None:
                raise GrammarError(f"unknown source filter {name}")
            boxes: list[str] = []
            if kind in ("SUBTREE", "SUBTREE-ONE", "MAILBOXES"):
                # RFC 5465 6: one-or-more-mailbox = mailbox / many-mailboxes
                r.sp()
                if r.try_char(b"("):
                    boxes.append(r.mailbox())
                    while not r.try_char(b")"):
                        r.sp()
                        boxes.append(r.mailbox())
                else:
                    boxes.append(r.mailbox())
            sources.append((kind, tuple(boxes)))
            if len(sources) + sum(len(b) for _, b in sources) > _MAX_SOURCES:
                raise GrammarError("too many source mailboxes", status="NO", code="LIMIT")
            if r.try_char(b")"):
                break
            r.sp()
        r.sp()
    returns, partial = search_return(r)
    if returns is not None:
        if "SAVE" in returns and sources:
            # RFC 7377 2: SAVE is only for the selected mailbox
            raise GrammarError("SAVE cannot be used with ESEARCH IN")
        r.sp()
    charset, codec = search_charset(r)
    if charset is not None:
        r.sp()
    key = SearchParser(r, codec).keys()
    return ast.MultiSearch(tag, tuple(sources), key, charset, returns, partial)


def _fetch(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    seq = r.sequence_set()
    r.sp()
    items = fetch_items(r)
    changedsince: int | None = None
    vanished = False
    partial: ast.PartialRange | None = None
    if not r.at_end():
        # RFC 7162 3.1.4 / 3.2.6: fetch modifiers
        r.sp()
        r.char(b"(")
        while True:
            name = r.upper_atom("fetch modifier")
            if name == "CHANGEDSINCE":
                r.sp()
                changedsince = r.number64("mod-sequence")
            elif name == "VANISHED" and uid:
                vanished = True
            elif name == "PARTIAL" and uid and partial is None:
                # RFC 9394 4: the PARTIAL fetch modifier, for UID FETCH only
                r.sp()
                partial = partial_range(r)
            else:
                raise GrammarError(f"unknown fetch modifier {name}")
            if r.try_char(b")"):
                break
            r.sp()
        if vanished and changedsince is None:
            # RFC 7162 3.2.6: VANISHED requires CHANGEDSINCE
            raise GrammarError("VANISHED requires CHANGEDSINCE")
    r.end()
    return ast.Fetch(tag, seq, items, uid, changedsince, vanished, partial)


def _store(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    seq = r.sequence_set()
    r.sp()
    unchangedsince: int | None = None
    if r.peek() == 0x28:
        r.pos += 1
        name = r.upper_atom("store modifier")
        if name != "UNCHANGEDSINCE":
            raise GrammarError(f"unknown store modifier {name}")
        r.sp()
        unchangedsince = r.number64("mod-sequence")
        r.char(b")")
        r.sp()
    mode: ast.StoreMode = "replace"
    if r.try_char(b"+"):
        mode = "add"
    elif r.try_char(b"-"):
        mode = "remove"
    word = r.upper_atom("FLAGS")
    if word not in ("FLAGS", "FLAGS.SILENT"):
        raise GrammarError("expected FLAGS, +FLAGS or -FLAGS")
    r.sp()
    if r.peek() == 0x28:
        flags = r.flag_list()
    else:
        fl = [r.flag()]
        while not r.at_end():
            r.sp()
            fl.append(r.flag())
        flags = tuple(fl)
    r.end()
    return ast.Store(tag, seq, mode, flags, word == "FLAGS.SILENT", uid, unchangedsince)


def _copy_move(cls: type) -> CommandParser:
    def parse(r: Reader, tag: str, uid: bool) -> ast.Command:
        r.sp()
        seq = r.sequence_set()
        r.sp()
        mailbox = r.mailbox()
        r.end()
        return cls(tag, seq, mailbox, uid)  # type: ignore[no-any-return]

    return parse


def _id(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    if r.try_word(b"NIL"):
        r.end()
        return ast.Id(tag, None)
    r.char(b"(")
    params: list[tuple[str, str | None]] = []
    if not r.try_char(b")"):
        while True:
            k = r.string("ID field name")
            r.sp()
            v = r.nstring("ID field value")
            if len(params) < 30:  # RFC 2971 3.3: at most 30 pairs
                params.append((k, v))
            if r.try_char(b")"):
                break
            r.sp()
    r.end()
    return ast.Id(tag, tuple(params))


def _getquota(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    root = r.astring("quota root")
    r.end()
    return ast.GetQuota(tag, root)


def _getquotaroot(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return ast.GetQuotaRoot(tag, mailbox)


_SORT_KEYS: dict[str, ast.SortKey] = {
    k: k  # type: ignore[misc]
    for k in ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM",
              "DISPLAYTO")
}


def _sort(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    returns, partial = search_return(r)
    if returns is not None:
        r.sp()
    r.char(b"(")
    criteria: list[ast.SortCriterion] = []
    while True:
        reverse = False
        name = r.upper_atom("sort key")
        if name == "REVERSE":
            reverse = True
            r.sp()
            name = r.upper_atom("sort key")
        key = _SORT_KEYS.get(name)
        if key is None:
            raise GrammarError(f"unknown sort key {name}")
        criteria.append(ast.SortCriterion(key, reverse))
        if r.try_char(b")"):
            break
        r.sp()
    r.sp()
    charset, codec = _required_charset(r)
    r.sp()
    key_tree = SearchParser(r, codec).keys()
    return ast.Sort(tag, tuple(criteria), charset, key_tree, uid, returns, partial)


def _required_charset(r: Reader) -> tuple[str, str]:
    name = r.astring("charset")
    codec = SEARCH_CHARSETS.get(name.upper())
    if codec is None:
        raise GrammarError(
            f"unsupported charset {name}", status="NO", code="BADCHARSET (UTF-8 US-ASCII)"
        )
    return name, codec


def _thread(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    algo = r.upper_atom("thread algorithm")
    if algo not in ("ORDEREDSUBJECT", "REFERENCES"):
        raise GrammarError(f"unsupported thread algorithm {algo}")
    r.sp()
    charset, codec = _required_charset(r)
    r.sp()
    key = SearchParser(r, codec).keys()
    return ast.Thread(tag, algo, charset, key, uid)  # type: ignore[arg-type]


def _compress(r: Reader, tag: str, uid: bool) -> ast.Command:
    r.sp()
    mech = r.upper_atom("compression mechanism")
    r.end()
    return ast.Compress(tag, mech)


# ---------------------------------------------------------------------------------------------
# NOTIFY  (RFC 5465 8)
# ---------------------------------------------------------------------------------------------

#: bounds on one NOTIFY command (the command size is bounded too): event groups, and mailbox
#: names over all SUBTREE and MAILBOXES groups; more is NO [LIMIT], as for SETMETADATA.
MAX_NOTIFY_GROUPS = 64
MAX_NOTIFY_MAILBOXES = 1000
_NOTIFY_EVENT_NAMES = {e.upper(): e for e in ast.NOTIFY_EVENTS}
_MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange"})


def _bad_event(name: str) -> GrammarError:
    # RFC 5465 3: NO [BADEVENT (supported events)] for an event we do not implement
    supported = " ".join(ast.NOTIFY_EVENTS)
    return GrammarError(f"unsupported event {name}", status="NO", code=f"BADEVENT ({supported})")


def _notify_mailboxes(r: Reader) -> tuple[str, ...]:
    """``one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"``."""
    if not r.try_char(b"("):
        return (r.mailbox(),)
    names = [r.mailbox()]
    while not r.try_char(b")"):
        r.sp()
        names.append(r.mailbox())
        if len(names) > MAX_NOTIFY_MAILBOXES:
            raise GrammarError("too many mailboxes in NOTIFY", status="NO", code="LIMIT")
    return tuple(dict.fromkeys(names))


def _notify_group(r: Reader) -> ast.NotifyGroup:
    """``"(" filter-mailboxes SP events ")"``, ``events = "(" event *(SP event) ")" / "NONE"``."""
    r.char(b"(")
    what = r.atom("mailbox filter").upper()
    if what not in ast.NOTIFY_FILTERS:
        raise GrammarError(f"unknown mailbox filter {what}")
    mailboxes: tuple[str, ...] = ()
    if what in ("SUBTREE", "MAILBOXES"):
        r.sp()
        mailboxes = _notify_mailboxes(r)
    r.sp()
    events: list[str] = []
    fetch: tuple[ast.FetchItem, ...] = ()
    unsupported: str | None = None
    # The RFC's own examples (section 7) write the events without their parentheses
    # ("(selected MessageNew MessageExpunge)"); both forms are read.
    bare = r.peek() != 0x28
    if bare and r.try_word(b"NONE"):
        r.char(b")")
    else:
        if not bare:
            r.char(b"(")
        while True:
            name = r.atom("event")
            event = _NOTIFY_EVENT_NAMES.get(name.upper())
            if event is None:
                # checked after the whole command parsed: a malformed command is BAD first
                unsupported = unsupported or name
            elif event in events:
                raise GrammarError(f"event {event} given twice")
            else:
                events.append(event)
            if event == "MessageNew" and r.buf[r.pos : r.pos + 2] == b" (":
                r.sp()
                if what not in ("SELECTED", "SELECTED-DELAYED"):
                    # RFC 5465 5.2: fetch attributes only for the selected mailbox
                    raise GrammarError("MessageNew fetch attributes are only for SELECTED")
                fetch = fetch_items(r)
            if r.try_char(b")"):
                break
            r.sp()
        if not bare:
            r.char(b")")  # the group's, after the event list's
    if unsupported is not None:
        raise _bad_event(unsupported)
    got = set(events)
    # RFC 5465 5: MessageNew and MessageExpunge go together, and FlagChange (like
    # AnnotationChange) needs both.
    if ("MessageNew" in got) != ("MessageExpunge" in got):
        raise GrammarError("MessageNew and MessageExpunge must be given together")
    if "FlagChange" in got and "MessageNew" not in got:
        raise GrammarError("FlagChange requires MessageNew and MessageExpunge")
    if what in ("SELECTED", "SELECTED-DELAYED") and got - _MESSAGE_EVENTS:
        # RFC 5465 6.1: the selected mailbox filters take message events only
        raise GrammarError(f"{what} takes message events only")
    return ast.NotifyGroup(what, mailboxes, frozenset(events), fetch)


def _notify(r: Reader, tag: str, uid: bool) -> ast.Command:
    """RFC 5465 8: ``NOTIFY SP ("SET" [SP "STATUS"] SP event-groups / "NONE")``."""
    r.sp()
    if r.try_word(b"NONE"):
        r.end()
        return ast.Notify(tag, None)
    if not r.try_word(b"SET"):
        raise r.fail("expected SET or NONE")
    r.sp()
    status = r.try_word(b"STATUS")
    if status:
        r.sp()
    groups: list[ast.NotifyGroup] = []
    bad_event: GrammarError | None = None
    while True:
        try:
            groups.append(_notify_group(r))
        except GrammarError as exc:
            if exc.code is None or not exc.code.startswith("BADEVENT"):
                raise
            # raised once the group's ")" is read: the rest must still parse, since a
            # syntax error anywhere is BAD before an unsupported event is NO
            bad_event = bad_event or exc
        if len(groups) > MAX_NOTIFY_GROUPS:
            raise GrammarError("too many event groups in NOTIFY", status="NO", code="LIMIT")
        if r.at_end():
            break
        r.sp()
    if bad_event is not None:
        raise bad_event
    kinds = [g.filter for g in groups]
    if "SELECTED" in kinds and "SELECTED-DELAYED" in kinds:
        raise GrammarError("SELECTED and SELECTED-DELAYED exclude each other")
    # RFC 5465 6.1: only one filter of the selected mailbox per NOTIFY. Other filters may
    # repeat (6: several groups may apply to one mailbox; their events add up).
    for one in ("SELECTED", "SELECTED-DELAYED"):
        if kinds.count(one) > 1:
            raise GrammarError(f"{one} given twice")
    if sum(len(g.mailboxes) for g in groups) > MAX_NOTIFY_MAILBOXES:
        raise GrammarError("too many mailboxes in NOTIFY", status="NO", code="LIMIT")
    return ast.Notify(tag, tuple(groups), status)



COMMANDS: dict[str, CommandParser] = {
    "COMPRESS": _compress,
    "CAPABILITY": _no_args(ast.Capability),
    "NOOP": _no_args(ast.Noop),
    "LOGOUT": _no_args(ast.Logout),
    "STARTTLS": _no_args(ast.StartTLS),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": _select(False),
    "EXAMINE": _select(True),
    "CREATE": _create,
    "DELETE": _one_mailbox(ast.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(ast.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(ast.Unsubscribe),
    "LIST": _list,
    "LSUB": _lsub,
    "NAMESPACE": _no_args(ast.Namespace),
    "STATUS": _status,
    "APPEND": _append,
    "IDLE": _no_args(ast.Idle),
    "CHECK": _no_args(ast.Check),
    "CLOSE": _no_args(ast.Close),
    "UNSELECT": _no_args(ast.Unselect),
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_move(ast.Copy),
    "MOVE": _copy_move(ast.Move),
    "ID": _id,
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _getquotaroot,
    "SORT": _sort,
    "THREAD": _thread,
    "ESEARCH": _multisearch,
    "REPLACE": _replace,
    "GETMETADATA": _getmetadata,
    "SETMETADATA": _setmetadata,
    "CANCELUPDATE": _cancelupdate,
    "GENURLAUTH": _genurlauth,  # RFC 4467
    "RESETKEY": _resetkey,
    "URLFETCH": _urlfetch,
    "NOTIFY": _notify,
}
#: Commands that take the UID prefix (RFC 9051 6.4.9, RFC 4315, RFC 6851, RFC 5256).
UID_COMMANDS = frozenset({
    "COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE", "SORT", "THREAD",
    "REPLACE",  # RFC 8508 3
})


def parse_tag(buf: bytes | bytearray) -> str | None:
    """The tag of a (possibly malformed) command line, if it has a valid one."""
    end = 0
    while end < len(buf) and _tag_char(buf[end]):
        end += 1
    if end == 0 or (end < len(buf) and buf[end] != 0x20):
        return None
    return buf[:end].decode("ascii")


def parse_command(buf: bytes | bytearray, *, utf8: bool = True) -> ast.Command:
    """Parse one complete command (without its final CRLF).

    Raises :class:`CommandError` carrying the tag when known.
    """
    r, tag = _tagged(buf, utf8)
    try:
        name, uid = _command_name(r)
        parser = COMMANDS.get(name)
        if parser is None:
            raise GrammarError(f"unknown command {name}")
        return parser(r, tag, uid)
    except GrammarError as exc:
        raise CommandError(tag, exc) from None


class CommandError(Exception):
    """A :class:`GrammarError` with the command's tag (``None`` if even the tag was bad)."""

    def __init__(self, tag: str | None, error: GrammarError) -> None:
        super().__init__(error.text)
        self.tag = tag
        self.error = error


# -- ACL (RFC 4314 3): identifiers and rights are astrings ---------------------------------------


def _acl_command(cls: type, *, identifier: bool = False, rights: bool = False) -> CommandParser:
    def parse(r: Reader, tag: str, uid: bool) -> ast.Command:
        r.sp()
        args: list[str] = [r.mailbox()]
        if identifier:
            r.sp()
            args.append(r.astring("identifier"))
        if rights:
            r.sp()
            args.append(r.astring("rights"))
        r.end()
        return cls(tag, *args)  # type: ignore[no-any-return]

    return parse


COMMANDS.update({
    "SETACL": _acl_command(ast.SetAcl, identifier=True, rights=True),
    "DELETEACL": _acl_command(ast.DeleteAcl, identifier=True),
    "GETACL": _acl_command(ast.GetAcl),
    "LISTRIGHTS": _acl_command(ast.ListRights, identifier=True),
    "MYRIGHTS": _acl_command(ast.MyRights),
})
