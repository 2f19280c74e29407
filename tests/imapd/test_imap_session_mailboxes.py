"""Session transcripts: CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST/LSUB, STATUS, APPEND,
NAMESPACE, QUOTA."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from imap_harness import imap_server, message
from tests.support.backends import Backend


def _created(out: list[bytes], tag: str) -> bool:
    """A CREATE answered OK with its MAILBOXID (RFC 8474 4.1)."""
    return len(out) == 1 and re.fullmatch(
        rb"%s OK \[MAILBOXID \(F\d+-\d+\)\] CREATE completed" % tag.encode(), out[0]
    ) is not None


async def test_mailboxes_list_defaults(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        out = await c.cmd('a LIST "" *')
        assert out == [
            b'* LIST (\\HasNoChildren) "/" INBOX',
            b'* LIST (\\HasNoChildren \\Archive) "/" Archive',
            b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
            b'* LIST (\\HasNoChildren \\Junk) "/" Junk',
            b'* LIST (\\HasNoChildren \\Sent) "/" Sent',
            b'* LIST (\\HasNoChildren \\Trash) "/" Trash',
            b"a OK LIST completed",
        ]
        assert await c.cmd('b LIST "" ""') == [b'* LIST (\\Noselect) "/" ""', b"b OK LIST completed"]
        out = await c.cmd('c LIST (SPECIAL-USE) "" *')
        assert len(out) == 6
        out = await c.cmd('d LIST "" inbox')
        assert out[0] == b'* LIST (\\HasNoChildren) "/" INBOX'


async def test_mailboxes_create_hierarchy_rename_delete(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        assert _created(await c.cmd("a CREATE Work/Projects/2024"), "a")
        out = await c.cmd('b LIST "" Work*')
        assert out[:-1] == [
            b'* LIST (\\HasChildren) "/" Work',
            b'* LIST (\\HasChildren) "/" Work/Projects',
            b'* LIST (\\HasNoChildren) "/" Work/Projects/2024',
        ]
        out = await c.cmd('b2 LIST "" %')
        assert b'* LIST (\\HasChildren) "/" Work' in out
        assert not any(b"Projects" in line for line in out)
        out = await c.cmd('b3 LIST Work/ %')
        assert out[:-1] == [b'* LIST (\\HasChildren) "/" Work/Projects']
        assert _created(await c.cmd("c CREATE work/projects"), "c")
        assert await c.cmd("d CREATE Work") == [b"d NO [ALREADYEXISTS] Mailbox already exists"]
        assert await c.cmd("e CREATE inbox") == [b"e NO [ALREADYEXISTS] INBOX always exists"]
        assert await c.cmd("f DELETE Work") == [
            b"f NO [HASCHILDREN] Mailbox has children; delete them first"
        ]
        assert await c.cmd("g RENAME Work Play") == [b"g OK RENAME completed"]
        out = await c.cmd('h LIST "" Play/*')
        assert out[:-1] == [
            b'* LIST (\\HasChildren) "/" Play/Projects',
            b'* LIST (\\HasNoChildren) "/" Play/Projects/2024',
        ]
        assert await c.cmd("i DELETE Play/Projects/2024") == [b"i OK DELETE completed"]
        assert await c.cmd("j DELETE nothing") == [
            b"j NO [NONEXISTENT] Mailbox does not exist: nothing"
        ]
        assert await c.cmd("k DELETE INBOX") == [b"k NO [CANNOT] INBOX cannot be deleted"]
        assert await c.cmd("l RENAME nothing x") == [b"l NO [NONEXISTENT] Mailbox does not exist"]
        assert await c.cmd("m RENAME Sent Drafts") == [
            b"m NO [ALREADYEXISTS] Target mailbox already exists"
        ]
        assert await c.cmd("n CREATE Play/Projects/2024/../x") == [
            b"n NO [CANNOT] mailbox name level may not be . or .."
        ]
        assert await c.cmd('o CREATE "/etc"') == [
            b"o NO [CANNOT] mailbox name must not start with /"
        ]


async def test_mailboxes_rename_inbox_moves_messages(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        await srv.deliver(acc, message(2))
        c = await srv.connected()
        assert await c.cmd("a RENAME INBOX Old") == [b"a OK RENAME completed"]
        out = await c.cmd("b STATUS INBOX (MESSAGES)")
        assert out[0] == b"* STATUS INBOX (MESSAGES 0)"
        out = await c.cmd("c STATUS Old (MESSAGES)")
        assert out[0] == b"* STATUS Old (MESSAGES 2)"


async def test_mailboxes_utf8_and_mutf7_names(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        assert _created(await c.cmd("a CREATE Entw&APw-rfe"), "a")
        out = await c.cmd('b LIST "" Entw*')
        assert out[0] == b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe'
        assert await c.cmd("c ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT", b"c OK ENABLE completed"]
        out = await c.cmd('d LIST "" Entw*')
        assert out[0] == '* LIST (\\HasNoChildren) "/" "Entwürfe"'.encode()
        out = await c.cmd('e STATUS "Entwürfe" (MESSAGES)'.encode())
        assert out[0] == '* STATUS "Entwürfe" (MESSAGES 0)'.encode()


async def test_mailboxes_subscribe_lsub_and_list_extended(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        assert _created(await c.cmd("a CREATE Lists/python"), "a")
        assert await c.cmd("b SUBSCRIBE Lists/python") == [b"b OK SUBSCRIBE completed"]
        assert await c.cmd("c UNSUBSCRIBE Trash") == [b"c OK UNSUBSCRIBE completed"]
        out = await c.cmd('d LSUB "" Lists/*')
        assert out == [b'* LSUB () "/" Lists/python', b"d OK LIST completed"]
        out = await c.cmd('e LIST (SUBSCRIBED) "" *')
        names = [line.rsplit(b" ", 1)[-1] for line in out[:-1]]
        assert b"Trash" not in names and b"Lists/python" in names
        assert all(b"\\Subscribed" in line for line in out[:-1])
        out = await c.cmd('f LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
        assert b'* LIST (\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))' in out
        out = await c.cmd('g LIST "" (INBOX Sent) RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES UIDNEXT))')
        assert out[:-1] == [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
            b"* STATUS INBOX (MESSAGES 0 UIDNEXT 1)",
            b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent',
            b"* STATUS Sent (MESSAGES 0 UIDNEXT 1)",
        ]


async def test_mailboxes_status_items(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1), flags=("\\Seen",))
        await srv.deliver(acc, message(2), flags=("\\Deleted",))
        c = await srv.connected()
        out = await c.cmd("a STATUS INBOX (MESSAGES UIDNEXT UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ)")
        size = len(message(1)) + len(message(2))
        assert re.fullmatch(
            rb"\* STATUS INBOX \(MESSAGES 2 UIDNEXT 3 UNSEEN 1 DELETED 1 SIZE %d RECENT 2 "
            rb"HIGHESTMODSEQ \d+\)" % size,
            out[0],
        ), out
        assert await c.cmd("b STATUS nope (MESSAGES)") == [
            b"b NO [NONEXISTENT] Mailbox does not exist: nope"
        ]
        assert (await c.cmd("c STATUS INBOX (FOO)"))[-1] == b"c BAD unknown status item FOO"


async def test_mailboxes_append_variants(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        msg = message(1)
        c.send(b'a APPEND Drafts (\\Draft \\Seen) "05-Mar-2024 07:08:09 +0100" {%d}\r\n' % len(msg))
        await c.read_until(rb"\+ ")
        out = await c.cmd(msg, tag="a")
        assert re.fullmatch(rb"a OK \[APPENDUID \d+ 1\] APPEND completed", out[-1]), out
        # LITERAL+ and MULTIAPPEND
        m2, m3 = message(2), message(3)
        out = await c.cmd(b"b APPEND INBOX {%d+}\r\n%s ($Work) {%d+}\r\n%s" % (len(m2), m2, len(m3), m3))
        assert re.fullmatch(rb"b OK \[APPENDUID \d+ 1:2\] APPEND completed", out[-1]), out
        out = await c.cmd(b"c APPEND Nowhere {3+}\r\nabc")
        assert out == [b"c NO [TRYCREATE] Mailbox does not exist"]
        out = await c.cmd(b"d APPEND INBOX (\\Bogus) {3+}\r\nabc")
        assert out == [b"d BAD invalid flag \\Bogus"]
        out = await c.cmd("e STATUS Drafts (MESSAGES UNSEEN)")
        assert out[0] == b"* STATUS Drafts (MESSAGES 1 UNSEEN 0)"
        # bare LF is stored in canonical CRLF form
        out = await c.cmd(b"f APPEND INBOX {12+}\r\nSubject: x\n\n")
        assert out[-1].startswith(b"f OK")


async def test_mailboxes_append_too_big(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        from mailwright.imapd.session import SessionConfig

        srv.config = SessionConfig(max_append=100)
        await srv.add_user()
        c = await srv.connected()
        out = await c.cmd(b"a APPEND INBOX {500}")
        assert out == [b"a NO [TOOBIG] message too large"]
        assert await c.cmd("b NOOP") == [b"b OK NOOP completed"]


async def test_mailboxes_namespace_and_quota(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        c = await srv.connected()
        assert (await c.cmd("a NAMESPACE"))[0] == b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL'
        out = await c.cmd("b GETQUOTAROOT INBOX")
        assert out[:-1] == [b'* QUOTAROOT INBOX ""', b'* QUOTA "" ()']
        await srv.store.update_account(acc, quota_bytes=10 * 1024 * 1024)
        await srv.deliver(acc, b"Subject: x\r\n\r\n" + b"y" * 5000)
        out = await c.cmd('c GETQUOTA ""')
        assert out[0] == b'* QUOTA "" (STORAGE 5 10240)'
        assert await c.cmd("d GETQUOTA other") == [b"d NO [NONEXISTENT] No such quota root"]


async def test_mailboxes_quota_exceeded_on_append(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.store.update_account(acc, quota_bytes=100)
        c = await srv.connected()
        body = b"Subject: x\r\n\r\n" + b"z" * 200
        out = await c.cmd(b"a APPEND INBOX {%d+}\r\n%s" % (len(body), body))
        assert out == [b"a NO [OVERQUOTA] Quota exceeded"]


async def test_mailboxes_accounts_are_isolated(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice = await srv.add_user("alice@example.test")
        await srv.add_user("bob@example.test")
        await srv.deliver(alice, message(1, "for alice only"))
        a = await srv.connected("alice@example.test")
        assert _created(await a.cmd("a1 CREATE Private"), "a1")
        b = await srv.connected("bob@example.test")
        assert await b.cmd("b1 SELECT Private") == [b"b1 NO [NONEXISTENT] Mailbox does not exist: Private"]
        out = await b.cmd('b2 LIST "" *')
        assert not any(b"Private" in line for line in out)
        out = await b.cmd("b3 SELECT INBOX")
        assert b"* 0 EXISTS" in out
        assert await b.cmd("b4 UID FETCH 1:* (BODY.PEEK[])") == [b"b4 OK UID FETCH completed"]
        assert (await b.cmd("b5 SEARCH SUBJECT alice"))[0] == b"* SEARCH"
        assert (await b.cmd('b6 STATUS "../alice@example.test/INBOX" (MESSAGES)'))[0].startswith(b"b6 NO")


async def test_mailboxes_append_streamed_forms(tmp_path: Path, backend: Backend) -> None:
    """The streamed APPEND (connection core events) in every form a client may use: mailbox
    name as a literal, UTF8 (literal8) data, literal8 with NUL, split across reads."""
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        c = await srv.connected(split=7)
        m1, m2 = message(1), message(2)
        out = await c.cmd(b"a APPEND {6+}\r\nDrafts {%d+}\r\n%s" % (len(m1), m1))
        assert out[-1].startswith(b"a OK [APPENDUID"), out
        out = await c.cmd(b"b APPEND INBOX UTF8 (~{%d+}\r\n%s) ~{3+}\r\na\x00c" % (len(m2), m2))
        assert re.fullmatch(rb"b OK \[APPENDUID \d+ 1:2\] APPEND completed", out[-1]), out
        # NUL in a plain literal: BAD, and nothing of the command is stored
        out = await c.cmd(b"c APPEND INBOX {3+}\r\nabc {3+}\r\na\x00c")
        assert out == [b"c BAD NUL in literal (use literal8)"]
        out = await c.cmd(b"d APPEND INBOX {0}")
        assert out == [b"d NO Empty message"]
        out = await c.cmd("e STATUS INBOX (MESSAGES)")
        assert out[0] == b"* STATUS INBOX (MESSAGES 2)"
        inbox = await srv.store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        stored = [await srv.store.read_blob(r.blob_id) for r in await srv.store.list_messages(inbox.id)]
        assert stored == [m2, b"a\x00c"]


async def test_mailboxes_append_before_login_is_refused_under_literal_minus(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client()
        greeting = await c.greeting()
        assert b" LITERAL- " in greeting and b"LITERAL+" not in greeting
        assert await c.cmd(b"a APPEND INBOX {3+}\r\nabc") == [b"a BAD APPEND: not authenticated"]
        assert await c.cmd(b"b APPEND INBOX {5000}") == [b"b BAD [TOOBIG] literal too large"]
        c.send(b"c APPEND INBOX {5000+}\r\n")
        out = await c.read_until(rb"\* BYE")
        assert out == [b"c BAD [TOOBIG] literal too large",
                       b"* BYE Command refused; closing the connection"]
        assert await asyncio.wait_for(c.task, 5) == "closed"
