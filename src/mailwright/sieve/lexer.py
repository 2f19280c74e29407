"""Sieve lexical tokens (RFC 5228 2.2-2.4, 8.1), each with the line it starts on.

The script is text: a script that is not UTF-8 is refused here (RFC 5228 2.1 says scripts are
UTF-8). Bare LF is accepted as a line end, as Pigeonhole does, because editors and `cat` write
it. Strings are unescaped here (RFC 5228 2.4.2: a backslash quotes the next character) and
multi-line strings are dot-unstuffed (2.4.2); variable and encoded-character expansion happen
later, because they depend on what the script requires.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Bounds the parser work a hostile upload can cause; ManageSieve quotas cap the size first.
MAX_TOKENS = 200_000


class Kind(enum.Enum):
    IDENTIFIER = "identifier"
    TAG = "tag"
    NUMBER = "number"
    STRING = "string"
    SPECIAL = "special"  # one of [ ] { } ( ) , ;
    EOF = "end of script"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # identifier or tag name (without ':'), the string value, the special char
    line: int
    number: int = 0


class SieveSyntaxError(Exception):
    """A script that is not valid Sieve; `line` is 1-based, as ManageSieve clients show it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


_SPECIALS = frozenset("[]{}(),;")
_QUANTIFIERS = {"K": 1024, "M": 1024**2, "G": 1024**3}
MAX_NUMBER = 2**63 - 1


def tokenize(source: str | bytes) -> list[Token]:
    """All tokens of a script, ending with one EOF token."""
    if isinstance(source, bytes):
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = source[: exc.start].count(b"\n") + 1
            raise SieveSyntaxError(line, "script is not valid UTF-8") from None
    else:
        text = source
    tokens: list[Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        if len(tokens) > MAX_TOKENS:
            raise SieveSyntaxError(line, "script too long")
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":  # hash-comment to end of line
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == "/" and text.startswith("/*", i):  # bracket-comment, not nested
            end = text.find("*/", i + 2)
            if end < 0:
                raise SieveSyntaxError(line, "unterminated comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif c in _SPECIALS:
            tokens.append(Token(Kind.SPECIAL, c, line))
            i += 1
        elif c == '"':
            start_line = line
            out: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise SieveSyntaxError(start_line, "unterminated string")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    out.append(text[i + 1])
                    if text[i + 1] == "\n":
                        line += 1
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                if ch == "\n":
                    line += 1
                out.append(ch)
                i += 1
            value = "".join(out)
            # RFC 5228 2.4.2: CRLF is the line end inside strings; a bare LF becomes CRLF.
            tokens.append(Token(Kind.STRING, _crlf(value), start_line))
        elif c == ":":
            j = i + 1
            while j < n and (text[j].isascii() and (text[j].isalnum() or text[j] == "_")):
                j += 1
            name = text[i + 1 : j]
            if not name or name[0].isdigit():
                raise SieveSyntaxError(line, "invalid tag")
            tokens.append(Token(Kind.TAG, name.lower(), line))
            i = j
        elif c.isascii() and c.isdigit():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            value_n = int(text[i:j])
            if j < n and text[j].upper() in _QUANTIFIERS:
                value_n *= _QUANTIFIERS[text[j].upper()]
                j += 1
            if j < n and (text[j].isalnum() or text[j] == "_"):
                raise SieveSyntaxError(line, f"invalid number {text[i:j + 1]!r}")
            if value_n > MAX_NUMBER:
                raise SieveSyntaxError(line, "number too large")
            tokens.append(Token(Kind.NUMBER, text[i:j], line, value_n))
            i = j
        elif c.isascii() and (c.isalpha() or c == "_"):
            j = i
            while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            if word.lower() == "text" and j < n and text[j] == ":":
                i, line = _multiline(text, j + 1, line, tokens)
                continue
            tokens.append(Token(Kind.IDENTIFIER, word.lower(), line))
            i = j
        else:
            raise SieveSyntaxError(line, f"unexpected character {c!r}")
    tokens.append(Token(Kind.EOF, "", line))
    return tokens


def _crlf(value: str) -> str:
    if "\n" not in value:
        return value
    return value.replace("\r\n", "\n").replace("\n", "\r\n")


def _multiline(text: str, i: int, line: int, tokens: list[Token]) -> tuple[int, int]:
    """RFC 5228 2.4.2 multi-line string after `text:`; returns (position, line) after it."""
    n = len(text)
    start_line = line
    # optional white space and an optional hash comment, then the line end
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "#":
        end = text.find("\n", i)
        i = n if end < 0 else end
    if i < n and text[i] == "\r":
        i += 1
    if i >= n or text[i] != "\n":
        raise SieveSyntaxError(line, "text: must be followed by a line end")
    i += 1
    line += 1
    lines: list[str] = []
    while True:
        if i >= n:
            raise SieveSyntaxError(start_line, "unterminated multi-line string")
        end = text.find("\n", i)
        raw = text[i:] if end < 0 else text[i:end]
        raw = raw[:-1] if raw.endswith("\r") else raw
        i = n if end < 0 else end + 1
        line += 1
        if raw == ".":
            break
        if raw.startswith("."):
            raw = raw[1:]  # dot-stuffing
        lines.append(raw)
    value = "".join(part + "\r\n" for part in lines)
    tokens.append(Token(Kind.STRING, value, start_line))
    return i, line
