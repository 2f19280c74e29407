"""Rights in an already selected shared mailbox (RFC 4314 4 and 5.1.1), flags on COPY and
STORE by a user with some of s, t, w, and the owner's quota on a shared mailbox (RFC 9208),
over IMAP on both store backends."""

from __future__ import annotations

from pathlib import Path

from imap_harness import Client, Server, imap_server, message
from tests.support.backends import Backend

SHARED = '"Other Users/alice@example.test/Projects"'


def _flags(lines: list[bytes], seq: int) -> set[bytes]:
    """The flags of message `seq` in the FETCH responses among `lines` (\\Recent left out)."""
    for line in lines:
        head = b"* %d FETCH (" % seq
        if line.startswith(head) and b"FLAGS (" in line:
            inner = line.split(b"FLAGS (", 1)[1].split(b")", 1)[0]
            return set(inner.split()) - {b"\\Recent"}
    raise AssertionError(f"no FLAGS of {seq} in {lines!r}")


async def _two(srv: Server) -> tuple[int, int, Client, Client]:
    alice = await srv.add_user("alice@example.test")
    bob = await srv.add_user("bob@example.test")
    a = await srv.connected("alice@example.test")
    b = await srv.connected("bob@example.test")
    assert (await a.cmd("a0 CREATE Projects"))[-1].startswith(b"a0 OK")
    return alice, bob, a, b


