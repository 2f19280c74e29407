"""Authentication of mail arriving at the MX, called once at the end of DATA.

House rules: this module never raises for anything the peer or DNS can do (every failure is a
result); it never blocks the event loop on cryptography (dkimpy runs in a worker thread); all DNS
goes through the shared resolver; the only output is an ``InboundVerdict``, which the SMTP session
turns into its reply and its delivery.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from mailwright.dns.resolver import DNSError, Resolver, to_ascii_domain
from mailwright.proto.smtp import Reply  # the SMTP core's reply: smtpd returns it as is

from .arc import ARCOutcome, verify_arc
from .authresults import ResultInfo, build_header, remove_own_results
from .dkim import DKIMOutcome, verify_dkim
from .dmarc import (
    AuthIdentifier,
    Discovery,
    DMARCOutcome,
    DMARCResult,
    Policy,
    discover,
    evaluate,
)
from .dnsquery import AuthDNS, as_auth_dns
from .headers import split_message
from .policy import Action, DomainAuthPolicy
from .spf import SPFOutcome, SPFResult, check_helo, check_mail_from

__all__ = ["FromInfo", "InboundVerdict", "Reply", "decide", "parse_author", "verify_inbound"]

log = logging.getLogger("mailwright.mailauth")


@dataclass(frozen=True, slots=True)
class FromInfo:
    """The RFC 5322 From domain(s) DMARC is about."""

    domain: str | None  # the one author domain, when there is exactly one
    domains: tuple[str, ...]  # all distinct author domains found
    fields: int  # number of From header fields


@dataclass(frozen=True, slots=True)
class InboundVerdict:
    """What verification found and what the SMTP session should do.

    ``message`` is the received message with forged Authentication-Results removed; store
    ``header + message`` (``authenticated_message``). For ``QUARANTINE`` deliver into
    ``mailbox`` (Junk); for ``REJECT``/``TEMPFAIL`` send ``reply`` and deliver nothing.
    """

    action: Action
    reply: Reply | None
    mailbox: str | None
    header: bytes
    message: bytes
    reason: str
    removed_results: int = 0
    spf: SPFOutcome | None = None
    spf_helo: SPFOutcome | None = None
    dkim: tuple[DKIMOutcome, ...] = ()
    dmarc: DMARCOutcome | None = None
    arc: ARCOutcome | None = None
    author: FromInfo | None = None

    @property
    def authenticated_message(self) -> bytes:
        return self.header + self.message

    def under(self, policy: DomainAuthPolicy) -> InboundVerdict:
        """The same results judged by another recipient domain's policy."""
        action, reply, mailbox, reason = decide(self, policy)
        return replace(self, action=action, reply=reply, mailbox=mailbox, reason=reason)


def parse_author(message: bytes) -> FromInfo:
    fields, _ = split_message(message)
    values = [f.value for f in fields if f.name == "from"]
    domains: list[str] = []
    for value in values:
        text = value.decode("utf-8", errors="replace")
        for _, addr in email.utils.getaddresses([text]):
            _, at, domain = addr.rpartition("@")
            if not at or not domain:
                continue
            try:  # the same IDNA 2008 / UTS 46 mapping the resolver uses
                domain = to_ascii_domain(domain)
            except DNSError:
                continue
            if domain not in domains:
                domains.append(domain)
    one = domains[0] if len(domains) == 1 and len(values) == 1 else None
    return FromInfo(one, tuple(domains), len(values))


