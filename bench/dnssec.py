"""What in-process DNSSEC validation costs a DANE lookup: ``python -m bench.dnssec``.

The signed test hierarchy of ``tests/transport/test_dnssec.py`` (``test.`` as the trust anchor,
``dest.test.`` signed with ECDSA P-256, NSEC or NSEC3) on the loopback DNS server. For the TLSA
RRset of ``_25._tcp.mx.dest.test`` it times, over ``--rounds`` lookups each:

* ``plain``: an unvalidated lookup (dnspython, no cache), the floor;
* ``trust-ad``: the same through ``Resolver.authenticated`` with ``trust_ad`` (one query);
* ``validate, cold``: a new validator each time (the whole chain: DS and DNSKEY per label);
* ``validate, warm``: one validator (the chain cached for its TTL, the answer checked).

Prints the mean in milliseconds and the DNS queries per lookup. Only the proportions mean
something on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import dns.name
import dns.rdatatype
from tests.support.dnsserver import DNSServer
from tests.transport.test_dnssec import Zones

from mailwright.dns.dnssec import Validator, load_anchors
from mailwright.dns.resolver import Resolver

NAME = "_25._tcp.mx.dest.test"


async def measure(nsec3: bool, rounds: int) -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []
    with DNSServer() as server:
        zones = Zones(server, nsec3=nsec3)
        anchors = load_anchors([zones.anchor])
        plain = Resolver(server.nameservers, cache=False)
        trusting = Resolver(server.nameservers, cache=False, trust_ad=True)
        qname = dns.name.from_text(NAME + ".")

        async def timed(label: str, run: object) -> None:
            before = len(server.queries)
            start = time.perf_counter()
            for _ in range(rounds):
                await run()  # type: ignore[operator]
            elapsed = (time.perf_counter() - start) / rounds * 1000
            rows.append((label, elapsed, (len(server.queries) - before) / rounds))

        await timed("plain", lambda: plain.authenticated(NAME, "TLSA"))
        await timed("trust-ad", lambda: trusting.authenticated(NAME, "TLSA"))
        await timed("validate, cold",
                    lambda: Validator(server.nameservers, anchors).lookup(qname,
                                                                          dns.rdatatype.TLSA))
        warm = Validator(server.nameservers, anchors)
        await warm.lookup(qname, dns.rdatatype.TLSA)
        await timed("validate, warm", lambda: warm.lookup(qname, dns.rdatatype.TLSA))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    for nsec3 in (False, True):
        print(f"{'NSEC3' if nsec3 else 'NSEC'}: TLSA {NAME}, mean of {args.rounds}")
        for label, ms, queries in asyncio.run(measure(nsec3, args.rounds)):
            print(f"  {label:16} {ms:7.2f} ms  {queries:4.1f} queries")


if __name__ == "__main__":
    main()
