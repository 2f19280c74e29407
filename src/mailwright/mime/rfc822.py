"""RFC 5322 / RFC 2045 lexical helpers that work on raw header bytes.

Header values are handled as bytes: real mail carries 8-bit and broken bytes in headers and IMAP
wants them back unchanged. The token rules follow RFC 5322 3.2.3 (atext) and RFC 2045 5.1
(token/tspecials), with the lenient recovery that deployed servers (Dovecot in particular) apply,
because IMAP clients compare our ENVELOPE/BODYSTRUCTURE with what those servers send.

Return-code convention of the scanning methods: -1 syntax error, 0 end of input reached,
1 more input follows.
"""

from __future__ import annotations

from dataclasses import dataclass

# Character classes: 1 = atext, 2 = atext (alnum or 8-bit), 4 = atext but MIME tspecial
# (RFC 2045 5.1 adds "/", "=", "?" to the RFC 5322 specials).
_CLASS = bytearray(256)
for _c in b"!#$%&'*+-^_`{|}~":
    _CLASS[_c] = 1
for _c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _CLASS[_c] = 2
for _c in range(128, 256):
    _CLASS[_c] = 2
for _c in b"/=?":
    _CLASS[_c] = 4
ATEXT = bytes(1 if v else 0 for v in _CLASS)
MIME_TOKEN = bytes(1 if (v & 3) or i == 0x2E else 0 for i, v in enumerate(_CLASS))
LWSP = b" \t\r\n"


