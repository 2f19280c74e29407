"""The shared cache of decoded messages (`imapd.fetch.load_message`) is bounded in bytes, not
only in entries: a message of 10,000 MIME parts (about 480 KB, any sender can deliver it)
decodes to some 6 MB of Python objects, so 2,048 of them kept after one ``FETCH 1:*
BODYSTRUCTURE`` would hold about 12 GB."""

from __future__ import annotations

import pytest
from tests.conftest import new_inbox, stage_blob

from mailwright.imapd import fetch
from mailwright.store.api import MessageRecord, Store


def _many_parts(n: int, tag: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain; name=a%d\r\n\r\nx\r\n" % i for i in range(n)
    )
    return (
        b"From: a@example.test\r\nSubject: parts %d\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" % tag + parts + b"--b--\r\n"
    )


async def test_decoded_messages_kept_are_bounded_in_bytes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the budget made small enough for eight of these messages to pass it
    monkeypatch.setattr(fetch, "INFOS_MAX_BYTES", 2 * 1024 * 1024, raising=False)
    fetch.clear_infos()
    inbox = await new_inbox(store)
    recs: list[MessageRecord] = []
    for k in range(8):
        recs.append(await store.append(inbox, await stage_blob(store, _many_parts(10_000, k))))
    small = await store.append(inbox, await stage_blob(store, _many_parts(2, 99)))
    for rec in [*recs, small]:
        info, _ = await fetch.load_message(store, rec, True, False)
        assert info is not None and len(info.root.children) >= 2  # decoded in full
    # what each was decoded from: its stored meta, or the message itself (these have no meta)
    kept = [rec for rec in recs if rec.blob_id in fetch._INFOS]
    weights = [len(await store.get_meta(rec.blob_id) or b"") or rec.size for rec in kept]
    # the eight are 3.8 MB, some 46 MB decoded: no more than the budget may stay
    assert 0 < sum(weights) <= 2 * 1024 * 1024, (len(kept), sum(weights))
    assert small.blob_id in fetch._INFOS  # a small message is still kept
    fetch.clear_infos()
