"""The queue service on a real SQLite store, a real DNS server and a real SMTP peer."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from mailwright.accounts.directory import Directory
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.dns.resolver import Resolver
from mailwright.queue import Recipient
from mailwright.queue.service import Outbound, QueueSettings
from mailwright.queue.smtp import OutboundClient
from mailwright.store.api import Store
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer

MESSAGE = b"From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: lunch\r\n\r\nnoon?\r\n"
FAST = QueueSettings(retry_schedule=(0.05,), max_age=3600, delay_warning=3600, poll_interval=0.05)


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    async with Peer(capabilities=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES")) as p:
        yield p


async def make_outbound(store: Store, dns: DNSServer, port: int,
                        settings: QueueSettings = FAST, owner: str = "node-a") -> Outbound:
    if not await store.has_domain("sender.test"):
        await store.add_domain("sender.test")
        await store.add_account("alice@sender.test", "x")
    dns.set("dest.test", "MX", "10 mx.dest.test.")
    dns.set("mx.dest.test", "A", "127.0.0.1")
    resolver = Resolver(dns.nameservers, timeout=0.5, lifetime=1.0)
    client = OutboundClient(resolver, "mail.sender.test", port=port)
    return Outbound(store, client, hostname="mail.sender.test", owner=owner, settings=settings,
                    local=LocalDelivery(store, Directory(store)))


async def inbox(store: Store, address: str) -> list[email.message.EmailMessage]:
    account = await store.find_account(address)
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    out = []
    for rec in await store.list_messages(box.id):
        msg = email.message_from_bytes(await store.read_blob(rec.blob_id),
                                       policy=email.policy.default)
        out.append(msg)  # type: ignore[arg-type]
    return out


async def drain(out: Outbound, store: Store, rounds: int = 200) -> None:
    """Run the queue until it is empty (bounded number of rounds)."""
    for _ in range(rounds):
        await out.run_once()
        if not await store.queue_list():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"queue not empty: {await store.queue_list()}")


async def test_queue_delivers_and_removes_entry(store: Store, dns_server: DNSServer,
                                               peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    ids = await out.enqueue(blob, "alice@sender.test", ["bob@dest.test", "carol@dest.test"])
    assert len(ids) == 1
    entry = await store.queue_get(ids[0])
    assert entry is not None and entry.domain == "dest.test"
    assert [r.status for r in entry.recipients] == ["scheduled", "scheduled"]
    await out.run_once()
    assert await store.queue_list() == []
    [msg] = peer.messages
    assert msg.data == MESSAGE
    assert msg.rcpt_lines == ["RCPT TO:<bob@dest.test>", "RCPT TO:<carol@dest.test>"]


async def test_queue_permanent_failure_bounces_to_local_sender(store: Store, dns_server: DNSServer,
                                                               peer: Peer) -> None:
    peer.rcpt = lambda line: "550 5.1.1 no such user" if "nobody" in line else "250 ok"
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", ["nobody@dest.test", "bob@dest.test"])
    await out.run_once()
    assert await store.queue_list() == []
    [dsn] = await inbox(store, "alice@sender.test")
    assert dsn.get_content_type() == "multipart/report"
    report = list(dsn.iter_parts())[1].get_payload()
    assert report[1]["Final-Recipient"] == "rfc822; nobody@dest.test"
    assert report[1]["Status"] == "5.1.1"
    assert report[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert report[1]["Remote-MTA"] == "dns; mx.dest.test"
    assert len(report) == 2  # bob was delivered: not in the bounce
    assert len(peer.messages) == 1


async def test_queue_no_bounce_to_null_sender(store: Store, dns_server: DNSServer,
                                              peer: Peer) -> None:
    peer.rcpt = lambda line: "550 5.1.1 no such user"
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "", ["nobody@dest.test"])
    await out.run_once()
    assert await store.queue_list() == []
    assert await inbox(store, "alice@sender.test") == []


async def test_queue_notify_never_suppresses_bounce(store: Store, dns_server: DNSServer,
                                                    peer: Peer) -> None:
    peer.rcpt = lambda line: "550 5.1.1 no such user"
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", [Recipient("x@dest.test", ("NEVER",))])
    await out.run_once()
    assert await inbox(store, "alice@sender.test") == []


async def test_queue_retries_then_bounces_at_max_age(store: Store, dns_server: DNSServer) -> None:
    dead = await Peer().start()
    port = dead.port
    await dead.stop()
    settings = replace(FAST, max_age=0.3)
    out = await make_outbound(store, dns_server, port, settings)
    blob = await stage_bytes(store, MESSAGE)
    [qid] = await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])
    await out.run_once()
    entry = await store.queue_get(qid)
    assert entry is not None
    assert entry.attempts == 1 and entry.recipients[0].status == "tempfail"
    assert "connect to mx.dest.test" in entry.last_error
    await drain(out, store)
    [dsn] = await inbox(store, "alice@sender.test")
    report = list(dsn.iter_parts())[1].get_payload()
    assert report[1]["Action"] == "failed"
    assert report[1]["Status"] == "4.4.7"
    assert "connect to mx.dest.test" in report[1]["Diagnostic-Code"]


async def test_queue_temporary_then_delivered(store: Store, dns_server: DNSServer,
                                              peer: Peer) -> None:
    replies = iter(["451 4.2.1 busy", "250 ok"])
    peer.rcpt = lambda line: next(replies)
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    [qid] = await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])
    await out.run_once()
    entry = await store.queue_get(qid)
    assert entry is not None and entry.recipients[0].last_reply == "smtp; 451 4.2.1 busy"
    await drain(out, store)
    assert len(peer.messages) == 1
    assert await inbox(store, "alice@sender.test") == []


async def test_queue_delay_warning_once(store: Store, dns_server: DNSServer, peer: Peer) -> None:
    peer.rcpt = lambda line: "451 4.2.1 busy"
    out = await make_outbound(store, dns_server, peer.port, replace(FAST, delay_warning=0))
    blob = await stage_bytes(store, MESSAGE)
    [qid] = await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])
    await out.run_once()
    await asyncio.sleep(0.1)
    await out.run_once()
    entry = await store.queue_get(qid)
    assert entry is not None and entry.warned and entry.attempts == 2
    [warning] = await inbox(store, "alice@sender.test")
    assert warning["Subject"].startswith("Delayed Mail")
    assert list(warning.iter_parts())[1].get_payload()[1]["Action"] == "delayed"


async def test_queue_relayed_dsn_when_peer_lacks_dsn(store: Store, dns_server: DNSServer,
                                                     peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", [Recipient("bob@dest.test", ("SUCCESS",))])
    await out.run_once()
    [report] = await inbox(store, "alice@sender.test")
    assert list(report.iter_parts())[1].get_payload()[1]["Action"] == "relayed"


async def test_queue_null_mx_bounces_at_once(store: Store, dns_server: DNSServer) -> None:
    out = await make_outbound(store, dns_server, 25)
    dns_server.set("dest.test", "MX", "0 .")
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])
    await out.run_once()
    assert await store.queue_list() == []
    [dsn] = await inbox(store, "alice@sender.test")
    report = list(dsn.iter_parts())[1].get_payload()
    assert report[1]["Status"] == "5.1.10"


async def test_queue_bounce_to_remote_sender_is_queued_with_null_sender(
        store: Store, dns_server: DNSServer, peer: Peer) -> None:
    peer.rcpt = lambda line: "550 5.1.1 nobody" if "nobody" in line else "250 ok"
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "someone@dest.test", ["nobody@dest.test"])
    await out.run_once()
    [entry] = await store.queue_list()
    assert entry.sender == "" and entry.recipients[0].address == "someone@dest.test"
    await out.run_once()
    assert await store.queue_list() == []
    assert peer.messages[0].mail_line.startswith("MAIL FROM:<>")
    assert b"multipart/report" in peer.messages[0].data


async def test_queue_reuses_connection_per_destination(store: Store, dns_server: DNSServer,
                                                       peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port, replace(FAST, max_per_domain=1))
    for i in range(3):
        blob = await stage_bytes(store, MESSAGE + str(i).encode())
        await out.enqueue(blob, "alice@sender.test", [f"u{i}@dest.test"])
    await out.run_once()
    assert len(peer.messages) == 3 and peer.connections == 1


async def test_queue_recovers_own_leases_after_restart(store: Store, dns_server: DNSServer,
                                                       peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    [qid] = await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])
    # A crash after claiming: the entry stays leased by this node.
    [claimed] = await store.queue_claim("node-a", 3600, 10)
    assert claimed.id == qid
    other = await make_outbound(store, dns_server, peer.port, owner="node-b")
    assert await other.run_once() == 0
    restarted = await make_outbound(store, dns_server, peer.port)
    await restarted.start()
    try:
        for _ in range(200):
            if not await store.queue_list():
                break
            await asyncio.sleep(0.02)
    finally:
        await restarted.stop()
    assert await store.queue_list() == []
    assert len(peer.messages) == 1


async def test_queue_worker_loop_picks_up_enqueued_mail(store: Store, dns_server: DNSServer,
                                                        peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port)
    await out.start()
    try:
        blob = await stage_bytes(store, MESSAGE)
        await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])
        for _ in range(200):
            if peer.messages and not await store.queue_list():
                break
            await asyncio.sleep(0.02)
    finally:
        await out.stop()
    assert len(peer.messages) == 1


async def test_queue_enqueue_accepts_rcpt_params(store: Store, dns_server: DNSServer,
                                                 peer: Peer) -> None:
    from mailwright.proto.smtp.events import RcptParams

    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    [qid] = await out.enqueue(blob, "alice@sender.test", [
        ("bob@dest.test", RcptParams(notify=("SUCCESS", "FAILURE"),
                                     orcpt=("rfc822", "bob@dest.test"))),
        "carol@dest.test", "Carol@dest.test"], ret="hdrs", envid="X1")
    entry = await store.queue_get(qid)
    assert entry is not None
    assert [(r.address, r.notify, r.orcpt) for r in entry.recipients] == [
        ("bob@dest.test", "SUCCESS,FAILURE", "rfc822;bob@dest.test"),
        ("carol@dest.test", None, None)]
    assert (entry.ret, entry.envid) == ("HDRS", "X1")


async def test_queue_splits_large_envelopes(store: Store, dns_server: DNSServer,
                                            peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port,
                              replace(FAST, max_rcpts_per_transaction=2))
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", [f"u{i}@dest.test" for i in range(5)])
    await out.run_once()
    assert await store.queue_list() == []
    assert [len(m.rcpt_lines) for m in peer.messages] == [2, 2, 1]
    assert peer.connections == 1


async def test_queue_per_destination_concurrency_limit(store: Store, dns_server: DNSServer,
                                                       peer: Peer) -> None:
    peer.data_delay = 0.05
    out = await make_outbound(store, dns_server, peer.port, replace(FAST, max_per_domain=2))
    for i in range(8):
        blob = await stage_bytes(store, MESSAGE + str(i).encode())
        await out.enqueue(blob, "alice@sender.test", [f"u{i}@dest.test"])
    await out.run_once()
    assert len(peer.messages) == 8
    assert peer.max_active <= 2 and peer.connections == 2  # two lanes, each reusing its connection


async def test_queue_internationalised_domain_goes_out_as_a_label(
        store: Store, dns_server: DNSServer, peer: Peer) -> None:
    out = await make_outbound(store, dns_server, peer.port)
    dns_server.set("xn--bcher-kva.test", "MX", "10 mx.dest.test.")
    blob = await stage_bytes(store, MESSAGE)
    [qid] = await out.enqueue(blob, "alice@sender.test", ["bob@bücher.test"])
    entry = await store.queue_get(qid)
    assert entry is not None and entry.domain == "xn--bcher-kva.test"
    await out.run_once()
    assert peer.messages[0].rcpt_lines == ["RCPT TO:<bob@xn--bcher-kva.test>"]
    assert "SMTPUTF8" not in peer.messages[0].mail_line


# -- leases, reports that cannot be delivered, the operator deleting in flight ------------------


async def test_queue_delete_during_delivery_logs_no_traceback(
        store: Store, dns_server: DNSServer, peer: Peer,
        caplog: pytest.LogCaptureFixture) -> None:
    dot = asyncio.Event()
    peer.on_final_dot = dot.set
    peer.data_delay = 0.5  # the remote's 250 comes after the operator's delete
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    [entry_id] = await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"],
                                   queue_id="0123456789AB")
    attempt = asyncio.create_task(out.run_once())
    await asyncio.wait_for(dot.wait(), 30)
    assert await store.queue_delete(entry_id)
    await asyncio.wait_for(attempt, 30)
    assert await store.queue_list() == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert any("0123456789AB" in r.getMessage() and "dropped" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
    assert await inbox(store, "alice@sender.test") == []  # no report either
    assert await store.check() == []


async def test_queue_report_log_line_says_it_was_sent(
        store: Store, dns_server: DNSServer, peer: Peer,
        caplog: pytest.LogCaptureFixture) -> None:
    peer.rcpt = lambda line: "550 5.1.1 no such user"
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", ["nobody@dest.test"], queue_id="FEDCBA987654")
    with caplog.at_level("INFO", logger="mailwright.queue"):
        await out.run_once()
    lines = [r.getMessage() for r in caplog.records]
    assert "queue FEDCBA987654: sent a failed report to <alice@sender.test>" in lines
    assert not any(line.startswith("dsn failed") for line in lines)


async def _postmaster_account(store: Store) -> None:
    await store.add_account("postmaster@sender.test", "x")


async def test_queue_undeliverable_bounce_goes_to_the_postmaster(
        store: Store, dns_server: DNSServer, peer: Peer) -> None:
    """A sender that can be answered by nobody: its bounce fails too, and the postmaster is told
    (RFC 5321 6.1), with the failed bounce attached; nothing loops, nothing is left queued."""
    peer.mail = lambda line: ("553 5.1.7 sender refused" if "attacker" in line
                              else "250 2.1.0 ok")
    peer.rcpt = lambda line: "550 5.1.1 no such user" if "attacker" in line else "250 ok"
    out = await make_outbound(store, dns_server, peer.port)
    await _postmaster_account(store)
    dns_server.set("attacker.test", "MX", "10 mx.dest.test.")
    sender = '"a>b\\"c"@attacker.test'
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, sender, ["bob@dest.test"])
    await drain(out, store)
    [notice] = await inbox(store, "postmaster@sender.test")
    assert notice.get_content_type() == "multipart/report"
    parts = list(notice.iter_parts())
    report = parts[1].get_payload()
    assert report[1]["Final-Recipient"] == f"rfc822; {sender}"
    assert report[1]["Action"] == "failed"
    returned = parts[2].get_payload()[0]
    assert returned["Subject"] == "Undelivered Mail Returned to Sender"  # the failed bounce
    assert await store.queue_list() == []
    assert peer.messages == []


async def test_queue_double_bounce_recipient_setting_and_no_loop(
        store: Store, dns_server: DNSServer, peer: Peer,
        caplog: pytest.LogCaptureFixture) -> None:
    peer.rcpt = lambda line: "550 5.1.1 no such user"
    out = await make_outbound(store, dns_server, peer.port,
                              replace(FAST, double_bounce_recipient="ops@dest.test"))
    assert await out.postmaster() == "ops@dest.test"
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "", ["nobody@dest.test"])  # a bounce that fails...
    await drain(out, store)
    # ...is reported to ops@dest.test (remote, refused too): then dropped with an error
    notices = [m for m in peer.transcript if m.startswith("RCPT TO:<ops@dest.test>")]
    assert len(notices) == 1
    assert any(r.levelname == "ERROR" and "ops@dest.test" in r.getMessage()
               for r in caplog.records)
    assert await store.queue_list() == []


async def test_queue_bounce_to_a_vanished_local_sender_goes_to_the_postmaster(
        store: Store, dns_server: DNSServer, peer: Peer) -> None:
    peer.rcpt = lambda line: "550 5.1.1 no such user"
    out = await make_outbound(store, dns_server, peer.port)
    await _postmaster_account(store)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "gone@sender.test", ["nobody@dest.test"])
    await drain(out, store)
    [notice] = await inbox(store, "postmaster@sender.test")
    report = list(notice.iter_parts())[1].get_payload()
    assert report[1]["Final-Recipient"] == "rfc822; nobody@dest.test"


async def test_queue_reports_recorded_before_a_crash_are_sent_once(
        store: Store, dns_server: DNSServer, peer: Peer) -> None:
    """The attempt's outcome and its reports were recorded, then the node stopped before
    sending them: the next claim sends them once and finishes the entry."""
    import json
    from datetime import UTC, datetime

    from mailwright.queue.bounce import Action, DSNRecipient
    from mailwright.queue.service import _dsn_json
    from mailwright.store.api import QueueRecipient

    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    [entry_id] = await out.enqueue(blob, "alice@sender.test", ["nobody@dest.test"])
    claimed = await store.queue_claim_entry(entry_id, "crashed-node", 60)
    assert claimed is not None
    failed = DSNRecipient("nobody@dest.test", Action.FAILED, "5.1.1",
                          "smtp; 550 5.1.1 no such user", "mx.dest.test", None,
                          datetime.now(UTC))
    await store.queue_update(
        entry_id, "crashed-node",
        [QueueRecipient("nobody@dest.test", "permfail", None, None, "smtp; 550 5.1.1")],
        next_attempt=datetime.now(UTC), last_error="smtp; 550 5.1.1",
        extra={"dsn_pending": json.dumps([[_dsn_json(failed)]]), "dsn_then": ""})
    await drain(out, store)
    [dsn] = await inbox(store, "alice@sender.test")
    assert list(dsn.iter_parts())[1].get_payload()[1]["Status"] == "5.1.1"
    assert peer.messages == []  # the recorded fate stands: no new attempt
    assert await store.check() == []


async def test_queue_attempts_go_into_the_message_trace(store: Store, dns_server: DNSServer,
                                                        peer: Peer) -> None:
    replies = iter(["451 4.2.1 busy", "250 ok"])
    peer.rcpt = lambda line: "550 5.1.1 no such user" if "nobody" in line else next(replies)
    out = await make_outbound(store, dns_server, peer.port)
    blob = await stage_bytes(store, MESSAGE)
    await out.enqueue(blob, "alice@sender.test", ["bob@dest.test", "nobody@dest.test"],
                      queue_id="ABCDEF123456")
    await out.run_once()
    await drain(out, store)
    seen = [(e.stage, e.recipient, e.detail) for e in await store.trace_find("ABCDEF123456")]
    stages = [s for s, _r, _d in seen]
    assert stages[:2] == ["queued", "queued"]
    assert ("bounced", "nobody@dest.test", "mx.dest.test: smtp; 550 5.1.1 no such user") in seen
    deferred = [d for s, r, d in seen if s == "deferred"]
    assert deferred and deferred[0].startswith("mx.dest.test: smtp; 451 4.2.1 busy; next attempt")
    assert ("relayed", "bob@dest.test", "mx.dest.test: smtp; 250 2.0.0 queued") in seen
    assert ("dsn", "nobody@dest.test",
            "failure report (RFC 3464) sent to <alice@sender.test>") in seen