async def test_acl_revoked_reader_gets_noperm_for_search_sort_thread(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice, _, a, b = await _two(srv)
        for i in (1, 2):
            await srv.deliver(alice, message(i), "Projects")
        await a.cmd("a1 SETACL Projects bob@example.test lr")
        assert (await b.cmd(f"b1 EXAMINE {SHARED}"))[-1].startswith(b"b1 OK")
        assert (await b.cmd("b2 SEARCH ALL"))[0] == b"* SEARCH 1 2"
        await a.cmd("a2 DELETEACL Projects bob@example.test")
        noperm = b"NO [NOPERM] You lack the right(s) r on this mailbox"
        for n, command in enumerate([
            "SEARCH ALL", "UID SEARCH RETURN (MIN MAX COUNT) ALL", "SORT (SUBJECT) UTF-8 ALL",
            "UID SORT RETURN (ALL) (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
            "ESEARCH ALL", "ESEARCH IN (SELECTED) ALL", "FETCH 1 BODY.PEEK[]",
        ]):
            out = await b.cmd(f"r{n} {command}")
            assert out[-1] == f"r{n} ".encode() + noperm, (command, out)
            assert not any(b"message" in line for line in out), out
        # the session stays selected (RFC 4314 5.1.1: NO, not BYE); given back, it reads again
        await a.cmd("a3 SETACL Projects bob@example.test lr")
        assert (await b.cmd("b3 SEARCH ALL"))[0] == b"* SEARCH 1 2"
        out = await b.cmd("b4 ESEARCH IN (SELECTED) ALL")
        assert out[0].startswith(b'* ESEARCH (TAG "b4" MAILBOX "Other Users/alice@example.test/'
                                 b'Projects" UIDVALIDITY '), out
        assert (await b.cmd("b5 CLOSE"))[-1] == b"b5 OK CLOSE completed"


async def test_acl_updating_search_stops_when_r_is_revoked(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice, _, a, b = await _two(srv)
        await srv.deliver(alice, message(1), "Projects")
        await a.cmd("a1 SETACL Projects bob@example.test lr")
        await b.cmd(f"b1 EXAMINE {SHARED}")
        out = await b.cmd("b2 UID SEARCH RETURN (UPDATE) ALL")
        assert out[-1] == b"b2 OK UID SEARCH completed"
        await a.cmd("a2 DELETEACL Projects bob@example.test")
        await srv.deliver(alice, message(2), "Projects")
        out = await b.cmd("b3 NOOP")
        assert b'* NO [NOUPDATE "b2"] No right to read this mailbox' in out
        assert not any(b"ADDTO" in line for line in out)


async def test_acl_copy_drops_deleted_and_store_replace_changes_only_permitted_flags(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, bob, a, b = await _two(srv)
        await srv.deliver(bob, message(1), "INBOX", flags=("\\Deleted", "\\Draft"))
        await srv.deliver(bob, message(2), "INBOX", flags=("\\Seen", "$Forwarded"))
        # RFC 4314 4's example: "rwis" on the target
        await a.cmd("a1 SETACL Projects bob@example.test lrwis")
        await b.cmd("b1 SELECT INBOX")
        out = await b.cmd(f"b2 COPY 1:2 {SHARED}")
        assert out[-1].startswith(b"b2 OK [COPYUID ")
        await a.cmd("a2 SELECT Projects")
        out = await a.cmd("a3 FETCH 1:2 (FLAGS)")
        assert _flags(out, 1) == {b"\\Draft"}
        assert _flags(out, 2) == {b"$Forwarded", b"\\Seen"}
        # STORE FLAGS (replace) with w but not s: \Seen stays, the keywords are replaced
        await b.cmd(f"b3 SELECT {SHARED}")
        await a.cmd("a4 SETACL Projects bob@example.test lrwi")
        out = await b.cmd("b4 STORE 2 FLAGS (\\Flagged)")
        assert out[-1] == b"b4 OK STORE completed"
        assert _flags(out, 2) == {b"\\Flagged", b"\\Seen"}
        # +FLAGS naming \Seen (no s) and \Answered (w): only \Answered changes
        out = await b.cmd("b5 STORE 1 +FLAGS (\\Seen \\Answered)")
        assert out[-1] == b"b5 OK STORE completed"
        assert _flags(out, 1) == {b"\\Answered", b"\\Draft"}
        # only flags he has no right to: refused
        out = await b.cmd("b6 STORE 1 +FLAGS (\\Seen)")
        assert out[-1] == b"b6 NO [NOPERM] You lack the right(s) s on this mailbox"


async def test_acl_quota_of_a_shared_mailbox_is_the_owners(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice, bob, a, b = await _two(srv)
        await srv.store.update_account(alice, quota_bytes=10 * 1024)
        await srv.store.update_account(bob, quota_bytes=1024)
        await a.cmd("a1 SETACL Projects bob@example.test lri")
        out = await b.cmd(f"b1 GETQUOTAROOT {SHARED}")
        assert out[0] == (b'* QUOTAROOT "Other Users/alice@example.test/Projects"'
                          b' "Other Users/alice@example.test"')
        assert out[1] == b'* QUOTA "Other Users/alice@example.test" (STORAGE 0 10)'
        out = await b.cmd('b2 GETQUOTA "Other Users/alice@example.test"')
        assert out[0] == b'* QUOTA "Other Users/alice@example.test" (STORAGE 0 10)'
        assert (await b.cmd('b3 GETQUOTA ""'))[0] == b'* QUOTA "" (STORAGE 0 1)'
        # a root of an account that shares nothing with bob does not exist for him
        await srv.add_user("carol@example.test")
        out = await b.cmd('b4 GETQUOTA "Other Users/carol@example.test"')
        assert out[-1] == b"b4 NO [NONEXISTENT] No such quota root"
        # 2 KiB: over bob's own quota, within alice's, to which it is charged
        body = b"Subject: big\r\n\r\n" + b"x" * 2048 + b"\r\n"
        out = await b.cmd(f"b5 APPEND {SHARED} {{{len(body)}+}}\r\n".encode() + body)
        assert out[-1].startswith(b"b5 OK [APPENDUID "), out
        assert (await srv.store.usage(alice)).bytes == len(body)
        assert (await srv.store.usage(bob)).bytes == 0
        # 9 KiB more would exceed alice's: refused at the literal's announcement
        big = b"Subject: big\r\n\r\n" + b"x" * 9 * 1024 + b"\r\n"
        out = await b.cmd(f"b6 APPEND {SHARED} {{{len(big)}+}}\r\n".encode() + big)
        assert out[-1] == b"b6 NO [OVERQUOTA] Quota exceeded"


async def test_acl_fetch_after_s_is_revoked_serves_data_and_leaves_seen(
    tmp_path: Path, backend: Backend
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice, _, a, b = await _two(srv)
        await srv.deliver(alice, message(1), "Projects")
        await a.cmd("a1 SETACL Projects bob@example.test lrs")
        assert (await b.cmd(f"b1 SELECT {SHARED}"))[-1] == b"b1 OK [READ-WRITE] SELECT completed"
        await a.cmd("a2 SETACL Projects bob@example.test -s")
        out = await b.cmd("b2 FETCH 1 BODY[]")
        assert out[-1] == b"b2 OK FETCH completed" and b"Subject: message 1" in out[0]
        assert (await a.cmd("a3 STATUS Projects (UNSEEN)"))[0] == b"* STATUS Projects (UNSEEN 1)"
