"""The stored meta (mime/model.py `to_meta`) and its SEARCH field cache (mime/searchfields.py).

A message read back from the sectioned meta is the message that was parsed (tree, envelope,
problems), read lazily; the old JSON form is still read; and every cached header field gives
exactly what decoding the message's own header gives, so SEARCH answers the same whether it
reads the blob or not. Run over built-in awkward messages, the repository's corpus
(tests/corpus/messages) and, when it is there, every message of ../shared/corpus."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mailwright.imapd.search import MessageText, needs_raw
from mailwright.mime import parse_message
from mailwright.mime.model import MessageInfo
from mailwright.mime.searchfields import CACHED_FIELDS, search_fields
from mailwright.proto.imap import ast
from mailwright.store import meta_parser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mime"))
from tests.corpus.oracle import own_messages  # noqa: E402

from corpus import corpus_dir  # noqa: E402

BUILTIN = [
    b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.test>\r\nTo: a@example.test, \"B, C\" <b@x.test>"
    b"\r\nCc: undisclosed-recipients:;\r\nSubject: =?iso-8859-1?q?caf=E9?= au lait\r\n"
    b"Subject: second\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\nMessage-ID: <a@b>\r\n"
    b"References: <x@y>\r\n <z@w>\r\n\r\nbody\r\n",
    b"From: broken <@>\r\nTo: group: a@x.test, b@y.test;\r\nSubject:\r\n\r\n",
    b"Subject: no from\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: message/rfc822\r\n\r\nFrom: inner@example.test\r\nSubject: inner\r\n\r\n"
    b"inner body\r\n--b--\r\n",
    b"From: \xc3\xa9l\xc3\xa8ve <e@example.test>\r\nX-Other: 1\r\n\r\n8-bit header\r\n",
    b"no header at all\r\n",
]


def _messages() -> list[bytes]:
    root = corpus_dir()
    found = sorted((root / "messages").iterdir()) if root is not None else []
    files = own_messages() + [p for p in found if p.is_file()]
    assert len(files) >= 68  # the repository's corpus is always there
    return BUILTIN + [p.read_bytes() for p in files]


def test_meta_reads_back_as_parsed_and_lazily() -> None:
    parse = meta_parser()
    for raw in _messages():
        info = parse_message(raw)
        stored = MessageInfo.from_meta(parse(raw))
        assert stored.size == info.size and stored.header_end == info.header_end
        assert stored.envelope == info.envelope  # from its own section, no tree yet
        assert stored == info  # the tree, decoded on first use
        assert MessageInfo.from_meta(info.to_json()) == info  # the older form


def test_cached_fields_are_what_the_header_decodes_to() -> None:
    parse = meta_parser()
    for raw in _messages():
        stored = MessageInfo.from_meta(parse(raw))
        assert stored.search_fields == search_fields(raw, stored.header_end)
        from_blob = MessageText(parse_message(raw), raw)
        from_meta = MessageText(stored, b"", has_raw=False)
        for name in CACHED_FIELDS:
            assert from_meta.header_values(name) == from_blob.header_values(name), name


def test_header_keys_on_cached_fields_need_no_blob() -> None:
    def header(name: str) -> ast.SearchKey:
        return ast.SearchHeader(name, "x")

    assert not needs_raw(header("FROM"), CACHED_FIELDS)
    assert not needs_raw(ast.SearchAnd((header("Subject"), header("TO"))), CACHED_FIELDS)
    assert needs_raw(header("X-Spam"), CACHED_FIELDS)
    assert needs_raw(ast.SearchText("body", "x"), CACHED_FIELDS)
    assert needs_raw(header("FROM"))  # a message stored before the cache: the blob


def test_uncached_field_without_the_blob_is_refused() -> None:
    raw = BUILTIN[3]
    text = MessageText(MessageInfo.from_meta(meta_parser()(raw)), b"", has_raw=False)
    with pytest.raises(ValueError):
        text.header_values(b"x-other")
