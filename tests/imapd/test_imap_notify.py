"""IMAP NOTIFY (RFC 5465) through the real session on both store backends: session A asks for
notifications, session B (or delivery) changes things, and A sees exactly the untagged
responses the RFC prescribes, between commands, during IDLE and at the end of commands; the
RFC's examples (section 7), the grammar's refusals, overflow and the interplay with
CONDSTORE, QRESYNC and UIDONLY."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imap_harness import Client, Server, imap_server, message
from tests.support.backends import Backend

from mailwright.imapd.session import SessionConfig

SUPPORTED = (b"(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "
             b"MailboxMetadataChange ServerMetadataChange)")


async def quiet(c: Client, tag: str = "zz") -> None:
    """Nothing more is pending for *c*: a NOOP answers with its tagged OK alone."""
    assert await c.cmd(f"{tag} NOOP") == [f"{tag} OK NOOP completed".encode()]


async def setup(srv: Server, inbox: int = 2) -> tuple[int, Client, Client]:
    acc = await srv.add_user()
    for i in range(inbox):
        await srv.deliver(acc, message(i))
    a = await srv.connected()
    b = await srv.connected()
    await a.cmd("a0 ENABLE IMAP4rev2")  # no RECENT lines to follow (RFC 9051 removed them)
    return acc, a, b


async def test_notify_capability_and_status_indicator(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        caps = (await a.cmd("a0 CAPABILITY"))[0]
        assert b" NOTIFY" in caps
        inbox = await srv.store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        # RFC 5465 3: with STATUS, a STATUS for each mailbox with message events first
        out = await a.cmd("a1 NOTIFY SET STATUS (mailboxes INBOX (MessageNew MessageExpunge))")
        assert out == [
            b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY %d)" % inbox.uidvalidity,
            b"a1 OK NOTIFY completed",
        ]
        # a delivery reaches A between commands, with no command of A's in flight
        await srv.deliver(acc, message(5))
        line = await a.read_line()
        assert line == b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY %d)" % inbox.uidvalidity
        # B expunges one: MessageExpunge
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 1 +FLAGS (\\Deleted)")
        await b.cmd("b3 EXPUNGE")
        line = await a.read_line()
        assert line == b"* STATUS INBOX (MESSAGES 2 UIDNEXT 4 UIDVALIDITY %d)" % inbox.uidvalidity
        await quiet(a)
        # NOTIFY NONE: nothing more
        assert await a.cmd("a2 NOTIFY NONE") == [b"a2 OK NOTIFY completed"]
        await srv.deliver(acc, message(6))
        await quiet(a, "a3")


async def test_notify_rfc5465_example_selected_and_subtree(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 7: new mail in the selected mailbox comes with the requested fetch attributes,
    mail to a mailbox of the Lists subtree as STATUS."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        await b.cmd('b0 CREATE "Lists/ietf"')
        await b.cmd('b1 CREATE "Other"')
        await a.cmd("a1 SELECT INBOX")
        out = await a.cmd(
            "a2 NOTIFY SET (selected (MessageNew (uid body.peek[header.fields (from to subject)])"
            " MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))")
        assert out == [b"a2 OK NOTIFY completed"]
        await srv.deliver(acc, message(7, "hello list"), "INBOX")
        lines = await a.read_until(rb"\* 3 FETCH")
        assert lines[0] == b"* 3 EXISTS"
        assert lines[-1].startswith(b"* 3 FETCH (UID 3 BODY[HEADER.FIELDS (from to subject)] {")
        assert b"Subject: hello list" in lines[-1]
        lst = await srv.store.get_mailbox(acc, "Lists/ietf")
        assert lst is not None
        await srv.deliver(acc, message(8), "Lists/ietf")
        line = await a.read_line()
        assert line == b'* STATUS Lists/ietf (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d)' % lst.uidvalidity
        # a mailbox no group names: nothing
        await srv.deliver(acc, message(9), "Other")
        # the message was not marked \Seen by its notification
        out = await a.cmd("a3 FETCH 3 FLAGS")
        assert out == [b"* 3 FETCH (FLAGS ())", b"a3 OK FETCH completed"]
        # B expunges in the selected mailbox: EXPUNGE at once (SELECTED)
        await b.cmd("b2 SELECT INBOX")
        await b.cmd("b3 STORE 1 +FLAGS (\\Deleted)")
        await b.cmd("b4 EXPUNGE")
        assert await a.read_line() == b"* 1 EXPUNGE"
        await quiet(a)


async def test_notify_rfc5465_bare_event_lists_are_read(tmp_path: Path, backend: Backend) -> None:
    """The RFC's own examples write the events of a group without parentheses."""
    async with imap_server(tmp_path, backend) as srv:
        _acc, a, _b = await setup(srv)
        await a.cmd("a1 SELECT INBOX")
        out = await a.cmd("a2 notify set status (selected MessageNew (uid "
                          "body.peek[header.fields (from to subject)]) MessageExpunge) "
                          "(subtree Lists MessageNew MessageExpunge) (personal NONE)")
        assert out == [b"a2 OK NOTIFY completed"]


