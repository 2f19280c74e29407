"""Message content readers: DATA with dot-unstuffing (RFC 5321 4.1.1.4, 4.5.2) and the line
ending checks that both DATA and BDAT (RFC 3030) share.

SMTP smuggling (CVE-2023-51764 and friends) lives in the gap between how two servers find the
end of data. Here only <CRLF>.<CRLF> ends DATA: a dot line framed by a bare LF or a bare CR
(`\\n.\\n`, `\\r.\\r`, `\\n.\\r\\n`, `\\r\\n.\\n` ...) is message content. The choice, after
Postfix 3.9 (`smtpd_forbid_bare_newline = normalize`) and Sendmail 8.18: bare LF is accepted as
content and later canonicalised to CRLF at ingest, so a `\\n.\\n` inside a message becomes an
ordinary dot line that our own relay dot-stuffs when it sends it on; bare CR, which RFC 5321
2.3.8 forbids and which some receivers take for a line end, is refused (`reject_bare_cr`).
"""

from __future__ import annotations

CR = 0x0D
LF = 0x0A
DOT = 0x2E


class LineEndingCheck:
    """Notices bare CR and bare LF in a stream of chunks, across chunk boundaries."""

    __slots__ = ("_held_cr", "bare_cr", "bare_lf")

    def __init__(self) -> None:
        self.bare_cr = False
        self.bare_lf = False
        self._held_cr = False

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._held_cr:
            self._held_cr = False
            if data[0] == LF:
                data = data[1:]  # the held CR and this LF make one CRLF
            else:
                self.bare_cr = True
        if not data:
            return
        crlf = data.count(b"\r\n")
        crs = data.count(b"\r")
        if data[-1] == CR:
            self._held_cr = True
            crs -= 1
        if crs != crlf:
            self.bare_cr = True
        if data.count(b"\n") != crlf:
            self.bare_lf = True

    def finish(self) -> None:
        if self._held_cr:
            self.bare_cr = True
            self._held_cr = False


class DotReader:
    """Streams DATA content out of a buffer, removing dot-stuffing, until <CRLF>.<CRLF>.

    The CRLF that ended the DATA command counts as the start of the first line (RFC 5321
    4.1.1.4), so an immediate ".\\r\\n" is an empty message. Nothing is kept but at most a
    trailing CR whose meaning depends on the next octet.
    """

    __slots__ = ("_line_start", "ended")

    def __init__(self) -> None:
        self._line_start = True
        self.ended = False

    def feed(self, buf: bytearray) -> bytes:
        """Consume what can be decided from `buf` (in place); return the unstuffed content."""
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self._line_start:
                if buf[pos] == DOT:
                    if n - pos < 2:
                        break
                    if buf[pos + 1] == CR:
                        if n - pos < 3:
                            break
                        if buf[pos + 2] == LF:
                            # RFC 5321 4.1.1.4: <CRLF>.<CRLF> and nothing else ends the data.
                            pos += 3
                            self.ended = True
                            break
                    # RFC 5321 4.5.2: a leading period on any other line is removed.
                    pos += 1
                self._line_start = False
                continue
            idx = buf.find(b"\r\n.", pos)
            if idx >= 0:
                out.append(bytes(buf[pos : idx + 2]))
                pos = idx + 2
                self._line_start = True
                continue
            end = n
            if buf[n - 1] == CR:
                end = n - 1  # a CR may begin <CRLF>.; decide when the next octets come
            elif n - pos >= 2 and buf[n - 2] == CR and buf[n - 1] == LF:
                self._line_start = True
            if end > pos:
                out.append(bytes(buf[pos:end]))
            pos = end
            break
        del buf[:pos]
        return b"".join(out)
