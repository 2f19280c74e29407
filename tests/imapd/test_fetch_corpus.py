"""Replay of the corpus's FETCH commands through the IMAP parser and imapd.fetch.

Each recorded command (``FETCH 1 (...)``) is parsed by ``mailwright.proto.imap.grammar``, answered
by ``imapd.fetch.fetch_line`` from the stored form (CRLF-normalised bytes + parse-once JSON),
and compared with Dovecot's untagged FETCH response item by item, normalised as
tests/corpus/README.md ("Comparing") says. Accepted differences, beyond those of tests/mime/test_corpus.py
(ACCEPTED-1..3, BINARY on messages Dovecot could not decode and its BINARY.SIZE estimates):

* Headers are compared as a UTF8=ACCEPT session gets them (as stored): Dovecot does not
  downgrade UTF-8 headers for other clients (RFC 6855 7); we do (tests/imapd/test_imap_utf8.py).
* FLAGS: ``\\Recent`` is left out on both sides: whether a message is recent depends on which
  session saw it first (RFC 3501 2.3.2), not on the message; tests/imapd/test_imap_compliance.py
  covers it.
* ACCEPTED-4 and ACCEPTED-5 of tests/mime/test_corpus.py: a stray CR Dovecot's storage drops
  (replayed on the bytes Dovecot stored), BINARY of a part with a transfer encoding but no
  Content-Type (Dovecot decodes what its BODYSTRUCTURE calls 7bit).

Two corpora: the repository's own with a live Dovecot's answers (tests/corpus/oracle.py, never
skipped), and ../shared/corpus with recorded answers as extra coverage when present.
"""

from __future__ import annotations

import calendar
import time
from collections import Counter
from typing import Any

import pytest
from tests.corpus.oracle import own_case, own_cases, own_messages
from tests.mime.corpus import (
    SKIP_REASON,
    Case,
    binary_of_cte_without_type,
    corpus_dir,
    dovecot_stored,
    load_cases,
    norm_body,
    parse_fetch,
    stray_cr,
)

from mailwright.imapd import fetch
from mailwright.mime import MessageInfo, imapfmt, normalize_crlf, parse_message
from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import parse_command
from mailwright.store.api import MessageRecord

_ROOT = corpus_dir()
CASES: list[Case] = load_cases(_ROOT) if _ROOT is not None else []
needs_shared = pytest.mark.skipif(_ROOT is None, reason=SKIP_REASON)
OWN = [p.stem for p in own_messages()]

# "14-Jul-2021 12:34:56 +0200" as given to APPEND
APPEND_TIME = calendar.timegm(time.strptime("14-Jul-2021 10:34:56", "%d-%b-%Y %H:%M:%S"))


def dovecot_fetch(cmd: dict[str, Any]) -> dict[str, Any] | None:
    """Dovecot's untagged FETCH answer to one recorded command, parsed (None if it gave none)."""
    for line in cmd["response_lines"]:
        if line.startswith("* ") and " FETCH (" in line[:24]:
            return parse_fetch(line.encode("latin-1"))
    return None


def normalised(key: str, want: Any, got: Any) -> tuple[Any, Any]:
    """Dovecot's and our value of one FETCH item, ready to compare: without \\Recent,
    BODY and BODYSTRUCTURE normalised (tests/corpus/README.md)."""
    if key == "FLAGS":
        want = [f for f in want if str(f).upper() != "\\RECENT"]
        if isinstance(got, list):
            got = [f for f in got if str(f).upper() != "\\RECENT"]
    if key in ("BODY", "BODYSTRUCTURE"):
        want, got = norm_body(want), norm_body(got)
    return want, got


def _dovecot_binaries(case: Case) -> tuple[dict[str, bytes], bool]:
    out: dict[str, bytes] = {}
    failed = False
    for cmd in case.expect["commands"]:
        if not cmd["command"].startswith("FETCH 1 (") or "BINARY" not in cmd["command"]:
            continue
        resp = dovecot_fetch(cmd)
        if (resp is None or " OK " not in (cmd.get("tagged") or "")
                or not any(k.startswith("BINARY") for k in resp)):
            failed = True
            continue
        for k, v in resp.items():
            if k.startswith("BINARY[") and isinstance(v, bytes):
                out[k[7:-1]] = v
    return out, failed


