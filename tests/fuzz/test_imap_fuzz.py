"""Hypothesis fuzz of the IMAP connection core (proto/imap/connection.py): no exception other
than ProtocolError escapes, every error response is one well-formed line, the core always
recovers, the same input gives the same events whole, byte by byte and at random splits
(before and after authentication, with literals accepted or refused), and what it holds in
memory stays within its limits whatever the input."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.proto.imap import ast
from mailwright.proto.imap.connection import (
    NEED_DATA,
    PAUSED,
    AppendData,
    AppendMessageStart,
    ContinuationRequest,
    ImapConnection,
)
from mailwright.proto.imap.errors import ProtocolError

_WELL_FORMED = re.compile(rb"\A(\* |[!#$&'\-./0-9:-Z\]^_`a-z|}~,;<=>?@\[]+ )(OK|NO|BAD)( \[[^\r\n\]]+\])? [^\r\n]*\r\n\Z")

TOKENS = [
    b"a", b"A1", b"UID", b"FETCH", b"SEARCH", b"STORE", b"LOGIN", b"APPEND", b"SELECT", b"LIST",
    b"SORT", b"THREAD", b"STATUS", b"ID", b"ENABLE", b"AUTHENTICATE", b"INBOX", b"NIL", b"(",
    b")", b"[", b"]", b"<", b">", b".", b"*", b"$", b"%", b":", b",", b"1", b"0", b"4294967296",
    b"BODY", b"BODY.PEEK", b"HEADER.FIELDS", b"MIME", b"TEXT", b"OR", b"NOT", b"ALL", b"CHARSET",
    b"UTF-8", b"RETURN", b"FLAGS", b"+FLAGS.SILENT", b"\\Seen", b'"', b'"x"', b"\\", b"{3}",
    b"{2+}", b"~{1}", b"{99999999999999999999}", b"\r\n", b"\n", b" ", b"\x00", b"\xff",
    b"\xc3\xa9", b"1-Jan-2020", b'" 1-Jan-2020 00:00:00 +0000"', b"CHANGEDSINCE", b"QRESYNC",
    b"{45+}", b"{60}", b"{0}", b"{120+}", b"UTF8 (~{2+}", b"a APPEND INBOX {4+}\r\nabcd",
    b"a APPEND INBOX (\\Seen) {3}\r\nxyz", b"a APPEND {5}\r\nINBOX {1}\r\nq", b"xx{2+}\r\nab",
    b"a APPEND INBOX {3+}\r\na\x00c", b"a APPEND INBOX {2}\r\nab ~{2+}\r\n\x00",
    # UIDONLY, REPLACE, PARTIAL, SAVEDATE, MULTISEARCH, METADATA, LIST-METADATA
    b"REPLACE", b"UIDONLY", b"PARTIAL", b"1:100", b"-1:-100", b"-5:3", b"SAVEDATE",
    b"SAVEDBEFORE", b"SAVEDATESUPPORTED", b"ESEARCH", b"IN", b"(personal)",
    b"(mailboxes (INBOX Sent) subtree-one x)", b"GETMETADATA", b"SETMETADATA", b"(DEPTH",
    b"infinity)", b"(MAXSIZE", b"/private/comment", b"/shared/vendor/x", b"/shared//x",
    b"METADATA", b"UPDATE", b"CONTEXT", b"CANCELUPDATE", b'"a1"', b"a REPLACE 1 INBOX {4+}\r\nabcd", b"a UID REPLACE 2:3 INBOX (\\Seen) {3}\r\nxyz",
    b"a REPLACE 1 {5}\r\nINBOX {1}\r\nq", b"a REPLACE 1 INBOX {2+}\r\nab {2+}\r\nab",
    b"a REPLACE 1 INBOX UTF8 (~{2+}\r\nab)", b"a SETMETADATA INBOX (/private/x ~{2+}\r\n\x00a)",
]

commands = st.lists(st.sampled_from(TOKENS), max_size=30).map(b" ".join)
raw = st.binary(max_size=300)

#: small limits so that the fuzzer reaches every one of them
LIMITS = {"max_line": 200, "max_literal": 50, "max_command": 300, "max_append": 100,
          "preauth_literal": 40, "preauth_command": 250, "max_append_messages": 4}


def _drive(chunks: list[bytes], *, authenticated: bool, decisions: list[bool]) -> list[object]:
    """Feed *chunks*, answer every literal from *decisions* (cycled; accept when empty); the
    events and responses, with APPEND data joined so that splits compare equal."""
    p = ImapConnection(authenticated=authenticated, **LIMITS)
    out: list[object] = []
    k = 0
    left = 0
    for chunk in [*chunks, b"\r\nz NOOP\r\n"]:
        p.receive_data(chunk)
        while True:
            try:
                ev = p.next_event()
            except ProtocolError as exc:
                assert _WELL_FORMED.match(exc.to_bytes()), exc.to_bytes()
                if out and isinstance(out[-1], bytearray):
                    out.pop()  # data of a message the error aborts (a NUL seen late in it)
                out.append(exc.to_bytes())
                left = 0
                if exc.fatal:
                    assert p.closed and p.buffered == 0
                continue
            if ev is NEED_DATA:
                break
            assert ev is not PAUSED
            if isinstance(ev, ContinuationRequest | AppendMessageStart):
                accept = decisions[k % len(decisions)] if decisions else True
                k += 1
                out.append((ev, accept))
                if accept:
                    p.accept_literal()
                    if isinstance(ev, AppendMessageStart):
                        assert authenticated and ev.size <= LIMITS["max_append"]
                        left = ev.size
                else:
                    p.reject_literal()
            elif isinstance(ev, AppendData):
                assert 0 < len(ev.data) <= left  # never more than the literal announced
                left -= len(ev.data)
                if out and isinstance(out[-1], bytearray):
                    out[-1] += ev.data
                else:
                    out.append(bytearray(ev.data))
            else:
                out.append(ev)
        # bounded memory: what the core keeps is within its limits, literals included
        limit = LIMITS["max_command"] if authenticated else LIMITS["preauth_command"]
        assert len(p._cmd) <= limit
        assert p.buffered <= LIMITS["max_line"] + 1  # a partial line and its CR
    return [bytes(o) if isinstance(o, bytearray) else o for o in out]


def _splits(data: bytes, cuts: list[int]) -> list[list[bytes]]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [
        [data],
        [data[i : i + 1] for i in range(len(data))],
        [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)],
    ]


def _run(data: bytes, cuts: list[int], decisions: list[bool] | None = None) -> None:
    for authenticated in (False, True):
        results = [
            _drive(chunks, authenticated=authenticated, decisions=decisions or [])
            for chunks in _splits(data, cuts)
        ]
        assert results[1] == results[0], "byte by byte differs from whole input"
        assert results[2] == results[0], "random split differs from whole input"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands, st.lists(st.integers(min_value=0, max_value=10_000), max_size=5),
       st.lists(st.booleans(), max_size=4))
def test_imap_fuzz_token_soup(data: bytes, cuts: list[int], decisions: list[bool]) -> None:
    _run(data + b"\r\n", cuts, decisions)


@settings(max_examples=200, deadline=None)
@given(raw, st.lists(st.integers(min_value=0, max_value=10_000), max_size=5))
def test_imap_fuzz_raw_bytes(data: bytes, cuts: list[int]) -> None:
    _run(data, cuts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=20).map(b" ".join), st.booleans())
def test_imap_fuzz_parser_always_recovers(junk: bytes, authenticated: bool) -> None:
    # Whatever came before, once the junk command is over a valid command is understood.
    p = ImapConnection(authenticated=authenticated, **LIMITS)
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


# -- the whole session ------------------------------------------------------------------------

SESSION_COMMANDS = [
    b"NOOP", b"CAPABILITY", b"SELECT INBOX", b"EXAMINE INBOX", b"SELECT Trash", b"UNSELECT",
    b"CLOSE", b"EXPUNGE", b"UID EXPUNGE 1:*", b"CHECK", b"ENABLE QRESYNC", b"ENABLE IMAP4rev2",
    b"ENABLE UTF8=ACCEPT", b"ENABLE CONDSTORE", b'LIST "" *', b'LIST "" %', b'LSUB "" *',
    b'LIST (SUBSCRIBED RECURSIVEMATCH) "" * RETURN (STATUS (MESSAGES SIZE))', b"NAMESPACE",
    b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)", b"CREATE Fuzz/a",
    b"DELETE Fuzz/a", b"RENAME Fuzz Fuzz2", b"RENAME INBOX Old", b"SUBSCRIBE Fuzz",
    b"GETQUOTAROOT INBOX", b"ID NIL", b"FETCH 1:* (FLAGS UID ENVELOPE BODYSTRUCTURE)",
    b"FETCH 1 (BODY[] BODY.PEEK[1.MIME] BINARY[1] BINARY.SIZE[2] RFC822.TEXT)",
    b"FETCH * BODY[HEADER.FIELDS (From)]<0.5>", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
    b"UID FETCH 2:4 MODSEQ", b"FETCH $ FLAGS", b"STORE 1:* +FLAGS (\\Deleted)",
    b"STORE 1 -FLAGS.SILENT (\\Seen)", b"UID STORE 1:* (UNCHANGEDSINCE 2) FLAGS ($x)",
    b"COPY 1:2 Trash", b"MOVE 1 Archive", b"UID MOVE 1:* Junk", b"UID COPY 9 Nowhere",
    b"SEARCH RETURN (SAVE) SEEN", b"SEARCH OR SEEN NOT FLAGGED", b"UID SEARCH TEXT hello",
    b"SEARCH CHARSET UTF-8 SUBJECT message", b"SEARCH MODSEQ 3", b"SEARCH $",
    b"SORT (REVERSE DATE) UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL", b"APPEND INBOX {12+}\r\nSubject: x\r\n",
    b"APPEND INBOX (\\Seen) {5}\r\nhello", b"FETCH 99 FLAGS", b"SELECT INBOX (QRESYNC (1 1))",
    b"ENABLE UIDONLY", b"UID FETCH 1:* (FLAGS SAVEDATE) (PARTIAL -1:-2)",
    b"UID SEARCH RETURN (PARTIAL 1:2 COUNT) SAVEDSINCE 1-Jan-2020", b"SEARCH SAVEDATESUPPORTED",
    b"UID SORT RETURN (PARTIAL -1:-1) (ARRIVAL) UTF-8 ALL", b"ESEARCH IN (personal) ALL",
    b"ESEARCH IN (subtree Fuzz inboxes) RETURN (MIN COUNT) SEEN", b"ESEARCH RETURN (SAVE) ALL",
    b"REPLACE 1 INBOX {12+}\r\nSubject: y\r\n", b"UID REPLACE 2 Drafts (\\Draft) {5}\r\nhello",
    b"REPLACE 1 INBOX {2+}\r\nab {2+}\r\nab",
    b'SETMETADATA INBOX (/private/comment "x" /shared/vendor/a NIL)',
    b'SETMETADATA "" (/shared/admin "x")', b"GETMETADATA (DEPTH infinity MAXSIZE 1) INBOX /private",
    b'GETMETADATA "" (/private/comment /shared/comment)',
    b'LIST "" * RETURN (METADATA (/private/comment))', b"DELETE Fuzz2",
    b"UID SEARCH RETURN (UPDATE) UNSEEN", b"UID SORT RETURN (UPDATE COUNT) (SIZE) UTF-8 ALL",
    b'CANCELUPDATE "t1" "t2"', b"SEARCH RETURN (CONTEXT UPDATE) ALL",
]


def _session_fuzz(blocks: list[bytes]) -> None:
    import asyncio
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imapd"))
    from imap_harness import imap_server, message  # type: ignore[import-not-found]

    async def run() -> None:
        with tempfile.TemporaryDirectory() as d:
            async with imap_server(Path(d)) as srv:
                acc = await srv.add_user()
                for i in range(3):
                    await srv.deliver(acc, message(i))
                c = srv.client()
                await c.login()
                data = b"".join(b"t%d %s\r\n" % (i, b) for i, b in enumerate(blocks))
                c.send(data)
                c.t.incoming.put_nowait(b"")  # EOF
                result = await asyncio.wait_for(c.task, 30)
                assert result in ("eof", "logout", "closed")
                out = bytes(c.t.output)
                assert b"SERVERBUG" not in out, out
                assert b"Traceback" not in out

    asyncio.run(run())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(SESSION_COMMANDS), commands), max_size=12))
def test_imap_fuzz_session_no_internal_errors(blocks: list[bytes]) -> None:
    _session_fuzz(blocks)
