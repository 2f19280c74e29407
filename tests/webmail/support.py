"""Putting messages into a real store for the webmail tests."""

from __future__ import annotations

from mailwright.store.api import MessageRecord, Store


async def put(store: Store, account_id: int, mailbox: str, raw: bytes,
              flags: tuple[str, ...] = ()) -> MessageRecord:
    box = await store.get_mailbox(account_id, mailbox)
    assert box is not None
    writer = store.blob_writer()
    writer.write(raw)
    return await store.append(box.id, await writer.finish(), flags)


def mail(subject: str, *, sender: str = "Bob <bob@example.org>",
         to: str = "alice@example.test", body: str = "hello", msgid: str = "",
         refs: str = "", extra: str = "") -> bytes:
    head = [f"From: {sender}", f"To: {to}", f"Subject: {subject}",
            "Date: Mon, 07 Dec 2026 10:00:00 +0000"]
    if msgid:
        head.append(f"Message-ID: {msgid}")
    if refs:
        head += [f"In-Reply-To: {refs.split()[-1]}", f"References: {refs}"]
    if extra:
        head.append(extra)
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()
