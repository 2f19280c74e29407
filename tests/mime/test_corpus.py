"""The message corpus against Dovecot's answers, item by item.

Two corpora: the repository's own (tests/corpus/messages, written by tests/corpus/generate.py),
whose answers come from a throwaway Dovecot started by the test run (tests/corpus/oracle.py:
it must run, never skipped), and, as extra coverage when present, the 232 real-world messages
of ../shared/corpus with Dovecot's recorded answers (skipped when that directory is absent).

Every FETCH item Dovecot answered is compared with what mailwright.mime renders from the one
parse, after the normalisation of tests/corpus/README.md ("Comparing") (case-insensitive media type/subtype/encoding/parameter
names/disposition type; values compared, not IMAP syntax). Everything must match except these
accepted differences, each a place where Dovecot cannot answer or differs on purpose:

ACCEPTED-1  BINARY / BINARY.SIZE on a message where Dovecot failed the whole message
            (NO [UNKNOWN-CTE], NO [PARSE], or BYE and disconnect). RFC 3516 wants
            [UNKNOWN-CTE] only for the part that cannot be decoded; we decode the good parts
            and must raise UnknownCTE exactly for parts whose encoding is unknown.
ACCEPTED-2  BINARY.SIZE where Dovecot's number is not the length of its own BINARY answer
            for the same section (its size is estimated, RFC 3516 4.3 wants the decoded
            length; e.g. 0 for a base64 message/rfc822, or an unsigned wrap-around in
            php-mime-mail-parser__issue274). We must equal the length of Dovecot's BINARY.
ACCEPTED-3  BINARY.SIZE of a multipart or message/rfc822 section whose BINARY Dovecot was never
            asked for (the corpus fetches BINARY only for leaf parts): Dovecot estimates such
            sizes; RFC 3516 4.3 defines the size as the length of the BINARY answer, and ours
            must be exactly that.

ACCEPTED-4  A CR directly before CRLF, or a lone CR at the very end: Dovecot's storage drops it,
            our blob writer keeps the bytes as sent. The parse is compared on the bytes Dovecot
            stored (tests/mime/corpus.py dovecot_stored), so only storage differs.
ACCEPTED-5  A part with Content-Transfer-Encoding but no Content-Type: Dovecot's BODYSTRUCTURE
            says 7bit while its BINARY decodes the body; ours ignores the field for both, so our
            BINARY must be the part's raw body, consistent with our (and Dovecot's)
            BODYSTRUCTURE.

The agreement figures are printed by test_corpus_summary (run pytest with -s to see them).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from mailwright.mime import imapfmt, normalize_crlf, parse_message
from mailwright.mime.imapfmt import BrokenEncoding, SectionError, UnknownCTE
from tests.corpus import generate
from tests.corpus.oracle import own_case, own_cases, own_messages
from tests.mime.corpus import (
    SKIP_REASON,
    Case,
    corpus_dir,
    cte_without_type,
    dovecot_stored,
    load_cases,
    norm_body,
    parse_fetch,
    stray_cr,
)

_ROOT = corpus_dir()
CASES: list[Case] = load_cases(_ROOT) if _ROOT is not None else []
needs_shared = pytest.mark.skipif(_ROOT is None, reason=SKIP_REASON)
OWN = [p.stem for p in own_messages()]

_ITEM = re.compile(r"(BODY\.PEEK|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\]")
_SPEC = re.compile(
    r"^([0-9.]*?)\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \((.*)\))?$"
)


def _spec(sec: str) -> tuple[list[int], str, list[bytes]]:
    m = _SPEC.match(sec)
    assert m is not None, sec
    path = [int(x) for x in m.group(1).split(".") if x] if m.group(1) else []
    return path, m.group(2) or "", [f.encode() for f in (m.group(3) or "").split()]


def _fetch_commands(case: Case) -> list[dict[str, Any]]:
    return [c for c in case.expect["commands"] if c["command"].startswith("FETCH 1 (")]


def _response(cmd: dict[str, Any]) -> dict[str, Any] | None:
    for line in cmd["response_lines"]:
        if line.startswith("* ") and " FETCH (" in line[:24]:
            return parse_fetch(line.encode("latin-1"))
    return None


def _dovecot_binary(case: Case) -> dict[str, bytes]:
    """Dovecot's BINARY[section] contents of one message, by section."""
    out: dict[str, bytes] = {}
    for cmd in _fetch_commands(case):
        resp = _response(cmd)
        if resp is None:
            continue
        for k, v in resp.items():
            if k.startswith("BINARY[") and isinstance(v, bytes):
                out[k[7:-1]] = v
    return out


