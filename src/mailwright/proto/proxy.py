"""HAProxy PROXY protocol v1 and v2 parser, sans-I/O (haproxy doc/proxy-protocol.txt).

The header is the very first thing on a connection from a load balancer: it carries the
original client and server addresses.  Feed bytes with ``receive_data`` until
``next_event`` yields a ``ProxyHeader``; the bytes after the header (the start of the
real protocol) are then in ``trailing_data``.  Sizes are bounded and every malformed
header raises ``ProxyProtocolError``: the caller then closes the connection, because a
listener configured for PROXY must never guess (spec 2.1: no fallback to plain traffic).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum

V1_PREFIX = b"PROXY "
# Spec 2.2: the 12-byte v2 signature.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_LENGTH = 107  # spec 2.1: worst case "PROXY UNKNOWN" line with CRLF
_V2_HEADER = struct.Struct("!12sBBH")

_PP2_CMD_LOCAL = 0x0
_PP2_CMD_PROXY = 0x1
_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX = 0x0, 0x1, 0x2, 0x3
_PROTO_UNSPEC, _PROTO_STREAM, _PROTO_DGRAM = 0x0, 0x1, 0x2
_ADDRESS_LENGTHS = {_AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 216}


class ProxyProtocolError(Exception):
    """The peer sent something that is not a valid PROXY header; close the connection."""


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = _NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """The decoded header.

    ``source``/``destination`` are ``(ip, port)`` for a proxied TCP connection, or None
    when the header says to use the real socket addresses: v1 ``UNKNOWN``, v2 ``LOCAL``
    (health checks from the proxy itself), v2 ``UNSPEC`` or ``UNIX`` families.
    ``tlvs`` are the v2 type-length-value extensions, kept raw and never interpreted.
    """

    version: int
    local: bool
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    tlvs: tuple[tuple[int, bytes], ...] = ()


class ProxyParser:
    """Parses one PROXY header.  ``max_v2_length`` bounds the v2 address+TLV block."""

    def __init__(
        self, *, allow_v1: bool = True, allow_v2: bool = True, max_v2_length: int = 1024
    ) -> None:
        if max_v2_length < 36:
            raise ValueError("max_v2_length must hold an IPv6 address block (36 octets)")
        self.allow_v1 = allow_v1
        self.allow_v2 = allow_v2
        self.max_v2_length = max_v2_length
        self._buffer = bytearray()
        self._result: ProxyHeader | None = None

    def receive_data(self, data: bytes) -> None:
        if self._result is not None:
            raise ProxyProtocolError("header already parsed; read trailing_data instead")
        self._buffer += data

    @property
    def trailing_data(self) -> bytes:
        """Bytes after the header: the first bytes of the proxied protocol."""
        if self._result is None:
            raise ProxyProtocolError("no header parsed yet")
        return bytes(self._buffer)

    def next_event(self) -> ProxyHeader | _NeedData:
        if self._result is not None:
            return self._result
        buf = self._buffer
        head = bytes(buf[: len(V2_SIGNATURE)])
        if V2_SIGNATURE.startswith(head) and head:
            if not self.allow_v2:
                raise ProxyProtocolError("PROXY protocol v2 header not allowed")
            if len(buf) < _V2_HEADER.size:
                return NEED_DATA
            parsed = self._parse_v2()
            if parsed is NEED_DATA:
                return NEED_DATA
            result = parsed
        elif V1_PREFIX.startswith(bytes(buf[: len(V1_PREFIX)])) and buf:
            if not self.allow_v1:
                raise ProxyProtocolError("PROXY protocol v1 header not allowed")
            end = buf.find(b"\r\n", 0, V1_MAX_LENGTH)
            if end < 0:
                if len(buf) >= V1_MAX_LENGTH:
                    raise ProxyProtocolError("PROXY v1 header longer than 107 octets")
                if b"\n" in buf:
                    raise ProxyProtocolError("PROXY v1 header must end with CRLF")
                return NEED_DATA
            line = bytes(buf[:end])
            del buf[: end + 2]
            result = _parse_v1(line)
        elif not buf:
            return NEED_DATA
        else:
            raise ProxyProtocolError("connection does not start with a PROXY protocol header")
        self._result = result
        return result

    def _parse_v2(self) -> ProxyHeader | _NeedData:
        _sig, ver_cmd, fam, length = _V2_HEADER.unpack_from(self._buffer)
        if ver_cmd >> 4 != 2:
            raise ProxyProtocolError(f"unsupported PROXY v2 version {ver_cmd >> 4}")
        command = ver_cmd & 0x0F
        if command not in (_PP2_CMD_LOCAL, _PP2_CMD_PROXY):
            raise ProxyProtocolError(f"unknown PROXY v2 command {command}")
        if length > self.max_v2_length:
            raise ProxyProtocolError(f"PROXY v2 header of {length} octets exceeds the limit")
        total = _V2_HEADER.size + length
        if len(self._buffer) < total:
            return NEED_DATA
        block = bytes(self._buffer[_V2_HEADER.size : total])
        del self._buffer[:total]
        family, transport = fam >> 4, fam & 0x0F
        if family not in (_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX):
            raise ProxyProtocolError(f"unknown PROXY v2 address family {family}")
        if transport not in (_PROTO_UNSPEC, _PROTO_STREAM, _PROTO_DGRAM):
            raise ProxyProtocolError(f"unknown PROXY v2 transport {transport}")
        addr_len = _ADDRESS_LENGTHS.get(family, 0)
        if len(block) < addr_len:
            raise ProxyProtocolError("PROXY v2 address block is truncated")
        tlvs = _parse_tlvs(block[addr_len:])
        # Spec 2.2: with LOCAL the receiver must ignore the address block and use the socket's.
        if command == _PP2_CMD_LOCAL:
            return ProxyHeader(2, True, None, None, tlvs)
        if family in (_AF_INET, _AF_INET6):
            if transport != _PROTO_STREAM:
                raise ProxyProtocolError("PROXY v2 datagram transport on a stream listener")
            source, destination = _v2_inet(family, block)
            return ProxyHeader(2, False, source, destination, tlvs)
        # UNSPEC and UNIX carry no usable IP address (spec 2.2): keep the socket's.
        return ProxyHeader(2, False, None, None, tlvs)


def _v2_inet(family: int, block: bytes) -> tuple[tuple[str, int], tuple[str, int]]:
    if family == _AF_INET:
        src = ipaddress.IPv4Address(block[0:4])
        dst = ipaddress.IPv4Address(block[4:8])
        sport, dport = struct.unpack_from("!HH", block, 8)
    else:
        src6 = ipaddress.IPv6Address(block[0:16])
        dst6 = ipaddress.IPv6Address(block[16:32])
        sport, dport = struct.unpack_from("!HH", block, 32)
        return (str(src6), sport), (str(dst6), dport)
    return (str(src), sport), (str(dst), dport)


def _parse_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    # Spec 2.2.7: each TLV is type (1), length (2, big endian), value; they fill the rest.
    tlvs: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            raise ProxyProtocolError("PROXY v2 TLV header is truncated")
        kind, size = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        pos += 3
        if size > len(data) - pos:
            raise ProxyProtocolError("PROXY v2 TLV overruns the header")
        tlvs.append((kind, data[pos : pos + size]))
        pos += size
    return tuple(tlvs)


def _parse_v1(line: bytes) -> ProxyHeader:
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY v1 header is not ASCII") from None
    parts = text.split(" ")
    if len(parts) < 2 or parts[0] != "PROXY":
        raise ProxyProtocolError("malformed PROXY v1 header")
    protocol = parts[1]
    if protocol == "UNKNOWN":
        # Spec 2.1: anything may follow UNKNOWN; the receiver must ignore it.
        return ProxyHeader(1, False, None, None)
    if protocol not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"unknown PROXY v1 protocol {protocol[:10]!r}")
    if len(parts) != 6:
        raise ProxyProtocolError("PROXY v1 header needs 4 address fields")
    version = 4 if protocol == "TCP4" else 6
    src = _v1_address(parts[2], version)
    dst = _v1_address(parts[3], version)
    return ProxyHeader(1, False, (src, _v1_port(parts[4])), (dst, _v1_port(parts[5])))


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyProtocolError(f"invalid address in PROXY v1 header: {text[:45]!r}") from None
    if address.version != version:
        raise ProxyProtocolError(f"address {text!r} does not match TCP{version}")
    return str(address)


def _v1_port(text: str) -> int:
    # Spec 2.1: ports are decimal 0..65535, written without leading zeros.
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ProxyProtocolError(f"invalid port in PROXY v1 header: {text[:10]!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"port {port} out of range in PROXY v1 header")
    return port