def decide(
    verdict: InboundVerdict, policy: DomainAuthPolicy
) -> tuple[Action, Reply | None, str | None, str]:
    """The receiver's choice (RFC 7489 6.7) from the results and one domain's policy."""
    if not policy.verify:
        return Action.ACCEPT, None, None, "verification disabled"
    author = verdict.author
    if author is not None and (author.fields > 1 or len(author.domains) > 1):
        reason = "several From fields or author domains (RFC 7489 6.6.1)"
        return _act(policy.on_multiple_from, policy, reason, "Multiple From addresses")
    dmarc = verdict.dmarc
    arc = verdict.arc
    if dmarc is not None and policy.dmarc_enforce:
        if dmarc.result is DMARCResult.FAIL and dmarc.disposition is not Policy.NONE:
            if (
                arc is not None
                and arc.result == "pass"
                and arc.sealer
                and arc.sealer in policy.trusted_arc_sealers
            ):
                return Action.ACCEPT, None, None, f"DMARC fail overridden by ARC from {arc.sealer}"
            shown = dmarc.policy.value if dmarc.policy else dmarc.disposition.value
            reason = f"DMARC policy of {dmarc.from_domain} ({shown}) not met"
            chosen = (
                policy.on_dmarc_reject
                if dmarc.disposition is Policy.REJECT
                else policy.on_dmarc_quarantine
            )
            return _act(chosen, policy, reason, f"Message rejected: {reason}")
        if (
            dmarc.result is DMARCResult.TEMPERROR
            and (dmarc.policy is None or dmarc.policy is not Policy.NONE)
            and not _strictly_aligned_pass(verdict, dmarc.from_domain)
        ):
            reason = f"DMARC check of {dmarc.from_domain} hit a DNS failure"
            return _act(policy.on_dmarc_temperror, policy, reason, reason)
    spf = verdict.spf
    dmarc_passed = dmarc is not None and dmarc.result is DMARCResult.PASS
    if spf is not None and spf.result is SPFResult.FAIL and not dmarc_passed:
        reason = f"SPF fail for {spf.domain}"
        action, reply, mailbox, why = _act(policy.on_spf_fail, policy, reason, reason)
        if action is Action.REJECT:
            # RFC 7372 3.2: 5.7.23 is "SPF validation failed".
            reply = Reply(550, "5.7.23", f"SPF validation failed for {spf.domain}")
        return action, reply, mailbox, why
    return Action.ACCEPT, None, None, "accepted"


def _strictly_aligned_pass(verdict: InboundVerdict, from_domain: str) -> bool:
    """A pass for exactly the From domain passes DMARC whatever its record says (RFC 7489 3.1),
    so a DNS failure fetching that record need not delay the message."""
    if any(d.result == "pass" and d.domain == from_domain for d in verdict.dkim):
        return True
    spf = verdict.spf
    return spf is not None and spf.result is SPFResult.PASS and spf.domain == from_domain


def _act(
    action: Action, policy: DomainAuthPolicy, reason: str, text: str
) -> tuple[Action, Reply | None, str | None, str]:
    if action is Action.REJECT:
        return action, Reply(550, "5.7.1", text), None, reason
    if action is Action.TEMPFAIL:
        reply = Reply(451, "4.7.0", "Temporary DNS failure while authenticating, try again later")
        return action, reply, None, reason
    if action is Action.QUARANTINE:
        return action, None, policy.quarantine_mailbox, reason
    return Action.ACCEPT, None, None, reason


def _results(
    verdict: InboundVerdict, client_ip: str, helo: str, mail_from: str
) -> list[ResultInfo]:
    out: list[ResultInfo] = []
    spf = verdict.spf
    if spf is not None:
        if mail_from:
            prop = ("smtp.mailfrom", mail_from)
        else:
            prop = ("smtp.helo", helo)
        out.append(ResultInfo("spf", spf.result.value, spf.reason, (prop,)))
    helo_out = verdict.spf_helo
    if mail_from and helo_out is not None and helo_out.domain:
        out.append(ResultInfo("spf", helo_out.result.value, helo_out.reason, (("smtp.helo", helo),)))
    if not verdict.dkim:
        out.append(ResultInfo("dkim", "none", "message not signed"))
    for sig in verdict.dkim:
        props = [("header.d", sig.domain), ("header.i", sig.identity)] if sig.domain else []
        if sig.selector:
            props.append(("header.s", sig.selector))
        if sig.algorithm:
            props.append(("header.a", sig.algorithm))
        if sig.signature_b:
            props.append(("header.b", sig.signature_b[:8]))
        comment = None if sig.result == "pass" else sig.reason
        out.append(ResultInfo("dkim", sig.result, comment, tuple(props)))
    dmarc = verdict.dmarc
    if dmarc is not None:
        comment = None
        if dmarc.record is not None:
            sp = dmarc.record.subdomain_policy or dmarc.record.policy
            comment = f"p={dmarc.record.policy.value} sp={sp.value} dis={dmarc.disposition.value}"
        elif dmarc.reason:
            comment = dmarc.reason
        from_prop = (("header.from", dmarc.from_domain),) if dmarc.from_domain else ()
        out.append(ResultInfo("dmarc", dmarc.result.value, comment, from_prop))
    arc = verdict.arc
    if arc is not None:
        comment = f"i={arc.instances} d={arc.sealer}" if arc.instances and arc.sealer else None
        arc_props: tuple[tuple[str, str], ...] = (("smtp.remote-ip", client_ip),)
        if arc.oldest_pass is not None:
            arc_props = (("header.oldest-pass", str(arc.oldest_pass)), *arc_props)
        out.append(ResultInfo("arc", arc.result, comment, arc_props))
    return out