def _dovecot_failed_binary(case: Case) -> bool:
    for cmd in _fetch_commands(case):
        if "BINARY" not in cmd["command"]:
            continue
        resp = _response(cmd)
        tagged = cmd.get("tagged") or ""
        if resp is None or not any(k.startswith("BINARY") for k in resp) or " OK " not in tagged:
            return True
    return False


def compare_case(case: Case, stats: Counter[str]) -> list[str]:
    """Compare one message; returns the unexplained differences (and counts everything)."""
    problems: list[str] = []
    raw = normalize_crlf(case.raw)
    if stray_cr(case.raw):
        # ACCEPTED-4: compare the parse of what Dovecot stored
        stats["accepted-4 (Dovecot's storage drops a stray CR)"] += 1
        raw = dovecot_stored(case.raw)
    info = parse_message(raw)
    # the parse-once data must survive the store's JSON round trip unchanged
    info = type(info).from_json(info.to_json())
    binaries = _dovecot_binary(case)
    dovecot_failed = _dovecot_failed_binary(case)
    for cmd in _fetch_commands(case):
        command = cmd["command"]
        resp = _response(cmd)
        if command.startswith("FETCH 1 (UID RFC822.SIZE"):
            assert resp is not None
            mine = {
                "RFC822.SIZE": len(raw),
                "ENVELOPE": imapfmt.envelope(info.envelope),
                "BODYSTRUCTURE": imapfmt.bodystructure(info),
                "BODY": imapfmt.bodystructure(info, extended=False),
            }
            wire = b"* 1 FETCH (ENVELOPE %s BODYSTRUCTURE %s BODY %s)\r\n" % (
                mine["ENVELOPE"], mine["BODYSTRUCTURE"], mine["BODY"])
            parsed = parse_fetch(wire)
            for key in ("RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY"):
                exp = resp[key]
                got = mine[key] if key == "RFC822.SIZE" else parsed[key]
                if key.startswith("BODY"):
                    exp, got = norm_body(exp), norm_body(got)
                if exp == got:
                    stats[key + " equal"] += 1
                else:
                    stats[key + " DIFFERENT"] += 1
                    problems.append(f"{key}: dovecot {exp!r:.300} ours {got!r:.300}")
            continue
        for kind, sec in _ITEM.findall(command):
            path, text, fields = _spec(sec)
            label = {"BODY.PEEK": "BODY[]", "BINARY.PEEK": "BINARY[]",
                     "BINARY.SIZE": "BINARY.SIZE[]"}[kind]
            if kind == "BODY.PEEK":
                assert resp is not None, f"Dovecot always answered BODY: {command}"
                exp = resp.get(f"BODY[{sec}]")
                got: Any = imapfmt.section_bytes(info, raw, path, text, fields)
                if exp == got:
                    stats[label + " equal"] += 1
                else:
                    stats[label + " DIFFERENT"] += 1
                    problems.append(f"BODY[{sec}]: dovecot {exp!r:.200} ours {got!r:.200}")
                continue
            try:
                if kind == "BINARY.PEEK":
                    got = imapfmt.binary_section(info, raw, path)
                else:
                    got = imapfmt.binary_size(info, raw, path)
            except UnknownCTE:
                got = "UNKNOWN-CTE"
            except BrokenEncoding:
                got = "BROKEN"
            except SectionError:
                got = "NO-SUCH-PART"
            try:
                leaf = imapfmt.find_part(info, path).part if path else info.root
            except SectionError:
                leaf = None
            if leaf is not None and cte_without_type(raw, leaf):
                # ACCEPTED-5: Dovecot decodes what its own BODYSTRUCTURE calls 7bit
                stats[label + " accepted-5 (CTE without Content-Type)"] += 1
                body = imapfmt.section_bytes(info, raw, path)
                if got not in (body, len(body)):
                    problems.append(f"{label} {sec}: ours {got!r:.80} is not the raw body")
                continue
            if resp is None or dovecot_failed:
                # ACCEPTED-1: Dovecot failed every BINARY of this message
                stats[label + " accepted-1 (Dovecot could not)"] += 1
                t = imapfmt.find_part(info, path).part
                unknown = imapfmt.effective_cte(t) not in imapfmt.KNOWN_CTE and t.kind not in (
                    "M", "m") and bool(path)
                if got == "UNKNOWN-CTE" and not unknown:
                    problems.append(f"{label} {sec}: UNKNOWN-CTE for a known encoding")
                if unknown and got != "UNKNOWN-CTE":
                    problems.append(f"{label} {sec}: unknown encoding decoded")
                continue
            name = ("BINARY" if kind == "BINARY.PEEK" else "BINARY.SIZE") + f"[{sec}]"
            exp = resp.get(name)
            if exp == got:
                stats[label + " equal"] += 1
            elif kind == "BINARY.SIZE" and sec in binaries and len(binaries[sec]) != exp:
                # ACCEPTED-2: Dovecot's size disagrees with its own content
                stats[label + " accepted-2 (Dovecot size inconsistent)"] += 1
                if got != len(binaries[sec]):
                    problems.append(f"{name}: ours {got!r} != len(Dovecot BINARY) "
                                    f"{len(binaries[sec])}")
            elif (kind == "BINARY.SIZE" and sec not in binaries
                  and imapfmt.find_part(info, path).part.kind in ("M", "m")):
                # ACCEPTED-3: Dovecot's estimate for a whole subtree, never checkable here
                stats[label + " accepted-3 (Dovecot subtree estimate)"] += 1
                if got != len(imapfmt.binary_section(info, raw, path)):
                    problems.append(f"{name}: ours {got!r} != len(our BINARY)")
            else:
                stats[label + " DIFFERENT"] += 1
                problems.append(f"{name}: dovecot {exp!r:.200} ours {got!r:.200}")
    return problems


