"""SORT, THREAD and SEARCH side by side with a real Dovecot (Debian's 2.3.19, the reference).

A private Dovecot is started for the test (its own config, port, run and mail directories in a
temporary directory; stopped at the end), loaded with the corpus messages and with synthetic
reference webs (duplicate, missing, self- and loop-making Message-IDs/References/In-Reply-To,
Re:/Fwd:/[blob] subjects, missing and broken dates), and asked the same SORT/THREAD/SEARCH
commands that imapd.sortthread / imapd.search answer from the parse-once data.

Fails (with the reason) when Dovecot is not installed or the test does not run as root (Dovecot
needs to switch to an unprivileged mail user; tests/support/dovecot.py). Accepted differences: only the SEARCH areas of
the corpus README (judged by rule in test_search_corpus._dovecot_cannot_see).
"""

from __future__ import annotations

import imaplib
import random
import re

import pytest
from test_search_corpus import _dovecot_cannot_see
from tests.mime.corpus import corpus_dir, load_cases
from tests.support.dovecot import private_dovecot

from mailwright.imapd import search, sortthread
from mailwright.mime import MessageInfo, parse_message
from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import parse_command
from mailwright.store.api import MessageRecord

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
]

_BARE_LF = re.compile(rb"(?<!\r)\n")


def synthetic(seed: int, n: int = 60) -> list[bytes]:
    """A tangle of references, duplicates and subjects that exercises RFC 5256 4."""
    r = random.Random(seed)
    subjects = ["alpha", "Beta", "gamma delta", "[list] alpha", "Re: alpha", "RE: Re: Beta",
                "Fwd: gamma delta", "[fwd: alpha]", "alpha (fwd)", "", "Re:", "re: [x] beta",
                "Hello", "hello", "=?utf-8?q?=C3=89t=C3=A9?=", "Re: =?utf-8?q?=C3=A9t=C3=A9?="]
    ids = [f"<id{i}@x.test>" for i in range(n)]
    out = []
    for i in range(n):
        h = []
        if r.random() < 0.9:
            h.append("Message-ID: " + (ids[i] if r.random() < 0.9 else ids[r.randrange(n)]))
        k = r.random()
        if k < 0.5:
            chain = sorted(r.sample(range(n), r.randrange(1, 4)))
            h.append("References: " + " ".join(ids[j] for j in chain))
        elif k < 0.7:
            h.append("In-Reply-To: " + ids[r.randrange(n)])
        h.append("Subject: " + r.choice(subjects))
        if r.random() < 0.85:
            h.append(f"Date: Mon, {r.randrange(1, 28)} Jan 2024 {r.randrange(24):02d}:"
                     f"{r.randrange(60):02d}:00 {r.choice(['+0000', '-0500', '+0930'])}")
        elif r.random() < 0.5:
            h.append("Date: garbage")
        h.append("From: " + r.choice(["a@x.test", "Zed <z@x.test>", "b", "u@x.test",
                                      "=?utf-8?q?=C3=89mile?= <e@x.test>"]))
        h.append("To: " + r.choice(["c@x.test", "Bob <b@y.test>", "group: a@b.test;"]))
        out.append(("\r\n".join(h) + f"\r\n\r\nbody {i}\r\n").encode())
    return out


class Dovecot:
    def __init__(self, port: int, mailbox: str, messages: list[bytes]) -> None:
        self.m = imaplib.IMAP4("127.0.0.1", port)
        self.m.login("tester", "secret")
        self.m.create(mailbox)
        rnd = random.Random(len(messages))
        self.stamps = [1_600_000_000 + rnd.randrange(10**7) for _ in messages]
        for raw, ts in zip(messages, self.stamps, strict=True):
            typ, data = self.m.append(mailbox, "()", imaplib.Time2Internaldate(ts), raw)
            assert typ == "OK", data
        self.m.select(mailbox)

    def ask(self, name: str, *args: str) -> bytes:
        typ, data = self.m._simple_command(name, *args)
        assert typ == "OK", data
        return (self.m.untagged_responses.pop(name, [b""])[0] or b"").strip()


