"""The NOTIFY command's grammar (RFC 5465 8) through the sans-I/O connection core: each command
fed whole, byte by byte and at random splits; malformed ones are BAD, unsupported events
NO [BADEVENT], oversized ones NO [LIMIT]."""

from __future__ import annotations

import random

import pytest

from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import MAX_NOTIFY_MAILBOXES, CommandError, parse_command
from tests.proto.test_imap_connection import one

NEW_EXP = frozenset({"MessageNew", "MessageExpunge"})


@pytest.mark.parametrize(("line", "expected"), [
    (b"a NOTIFY NONE\r\n", ast.Notify("a", None)),
    (b"a notify none\r\n", ast.Notify("a", None)),
    (b"a NOTIFY SET STATUS (inboxes (MessageNew MessageExpunge))\r\n",
     ast.Notify("a", (ast.NotifyGroup("INBOXES", (), NEW_EXP),), True)),
    (b"a NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) "
     b"(subtree (Lists \"Other one\") NONE) (mailboxes inbox (MailboxName))\r\n",
     ast.Notify("a", (
         ast.NotifyGroup("SELECTED", (), NEW_EXP | {"FlagChange"},
                         (ast.FetchAttr("UID"), ast.FetchAttr("FLAGS"))),
         ast.NotifyGroup("SUBTREE", ("Lists", "Other one")),
         ast.NotifyGroup("MAILBOXES", ("INBOX",), frozenset({"MailboxName"})),
     ))),
    # RFC 5465 7 writes the events without parentheses; both forms are read
    (b"a notify set (selected-delayed MessageNew MessageExpunge) (personal NONE)\r\n",
     ast.Notify("a", (ast.NotifyGroup("SELECTED-DELAYED", (), NEW_EXP),
                      ast.NotifyGroup("PERSONAL")))),
    (b"a NOTIFY SET (subscribed (SubscriptionChange MailboxMetadataChange "
     b"ServerMetadataChange))\r\n",
     ast.Notify("a", (ast.NotifyGroup("SUBSCRIBED", (), frozenset(
         {"SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange"})),))),
    (b"a NOTIFY SET (mailboxes {5+}\r\nLists (MailboxName))\r\n",
     ast.Notify("a", (ast.NotifyGroup("MAILBOXES", ("Lists",), frozenset({"MailboxName"})),))),
    # RFC 5465 6.1 allows one selected filter per NOTIFY, and only that; 6 lets several
    # groups apply to one mailbox, so a repeated PERSONAL (or INBOXES, SUBSCRIBED) is valid
    (b"a NOTIFY SET (personal (MailboxName)) (personal (SubscriptionChange))\r\n",
     ast.Notify("a", (ast.NotifyGroup("PERSONAL", (), frozenset({"MailboxName"})),
                      ast.NotifyGroup("PERSONAL", (), frozenset({"SubscriptionChange"}))))),
])
def test_notify_grammar_accepts(line: bytes, expected: ast.Command) -> None:
    assert one(line) == expected


@pytest.mark.parametrize("line", [
    b"a NOTIFY", b"a NOTIFY SET", b"a NOTIFY SET STATUS", b"a NOTIFY BOGUS",
    b"a NOTIFY SET (personal)", b"a NOTIFY SET (personal ())",
    b"a NOTIFY SET (personal (MessageNew))", b"a NOTIFY SET (personal (MessageExpunge))",
    b"a NOTIFY SET (personal (FlagChange))",
    b"a NOTIFY SET (inboxes (MessageNew (UID) MessageExpunge))",
    b"a NOTIFY SET (selected NONE) (selected-delayed NONE)",
    b"a NOTIFY SET (selected NONE) (selected NONE)",
    b"a NOTIFY SET (personal (MailboxName MailboxName))",
    b"a NOTIFY SET (subtree (MailboxName))", b"a NOTIFY SET (mailboxes () NONE)",
    b"a NOTIFY SET (personal NONE", b"a NOTIFY SET (personal NONE) x",
    b"a NOTIFY SET (selected (MessageNew (NOPE) MessageExpunge))",
    b"a NOTIFY SET (selected (MessageNew () MessageExpunge))",
    b"a NOTIFY SET (personal NONE)(personal NONE)", b"a NOTIFY NONE NONE",
    b"a UID NOTIFY NONE",
    b"a NOTIFY SET (selected (MessageNew MessageExpunge MailboxName))",
    b"a NOTIFY SET (selected-delayed (SubscriptionChange))",
])
def test_notify_grammar_refuses_malformed(line: bytes) -> None:
    with pytest.raises(CommandError) as err:
        parse_command(line)
    assert err.value.error.status == "BAD", err.value.error.text


def test_notify_grammar_badevent_after_the_whole_command() -> None:
    with pytest.raises(CommandError) as err:
        parse_command(b"a NOTIFY SET (personal (AnnotationChange)) (inboxes (Later))")
    assert err.value.error.status == "NO"
    assert err.value.error.code is not None and err.value.error.code.startswith("BADEVENT (")
    # a syntax error anywhere is BAD first
    with pytest.raises(CommandError) as err:
        parse_command(b"a NOTIFY SET (personal (AnnotationChange)) (inboxes")
    assert err.value.error.status == "BAD"


def test_notify_grammar_limits() -> None:
    names = b" ".join(b"m%d" % i for i in range(MAX_NOTIFY_MAILBOXES + 1))
    with pytest.raises(CommandError) as err:
        parse_command(b"a NOTIFY SET (mailboxes (" + names + b") (MailboxName))")
    assert (err.value.error.status, err.value.error.code) == ("NO", "LIMIT")
    groups = b" ".join(b"(mailboxes m%d NONE)" % i for i in range(100))
    with pytest.raises(CommandError) as err:
        parse_command(b"a NOTIFY SET " + groups)
    assert (err.value.error.status, err.value.error.code) == ("NO", "LIMIT")


def test_notify_grammar_fuzz_never_raises_anything_else() -> None:
    tokens = [b"(", b")", b" ", b"SET", b"NONE", b"STATUS", b"selected", b"personal",
              b"subtree", b"mailboxes", b"INBOX", b'"x"', b"MessageNew", b"MessageExpunge",
              b"FlagChange", b"MailboxName", b"UID", b"BODY.PEEK[]", b"Annotation", b"\xff"]
    rnd = random.Random(5465)
    for _ in range(3000):
        line = b"a NOTIFY " + b"".join(rnd.choice(tokens) for _ in range(rnd.randint(0, 14)))
        try:
            cmd = parse_command(line)
        except CommandError as exc:
            assert exc.error.status in ("BAD", "NO")
        else:
            assert isinstance(cmd, ast.Notify)
