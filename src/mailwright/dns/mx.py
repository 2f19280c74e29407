"""Where to deliver mail for a domain: the MX walk of RFC 5321 5.1 with RFC 7505 null MX.

``route(resolver, domain)`` returns the hosts to try in order, or raises ``RouteError`` whose
``temporary`` flag and RFC 3463 ``status`` code tell the queue whether to retry or bounce:

* MX records sorted by preference, shuffled within equal preference (RFC 5321 5.1);
* no MX records: the domain itself is the implicit MX, provided it has A/AAAA records;
* a null MX (preference 0, exchange "."): permanent ``5.1.10`` (RFC 7505 3, RFC 7505 4.2);
* NXDOMAIN: permanent ``5.1.2``; a DNS timeout or SERVFAIL: temporary ``4.4.3``;
* a domain literal such as ``[192.0.2.1]`` (RFC 5321 4.1.3) is used as is.

Internationalised domains are looked up by their A-labels (IDNA 2008 with UTS 46).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from mailwright.dns.resolver import (
    DNSError,
    DNSNameNotFound,
    IPAddress,
    Resolver,
    to_ascii_domain,
)

__all__ = ["MXHost", "RouteError", "host_addresses", "route"]


@dataclass(frozen=True, slots=True)
class MXHost:
    """One host to try. ``addresses`` is filled when already known (implicit MX, literals)."""

    name: str
    preference: int
    implicit: bool = False
    addresses: tuple[IPAddress, ...] = field(default=())


class RouteError(Exception):
    """No way to reach the domain now (``temporary``) or ever (permanent)."""

    def __init__(self, domain: str, status: str, text: str, *, temporary: bool) -> None:
        super().__init__(f"{status} {domain}: {text}")
        self.domain = domain
        self.status = status
        self.text = text
        self.temporary = temporary


def _literal(domain: str) -> IPAddress | None:
    # RFC 5321 4.1.3: "[192.0.2.1]" or "[IPv6:2001:db8::1]".
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner.lower().startswith("ipv6:"):
        inner = inner[5:]
    try:
        return ipaddress.ip_address(inner)
    except ValueError:
        return None


async def route(
    resolver: Resolver,
    domain: str,
    *,
    rng: random.Random | None = None,
    local_names: frozenset[str] = frozenset(),
) -> list[MXHost]:
    """The ordered hosts for ``domain`` (see the module docstring for the rules).

    ``local_names`` are our own host names: when one of them is an MX of the domain, only hosts
    with a lower preference are kept (RFC 5321 5.1), and none left means a mail loop (5.4.6).
    """
    literal = _literal(domain.strip())
    if literal is not None:
        return [MXHost(str(literal), 0, implicit=True, addresses=(literal,))]
    try:
        ascii_domain = to_ascii_domain(domain)
    except DNSError as exc:
        raise RouteError(domain, "5.1.2", exc.reason, temporary=False) from exc
    try:
        records = await resolver.mx(ascii_domain)
    except DNSNameNotFound as exc:
        raise RouteError(ascii_domain, "5.1.2", "domain does not exist (NXDOMAIN)",
                         temporary=False) from exc
    except DNSError as exc:
        if exc.temporary:
            raise RouteError(ascii_domain, "4.4.3", f"MX lookup failed: {exc.reason}",
                             temporary=True) from exc
        records = []  # no data: implicit MX below
    if any(r.is_null for r in records):
        # RFC 7505 3: a null MX must stand alone; any null MX still means "accepts no mail".
        raise RouteError(ascii_domain, "5.1.10", "domain does not accept mail (null MX, RFC 7505)",
                         temporary=False)
    if not records:
        # RFC 5321 5.1: no MX, so the domain is its own implicit MX with preference 0.
        try:
            addresses = await resolver.ip(ascii_domain)
        except DNSError as exc:
            if exc.temporary:
                raise RouteError(ascii_domain, "4.4.3", f"address lookup failed: {exc.reason}",
                                 temporary=True) from exc
            raise RouteError(ascii_domain, "5.1.2", "domain has no MX and no address records",
                             temporary=False) from exc
        return [MXHost(ascii_domain, 0, implicit=True, addresses=tuple(_order(addresses)))]
    shuffle = (rng or random.SystemRandom()).random
    # RFC 5321 5.1: lowest preference first; equal preferences in random order to spread load.
    keyed = sorted(records, key=lambda r: (r.preference, shuffle()))
    hosts: list[MXHost] = []
    seen: set[str] = set()
    for record in keyed:
        if record.exchange in seen:
            continue
        seen.add(record.exchange)
        hosts.append(MXHost(record.exchange, record.preference))
    ours = [h.preference for h in hosts if h.name in local_names]
    if ours:
        # RFC 5321 5.1: we are an MX of this domain; only better ones may take it from us.
        hosts = [h for h in hosts if h.preference < min(ours)]
        if not hosts:
            raise RouteError(ascii_domain, "5.4.6",
                             "mail for this domain loops back to myself (we are its best MX)",
                             temporary=False)
    return hosts


def _order(addresses: list[IPAddress], prefer_ipv6: bool = False) -> list[IPAddress]:
    # IPv4 first by default: broken IPv6 paths are still more common than broken IPv4 ones.
    return sorted(addresses, key=lambda a: (a.version == 4) == prefer_ipv6)


async def host_addresses(
    resolver: Resolver, host: MXHost, *, prefer_ipv6: bool = False
) -> list[IPAddress]:
    """Addresses for one MX host; raises ``DNSError`` (temporary or not) when there are none."""
    if host.addresses:
        return _order(list(host.addresses), prefer_ipv6)
    literal = _literal(host.name)
    if literal is None:
        try:
            literal = ipaddress.ip_address(host.name)
        except ValueError:
            literal = None
    if literal is not None:  # RFC 5321 5.1 forbids IPs as MX targets, but they occur
        return [literal]
    return _order(await resolver.ip(host.name), prefer_ipv6)
