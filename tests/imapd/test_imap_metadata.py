"""METADATA and METADATA-SERVER (RFC 5464) and LIST-METADATA (RFC 9590) on both store
backends: the RFC's examples, the size and count limits, /private and /shared, and
annotations that follow their mailbox through RENAME and go with it on DELETE."""

from __future__ import annotations

from imap_harness import Server

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.imapd.session import SessionConfig
from mailwright.store.api import Store


async def test_metadata_set_get_depth_and_maxsize(store: Store) -> None:
    srv = Server(store)
    try:
        await srv.add_user()
        c = await srv.connected()
        caps = (await c.cmd("a0 CAPABILITY"))[0]
        for cap in (b" METADATA", b" METADATA-SERVER", b" LIST-METADATA"):
            assert cap in caps
        # RFC 5464 4.3 example: a mailbox comment
        out = await c.cmd('a1 SETMETADATA INBOX (/private/comment {14+}\r\nMy new comment)')
        assert out == [b"a1 OK SETMETADATA completed"]
        # RFC 5464 4.2 example; entry names are case-insensitive (3.2)
        out = await c.cmd("a2 GETMETADATA INBOX /Private/Comment")
        assert out == [b'* METADATA INBOX (/private/comment "My new comment")',
                       b"a2 OK GETMETADATA completed"]
        # an entry that has no value is NIL
        out = await c.cmd("a3 GETMETADATA INBOX (/shared/comment /private/comment)")
        assert out[0] == b'* METADATA INBOX (/shared/comment NIL /private/comment "My new comment")'
        # RFC 5464 4.2.2 DEPTH, on server annotations (mailbox "")
        await c.cmd('a4 SETMETADATA "" (/private/filters/values/small "1" '
                    '/private/filters/values/big/deep "2" /private/filters/values "3")')
        out = await c.cmd('a5 GETMETADATA (DEPTH 1) "" (/private/filters/values)')
        assert out[0] == (b'* METADATA "" (/private/filters/values "3" '
                          b'/private/filters/values/small "1")')
        out = await c.cmd('a6 GETMETADATA (DEPTH infinity) "" /private/filters/values')
        assert out[0] == (b'* METADATA "" (/private/filters/values "3" '
                          b'/private/filters/values/big/deep "2" /private/filters/values/small "1")')
        # RFC 5464 4.2.1 MAXSIZE: longer values are left out and LONGENTRIES says how long
        out = await c.cmd("a7 GETMETADATA (MAXSIZE 5) INBOX (/private/comment)")
        assert out == [b"a7 OK [METADATA LONGENTRIES 14] GETMETADATA completed"]
        # NIL removes (4.3)
        await c.cmd("a8 SETMETADATA INBOX (/private/comment NIL)")
        out = await c.cmd("a9 GETMETADATA INBOX /private/comment")
        assert out[0] == b"* METADATA INBOX (/private/comment NIL)"
        # a binary value needs literal8 both ways
        out = await c.cmd(b"b1 SETMETADATA INBOX (/shared/vendor/bin ~{3+}\r\na\x00b)")
        assert out[-1] == b"b1 OK SETMETADATA completed"
        out = await c.cmd("b2 GETMETADATA INBOX /shared/vendor/bin")
        assert out[0] == b"* METADATA INBOX (/shared/vendor/bin ~{3}\r\na\x00b)"
        # the server's /shared annotations are the operator's
        out = await c.cmd('b3 SETMETADATA "" (/shared/comment "mine")')
        assert out == [b"b3 NO [NOPERM] Server shared annotations are read-only"]
        # malformed entry names are BAD (RFC 5464 3.2)
        for n, bad in enumerate(["/foo/bar", "/shared", "/shared//x", "/shared/x/",
                                 "/private/a*b", "private/x"]):
            out = await c.cmd(f'b{n + 4} SETMETADATA INBOX ({bad} "x")')
            assert out[-1].startswith(f"b{n + 4} BAD".encode()), out
        out = await c.cmd("c1 GETMETADATA Nowhere /private/comment")
        assert out == [b"c1 NO [NONEXISTENT] Mailbox does not exist: Nowhere"]
    finally:
        for cl in srv.clients:
            await cl.close()


