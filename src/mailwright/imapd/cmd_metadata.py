"""Annotations: GETMETADATA and SETMETADATA (RFC 5464 METADATA and METADATA-SERVER), and the
METADATA data of LIST (RFC 9590 LIST-METADATA).

House rules: entry names arrive lower-cased and checked by the grammar; the mailbox ``""`` is
the server.  Annotations are the account's own: a mailbox's /private and /shared entries live
with the mailbox row (deleted with it, renamed with it); the server's /private entries are kept
per account, and its /shared entries are the operator's, read-only to IMAP users.  Limits are
checked before anything changes: the size of one value (``NO [METADATA MAXSIZE n]``) here, the
number of entries of an account (``NO [METADATA TOOMANY]``) in the store's transaction.
"""

from __future__ import annotations

from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.store.api import MetadataLimit, NotFound


async def _target(s: Session, raw: str) -> int | None:
    """The mailbox id for *raw*, or None for the server ("")."""
    if raw == "":
        return None
    mb = await s.store.get_mailbox(s.account_id, s.name_in(raw))
    if mb is None:
        raise No(f"Mailbox does not exist: {raw}", "NONEXISTENT")
    return mb.id


def value_bytes(value: bytes | None) -> bytes:
    """``value = nstring / literal8`` (RFC 5464 5): NUL needs a literal8."""
    if value is None:
        return b"NIL"
    if b"\x00" in value:
        return R.literal(value, binary=True)
    return R.string(value)


def _selected(
    stored: dict[str, bytes], wanted: tuple[str, ...], depth: ast.MetadataDepth
) -> list[tuple[str, bytes | None]]:
    """RFC 5464 4.2.2: each asked entry, and with DEPTH 1 its children, with DEPTH infinity
    all its descendants; an asked entry without a value and without such entries is NIL."""
    out: dict[str, bytes | None] = {}
    for entry in wanted:
        found = False
        if entry in stored:
            out[entry] = stored[entry]
            found = True
        if depth != "0":
            prefix = entry + "/"
            for name in sorted(stored):
                rest = name[len(prefix):] if name.startswith(prefix) else None
                if rest and (depth == "infinity" or "/" not in rest):
                    out[name] = stored[name]
                    found = True
        if not found:
            out.setdefault(entry, None)
    return list(out.items())


async def stored_entries(s: Session, mailbox_id: int | None) -> dict[str, bytes]:
    """What the client may read: the store's entries (server /shared ones are the operator's,
    none today)."""
    return await s.store.metadata_get(s.account_id, mailbox_id)


def metadata_line(s: Session, mailbox: str, pairs: list[tuple[str, bytes | None]]) -> bytes:
    name = b'""' if mailbox == "" else s.name_out(mailbox)
    body = b" ".join(R.astring(e) + b" " + value_bytes(v) for e, v in pairs)
    return b"METADATA " + name + b" (" + body + b")"


@handles(ast.GetMetadata)
async def getmetadata(s: Session, cmd: ast.GetMetadata) -> Ok | None:
    mailbox_id = await _target(s, cmd.mailbox)
    stored = await stored_entries(s, mailbox_id)
    pairs = _selected(stored, cmd.entries, cmd.depth)
    longest = 0
    if cmd.maxsize is not None:
        # RFC 5464 4.2.1: larger values are left out; LONGENTRIES says how large they were
        kept = []
        for e, v in pairs:
            if v is not None and len(v) > cmd.maxsize:
                longest = max(longest, len(v))
            else:
                kept.append((e, v))
        pairs = kept
    name = "" if mailbox_id is None else s.name_in(cmd.mailbox)
    if pairs:
        s.untagged(metadata_line(s, name, pairs))
    if longest:
        return Ok("GETMETADATA completed", f"METADATA LONGENTRIES {longest}")
    return None


@handles(ast.SetMetadata)
async def setmetadata(s: Session, cmd: ast.SetMetadata) -> Ok | None:
    mailbox_id = await _target(s, cmd.mailbox)
    limit = s.config.metadata_max_value
    for entry, value in cmd.entries:
        if value is not None and len(value) > limit:
            # RFC 5464 4.3: MAXSIZE tells the largest value the server accepts
            raise No("Annotation value too large", f"METADATA MAXSIZE {limit}")
        if mailbox_id is None and entry.startswith("/shared/"):
            # the server's shared annotations are the operator's
            raise No("Server shared annotations are read-only", "NOPERM")
    try:
        await s.store.metadata_set(
            s.account_id, mailbox_id, cmd.entries, s.config.metadata_max_entries
        )
    except MetadataLimit:
        raise No("Too many annotations", "METADATA TOOMANY") from None
    except NotFound:
        raise No(f"Mailbox does not exist: {cmd.mailbox}", "NONEXISTENT") from None
    return None


async def list_metadata(s: Session, mailbox_id: int, name: str, entries: tuple[str, ...]) -> None:
    """RFC 9590 2: after a mailbox's LIST response, its METADATA with the asked entries
    (NIL for the ones it does not have)."""
    stored = await stored_entries(s, mailbox_id)
    s.untagged(metadata_line(s, name, [(e, stored.get(e)) for e in entries]))
