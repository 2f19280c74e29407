"""Replay of the corpus's SEARCH commands through the IMAP parser and imapd.search.

Every recorded ``SEARCH ...`` (SUBJECT, CHARSET UTF-8 SUBJECT, FROM, BODY, HEADER Message-ID,
LARGER) is parsed by ``mailwright.proto.imap.grammar`` and evaluated against the stored form
of the message; the result must equal Dovecot's, except where Dovecot could not see the text
(the rules of `_dovecot_cannot_see`) and we can. Each accepted difference is listed with its reason.
A stray CR that Dovecot's storage drops (tests/mime/test_corpus.py ACCEPTED-4) is replayed on
the bytes Dovecot stored; SEARCH BODY in a part with a transfer encoding but no Content-Type
(ACCEPTED-5) is searched as the part's BODYSTRUCTURE describes it, 7bit, where Dovecot decodes.

Two corpora: the repository's own with a live Dovecot's answers (tests/corpus/oracle.py, never
skipped), and ../shared/corpus with recorded answers as extra coverage when present.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from tests.corpus.oracle import own_case, own_cases, own_messages
from tests.mime.corpus import (
    SKIP_REASON,
    Case,
    corpus_dir,
    cte_without_type,
    dovecot_stored,
    load_cases,
    stray_cr,
)

from mailwright.imapd import search
from mailwright.mime import MessageInfo, imapfmt, normalize_crlf, parse_message
from mailwright.mime.decode import _codec
from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import parse_command
from mailwright.store.api import MessageRecord

_ROOT = corpus_dir()
CASES: list[Case] = load_cases(_ROOT) if _ROOT is not None else []
needs_shared = pytest.mark.skipif(_ROOT is None, reason=SKIP_REASON)
OWN = [p.stem for p in own_messages()]

# (message stem, start of the command): we find the word, Dovecot does not. The same cases
# are also recognised by rule (_dovecot_cannot_see), for corpora other than this one.
ACCEPTED = {
    # iso-8859-8-i is iso-8859-8 with a different directionality hint (RFC 1556); iconv in
    # Dovecot does not know the name, Python with our alias does.
    ("php-mime-mail-parser__issue149", 'SEARCH SUBJECT "Invoice"'),
    ("php-mime-mail-parser__issue149", "SEARCH CHARSET UTF-8 SUBJECT"),
    # Parts with an unusable Content-Transfer-Encoding (empty; "7bits"-like) are searched as
    # they are written; Dovecot skips them.
    ("mikel-mail__error_emails-content_transfer_encoding_empty", 'SEARCH BODY "color"'),
    ("stalwart-mail-parser__thirdparty-004", 'SEARCH BODY "black"'),
}


_EWORD_CHARSET = re.compile(rb"=\?([^?\s*]+)[^?\s]*\?[BbQq]\?")
# Charset names Python knows (or we alias) but iconv, hence Dovecot, does not (RFC 1556 "-i").
_NOT_ICONV = {b"iso-8859-6-i", b"iso-8859-6-e", b"iso-8859-8-i", b"iso-8859-8-e"}


def _dovecot_cannot_see(info: MessageInfo, text: str) -> bool:
    """Where Dovecot's SEARCH cannot see the text, as rules (so that other corpora are judged the same way):
    body text in a part with an unusable transfer encoding or Content-Type, or a Subject with
    an encoded-word in a charset iconv does not know or nobody knows."""
    if text.startswith("SEARCH BODY"):
        stack = [info.root]
        while stack:
            p = stack.pop()
            stack.extend(p.children)
            if not p.children and (p.mtype == b"" or (
                    p.cte is not None and imapfmt.effective_cte(p) not in imapfmt.KNOWN_CTE)):
                return True
        return False
    if "SUBJECT" in text:
        for m in _EWORD_CHARSET.finditer(info.envelope.subject or b""):
            cs = m.group(1).lower()
            if cs in _NOT_ICONV or _codec(cs) is None:
                return True
    return False


def _leaves(info: MessageInfo) -> list[object]:
    out: list[object] = []
    stack = [info.root]
    while stack:
        p = stack.pop()
        stack.extend(p.children)
        if not p.children:
            out.append(p)
    return out


def replay(case: Case, stats: Counter[str]) -> list[str]:
    raw = dovecot_stored(case.raw) if stray_cr(case.raw) else normalize_crlf(case.raw)
    info = parse_message(raw)
    rec = MessageRecord(1, 1, 1, frozenset(), 1626258896.0, len(raw), "blob")
    ctx = search.SearchContext(largest_seq=1, largest_uid=1)
    problems = []
    for cmd in case.expect["commands"]:
        text = cmd["command"]
        if not text.startswith("SEARCH"):
            continue
        parsed = parse_command(b"A1 " + text.encode("latin-1"))
        assert isinstance(parsed, ast.Search)
        want = {1} if any(x.strip() == "* SEARCH 1" for x in cmd["response_lines"]) else set()
        got = search.search_uids(parsed.key, [(1, rec)], ctx,
                                 lambda r: search.MessageText(info, raw))
        kind = " ".join(text.split()[1:2]) if "CHARSET" not in text else "CHARSET SUBJECT"
        if got == want:
            stats[f"SEARCH {kind} equal"] += 1
        elif want == set() and (any(case.stem == s and text.startswith(c) for s, c in ACCEPTED)
                                or _dovecot_cannot_see(info, text)):
            stats[f"SEARCH {kind} accepted (we find it, Dovecot cannot)"] += 1
        elif want == {1} and text.startswith("SEARCH BODY") and any(
                cte_without_type(raw, p) for p in _leaves(info)):
            stats[f"SEARCH {kind} accepted-5 (CTE without Content-Type)"] += 1
        else:
            stats[f"SEARCH {kind} DIFFERENT"] += 1
            problems.append(f"{text!r}: dovecot {want} ours {got}")
    return problems


@pytest.mark.interop
@pytest.mark.parametrize("stem", OWN)
def test_own_corpus_search_replay_matches_live_dovecot(stem: str) -> None:
    problems = replay(own_case(stem), Counter())
    assert not problems, "\n".join(problems)


@pytest.mark.interop
def test_own_corpus_search_replay_summary() -> None:
    stats: Counter[str] = Counter()
    cases = own_cases()
    bad = [case.stem for case in cases if replay(case, stats)]
    print(f"\nSEARCH replay over {len(cases)} own messages ({len(bad)} with unexplained "
          "differences):")
    for key in sorted(stats):
        print(f"  {key:55} {stats[key]}")
    assert sum(stats.values()) >= 4 * len(cases) and not bad, bad


@needs_shared
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_search_replay_matches_dovecot(case: Case) -> None:
    problems = replay(case, Counter())
    assert not problems, "\n".join(problems)


@needs_shared
def test_search_replay_summary() -> None:
    stats: Counter[str] = Counter()
    bad = sum(1 for case in CASES if replay(case, stats))
    print(f"\nSEARCH replay over {len(CASES)} messages ({bad} with unexplained differences):")
    for key in sorted(stats):
        print(f"  {key:55} {stats[key]}")
    assert bad == 0
