"""Sieve at local delivery: real store (both backends), real directory and outbound queue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest

from mailwright.accounts.directory import Directory
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.mailauth.keys import KeyStore
from mailwright.mailauth.srs import SRS
from mailwright.queue.service import Outbound
from mailwright.sieve.delivery import SieveFilter, SieveSettings
from mailwright.sieve.interpreter import Limits
from mailwright.store.api import QuotaExceeded, Store, TraceEvent

MESSAGE = (
    b"From: Alice <alice@remote.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Quarterly report\r\n"
    b"Message-ID: <m1@remote.test>\r\n"
    b"\r\n"
    b"Numbers inside.\r\n"
)


@dataclass
class Rig:
    store: Store
    delivery: LocalDelivery
    bob: int
    carol: int

    async def send(self, data: bytes = MESSAGE, rcpts: tuple[str, ...] = ("bob@example.test",),
                   sender: str = "alice@remote.test", refuse: bool = False) -> Any:
        blob = await stage_bytes(self.store, data)
        return await self.delivery.deliver(blob, list(rcpts), sender=sender, refuse_in_smtp=refuse)

    async def folder(self, account: int, name: str) -> list[bytes]:
        mb = await self.store.get_mailbox(account, name)
        if mb is None:
            return []
        return [await self.store.read_blob(r.blob_id) for r in await self.store.list_messages(mb.id)]

    async def script(self, text: str, account: int | None = None) -> None:
        acc = self.bob if account is None else account
        await self.store.sieve_put(acc, "main", text)
        await self.store.sieve_activate(acc, "main")

    async def queued(self) -> list[tuple[str, str, bytes]]:
        out = []
        for e in await self.store.queue_list():
            for r in e.recipients:
                out.append((e.sender, r.address, await self.store.read_blob(e.blob_id)))
        return out


async def _rig(store: Store, settings: SieveSettings | None = None, srs: SRS | None = None,
               dkim_keys: KeyStore | None = None) -> Rig:
    await store.add_domain("example.test")
    bob = (await store.add_account("bob@example.test", "x")).id
    carol = (await store.add_account("carol@example.test", "x")).id
    directory = Directory(store)
    delivery = LocalDelivery(store, directory)
    outbound = Outbound(store, None, hostname="mx.example.test", owner="test",  # type: ignore[arg-type]
                        local=delivery)
    delivery.filter = SieveFilter(
        store, settings or SieveSettings(), hostname="mx.example.test", outbound=outbound,
        deliver_local=delivery.deliver, is_local=directory.is_local_domain, srs=srs,
        dkim_keys=dkim_keys,
    )
    return Rig(store, delivery, bob, carol)


async def test_sieve_delivery_fileinto_with_flags(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require ["fileinto", "imap4flags"];\n'
                     'if header :contains "subject" "report" { fileinto :flags "\\\\Flagged" "Archive"; }')
    await rig.send()
    assert await rig.folder(rig.bob, "INBOX") == []
    assert len(await rig.folder(rig.bob, "Archive")) == 1
    mb = await store.get_mailbox(rig.bob, "Archive")
    assert mb is not None
    (rec,) = await store.list_messages(mb.id)
    assert "\\Flagged" in rec.flags


async def test_sieve_delivery_fileinto_create_and_missing_folder(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require ["fileinto", "mailbox"];\n'
                     'fileinto :create "Lists/Reports"; fileinto "Nowhere";')
    await rig.send()
    assert len(await rig.folder(rig.bob, "Lists/Reports")) == 1
    assert len(await rig.folder(rig.bob, "INBOX")) == 1  # RFC 5228 4.1: missing -> INBOX


async def test_sieve_delivery_broken_script_keeps_mail(store: Store) -> None:
    rig = await _rig(store)
    await store.sieve_put(rig.bob, "main", "this is not sieve {")
    await store.sieve_activate(rig.bob, "main")
    await rig.send()
    assert len(await rig.folder(rig.bob, "INBOX")) == 1


async def test_sieve_delivery_over_limit_keeps_mail(store: Store) -> None:
    rig = await _rig(store, SieveSettings(limits=Limits(max_redirects=2)))
    await rig.script('redirect "a@remote.test"; redirect "b@remote.test"; redirect "c@remote.test";')
    await rig.send()
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    assert await rig.queued() == []  # a failed run does none of its actions


async def test_sieve_delivery_runtime_error_keeps_mail(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require ["include", "fileinto"]; fileinto "Archive"; include "missing";')
    await rig.send()
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    assert await rig.folder(rig.bob, "Archive") == []


async def test_sieve_delivery_discard(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('if header :contains "subject" "report" { discard; }')
    await rig.send()
    assert await rig.folder(rig.bob, "INBOX") == []


async def test_sieve_delivery_redirect_goes_through_the_queue(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require "copy"; redirect :copy "archive@remote.test";')
    await rig.send()
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    ((sender, rcpt, data),) = await rig.queued()
    assert (sender, rcpt) == ("alice@remote.test", "archive@remote.test")
    assert data.startswith(b"Delivered-To: bob@example.test\r\n")


async def test_sieve_delivery_redirect_to_another_domain_is_srs_rewritten(store: Store) -> None:
    srs = SRS(b"test-secret")
    rig = await _rig(store, srs=srs)
    await rig.script('redirect "archive@remote.test";')
    await rig.send()
    ((sender, rcpt, _data),) = await rig.queued()
    assert rcpt == "archive@remote.test"
    assert sender.upper().startswith("SRS0=") and sender.endswith("@example.test"), sender
    assert srs.reverse(sender) == "alice@remote.test"  # a bounce finds its way back


async def test_sieve_delivery_redirect_to_another_domain_is_arc_sealed(
        store: Store, tmp_path: Path) -> None:
    """RFC 8617 5.1: the redirected copy carries an ARC set by the account's domain over what
    our MX saw (its Authentication-Results, first in the stored copy); dkimpy verifies it."""
    keys = KeyStore(tmp_path)
    key = keys.generate("example.test", algorithm="rsa", selector="arc")
    rig = await _rig(store, srs=SRS(b"test-secret"), dkim_keys=keys)
    await rig.script('require "copy"; redirect :copy "archive@remote.test"; '
                     'redirect "carol@example.test";')
    arrived = (b"Authentication-Results: mx.example.test; spf=pass "
               b"smtp.mailfrom=alice@remote.test; dkim=none; dmarc=none; arc=none\r\n" + MESSAGE)
    await rig.send(arrived)
    ((_sender, rcpt, data),) = await rig.queued()
    assert rcpt == "archive@remote.test"
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("ARC-Seal: i=1;") and "cv=none" in head
    assert "d=example.test" in head and "s=arc" in head
    assert "ARC-Authentication-Results: i=1; mx.example.test; spf=pass" in " ".join(head.split())

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        wanted = (key.dns_name + ".").encode()
        return key.txt_record().encode() if name.rstrip(b".") + b"." == wanted else b""

    cv, _results, reason = dkimpy.arc_verify(data, dnsfunc=dnsfunc)
    assert cv == b"pass", reason
    # the copy redirected to a local account stays unsealed (no next hop to vouch to)
    [local] = await rig.folder(rig.carol, "INBOX")
    assert b"ARC-Seal" not in local


async def test_sieve_delivery_redirect_loop_is_kept(store: Store) -> None:
    rig = await _rig(store)
    # bob and carol redirect to each other: one round, then the message stays
    await rig.script('redirect "carol@example.test";')
    await rig.script('redirect "bob@example.test";', rig.carol)
    await rig.send()
    inbox = await rig.folder(rig.bob, "INBOX") + await rig.folder(rig.carol, "INBOX")
    assert len(inbox) == 1
    assert inbox[0].count(b"Delivered-To:") == 2


async def test_sieve_delivery_vacation_once_per_sender(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require "vacation"; vacation :days 7 :subject "Away" "Back on Monday.";')
    await rig.send()
    await rig.send()
    queued = await rig.queued()
    assert len(queued) == 1
    sender, rcpt, data = queued[0]
    assert (sender, rcpt) == ("", "alice@remote.test")  # RFC 3834 3.3
    assert b"Auto-Submitted: auto-replied" in data and b"Back on Monday." in data
    assert b"In-Reply-To: <m1@remote.test>" in data
    assert len(await rig.folder(rig.bob, "INBOX")) == 2
    await rig.send(sender="dave@remote.test")
    assert len(await rig.queued()) == 2


@pytest.mark.parametrize("header", [
    b"Auto-Submitted: auto-generated\r\n", b"Precedence: bulk\r\n", b"List-Id: <l.remote.test>\r\n",
])
async def test_sieve_delivery_vacation_not_to_automatic_mail(store: Store, header: bytes) -> None:
    rig = await _rig(store)
    await rig.script('require "vacation"; vacation "away";')
    await rig.send(header + MESSAGE)
    await rig.send(sender="")  # null sender
    await rig.send(MESSAGE.replace(b"To: bob@example.test", b"To: someone@else.test"),
                   sender="erin@remote.test")  # not addressed to bob
    assert await rig.queued() == []


async def test_sieve_delivery_reject_in_smtp_or_by_mail(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require "reject"; reject "Not wanted.";')
    report = await rig.send(refuse=True)
    assert report.refused == (("bob@example.test", "Not wanted."),)
    assert await rig.queued() == []
    report = await rig.send(refuse=False)
    assert report.refused == ()
    ((sender, rcpt, data),) = await rig.queued()
    assert (sender, rcpt) == ("", "alice@remote.test") and b"Not wanted." in data
    # RFC 5429 2.1.1: an MDN with the "deleted" disposition and the original header section
    assert b"report-type=disposition-notification" in data
    assert b"Disposition: automatic-action/MDN-sent-automatically; deleted" in data
    assert b"Original-Message-ID: <m1@remote.test>" in data
    assert b"Subject: Quarterly report\r\n" in data
    assert await rig.folder(rig.bob, "INBOX") == []


async def test_sieve_delivery_notify_mailto(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require "enotify";\n'
                     'notify :message "Mail from Alice" "mailto:pager@remote.test?subject=New%20mail";')
    await rig.send()
    ((sender, rcpt, data),) = await rig.queued()
    # RFC 5436 2.7: null reverse-path, Auto-Submitted: auto-notified; the URI's subject
    assert (sender, rcpt) == ("", "pager@remote.test")
    assert b"Auto-Submitted: auto-notified\r\n" in data and b"Subject: New mail\r\n" in data
    assert b"Mail from Alice" in data
    assert len(await rig.folder(rig.bob, "INBOX")) == 1  # notify keeps the message
    # a message that is itself automatic gets no notification (no loop between notifiers)
    await rig.send(b"Auto-Submitted: auto-notified\r\n" + MESSAGE)
    assert len(await rig.queued()) == 1
    assert len(await rig.folder(rig.bob, "INBOX")) == 2


async def test_sieve_delivery_editheader_changes_stored_copy(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require ["editheader"]; addheader "X-Filtered" "yes"; deleteheader "subject";')
    await rig.send()
    (data,) = await rig.folder(rig.bob, "INBOX")
    assert data.startswith(b"X-Filtered: yes\r\n") and b"Subject:" not in data


async def test_sieve_delivery_duplicate(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require ["duplicate", "fileinto"]; if duplicate { fileinto "Trash"; }')
    await rig.send()
    await rig.send()
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    assert len(await rig.folder(rig.bob, "Trash")) == 1


async def test_sieve_delivery_include_personal(store: Store) -> None:
    rig = await _rig(store)
    await store.sieve_put(rig.bob, "lib", 'require "fileinto"; fileinto "Archive";')
    await rig.script('require "include"; include :personal "lib";')
    await rig.send()
    assert len(await rig.folder(rig.bob, "Archive")) == 1


async def test_sieve_delivery_global_before_and_after(store: Store, tmp_path: Path) -> None:
    before = tmp_path / "before.sieve"
    before.write_text('require ["imap4flags"]; addflag "$Scanned";')
    after = tmp_path / "after.sieve"
    after.write_text('require ["fileinto", "imap4flags"]; if header :contains "subject" "report" { fileinto "Archive"; }')
    rig = await _rig(store, SieveSettings(before=before, after=after))
    await rig.send(rcpts=("carol@example.test",))  # no personal script: globals still run
    mb = await store.get_mailbox(rig.carol, "Archive")
    assert mb is not None
    (rec,) = await store.list_messages(mb.id)
    assert "$Scanned" in rec.flags
    await rig.script("stop;", rig.carol)
    await rig.send(rcpts=("carol@example.test",))
    assert len(await rig.folder(rig.carol, "INBOX")) == 1  # stop ends the sequence


async def test_sieve_delivery_without_script_unchanged(store: Store) -> None:
    rig = await _rig(store)
    await rig.send(rcpts=("bob@example.test", "carol@example.test"))
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    assert len(await rig.folder(rig.carol, "INBOX")) == 1


async def test_sieve_delivery_runaway_regex_keeps_mail(store: Store) -> None:
    # exponential backtracking in one match: stopped at the deadline, the message kept
    rig = await _rig(store, SieveSettings(limits=Limits(max_seconds=0.2)))
    await rig.script('require ["regex", "fileinto"];\n'
                     'if header :regex "subject" "(a|aa)+$" { fileinto "Never"; }')
    await rig.send(MESSAGE.replace(b"Quarterly report", b"a" * 60 + b"!"))
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    assert await rig.folder(rig.bob, "Never") == []


async def test_sieve_delivery_fileinto_shared_mailbox_needs_post_right(store: Store) -> None:
    """RFC 4314 2.1 p: bob's script files into carol's shared folder only while carol's ACL
    gives bob "p"; the flags he may not set there (w) are left off; without the right the
    message stays in bob's INBOX."""
    rig = await _rig(store)
    shared = await store.create_mailbox(rig.carol, "Reports")
    await rig.script('require ["fileinto", "imap4flags"];\n'
                     'fileinto :flags ["\\\\Seen", "\\\\Flagged"] '
                     '"Other Users/carol@example.test/Reports";')
    await rig.send()
    assert await rig.folder(rig.carol, "Reports") == []
    assert len(await rig.folder(rig.bob, "INBOX")) == 1
    await store.acl_set(rig.carol, shared.id, "bob@example.test", "lrs")  # no p yet
    await rig.send()
    assert await rig.folder(rig.carol, "Reports") == []
    assert len(await rig.folder(rig.bob, "INBOX")) == 2
    await store.acl_set(rig.carol, shared.id, "bob@example.test", "+p")
    await rig.send()
    assert len(await rig.folder(rig.carol, "Reports")) == 1
    assert len(await rig.folder(rig.bob, "INBOX")) == 2
    (rec,) = await store.list_messages(shared.id)
    assert rec.flags == frozenset({"\\Seen"})