async def test_notify_selected_delayed_holds_expunges(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv, 3)
        await a.cmd("a1 SELECT INBOX")
        await a.cmd("a2 NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 2 +FLAGS (\\Flagged)")
        assert await a.read_line() == b"* 2 FETCH (FLAGS (\\Flagged))"
        await b.cmd("b3 STORE 1 +FLAGS (\\Deleted)")
        assert await a.read_line() == b"* 1 FETCH (FLAGS (\\Deleted))"
        await b.cmd("b4 EXPUNGE")
        await srv.deliver(acc, message(4))
        # the new message is announced at once, the expunge waits for a command allowing it
        assert await a.read_line() == b"* 4 EXISTS"
        out = await a.cmd("a3 FETCH 1 UID")
        assert out == [b"* 1 FETCH (UID 1)", b"a3 OK FETCH completed"]
        out = await a.cmd("a4 NOOP")
        assert out == [b"* 1 EXPUNGE", b"a4 OK NOOP completed"]


async def test_notify_mailbox_events(tmp_path: Path, backend: Backend) -> None:
    """MailboxName, SubscriptionChange and the METADATA events (RFC 5465 5.4-5.9)."""
    async with imap_server(tmp_path, backend) as srv:
        _acc, a, b = await setup(srv)
        out = await a.cmd("a1 NOTIFY SET (personal (MailboxName SubscriptionChange "
                          "MailboxMetadataChange ServerMetadataChange))")
        assert out == [b"a1 OK NOTIFY completed"]
        await b.cmd("b1 CREATE Projects")
        assert await a.read_line() == b'* LIST () "/" Projects'
        await b.cmd("b2 RENAME Projects Work")
        assert await a.read_line() == b'* LIST () "/" Work ("OLDNAME" (Projects))'
        await b.cmd("b3 SUBSCRIBE Work")
        assert await a.read_line() == b'* LIST (\\Subscribed) "/" Work'
        await b.cmd("b4 UNSUBSCRIBE Work")
        assert await a.read_line() == b'* LIST () "/" Work'
        await b.cmd('b5 SETMETADATA Work (/private/comment "hi" /shared/x "y")')
        assert await a.read_line() == b"* METADATA Work /private/comment /shared/x"
        await b.cmd('b6 SETMETADATA "" (/private/vendor/a "1")')
        assert await a.read_line() == b'* METADATA "" /private/vendor/a'
        await b.cmd("b7 DELETE Work")
        assert await a.read_line() == b'* LIST (\\NonExistent) "/" Work'
        await quiet(a)


