"""ACL commands (RFC 4314 3): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS.

The store keeps and enforces the rights (`store/core/acl.py`); a handler names the mailbox
(`shared.open_mailbox`), calls the store with the acting account, and turns the store's
refusals into response codes: `AccessDenied` is ``NO [NOPERM]`` (in `Session.execute`), an
identifier the server does not know or the owner's own entry ``NO [CANNOT]``, an unknown right
``BAD`` (3.1).
"""

from __future__ import annotations

from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.imapd.shared import open_mailbox
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.errors import ProtocolError
from mailwright.store.api import ALL_RIGHTS, InvalidOperation, NotFound


def _astring(s: Session, text: str) -> bytes:
    return R.astring(text, utf8=s.utf8)


@handles(ast.SetAcl)
async def setacl(s: Session, cmd: ast.SetAcl) -> Ok | None:
    mb, _, _ = await open_mailbox(s, cmd.mailbox)
    try:
        await s.store.acl_set(s.account_id, mb.id, cmd.identifier, cmd.rights)
    except ValueError as exc:
        # RFC 4314 3.1: an unrecognized right is a BAD response
        raise ProtocolError(str(exc)) from None
    except InvalidOperation as exc:
        raise No(str(exc), "CANNOT") from None
    except NotFound:
        raise No(f"Mailbox does not exist: {cmd.mailbox}", "NONEXISTENT") from None
    return None


@handles(ast.DeleteAcl)
async def deleteacl(s: Session, cmd: ast.DeleteAcl) -> Ok | None:
    mb, _, _ = await open_mailbox(s, cmd.mailbox)
    try:
        await s.store.acl_delete(s.account_id, mb.id, cmd.identifier)
    except InvalidOperation as exc:
        raise No(str(exc), "CANNOT") from None
    except NotFound:
        raise No(f"Mailbox does not exist: {cmd.mailbox}", "NONEXISTENT") from None
    return None


@handles(ast.GetAcl)
async def getacl(s: Session, cmd: ast.GetAcl) -> Ok | None:
    mb, _, ref = await open_mailbox(s, cmd.mailbox, "a")
    entries = await s.store.acl_get(s.account_id, mb.id)
    line = b"ACL " + s.name_out(ref.display)
    for ident, rights in entries:
        line += b" " + _astring(s, ident) + b" " + _astring(s, rights)
    s.untagged(line)
    return None


@handles(ast.ListRights)
async def listrights(s: Session, cmd: ast.ListRights) -> Ok | None:
    mb, _, ref = await open_mailbox(s, cmd.mailbox, "a")
    owner = await s.store.get_account(mb.account_id)
    line = b"LISTRIGHTS " + s.name_out(ref.display) + b" " + _astring(s, cmd.identifier)
    if owner is not None and cmd.identifier.lower() == owner.address:
        # the owner always holds every right (3.4: all of them required, none optional)
        line += b" " + ALL_RIGHTS.encode()
    else:
        # nothing is granted always; each right can be granted on its own
        line += b' "" ' + b" ".join(r.encode() for r in ALL_RIGHTS)
    s.untagged(line)
    return None


@handles(ast.MyRights)
async def myrights(s: Session, cmd: ast.MyRights) -> Ok | None:
    # 3.5: any right lets the user ask; with none, the mailbox is not known to exist
    _, rights, ref = await open_mailbox(s, cmd.mailbox)
    s.untagged(b"MYRIGHTS " + s.name_out(ref.display) + b" " + _astring(s, rights))
    return None
