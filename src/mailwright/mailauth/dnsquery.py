"""The few DNS questions message authentication asks, on top of the shared resolver.

SPF, DKIM, DMARC and ARC need TXT, A, AAAA, MX and PTR answers and one distinction that matters
for their verdicts: "the name has no such data" (an empty list: NXDOMAIN or NODATA, which SPF
counts as a void lookup, RFC 7208 4.6.4) versus "DNS did not answer" (``DNSTempError``: timeout,
SERVFAIL, refused, garbage), which must become a temperror result and never a wrong verdict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from mailwright.dns import resolver as _resolver

__all__ = ["AuthDNS", "DNSTempError", "ResolverDNS", "as_auth_dns"]

_T = TypeVar("_T")


class DNSTempError(Exception):
    """DNS gave no usable answer (timeout, SERVFAIL, REFUSED, malformed reply)."""


class AuthDNS(Protocol):
    """What mailauth needs from a resolver. Empty lists mean NXDOMAIN or no data."""

    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record with its character-strings concatenated (RFC 7208 3.3)."""
        ...

    async def a(self, name: str) -> list[str]: ...

    async def aaaa(self, name: str) -> list[str]: ...

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) pairs, exchange without the trailing dot."""
        ...

    async def ptr(self, ip: str) -> list[str]:
        """Names from the reverse zone of an IPv4 or IPv6 address, without trailing dots."""
        ...


class ResolverDNS:
    """``AuthDNS`` on top of the shared ``mailwright.dns.resolver.Resolver``.

    Maps its typed errors onto the one distinction SPF/DKIM/DMARC care about: NXDOMAIN, NODATA
    and names that cannot exist become empty answers; everything temporary becomes
    ``DNSTempError``.
    """

    def __init__(self, resolver: _resolver.Resolver) -> None:
        self.resolver = resolver

    @staticmethod
    async def _call(lookup: Callable[[], Awaitable[list[_T]]]) -> list[_T]:
        try:
            return await lookup()
        except _resolver.DNSTempError as exc:
            raise DNSTempError(str(exc)) from exc
        except _resolver.DNSPermanentError:
            return []

    async def txt(self, name: str) -> list[bytes]:
        return await self._call(lambda: self.resolver.txt(name))

    async def a(self, name: str) -> list[str]:
        return [str(ip) for ip in await self._call(lambda: self.resolver.a(name))]

    async def aaaa(self, name: str) -> list[str]:
        return [str(ip) for ip in await self._call(lambda: self.resolver.aaaa(name))]

    async def mx(self, name: str) -> list[tuple[int, str]]:
        records = await self._call(lambda: self.resolver.mx(name))
        return [(r.preference, r.exchange) for r in records]

    async def ptr(self, ip: str) -> list[str]:
        return await self._call(lambda: self.resolver.ptr(ip))


def as_auth_dns(resolver: _resolver.Resolver | AuthDNS) -> AuthDNS:
    """Accept either the shared resolver or anything already speaking ``AuthDNS``."""
    if isinstance(resolver, _resolver.Resolver):
        return ResolverDNS(resolver)
    return resolver