class Scanner:
    """A cursor over one header value (already unfolded or not: CR/LF count as white space)."""

    __slots__ = ("data", "end", "last_comment", "pos")

    def __init__(self, data: bytes, keep_comment: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: bytearray | None = bytearray() if keep_comment else None

    def at_end(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_comment(self) -> int:
        # RFC 5322 3.2.2: comments nest; a backslash quotes the next byte.
        data = self.data
        level = 1
        if self.last_comment is not None:
            del self.last_comment[:]
        self.pos += 1
        start = self.pos
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0x28:
                level += 1
            elif c == 0x29:
                level -= 1
                if level == 0:
                    if self.last_comment is not None:
                        self.last_comment += data[start : self.pos]
                    self.pos += 1
                    return 1 if self.pos < self.end else 0
            elif c == 0x5C:
                if self.last_comment is not None:
                    self.last_comment += data[start : self.pos]
                start = self.pos + 1
                self.pos += 1
                if self.pos >= self.end:
                    return -1
            self.pos += 1
        return -1

    def skip_lwsp(self) -> int:
        data = self.data
        while self.pos < self.end:
            c = data[self.pos]
            if c in LWSP:
                self.pos += 1
                continue
            if c != 0x28:
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < self.end else 0

    def _run(self, table: bytes, extra: int = -1) -> bytes:
        data = self.data
        start = self.pos
        pos = start
        end = self.end
        while pos < end and (table[data[pos]] or data[pos] == extra):
            pos += 1
        self.pos = pos
        return data[start:pos]

    def parse_atom(self, out: bytearray) -> int:
        if self.pos >= self.end or not ATEXT[self.data[self.pos]]:
            return -1
        out += self._run(ATEXT)
        return self.skip_lwsp() if self.pos < self.end else 0

    def parse_dot_atom(self, out: bytearray) -> int:
        # RFC 5322 3.2.3 dot-atom; RFC 822 allowed white space around the dots.
        if self.pos >= self.end or not ATEXT[self.data[self.pos]]:
            return -1
        while True:
            out += self._run(ATEXT)
            if self.pos >= self.end:
                return 0
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if self.data[self.pos] != 0x2E:
                return 1
            self.pos += 1
            out.append(0x2E)
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret

    def parse_mime_token(self, out: bytearray) -> int:
        out += self._run(MIME_TOKEN)
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def parse_quoted_string(self, out: bytearray) -> int:
        data = self.data
        self.pos += 1
        start = self.pos
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0x22:
                out += data[start : self.pos]
                self.pos += 1
                return self.skip_lwsp()
            if c == 0x0A:
                # folding inside the string: drop the line break, keep the white space
                n = self.pos - start
                if n > 0 and data[start + n - 1] == 0x0D:
                    n -= 1
                out += data[start : start + n]
                start = self.pos + 1
            elif c == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return -1
                out += data[start : self.pos - 1]
                start = self.pos
            self.pos += 1
        return -1

    def _parse_atom_or_dot(self, out: bytearray) -> int:
        out += self._run(ATEXT, 0x2E)
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def parse_phrase(self, out: bytearray) -> int:
        # RFC 5322 3.2.5 phrase, with obs-phrase dots.
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == 0x2E:
            return -1
        while True:
            if self.data[self.pos] == 0x22:
                ret = self.parse_quoted_string(out)
            else:
                ret = self._parse_atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.data[self.pos]
            if not ATEXT[c] and c != 0x22 and c != 0x2E:
                break
            out.append(0x20)
        return self.skip_lwsp()

    def _parse_domain_literal(self, out: bytearray) -> int:
        data = self.data
        start = self.pos
        while self.pos < self.end:
            c = data[self.pos]
            if c == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    break
            elif c == 0x5D:
                self.pos += 1
                out += data[start : self.pos]
                return self.skip_lwsp()
            self.pos += 1
        return -1

    def parse_domain(self, out: bytearray) -> int:
        self.pos += 1  # the "@"
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == 0x5B:
            return self._parse_domain_literal(out)
        return self.parse_dot_atom(out)

    def parse_content_type(self, out: bytearray) -> int:
        """type "/" subtype (RFC 2045 5.1); -1 when it is not that, -2 for a lone type."""
        if self.skip_lwsp() <= 0:
            return -1
        before = len(out)
        ret = self.parse_mime_token(out)
        if len(out) == before:
            return -1
        if ret == 0:
            return -2  # a type and nothing else
        if ret < 0 or self.data[self.pos] != 0x2F:
            return -1
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        out.append(0x2F)
        before = len(out)
        ret = self.parse_mime_token(out)
        if len(out) == before:
            return -1
        return ret

    def parse_content_param(self) -> tuple[int, bytes, bytes]:
        """One `;` attribute `=` value (RFC 2045 5.1); (0, ...) at the end."""
        if self.pos >= self.end:
            return 0, b"", b""
        if self.data[self.pos] != 0x3B:
            return -1, b"", b""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1, b"", b""
        key = bytearray()
        if self.parse_mime_token(key) <= 0:
            return -1, b"", b""
        if self.data[self.pos] != 0x3D:
            return -1, b"", b""
        self.pos += 1
        value = bytearray()
        ret = self.skip_lwsp()
        if ret <= 0:
            pass  # no value: an empty one
        elif self.data[self.pos] == 0x22:
            ret = self.parse_quoted_string(value)
        elif self.data[self.pos] == 0x3D:
            # broken senders write name==?utf-8?b?...?= unquoted
            data = self.data
            start = self.pos
            while self.pos < self.end and data[self.pos] not in b"; \t\r\n":
                self.pos += 1
            value += data[start : self.pos]
        else:
            ret = self.parse_mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key), bytes(value)


@dataclass(frozen=True, slots=True)
class Params:
    items: tuple[tuple[bytes, bytes], ...]
    broken: bool


def parse_params(sc: Scanner) -> Params:
    """Parameters after a media type or disposition, RFC 2231 continuations joined.

    Continuations `name*0*`, `name*1` ... become one `name*` (or `name`) parameter; the
    charset'language' prefix and %-escapes are kept as written, as Dovecot does, so that our
    BODYSTRUCTURE matches what clients already see from it.
    """
    result: list[tuple[bytes, bytes]] = []
    ext: list[tuple[bytes, int, bool, bytes]] = []
    broken = False
    idx = 0
    while True:
        ret, key, value = sc.parse_content_param()
        if ret == 0:
            break
        if ret < 0:
            broken = True
            if sc.pos >= sc.end:
                break
            sc.pos += 1
            continue
        star = key.find(b"*")
        if star < 0:
            result.append((key, value))
            continue
        p = star
        if p + 1 < len(key):
            p += 1
            idx = 0
            while p < len(key) and 0x30 <= key[p] <= 0x39:
                idx = idx * 10 + key[p] - 0x30
                p += 1
        extended = p < len(key) and key[p] == 0x2A
        if extended:
            p += 1
        if p != len(key):
            result.append((key, value))
            continue
        ext.append((key[:star], idx, extended, value))
    if ext:
        ext.sort(key=lambda e: (e[0], e[1]))
        i = 0
        while i < len(ext):
            name = ext[i][0].lower()
            j = i
            ok = True
            have_ext = False
            nxt = 0
            while j < len(ext) and ext[j][0].lower() == name:
                if ext[j][1] != nxt:
                    ok = False
                if ext[j][2]:
                    have_ext = True
                nxt += 1
                j += 1
            if not ok:
                for k in range(i, j):
                    kname, kidx, kext, kval = ext[k]
                    suffix = b"*%d*" % kidx if kext else b"*%d" % kidx
                    result.append((kname + suffix, kval))
            else:
                buf = bytearray()
                if not ext[i][2] and have_ext:
                    buf += b"''"
                for k in range(i, j):
                    if not ext[k][2] and have_ext:
                        buf += ext[k][3].replace(b"%", b"%25")
                    else:
                        buf += ext[k][3]
                kname = ext[i][0] + (b"*" if have_ext else b"")
                result.append((kname, bytes(buf)))
            i = j
    return Params(tuple(result), broken)
