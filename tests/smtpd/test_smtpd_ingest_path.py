"""The short path of a small message through the MX (issue 16): what it leaves out must not
change what it produces.

A small message is analysed by the spam filter on the event loop and parsed for its meta on
the loop while a thread fsyncs it; larger ones keep the thread path. Both must give the same
tokens and the same meta as the plain definitions, and an accepted message is one log line
that carries the spam verdict.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from tests.smtpd.harness import add_user, inbox, start_server
from tests.spam.messages import ham
from tests.spam.smtp_client import RawSMTP

from mailwright.spam.classifier import INLINE_ANALYSIS, Classifier, analyse
from mailwright.spam.tokens import token_key
from mailwright.store import meta_parser
from mailwright.store.blobs import KEEP_FOR_PARSE, PARSE_ON_LOOP, BlobFiles, FileBlobWriter


def _message(size: int) -> bytes:
    head = (b"From: Alice <alice@friends.example>\r\nTo: bob@example.test\r\n"
            b"Subject: the path of a message\r\nMessage-ID: <path@friends.example>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")  # fmt: skip
    line = b"Meeting notes for the Tuesday review, agenda and budget figures.\r\n"
    return head + line * ((size - len(head)) // len(line) + 1)


@pytest.mark.parametrize("size", [2_000, INLINE_ANALYSIS + 2_000])
async def test_ingest_path_analysis_on_the_loop_or_in_a_thread_is_the_same(size: int) -> None:
    raw = _message(size)
    assert (len(raw) <= INLINE_ANALYSIS) == (size < INLINE_ANALYSIS)
    reference = analyse(raw, 512 * 1024)
    got = await Classifier(None, max_bytes=512 * 1024).analyse(raw)  # type: ignore[arg-type]
    assert got.tokens == reference.tokens
    # the keys are made when first asked for, and are those of the store's counts
    assert got.keys == {token_key(t): t for t in reference.tokens}
    assert got.keys is got.keys


@pytest.mark.parametrize("size", [1_000, PARSE_ON_LOOP + 1_000, KEEP_FOR_PARSE + 1_000])
async def test_ingest_path_meta_from_kept_bytes_equals_meta_from_the_file(
    tmp_path: Path, size: int
) -> None:
    """Small blobs are parsed on the loop from the bytes kept in memory, medium ones in the
    thread from them, large ones from the staging file read back: one meta for all three, and
    the staged file holds the content (fsync'ed before `finish` returns)."""
    parse = meta_parser()
    raw = _message(size)
    files = BlobFiles(tmp_path)
    writer = FileBlobWriter(files, parse)
    chunk = bytearray()
    for i in range(0, len(raw), 4096):
        chunk[:] = raw[i : i + 4096]
        writer.write(chunk)  # a buffer the caller reuses: what was kept must not change
    staged = await writer.finish()
    assert staged.meta == parse(raw)
    assert staged.size == len(raw)
    assert files.read_staged(staged) == raw


async def test_ingest_path_one_log_line_per_accepted_message_with_the_spam_verdict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(tmp_path)
    await add_user(server.ctx.store, "bob")
    try:
        caplog.set_level(logging.INFO, logger="mailwright")
        c = await RawSMTP.connect(server.port)
        assert (await c.reply()).startswith("220 ")
        await c.cmd("EHLO client.test")
        lines = await c.send_message("alice@friends.example", ["bob@example.test"], ham(3))
        assert lines[-1].startswith("250 ")
        await c.cmd("QUIT")
        await c.close()
        await asyncio.sleep(0)
        assert len(await inbox(server.ctx.store, "bob@example.test")) == 1
    finally:
        await server.stop()
    accepted = [r for r in caplog.records if r.getMessage() == "message accepted"]
    assert len(accepted) == 1
    fields = accepted[0].fields  # type: ignore[attr-defined]
    assert fields["spam_verdict"] == "ham"
    assert float(fields["spam_score"]) < 5.0
    assert "BAYES_UNTRAINED" in fields["spam_tests"]
    assert not [r for r in caplog.records if r.getMessage() == "spam verdict"]
