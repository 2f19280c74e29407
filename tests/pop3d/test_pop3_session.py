"""POP3 session semantics over a real store, SQLite and PostgreSQL (issue 6, RFC 1939 5-8)."""

from __future__ import annotations

import base64

from mailwright.pop3d.maildrop import uidl_for
from mailwright.pop3d.session import Pop3Session
from mailwright.proto import pop3
from mailwright.store.api import Account, FlagOp, Store
from tests.pop3d.harness import PASSWORD, add_message, add_user, fast_authenticator

MSG1 = b"Subject: one\r\n\r\n.dot line\r\nbody\r\n"
MSG2 = b"Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n"


def session(store: Store, *, owner: str = "t/1", loopback: bool = True, tls: bool = False,
            tls_available: bool = True) -> Pop3Session:
    return Pop3Session(
        store, fast_authenticator(store), peer_ip="127.0.0.1" if loopback else "192.0.2.9",
        loopback=loopback, tls=tls, tls_available=tls_available, owner=owner,
    )


async def login(s: Pop3Session, user: str = "bob@example.test") -> pop3.Reply:
    assert await s.handle(pop3.User(user)) == pop3.Ok()
    return await s.handle(pop3.Pass(PASSWORD))


async def setup(store: Store) -> Account:
    account = await add_user(store, "bob")
    await add_message(store, account, MSG1)
    await add_message(store, account, MSG2)
    return account


async def inbox_records(store: Store, account: Account) -> dict[int, frozenset[str]]:
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    return {r.uid: r.flags for r in await store.list_messages(box.id)}


