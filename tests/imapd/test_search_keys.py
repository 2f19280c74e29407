"""imapd.search: every key kind, on hand-made messages, parsed by the real IMAP grammar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailwright.imapd import search
from mailwright.mime import normalize_crlf, parse_message
from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import parse_command
from mailwright.store.api import MessageRecord

M1 = normalize_crlf(
    b"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.test>\nTo: Bob <bob@example.test>\n"
    b"Cc: carol@example.test\nSubject: =?utf-8?b?Q2Fmw6k=?= meeting\n"
    b"Date: Tue, 01 Feb 2022 23:30:00 -0500\nX-Tag: alpha\n"
    b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n"
    b"\nDer B=E4r ist gro=DF.\n"
)
M2 = normalize_crlf(
    b"From: Alice <alice@example.test>\nSubject: hello\nContent-Type: multipart/mixed; b=1;"
    b" boundary=b\n\n--b\nContent-Type: application/octet-stream\n"
    b"Content-Transfer-Encoding: base64\n\nc2VjcmV0\n--b\nContent-Type: text/html\n\n"
    b"<p>Needle in HTML</p>\n--b--\n"
)
T0 = datetime(2022, 2, 3, 12, 0, tzinfo=UTC).timestamp()
RECS = [
    MessageRecord(1, 10, 5, frozenset({"\\Seen", "$Work"}), T0, len(M1), "m1"),
    MessageRecord(1, 20, 9, frozenset({"\\Flagged"}), T0 + 86400 * 3, len(M2), "m2"),
]
TEXTS = {
    "m1": search.MessageText(parse_message(M1), M1),
    "m2": search.MessageText(parse_message(M2), M2),
}
MSGS = [(1, RECS[0]), (2, RECS[1])]
CTX = search.SearchContext(largest_seq=2, largest_uid=20, saved=frozenset({20}),
                           now=datetime(2022, 2, 10, tzinfo=UTC))


def run(criteria: str, charset: bool = False) -> list[int]:
    wire = b"A SEARCH " + (b"CHARSET UTF-8 " if charset else b"") + criteria.encode("utf-8")
    cmd = parse_command(wire)
    assert isinstance(cmd, ast.Search)
    found = search.search(cmd.key, MSGS, CTX, lambda r: TEXTS[r.blob_id])
    return [seq for seq, _ in found]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ALL", [1, 2]),
        ("SEEN", [1]),
        ("UNSEEN", [2]),
        ("FLAGGED", [2]),
        ("KEYWORD $work", [1]),
        ("UNKEYWORD $Work", [2]),
        ("RECENT", []),
        ("NEW", []),
        ("OLD", [1, 2]),
        ("2", [2]),
        ("*", [2]),
        ("UID 10:15", [1]),
        ("UID *", [2]),
        ("UID $", [2]),
        ("$", [2]),
        ("LARGER 10", [1, 2]),
        (f"SMALLER {len(M2)}", [1] if len(M1) < len(M2) else []),
        ("MODSEQ 6", [2]),
        ('SUBJECT "café"', [1]),
        ('SUBJECT "CAFÉ"', [1]),
        ('FROM "jörg"', [1]),
        ("FROM alice", [2]),
        ("TO bob", [1]),
        ("CC carol", [1]),
        ('CC "<carol@"', [1]),  # the written form of the address, as Dovecot searches it
        ("BCC x", []),
        ('HEADER X-Tag ""', [1]),
        ("HEADER x-tag ALPHA", [1]),
        ('BODY "bär"', [1]),
        ("BODY GROSS", [1]),
        ("BODY needle", [2]),
        ("BODY secret", []),
        ("TEXT meeting", [1]),
        ("BODY meeting", []),
        ("SENTON 1-Feb-2022", [1]),
        # M2 has no Date: it counts as the epoch, as in Dovecot
        ("SENTBEFORE 2-Feb-2022", [1, 2]),
        ("SENTSINCE 4-Feb-2022", []),
        ("SENTSINCE 1-Feb-2022", [1]),
        ("ON 3-Feb-2022", [1]),
        ("BEFORE 4-Feb-2022", [1]),
        ("SINCE 4-Feb-2022", [2]),
        ("OLDER 518400", [1]),
        ("YOUNGER 518400", [2]),
        ("OR SEEN FLAGGED", [1, 2]),
        ("NOT SEEN", [2]),
        ("(SEEN SUBJECT meeting)", [1]),
        ("SEEN FROM alice", []),
    ],
)
def test_search_key(criteria: str, expected: list[int]) -> None:
    assert run(criteria, charset=not criteria.isascii()) == expected


def test_search_without_content_reads_nothing() -> None:
    cmd = parse_command(b"A SEARCH SEEN LARGER 3")
    assert isinstance(cmd, ast.Search)
    assert not search.needs_content(cmd.key)
    assert search.search_uids(cmd.key, MSGS, CTX) == {10}


def test_parse_sent_date() -> None:
    assert search.parse_sent_date(b"Tue, 01 Feb 2022 23:30:00 -0500").isoformat() == "2022-02-01"
    assert search.parse_sent_date(b"garbage") is None
    assert search.parse_sent_date(None) is None
    assert search.sent_timestamp(b"Tue, 01 Feb 2022 23:30:00 -0500") == datetime(
        2022, 2, 2, 4, 30, tzinfo=UTC).timestamp()
