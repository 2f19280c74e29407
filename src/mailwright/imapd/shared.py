"""Other users' mailboxes as IMAP names (RFC 2342 namespaces, RFC 4314 rights).

A mailbox another account shares with the user is named ``Other Users/<owner>/<name>``:
``Other Users/alice@example.org/Projects``. Every name a client gives goes through `locate`,
which decides whose tree it names; a name under the prefix is never one of the user's own
mailboxes (CREATE refuses the prefix), so no name of the user's own tree can reach another
account, and a name under the prefix reaches only a mailbox the store says the user may see.
Names are validated (no ``..`` or empty levels, mUTF-7 decoded first) before they are split,
and the owner is looked up by exact address: there is no path to walk.

The rights are the store's (`AccessControl.acl_rights`); this module only turns them into IMAP
answers: a mailbox the user has no right on does not exist (``NO [NONEXISTENT]``, RFC 4314 6),
a right the command needs and the user lacks is ``NO [NOPERM]`` (RFC 4314 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwright.imapd.session import No, Session
from mailwright.store.api import (
    ALL_RIGHTS,
    OTHER_USERS_PREFIX,
    Mailbox,
    NotFound,
    split_shared_name,
)

#: RFC 2342 5: the other users' namespace; its delimiter is "/" like the personal one
PREFIX = OTHER_USERS_PREFIX
OTHER_USERS = PREFIX.rstrip("/")


@dataclass(frozen=True, slots=True)
class MailboxRef:
    """Whose mailbox a client's name means, under which name in the owner's tree."""

    owner_id: int
    name: str  # in the owner's tree
    display: str  # as the client names it

    @property
    def shared(self) -> bool:
        return self.display != self.name


def display_name(owner: str, name: str) -> str:
    return PREFIX + owner + "/" + name


def is_other_users(name: str) -> bool:
    """Whether a (validated) name is in the other users' namespace."""
    return name == OTHER_USERS or name.startswith(PREFIX)


async def locate(s: Session, raw: str) -> MailboxRef:
    """The owner and name a client's mailbox name means; NONEXISTENT for a name under the
    prefix that names no other account."""
    name = s.name_in(raw)
    if not is_other_users(name) or name == OTHER_USERS:
        # the namespace's root is a placeholder, never a mailbox (CREATE refuses it)
        return MailboxRef(s.account_id, name, name)
    parts = split_shared_name(name)
    acc = await s.store.find_account(parts[0]) if parts else None
    if parts is None or acc is None or acc.id == s.account_id:
        raise No(f"Mailbox does not exist: {raw}", "NONEXISTENT")
    return MailboxRef(acc.id, parts[1], display_name(acc.address, parts[1]))


async def open_mailbox(
    s: Session, raw: str, needed: str = ""
) -> tuple[Mailbox, str, MailboxRef]:
    """The mailbox a client names, the user's rights on it and its reference: NONEXISTENT
    when it does not exist or is not the user's to know of, NOPERM when a right of `needed`
    is missing."""
    ref = await locate(s, raw)
    mb = await s.store.get_mailbox(ref.owner_id, ref.name)
    if mb is None:
        raise No(f"Mailbox does not exist: {raw}", "NONEXISTENT")
    rights = ALL_RIGHTS
    if ref.shared:
        try:
            rights = await s.store.acl_rights(s.account_id, mb.id)
        except NotFound:
            raise No(f"Mailbox does not exist: {raw}", "NONEXISTENT") from None
    missing = "".join(r for r in needed if r not in rights)
    if missing:
        raise No(f"You lack the right(s) {missing} on this mailbox", "NOPERM")
    return mb, rights, ref


def readonly_rights(rights: str) -> bool:
    """RFC 4314 4: SELECT answers READ-ONLY when the user may change nothing in the mailbox
    (none of s, w, i, t, e)."""
    return not any(r in rights for r in "swite")


def permanent_flags(rights: str) -> str:
    """RFC 4314 4: PERMANENTFLAGS lists only the flags the user may change."""
    out = []
    if "w" in rights:
        out += ["\\Answered", "\\Flagged"]
    if "t" in rights:
        out.append("\\Deleted")
    if "s" in rights:
        out.append("\\Seen")
    if "w" in rights:
        out += ["\\Draft", "\\*"]
    return "(" + " ".join(out) + ")"
