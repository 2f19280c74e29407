"""Shared set-up of the transport tests: a queue service whose destination ``dest.test`` is a
real SMTP peer on loopback, with MTA-STS policies served over real HTTPS and DNS answers from
the loopback DNS server."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import replace

from mailwright.accounts.directory import Directory
from mailwright.delivery.local import LocalDelivery
from mailwright.dns.resolver import Resolver
from mailwright.queue.service import Outbound, QueueSettings
from mailwright.queue.smtp import OutboundClient, TLSPolicy
from mailwright.store.api import Store
from mailwright.transport.mtasts import MTASTS, Mode, our_policy, policy_id
from tests.support.dnsserver import DNSServer
from tests.transport.conftest import HTTPSServer, PrivateCA

MESSAGE = b"From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: tls\r\n\r\nsecret\r\n"
FAST = QueueSettings(retry_schedule=(0.05,), max_age=3600, delay_warning=3600, poll_interval=0.05,
                     tls_reports=False)


def dest_zone(dns: DNSServer) -> None:
    dns.set("dest.test", "MX", "10 mx.dest.test.")
    dns.set("mx.dest.test", "A", "127.0.0.1")
    dns.set("mta-sts.dest.test", "A", "127.0.0.1")
    dns.set("reports.test", "A", "127.0.0.1")


def publish_policy(dns: DNSServer, https: HTTPSServer, mode: Mode,
                   mx: tuple[str, ...] = ("mx.dest.test",)) -> str:
    text = our_policy(list(mx), mode)
    dns.set("_mta-sts.dest.test", "TXT", f"v=STSv1; id={policy_id(text)}")
    https.routes["/.well-known/mta-sts.txt"] = (200, "text/plain", text.encode())
    return text


def resolver(dns: DNSServer, *, trust_ad: bool = False) -> Resolver:
    return Resolver(dns.nameservers, timeout=0.5, lifetime=1.0, trust_ad=trust_ad)


def make_client(dns: DNSServer, ca: PrivateCA, smtp_port: int, https_port: int | None = None, *,
                dane: bool = False) -> OutboundClient:
    res = resolver(dns, trust_ad=dane)
    tls = TLSPolicy(ca_file=str(ca.path))
    sts = None if https_port is None else MTASTS(res, tls.verifying_context, port=https_port,
                                                  timeout=5.0)
    return OutboundClient(res, "mail.sender.test", port=smtp_port, tls=tls, sts=sts, dane=dane)


async def make_outbound(store: Store, dns: DNSServer, ca: PrivateCA, smtp_port: int,
                        https_port: int | None = None, *, dane: bool = False,
                        settings: QueueSettings = FAST) -> Outbound:
    if not await store.has_domain("sender.test"):
        await store.add_domain("sender.test")
        await store.add_account("alice@sender.test", "x")
    dest_zone(dns)
    client = make_client(dns, ca, smtp_port, https_port, dane=dane)
    return Outbound(store, client, hostname="mail.sender.test", owner="node-a",
                    settings=settings, local=LocalDelivery(store, Directory(store)))


def expiring(settings: QueueSettings, max_age: float) -> QueueSettings:
    return replace(settings, max_age=max_age)


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


async def settle(out: Outbound, rounds: int = 3) -> None:
    for _ in range(rounds):
        await out.run_once()
        await asyncio.sleep(0.06)  # past the 0.05 s retry step, so the next round is due