async def test_notify_mailboxes_and_subscribed_filters(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        for name in ("Watched", "Sub", "Quiet"):
            await b.cmd(f"b0 CREATE {name}")
        await b.cmd("b1 SUBSCRIBE Sub")
        await a.cmd("a1 NOTIFY SET (mailboxes Watched (MessageNew MessageExpunge)) "
                    "(subscribed (MessageNew MessageExpunge))")
        await srv.deliver(acc, message(1), "Quiet")
        await srv.deliver(acc, message(2), "Sub")
        assert (await a.read_line()).startswith(b"* STATUS Sub (MESSAGES 1 UIDNEXT 2 ")
        await srv.deliver(acc, message(3), "Watched")
        assert (await a.read_line()).startswith(b"* STATUS Watched (MESSAGES 1 UIDNEXT 2 ")
        # subscribing brings a mailbox into the SUBSCRIBED set
        await b.cmd("b2 SUBSCRIBE Quiet")
        await quiet(a)
        await srv.deliver(acc, message(4), "Quiet")
        assert (await a.read_line()).startswith(b"* STATUS Quiet (MESSAGES 2 UIDNEXT 3 ")
        await quiet(a, "a2")


async def test_notify_flag_changes_and_condstore(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        await a.cmd("a1 NOTIFY SET (inboxes (MessageNew MessageExpunge FlagChange))")
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 1 +FLAGS (\\Seen)")
        st = await srv.store.mailbox_status((await srv.store.get_mailbox(acc, "INBOX")).id)  # type: ignore[union-attr]
        # RFC 5465 5.3: a flag change elsewhere is UIDVALIDITY and HIGHESTMODSEQ
        assert await a.read_line() == b"* STATUS INBOX (UIDVALIDITY %d HIGHESTMODSEQ %d)" % (
            st.uidvalidity, st.highestmodseq)
        await srv.deliver(acc, message(3))
        st = await srv.store.mailbox_status(st.mailbox_id)
        assert await a.read_line() == (
            b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY %d HIGHESTMODSEQ %d)"
            % (st.uidvalidity, st.highestmodseq))


async def test_notify_without_flagchange_ignores_flags(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _acc, a, b = await setup(srv)
        await a.cmd("a1 NOTIFY SET (inboxes (MessageNew MessageExpunge))")
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 1 +FLAGS (\\Seen)")
        await quiet(a)


async def test_notify_qresync_and_uidonly_in_selected(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv, 3)
        await a.cmd("a0 ENABLE QRESYNC IMAP4rev2")
        await a.cmd("a1 SELECT INBOX")
        await a.cmd("a2 NOTIFY SET (selected (MessageNew (FLAGS) MessageExpunge FlagChange))")
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 2 +FLAGS (\\Deleted)")
        line = await a.read_line()
        assert line.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Deleted) MODSEQ (")
        await b.cmd("b3 EXPUNGE")
        assert await a.read_line() == b"* VANISHED 2"
        await srv.deliver(acc, message(4))
        assert await a.read_line() == b"* 3 EXISTS"
        assert await a.read_line() == b"* 3 FETCH (UID 4 FLAGS ())"
        c = await srv.connected()
        await c.cmd("c0 ENABLE UIDONLY IMAP4rev2")
        await c.cmd("c1 SELECT INBOX")
        await c.cmd("c2 NOTIFY SET (selected (MessageNew (FLAGS) MessageExpunge FlagChange))")
        await srv.deliver(acc, message(5))
        assert await c.read_line() == b"* 4 EXISTS"
        assert await c.read_line() == b"* 5 UIDFETCH (FLAGS ())"
        await b.cmd("b4 STORE 1 +FLAGS (\\Deleted)")
        assert await c.read_line() == b"* 1 UIDFETCH (FLAGS (\\Deleted))"
        await b.cmd("b5 EXPUNGE")
        assert await c.read_line() == b"* VANISHED 1"


async def test_notify_during_idle(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        await b.cmd("b0 CREATE Lists")
        await a.cmd("a1 SELECT INBOX")
        await a.cmd("a2 NOTIFY SET (selected (MessageNew MessageExpunge)) "
                    "(personal (MessageNew MessageExpunge MailboxName))")
        a.send(b"a3 IDLE\r\n")
        assert await a.read_line() == b"+ idling"
        await srv.deliver(acc, message(3), "Lists")
        assert (await a.read_line()).startswith(b"* STATUS Lists (MESSAGES 1 UIDNEXT 2 ")
        await srv.deliver(acc, message(4), "INBOX")
        assert await a.read_line() == b"* 3 EXISTS"
        await b.cmd("b1 CREATE New")
        assert await a.read_line() == b'* LIST () "/" New'
        a.send(b"DONE\r\n")
        assert await a.read_line() == b"a3 OK IDLE terminated"
        await quiet(a)


async def test_notify_selected_not_covered_waits_for_commands(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 6: no filter but SELECTED and SELECTED-DELAYED matches the selected mailbox,
    and 3.1: without such a group the client wants no message events there (SELECTED NONE).
    So nothing is told between commands; at the end of a command the size updates the base
    protocol requires (RFC 9051 5.2: EXISTS, and EXPUNGE) still go out, but not others' flag
    changes, which it only recommends (FlagChange was not asked for, RFC 5465 5.1). The
    session's own STORE is answered as always."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        await b.cmd("b0 CREATE Lists")
        await a.cmd("a1 SELECT INBOX")
        await a.cmd("a2 NOTIFY SET (mailboxes Lists (MessageNew MessageExpunge)) "
                    "(personal (MessageNew MessageExpunge FlagChange))")
        await srv.deliver(acc, message(3), "INBOX")
        await srv.deliver(acc, message(4), "Lists")
        assert (await a.read_line()).startswith(b"* STATUS Lists (MESSAGES 1 ")
        out = await a.cmd("a3 NOOP")
        assert out == [b"* 3 EXISTS", b"a3 OK NOOP completed"]
        assert await a.cmd("a4 STORE 1 +FLAGS (\\Seen)") == [
            b"* 1 FETCH (FLAGS (\\Seen))", b"a4 OK STORE completed"]
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 2 +FLAGS (\\Flagged \\Deleted)")
        assert await a.cmd("a5 NOOP") == [b"a5 OK NOOP completed"]
        await b.cmd("b3 EXPUNGE")
        assert await a.cmd("a6 NOOP") == [b"* 2 EXPUNGE", b"a6 OK NOOP completed"]


async def test_notify_select_moves_a_mailbox_between_status_and_view(
    tmp_path: Path, backend: Backend
) -> None:
    """RFC 5465 6: only SELECTED and SELECTED-DELAYED match the selected mailbox, so PERSONAL
    stops covering Lists while it is selected (3.1: no SELECTED group is SELECTED NONE): its
    new mail is the base protocol's EXISTS at the end of a command, and a STATUS once another
    mailbox is selected. The selected mailbox never gets a STATUS (5.2)."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, _b = await setup(srv)
        await srv.store.create_mailbox(acc, "Lists")
        await a.cmd("a1 NOTIFY SET (personal (MessageNew MessageExpunge))")
        await a.cmd("a2 SELECT Lists")
        await srv.deliver(acc, message(1), "Lists")
        await srv.deliver(acc, message(2), "INBOX")
        # the delivery to Lists is not announced between commands; INBOX's is
        assert (await a.read_line()).startswith(b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4 ")
        assert await a.cmd("a3 NOOP") == [b"* 1 EXISTS", b"a3 OK NOOP completed"]
        await a.cmd("a4 SELECT INBOX")
        await srv.deliver(acc, message(3), "Lists")
        assert (await a.read_line()).startswith(b"* STATUS Lists (MESSAGES 2 UIDNEXT 3 ")
        await quiet(a)


async def test_notify_inboxes_is_personal(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 6.3: INBOXES are the mailboxes an MDA may deliver to, and a server that cannot
    easily compute them MUST treat INBOXES as PERSONAL. Sieve fileinto delivers to any
    personal mailbox, so a delivery to Lists is heard under INBOXES."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, _b = await setup(srv)
        await srv.store.create_mailbox(acc, "Lists")
        await a.cmd("a1 NOTIFY SET (inboxes (MessageNew MessageExpunge))")
        await srv.deliver(acc, message(1), "Lists")
        assert (await a.read_line()).startswith(b"* STATUS Lists (MESSAGES 1 UIDNEXT 2 ")
        await quiet(a)


async def test_notify_groups_that_share_a_mailbox_add_up(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 6: several event groups may apply to one mailbox; Lists takes the message
    events of its MAILBOXES group and the MailboxName of PERSONAL. A group with NONE that
    names a mailbox first keeps the later groups' events from it (RFC 5465 5)."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        for name in ("Lists", "Quiet"):
            await srv.store.create_mailbox(acc, name)
        await a.cmd("a1 NOTIFY SET (mailboxes Quiet NONE) "
                    "(mailboxes Lists (MessageNew MessageExpunge)) "
                    "(personal (MailboxName MessageNew MessageExpunge))")
        await srv.deliver(acc, message(1), "Quiet")
        await srv.deliver(acc, message(2), "Lists")
        assert (await a.read_line()).startswith(b"* STATUS Lists (MESSAGES 1 UIDNEXT 2 ")
        await b.cmd("b1 RENAME Lists Lists2")
        assert await a.read_line() == b'* LIST () "/" Lists2 ("OLDNAME" (Lists))'
        await b.cmd("b2 RENAME Quiet Quiet2")  # out of (mailboxes Quiet NONE): PERSONAL's now
        assert await a.read_line() == b'* LIST () "/" Quiet2 ("OLDNAME" (Quiet))'
        await srv.deliver(acc, message(3), "Quiet2")
        assert (await a.read_line()).startswith(b"* STATUS Quiet2 (MESSAGES 2 UIDNEXT 3 ")
        await quiet(a)


async def test_notify_overflow(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 3: more pending than the session may hold is NOTIFICATIONOVERFLOW, and
    NOTIFY is off afterwards. A's APPEND is held half-sent while B makes the changes, so they
    all fall due at once at its end."""
    async with imap_server(tmp_path, backend) as srv:
        srv.config = SessionConfig(hostname="imap.example.test", notify_max_pending=3)
        _acc, a, b = await setup(srv)
        await a.cmd("a1 NOTIFY SET (personal (MailboxName))")
        a.send(b"a2 APPEND INBOX {5}\r\n")
        assert await a.read_line() == b"+ Ready for literal data"
        for i in range(4):
            await b.cmd(f"b{i} CREATE Box{i}")
        a.send(b"hello\r\n")
        lines = await a.read_until(rb"a2 ")
        assert lines[0] == b"* OK [NOTIFICATIONOVERFLOW] Too many notifications; NOTIFY is off"
        assert lines[-1].startswith(b"a2 OK [APPENDUID ")
        await b.cmd("b9 CREATE Later")
        await quiet(a)


async def test_notify_limits_on_watched_mailboxes(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 3.1: a set too costly to honour MAY be refused, and with NO
    [NOTIFICATIONOVERFLOW]; a smaller one is then accepted."""
    async with imap_server(tmp_path, backend) as srv:
        srv.config = SessionConfig(hostname="imap.example.test", notify_max_mailboxes=3)
        _acc, a, _b = await setup(srv)
        out = await a.cmd("a1 NOTIFY SET (personal (MessageNew MessageExpunge))")
        assert out == [b"a1 NO [NOTIFICATIONOVERFLOW] NOTIFY covers more than 3 mailboxes"]
        out = await a.cmd("a2 NOTIFY SET (mailboxes (INBOX Sent) (MessageNew MessageExpunge))")
        assert out == [b"a2 OK NOTIFY completed"]


async def test_notify_bad_input(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _acc, a, _b = await setup(srv)
        bad = [
            "NOTIFY",
            "NOTIFY SET",
            "NOTIFY SET ()",
            "NOTIFY SET (personal)",
            "NOTIFY SET (bogus (MessageNew MessageExpunge))",
            "NOTIFY SET (personal (MessageNew))",  # needs MessageExpunge (RFC 5465 5)
            "NOTIFY SET (personal (MessageExpunge))",
            "NOTIFY SET (personal (FlagChange))",
            "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",  # fetch only for SELECTED
            "NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)",
            "NOTIFY SET (personal (MailboxName MailboxName))",
            "NOTIFY SET (selected (MailboxName))",  # RFC 5465 6.1: message events only
            "NOTIFY SET (subtree (MailboxName))",
            "NOTIFY SET (mailboxes () (MailboxName))",
            "NOTIFY SET (personal (MailboxName)",
            "NOTIFY SET (personal (MailboxName)) trailing",
            "NOTIFY SET (selected (MessageNew (BOGUS) MessageExpunge))",
            "NOTIFY NONE extra",
            "NOTIFY STATUS",
            "NOTIFY SET  (personal NONE)",
        ]
        for n, text in enumerate(bad):
            out = await a.cmd(f"x{n} {text}")
            assert len(out) == 1 and out[0].startswith(f"x{n} BAD ".encode()), (text, out)
        # an event we do not implement is NO [BADEVENT (what we do)] (RFC 5465 3)
        for n, text in enumerate([
            "NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))",
            "NOTIFY SET (inboxes (MailboxName)) (personal (SomethingElse))",
        ]):
            out = await a.cmd(f"y{n} {text}")
            assert out == [b"y%d NO [BADEVENT %s] unsupported event %s" % (
                n, SUPPORTED, text.split()[-1].strip("()").encode())], out
        # before login NOTIFY is refused
        c = srv.client()
        await c.greeting()
        out = await c.cmd("n1 NOTIFY NONE")
        assert out[0].startswith(b"n1 BAD ")


async def test_notify_random_inputs_never_break_the_session(tmp_path: Path, backend: Backend) -> None:
    """Fuzz: random NOTIFY arguments from the grammar's tokens get a tagged answer each."""
    import random

    tokens = ["(", ")", " ", "SET", "NONE", "STATUS", "selected", "selected-delayed", "inboxes",
              "personal", "subscribed", "subtree", "mailboxes", "INBOX", '"a b"', "{3+}\r\nabc",
              "MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName",
              "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange", "UID",
              "BODY.PEEK[]", "\x01", "*", "%"]
    rnd = random.Random(5465)
    async with imap_server(tmp_path, backend) as srv:
        srv.config = SessionConfig(hostname="imap.example.test", max_bad_commands=1000)
        _acc, a, _b = await setup(srv)
        for n in range(150):
            args = "".join(rnd.choice(tokens) for _ in range(rnd.randint(0, 12)))
            out = await a.cmd(f"f{n} NOTIFY {args}")
            assert out[-1].split(b" ")[1] in (b"OK", b"NO", b"BAD"), (args, out)
        await a.cmd("f NOTIFY NONE")
        await quiet(a)


async def test_notify_many_sessions_each_see_their_own(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        await srv.store.create_mailbox(acc, "Lists")
        await a.cmd("a1 NOTIFY SET (mailboxes Lists (MessageNew MessageExpunge))")
        await b.cmd("b1 NOTIFY SET (mailboxes INBOX (MessageNew MessageExpunge))")
        await srv.deliver(acc, message(1), "Lists")
        assert (await a.read_line()).startswith(b"* STATUS Lists ")
        await srv.deliver(acc, message(2), "INBOX")
        assert (await b.read_line()).startswith(b"* STATUS INBOX ")
        await quiet(a)
        await asyncio.sleep(0)
        await quiet(b, "b9")


async def test_notify_set_follows_new_and_renamed_mailboxes(tmp_path: Path, backend: Backend) -> None:
    """A mailbox created (or renamed) into a SUBTREE is watched from then on; one renamed out
    of it is not."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await setup(srv)
        await a.cmd("a1 NOTIFY SET (subtree Lists (MessageNew MessageExpunge MailboxName))")
        await b.cmd("b1 CREATE Lists/new")  # its parent Lists is created too
        assert await a.read_until(rb"\* LIST \(\) \"/\" Lists/new") == [
            b'* LIST () "/" Lists', b'* LIST () "/" Lists/new']
        await srv.deliver(acc, message(1), "Lists/new")
        assert (await a.read_line()).startswith(b"* STATUS Lists/new (MESSAGES 1 UIDNEXT 2 ")
        await b.cmd("b2 CREATE Elsewhere")
        await b.cmd("b3 RENAME Elsewhere Lists/moved")
        # Elsewhere is outside the watched subtree: a session that reads the mailbox list once
        # after both the CREATE and the RENAME committed sees Lists/moved appear as new, and
        # OLDNAME names a mailbox the client was never told of (RFC 5465 5.4); both are right.
        assert await a.read_line() in (b'* LIST () "/" Lists/moved ("OLDNAME" (Elsewhere))',
                                       b'* LIST () "/" Lists/moved')
        await srv.deliver(acc, message(2), "Lists/moved")
        assert (await a.read_line()).startswith(b"* STATUS Lists/moved (MESSAGES 1 ")
        await b.cmd("b4 RENAME Lists/new Gone")
        assert await a.read_line() == b'* LIST () "/" Gone ("OLDNAME" (Lists/new))'
        await srv.deliver(acc, message(3), "Gone")
        await quiet(a)


async def test_notify_failed_set_keeps_the_set_in_force(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        srv.config = SessionConfig(hostname="imap.example.test", notify_max_mailboxes=2)
        acc, a, _b = await setup(srv)
        await a.cmd("a1 NOTIFY SET (mailboxes INBOX (MessageNew MessageExpunge))")
        out = await a.cmd("a2 NOTIFY SET (personal (MessageNew MessageExpunge))")
        assert out[-1].startswith(b"a2 NO [NOTIFICATIONOVERFLOW]")
        await srv.deliver(acc, message(1))
        assert (await a.read_line()).startswith(b"* STATUS INBOX (MESSAGES 3 ")


async def test_notify_rev1_session_gets_recent(tmp_path: Path, backend: Backend) -> None:
    """An IMAP4rev1 client hears of new mail with EXISTS and RECENT (RFC 3501 7.3.2)."""
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        a = await srv.connected()
        await a.cmd("a1 SELECT INBOX")
        await a.cmd("a2 NOTIFY SET (selected (MessageNew MessageExpunge))")
        await srv.deliver(acc, message(1))
        assert await a.read_line() == b"* 1 EXISTS"
        assert await a.read_line() == b"* 1 RECENT"
        await quiet(a)


async def test_notify_own_mailbox_changes_are_not_told(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 5: the server SHOULD NOT notify a client of an event it caused (the RFC's
    example: its own CREATE under MailboxName). A's CREATE, RENAME, SUBSCRIBE, SETMETADATA and
    DELETE come back with their tagged OK alone; B's changes still reach A."""
    async with imap_server(tmp_path, backend) as srv:
        _acc, a, b = await setup(srv)
        await a.cmd("a1 NOTIFY SET (personal (MailboxName SubscriptionChange "
                    "MailboxMetadataChange ServerMetadataChange))")
        out = await a.cmd("a2 CREATE Mine/Sub")  # Mine is created too
        assert len(out) == 1 and out[0].startswith(b"a2 OK [MAILBOXID ")
        assert await a.cmd("a3 RENAME Mine Ours") == [b"a3 OK RENAME completed"]
        assert await a.cmd("a4 SUBSCRIBE Ours") == [b"a4 OK SUBSCRIBE completed"]
        assert await a.cmd('a5 SETMETADATA Ours (/private/comment "x")') == [
            b"a5 OK SETMETADATA completed"]
        await b.cmd("b1 CREATE Theirs")
        assert await a.read_line() == b'* LIST () "/" Theirs'
        assert await a.cmd("a6 DELETE Ours/Sub") == [b"a6 OK DELETE completed"]
        await b.cmd("b2 SUBSCRIBE Theirs")
        assert await a.read_line() == b'* LIST (\\Subscribed) "/" Theirs'
        await quiet(a)



async def test_notify_own_messages_are_not_told(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 5.2: no FETCH of MessageNew's attributes for a message the session's own
    APPEND or COPY put in the selected mailbox (the EXISTS the base protocol requires still
    comes), and (5) no STATUS for its own APPEND or COPY to another mailbox; a delivery in
    between is still told, with the counts that include the session's own message."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, _b = await setup(srv)
        await srv.store.create_mailbox(acc, "Other")
        await a.cmd("a1 SELECT INBOX")
        await a.cmd("a2 NOTIFY SET (selected (MessageNew (UID) MessageExpunge)) "
                    "(personal (MessageNew MessageExpunge))")
        out = await a.cmd("a3 APPEND INBOX {5+}\r\nhello")
        assert out[0] == b"* 3 EXISTS" and out[1].startswith(b"a3 OK [APPENDUID ")
        out = await a.cmd("a4 COPY 1 INBOX")
        assert out[0] == b"* 4 EXISTS" and out[1].startswith(b"a4 OK [COPYUID ")
        out = await a.cmd("a5 COPY 1 Other")
        assert len(out) == 1 and out[0].startswith(b"a5 OK [COPYUID ")
        await srv.deliver(acc, message(9), "Other")
        assert (await a.read_line()).startswith(b"* STATUS Other (MESSAGES 2 UIDNEXT 3 ")
        await srv.deliver(acc, message(8), "INBOX")
        assert await a.read_line() == b"* 5 EXISTS"
        assert await a.read_line() == b"* 5 FETCH (UID 5)"
        await quiet(a)


async def test_notify_set_status_items(tmp_path: Path, backend: Backend) -> None:
    """RFC 5465 3.1: SET STATUS sends a STATUS for each mailbox other than the selected one
    with message events: MESSAGES, UIDNEXT and UIDVALIDITY for MessageNew, and UIDVALIDITY and
    HIGHESTMODSEQ with FlagChange since the server supports CONDSTORE (whether or not the
    client enabled it); never one for the selected mailbox."""
    async with imap_server(tmp_path, backend) as srv:
        acc, a, _b = await setup(srv)
        await srv.store.create_mailbox(acc, "Lists")
        lists = await srv.store.get_mailbox(acc, "Lists")
        assert lists is not None
        st = await srv.store.mailbox_status(lists.id)
        await a.cmd("a1 SELECT INBOX")
        out = await a.cmd("a2 NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) "
                          "(mailboxes (INBOX Lists) (MessageNew MessageExpunge FlagChange))")
        assert out == [
            b"* STATUS Lists (MESSAGES 0 UIDNEXT 1 UIDVALIDITY %d HIGHESTMODSEQ %d)"
            % (st.uidvalidity, st.highestmodseq),
            b"a2 OK NOTIFY completed",
        ]
