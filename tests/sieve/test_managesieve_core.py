"""The ManageSieve framing core: each input fed whole, byte by byte and in two halves."""

from __future__ import annotations

import pytest

from mailwright.proto import managesieve as ms


def events(data: bytes, chunks: list[bytes], **limits: int) -> list[object]:
    conn = ms.ServerConnection(**limits)
    out: list[object] = []
    pending = list(chunks)
    while True:
        try:
            ev = conn.next_event()
        except ms.PeerError as exc:
            out.append(exc.reply)
            if exc.fatal:
                return out
            continue
        if ev is ms.NEED_DATA:
            conn.receive_data(pending.pop(0) if pending else b"")
            continue
        if isinstance(ev, ms.ConnectionClosed):
            return out
        out.append(ev)


def all_splits(data: bytes, **limits: int) -> list[object]:
    whole = events(data, [data], **limits)
    assert events(data, [data[i : i + 1] for i in range(len(data))], **limits) == whole
    half = len(data) // 2
    assert events(data, [data[:half], data[half:]], **limits) == whole
    return whole


def test_managesieve_core_commands_strings_literals_numbers() -> None:
    data = (b'PUTSCRIPT "my \\"script\\"" {12+}\r\nkeep;\r\nstop;\r\n'
            b"havespace {1}\r\nx 99\r\nLOGOUT\r\n")
    assert all_splits(data) == [
        ms.Command("PUTSCRIPT", ('my "script"', "keep;\r\nstop;")),
        ms.Command("HAVESPACE", ("x", 99)),
        ms.Command("LOGOUT", ()),
    ]


def test_managesieve_core_literal_longer_than_a_line_is_fine() -> None:
    script = b"#" + b"x" * 5000  # one long line inside the literal
    data = b'PUTSCRIPT "a" {%d+}\r\n' % len(script) + script + b"\r\nNOOP\r\n"
    assert all_splits(data, max_line=100, max_literal=10000) == [
        ms.Command("PUTSCRIPT", ("a", script.decode())), ms.Command("NOOP", ())]


def test_managesieve_core_oversized_literal_skipped_once() -> None:
    data = b'PUTSCRIPT "a" {500+}\r\n' + b"y" * 500 + b"\r\nNOOP\r\n"
    assert all_splits(data, max_literal=100) == [
        ms.no("Literal too large", "QUOTA/MAXSIZE"), ms.Command("NOOP", ())]


@pytest.mark.parametrize("bad", [b'"open\nx"', b"{x}", b"\x00", b"12ab", b'"\xff"'])
def test_managesieve_core_bad_lines_answered_once(bad: bytes) -> None:
    out = all_splits(bad + b"\r\nNOOP\r\n")
    assert len(out) == 2 and isinstance(out[0], ms.Reply) and out[0].status == "NO"
    assert out[1] == ms.Command("NOOP", ())


def test_managesieve_core_long_line_ends_the_session() -> None:
    out = all_splits(b'NOOP "' + b"z" * 300 + b'"\r\n', max_line=100)
    assert out == [ms.bye("Line too long")]


def test_managesieve_core_sasl_response_mode() -> None:
    conn = ms.ServerConnection()
    conn.receive_data(b'AUTHENTICATE "PLAIN"\r\n"AGEAYg=="\r\n')
    assert conn.next_event() == ms.Command("AUTHENTICATE", ("PLAIN",))
    conn.expect_sasl()
    assert conn.next_event() == ms.SaslResponse("AGEAYg==")


def test_managesieve_replies_encode() -> None:
    assert ms.no("x", "QUOTA/MAXSIZE").encode() == b'NO (QUOTA/MAXSIZE) "x"\r\n'
    assert ms.ok().encode() == b"OK\r\n"
    assert ms.string('a"b') == b'"a\\"b"'
    assert ms.string("a\r\nb") == b"{4}\r\na\r\nb"
