"""The corpus replayed through a whole IMAP session, as tests/corpus/README.md describes:
APPEND the file's bytes with the same date, SELECT, send every recorded FETCH and SEARCH
command, compare each answer with Dovecot's.

This runs the real path end to end: the IMAP parser, the session, the blob writer's CRLF
normalisation, the parse-once JSON kept by the SQLite store, and imapd.fetch / imapd.search.
Accepted differences are those of test_fetch_corpus.py / test_search_corpus.py (BINARY where
Dovecot could not, its BINARY.SIZE estimates, \\Recent, the five SEARCHes where we find text
Dovecot cannot), plus one of storage: a lone CR at the very end of a message
(stalwart-mail-parser__legacy-049) is kept by our blob writer, Dovecot drops it, and so is a CR
directly before CRLF (tests/mime/test_corpus.py ACCEPTED-4); BINARY and SEARCH BODY of a part
with a transfer encoding but no Content-Type (ACCEPTED-5).

Two corpora: the repository's own with a live Dovecot's answers (tests/corpus/oracle.py, never
skipped), and ../shared/corpus with recorded answers as extra coverage when present.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from imap_harness import Client, imap_server
from test_fetch_corpus import dovecot_fetch, normalised
from test_search_corpus import ACCEPTED as SEARCH_ACCEPTED
from test_search_corpus import _dovecot_cannot_see
from tests.corpus.oracle import own_cases
from tests.mime.corpus import (
    SKIP_REASON,
    Case,
    binary_of_cte_without_type,
    corpus_dir,
    cte_without_type,
    load_cases,
    parse_fetch,
    stray_cr,
)
from tests.support.backends import SQLITE, Backend

from mailwright.mime import imapfmt, normalize_crlf, parse_message

_ROOT = corpus_dir()
CASES: list[Case] = load_cases(_ROOT) if _ROOT is not None else []
needs_shared = pytest.mark.skipif(_ROOT is None, reason=SKIP_REASON)

LONE_CR_AT_END = {"stalwart-mail-parser__legacy-049"}


def _lone_cr(case: Case) -> bool:
    """A lone CR at the very end is dropped by Dovecot; our blob writer keeps it."""
    return case.raw.endswith(b"\r") or case.stem in LONE_CR_AT_END or stray_cr(case.raw)


def _cte_without_type(case: Case) -> bool:
    raw = normalize_crlf(case.raw)
    stack = [parse_message(raw).root]
    while stack:
        part = stack.pop()
        stack.extend(part.children)
        if cte_without_type(raw, part):
            return True
    return False


async def _append(c: Client, mailbox: str, data: bytes) -> None:
    # an ordinary literal first; literal8 (RFC 3516 4.4) if NUL bytes get it refused, as the
    # corpus recorder would have done
    for prefix in (b"", b"~"):
        if prefix:
            # Dovecot turns bare LF into CRLF even in a literal8; we keep a literal8 as sent
            # (RFC 3516 4.4), so the CRLF form Dovecot stored is what is sent here
            data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
        c.send(b'P1 APPEND %s () "14-Jul-2021 12:34:56 +0200" %s{%d}\r\n' % (
            mailbox.encode(), prefix, len(data)))
        first = await c.read_until(rb"(\+ |P1 (OK|NO|BAD))")
        if not first[-1].startswith(b"+"):
            continue
        c.send(data + b"\r\n")
        out = await c.read_until(rb"P1 (OK|NO|BAD)")
        if out[-1].startswith(b"P1 OK"):
            return
    raise AssertionError(f"APPEND refused: {out!r}")


def _compare_fetch(case: Case, text: str, cmd: dict[str, Any], ours: list[bytes],
                   binaries: dict[str, bytes], dovecot_binary_failed: bool,
                   stats: dict[str, int]) -> list[str]:
    exp = dovecot_fetch(cmd)
    tagged = ours[-1]
    if exp is None or " OK " not in (cmd.get("tagged") or "") or (
            "BINARY" in text and dovecot_binary_failed):
        # ACCEPTED-1: Dovecot could not; ours answers, or NO [UNKNOWN-CTE] for a bad part
        stats["accepted-1"] = stats.get("accepted-1", 0) + 1
        if not (tagged.startswith(b"F OK") or b"[UNKNOWN-CTE]" in tagged):
            return [f"{text}: {tagged!r}"]
        return []
    if not tagged.startswith(b"F OK"):
        return [f"{text}: {tagged!r}"]
    lines = [x for x in ours if re.match(rb"\* \d+ FETCH", x)]
    assert len(lines) == 1, ours
    mine = parse_fetch(lines[0] + b"\r\n")
    problems = []
    for key, dovecot in exp.items():
        want, got = normalised(key, dovecot, mine.get(key))
        if want == got:
            stats["equal"] = stats.get("equal", 0) + 1
            continue
        if key.startswith("BINARY") and binary_of_cte_without_type(
                parse_message(normalize_crlf(case.raw)), normalize_crlf(case.raw), key):
            stats["accepted-5"] = stats.get("accepted-5", 0) + 1
            continue
        if key.startswith("BINARY.SIZE[") and (
                key[12:-1] not in binaries or len(binaries[key[12:-1]]) != want):
            stats["accepted-2/3"] = stats.get("accepted-2/3", 0) + 1
            continue
        if _lone_cr(case) and key in ("RFC822.SIZE", "BODY[]", "BODY[TEXT]",
                                                    "BODY[1]", "BINARY[1]", "BINARY.SIZE[1]",
                                                    "BODYSTRUCTURE", "BODY"):
            stats["lone CR kept"] = stats.get("lone CR kept", 0) + 1
            continue
        problems.append(f"{text} {key}: dovecot {want!r:.150} ours {got!r:.150}")
    return problems


async def _replay(c: Client, case: Case, n: int, stats: dict[str, int]) -> list[str]:
    mailbox = f"rec{n}"
    assert (await c.cmd(f"C CREATE {mailbox}"))[-1].startswith(b"C OK")
    await _append(c, mailbox, case.raw)
    assert (await c.cmd(f"S SELECT {mailbox}"))[-1].startswith(b"S OK")
    binaries: dict[str, bytes] = {}
    binary_failed = False
    for cmd in case.expect["commands"]:
        if cmd["command"].startswith("FETCH 1 (") and "BINARY" in cmd["command"]:
            exp = dovecot_fetch(cmd)
            if (exp is None or " OK " not in (cmd.get("tagged") or "")
                    or not any(k.startswith("BINARY") for k in exp)):
                binary_failed = True
                continue
            binaries.update({k[7:-1]: v for k, v in exp.items() if k.startswith("BINARY[")})
    problems: list[str] = []
    for cmd in case.expect["commands"]:
        text = cmd["command"]
        if text.startswith("FETCH 1 ("):
            ours = await c.cmd("F " + text)
            problems += _compare_fetch(case, text, cmd, ours, binaries, binary_failed, stats)
        elif text.startswith("SEARCH"):
            wire = text.encode("latin-1")
            m = re.search(rb"\{(\d+)\}\r\n", wire)
            if m:  # a synchronising literal: wait for the continuation
                c.send(b"Q " + wire[: m.end()])
                await c.read_until(rb"\+ ")
                c.send(wire[m.end() :] + b"\r\n")
                ours = await c.read_until(rb"Q (OK|NO|BAD)")
            else:
                ours = await c.cmd("Q " + text)
            want = any(x.strip() == "* SEARCH 1" for x in cmd["response_lines"])
            got = b"* SEARCH 1" in ours
            lone_cr = _lone_cr(case) and text.startswith("SEARCH LARGER")
            lone_cr = lone_cr or (want and text.startswith("SEARCH BODY")
                                  and _cte_without_type(case))
            if want != got and not lone_cr and not (
                    not want and (any(case.stem == s and text.startswith(p)
                                      for s, p in SEARCH_ACCEPTED)
                                  or _dovecot_cannot_see(parse_message(normalize_crlf(case.raw)),
                                                         text))):
                problems.append(f"{text}: dovecot {want} ours {ours!r:.200}")
            else:
                stats["search equal/accepted"] = stats.get("search equal/accepted", 0) + 1
    assert (await c.cmd("U UNSELECT"))[-1].startswith(b"U OK")
    return problems


async def _replay_all(tmp_path: Path, backend: Backend, cases: Sequence[Case]) -> None:
    stats: dict[str, int] = {}
    failures: dict[str, list[str]] = {}
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        # headers as stored, as Dovecot sends them (see test_fetch_corpus.py)
        assert (await c.cmd("E ENABLE UTF8=ACCEPT"))[-1].startswith(b"E OK")
        for n, case in enumerate(cases, 1):
            problems = await _replay(c, case, n, stats)
            if problems:
                failures[case.stem] = problems
    print(f"\nsession replay of {len(cases)} messages: {stats}")
    assert not failures, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in failures.items())
    assert cases


@pytest.mark.interop
async def test_fetch_session_replay_of_own_corpus(tmp_path: Path, backend: Backend) -> None:
    await _replay_all(tmp_path, backend, own_cases())


@needs_shared
async def test_fetch_session_replay_of_whole_corpus(tmp_path: Path) -> None:
    # extra coverage where ../shared/corpus exists; the own corpus runs on both backends
    await _replay_all(tmp_path, SQLITE, CASES)


@needs_shared
def test_lone_cr_case_is_the_only_storage_difference() -> None:
    # the parse of the bytes Dovecot serves (lone CR dropped) matches it exactly (see
    # tests/mime/test_corpus.py); the stored form differs only by that one byte
    for case in CASES:
        if case.stem in LONE_CR_AT_END:
            assert case.raw.endswith(b"\r") and not case.raw.endswith(b"\n\r\n")
            info = parse_message(case.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            assert imapfmt.bodystructure(info)
