"""Recipient resolution: accounts, aliases, catch-alls and plus-addressing.

Used by SMTP at RCPT time and by local delivery. Resolution order for `local+tag@domain`:
the exact account, the exact alias, the account or alias for `local@domain` (plus-addressing),
then the catch-all `@domain`. Aliases expand recursively with a depth bound and loop detection.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwright.address import Address, AddressError, parse_address
from mailwright.store.api import Account, AccountLookup

MAX_ALIAS_DEPTH = 10


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where mail for one address goes."""

    local_domain: bool  # the domain is one of ours
    accounts: tuple[Account, ...] = ()  # local mailboxes to deliver to
    remote: tuple[str, ...] = ()  # alias targets outside our domains

    @property
    def deliverable(self) -> bool:
        return bool(self.accounts or self.remote)


class Directory:
    def __init__(self, store: AccountLookup) -> None:
        self.store = store

    async def is_local_domain(self, domain: str) -> bool:
        return await self.store.has_domain(domain.lower().rstrip("."))

    async def resolve(
        self, address: str | Address, *, domains: dict[str, bool] | None = None
    ) -> Resolution:
        """Where mail for `address` goes. `domains` remembers which domains are ours for the
        caller across calls (an SMTP transaction's RCPTs: 50 recipients at one domain are one
        domain lookup, not 50)."""
        try:
            addr = address if isinstance(address, Address) else parse_address(address)
        except AddressError:
            return Resolution(False)
        memo = domains if domains is not None else {}
        if not await self._has_domain(addr.domain, memo):
            return Resolution(False, remote=(str(addr),))
        accounts: dict[int, Account] = {}
        remote: list[str] = []
        await self._expand(addr, accounts, remote, set(), 0, domains=memo)
        return Resolution(True, tuple(accounts.values()), tuple(dict.fromkeys(remote)))

    async def _has_domain(self, domain: str, domains: dict[str, bool]) -> bool:
        known = domains.get(domain)
        if known is None:
            known = domains[domain] = await self.store.has_domain(domain)
        return known

    async def _expand(
        self,
        addr: Address,
        accounts: dict[int, Account],
        remote: list[str],
        seen: set[str],
        depth: int,
        *,
        domains: dict[str, bool] | None = None,
    ) -> None:
        key = str(addr)
        if key in seen or depth > MAX_ALIAS_DEPTH:
            return
        seen.add(key)
        if domains is None:
            domains = {}
        if not await self._has_domain(addr.domain, domains):
            remote.append(key)
            return
        for candidate in (addr, addr.base) if addr.base != addr else (addr,):
            acc = await self.store.find_account(str(candidate))
            if acc is not None:
                if not acc.disabled:
                    accounts[acc.id] = acc
                return
            alias = await self.store.get_alias(str(candidate))
            if alias is not None:
                await self._expand_targets(alias.targets, accounts, remote, seen, depth,
                                           domains)
                return
        catch_all = await self.store.get_alias(f"@{addr.domain}")
        if catch_all is not None:
            await self._expand_targets(catch_all.targets, accounts, remote, seen, depth, domains)

    async def _expand_targets(
        self,
        targets: tuple[str, ...],
        accounts: dict[int, Account],
        remote: list[str],
        seen: set[str],
        depth: int,
        domains: dict[str, bool],
    ) -> None:
        for t in targets:
            try:
                ta = parse_address(t)
            except AddressError:
                continue
            await self._expand(ta, accounts, remote, seen, depth + 1, domains=domains)

    async def addresses_of(self, account: Account) -> set[str]:
        """Every address the account may send as: its own and aliases that point only to it."""
        out = {account.address}
        for alias in await self.store.list_aliases():
            if alias.source.startswith("@"):
                continue
            if alias.targets == (account.address,):
                out.add(alias.source)
        return out

    async def may_send_as(self, account: Account, sender: str) -> bool:
        """RFC 6409 8.1: submission may restrict the envelope sender to the user's addresses."""
        try:
            addr = parse_address(sender)
        except AddressError:
            return False
        if str(addr) == account.address or str(addr.base) == account.address:
            return True
        aliases = await self.addresses_of(account)
        return str(addr) in aliases or str(addr.base) in aliases
