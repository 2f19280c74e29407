"""The IMAP connection core: every input fed whole, byte by byte and at random splits.

Unless a test says otherwise the connection is authenticated (the grammar tests); streamed
APPEND events are put back together into an ``ast.Append`` so they compare with one value."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from mailwright.proto.imap import ast
from mailwright.proto.imap.connection import (
    CONTINUE,
    NEED_DATA,
    PAUSED,
    AppendData,
    AppendEnd,
    AppendMessageEnd,
    AppendMessageStart,
    ContinuationRequest,
    IdleDone,
    ImapConnection,
    SaslResponse,
)
from mailwright.proto.imap.errors import ProtocolError

Result = object


class Collector:
    """Answers every literal with accept (or a scripted reject) and rebuilds APPENDs."""

    def __init__(self, conn: ImapConnection, reject: set[int] | None = None) -> None:
        self.conn = conn
        self.reject = reject or set()
        self.out: list[Result] = []
        self.sent: list[bytes] = []
        self.messages: list[ast.AppendMessage] = []
        self.start: AppendMessageStart | None = None
        self.data = bytearray()

    def drain(self) -> list[Result]:
        while True:
            try:
                ev = self.conn.next_event()
            except ProtocolError as exc:
                self.out.append(exc.to_bytes())
                self.messages = []
                continue
            if ev is NEED_DATA:
                return self.out
            assert ev is not PAUSED
            if isinstance(ev, ContinuationRequest):
                self.out.append(ev)
                self.sent.append(self.conn.accept_literal())
            elif isinstance(ev, AppendMessageStart):
                if ev.index in self.reject:
                    self.conn.reject_literal()
                    self.out.append(b"%s NO rejected\r\n" % ev.tag.encode())
                    self.messages = []
                    continue
                self.start = ev
                self.data = bytearray()
                self.sent.append(self.conn.accept_literal())
            elif isinstance(ev, AppendData):
                assert len(self.data) + len(ev.data) <= (self.start.size if self.start else 0)
                self.data += ev.data
            elif isinstance(ev, AppendMessageEnd):
                st = self.start
                assert st is not None and len(self.data) == st.size
                self.messages.append(
                    ast.AppendMessage(st.flags, st.internaldate, bytes(self.data), st.binary)
                )
            elif isinstance(ev, AppendEnd):
                assert self.start is not None
                if self.start.replace is not None:  # RFC 8508 REPLACE: one message
                    rset, ruid = self.start.replace
                    [msg] = self.messages
                    self.out.append(ast.Replace(ev.tag, rset, self.start.mailbox, msg, ruid))
                    self.messages = []
                    continue
                self.out.append(ast.Append(ev.tag, self.start.mailbox, tuple(self.messages)))
                self.messages = []
            else:
                self.out.append(ev)


def drain(p: ImapConnection) -> list[Result]:
    return Collector(p).drain()


def feed_chunks(chunks: list[bytes], **kw: int) -> list[Result]:
    kw.setdefault("authenticated", True)
    p = ImapConnection(**kw)  # type: ignore[arg-type]
    c = Collector(p)
    for chunk in chunks:
        p.receive_data(chunk)
        c.drain()
    return c.out


def splits(data: bytes) -> list[list[bytes]]:
    """Whole, byte by byte, and five random splits."""
    ways = [[data], [data[i : i + 1] for i in range(len(data))]]
    rnd = random.Random(len(data))
    for _ in range(5):
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(1, 6))))
        ways.append([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)])
    return ways


def parse_all(data: bytes, **kw: int) -> list[Result]:
    """Events (and error responses) of *data*, the same however it is split."""
    results = [feed_chunks(w, **kw) for w in splits(data)]
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def one(data: bytes) -> Result:
    events = [e for e in parse_all(data) if not isinstance(e, ContinuationRequest)]
    assert len(events) == 1, events
    return events[0]


def seq(*ranges: tuple[int | None, int | None]) -> ast.SequenceSet:
    return ast.SequenceSet(tuple(ast.SeqRange(a, b) for a, b in ranges))


# -- simple commands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a CAPABILITY\r\n", ast.Capability("a")),
        (b"a noop\r\n", ast.Noop("a")),
        (b"A001 LOGOUT\r\n", ast.Logout("A001")),
        (b"t.1 STARTTLS\r\n", ast.StartTLS("t.1")),
        (b"x CHECK\r\n", ast.Check("x")),
        (b"x CLOSE\r\n", ast.Close("x")),
        (b"x UNSELECT\r\n", ast.Unselect("x")),
        (b"x IDLE\r\n", ast.Idle("x")),
        (b"x NAMESPACE\r\n", ast.Namespace("x")),
        (b"x EXPUNGE\r\n", ast.Expunge("x")),
        (b"x UID EXPUNGE 3:5\r\n", ast.Expunge("x", seq((3, 5)))),
        (b"x ENABLE IMAP4rev2 condstore\r\n", ast.Enable("x", ("IMAP4REV2", "CONDSTORE"))),
        (b"x GETQUOTA \"\"\r\n", ast.GetQuota("x", "")),
        (b"x GETQUOTAROOT inbox\r\n", ast.GetQuotaRoot("x", "INBOX")),
        (b"x ID NIL\r\n", ast.Id("x", None)),
        (
            b'x ID ("name" "imaplib" "version" NIL)\r\n',
            ast.Id("x", (("name", "imaplib"), ("version", None))),
        ),
        (b"x LOGIN bob secret\r\n", ast.Login("x", "bob", "secret")),
        (b'x LOGIN "b\\\\ob" "s e\\"c"\r\n', ast.Login("x", "b\\ob", 's e"c')),
        (b"x LOGIN {3}\r\nbob {2+}\r\npw\r\n", ast.Login("x", "bob", "pw")),
        (b"x AUTHENTICATE PLAIN\r\n", ast.Authenticate("x", "PLAIN")),
        (b"x AUTHENTICATE plain =\r\n", ast.Authenticate("x", "PLAIN", b"")),
        (
            b"x AUTHENTICATE PLAIN AGJvYgBwdw==\r\n",
            ast.Authenticate("x", "PLAIN", b"\x00bob\x00pw"),
        ),
        (b"x SELECT INBOX\r\n", ast.Select("x", "INBOX")),
        (b"x EXAMINE Inbox\r\n", ast.Select("x", "INBOX", readonly=True)),
        (b'x SELECT "Sent Items" (CONDSTORE)\r\n', ast.Select("x", "Sent Items", condstore=True)),
        (b"x CREATE foo/bar\r\n", ast.Create("x", "foo/bar")),
        (b"x CREATE Drafts2 (USE (\\Drafts))\r\n", ast.Create("x", "Drafts2", ("\\Drafts",))),
        (b"x DELETE foo\r\n", ast.Delete("x", "foo")),
        (b"x RENAME foo bar\r\n", ast.Rename("x", "foo", "bar")),
        (b"x SUBSCRIBE foo\r\n", ast.Subscribe("x", "foo")),
        (b"x UNSUBSCRIBE foo\r\n", ast.Unsubscribe("x", "foo")),
        (
            b"x STATUS INBOX (MESSAGES UIDNEXT unseen SIZE HIGHESTMODSEQ)\r\n",
            ast.Status("x", "INBOX", ("MESSAGES", "UIDNEXT", "UNSEEN", "SIZE", "HIGHESTMODSEQ")),
        ),
        (b"x COPY 1:3 Trash\r\n", ast.Copy("x", seq((1, 3)), "Trash")),
        (b"x UID MOVE 7,9 Archive\r\n", ast.Move("x", seq((7, 7), (9, 9)), "Archive", uid=True)),
        (b'x LSUB "" *\r\n', ast.ListCmd("x", "", ("*",), lsub=True)),
        (b'x LIST "" %\r\n', ast.ListCmd("x", "", ("%",))),
        (b'x LIST "" "*"\r\n', ast.ListCmd("x", "", ("*",))),
        (b"x LIST foo/ b]*\r\n", ast.ListCmd("x", "foo/", ("b]*",))),
        (b"x COMPRESS deflate\r\n", ast.Compress("x", "DEFLATE")),
    ],
)
def test_parser_commands(line: bytes, expected: ast.Command) -> None:
    assert one(line) == expected


def test_parser_literal_asks_for_continuation() -> None:
    events = parse_all(b"x LOGIN {3}\r\nbob {2}\r\npw\r\n")
    assert events == [
        ContinuationRequest(3, "x", "LOGIN"),
        ContinuationRequest(2, "x", "LOGIN"),
        ast.Login("x", "bob", "pw"),
    ]


def test_parser_nonsync_literal_needs_no_continuation() -> None:
    assert parse_all(b"x LOGIN {3+}\r\nbob pw\r\n") == [ast.Login("x", "bob", "pw")]


def test_parser_literal_containing_crlf_and_braces() -> None:
    msg = b"Subject: x {5}\r\n\r\nbody\r\n"
    data = b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n"
    assert one(data) == ast.Append("a", "INBOX", (ast.AppendMessage((), None, msg),))


def test_parser_multiappend_and_literal8() -> None:
    data = (
        b'a APPEND Drafts (\\Draft $x) "05-Mar-2024 07:08:09 -0230" {2+}\r\nab'
        b" ~{3+}\r\n\x00bc\r\n"
    )
    when = datetime(2024, 3, 5, 7, 8, 9, tzinfo=timezone(-timedelta(hours=2, minutes=30)))
    assert one(data) == ast.Append(
        "a",
        "Drafts",
        (
            ast.AppendMessage(("\\Draft", "$x"), when, b"ab"),
            ast.AppendMessage((), None, b"\x00bc", binary=True),
        ),
    )


def test_parser_nul_in_plain_literal_is_bad() -> None:
    assert parse_all(b"a APPEND INBOX {3+}\r\na\x00c\r\n") == [
        b"a BAD NUL in literal (use literal8)\r\n"
    ]
    # the rest of the command is skipped, and the next command is read normally
    data = b"a APPEND INBOX {1+}\r\nx {4+}\r\na\x00cd {2+}\r\nzz\r\nb NOOP\r\n"
    assert parse_all(data) == [b"a BAD NUL in literal (use literal8)\r\n", ast.Noop("b")]


# -- sequence sets ----------------------------------------------------------------------------


def test_parser_sequence_sets() -> None:
    cmd = one(b"a FETCH 1,3:5,7:*,*:2,* FLAGS\r\n")
    assert isinstance(cmd, ast.Fetch)
    assert cmd.set == seq((1, 1), (3, 5), (7, None), (None, 2), (None, None))
    assert list(cmd.set.iter_numbers(8)) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert str(cmd.set) == "1,3:5,7:*,*:2,*"


def test_parser_saved_sequence_set() -> None:
    cmd = one(b"a UID COPY $ Trash\r\n")
    assert cmd == ast.Copy("a", ast.SequenceSet((), saved=True), "Trash", uid=True)


@pytest.mark.parametrize(
    "line",
    [b"a FETCH 0 FLAGS\r\n", b"a FETCH 1: FLAGS\r\n", b"a FETCH ,1 FLAGS\r\n",
     b"a FETCH 99999999999 FLAGS\r\n", b"a FETCH 1,,2 FLAGS\r\n"],
)
def test_parser_bad_sequence_sets(line: bytes) -> None:
    [err] = parse_all(line)
    assert isinstance(err, bytes) and err.startswith(b"a BAD ")


def test_sequence_set_contains_and_iter() -> None:
    s = seq((5, None))
    assert s.contains(9, 9)
    assert not s.contains(4, 9)
    # RFC 9051 6.4.8: N:* includes the largest even if N is larger
    assert list(seq((20, None)).iter_numbers(9)) == [9]
    assert list(seq((3, 1), (2, 4)).iter_numbers(10)) == [1, 2, 3, 4]


# -- FETCH ------------------------------------------------------------------------------------


def test_parser_fetch_macros() -> None:
    for macro in ("ALL", "FAST", "FULL"):
        cmd = one(b"a FETCH 1 " + macro.lower().encode() + b"\r\n")
        assert isinstance(cmd, ast.Fetch)
        assert cmd.items == ast.FETCH_MACROS[macro]


def test_parser_fetch_every_attribute() -> None:
    cmd = one(
        b"a UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT "
        b"ENVELOPE BODY BODYSTRUCTURE UID MODSEQ BODY[] BODY.PEEK[HEADER] BODY[TEXT]<0.10> "
        b"BODY[1.2.3] BODY[2.MIME] body.peek[3.header.fields (From \"X-A\")] "
        b"BODY[HEADER.FIELDS.NOT (Received)] BINARY[1] BINARY.PEEK[1.2]<5.6> BINARY.SIZE[] "
        b"BINARY[])\r\n"
    )
    assert isinstance(cmd, ast.Fetch) and cmd.uid
    F, B = ast.FetchAttr, ast.FetchBody
    assert cmd.items == (
        F("FLAGS"), F("INTERNALDATE"), F("RFC822.SIZE"), F("RFC822"), F("RFC822.HEADER"),
        F("RFC822.TEXT"), F("ENVELOPE"), F("BODY"), F("BODYSTRUCTURE"), F("UID"), F("MODSEQ"),
        B(ast.Section()),
        B(ast.Section((), "HEADER"), peek=True),
        B(ast.Section((), "TEXT"), ast.Partial(0, 10)),
        B(ast.Section((1, 2, 3))),
        B(ast.Section((2,), "MIME")),
        B(ast.Section((3,), "HEADER.FIELDS", ("From", "X-A")), peek=True),
        B(ast.Section((), "HEADER.FIELDS.NOT", ("Received",))),
        ast.FetchBinary((1,)),
        ast.FetchBinary((1, 2), ast.Partial(5, 6), peek=True),
        ast.FetchBinarySize(()),
        ast.FetchBinary(()),
    )


def test_parser_fetch_modifiers() -> None:
    cmd = one(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert isinstance(cmd, ast.Fetch)
    assert (cmd.changedsince, cmd.vanished) == (12345, True)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a FETCH 1 (FLAGS\r\n", b"expected a space"),
        (b"a FETCH 1 BODY[MIME]\r\n", b"expected HEADER"),
        (b"a FETCH 1 FOO\r\n", b"unknown fetch attribute FOO"),
        (b"a FETCH 1 ()\r\n", b"empty fetch attribute list"),
        (b"a FETCH 1 BODY[1]<5>\r\n", b"expected '.'"),
        (b"a FETCH 1 BODY[1]<5.0>\r\n", b"partial length must not be zero"),
        (b"a FETCH 1 FLAGS (VANISHED)\r\n", b"unknown fetch modifier VANISHED"),
        (b"a UID FETCH 1 FLAGS (VANISHED)\r\n", b"VANISHED requires CHANGEDSINCE"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", b"expected header field name"),
    ],
)
def test_parser_fetch_errors(line: bytes, message: bytes) -> None:
    [err] = parse_all(line)
    assert isinstance(err, bytes)
    assert err.startswith(b"a BAD ") and message in err, err


# -- SEARCH -----------------------------------------------------------------------------------


def test_parser_search_every_key() -> None:
    cmd = one(
        b"a SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2024 BODY y CC z DELETED DRAFT FLAGGED "
        b'FROM "a b" KEYWORD $Work NEW OLD ON "02-Feb-2024" RECENT SEEN SINCE 3-Mar-2024 '
        b"SUBJECT s TEXT t TO u UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD k UNSEEN "
        b"HEADER X-Spam yes LARGER 10 NOT SEEN OR SEEN FLAGGED SENTBEFORE 1-Jan-2000 "
        b"SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SMALLER 99 UID 1:5 2:4 (SEEN) MODSEQ 7 "
        b"OLDER 60 YOUNGER 30 $\r\n"
    )
    assert isinstance(cmd, ast.Search)
    assert cmd.charset is None and cmd.returns is None and not cmd.uid
    k = ast
    d2000 = date(2000, 1, 1)
    assert cmd.key == k.SearchAnd((
        k.SearchAll(),
        k.SearchFlag("\\Answered"),
        k.SearchHeader("Bcc", "x"),
        k.SearchDate("internal", "before", date(2024, 1, 1)),
        k.SearchText("body", "y"),
        k.SearchHeader("Cc", "z"),
        k.SearchFlag("\\Deleted"),
        k.SearchFlag("\\Draft"),
        k.SearchFlag("\\Flagged"),
        k.SearchHeader("From", "a b"),
        k.SearchFlag("$Work"),
        k.SearchAnd((k.SearchFlag("\\Recent"), k.SearchFlag("\\Seen", False))),
        k.SearchNot(k.SearchFlag("\\Recent")),
        k.SearchDate("internal", "on", date(2024, 2, 2)),
        k.SearchFlag("\\Recent"),
        k.SearchFlag("\\Seen"),
        k.SearchDate("internal", "since", date(2024, 3, 3)),
        k.SearchHeader("Subject", "s"),
        k.SearchText("text", "t"),
        k.SearchHeader("To", "u"),
        k.SearchFlag("\\Answered", False),
        k.SearchFlag("\\Deleted", False),
        k.SearchFlag("\\Draft", False),
        k.SearchFlag("\\Flagged", False),
        k.SearchFlag("k", False),
        k.SearchFlag("\\Seen", False),
        k.SearchHeader("X-Spam", "yes"),
        k.SearchSize("larger", 10),
        k.SearchNot(k.SearchFlag("\\Seen")),
        k.SearchOr(k.SearchFlag("\\Seen"), k.SearchFlag("\\Flagged")),
        k.SearchDate("sent", "before", d2000),
        k.SearchDate("sent", "on", d2000),
        k.SearchDate("sent", "since", d2000),
        k.SearchSize("smaller", 99),
        k.SearchUid(seq((1, 5))),
        k.SearchSequence(seq((2, 4))),
        k.SearchFlag("\\Seen"),
        k.SearchModSeq(7),
        k.SearchWithin("older", 60),
        k.SearchWithin("younger", 30),
        k.SearchSaved(),
    ))


def test_parser_search_charset_and_return() -> None:
    cmd = one(b"a SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET utf-8 SEEN\r\n")
    assert cmd == ast.Search(
        "a", ast.SearchFlag("\\Seen"), "utf-8", False, ("MIN", "MAX", "COUNT", "ALL", "SAVE")
    )
    cmd2 = one(b"a UID SEARCH RETURN () CHARSET UTF-8 SUBJECT {3+}\r\n\xc3\xa9t\r\n")
    assert cmd2 == ast.Search(
        "a", ast.SearchHeader("Subject", "ét"), "UTF-8", True, ()
    )


def test_parser_search_invalid_utf8_is_bad() -> None:
    [err] = parse_all(b"a SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n\xc3(\r\n")
    assert err == b"a BAD search string is not valid UTF-8\r\n"


def test_parser_search_latin1_charset() -> None:
    cmd = one(b"a SEARCH CHARSET ISO-8859-1 BODY {1+}\r\n\xe9\r\n")
    assert cmd == ast.Search("a", ast.SearchText("body", "é"), "ISO-8859-1")


def test_parser_search_unknown_charset_is_no_badcharset() -> None:
    [err] = parse_all(b"a SEARCH CHARSET KOI8-Z ALL\r\n")
    assert err == b"a NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset KOI8-Z\r\n"


def test_parser_search_nesting_is_bounded() -> None:
    line = b"a SEARCH " + b"NOT " * 200 + b"ALL\r\n"
    [err] = parse_all(line)
    assert err == b"a BAD search keys nested too deeply\r\n"
    line = b"a SEARCH " + b"(" * 200 + b"ALL" + b")" * 200 + b"\r\n"
    [err] = parse_all(line)
    assert err == b"a BAD search keys nested too deeply\r\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a SEARCH\r\n", b"expected a space"),
        (b"a SEARCH FOO\r\n", b"unknown search key FOO"),
        (b"a SEARCH SINCE 32-Jan-2024\r\n", b"invalid date"),
        (b"a SEARCH SINCE 1-Foo-2024\r\n", b"expected month name"),
        (b"a SEARCH SINCE 1-Jan-24\r\n", b"year must have four digits"),
        (b"a SEARCH OR SEEN\r\n", b"expected a space"),
        (b"a SEARCH (SEEN\r\n", b"expected a space"),
        (b"a SEARCH LARGER x\r\n", b"expected size"),
        (b"a SEARCH RETURN (FOO) ALL\r\n", b"unknown search return option FOO"),
    ],
)
def test_parser_search_errors(line: bytes, message: bytes) -> None:
    [err] = parse_all(line)
    assert isinstance(err, bytes)
    assert err.startswith(b"a BAD ") and message in err, err


# -- SORT / THREAD ----------------------------------------------------------------------------


def test_parser_sort() -> None:
    cmd = one(b"a UID SORT RETURN (COUNT) (REVERSE ARRIVAL cc DISPLAYFROM) UTF-8 SEEN UNDELETED\r\n")
    assert cmd == ast.Sort(
        "a",
        (ast.SortCriterion("ARRIVAL", True), ast.SortCriterion("CC"),
         ast.SortCriterion("DISPLAYFROM")),
        "UTF-8",
        ast.SearchAnd((ast.SearchFlag("\\Seen"), ast.SearchFlag("\\Deleted", False))),
        uid=True,
        returns=("COUNT",),
    )


def test_parser_thread() -> None:
    assert one(b"a THREAD orderedsubject UTF-8 ALL\r\n") == ast.Thread(
        "a", "ORDEREDSUBJECT", "UTF-8", ast.SearchAll()
    )
    [err] = parse_all(b"a THREAD FOO UTF-8 ALL\r\n")
    assert err == b"a BAD unsupported thread algorithm FOO\r\n"


# -- STORE ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a STORE 1 FLAGS (\\Seen)\r\n", ast.Store("a", seq((1, 1)), "replace", ("\\Seen",))),
        (b"a STORE 1 +FLAGS \\Seen foo\r\n", ast.Store("a", seq((1, 1)), "add", ("\\Seen", "foo"))),
        (b"a STORE 1 -flags.silent ()\r\n", ast.Store("a", seq((1, 1)), "remove", (), True)),
        (
            b"a UID STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted)\r\n",
            ast.Store("a", seq((1, None)), "add", ("\\Deleted",), True, True, 5),
        ),
    ],
)
def test_parser_store(line: bytes, expected: ast.Store) -> None:
    assert one(line) == expected


# -- LIST, SELECT -----------------------------------------------------------------------------


def test_parser_list_extended() -> None:
    cmd = one(
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" Foo/%) '
        b"RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"
    )
    assert cmd == ast.ListCmd(
        "a", "", ("INBOX", "Foo/%"), ("SUBSCRIBED", "RECURSIVEMATCH"),
        ("CHILDREN", "SPECIAL-USE", "STATUS"), ("MESSAGES", "UNSEEN"), extended=True,
    )


def test_parser_select_qresync() -> None:
    cmd = one(b"a SELECT INBOX (CONDSTORE QRESYNC (67890007 90060115194045000 41:211 (1:3 41:43)))\r\n")
    assert cmd == ast.Select(
        "a", "INBOX", False, True,
        ast.QResyncParams(67890007, 90060115194045000, seq((41, 211)),
                          (seq((1, 3)), seq((41, 43)))),
    )


# -- errors and limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"\r\n", []),
        (b"+ FOO\r\n", [b"* BAD expected tag (at '+ FOO')\r\n"]),
        (b"a\r\n", [b"a BAD expected a space (at end of command)\r\n"]),
        (b"a FOO\r\n", [b"a BAD unknown command FOO\r\n"]),
        (b"a UID NOOP\r\n", [b"a BAD UID NOOP is not a UID command\r\n"]),
        (b"a NOOP extra\r\n", [b"a BAD unexpected extra arguments (at ' extra')\r\n"]),
        (b"a  NOOP\r\n", [b"a BAD expected exactly one space (at ' NOOP')\r\n"]),
        (b'a LOGIN "bob\r\n', [b"a BAD unterminated quoted string\r\n"]),
        (b'a LOGIN "b\\ob" x\r\n', [b"a BAD backslash in quoted string must escape '\"' or '\\' (at 'ob\" x')\r\n"]),
        (b"a LOGIN bob\r\n", [b"a BAD expected a space (at end of command)\r\n"]),
    ],
)
def test_parser_malformed(line: bytes, expected: list[bytes]) -> None:
    assert parse_all(line) == expected


def test_parser_session_continues_after_error() -> None:
    assert parse_all(b"a FOO\r\nb NOOP\r\n") == [b"a BAD unknown command FOO\r\n", ast.Noop("b")]


def test_parser_bare_lf_accepted() -> None:
    assert parse_all(b"a NOOP\nb NOOP\n") == [ast.Noop("a"), ast.Noop("b")]


def test_parser_line_too_long_then_recovers() -> None:
    data = b"a SEARCH " + b"x" * 300 + b"\r\nb NOOP\r\n"
    assert parse_all(data, max_line=100) == [
        b"a BAD [TOOBIG] command line too long\r\n",
        ast.Noop("b"),
    ]


def test_parser_sync_literal_too_big_is_refused_without_continuation() -> None:
    data = b"a LOGIN {5000}\r\nb NOOP\r\n"
    assert parse_all(data, max_literal=100) == [
        b"a BAD [TOOBIG] literal too large\r\n",
        ast.Noop("b"),
    ]


def test_parser_nonsync_literal_too_big_is_skipped_after_login() -> None:
    data = b"a LOGIN {500+}\r\n" + b"{1+}\r\n" * 80 + b"z" * 20 + b" {3+}\r\nabc\r\nb NOOP\r\n"
    assert parse_all(data, max_literal=100) == [
        b"a BAD [TOOBIG] literal too large\r\n",
        ast.Noop("b"),
    ]


def test_parser_append_limit_is_no_toobig() -> None:
    data = b"a APPEND INBOX {500+}\r\n" + b"x" * 500 + b"\r\nb NOOP\r\n"
    assert parse_all(data, max_append=100) == [
        b"a NO [TOOBIG] message too large\r\n",
        ast.Noop("b"),
    ]


def test_parser_append_allows_bigger_literals_than_other_commands() -> None:
    msg = b"y" * 500
    data = b"a APPEND INBOX {500}\r\n" + msg + b"\r\n"
    events = parse_all(data, max_literal=100, max_append=1000, max_command=200)
    assert events[-1] == ast.Append("a", "INBOX", (ast.AppendMessage((), None, msg),))


def test_parser_reject_literal_drops_command() -> None:
    p = ImapConnection(authenticated=True)
    p.receive_data(b"a LOGIN {5}\r\n")
    assert p.next_event() == ContinuationRequest(5, "a", "LOGIN")
    assert p.next_event() is PAUSED
    p.reject_literal()
    p.receive_data(b"b NOOP\r\n")
    assert p.next_event() == ast.Noop("b")


# -- the connection core: literal rules before and after authentication (RFC 7888) -----------


def test_preauth_literal_over_4096_is_refused_without_continuation() -> None:
    data = b"a LOGIN {4097}\r\nb NOOP\r\n"
    assert parse_all(data, authenticated=False) == [
        b"a BAD [TOOBIG] literal too large\r\n",
        ast.Noop("b"),
    ]
    ok = b"a LOGIN {4096}\r\n" + b"u" * 4096 + b" pw\r\n"
    assert parse_all(ok, authenticated=False)[-1] == ast.Login("a", "u" * 4096, "pw")


def test_preauth_nonsync_literal_over_4096_closes_the_connection() -> None:
    # RFC 7888 4 (LITERAL-): BAD [TOOBIG]; the data is never read, the connection closes.
    for chunks in splits(b"a APPEND INBOX {52428800+}\r\n" + b"x" * 9000):
        p = ImapConnection()
        errors = []
        for c in chunks:
            p.receive_data(c)
            try:
                assert p.next_event() is NEED_DATA
            except ProtocolError as exc:
                errors.append(exc)
        assert [e.to_bytes() for e in errors] == [b"a BAD [TOOBIG] literal too large\r\n"]
        assert errors[0].fatal and p.closed and p.buffered == 0


def test_preauth_whole_command_is_bounded_including_literals() -> None:
    # many small literals in one command: each is allowed, their sum is not
    data = b"a ID (" + b" ".join([b"{4000+}\r\n" + b"k" * 4000] * 10) + b")\r\n"
    p = ImapConnection(preauth_command=16384)
    p.receive_data(data)
    with pytest.raises(ProtocolError) as exc:
        while p.next_event() is not NEED_DATA:
            pass
    assert exc.value.code == "TOOBIG"
    assert p._cmd == b"" and p.buffered < 16384  # nothing of it is kept


def test_whole_command_bound_after_login() -> None:
    lit = b"{900+}\r\n" + b"t" * 900
    data = b"a SEARCH " + b" ".join([b"TEXT " + lit] * 5) + b"\r\nb NOOP\r\n"
    out = parse_all(data, max_literal=1000, max_command=3000)
    assert out == [b"a BAD [TOOBIG] literal too large\r\n", ast.Noop("b")]


def test_literal_capability_follows_authentication() -> None:
    p = ImapConnection()
    assert p.literal_capability == "LITERAL-"
    p.authenticated = True
    assert p.literal_capability == "LITERAL+"


def test_append_is_streamed_not_buffered_after_login() -> None:
    msg = b"z" * 100_000
    p = ImapConnection(authenticated=True, max_literal=1000, max_command=2000)
    p.receive_data(b"a APPEND INBOX {100000}\r\n")
    start = p.next_event()
    assert isinstance(start, AppendMessageStart) and start.size == 100_000
    assert p.accept_literal() == CONTINUE
    got = bytearray()
    for i in range(0, len(msg), 4096):
        p.receive_data(msg[i : i + 4096])
        ev = p.next_event()
        assert isinstance(ev, AppendData)
        got += ev.data
        assert p.buffered == 0 and p._cmd == b""
    assert got == msg
    assert isinstance(p.next_event(), AppendMessageEnd)
    p.receive_data(b"\r\n")
    assert p.next_event() == AppendEnd("a")


def test_append_mailbox_as_literal_then_message() -> None:
    data = b"a APPEND {6}\r\nDrafts {3}\r\nabc\r\n"
    assert parse_all(data)[-1] == ast.Append("a", "Drafts", (ast.AppendMessage((), None, b"abc"),))


def test_append_rejected_before_upload_sync_and_nonsync() -> None:
    # synchronizing: no "+" is sent, the client sends nothing more of it
    p = ImapConnection(authenticated=True)
    c = Collector(p, reject={0})
    p.receive_data(b"a APPEND Sent {25000000}\r\nb NOOP\r\n")
    assert c.drain() == [b"a NO rejected\r\n", ast.Noop("b")]
    assert c.sent == []
    # non-synchronizing: the data comes regardless and is skipped, with the rest of the command
    data = b"a APPEND Sent {5+}\r\nhello {3+}\r\nabc\r\nb NOOP\r\n"
    assert parse_all(data) != []
    for chunks in splits(data):
        p = ImapConnection(authenticated=True)
        c = Collector(p, reject={0})
        for chunk in chunks:
            p.receive_data(chunk)
            c.drain()
        assert c.out == [b"a NO rejected\r\n", ast.Noop("b")]


def test_multiappend_second_message_rejected_drops_the_command() -> None:
    p = ImapConnection(authenticated=True)
    c = Collector(p, reject={1})
    p.receive_data(b"a APPEND INBOX {3}\r\n")
    c.drain()
    p.receive_data(b"abc {4}\r\n")
    assert c.drain() == [b"a NO rejected\r\n"]
    assert c.sent == [CONTINUE]
    p.receive_data(b"b NOOP\r\n")
    assert c.drain()[-1] == ast.Noop("b")


def test_append_syntax_error_after_literal_skips_the_rest() -> None:
    data = b"a APPEND INBOX {3+}\r\nabc junk {4+}\r\nabcd\r\nb NOOP\r\n"
    out = parse_all(data)
    assert out[-1] == ast.Noop("b")
    assert len(out) == 2 and isinstance(out[0], bytes) and out[0].startswith(b"a BAD ")


def test_append_needs_authentication_to_stream() -> None:
    # before login APPEND is an ordinary command under the LITERAL- limits (and the session
    # refuses it: not authenticated)
    data = b"a APPEND INBOX {3}\r\nabc\r\n"
    out = parse_all(data, authenticated=False)
    assert out[-1] == ast.Append("a", "INBOX", (ast.AppendMessage((), None, b"abc"),))


def test_parser_idle_done_and_sasl_modes() -> None:
    p = ImapConnection()
    p.receive_data(b"a IDLE\r\ndone\r\nb AUTHENTICATE PLAIN\r\nAGJvYgBwdw==\r\n*\r\n")
    assert p.next_event() == ast.Idle("a")
    p.expect_idle_done()
    assert p.next_event() == IdleDone()
    assert p.next_event() == ast.Authenticate("b", "PLAIN")
    p.expect_sasl_response()
    assert p.next_event() == SaslResponse(b"AGJvYgBwdw==")
    p.expect_sasl_response()
    assert p.next_event() == SaslResponse(None)
    assert p.next_event() is NEED_DATA


def test_parser_idle_wrong_line_is_bad() -> None:
    p = ImapConnection()
    p.receive_data(b"a IDLE\r\nb NOOP\r\n")
    assert p.next_event() == ast.Idle("a")
    p.expect_idle_done()
    assert p.next_event() == IdleDone(valid=False)


def test_parser_utf8_quoted_only_when_enabled() -> None:
    p = ImapConnection(utf8=False)
    p.receive_data('a SELECT "Entwürfe"\r\n'.encode())
    with pytest.raises(ProtocolError):
        p.next_event()
    p.utf8 = True
    p.receive_data('a SELECT "Entwürfe"\r\n'.encode())
    assert p.next_event() == ast.Select("a", "Entwürfe")


# -- UIDONLY, REPLACE, PARTIAL, SAVEDATE, MULTISEARCH, METADATA (the RFCs' examples) ----------


def _seq(text: str) -> ast.SequenceSet:
    from mailwright.proto.imap.grammar import Reader

    return Reader(text.encode()).sequence_set()


def test_replace_is_streamed_like_append() -> None:
    # RFC 8508 3.4 example shape
    data = b"A003 REPLACE 4 Drafts (\\Seen \\Draft) {12}\r\nSubject: x\r\n\r\nb NOOP\r\n"
    msg = ast.AppendMessage(("\\Seen", "\\Draft"), None, b"Subject: x\r\n")
    assert parse_all(data) == [ast.Replace("A003", _seq("4"), "Drafts", msg), ast.Noop("b")]
    out = parse_all(b"a UID REPLACE * INBOX ~{2+}\r\n\x00b\r\n")
    assert out == [ast.Replace("a", _seq("*"), "INBOX", ast.AppendMessage((), None, b"\x00b", True),
                               True)]
    # RFC 8508 6: seq-number, not a set
    [err] = parse_all(b"a UID REPLACE 2:3 INBOX {2+}\r\nab\r\n")
    assert isinstance(err, bytes) and err.startswith(b"a BAD ")
    # one message only, and no UTF8 form
    assert parse_all(b"a REPLACE 1 INBOX {2+}\r\nab {2+}\r\nab\r\nb NOOP\r\n") == [
        b"a BAD REPLACE takes one message\r\n", ast.Noop("b")]
    assert parse_all(b"a REPLACE 1 INBOX UTF8 (~{2+}\r\nab)\r\n")[0].startswith(b"a BAD ")
    # before login the whole command is parsed (and the state table refuses it)
    out = parse_all(b"a REPLACE 1 INBOX {2+}\r\nab\r\n", authenticated=False)
    assert out == [ast.Replace("a", _seq("1"), "INBOX", ast.AppendMessage((), None, b"ab"))]
    # ... with the append-message's options read as APPEND reads them, and no UTF8 form
    when = b'"01-Feb-2024 10:00:00 +0000"'
    out = parse_all(b"a REPLACE 1 INBOX (\\Draft) " + when + b" {2+}\r\nab\r\n",
                    authenticated=False)
    [append] = parse_all(b"a APPEND INBOX (\\Draft) " + when + b" {2+}\r\nab\r\n",
                         authenticated=False)
    assert isinstance(append, ast.Append)
    assert out == [ast.Replace("a", _seq("1"), "INBOX", append.messages[0])]
    [err] = parse_all(b"a REPLACE 1 INBOX UTF8 (~{2+}\r\nab)\r\n", authenticated=False)
    assert isinstance(err, bytes) and err.startswith(b"a BAD ")
    # APPEND is no UID command (RFC 9051 6.4.9), streamed or not
    for authenticated in (True, False):
        [err] = parse_all(b"a UID APPEND INBOX {2+}\r\nab\r\n", authenticated=authenticated)
        assert err == b"a BAD UID APPEND is not a UID command\r\n"


def test_parser_partial_return_and_fetch_modifier() -> None:
    # RFC 9394 3 and 4
    [cmd] = parse_all(b"A01 UID SEARCH RETURN (PARTIAL 1:500) UNDELETED\r\n")
    assert isinstance(cmd, ast.Search) and cmd.returns == ("PARTIAL",)
    assert cmd.partial == ast.PartialRange(1, 500)
    [cmd] = parse_all(b"A02 SEARCH RETURN (COUNT PARTIAL -1:-100) ALL\r\n")
    assert isinstance(cmd, ast.Search) and cmd.partial == ast.PartialRange(-1, -100)
    [cmd] = parse_all(b"A03 SEARCH RETURN (PARTIAL 10:1) ALL\r\n")
    assert isinstance(cmd, ast.Search) and cmd.partial == ast.PartialRange(1, 10)
    [cmd] = parse_all(b"A04 UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)\r\n")
    assert isinstance(cmd, ast.Fetch) and cmd.partial == ast.PartialRange(-1, -30)
    [cmd] = parse_all(b"A05 UID SORT RETURN (PARTIAL 1:2) (DATE) UTF-8 ALL\r\n")
    assert isinstance(cmd, ast.Sort) and cmd.partial == ast.PartialRange(1, 2)
    for bad in (b"RETURN (PARTIAL 1:2 ALL)", b"RETURN (PARTIAL 0:2)", b"RETURN (PARTIAL -1:2)",
                b"RETURN (PARTIAL 1:-2)", b"RETURN (PARTIAL)", b"RETURN (COUNT COUNT)"):
        [err] = parse_all(b"a SEARCH " + bad + b" ALL\r\n")
        assert isinstance(err, bytes) and err.startswith(b"a BAD "), (bad, err)
    [err] = parse_all(b"a FETCH 1 (FLAGS) (PARTIAL 1:2)\r\n")
    assert isinstance(err, bytes) and err.startswith(b"a BAD ")
    assert ast.PartialRange(-1, -2).pick([1, 2, 3]) == [2, 3]
    assert ast.PartialRange(2, 5).pick([1, 2, 3]) == [2, 3]
    assert ast.PartialRange(-4, -9).pick([1, 2, 3]) == []


def test_parser_savedate_items_and_keys() -> None:
    # RFC 8514 4.1, 4.2
    [cmd] = parse_all(b"a FETCH 1 (SAVEDATE)\r\n")
    assert cmd == ast.Fetch("a", _seq("1"), (ast.FetchAttr("SAVEDATE"),))
    [cmd] = parse_all(b"a SEARCH SAVEDBEFORE 1-Feb-2024 SAVEDON 2-Feb-2024 SAVEDSINCE "
                      b"3-Feb-2024 SAVEDATESUPPORTED\r\n")
    assert isinstance(cmd, ast.Search) and cmd.key == ast.SearchAnd((
        ast.SearchDate("saved", "before", date(2024, 2, 1)),
        ast.SearchDate("saved", "on", date(2024, 2, 2)),
        ast.SearchDate("saved", "since", date(2024, 2, 3)),
        ast.SearchSaveDateSupported(),
    ))


def test_parser_multisearch() -> None:
    # RFC 7377 2 examples
    [cmd] = parse_all(b'tag ESEARCH IN (mailboxes "folder1" subtree-one "folder2") '
                      b'RETURN (MIN MAX COUNT) UNSEEN\r\n')
    assert cmd == ast.MultiSearch(
        "tag", (("MAILBOXES", ("folder1",)), ("SUBTREE-ONE", ("folder2",))),
        ast.SearchFlag("\\Seen", False), None, ("MIN", "MAX", "COUNT"))
    [cmd] = parse_all(b"t ESEARCH IN (personal subtree (a b)) CHARSET UTF-8 TEXT x\r\n")
    assert isinstance(cmd, ast.MultiSearch)
    assert cmd.sources == (("PERSONAL", ()), ("SUBTREE", ("a", "b")))
    [cmd] = parse_all(b"t ESEARCH ALL\r\n")
    assert cmd == ast.MultiSearch("t", (), ast.SearchAll())
    for bad in (b"IN () ALL", b"IN (nowhere) ALL", b"IN (subtree) ALL",
                b"IN (personal) RETURN (SAVE) ALL"):
        [err] = parse_all(b"t ESEARCH " + bad + b"\r\n")
        assert isinstance(err, bytes) and err.startswith(b"t BAD "), (bad, err)


def test_parser_metadata_commands() -> None:
    # RFC 5464 4.2, 4.3 examples; entry names are case-insensitive (3.2)
    [cmd] = parse_all(b'a GETMETADATA "" /private/comment\r\n')
    assert cmd == ast.GetMetadata("a", "", ("/private/comment",))
    [cmd] = parse_all(b"a GETMETADATA (MAXSIZE 1024 DEPTH Infinity) INBOX "
                      b"(/Shared/Comment /private/comment)\r\n")
    assert cmd == ast.GetMetadata("a", "INBOX", ("/shared/comment", "/private/comment"), 1024,
                                  "infinity")
    [cmd] = parse_all(b'a SETMETADATA INBOX (/private/comment {14+}\r\nMy new comment '
                      b'/shared/x NIL /shared/y ~{2+}\r\n\x00z)\r\n')
    assert isinstance(cmd, ast.SetMetadata)
    assert cmd.entries == (("/private/comment", b"My new comment"), ("/shared/x", None),
                           ("/shared/y", b"\x00z"))
    [cmd] = parse_all(b'a LIST "" "*" RETURN (METADATA (/shared/comment))\r\n')
    assert isinstance(cmd, ast.ListCmd) and cmd.metadata == ("/shared/comment",)
    for bad in (b'SETMETADATA INBOX (/foo "x")', b'SETMETADATA INBOX (/shared "x")',
                b"SETMETADATA INBOX (/private/a/ NIL)", b"SETMETADATA INBOX (/private/a%b NIL)",
                b"GETMETADATA (DEPTH 2) INBOX /private/x", b"GETMETADATA INBOX ()",
                b"SETMETADATA INBOX (/private/x)", b"SETMETADATA INBOX (/private/x foo)"):
        [err] = parse_all(b"a " + bad + b"\r\n")
        assert isinstance(err, bytes) and err.startswith(b"a BAD "), (bad, err)


def test_uidonly_check_of_parsed_commands() -> None:
    # RFC 9586 3: sequence numbers anywhere in a command are refused
    from mailwright.proto.imap.uidonly import check_uid_only

    for line in (b"a FETCH 1 FLAGS", b"a STORE 1 FLAGS ()", b"a SEARCH ALL", b"a COPY 1 x",
                 b"a MOVE 1 x", b"a SORT (DATE) UTF-8 ALL", b"a THREAD REFERENCES UTF-8 ALL",
                 b"a UID SEARCH 1:*", b"a UID SEARCH OR UID 1 NOT 2", b"a ESEARCH IN (personal) 1"):
        [cmd] = parse_all(line + b"\r\n")
        assert isinstance(cmd, ast.Command.__args__)  # type: ignore[attr-defined]
        with pytest.raises(ProtocolError) as exc:
            check_uid_only(cmd)  # type: ignore[arg-type]
        assert exc.value.code == "UIDREQUIRED"
    for line in (b"a UID FETCH 1:* FLAGS", b"a UID SEARCH UID 1:* $", b"a NOOP",
                 b"a ESEARCH IN (personal) UID 1:5"):
        [cmd] = parse_all(line + b"\r\n")
        check_uid_only(cmd)  # type: ignore[arg-type]


def test_parser_context_update_and_cancelupdate() -> None:
    # RFC 5267 4.1, 4.2
    [cmd] = parse_all(b"A285 UID SORT RETURN (UPDATE) (DATE) UTF-8 UNDELETED\r\n")
    assert isinstance(cmd, ast.Sort) and cmd.returns == ("UPDATE",)
    [cmd] = parse_all(b"A286 SEARCH RETURN (CONTEXT UPDATE MIN) ALL\r\n")
    assert isinstance(cmd, ast.Search) and cmd.returns == ("CONTEXT", "UPDATE", "MIN")
    [cmd] = parse_all(b'A287 CANCELUPDATE "A285" "A286"\r\n')
    assert cmd == ast.CancelUpdate("A287", ("A285", "A286"))
    [err] = parse_all(b"A288 CANCELUPDATE\r\n")
    assert isinstance(err, bytes) and err.startswith(b"A288 BAD ")