async def test_metadata_limits_are_checked_before_anything_changes(store: Store) -> None:
    srv = Server(store, SessionConfig(hostname="imap.example.test", metadata_max_value=16,
                                      metadata_max_entries=3))
    try:
        await srv.add_user()
        c = await srv.connected()
        out = await c.cmd('a1 SETMETADATA INBOX (/private/a "1" /private/b "01234567890123456")')
        assert out == [b"a1 NO [METADATA MAXSIZE 16] Annotation value too large"]
        out = await c.cmd("a2 GETMETADATA INBOX (/private/a)")
        assert out[0] == b"* METADATA INBOX (/private/a NIL)"
        await c.cmd('a3 SETMETADATA INBOX (/private/a "1" /private/b "2")')
        await c.cmd('a4 SETMETADATA "" (/private/c "3")')
        # the count is per account, server and mailboxes together; all or nothing
        out = await c.cmd('a5 SETMETADATA Sent (/private/x "1" /private/y "2")')
        assert out == [b"a5 NO [METADATA TOOMANY] Too many annotations"]
        out = await c.cmd("a6 GETMETADATA Sent (/private/x)")
        assert out[0] == b"* METADATA Sent (/private/x NIL)"
        # replacing a value or removing one is always possible
        assert (await c.cmd('a7 SETMETADATA INBOX (/private/a "9")'))[-1].startswith(b"a7 OK")
        assert (await c.cmd("a8 SETMETADATA INBOX (/private/b NIL)"))[-1].startswith(b"a8 OK")
        assert (await c.cmd('a9 SETMETADATA Sent (/private/x "1")'))[-1].startswith(b"a9 OK")
    finally:
        for cl in srv.clients:
            await cl.close()


async def test_metadata_follows_rename_and_goes_with_delete(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        other = await srv.add_user("bob@example.test")
        c = await srv.connected()
        await c.cmd("a1 CREATE Projects/Alpha")
        await c.cmd('a2 SETMETADATA Projects/Alpha (/private/comment "alpha" /shared/comment "s")')
        await c.cmd('a3 SETMETADATA "" (/private/comment "server")')
        await c.cmd("a4 RENAME Projects Work")
        out = await c.cmd("a5 GETMETADATA Work/Alpha (/private/comment /shared/comment)")
        assert out[0] == b'* METADATA Work/Alpha (/private/comment "alpha" /shared/comment "s")'
        # RFC 9590 2: LIST RETURN (METADATA (...)) after each LIST response
        out = await c.cmd('a6 LIST "" "Work/*" RETURN (METADATA (/private/comment))')
        assert out == [
            b'* LIST (\\HasNoChildren) "/" Work/Alpha',
            b'* METADATA Work/Alpha (/private/comment "alpha")',
            b"a6 OK LIST completed",
        ]
        await c.cmd("a7 DELETE Work/Alpha")
        await c.cmd("a8 CREATE Work/Alpha")
        out = await c.cmd("a9 GETMETADATA Work/Alpha /private/comment")
        assert out[0] == b"* METADATA Work/Alpha (/private/comment NIL)"
        assert await store.metadata_get(acc, None) == {"/private/comment": b"server"}
        # another account sees none of it
        bob = await srv.connected("bob@example.test")
        out = await bob.cmd('b1 GETMETADATA "" /private/comment')
        assert out[0] == b'* METADATA "" (/private/comment NIL)'
        assert await store.metadata_get(other, None) == {}
        inbox = await store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        assert await store.metadata_get(other, inbox.id) == {}
    finally:
        for cl in srv.clients:
            await cl.close()
