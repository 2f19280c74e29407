"""The DNS resolver every Mailwright component uses (outbound MX walk, SPF, DKIM, DMARC, PTR).

It wraps dnspython's async resolver so that callers see typed answers and exactly three kinds of
failure, because mail protocols act differently on each:

* ``DNSTempError``: timeout, SERVFAIL, REFUSED, unreachable server, malformed reply. Retry later
  (RFC 5321 4.5.4.1 keeps the message; RFC 7208 2.6.6 gives SPF "temperror").
* ``DNSNameNotFound``: NXDOMAIN, the name does not exist. Permanent.
* ``DNSNoData``: the name exists but holds no record of the asked type (RFC 2308 NODATA). For MX
  this means "use the address records" (RFC 5321 5.1); for SPF it means "none".

``DNSNameNotFound`` and ``DNSNoData`` both derive from ``DNSPermanentError``. All three derive from
``DNSError``; ``err.temporary`` tells them apart without isinstance chains.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.reversename
import dns.rrset
import idna

from mailwright.dns.dnssec import Bogus, QueryFailed, Security, Validator, load_anchors

__all__ = [
    "DNSBadName",
    "DNSBogus",
    "DNSError",
    "DNSNameNotFound",
    "DNSNoData",
    "DNSPermanentError",
    "DNSTempError",
    "IPAddress",
    "MXRecord",
    "Nameserver",
    "Resolver",
    "from_config",
    "to_ascii_domain",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
# ("192.0.2.1", 53) as config gives it, or "192.0.2.1" / "192.0.2.1:5353" / "[2001:db8::1]:53".
Nameserver: TypeAlias = tuple[str, int] | str


class DNSError(Exception):
    """A lookup failed. ``name`` is the queried name (ASCII), ``rdtype`` e.g. "MX"."""

    temporary: bool = True

    def __init__(self, name: str, rdtype: str, reason: str) -> None:
        super().__init__(f"{rdtype} {name}: {reason}")
        self.name = name
        self.rdtype = rdtype
        self.reason = reason


class DNSTempError(DNSError):
    """Timeout, SERVFAIL, REFUSED, network error or malformed reply: try again later."""

    temporary = True


class DNSPermanentError(DNSError):
    """The answer is authoritative and final for this name and type."""

    temporary = False


class DNSNameNotFound(DNSPermanentError):
    """NXDOMAIN."""


class DNSNoData(DNSPermanentError):
    """The name exists but has no records of the asked type."""


class DNSBogus(DNSTempError):
    """DNSSEC validation found the answer bogus (RFC 4035 4.3): it should be signed and its
    signatures, or its proof of absence, do not hold. Temporary, like SERVFAIL from a
    validating resolver; never to be taken as "no record" (RFC 7672 2.1.1)."""


class DNSBadName(DNSPermanentError):
    """The name cannot be a DNS name at all (bad IDNA, empty label, too long)."""


@dataclass(frozen=True, slots=True)
class MXRecord:
    """One MX record. ``exchange`` is lower case ASCII without the trailing dot; "" is the root."""

    preference: int
    exchange: str

    @property
    def is_null(self) -> bool:
        # RFC 7505 3: a single MX with preference 0 and exchange "." means "no mail here".
        return self.exchange == ""


def to_ascii_domain(domain: str) -> str:
    """Return the A-label (IDNA 2008, UTS 46 mapped) form of a domain, lower case, no final dot.

    Raises ``DNSBadName`` when the name cannot be encoded.
    """
    text = domain.strip().rstrip(".")
    if not text:
        raise DNSBadName(domain, "-", "empty domain")
    if text.isascii():
        ascii_text = text.lower()
    else:
        try:
            ascii_text = _idna_encode(text)
        except (UnicodeError, ValueError) as exc:
            raise DNSBadName(domain, "-", f"invalid internationalised domain ({exc})") from exc
    try:
        dns.name.from_text(ascii_text)
    except dns.exception.DNSException as exc:
        raise DNSBadName(domain, "-", f"invalid domain name ({exc})") from exc
    return ascii_text


def _idna_encode(text: str) -> str:
    # IDNA 2008 with UTS 46 mapping (what browsers and mail clients do); the stdlib codec only
    # knows IDNA 2003, which maps some names differently (ß, ς), so the idna package is a
    # dependency, not an option.
    try:
        encoded: bytes = idna.encode(text, uts46=True)
    except idna.IDNAError as exc:
        raise ValueError(str(exc)) from exc
    return encoded.decode("ascii").lower()


def _parse_nameserver(item: Nameserver) -> tuple[str, int]:
    if isinstance(item, tuple):
        return item[0], int(item[1])
    text = item.strip()
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


class Resolver:
    """Async DNS resolver with typed results and typed errors.

    ``nameservers`` empty or None uses the system configuration (/etc/resolv.conf). ``timeout``
    bounds one try against one server; ``lifetime`` bounds a whole lookup including retries.
    Answers are cached by default (dnspython's LRU cache: each entry lives for its TTL, RFC 1035
    3.2.1 and RFC 2308 for negative answers, and at most ``cache_size`` entries are kept), so a
    busy MX does not ask the same SPF, DKIM key and DMARC questions for every message;
    ``cache=False`` turns it off.
    """

    def __init__(
        self,
        nameservers: Sequence[Nameserver] | None = None,
        *,
        timeout: float = 5.0,
        lifetime: float = 15.0,
        cache: bool = True,
        cache_size: int = 10_000,
        trust_ad: bool = False,
        trust_anchors: Sequence[dns.rrset.RRset] | None = None,
    ) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for item in nameservers:
                host, port = _parse_nameserver(item)
                servers.append(dns.nameserver.Do53Nameserver(host, port))
            resolver.nameservers = servers
        else:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                # No resolv.conf (minimal containers): a local caching resolver is the usual setup.
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = ["127.0.0.1"]
        resolver.timeout = timeout
        resolver.lifetime = lifetime
        # EDNS0 with a 1232-byte payload avoids fragmentation (DNS flag day 2020).
        resolver.use_edns(0, 0, 1232)
        if cache:
            resolver.cache = dns.resolver.LRUCache(max_size=cache_size)
        if trust_ad:
            # RFC 6840 5.7: a query with AD set asks a validating resolver to say, by the AD bit
            # of its answer, whether the answer is DNSSEC-authenticated.
            resolver.flags = dns.flags.RD | dns.flags.AD
        self.trust_ad = trust_ad
        self._resolver = resolver
        # ``trust_anchors`` given: validate DNSSEC in-process (``[dns] dnssec = "validate"``).
        self._validator: Validator | None = None
        if trust_anchors is not None:
            ns = [(str(n.address), int(n.port)) if isinstance(n, dns.nameserver.Do53Nameserver)
                  else (str(n), 53) for n in resolver.nameservers]
            self._validator = Validator(ns, trust_anchors, timeout=timeout)

    @property
    def dnssec(self) -> bool:
        """Whether ``authenticated`` can ever say "secure" (a trusted AD bit or validation)."""
        return self.trust_ad or self._validator is not None

    @property
    def nameservers(self) -> list[str]:
        return [str(ns) for ns in self._resolver.nameservers]

    async def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.resolver.Answer:
        type_text = dns.rdatatype.to_text(rdtype)
        try:
            qname = dns.name.from_text(to_ascii_domain(name))
        except DNSBadName as exc:
            raise DNSBadName(name, type_text, exc.reason) from exc
        except dns.exception.DNSException as exc:
            raise DNSBadName(name, type_text, f"invalid name ({exc})") from exc
        shown = qname.to_text(omit_final_dot=True)
        try:
            return await self._resolver.resolve(qname, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise DNSNameNotFound(shown, type_text, "no such domain (NXDOMAIN)") from exc
        except dns.resolver.NoAnswer as exc:
            raise DNSNoData(shown, type_text, f"no {type_text} records") from exc
        except dns.resolver.YXDOMAIN as exc:
            raise DNSBadName(shown, type_text, "name too long after DNAME") from exc
        except dns.resolver.NoNameservers as exc:
            # Every server failed: SERVFAIL, REFUSED, or an unparseable reply.
            raise DNSTempError(shown, type_text, _summarise(exc)) from exc
        except dns.exception.Timeout as exc:
            raise DNSTempError(shown, type_text, "timed out") from exc
        except (dns.exception.DNSException, OSError, EOFError) as exc:
            raise DNSTempError(shown, type_text, f"lookup failed ({exc})") from exc

    async def mx(self, domain: str) -> list[MXRecord]:
        """MX records in answer order (the caller sorts: see ``mailwright.dns.mx``)."""
        answer = await self._query(domain, dns.rdatatype.MX)
        return [
            MXRecord(
                int(rd.preference),
                rd.exchange.to_text(omit_final_dot=True).lower().rstrip("."),
            )
            for rd in answer
        ]

    async def a(self, name: str) -> list[ipaddress.IPv4Address]:
        answer = await self._query(name, dns.rdatatype.A)
        return [ipaddress.IPv4Address(rd.address) for rd in answer]

    async def aaaa(self, name: str) -> list[ipaddress.IPv6Address]:
        answer = await self._query(name, dns.rdatatype.AAAA)
        return [ipaddress.IPv6Address(rd.address) for rd in answer]

    async def ip(self, name: str) -> list[IPAddress]:
        """A and AAAA together (IPv6 first, RFC 6724 preference is left to the caller).

        ``DNSNoData`` only when neither type exists; a temporary failure of one type is reported
        only if the other gave nothing, so one broken AAAA server does not stop IPv4 delivery.
        """
        found: list[IPAddress] = []
        errors: list[DNSError] = []
        # Both queries at once: a slow AAAA server must not double the wait for A.
        answers = await asyncio.gather(self.aaaa(name), self.a(name), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, DNSNameNotFound):
                raise answer
            if isinstance(answer, DNSError):
                errors.append(answer)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                found.extend(answer)
        if found:
            return found
        temp = [e for e in errors if e.temporary]
        if temp:
            raise temp[0]
        raise DNSNoData(errors[0].name if errors else name, "A/AAAA", "no address records")

    async def txt(self, name: str) -> list[bytes]:
        """TXT records, the character-strings of each record joined (RFC 7208 3.3, RFC 6376 3.6.2.2)."""
        answer = await self._query(name, dns.rdatatype.TXT)
        return [b"".join(rd.strings) for rd in answer]

    async def ptr(self, address: str | IPAddress) -> list[str]:
        """Names for an address (reverse DNS), lower case without the trailing dot."""
        try:
            rev = dns.reversename.from_address(str(address))
        except (dns.exception.DNSException, ValueError) as exc:
            raise DNSBadName(str(address), "PTR", "not an IP address") from exc
        answer = await self._query(rev.to_text(), dns.rdatatype.PTR)
        return [rd.target.to_text(omit_final_dot=True).lower() for rd in answer]


    # -- DNSSEC-authenticated answers (DANE) -----------------------------------------------------

    async def authenticated(self, name: str, rdtype: str) -> tuple[list[dns.rdata.Rdata], bool]:
        """The records of one type at a name, and whether the answer is DNSSEC-authenticated.

        Authenticated means, with in-process validation (``[dns] dnssec = "validate"``): the
        chain of signatures from a trust anchor holds (``mailwright.dns.dnssec``); with
        ``trust_ad`` (``"trust-ad"``): the trusted resolver's answer carries the AD bit (RFC
        4035 3.2.3, RFC 6840 5.8). Raises ``DNSError`` as every lookup does (NODATA and
        NXDOMAIN are errors too), and ``DNSBogus`` when validation fails.
        """
        if self._validator is None:
            answer = await self._query(name, dns.rdatatype.from_text(rdtype))
            secure = self.trust_ad and bool(answer.response.flags & dns.flags.AD)
            return list(answer), secure
        try:
            qname = dns.name.from_text(to_ascii_domain(name))
        except DNSBadName as exc:
            raise DNSBadName(name, rdtype, exc.reason) from exc
        shown = qname.to_text(omit_final_dot=True)
        try:
            found = await self._validator.lookup(qname, dns.rdatatype.from_text(rdtype))
        except Bogus as exc:
            raise DNSBogus(shown, rdtype, f"DNSSEC validation failed: {exc}") from exc
        except QueryFailed as exc:
            raise DNSTempError(shown, rdtype, str(exc)) from exc
        if found.rrset is None:
            if found.rcode == dns.rcode.NXDOMAIN:
                raise DNSNameNotFound(shown, rdtype, "no such domain (NXDOMAIN)")
            raise DNSNoData(shown, rdtype, f"no {rdtype} records")
        return list(found.rrset), found.security is Security.SECURE


def _summarise(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    parts: list[str] = []
    for item in errors:
        # Each item is (server, tcp, port, error, response).
        detail = item[3]
        if isinstance(detail, str):
            parts.append(detail)
        elif detail is not None:
            parts.append(type(detail).__name__ if not str(detail) else str(detail))
    text = "; ".join(dict.fromkeys(parts))
    return f"all nameservers failed ({text})" if text else "all nameservers failed"


def from_config(config: object) -> Resolver:
    """The shared resolver for a ``mailwright.config.Config`` (``[dns] nameservers``, ``timeout``).

    Typed loosely so that this module does not import the config layer.
    """
    dns_config = getattr(config, "dns", None)
    nameservers = list(getattr(dns_config, "nameservers", ()) or ())
    timeout = float(getattr(dns_config, "timeout", 5.0) or 5.0)
    mode = str(getattr(dns_config, "dnssec", "off"))
    anchors = None
    if mode == "validate":
        anchors = load_anchors(getattr(dns_config, "trust_anchors", ()) or (),
                               str(getattr(dns_config, "trust_anchor_file", "") or ""))
    return Resolver(nameservers or None, timeout=timeout, lifetime=max(timeout * 3, timeout),
                    trust_ad=mode == "trust-ad", trust_anchors=anchors)
