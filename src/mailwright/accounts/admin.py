"""Account administration shared by the operator commands (`mailwright user`) and the web
interface's /admin/ pages, so both follow the same rules."""

from __future__ import annotations

from collections.abc import Iterable

from mailwright.accounts import settings
from mailwright.store.api import Account, Accounts, WebState


async def create_account(store: Accounts, address: str, password_hash: str,
                         quota: int) -> tuple[Account, bool]:
    """Add the account; whether postmaster@ its domain was made an alias to it.

    RFC 5321 4.5.1: every domain must accept mail for postmaster; the domain's first user
    receives it until the operator says otherwise.
    """
    account = await store.add_account(address, password_hash, quota)
    postmaster = f"postmaster@{address.rpartition('@')[2]}"
    if address != postmaster and await store.find_account(postmaster) is None and (
        await store.get_alias(postmaster) is None
    ):
        await store.add_alias(postmaster, [address])
        return account, True
    return account, False


async def rewire_aliases(store: Accounts, address: str) -> list[str]:
    """Take ADDRESS out of every alias; drop aliases left with no target. Returns what changed."""
    notes: list[str] = []
    for alias in await store.list_aliases():
        if address not in alias.targets:
            continue
        rest = [t for t in alias.targets if t != address]
        await store.delete_alias(alias.source)
        if rest:
            await store.add_alias(alias.source, rest)
            notes.append(f"alias {alias.source} now delivers to {', '.join(rest)}")
        else:
            notes.append(f"alias {alias.source} removed (it delivered only to {address})")
            if alias.source.startswith("postmaster@"):
                notes.append(f"warning: {alias.source} must reach someone (RFC 5321 4.5.1): "
                             f"`mailwright alias add {alias.source} ADDRESS`")
    return notes


async def delete_account(store: Accounts, account: Account) -> list[str]:
    """Delete the account with its mail, and take it out of the aliases (notes returned):
    an alias left pointing at it would accept mail it has nowhere to put."""
    await store.delete_account(account.id)
    return await rewire_aliases(store, account.address)


async def set_admin(store: WebState, account_id: int, admin: bool) -> None:
    await store.set_account_setting(account_id, settings.ADMIN, "1" if admin else None)


async def admins(store: WebState) -> set[int]:
    return {i for i, v in (await store.account_settings(settings.ADMIN)).items() if v == "1"}


async def set_send_as(store: Accounts, account_id: int, grant: Iterable[str],
                      revoke: Iterable[str]) -> list[str]:
    """RFC 6409 8.1: which From:/Sender: addresses submission lets the account use; the
    revocations that matched no grant."""
    for a in grant:
        await store.grant_send_as(account_id, a)
    return [a for a in revoke if not await store.revoke_send_as(account_id, a)]
