"""Message authentication: SPF, DKIM, DMARC, ARC in; DKIM signing out.

One module per standard, as in mox: ``spf`` (RFC 7208, our own evaluator on the shared
resolver), ``dkim`` (RFC 6376/8463, dkimpy), ``dmarc`` (RFC 7489), ``arc`` (RFC 8617, dkimpy),
``authresults`` (RFC 8601), ``keys`` (key files and DNS records), ``policy`` (settings),
``inbound`` (the end-of-DATA check), ``outbound`` (signing), ``records`` (what to publish).

API for the SMTP server (smtpd) and the outbound queue
------------------------------------------------------

Inbound, on the MX at the end of DATA (never raises for peer or DNS trouble)::

    verdict = await verify_inbound(
        resolver,                      # mailwright.dns.resolver.Resolver (or an AuthDNS)
        hostname=ctx.hostname,         # our authserv-id
        client_ip="192.0.2.10",        # the peer's address as a string
        helo="client.example",         # the EHLO/HELO argument
        mail_from="a@example.org",     # reverse-path without <>; "" for the null sender
        message_bytes=data,            # the message as received, CRLF
        policy=settings.for_domain(rcpt_domain),   # DomainAuthPolicy, defaults are safe
    )
    verdict.action      # Action.ACCEPT | QUARANTINE | REJECT | TEMPFAIL
    verdict.reply       # mailwright.proto.smtp.Reply(550, "5.7.1", ...) or (451, "4.7.0", ...)
                        #   for REJECT / TEMPFAIL, else None: return it from the session as is
    verdict.mailbox     # "Junk" when QUARANTINE, else None (normal delivery)
    verdict.authenticated_message   # Authentication-Results + message (forged A-R removed):
                                    #   store this (prepend your Received above it)
    verdict.header, verdict.message # the two parts separately
    verdict.under(other_policy)     # same results judged by another recipient domain's policy
    verdict.spf / .spf_helo / .dkim / .dmarc / .arc / .reason   # details for logging

Outbound, for mail our users submit (before queueing)::

    keys = KeyStore(config.server.data_dir)          # <data_dir>/dkim/<domain>/<sel>.<alg>.pem
    domain = author_domain(message_bytes)            # the From domain (None: none or several)
    if domain and settings.for_domain(domain).dkim_sign:
        headers = sign_outbound(message_bytes, domain, keys)    # b"" when the domain has no key
        signed = headers + message_bytes
    # or: headers = await sign_outbound_async(message_bytes, from_domain, keys)

Operator help: ``KeyStore.generate(domain, algorithm="rsa"|"ed25519", selector=None)``,
``DkimKey.zone_line()``, ``records.dns_records(...)`` (used by ``mailwright dkim generate`` and
``mailwright dns-records``). Settings: ``MailauthSettings.from_mapping(toml["mailauth"])``.
"""

from __future__ import annotations

from .arc import ARCOutcome, verify_arc
from .dkim import DKIMOutcome, verify_dkim
from .dmarc import DMARCOutcome, DMARCResult, organizational_domain
from .dnsquery import AuthDNS, DNSTempError, ResolverDNS
from .inbound import InboundVerdict, Reply, verify_inbound
from .keys import DkimKey, DkimKeyError, KeyStore
from .outbound import author_domain, sign_outbound, sign_outbound_async
from .policy import Action, DomainAuthPolicy, MailauthSettings, PolicyError
from .spf import SPFOutcome, SPFResult, check_helo, check_host, check_mail_from

__all__ = [
    "ARCOutcome",
    "Action",
    "AuthDNS",
    "DKIMOutcome",
    "DMARCOutcome",
    "DMARCResult",
    "DNSTempError",
    "DkimKey",
    "DkimKeyError",
    "DomainAuthPolicy",
    "InboundVerdict",
    "KeyStore",
    "MailauthSettings",
    "PolicyError",
    "Reply",
    "ResolverDNS",
    "SPFOutcome",
    "SPFResult",
    "author_domain",
    "check_helo",
    "check_host",
    "check_mail_from",
    "organizational_domain",
    "sign_outbound",
    "sign_outbound_async",
    "verify_arc",
    "verify_dkim",
    "verify_inbound",
]