def replay(case: Case, stats: Counter[str]) -> list[str]:
    raw = dovecot_stored(case.raw) if stray_cr(case.raw) else normalize_crlf(case.raw)
    info = MessageInfo.from_json(parse_message(raw).to_json())
    rec = MessageRecord(1, 1, 1, frozenset(), float(APPEND_TIME), len(raw), "blob")
    binaries, binary_failed = _dovecot_binaries(case)
    problems: list[str] = []
    for cmd in case.expect["commands"]:
        text = cmd["command"]
        if not text.startswith("FETCH 1 ("):
            continue
        parsed = parse_command(b"A1 " + text.encode("latin-1"))
        assert isinstance(parsed, ast.Fetch)
        exp = dovecot_fetch(cmd)
        try:
            line = fetch.fetch_line(1, rec, parsed.items, info, raw, utf8=True)
        except fetch.FetchError as exc:
            if binary_failed and exc.code == "UNKNOWN-CTE":
                stats["fetch NO [UNKNOWN-CTE] where Dovecot failed too"] += 1
                continue
            problems.append(f"{text}: FetchError {exc} {exc.code}")
            continue
        mine = parse_fetch(line)
        if exp is None or " OK " not in (cmd.get("tagged") or ""):
            stats["items answered where Dovecot could not (accepted-1)"] += len(mine)
            continue
        for key, dovecot in exp.items():
            want, got = normalised(key, dovecot, mine.get(key))
            if want == got:
                stats[f"{key.split('[')[0]} equal"] += 1
                continue
            if binary_of_cte_without_type(info, raw, key):
                stats["BINARY accepted-5 (CTE without Content-Type)"] += 1
                continue
            if key.startswith("BINARY.SIZE["):
                sec = key[12:-1]
                if sec in binaries and len(binaries[sec]) != want:
                    stats["BINARY.SIZE accepted-2"] += 1
                    if got != len(binaries[sec]):
                        problems.append(f"{key}: {got} != len(Dovecot BINARY)")
                    continue
                path = tuple(int(x) for x in sec.split(".") if x)
                if sec not in binaries and imapfmt.find_part(info, path).part.kind in "Mm":
                    stats["BINARY.SIZE accepted-3"] += 1
                    continue
            stats[f"{key.split('[')[0]} DIFFERENT"] += 1
            problems.append(f"{text} {key}: dovecot {want!r:.200} ours {got!r:.200}")
        for key in mine:
            if key not in exp:
                problems.append(f"{text}: extra item {key}")
    return problems


@pytest.mark.interop
@pytest.mark.parametrize("stem", OWN)
def test_own_corpus_fetch_replay_matches_live_dovecot(stem: str) -> None:
    problems = replay(own_case(stem), Counter())
    assert not problems, "\n".join(problems)


@pytest.mark.interop
def test_own_corpus_fetch_replay_summary() -> None:
    stats: Counter[str] = Counter()
    cases = own_cases()
    bad = [case.stem for case in cases if replay(case, stats)]
    print(f"\nFETCH replay over {len(cases)} own messages ({len(bad)} with unexplained "
          "differences):")
    for key in sorted(stats):
        print(f"  {key:55} {stats[key]}")
    assert cases and not bad, bad


@needs_shared
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_fetch_replay_matches_dovecot(case: Case) -> None:
    problems = replay(case, Counter())
    assert not problems, "\n".join(problems)


@needs_shared
def test_fetch_replay_summary() -> None:
    stats: Counter[str] = Counter()
    bad = sum(1 for case in CASES if replay(case, stats))
    print(f"\nFETCH replay over {len(CASES)} messages ({bad} with unexplained differences):")
    for key in sorted(stats):
        print(f"  {key:55} {stats[key]}")
    assert bad == 0
