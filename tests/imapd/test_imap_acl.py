"""Sharing through IMAP (RFC 4314 ACL, RFC 8440 LIST-MYRIGHTS, RFC 2342 other users'
namespace) on both store backends: alice shares a folder with bob, bob works in it within his
rights in a session of his own and is refused outside them; groups; and a hostile user who
tries every name trick to reach a mailbox nobody shared with him."""

from __future__ import annotations

from pathlib import Path

from imap_harness import Client, Server, imap_server, message
from tests.support.backends import Backend

SHARED = '"Other Users/alice@example.test/Projects"'


async def _two(srv: Server) -> tuple[int, int, Client, Client]:
    alice = await srv.add_user("alice@example.test")
    bob = await srv.add_user("bob@example.test")
    a = await srv.connected("alice@example.test")
    b = await srv.connected("bob@example.test")
    assert (await a.cmd("a0 CREATE Projects"))[-1].startswith(b"a0 OK")
    return alice, bob, a, b


async def test_acl_capabilities_and_namespace(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, _, a, _ = await _two(srv)
        caps = (await a.cmd("c1 CAPABILITY"))[0]
        for cap in (b" ACL", b" RIGHTS=texk", b" LIST-MYRIGHTS"):
            assert cap in caps
        assert (await a.cmd("c2 NAMESPACE"))[0] == (
            b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL')


async def test_acl_bob_reads_appends_expunges_within_his_rights(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice, _, a, b = await _two(srv)
        for i in (1, 2):
            await srv.deliver(alice, message(i), "Projects")
        # before sharing, bob does not even learn that the mailbox exists
        out = await b.cmd(f"b1 SELECT {SHARED}")
        assert out[-1] == b"b1 NO [NONEXISTENT] Mailbox does not exist: Other Users/alice@example.test/Projects"
        out = await b.cmd('b2 LIST "" "*"')
        assert out[-1] == b"b2 OK LIST completed"
        assert not any(b"Other Users" in line for line in out)

        # read-only share: lookup and read
        assert (await a.cmd("a1 SETACL Projects bob@example.test lr"))[-1] == b"a1 OK SETACL completed"
        out = await b.cmd('b3 LIST "Other Users/" "*" RETURN (MYRIGHTS)')
        assert out == [
            b'* LIST (\\Noselect \\HasChildren) "/" "Other Users/alice@example.test"',
            b'* LIST (\\HasNoChildren) "/" "Other Users/alice@example.test/Projects"',
            b'* MYRIGHTS "Other Users/alice@example.test/Projects" lr',
            b"b3 OK LIST completed",
        ]
        out = await b.cmd(f"b4 STATUS {SHARED} (MESSAGES UNSEEN)")
        assert out[0] == b'* STATUS "Other Users/alice@example.test/Projects" (MESSAGES 2 UNSEEN 2)'
        out = await b.cmd(f"b5 SELECT {SHARED}")
        assert b"* OK [PERMANENTFLAGS ()] Flags permitted" in out
        assert out[-1] == b"b5 OK [READ-ONLY] SELECT completed"
        out = await b.cmd("b6 FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: message 1" in out[0]
        # reading without s leaves \Seen alone (it is one flag for everybody, docs/imap.md)
        out = await a.cmd("a2 STATUS Projects (UNSEEN)")
        assert out[0] == b"* STATUS Projects (UNSEEN 2)"
        assert (await b.cmd("b7 STORE 1 +FLAGS (\\Seen)"))[-1] == (
            b"b7 NO [READ-ONLY] Mailbox is read-only")
        out = await b.cmd(f"b8 APPEND {SHARED} {{8+}}\r\nSubject:")
        assert out[-1] == b"b8 NO [NOPERM] You lack the right(s) i on this mailbox"
        out = await b.cmd("b9 COPY 1 INBOX")
        assert out[-1].startswith(b"b9 OK [COPYUID ")
        assert (await b.cmd("c0 MOVE 1 INBOX"))[-1] == b"c0 NO [READ-ONLY] Mailbox is read-only"
        out = await b.cmd(f"c1 GETACL {SHARED}")
        assert out[-1] == b"c1 NO [NOPERM] You lack the right(s) a on this mailbox"
        assert (await b.cmd(f"c2 MYRIGHTS {SHARED}"))[0] == (
            b'* MYRIGHTS "Other Users/alice@example.test/Projects" lr')
        assert (await b.cmd(f"c3 DELETE {SHARED}"))[-1] == (
            b"c3 NO [NOPERM] You lack the right(s) x on this mailbox")
        out = await b.cmd('c4 CREATE "Other Users/alice@example.test/Projects/Sub"')
        assert out[-1] == b"c4 NO [NOPERM] You lack the right(s) k on this mailbox"

        # more rights: s, i, t, e; SELECT is now READ-WRITE with the flags bob may change
        await a.cmd("a3 SETACL Projects bob@example.test +site")
        out = await b.cmd(f"c5 SELECT {SHARED}")
        assert b"* OK [PERMANENTFLAGS (\\Deleted \\Seen)] Flags permitted" in out
        assert out[-1] == b"c5 OK [READ-WRITE] SELECT completed"
        out = await b.cmd("c6 STORE 1 +FLAGS (\\Flagged)")
        assert out[-1] == b"c6 NO [NOPERM] You lack the right(s) w on this mailbox"
        out = await b.cmd("c7 STORE 1 +FLAGS (\\Seen)")
        assert out[-1] == b"c7 OK STORE completed"
        out = await b.cmd(f"c8 APPEND {SHARED} (\\Flagged) {{19+}}\r\nSubject: from bob\r\n")
        assert out[-1].startswith(b"c8 OK [APPENDUID ")
        out = await b.cmd("c9 STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert out[-1] == b"c9 OK STORE completed"
        out = await b.cmd("d0 EXPUNGE")
        assert b"* 2 EXPUNGE" in out and out[-1] == b"d0 OK EXPUNGE completed"
        # alice sees bob's changes: message 1 seen, message 2 gone, bob's message without the
        # \Flagged he had no right to set
        await a.cmd("a4 SELECT Projects")
        out = await a.cmd("a5 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert len([x for x in out if x.startswith(b"* ")]) == 2
        assert b"\\Seen" in out[0] and b"Subject: message 1" in out[0]
        assert b"Subject: from bob" in out[1] and b"\\Flagged" not in out[1]

        # revoked: bob's next command is refused, and the mailbox vanishes from his LIST
        await a.cmd("a6 DELETEACL Projects bob@example.test")
        out = await b.cmd("d1 STORE 1 +FLAGS (\\Deleted)")
        assert out[-1] == b"d1 NO [NOPERM] You lack the right(s) t on this mailbox"
        out = await b.cmd("d1a FETCH 1 BODY.PEEK[]")
        assert out[-1] == b"d1a NO [NOPERM] You lack the right(s) r on this mailbox"
        out = await b.cmd('d2 LIST "" "Other Users/*"')
        assert out == [b"d2 OK LIST completed"]


async def test_acl_group_and_create_inherit(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, _, a, b = await _two(srv)
        await srv.add_user("carol@example.test")
        await srv.store.add_alias("team@example.test", ["bob@example.test", "carol@example.test"])
        assert (await a.cmd("a1 SETACL Projects team@example.test lrik"))[-1].endswith(b"OK SETACL completed")
        out = await b.cmd('b1 CREATE "Other Users/alice@example.test/Projects/2026"')
        assert out[-1].startswith(b"b1 OK [MAILBOXID ")
        c = await srv.connected("carol@example.test")
        out = await c.cmd('c1 LIST "" "Other Users/alice@example.test/*" RETURN (MYRIGHTS)')
        assert b'* MYRIGHTS "Other Users/alice@example.test/Projects/2026" lrik' in out
        out = await a.cmd('a2 LIST "" "Projects*"')
        assert b'* LIST (\\HasNoChildren) "/" Projects/2026' in out
        # a mailbox moves within alice's tree only
        out = await b.cmd('b2 RENAME "Other Users/alice@example.test/Projects/2026" Mine')
        assert out[-1] == b"b2 NO [CANNOT] Mailboxes cannot move between accounts"


async def test_acl_hostile_names_never_reach_an_unshared_mailbox(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice, _, a, b = await _two(srv)
        await a.cmd("a1 CREATE Secret")
        await srv.deliver(alice, message(1), "Secret")
        await a.cmd("a2 SETACL Projects bob@example.test lr")
        tricks = [
            "Other Users/alice@example.test/Secret",
            "Other Users/alice@example.test/Projects/../Secret",
            "Other Users/alice@example.test/./Secret",
            "Other Users/alice@example.test//Secret",
            "Other Users/ALICE@EXAMPLE.TEST/Secret",
            "Other Users/alice@example.test/secret",
            "other users/alice@example.test/Projects",
            "Other Users/alice@example.test/INBOX",
            "Other Users/alice@example.test/inbox",
            "Other Users/alice@example.test",
            "Other Users/../alice@example.test/Secret",
            "Other Users/alice@example.test/Projects/",
            "Other Users/alice@example.test/&AC4ALg-/Secret",  # mUTF-7 for ".."
            "Other Users/alice@example.test/Pro&AGo-ects/../Secret",
            "Other Users/bob@example.test/INBOX",
            "Other Users/alice@example.test/Projects\x00",
            "Other Users/*/Secret",
            "Other Users/%/Secret",
        ]
        for n, name in enumerate(tricks):
            quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for verb in ("SELECT", "EXAMINE", "STATUS", "GETACL", "MYRIGHTS", "DELETE"):
                args = f"{quoted} (MESSAGES)" if verb == "STATUS" else quoted
                out = await b.cmd(f"h{n}{verb} {verb} {args}".encode("utf-8", "surrogateescape"))
                if name.endswith("/Projects/") and verb in ("SELECT", "EXAMINE", "STATUS",
                                                            "MYRIGHTS"):
                    # the trailing delimiter is dropped (RFC 9051 6.3.4): the shared folder
                    assert out[-1].startswith(f"h{n}{verb} OK".encode()), (name, verb, out)
                    continue
                assert out[-1].startswith((f"h{n}{verb} NO".encode(), f"h{n}{verb} BAD".encode())
                                          ), (name, verb, out)
                assert not any(b"Secret" in line and line.startswith(b"* ") for line in out), (
                    name, verb, out)
            out = await b.cmd(f'h{n}COPY APPEND {quoted} {{8+}}\r\nSubject:')
            assert b" OK " not in out[-1], (name, out)
        # nothing of Secret shows in bob's LIST, whatever the pattern
        for n, pattern in enumerate(["*", "Other Users/*", "Other Users/%/%", "%/%/%"]):
            out = await b.cmd(f'l{n} LIST "" "{pattern}"')
            theirs = [line for line in out if b"alice" in line]
            assert all(line.endswith((b'/alice@example.test"', b'/Projects"')) for line in theirs), out
        # and Secret is as alice left it
        out = await a.cmd("a3 STATUS Secret (MESSAGES)")
        assert out[0] == b"* STATUS Secret (MESSAGES 1)"
