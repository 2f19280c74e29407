"""An IMAP session that checks every reply it gets (for the ``imap-sessions`` workload).

It keeps what a client must know to stay correct while other sessions change the mailbox: the
number of messages (``EXISTS``, ``EXPUNGE``; RFC 9051 7.5.1, 7.4.1) and, per command, checks the
reply's shape: every ``* n FETCH`` numbers a message the session knows and carries the items
asked for, a ``BODY[]`` literal is as long as the ``RFC822.SIZE`` announced with it, a FETCH of
20 messages answers each of them, a STORE's FETCH shows flags (the flag it set, unless another
session changed it meanwhile: counted apart), APPEND answers APPENDUID (RFC 4315), STATUS and
LIST answer what was asked. A reply that breaks a rule is a *wrong reply*, counted apart from
NO and BAD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bench.clients.imap import Answer, ImapClient

_EXISTS = re.compile(rb"^\* (\d+) EXISTS\r\n$")
_EXPUNGE = re.compile(rb"^\* (\d+) EXPUNGE\r\n$")
_FETCH = re.compile(rb"^\* (\d+) FETCH \(")
_UID = re.compile(rb"[( ]UID (\d+)")
_FLAGS = re.compile(rb"[( ]FLAGS \(([^)]*)\)")
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)")
_BODY = re.compile(rb"[( ]BODY\[\] (?:\{(\d+)\}\r\n|NIL)")
_HEADER = re.compile(rb"[( ]BODY\[HEADER\.FIELDS \([^)]*\)\] (?:\{(\d+)\}\r\n|NIL)")
_STATUS = re.compile(rb"^\* STATUS \S+ \(([A-Z0-9 ]*)\)\r\n$", re.I)
_LIST_INBOX = re.compile(rb'^\* LIST \([^)]*\) (?:"."|NIL) "?INBOX"?\r\n$', re.I)


@dataclass(slots=True)
class Checks:
    """What one session saw: command counts by kind, refusals, wrong replies."""

    done: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # tagged NO or BAD
    wrong: int = 0  # a reply that breaks a rule (see the module docstring)
    ghosts: int = 0  # FETCH answers with no content (expunged elsewhere: OK [EXPUNGEISSUED])
    raced: int = 0  # STORE answers showing another session's later change to the same flag
    problems: list[str] = field(default_factory=list)  # the first few, for the log

    def bad(self, what: str) -> None:
        self.wrong += 1
        if len(self.problems) < 5:
            self.problems.append(what[:300])


class CheckedSession:
    def __init__(self, client: ImapClient, checks: Checks) -> None:
        self.c = client
        self.checks = checks
        self.exists = 0
        self.uidnext = 0

    async def run(self, kind: str, line: bytes, literal: bytes | None = None) -> Answer | None:
        """One command: counted under *kind*; the answer when it was OK, else None."""
        ans = await self.c.command(line, literal=literal, ok=False)
        self.checks.done[kind] = self.checks.done.get(kind, 0) + 1
        self._track(ans, line)
        if ans.status != b"OK":
            self.checks.refused += 1
            if len(self.checks.problems) < 5:
                self.checks.problems.append(f"{line[:80]!r} -> {ans.tagged[:200]!r}")
            return None
        return ans

    def _track(self, ans: Answer, line: bytes) -> None:
        """EXISTS and EXPUNGE in any answer, in order; FETCH numbers within what is known."""
        for item in ans.untagged:
            if (m := _EXISTS.match(item)) is not None:
                self.exists = int(m.group(1))
            elif (m := _EXPUNGE.match(item)) is not None:
                n = int(m.group(1))
                if not 1 <= n <= self.exists:
                    self.checks.bad(f"EXPUNGE {n} of {self.exists} after {line[:60]!r}")
                self.exists -= 1
            elif (m := _FETCH.match(item)) is not None:
                n = int(m.group(1))
                if not 1 <= n <= self.exists:
                    self.checks.bad(f"FETCH {n} of {self.exists} after {line[:60]!r}")

    def fetches(self, ans: Answer) -> dict[int, bytes]:
        """The untagged FETCH responses by message number, the latest last (data for one
        message may come in pieces, and a flag change by another session before ours)."""
        out: dict[int, bytes] = {}
        for item in ans.untagged:
            if (m := _FETCH.match(item)) is not None:
                n = int(m.group(1))
                out[n] = out.get(n, b"") + item
        return out

    def all_flags(self, ans: Answer, n: int) -> list[list[bytes]]:
        """The flag lists of message *n* in *ans*, in order (another session's change may be
        reported before ours, or after it at the end of the command)."""
        found = []
        for item in ans.untagged:
            m = _FETCH.match(item)
            if m is not None and int(m.group(1)) == n and (f := _FLAGS.search(item)):
                found.append(f.group(1).split())
        return found

    async def select(self) -> None:
        ans = await self.run("select", b"SELECT INBOX")
        if ans is None:
            raise RuntimeError("SELECT INBOX refused")
        if self.exists <= 0:
            self.checks.bad("SELECT gave no EXISTS")

    async def fetch_headers(self, lo: int, hi: int) -> None:
        ans = await self.run("fetch", b"FETCH %d:%d (UID FLAGS RFC822.SIZE "
                                      b"BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])" % (lo, hi))
        if ans is None:
            return
        got = self.fetches(ans)
        for n in range(lo, hi + 1):
            data = got.get(n)
            if data is None:
                # RFC 9051 7.5.1: every message still numbered is answered
                self.checks.bad(f"FETCH {lo}:{hi}: no answer for {n}")
                continue
            if not (_UID.search(data) and _FLAGS.search(data) and _SIZE.search(data)):
                self.checks.bad(f"FETCH {n}: items missing in {data[:120]!r}")
            h = _HEADER.search(data)
            if h is None:
                self.checks.bad(f"FETCH {n}: no header fields in {data[:120]!r}")
            elif h.group(1) is None:
                self.checks.ghosts += 1

    async def fetch_body(self, n: int) -> None:
        ans = await self.run("fetch-body", b"FETCH %d (UID RFC822.SIZE BODY[])" % n)
        if ans is None:
            return
        data = self.fetches(ans).get(n)
        if data is None:
            self.checks.bad(f"FETCH {n} BODY[]: no answer")
            return
        size, body = _SIZE.search(data), _BODY.search(data)
        if size is None or body is None or _UID.search(data) is None:
            self.checks.bad(f"FETCH {n} BODY[]: items missing in {data[:120]!r}")
        elif body.group(1) is None:
            self.checks.ghosts += 1  # the message was expunged by another session
        elif int(body.group(1)) != int(size.group(1)):
            self.checks.bad(f"FETCH {n}: BODY[] of {body.group(1)!r} octets, "
                            f"RFC822.SIZE {size.group(1)!r}")
        else:
            start = body.end()
            if b"\r\n\r\n" not in data[start : start + int(body.group(1))]:
                self.checks.bad(f"FETCH {n}: BODY[] has no header/body separator")

    async def store(self, n: int, add: bool) -> None:
        sign = b"+" if add else b"-"
        ans = await self.run("store", b"STORE %d %sFLAGS (\\Flagged)" % (n, sign))
        if ans is None:
            return
        flags = self.all_flags(ans, n)
        if not flags:
            return  # expunged by another session: may be left out (RFC 2180 4.2.1)
        if not any((b"\\Flagged" in f) == add for f in flags):
            # RFC 9051 6.4.6: the flags as they are after the command, which may include
            # another session's change made meanwhile (Dovecot merges it into this answer):
            # counted, not a wrong reply
            self.checks.raced += 1

    async def append(self, message: bytes) -> int | None:
        ans = await self.run("append", b"APPEND INBOX (\\Seen)", literal=message)
        if ans is None:
            return None
        m = re.search(rb"\[APPENDUID \d+ (\d+)\]", ans.tagged, re.I)
        if m is None:
            self.checks.bad(f"APPEND without APPENDUID: {ans.tagged[:120]!r}")
            return None
        return int(m.group(1))

    async def expunge(self, uids: list[int]) -> None:
        """Mark this session's own messages \\Deleted and EXPUNGE (which also removes what
        the other sessions marked)."""
        uidset = b",".join(b"%d" % u for u in uids)
        if await self.run("store", b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % uidset) is None:
            return
        # another session's EXPUNGE may have removed them first (and the UID STORE's answer
        # said so): the EXPUNGE responses are checked against EXISTS by `_track`
        await self.run("expunge", b"EXPUNGE")

    async def list_all(self) -> None:
        ans = await self.run("list", b'LIST "" "*"')
        if ans is not None and not any(_LIST_INBOX.match(i) for i in ans.untagged):
            self.checks.bad(f"LIST without INBOX: {ans.untagged[:3]!r}")

    async def status(self) -> None:
        ans = await self.run("status", b"STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
        if ans is None:
            return
        got = [m for i in ans.untagged if (m := _STATUS.match(i)) is not None]
        words = got[0].group(1).upper().split() if len(got) == 1 else []
        items = dict(zip(words[::2], words[1::2], strict=False))
        if sorted(items) != [b"MESSAGES", b"UIDNEXT", b"UNSEEN"] or not all(
                v.isdigit() for v in items.values()):
            self.checks.bad(f"STATUS: {ans.untagged[:3]!r}")
            return
        # RFC 9051 7.2.4: the items in any order
        messages, unseen, uidnext = (int(items[k]) for k in (b"MESSAGES", b"UNSEEN", b"UIDNEXT"))
        if messages <= 0 or unseen > messages or uidnext < self.uidnext:
            self.checks.bad(f"STATUS: MESSAGES {messages} UNSEEN {unseen} UIDNEXT {uidnext}")
        self.uidnext = uidnext
