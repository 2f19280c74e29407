"""Folders, pages, threads, search (IMAP's engine) and bulk actions on a real store."""

from __future__ import annotations

import asyncio

import pytest

from mailwright.app import AppContext
from mailwright.proto.imap import ast
from mailwright.web.webmail.contacts import complete
from mailwright.web.webmail.live import change_events
from mailwright.web.webmail.mailbox import (
    QueryError,
    apply_action,
    folders,
    list_page,
    parse_query,
    thread_of,
)
from tests.smtpd.harness import add_user
from tests.webmail.support import mail, put


async def test_folders_order_and_counts(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    await ctx.store.create_mailbox(alice.id, "Projects")
    await put(ctx.store, alice.id, "INBOX", mail("one"))
    await put(ctx.store, alice.id, "INBOX", mail("two"), ("\\Seen",))
    got = [(f.label, f.messages, f.unseen) for f in await folders(ctx.store, alice.id)]
    assert got == [("Inbox", 2, 1), ("Drafts", 0, 0), ("Sent", 0, 0), ("Archive", 0, 0),
                   ("Junk", 0, 0), ("Trash", 0, 0), ("Projects", 0, 0)]


async def test_list_page_paging_newest_first(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    for i in range(7):
        await put(ctx.store, alice.id, "INBOX", mail(f"m{i}"))
    box = await ctx.store.get_mailbox(alice.id, "INBOX")
    assert box is not None
    first = await list_page(ctx.store, box, size=3)
    assert [r.subject for r in first.rows] == ["m6", "m5", "m4"]
    assert (first.number, first.pages, first.total) == (1, 3, 7)
    last = await list_page(ctx.store, box, size=3, page=99)
    assert [r.subject for r in last.rows] == ["m0"] and last.number == 3
    assert last.rows[0].from_[0].address == "bob@example.org"


async def test_list_page_threads(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    await put(ctx.store, alice.id, "INBOX", mail("Plans", msgid="<a@x>"))
    await put(ctx.store, alice.id, "INBOX", mail("Other", msgid="<o@x>"))
    await put(ctx.store, alice.id, "INBOX", mail("Re: Plans", msgid="<b@x>", refs="<a@x>"),
              ("\\Seen",))
    await put(ctx.store, alice.id, "INBOX", mail("Re: Plans", msgid="<c@x>",
                                                 refs="<a@x> <b@x>"))
    box = await ctx.store.get_mailbox(alice.id, "INBOX")
    assert box is not None
    page = await list_page(ctx.store, box, threaded=True)
    assert [(r.subject, r.thread_size, r.thread_unseen) for r in page.rows] == [
        ("Re: Plans", 3, 2), ("Other", 1, 1)]
    assert await thread_of(ctx.store, box, 3) == [1, 3, 4]


async def test_list_page_search_uses_imap_search(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    await put(ctx.store, alice.id, "INBOX", mail("Budget", body="numbers for =?x"))
    await put(ctx.store, alice.id, "INBOX", mail("Lunch", sender="carol@example.org",
                                                 body="pizza budget"), ("\\Flagged",))
    await put(ctx.store, alice.id, "INBOX", mail("=?utf-8?q?Caf=C3=A9?=", body="coffee"))
    box = await ctx.store.get_mailbox(alice.id, "INBOX")
    assert box is not None

    async def subjects(q: str) -> list[str]:
        return [r.subject for r in (await list_page(ctx.store, box, query=q)).rows]

    assert await subjects("budget") == ["Lunch", "Budget"]
    assert await subjects("subject:budget") == ["Budget"]
    assert await subjects("from:carol") == ["Lunch"]
    assert await subjects("is:flagged") == ["Lunch"]
    assert await subjects("budget -is:flagged") == ["Budget"]
    assert await subjects("café") == ["Café"]
    assert await subjects("pizza OR coffee") == ["Café", "Lunch"]
    assert await subjects("nothing-like-this") == []


def test_parse_query() -> None:
    assert parse_query("") == ast.SearchAll()
    assert parse_query('"two words"') == ast.SearchText("text", "two words")
    assert parse_query("to:bob since:2026-01-02") == ast.SearchAnd((
        ast.SearchHeader("To", "bob"),
        ast.SearchDate("internal", "since", __import__("datetime").date(2026, 1, 2))))
    with pytest.raises(QueryError):
        parse_query("before:yesterday")
    with pytest.raises(QueryError):
        parse_query("is:sparkly")
    with pytest.raises(QueryError):
        parse_query(" ".join(["x"] * 17))


async def test_apply_action_flags_move_delete(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    a = await put(ctx.store, alice.id, "INBOX", mail("a"))
    b = await put(ctx.store, alice.id, "INBOX", mail("b"))
    inbox = await ctx.store.get_mailbox(alice.id, "INBOX")
    trash = await ctx.store.get_mailbox(alice.id, "Trash")
    assert inbox is not None and trash is not None
    assert await apply_action(ctx.store, alice.id, inbox, [a.uid, b.uid], "read") == 2
    assert all(r.seen for r in await ctx.store.list_messages(inbox.id))
    assert await apply_action(ctx.store, alice.id, inbox, [a.uid], "move", "Archive") == 1
    assert await apply_action(ctx.store, alice.id, inbox, [b.uid], "delete") == 1
    assert await ctx.store.list_messages(inbox.id) == []
    (in_trash,) = await ctx.store.list_messages(trash.id)
    assert await apply_action(ctx.store, alice.id, trash, [in_trash.uid], "delete") == 1
    assert await ctx.store.list_messages(trash.id) == []
    with pytest.raises(LookupError):
        await apply_action(ctx.store, alice.id, inbox, [a.uid], "move", "Nowhere")


async def test_complete_from_history(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    await put(ctx.store, alice.id, "Sent", mail("x", sender="alice@example.test",
                                                to="Carol Smith <carol@example.org>"))
    await put(ctx.store, alice.id, "INBOX", mail("y", sender="Carl <carl@example.org>"))
    await put(ctx.store, alice.id, "Junk", mail("z", sender="cash@spam.example"))
    got = [(p.name, p.address) for p in await complete(ctx.store, alice.id, "ca")]
    assert got == [("Carol Smith", "carol@example.org"), ("Carl", "carl@example.org")]
    assert [p.address for p in await complete(ctx.store, alice.id, "smi")] == [
        "carol@example.org"]
    assert await complete(ctx.store, alice.id, "") == []


async def test_change_events_on_delivery(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    inbox = await ctx.store.get_mailbox(alice.id, "INBOX")
    assert inbox is not None
    stream = change_events(ctx.store, alice.id, keepalive=0.05)
    assert await anext(stream) == b"retry: 3000\nevent: ready\ndata: {}\n\n"
    assert await anext(stream) == b": keepalive\n\n"
    await put(ctx.store, alice.id, "INBOX", mail("new"))
    event = b""
    for _ in range(1000):  # keep-alive comments may come first
        event = await asyncio.wait_for(anext(stream), 10)
        if event != b": keepalive\n\n":
            break
    assert event.startswith(b"event: change\n")
    assert f'"mailbox": {inbox.id}'.encode() in event and b'"unseen": 1' in event
    await stream.aclose()
    assert ctx.store.changes.watchers(inbox.id) == 0


async def test_folders_and_actions_in_a_shared_folder(ctx: AppContext) -> None:
    """RFC 4314 sharing in the webmail: bob sees alice's shared folder under the same name as
    in IMAP, and reads, flags and moves there only as far as the store's ACL lets him."""
    from mailwright.store.api import AccessDenied

    alice = await add_user(ctx.store, "alice")
    bob = await add_user(ctx.store, "bob")
    projects = await ctx.store.create_mailbox(alice.id, "Projects")
    secret = await ctx.store.create_mailbox(alice.id, "Secret")
    one = await put(ctx.store, alice.id, "Projects", mail("plan"))
    await put(ctx.store, alice.id, "Secret", mail("hidden"))
    await ctx.store.acl_set(alice.id, projects.id, "bob@example.test", "lrs")
    shared = [f for f in await folders(ctx.store, bob.id) if f.name.startswith("Other Users/")]
    assert [(f.name, f.messages, f.unseen, f.rights) for f in shared] == [
        ("Other Users/alice@example.test/Projects", 1, 1, "lrs")]
    assert secret.id not in {f.id for f in await folders(ctx.store, bob.id)}
    # s: bob may mark it read; w: he may not flag it; t and e: he may not move it out
    assert await apply_action(ctx.store, bob.id, projects, [one.uid], "read") == 1
    with pytest.raises(AccessDenied):
        await apply_action(ctx.store, bob.id, projects, [one.uid], "flag")
    with pytest.raises(AccessDenied):
        await apply_action(ctx.store, bob.id, projects, [one.uid], "archive")
    # into the shared folder from bob's INBOX needs i
    mine = await put(ctx.store, bob.id, "INBOX", mail("to share"))
    inbox = await ctx.store.get_mailbox(bob.id, "INBOX")
    assert inbox is not None
    target = "Other Users/alice@example.test/Projects"
    with pytest.raises(AccessDenied):
        await apply_action(ctx.store, bob.id, inbox, [mine.uid], "move", target)
    await ctx.store.acl_set(alice.id, projects.id, "bob@example.test", "+i")
    assert await apply_action(ctx.store, bob.id, inbox, [mine.uid], "move", target) == 1
    assert (await ctx.store.mailbox_status(projects.id)).messages == 2
    # a folder nobody shared is not a move target either
    with pytest.raises(LookupError):
        await apply_action(ctx.store, bob.id, inbox, [1], "move",
                           "Other Users/alice@example.test/Secret")