async def verify_inbound(
    resolver: Resolver | AuthDNS,
    *,
    hostname: str,
    client_ip: str | IPv4Address | IPv6Address,
    helo: str | None,
    mail_from: str | None,
    message_bytes: bytes,
    policy: DomainAuthPolicy | None = None,
) -> InboundVerdict:
    """Check SPF (MAIL FROM and HELO), every DKIM signature, DMARC and ARC of one message.

    ``hostname`` is our authserv-id; ``mail_from`` is the reverse-path without brackets ("" for
    the null sender); ``message_bytes`` is the message as received (CRLF). Never raises for
    anything the sender or DNS can cause.
    """
    policy = policy or DomainAuthPolicy()
    client_ip = str(client_ip)
    helo = helo or ""
    mail_from = (mail_from or "").strip().removeprefix("<").removesuffix(">")
    message, removed = remove_own_results(message_bytes, hostname)
    if removed:
        log.info("removed %d forged Authentication-Results claiming %s", removed, hostname)
    if not policy.verify:
        header = build_header(hostname, [])
        return InboundVerdict(
            Action.ACCEPT, None, None, header, message, "verification disabled", removed
        )
    dns = as_auth_dns(resolver)
    author = parse_author(message)
    helo_task = check_helo(dns, client_ip, helo, receiver=hostname)
    if mail_from:
        spf_task = check_mail_from(dns, client_ip, mail_from, helo, receiver=hostname)
    else:
        # RFC 7208 2.4: a null reverse-path is checked as postmaster@<HELO>; ask DNS once.
        helo_outcome = await helo_task
        helo_task = _ready(helo_outcome)
        spf_task = _ready(replace(helo_outcome, identity="mailfrom"))
    dkim_task = verify_dkim(dns, message)
    arc_task = verify_arc(dns, message)
    discovery_task = (
        discover(dns, author.domain) if author.domain else _no_discovery(author)
    )
    spf, spf_helo, dkim, arc, discovery = await asyncio.gather(
        spf_task, helo_task, dkim_task, arc_task, discovery_task
    )
    dmarc: DMARCOutcome | None = None
    if author.domain:
        spf_id = AuthIdentifier(spf.domain, spf.result.value) if spf.domain else None
        dkim_ids = [AuthIdentifier(d.domain, d.result) for d in dkim if d.domain]
        dmarc = evaluate(discovery, author.domain, spf_id, dkim_ids)
    elif author.domains:
        dmarc = DMARCOutcome(
            DMARCResult.PERMERROR,
            ",".join(author.domains),
            None,
            Policy.NONE,
            reason="several author domains",
        )
    else:
        reason = "no From field" if author.fields == 0 else "From has no domain"
        dmarc = DMARCOutcome(DMARCResult.NONE, "", None, Policy.NONE, reason=reason)
    verdict = InboundVerdict(
        Action.ACCEPT,
        None,
        None,
        b"",
        message,
        "",
        removed,
        spf,
        spf_helo,
        tuple(dkim),
        dmarc,
        arc,
        author,
    )
    action, reply, mailbox, reason = decide(verdict, policy)
    header = build_header(hostname, _results(verdict, client_ip, helo, mail_from))
    return replace(
        verdict, action=action, reply=reply, mailbox=mailbox, reason=reason, header=header
    )


async def _ready(outcome: SPFOutcome) -> SPFOutcome:
    return outcome


async def _no_discovery(author: FromInfo) -> Discovery:
    return Discovery(None, "", reason="no single author domain")
