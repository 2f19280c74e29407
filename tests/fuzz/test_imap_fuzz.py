"""Hypothesis fuzz of the IMAP core: no exception other than ProtocolError escapes, every
error response is one well-formed line, and the parser always recovers."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.parser import NEED_DATA, ContinuationRequest, ImapParser

_WELL_FORMED = re.compile(rb"\A(\* |[!#$&'\-./0-9:-Z\]^_`a-z|}~,;<=>?@\[]+ )(OK|NO|BAD)( \[[^\r\n\]]+\])? [^\r\n]*\r\n\Z")

TOKENS = [
    b"a", b"A1", b"UID", b"FETCH", b"SEARCH", b"STORE", b"LOGIN", b"APPEND", b"SELECT", b"LIST",
    b"SORT", b"THREAD", b"STATUS", b"ID", b"ENABLE", b"AUTHENTICATE", b"INBOX", b"NIL", b"(",
    b")", b"[", b"]", b"<", b">", b".", b"*", b"$", b"%", b":", b",", b"1", b"0", b"4294967296",
    b"BODY", b"BODY.PEEK", b"HEADER.FIELDS", b"MIME", b"TEXT", b"OR", b"NOT", b"ALL", b"CHARSET",
    b"UTF-8", b"RETURN", b"FLAGS", b"+FLAGS.SILENT", b"\\Seen", b'"', b'"x"', b"\\", b"{3}",
    b"{2+}", b"~{1}", b"{99999999999999999999}", b"\r\n", b"\n", b" ", b"\x00", b"\xff",
    b"\xc3\xa9", b"1-Jan-2020", b'" 1-Jan-2020 00:00:00 +0000"', b"CHANGEDSINCE", b"QRESYNC",
]

commands = st.lists(st.sampled_from(TOKENS), max_size=30).map(b" ".join)
raw = st.binary(max_size=300)


def _run(data: bytes, cuts: list[int]) -> None:
    p = ImapParser(max_line=200, max_literal=50, max_append=100)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    for chunk in [*chunks, b"\r\nz NOOP\r\n"]:
        p.receive_data(chunk)
        while True:
            try:
                ev = p.next_event()
            except ProtocolError as exc:
                assert _WELL_FORMED.match(exc.to_bytes()), exc.to_bytes()
                continue
            if ev is NEED_DATA:
                break
            assert isinstance(ev, (ContinuationRequest, *ast.Command.__args__))  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands, st.lists(st.integers(min_value=0, max_value=10_000), max_size=5))
def test_imap_fuzz_token_soup(data: bytes, cuts: list[int]) -> None:
    _run(data + b"\r\n", cuts)


@settings(max_examples=300, deadline=None)
@given(raw, st.lists(st.integers(min_value=0, max_value=10_000), max_size=5))
def test_imap_fuzz_raw_bytes(data: bytes, cuts: list[int]) -> None:
    _run(data, cuts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=20).map(b" ".join))
def test_imap_fuzz_parser_always_recovers(junk: bytes) -> None:
    # Whatever came before, once the junk command is over a valid command is understood.
    p = ImapParser(max_line=200, max_literal=50)
    p.receive_data(b"j " + junk.replace(b"{", b"(").replace(b"\n", b" ") + b"\r\nz NOOP\r\n")
    events = []
    while True:
        try:
            ev = p.next_event()
        except ProtocolError:
            continue
        if ev is NEED_DATA:
            break
        events.append(ev)
    assert events[-1] == ast.Noop("z")
