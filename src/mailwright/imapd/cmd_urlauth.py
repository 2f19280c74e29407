"""URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH.

A URLAUTH-authorized URL lets someone else (the submit server acting for the user, another
user, anyone) read one message or part of it without the owner's password.  The token is
HMAC-SHA1 of the URL with the mailbox access key (proto/imap/imapurl.py); keys live in the
store (store/core/urlauth.py) and RESETKEY drops them, which invalidates every URL made with
them.  Resolution and every access check are in imapd/urls.py, shared with BURL.
"""

from __future__ import annotations

from mailwright.imapd import urls
from mailwright.imapd.cmd_mailbox import _mailbox
from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.imapurl import MECHANISM


@handles(ast.GenUrlAuth)
async def genurlauth(s: Session, cmd: ast.GenUrlAuth) -> Ok | None:
    """RFC 4467 6.2: every URL or none; ``* GENURLAUTH url...``."""
    assert s.account is not None
    out: list[bytes] = []
    for rump, mechanism in cmd.urls:
        try:
            full = await urls.generate(s.store, s.account, rump, mechanism)
        except urls.BadUrl:
            raise No("Cannot authorize that URL", urls.badurl_code(rump)) from None
        out.append(R.string(full))
    s.untagged(b"GENURLAUTH " + b" ".join(out))
    return None


@handles(ast.ResetKey)
async def resetkey(s: Session, cmd: ast.ResetKey) -> Ok | None:
    """RFC 4467 6.1: drop the access key of one mailbox, or of all of the user's."""
    for mech in cmd.mechanisms:
        if mech != MECHANISM:
            raise No(f"Unsupported mechanism {mech}")
    if cmd.mailbox is None:
        await s.store.urlauth_reset(s.account_id, None)
        return Ok("All keys reset")
    mb = await _mailbox(s, cmd.mailbox)
    await s.store.urlauth_reset(s.account_id, mb.id)
    # RFC 4467 6.1: the mechanisms the mailbox supports
    return Ok("Key reset", f"URLMECH {MECHANISM}")


@handles(ast.UrlFetch)
async def urlfetch(s: Session, cmd: ast.UrlFetch) -> Ok | None:
    """RFC 4467 6.3: one ``* URLFETCH url data`` per URL, NIL for one that cannot be read
    (never an error naming why: that would tell about others' mailboxes)."""
    assert s.account is not None
    who = urls.Accessor(s.account)
    for url in cmd.urls:
        try:
            data: bytes | None = await urls.resolve(s.store, url, who, require_urlauth=True)
        except urls.BadUrl:
            data = None
        s.untagged(b"URLFETCH " + R.astring(url) + b" " + R.nstring(data, utf8=False))
        await s.maybe_flush()
    return None