def test_corpus_files_are_what_the_generator_writes() -> None:
    wanted = generate.build_all()
    assert sorted(wanted) == sorted(p.name for p in own_messages())
    for path in own_messages():
        assert path.read_bytes() == wanted[path.name], f"{path.name}: rerun tests/corpus/generate.py"
    assert len(wanted) >= 60


@pytest.mark.interop
@pytest.mark.parametrize("stem", OWN)
def test_own_corpus_message_matches_live_dovecot(stem: str) -> None:
    problems = compare_case(own_case(stem), Counter())
    assert not problems, "\n".join(problems)


@pytest.mark.interop
def test_own_corpus_summary() -> None:
    stats: Counter[str] = Counter()
    cases = own_cases()
    bad = [case.stem for case in cases if compare_case(case, stats)]
    print(f"\nown corpus agreement over {len(cases)} messages ({len(bad)} with unexplained "
          "differences):")
    for key in sorted(stats):
        print(f"  {key:55} {stats[key]}")
    assert len(cases) == len(OWN) and stats["ENVELOPE equal"] == len(cases)
    assert not bad, bad


@needs_shared
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_corpus_message_matches_dovecot(case: Case) -> None:
    problems = compare_case(case, Counter())
    assert not problems, "\n".join(problems)


@needs_shared
def test_corpus_summary() -> None:
    stats: Counter[str] = Counter()
    bad = 0
    for case in CASES:
        if compare_case(case, stats):
            bad += 1
    print(f"\ncorpus agreement over {len(CASES)} messages ({bad} with unexplained differences):")
    for key in sorted(stats):
        print(f"  {key:55} {stats[key]}")
    assert CASES
    assert bad == 0
