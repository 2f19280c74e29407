"""PROXY protocol v1/v2 parser: valid headers, every split, and clear errors for bad ones."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.proto.proxy import (
    NEED_DATA,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyParser,
    ProxyProtocolError,
)


def v2(
    command: int = 1,
    fam: int = 0x11,
    addresses: bytes = b"",
    tlvs: bytes = b"",
    version: int = 2,
) -> bytes:
    block = addresses + tlvs
    return V2_SIGNATURE + bytes([(version << 4) | command, fam]) + struct.pack("!H", len(block)) + block


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (
        ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def parse(data: bytes, **kwargs: object) -> tuple[ProxyHeader, bytes]:
    parser = ProxyParser(**kwargs)  # type: ignore[arg-type]
    parser.receive_data(data)
    event = parser.next_event()
    assert isinstance(event, ProxyHeader)
    return event, parser.trailing_data


def parse_bytewise(data: bytes) -> tuple[ProxyHeader, bytes]:
    parser = ProxyParser()
    for i in range(len(data)):
        event = parser.next_event()
        assert event is NEED_DATA
        parser.receive_data(data[i : i + 1])
    event = parser.next_event()
    assert isinstance(event, ProxyHeader)
    return event, parser.trailing_data


VALID = [
    (
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n",
        ProxyHeader(1, False, ("192.0.2.1", 56324), ("198.51.100.2", 25)),
    ),
    (
        b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n",
        ProxyHeader(1, False, ("2001:db8::1", 65535), ("2001:db8::2", 0)),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, False, None, None)),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyHeader(1, False, None, None)),
    (
        v2(addresses=inet4("203.0.113.7", "10.0.0.1", 40000, 143)),
        ProxyHeader(2, False, ("203.0.113.7", 40000), ("10.0.0.1", 143)),
    ),
    (
        v2(fam=0x21, addresses=inet6("2001:db8::7", "::1", 1, 995)),
        ProxyHeader(2, False, ("2001:db8::7", 1), ("::1", 995)),
    ),
    (
        v2(addresses=inet4("1.2.3.4", "5.6.7.8", 1, 2), tlvs=b"\x01\x00\x02h2\x04\x00\x00"),
        ProxyHeader(2, False, ("1.2.3.4", 1), ("5.6.7.8", 2), ((1, b"h2"), (4, b""))),
    ),
    (v2(command=0, fam=0x00), ProxyHeader(2, True, None, None)),
    (v2(command=0, fam=0x11, addresses=inet4("1.2.3.4", "5.6.7.8", 1, 2)), ProxyHeader(2, True, None, None)),
    (v2(fam=0x00), ProxyHeader(2, False, None, None)),
    (v2(fam=0x31, addresses=b"/sock".ljust(216, b"\x00")), ProxyHeader(2, False, None, None)),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_proxy_valid_headers_whole_and_bytewise(data: bytes, expected: ProxyHeader) -> None:
    assert parse(data + b"EHLO x\r\n") == (expected, b"EHLO x\r\n")
    assert parse_bytewise(data) == (expected, b"")


INVALID = [
    (b"GET / HTTP/1.0\r\n", "does not start"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "CRLF"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown PROXY v1 protocol"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "4 address fields"),
    (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "4 address fields"),
    (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "invalid address"),
    (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "invalid address"),
    (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "does not match"),
    (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "does not match"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "out of range"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "invalid port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "invalid port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 \xd9\xa1 2\r\n", "not ASCII"),
    (b"PROXY " + b"A" * 120, "longer than 107"),
    (v2(version=1), "version"),
    (v2(command=2), "unknown PROXY v2 command"),
    (v2(fam=0x41, addresses=b"x" * 12), "address family"),
    (v2(fam=0x13, addresses=b"x" * 12), "transport"),
    (v2(fam=0x12, addresses=inet4("1.2.3.4", "5.6.7.8", 1, 2)), "datagram"),
    (v2(fam=0x11, addresses=b"\x01\x02\x03"), "truncated"),
    (v2(fam=0x21, addresses=b"\x00" * 12), "truncated"),
    (v2(addresses=inet4("1.2.3.4", "5.6.7.8", 1, 2), tlvs=b"\x01\x00"), "TLV header"),
    (v2(addresses=inet4("1.2.3.4", "5.6.7.8", 1, 2), tlvs=b"\x01\x00\x09abc"), "overruns"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff", "exceeds the limit"),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_proxy_invalid_headers_raise_clear_errors(data: bytes, message: str) -> None:
    parser = ProxyParser()
    parser.receive_data(data)
    with pytest.raises(ProxyProtocolError, match=message):
        parser.next_event()


def test_proxy_versions_can_be_refused() -> None:
    parser = ProxyParser(allow_v1=False)
    parser.receive_data(b"PROXY UNKNOWN\r\n")
    with pytest.raises(ProxyProtocolError, match="v1"):
        parser.next_event()
    parser = ProxyParser(allow_v2=False)
    parser.receive_data(V2_SIGNATURE[:3])
    with pytest.raises(ProxyProtocolError, match="v2"):
        parser.next_event()


def test_proxy_v2_size_limit_is_a_constructor_argument() -> None:
    data = v2(addresses=inet4("1.2.3.4", "5.6.7.8", 1, 2), tlvs=b"\x30\x00\x64" + b"x" * 100)
    assert parse(data)[0].tlvs == ((0x30, b"x" * 100),)
    parser = ProxyParser(max_v2_length=64)
    parser.receive_data(data[:16])
    with pytest.raises(ProxyProtocolError, match="exceeds"):
        parser.next_event()


def test_proxy_partial_prefix_waits_and_errors_early() -> None:
    parser = ProxyParser()
    parser.receive_data(b"PRO")
    assert parser.next_event() is NEED_DATA
    parser = ProxyParser()
    parser.receive_data(b"PRX")
    with pytest.raises(ProxyProtocolError):
        parser.next_event()
    parser = ProxyParser()
    assert parser.next_event() is NEED_DATA


def test_proxy_trailing_data_before_header_is_an_error() -> None:
    with pytest.raises(ProxyProtocolError):
        _ = ProxyParser().trailing_data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_proxy_fuzz_never_crashes(data: bytes) -> None:
    parser = ProxyParser()
    parser.receive_data(data)
    try:
        event = parser.next_event()
    except ProxyProtocolError:
        return
    assert event is NEED_DATA or isinstance(event, ProxyHeader)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([d for d, _ in VALID]), st.binary(max_size=30))
def test_proxy_fuzz_mutations_never_crash(data: bytes, noise: bytes) -> None:
    for i in range(0, len(data), max(1, len(data) // 8)):
        parser = ProxyParser()
        parser.receive_data(data[:i] + noise + data[i:])
        try:
            parser.next_event()
        except ProxyProtocolError:
            pass