async def test_pop3_session_login_and_listing(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    assert await login(s) == pop3.Ok(f"Logged in, 2 messages ({len(MSG1) + len(MSG2)} octets)")
    assert await s.handle(pop3.Stat()) == pop3.Ok(f"2 {len(MSG1) + len(MSG2)}")
    listing = await s.handle(pop3.List())
    assert isinstance(listing, pop3.MultiLine)
    assert listing.lines == (f"1 {len(MSG1)}", f"2 {len(MSG2)}")
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    uidl = await s.handle(pop3.Uidl())
    assert isinstance(uidl, pop3.MultiLine)
    assert uidl.lines == (f"1 {uidl_for(box.uidvalidity, 1)}", f"2 {uidl_for(box.uidvalidity, 2)}")
    assert await s.handle(pop3.Uidl(2)) == pop3.Ok(f"2 {uidl_for(box.uidvalidity, 2)}")
    assert await s.handle(pop3.List(3)) == pop3.Err("No message 3, the maildrop has 2")
    await s.close()


async def test_pop3_session_uidl_format_is_dovecot_compatible() -> None:
    assert uidl_for(0x663A8C01, 1) == "00000001663A8C01"
    assert uidl_for(1, 0xFFFFFFFF) == "FFFFFFFF00000001"


async def test_pop3_session_retr_and_top_are_exact(store: Store) -> None:
    await setup(store)
    s = session(store)
    await login(s)
    assert await s.handle(pop3.Retr(1)) == pop3.MultiLine(f"{len(MSG1)} octets", data=MSG1)
    wire = (await s.handle(pop3.Retr(1))).encode()
    assert wire == b"+OK 33 octets\r\nSubject: one\r\n\r\n..dot line\r\nbody\r\n.\r\n"
    assert await s.handle(pop3.Top(2, 0)) == pop3.MultiLine(data=b"Subject: two\r\nX: y\r\n\r\n")
    assert await s.handle(pop3.Top(2, 2)) == pop3.MultiLine(
        data=b"Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\n"
    )
    assert await s.handle(pop3.Top(2, 99)) == pop3.MultiLine(data=MSG2)
    await s.close()


async def test_pop3_session_wrong_password_is_auth_error(store: Store) -> None:
    await setup(store)
    s = session(store)
    await s.handle(pop3.User("bob@example.test"))
    assert await s.handle(pop3.Pass("nope")) == pop3.Err("Authentication failed", pop3.Code.AUTH)
    await s.handle(pop3.User("nobody@example.test"))
    assert await s.handle(pop3.Pass(PASSWORD)) == pop3.Err("Authentication failed", "AUTH")
    assert s.account is None
    await s.close()


async def test_pop3_session_plaintext_needs_tls_off_loopback(store: Store) -> None:
    await setup(store)
    s = session(store, loopback=False)
    refused = pop3.Err("Plaintext authentication needs TLS, use STLS first", pop3.Code.AUTH)
    assert await s.handle(pop3.User("bob@example.test")) == refused
    assert await s.handle(pop3.Pass(PASSWORD)) == refused
    assert await s.handle(pop3.Auth("PLAIN", b"\x00bob@example.test\x00" + PASSWORD.encode())) == refused
    capa = await s.handle(pop3.Capa())
    assert isinstance(capa, pop3.MultiLine)
    assert "STLS" in capa.lines and "USER" not in capa.lines
    assert not any(line.startswith("SASL") for line in capa.lines)
    assert await s.handle(pop3.Stls()) == pop3.Ok("Begin TLS negotiation")
    s.tls_started()
    capa = await s.handle(pop3.Capa())
    assert isinstance(capa, pop3.MultiLine)
    assert "USER" in capa.lines and "SASL PLAIN" in capa.lines and "STLS" not in capa.lines
    assert (await login(s)).encode().startswith(b"+OK")
    await s.close()


async def test_pop3_session_stls_unavailable(store: Store) -> None:
    s = session(store, tls_available=False)
    assert await s.handle(pop3.Stls()) == pop3.Err("TLS is not available")


async def test_pop3_session_auth_plain(store: Store) -> None:
    await setup(store)
    token = b"\x00bob@example.test\x00" + PASSWORD.encode()
    s = session(store)
    assert await s.handle(pop3.Auth("PLAIN")) == pop3.Continuation(b"")
    assert (await s.handle(pop3.AuthResponse(token))).encode().startswith(b"+OK Logged in")
    await s.close()
    s = session(store, owner="t/2")
    assert (await s.handle(pop3.Auth("PLAIN", token))).encode().startswith(b"+OK Logged in")
    await s.close()
    s = session(store, owner="t/3")
    assert await s.handle(pop3.Auth("PLAIN", b"admin" + token)) == pop3.Err(
        "Acting as another user is not supported", pop3.Code.AUTH
    )
    bad = await s.handle(pop3.Auth("PLAIN", b"no-nul"))
    assert isinstance(bad, pop3.Err) and bad.code == pop3.Code.AUTH
    assert await s.handle(pop3.Auth("PLAIN")) == pop3.Continuation(b"")
    assert await s.handle(pop3.AuthCancel()) == pop3.Err("Authentication cancelled")
    assert await s.handle(pop3.AuthList()) == pop3.MultiLine(lines=("PLAIN",))
    assert base64.b64encode(token)  # the core does the base64; the session sees octets


async def test_pop3_session_second_session_gets_in_use(store: Store) -> None:
    await setup(store)
    first = session(store, owner="node/1")
    await login(first)
    second = session(store, owner="node/2")
    reply = await login(second)
    assert reply == pop3.Err("Maildrop is in use by another POP3 session", pop3.Code.IN_USE)
    assert reply.encode().startswith(b"-ERR [IN-USE] ")
    await second.close()
    await first.close()  # a dropped connection releases the lock too
    third = session(store, owner="node/3")
    assert (await login(third)).encode().startswith(b"+OK")
    await third.close()


async def test_pop3_session_dropped_connection_deletes_nothing(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    await login(s)
    assert await s.handle(pop3.Dele(1)) == pop3.Ok("Message 1 deleted")
    assert await s.handle(pop3.Dele(2)) == pop3.Ok("Message 2 deleted")
    await s.close()
    assert set(await inbox_records(store, account)) == {1, 2}


async def test_pop3_session_deletions_apply_at_quit(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    await login(s)
    await s.handle(pop3.Dele(1))
    assert await s.handle(pop3.Dele(1)) == pop3.Err("Message 1 is already deleted")
    assert await s.handle(pop3.Retr(1)) == pop3.Err("Message 1 is already deleted")
    assert await s.handle(pop3.Top(1, 0)) == pop3.Err("Message 1 is already deleted")
    assert await s.handle(pop3.List(1)) == pop3.Err("Message 1 is already deleted")
    assert await s.handle(pop3.Stat()) == pop3.Ok(f"1 {len(MSG2)}")
    listing = await s.handle(pop3.List())
    assert isinstance(listing, pop3.MultiLine) and listing.lines == (f"2 {len(MSG2)}",)
    # Before QUIT the store still has it (IMAP sees nothing yet).
    assert set(await inbox_records(store, account)) == {1, 2}
    assert await s.handle(pop3.Quit()) == pop3.Ok("Logging out, 1 messages deleted")
    assert set(await inbox_records(store, account)) == {2}
    trash = await store.get_mailbox(account.id, "Trash")
    assert trash is not None and await store.list_messages(trash.id) == []
    await s.close()


async def test_pop3_session_rset_unmarks(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    await login(s)
    await s.handle(pop3.Dele(1))
    await s.handle(pop3.Dele(2))
    assert await s.handle(pop3.Rset()) == pop3.Ok(f"2 messages ({len(MSG1) + len(MSG2)} octets)")
    assert await s.handle(pop3.Quit()) == pop3.Ok("Logging out, 0 messages deleted")
    assert set(await inbox_records(store, account)) == {1, 2}


async def test_pop3_session_leave_on_server_moves_to_trash(store: Store) -> None:
    account = await setup(store)
    await store.update_account(account.id, pop3_keep=True)
    s = session(store)
    await login(s)
    await s.handle(pop3.Retr(1))
    await s.handle(pop3.Dele(1))
    assert await s.handle(pop3.Quit()) == pop3.Ok("Logging out, 1 messages deleted")
    assert set(await inbox_records(store, account)) == {2}
    trash = await store.get_mailbox(account.id, "Trash")
    assert trash is not None
    moved = await store.list_messages(trash.id)
    assert len(moved) == 1 and "\\Seen" in moved[0].flags
    assert await store.read_blob(moved[0].blob_id) == MSG1


async def test_pop3_session_retr_marks_seen_top_does_not(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    await login(s)
    await s.handle(pop3.Retr(1))
    await s.handle(pop3.Top(2, 1))
    await s.handle(pop3.Quit())
    flags = await inbox_records(store, account)
    assert "\\Seen" in flags[1] and "\\Seen" not in flags[2]


async def test_pop3_session_seen_survives_a_dropped_connection(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    await login(s)
    await s.handle(pop3.Retr(2))
    await s.close()
    assert "\\Seen" in (await inbox_records(store, account))[2]


async def test_pop3_session_maildrop_is_a_snapshot(store: Store) -> None:
    account = await setup(store)
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    s = session(store)
    await login(s)
    # A new delivery and an IMAP expunge while the POP3 session is open:
    await add_message(store, account, b"Subject: three\r\n\r\nnew\r\n")
    await store.store_flags(box.id, [1], FlagOp.ADD, {"\\Deleted"})
    await store.expunge(box.id, [1])
    assert await s.handle(pop3.Stat()) == pop3.Ok(f"2 {len(MSG1) + len(MSG2)}")
    listing = await s.handle(pop3.List())
    assert isinstance(listing, pop3.MultiLine) and len(listing.lines) == 2
    retr = await s.handle(pop3.Retr(1))
    # Content of an expunged message may still be readable; if not, the error says why.
    assert retr in (
        pop3.MultiLine(f"{len(MSG1)} octets", data=MSG1),
        pop3.Err("Message 1 was removed by another session"),
    )
    assert await s.handle(pop3.Retr(2)) == pop3.MultiLine(f"{len(MSG2)} octets", data=MSG2)
    # Deleting a message IMAP already expunged is harmless.
    await s.handle(pop3.Dele(1))
    await s.handle(pop3.Dele(2))
    assert await s.handle(pop3.Quit()) == pop3.Ok("Logging out, 2 messages deleted")
    assert set(await inbox_records(store, account)) == {3}


async def test_pop3_session_uidl_is_stable_across_sessions(store: Store) -> None:
    account = await setup(store)
    s = session(store)
    await login(s)
    before = await s.handle(pop3.Uidl(2))
    await s.handle(pop3.Dele(1))
    await s.handle(pop3.Quit())
    await add_message(store, account, b"Subject: later\r\n\r\nx\r\n")
    s = session(store, owner="t/2")
    await login(s)
    assert isinstance(before, pop3.Ok)
    assert await s.handle(pop3.Uidl(1)) == pop3.Ok("1 " + before.text.split()[1])
    await s.close()


async def test_pop3_session_retr_in_any_order_with_prefetch(store: Store) -> None:
    account = await setup(store)
    msg3 = b"Subject: three\r\n\r\n3\r\n"
    await add_message(store, account, msg3)
    s = session(store)
    await login(s)
    # In order (the next one is prefetched), out of order, again, and after a DELE.
    order = [1, 2, 3, 2, 1, 1, 3]
    expected = {1: MSG1, 2: MSG2, 3: msg3}
    for n in order:
        assert await s.handle(pop3.Retr(n)) == pop3.MultiLine(
            f"{len(expected[n])} octets", data=expected[n]
        )
    await s.handle(pop3.Retr(1))  # prefetches 2
    await s.handle(pop3.Dele(2))
    assert await s.handle(pop3.Retr(2)) == pop3.Err("Message 2 is already deleted")
    assert await s.handle(pop3.Retr(3)) == pop3.MultiLine(f"{len(msg3)} octets", data=msg3)
    await s.handle(pop3.Retr(1))  # leaves a prefetch pending at QUIT
    assert await s.handle(pop3.Quit()) == pop3.Ok("Logging out, 1 messages deleted")
