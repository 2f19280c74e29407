"""imapd.sortthread: RFC 5256 base subjects, SORT keys and both THREAD algorithms."""

from __future__ import annotations

import pytest

from mailwright.imapd import sortthread
from mailwright.mime import normalize_crlf, parse_message
from mailwright.mime.model import MessageInfo
from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import parse_command
from mailwright.store.api import MessageRecord


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        (b"hello", "hello", False),
        (b"Re: hello", "hello", True),
        (b"RE: re: Fwd: FW: hello", "hello", True),
        (b"Re: [list] Re: hello (fwd)", "hello", True),
        (b"[list] hello", "hello", False),
        (b"[PATCH]", "[PATCH]", False),
        (b"[fwd: Re: hi]", "hi", True),
        (b"  Re:\t  spaced   out  ", "spaced out", True),
        (b"Re[2]: counted", "counted", True),
        (b"=?utf-8?q?Re=3A_caf=C3=A9?=", "café", True),
        (b"", "", False),
        (None, "", False),
    ],
)
def test_base_subject(subject: bytes | None, base: str, reply: bool) -> None:
    assert sortthread.base_subject(subject) == (base, reply)


def _msg(n: int, headers: str, size_pad: int = 0) -> tuple[tuple[int, MessageRecord], MessageInfo]:
    raw = normalize_crlf(headers.encode() + b"\n" + b"x" * size_pad + b"\n")
    rec = MessageRecord(1, 100 + n, 1, frozenset(), 1_000_000.0 + 1000 * (10 - n), len(raw),
                        f"b{n}")
    return (n, rec), parse_message(raw)


MSGS = [
    _msg(1, "Message-ID: <a@x.test>\nSubject: topic\nFrom: Zed <zed@x.test>\nTo: b@x.test\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\n", 50),
    _msg(2, "Message-ID: <b@x.test>\nReferences: <a@x.test>\nSubject: Re: topic\nFrom: amy@x.test\n"
            "To: Carl <c@x.test>\nDate: Mon, 1 Jan 2024 11:00:00 +0000\n", 10),
    _msg(3, "Message-ID: <c@x.test>\nReferences: <a@x.test> <b@x.test>\nSubject: Re: topic\nFrom: bob@x.test\n"
            "Cc: q@x.test\nDate: Mon, 1 Jan 2024 12:00:00 +0000\n", 30),
    _msg(4, "Message-ID: <d@x.test>\nIn-Reply-To: <a@x.test>\nSubject: Re: topic\nFrom: =?utf-8?q?=C3=89mile?="
            " <emile@x.test>\nDate: Mon, 1 Jan 2024 13:00:00 +0000\n", 20),
    _msg(5, "Message-ID: <e@x.test>\nSubject: other\nFrom: amy@x.test\n"
            "Date: Mon, 1 Jan 2024 14:00:00 +0000\n", 40),
    _msg(6, "Message-ID: <f@x.test>\nReferences: <zzz@x.test>\nSubject: Re: other\nFrom: amy@x.test\n"
            "Date: Mon, 1 Jan 2024 15:00:00 +0000\n", 0),
]
PAIRS = [m for m, _ in MSGS]
INFOS = {m[1].uid: info for m, info in MSGS}


def sort(criteria: str) -> list[int]:
    cmd = parse_command(b"A SORT (" + criteria.encode() + b") UTF-8 ALL")
    assert isinstance(cmd, ast.Sort)
    return [seq for seq, _ in sortthread.sort_records(cmd.criteria, PAIRS, INFOS)]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ARRIVAL", [6, 5, 4, 3, 2, 1]),
        ("DATE", [1, 2, 3, 4, 5, 6]),
        ("REVERSE DATE", [6, 5, 4, 3, 2, 1]),
        ("SIZE", [seq for seq, rec in sorted(PAIRS, key=lambda m: (m[1].size, m[0]))]),
        ("SUBJECT", [5, 6, 1, 2, 3, 4]),
        ("SUBJECT REVERSE DATE", [6, 5, 4, 3, 2, 1]),
        ("FROM", [2, 5, 6, 3, 4, 1]),
        ("TO", [3, 4, 5, 6, 1, 2]),
        ("CC", [1, 2, 4, 5, 6, 3]),
        # "Émile" sorts as "EMILE" (decomposed), before "Zed"
        ("DISPLAYFROM", [2, 5, 6, 3, 4, 1]),
        ("DISPLAYTO", [3, 4, 5, 6, 1, 2]),
    ],
)
def test_sort(criteria: str, expected: list[int]) -> None:
    assert sort(criteria) == expected


def test_sort_without_info_for_arrival_and_size() -> None:
    crit = (ast.SortCriterion("SIZE"), ast.SortCriterion("ARRIVAL", True))
    assert not sortthread.needs_info(crit)
    want = [seq for seq, rec in sorted(PAIRS, key=lambda m: (m[1].size, -m[1].timestamp))]
    assert [s for s, _ in sortthread.sort_records(crit, PAIRS, {})] == want


def test_thread_references() -> None:
    assert sortthread.thread("REFERENCES", PAIRS, INFOS, uid=False) == b"(1 (2 3)(4))(5 6)"
    assert sortthread.thread("REFERENCES", PAIRS, INFOS, uid=True) == (
        b"(101 (102 103)(104))(105 106)")


def test_thread_orderedsubject() -> None:
    assert sortthread.thread("ORDEREDSUBJECT", PAIRS, INFOS, uid=False) == (
        b"(1 (2)(3)(4))(5 6)")


def test_thread_references_siblings_without_parent_get_a_dummy() -> None:
    a = _msg(1, "Message-ID: <p1@x.test>\nSubject: same\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n")
    b = _msg(2, "Message-ID: <p2@x.test>\nSubject: same\nDate: Mon, 1 Jan 2024 11:00:00 +0000\n")
    c = _msg(3, "Message-ID: <p3@x.test>\nReferences: <gone1@x.test>\nSubject: Re: x\n"
                "Date: Mon, 1 Jan 2024 12:00:00 +0000\n")
    d = _msg(4, "Message-ID: <p4@x.test>\nReferences: <gone1@x.test>\nSubject: Re: y\n"
                "Date: Mon, 1 Jan 2024 13:00:00 +0000\n")
    msgs = [a, b, c, d]
    out = sortthread.thread("REFERENCES", [m for m, _ in msgs],
                            {m[1].uid: i for m, i in msgs}, uid=False)
    assert out == b"((1)(2))((3)(4))"


def test_thread_references_loops_and_duplicates_do_not_break() -> None:
    a = _msg(1, "Message-ID: <l1@x.test>\nReferences: <l2@x.test>\nSubject: a\n")
    b = _msg(2, "Message-ID: <l2@x.test>\nReferences: <l1@x.test>\nSubject: b\n")
    c = _msg(3, "Message-ID: <l1@x.test>\nSubject: c\n")
    msgs = [a, b, c]
    out = sortthread.thread("REFERENCES", [m for m, _ in msgs],
                            {m[1].uid: i for m, i in msgs}, uid=False)
    assert sorted(int(x) for x in out.replace(b"(", b" ").replace(b")", b" ").split()) == [
        1, 2, 3]
