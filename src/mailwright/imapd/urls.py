"""Resolving IMAP URLs to message data: CATENATE (RFC 4469), URLFETCH (RFC 4467) and the
submission server's BURL (RFC 4468) all end here, so a URL is checked the same way wherever
it is used.

House rules:

* A URL without a URLAUTH verifier reaches only the accessor's own mailboxes (its user part,
  when present, must be the accessor); CATENATE allows that, URLFETCH and BURL do not.
* A URL with a verifier is checked in full before any message is read: the access identifier
  against the accessor (RFC 4467 3), the expiry, then the token against the owner's mailbox
  access key (constant-time compare).  Every failure is the same :class:`BadUrl`, so a peer
  learns nothing about other users' mailboxes from the error.
* The host part is not compared with a name: the store is this server's, and a verifier
  binds the whole URL, host included, to a key only this server holds.
* What is returned is one stored message or part of one, so its size is bounded by the
  largest message the store accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mailwright.imapd.fetch import load_message
from mailwright.imapd.names import normalize_inbox
from mailwright.imapd.roles import UrlStore
from mailwright.mime import imapfmt
from mailwright.proto.imap.imapurl import (
    MECHANISM,
    ImapUrl,
    UrlError,
    may_access,
    parse_url,
    token_matches,
    urlauth_token,
)
from mailwright.store.api import Account, Mailbox


class BadUrl(Exception):
    """The URL cannot be resolved for this accessor (IMAP ``[BADURL url]``, URLFETCH NIL,
    SMTP 554 5.7.8 / 5.6.6)."""


class ReadLimit(Exception):
    """The URLs of one command would read more stored data than its budget allows."""


@dataclass(slots=True)
class ReadBudget:
    """Octets of stored messages one command may still read through URLs: a URL with a
    small ``;PARTIAL=`` still reads its whole message, so without a budget a thousand such
    parts would read a thousand large messages for a few octets each."""

    left: int

    def take(self, octets: int) -> None:
        if octets > self.left:
            raise ReadLimit("too much data read through URLs")
        self.left -= octets


@dataclass(frozen=True, slots=True)
class Accessor:
    """Who asks: the authenticated account, and whether as the submit server (BURL)."""

    account: Account
    submit: bool = False


_PRINTABLE_URL = re.compile(r"[\x21-\x5c\x5e-\x7e]{1,1024}\Z")


def badurl_code(url: str) -> str:
    """The ``BADURL url`` response code (RFC 4469 6), leaving out a URL that could not be
    written back safely (spaces, controls, "]", 8-bit)."""
    return f"BADURL {url}" if _PRINTABLE_URL.match(url) else "BADURL"


async def _owner(store: UrlStore, url: ImapUrl, who: Accessor) -> Account:
    if url.user is None or url.user.lower() == who.account.address.lower():
        return who.account
    owner = await store.find_account(url.user)
    if owner is None or owner.disabled:
        raise BadUrl("no such user")
    return owner


async def _mailbox(store: UrlStore, owner: Account, url: ImapUrl) -> Mailbox:
    mb = await store.get_mailbox(owner.id, normalize_inbox(url.mailbox))
    if mb is None:
        raise BadUrl("no such mailbox")
    if url.uidvalidity is not None and url.uidvalidity != mb.uidvalidity:
        raise BadUrl("UIDVALIDITY changed")
    return mb


async def check(
    store: UrlStore, text: str, who: Accessor, *, relative: bool = False,
    require_urlauth: bool = False, now: datetime | None = None,
) -> tuple[ImapUrl, Account, Mailbox]:
    """Parse *text* and check that *who* may read it; the URL, its owner and mailbox."""
    try:
        url = parse_url(text, relative=relative)
    except UrlError as exc:
        raise BadUrl(str(exc)) from None
    if url.authorized:
        if url.user is None:
            raise BadUrl("a URLAUTH URL names its owner")
        # RFC 4467 3: the access identifier first, then expiry, then the token
        if not may_access(url, user=who.account.address, submit=who.submit):
            raise BadUrl("not for this accessor")
        if url.expire is not None and url.expire <= (now or datetime.now(UTC)):
            raise BadUrl("expired")
        owner = await _owner(store, url, who)
        mb = await _mailbox(store, owner, url)
        key = await store.urlauth_key(owner.id, mb.id)
        if key is None or not token_matches(key, url):
            raise BadUrl("invalid URLAUTH token")
        return url, owner, mb
    if require_urlauth or url.access is not None:
        raise BadUrl("URLAUTH required")
    if url.user is not None and url.user.lower() != who.account.address.lower():
        raise BadUrl("another user's mailbox")  # needs a URLAUTH-authorized URL
    return url, who.account, await _mailbox(store, who.account, url)


async def resolve(
    store: UrlStore, text: str, who: Accessor, *, relative: bool = False,
    require_urlauth: bool = False, now: datetime | None = None,
    budget: ReadBudget | None = None,
) -> bytes:
    """The data the URL names (whole message, section, partial range); :class:`BadUrl`, or
    :class:`ReadLimit` when the message would overdraw *budget*."""
    url, _, mb = await check(store, text, who, relative=relative,
                             require_urlauth=require_urlauth, now=now)
    recs = await store.get_messages(mb.id, [url.uid])
    if not recs:
        raise BadUrl("no such message")
    rec = recs[0]
    if budget is not None:
        budget.take(rec.size)
    sec = url.section
    info, raw = await load_message(store, rec, sec is not None, True)
    assert raw is not None
    if sec is None:
        data = raw
    else:
        assert info is not None
        try:
            data = imapfmt.section_bytes(info, raw, sec.part, sec.text or "",
                                         [f.encode("utf-8") for f in sec.fields])
        except imapfmt.SectionError:
            raise BadUrl("no such section") from None
    if url.partial is not None:
        # RFC 5092 3.4: ";PARTIAL=offset[.length]"
        off, length = url.partial
        data = data[off:] if length is None else data[off : off + length]
    return data


async def generate(store: UrlStore, account: Account, rump: str, mechanism: str) -> str:
    """GENURLAUTH (RFC 4467 6.2): the rump with ``:INTERNAL:<token>`` appended, for a URL of
    one of *account*'s own mailboxes; :class:`BadUrl` otherwise."""
    if mechanism != MECHANISM:
        raise BadUrl("unknown mechanism")
    try:
        url = parse_url(rump)
    except UrlError as exc:
        raise BadUrl(str(exc)) from None
    if url.access is None or url.authorized:
        raise BadUrl("a URL rump ends with ;URLAUTH=access")
    if url.user is None or url.user.lower() != account.address.lower():
        # RFC 4467 6.2: only the owner of the mailbox authorizes URLs to it
        raise BadUrl("not the user's own mailbox")
    mb = await store.get_mailbox(account.id, normalize_inbox(url.mailbox))
    if mb is None or (url.uidvalidity is not None and url.uidvalidity != mb.uidvalidity):
        raise BadUrl("no such mailbox")
    key = await store.urlauth_key_ensure(account.id, mb.id)
    return f"{rump}:{MECHANISM}:{urlauth_token(key, rump)}"
