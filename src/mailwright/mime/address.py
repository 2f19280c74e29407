"""RFC 5322 3.4 address lists as ENVELOPE wants them (RFC 9051 7.5.2), lenient on junk.

Broken addresses are kept rather than dropped, with placeholders where a part is missing
(MISSING_MAILBOX / MISSING_DOMAIN) or the syntax is hopeless (SYNTAX_ERROR): the placeholders
are the ones Dovecot sends, so clients see the same ENVELOPE from both servers.
"""

from __future__ import annotations

from .model import Address
from .rfc822 import Scanner

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"
SYNTAX_ERROR = b"SYNTAX_ERROR"
INVALID_ROUTE = b"INVALID_ROUTE"


class _Addr:
    __slots__ = ("domain", "invalid", "mailbox", "name", "route")

    def __init__(self) -> None:
        self.name: bytes | None = None
        self.route: bytes | None = None
        self.mailbox: bytes | None = None
        self.domain: bytes | None = None
        self.invalid = False


class _AddressParser:
    def __init__(self, data: bytes, limit: int) -> None:
        self.sc = Scanner(data, keep_comment=True)
        self.out: list[Address] = []
        self.cur = _Addr()
        self.limit = limit
        self.text = bytearray()

    def emit(self) -> None:
        a = self.cur
        self.out.append(Address(a.name, a.route, a.mailbox, a.domain))
        self.cur = _Addr()

    def emit_fixed(self) -> None:
        if self.cur.mailbox is None:
            self.cur.mailbox = MISSING_MAILBOX
        if not self.cur.domain:
            self.cur.domain = MISSING_DOMAIN
        self.emit()

    def local_part(self) -> int:
        sc = self.sc
        out = self.text = bytearray()
        if sc.peek() == 0x22:
            ret = sc.parse_quoted_string(out)
        else:
            ret = sc.parse_dot_atom(out)
        if ret < 0:
            return -1
        self.cur.mailbox = bytes(out)
        return ret

    def domain(self) -> int:
        out = bytearray()
        ret = self.sc.parse_domain(out)
        if ret < 0:
            return -1
        self.cur.domain = bytes(out)
        return ret

    def domain_list(self) -> int:
        # RFC 5322 4.4 obs-domain-list (source routes)
        sc = self.sc
        out = bytearray()
        while True:
            if sc.at_end():
                return 0
            if sc.peek() != 0x40:
                break
            if out:
                out.append(0x2C)
            out.append(0x40)
            ret = sc.parse_domain(out)
            if ret <= 0:
                return ret
            while sc.skip_lwsp() > 0 and sc.peek() == 0x2C:
                sc.pos += 1
        self.cur.route = bytes(out)
        return 1

    def angle_addr(self) -> int:
        sc = self.sc
        sc.pos += 1  # "<"
        if sc.skip_lwsp() <= 0:
            return -1
        if sc.peek() == 0x40:
            if self.domain_list() > 0 and sc.peek() == 0x3A:
                sc.pos += 1
            else:
                self.cur.route = INVALID_ROUTE
                if sc.at_end():
                    return -1
            if sc.skip_lwsp() <= 0:
                return -1
        if sc.peek() != 0x3E:
            # "<>" (a null path) leaves mailbox and host missing
            if self.local_part() <= 0:
                return -1
            if sc.peek() == 0x40 and self.domain() <= 0:
                return -1
        if sc.peek() != 0x3E:
            return -1
        sc.pos += 1
        return sc.skip_lwsp()

    def name_addr(self) -> int:
        sc = self.sc
        out = bytearray()
        if sc.parse_phrase(out) <= 0 or sc.peek() != 0x3C:
            return -1
        self.cur.name = bytes(out) if out else None
        if self.angle_addr() < 0:
            self.cur.domain = SYNTAX_ERROR
            self.cur.invalid = True
        return 0 if sc.at_end() else 1

    def addr_spec(self) -> int:
        sc = self.sc
        assert sc.last_comment is not None
        del sc.last_comment[:]
        quoted = sc.peek() == 0x22
        ret = self.local_part()
        ret2 = -2
        if ret <= 0:
            self.cur.invalid = True
        if ret != 0 and sc.peek() == 0x40:
            ret2 = self.domain()
            if ret2 <= 0:
                ret = ret2
        if sc.last_comment:
            self.cur.name = bytes(sc.last_comment)
        elif ret2 == -2:
            # "user" alone is a mailbox, but followed by more words it is a display name
            text = self.text
            text.append(0x20)
            before = len(text)
            sc.parse_phrase(text)
            if len(text) != before:
                self.cur.mailbox = None
                self.cur.name = bytes(text)
            elif not quoted:
                self.cur.domain = b""
            self.cur.invalid = True
            ret = -1
        return ret

    def mailbox(self) -> int:
        sc = self.sc
        start = sc.pos
        ret = self.name_addr()
        if ret < 0:
            sc.pos = start
            self.cur = _Addr()
            ret = self.addr_spec()
            a = self.cur
            if a.invalid and a.name is None and a.mailbox is not None and a.domain is None:
                a.name = a.mailbox
                a.mailbox = None
        self.emit_fixed()
        return ret

    def group(self) -> int:
        sc = self.sc
        out = bytearray()
        if sc.parse_phrase(out) <= 0 or sc.peek() != 0x3A:
            return -1
        sc.pos += 1
        ret = sc.skip_lwsp()
        self.cur.mailbox = bytes(out)
        self.emit()
        if ret > 0 and sc.peek() != 0x3B:
            while True:
                self.mailbox()  # a broken one is kept; go on with the rest
                if sc.peek() != 0x2C:
                    break
                sc.pos += 1
                if sc.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if sc.peek() != 0x3B:
                ret = -1
            else:
                sc.pos += 1
                ret = sc.skip_lwsp()
        self.emit()  # end-of-group marker (RFC 9051 7.5.2)
        return 0 if ret == 0 else 1

    def address(self) -> int:
        sc = self.sc
        start = sc.pos
        ret = self.group()
        if ret < 0:
            sc.pos = start
            self.cur = _Addr()
            ret = self.mailbox()
        return ret

    def address_list(self) -> None:
        sc = self.sc
        limit = self.limit
        while limit > 0:
            limit -= 1
            if self.address() == 0:
                break
            if sc.peek() != 0x2C:
                break
            sc.pos += 1
            ret = sc.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.emit_fixed()
                break


def parse_address_list(value: bytes, limit: int = 10000) -> tuple[Address, ...] | None:
    """Addresses of one header value; None when it holds none (ENVELOPE NIL)."""
    p = _AddressParser(value, limit)
    if p.sc.skip_lwsp() <= 0:
        return None
    try:
        p.address_list()
    except IndexError:
        pass
    return tuple(p.out) if p.out else None
