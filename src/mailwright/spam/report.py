"""The X-Spam-Status and X-Spam-Report fields every delivered message carries.

The format follows SpamAssassin's, which mail clients and Sieve scripts already understand:
`X-Spam-Status: Yes|No, score=S required=J` with the tests and their points, and a report with
one line per reason so that a user can see why. Any X-Spam-* field that arrived with the message
is removed first: only the receiving server may say what it thought of a message, and a sender
who writes `X-Spam-Status: No` must not reach a rule that trusts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .checks import Reason

__all__ = ["spam_fields", "strip_spam_fields"]

MAX_HEADER_SCAN = 256 * 1024


def strip_spam_fields(message: bytes) -> tuple[bytes, int]:
    """`message` without X-Spam-* header fields, and how many were removed."""
    end = message.find(b"\r\n\r\n", 0, MAX_HEADER_SCAN)
    if end < 0:
        end = message.find(b"\n\n", 0, MAX_HEADER_SCAN)
        if end < 0:
            return message, 0
    head = message[: end + 2]
    if b"x-spam-" not in head.lower():
        return message, 0
    lines = head.splitlines(keepends=True)
    kept: list[bytes] = []
    removed = 0
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t") and kept is not None:
            if not dropping:
                kept.append(line)
            continue
        dropping = line.lower().startswith(b"x-spam-")
        if dropping:
            removed += 1
        else:
            kept.append(line)
    return b"".join(kept) + message[end + 2 :], removed


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")


def spam_fields(score: float, required: float, verdict: str, reasons: Sequence[Reason]) -> bytes:
    """The fields, folded (RFC 5322 2.2.3), CRLF-terminated.

    X-Spam-Status names every test that moved the score; mail filed as junk also carries an
    X-Spam-Report with one sentence per reason, for the reader who wonders why. Ham does not:
    it would add a few hundred bytes to every message for a question nobody asks.
    """
    flag = "Yes" if verdict != "ham" else "No"
    tests = [f"{r.name}({r.points:+.1f})" for r in reasons if r.points] or ["NONE"]
    lines = [f"X-Spam-Status: {flag}, score={score:.1f} required={required:.1f} verdict={verdict}"]
    line = "\ttests="
    for i, test in enumerate(tests):
        piece = test + ("," if i < len(tests) - 1 else "")
        if len(line) + len(piece) > 76 and not line.endswith("="):
            lines.append(line)
            line = "\t"
        line += piece
    lines.append(line)
    if verdict != "ham":
        lines.append(f"X-Spam-Report: score {score:.1f}, required {required:.1f}")
        lines += ["\t" + _ascii(reason.line())[:900] for reason in reasons]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