async def test_sieve_delivery_full_shared_mailbox_fails_the_whole_delivery(store: Store) -> None:
    """A copy Sieve files into another account's shared mailbox is charged to that account;
    refused there (its quota), it has no recipient of ours to be reported for, so the whole
    delivery fails and nothing is stored, even when the caller reports refusals one by one."""
    rig = await _rig(store)
    dave = (await store.add_account("dave@example.test", "x")).id
    shared = await store.create_mailbox(rig.carol, "Reports")
    await store.acl_set(rig.carol, shared.id, "bob@example.test", "lrsp")
    await store.update_account(rig.carol, quota_bytes=50)
    await rig.script('require "fileinto";\nfileinto "Other Users/carol@example.test/Reports";')
    blob = await stage_bytes(store, MESSAGE)
    reported: list[Any] = []
    with pytest.raises(QuotaExceeded):
        await rig.delivery.deliver_and_queue(
            blob, ["bob@example.test", "dave@example.test"], None,
            report_failures=lambda failed: reported.append(failed),  # type: ignore[func-returns-value]
        )
    assert reported == []
    assert await rig.folder(rig.carol, "Reports") == []
    assert await rig.folder(dave, "INBOX") == []
    assert await rig.folder(rig.bob, "INBOX") == []


async def test_sieve_decisions_go_into_the_message_trace(store: Store) -> None:
    rig = await _rig(store)
    await rig.script('require ["fileinto"];\n'
                     'if header :contains "subject" "report" {'
                     ' fileinto "Archive"; redirect "dave@elsewhere.test"; }')
    await rig.script('require ["reject"];\nreject "not from you";', rig.carol)
    blob = await stage_bytes(store, MESSAGE)
    first = TraceEvent("accepted", "MX from [192.0.2.1]", "AAAABBBBCCCC", "m1@remote.test")
    await rig.delivery.deliver_and_queue(blob, ["bob@example.test", "carol@example.test"], None,
                                         sender="alice@remote.test", trace=[first])
    events = await store.trace_find("<m1@remote.test>")
    seen = [(e.stage, e.recipient, e.detail) for e in events]
    assert seen[0] == ("accepted", "", "MX from [192.0.2.1]")
    assert ("filtered", "bob@example.test",
            "sieve: fileinto Archive; redirect to dave@elsewhere.test") in seen
    assert ("filtered", "carol@example.test", "sieve: reject: not from you") in seen
    assert ("delivered", "bob@example.test", "into Archive of bob@example.test") in seen
    assert all(e.queue_id == "AAAABBBBCCCC" for e in events)
