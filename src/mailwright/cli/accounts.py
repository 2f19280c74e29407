"""Account removal and alias hygiene: `user del` and the alias part of `check`.

Deleting an account must not silently lose mail (the operator confirms, or says `--force`)
and must not leave aliases pointing at an address that no longer exists: such an alias would
accept mail at RCPT time (RFC 5321 4.5.1 postmaster included) and then have nowhere to put it.
"""

from __future__ import annotations

import sys

from mailwright.accounts.admin import delete_account
from mailwright.address import AddressError, parse_address
from mailwright.cli.common import CLIError, with_store
from mailwright.config import Config
from mailwright.store.api import AccountLookup, Accounts, Alias


def _confirm(question: str) -> bool:
    print(question + " [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def delete_user(config: Config, address: str, force: bool) -> int:
    async def usage(store: AccountLookup) -> tuple[int, int]:
        acc = await store.find_account(address)
        if acc is None:
            raise CLIError(f"no such user: {address}", 1)
        u = await store.usage(acc.id)
        return u.messages, u.bytes

    messages, size = with_store(config, usage)
    if messages and not force:
        what = f"{address} has {messages} message(s) ({size} bytes)"
        if not sys.stdin.isatty():
            raise CLIError(f"{what}; export them first (`mailwright export maildir DIR --user "
                           f"{address}`) or delete anyway with --force", 1)
        if not _confirm(f"{what}. Delete the account and all its mail?"):
            raise CLIError("not deleted", 1)

    async def delete(store: Accounts) -> list[str]:
        acc = await store.find_account(address)
        if acc is None:
            raise CLIError(f"no such user: {address}", 1)
        return await delete_account(store, acc)

    notes = with_store(config, delete)
    print(f"deleted user {address}" + (f" and {messages} message(s)" if messages else ""))
    for note in notes:
        print(note)
    return 0


async def dangling_aliases(store: AccountLookup) -> list[str]:
    """Aliases whose local targets lead nowhere: no account, no alias, no catch-all."""
    aliases: dict[str, Alias] = {a.source: a for a in await store.list_aliases()}
    problems: list[str] = []
    for alias in aliases.values():
        for target in alias.targets:
            try:
                addr = parse_address(target)
            except AddressError:
                problems.append(f"alias {alias.source}: target {target} is not an address")
                continue
            if not await store.has_domain(addr.domain):
                continue  # remote: the outbound queue's business
            candidates = {str(addr), str(addr.base)}
            if any(c in aliases for c in candidates) or f"@{addr.domain}" in aliases:
                continue
            found = False
            for c in candidates:
                if await store.find_account(c) is not None:
                    found = True
            if not found:
                problems.append(f"alias {alias.source}: target {target} has no account "
                                "(mail to it would bounce)")
        if not alias.source.startswith("@"):
            domain = alias.source.rpartition("@")[2]
            if not await store.has_domain(domain):
                problems.append(f"alias {alias.source}: {domain} is not a local domain")
    return problems