def _ours(messages: list[bytes], stamps: list[int]) -> tuple[
        list[tuple[int, MessageRecord]], dict[int, MessageInfo], dict[int, search.MessageText]]:
    pairs = []
    infos: dict[int, MessageInfo] = {}
    texts: dict[int, search.MessageText] = {}
    for seq, (raw, ts) in enumerate(zip(messages, stamps, strict=True), 1):
        stored = _BARE_LF.sub(b"\r\n", raw)  # what our blob writer keeps
        info = parse_message(stored)
        pairs.append((seq, MessageRecord(1, seq, 1, frozenset(), float(ts), len(stored), "")))
        infos[seq] = info
        texts[seq] = search.MessageText(info, stored)
    return pairs, infos, texts


SORTS = ["ARRIVAL", "DATE", "REVERSE DATE", "SUBJECT", "FROM", "TO", "CC", "SIZE",
         "DISPLAYFROM", "DISPLAYTO", "SUBJECT DATE", "REVERSE SUBJECT", "FROM REVERSE SIZE"]
SEARCHES = ['SENTSINCE 1-Jan-2010', 'SENTBEFORE 1-Jan-2005', 'SENTON 6-Feb-1993',
            'TEXT "the"', 'TEXT "mime"', 'BODY "the"', 'BODY "attachment"',
            'HEADER Content-Type "multipart"', 'HEADER X-Mailer ""', 'FROM "@"',
            'FROM "example"', 'TO "example"', 'CC "a"', 'SUBJECT "re"', 'SUBJECT "test"',
            'NOT BODY "the"', 'OR SUBJECT "test" FROM "john"', 'LARGER 5000', 'SMALLER 1000',
            'TEXT "boundary"', 'BODY "boundary"', 'HEADER References ""', 'SUBJECT ""',
            'TEXT "content-type"']


def _compare(dc: Dovecot, messages: list[bytes], searches: list[str]) -> list[str]:
    pairs, infos, texts = _ours(messages, dc.stamps)
    problems = []
    for keys in SORTS:
        want = [int(x) for x in dc.ask("SORT", f"({keys})", "UTF-8", "ALL").split()]
        cmd = parse_command(f"A SORT ({keys}) UTF-8 ALL".encode())
        assert isinstance(cmd, ast.Sort)
        got = [seq for seq, _ in sortthread.sort_records(cmd.criteria, pairs, infos)]
        if got != want:
            problems.append(f"SORT ({keys}): dovecot {want} ours {got}")
    for alg in ("REFERENCES", "ORDEREDSUBJECT"):
        want_t = dc.ask("THREAD", alg, "UTF-8", "ALL")
        got_t = sortthread.thread(alg, pairs, infos, uid=False)
        if got_t != want_t:
            problems.append(f"THREAD {alg}:\n  dovecot {want_t!r}\n  ours    {got_t!r}")
    ctx = search.SearchContext(len(pairs), len(pairs))
    for text in searches:
        want_s = {int(x) for x in dc.ask("SEARCH", *text.split(" ", 1)).split()}
        cmd = parse_command(f"A SEARCH {text}".encode())
        assert isinstance(cmd, ast.Search)
        got_s = search.search_uids(cmd.key, pairs, ctx, lambda r: texts[r.uid])
        extra = {n for n in got_s - want_s if not _dovecot_cannot_see(infos[n], "SEARCH " + text)}
        if want_s - got_s or extra:
            problems.append(f"SEARCH {text}: dovecot only {sorted(want_s - got_s)}, "
                            f"ours only {sorted(extra)}")
    return problems


def test_sort_thread_search_agree_with_dovecot() -> None:
    root = corpus_dir()
    with private_dovecot() as reference:
        port = reference.port
        problems: list[str] = []
        for seed in range(1, 7):
            messages = synthetic(seed)
            problems += [f"synthetic {seed}: {p}"
                         for p in _compare(Dovecot(port, f"syn{seed}", messages), messages, [])]
        if root is not None:
            messages = [c.raw for c in load_cases(root)]
            problems += [f"corpus: {p}" for p in _compare(Dovecot(port, "corpus", messages),
                                                          messages, SEARCHES)]
    assert not problems, "\n".join(problems)
