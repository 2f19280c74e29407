"""CATENATE (RFC 4469): the parts of an APPEND message built on the server.

The connection core streams a CATENATE message like any APPEND message (see
``proto/imap/connection.py``): :func:`cmd_mailbox.append_message_start` opens a blob writer,
then each part arrives here in order.  A URL part is resolved through ``imapd/urls.py`` (the
user's own mailboxes, or any URLAUTH-authorized URL) and written into the same writer as the
TEXT literals, so nothing but one referenced message is held in memory.  A bad URL fails the
whole APPEND with ``NO [BADURL url]`` (RFC 4469 6); once a part failed, the rest of the
command is read and dropped, and a synchronizing TEXT literal is refused at once (RFC 4469 6:
"the server MAY ... reject the literal").
"""

from __future__ import annotations

from mailwright.imapd import urls
from mailwright.imapd.cmd_mailbox import AppendUpload
from mailwright.imapd.session import No, Session
from mailwright.proto.imap import response as R
from mailwright.proto.imap.connection import CatenateTextStart, CatenateUrlPart

#: one APPEND may read through its URLs this many times APPENDLIMIT of stored messages
#: (a URL reads its whole message, however small the part it takes)
READ_BUDGET_FACTOR = 4


async def part(s: Session, ev: CatenateUrlPart | CatenateTextStart) -> None:
    upload: AppendUpload | None = s.upload
    if upload is None:  # pragma: no cover - the connection starts the message first
        if isinstance(ev, CatenateTextStart):
            s.conn.reject_literal()
            s.write(R.tagged(ev.tag, "NO", "APPEND was refused"))
        return
    if isinstance(ev, CatenateTextStart):
        if upload.failure is not None:
            # the command already failed: do not ask for data we would throw away
            failure = upload.failure
            s.conn.reject_literal()
            s.abort_upload()
            if isinstance(failure, No):
                s.write(R.tagged(ev.tag, "NO", failure.text, failure.code))
            else:
                s.write(failure.with_tag(ev.tag).to_bytes())
            return
        if upload.writer is not None and upload.writer.size + ev.size > upload.limit:
            # RFC 4469 6: the message would outgrow APPENDLIMIT; refuse before the data
            s.conn.reject_literal()
            s.abort_upload()
            s.write(R.tagged(ev.tag, "NO", "Message too large", "TOOBIG"))
            return
        s.write(s.conn.accept_literal())
        return
    if upload.failure is not None or upload.writer is None:
        return
    assert s.account is not None
    if upload.budget is None:
        upload.budget = urls.ReadBudget(READ_BUDGET_FACTOR * upload.limit)
    try:
        data = await urls.resolve(s.store, ev.url, urls.Accessor(s.account), relative=True,
                                  budget=upload.budget)
    except urls.BadUrl:
        upload.fail(No("CATENATE URL cannot be resolved", urls.badurl_code(ev.url)))
        return
    except urls.ReadLimit:
        upload.fail(No("CATENATE reads too much stored data", "LIMIT"))
        return
    upload.write(data)
