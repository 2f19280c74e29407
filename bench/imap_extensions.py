"""What the newer IMAP extensions save a client, on one large mailbox (docs/imap.md).

``python -m bench.imap_extensions [--messages N]`` builds a scratch SQLite store with an INBOX of
N (default 20,000) small messages and drives one IMAP session (the real session and connection
core, over an in-memory transport, so that only the server's work is timed), then prints the
median time and response size of each pair of commands:

* ``UID SEARCH ALL`` against the last 50 results only (RFC 9394 PARTIAL);
* ``UID FETCH 1:* (FLAGS)`` against its last 50 messages (the PARTIAL fetch modifier);
* ``UID FETCH 1:* (FLAGS)`` against ``(FLAGS SAVEDATE)`` (RFC 8514: the save dates are read
  from the store for each FETCH);
* APPEND, UID STORE \\Deleted and UID EXPUNGE against one REPLACE (RFC 8508);
* ``UID SEARCH SUBJECT`` in the INBOX against ``ESEARCH IN (personal)`` (RFC 7377) over the
  account's six mailboxes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

PASSWORD = "bench pw"


class _Pipe:
    """The session's end of an in-memory connection."""

    peer_ip = "127.0.0.1"
    tls = False
    tls_available = False
    is_loopback = True

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.output = bytearray()
        self.written = asyncio.Event()

    async def read(self) -> bytes:
        return await self.incoming.get()

    def write(self, data: bytes) -> None:
        self.output += data
        self.written.set()

    async def drain(self) -> None:
        await asyncio.sleep(0)

    async def start_tls(self, response: bytes) -> None:
        raise RuntimeError("no TLS here")


async def _command(pipe: _Pipe, data: bytes, tag: bytes) -> tuple[float, int]:
    """Seconds until the tagged answer of *data*, and the octets of the whole answer."""
    start = len(pipe.output)
    # every answer starts at a line start, so "^" (MULTILINE) finds the tagged line anywhere
    rx = re.compile(rb"^" + re.escape(tag) + rb" (OK|NO|BAD)[^\r\n]*\r\n", re.MULTILINE)
    t0 = time.perf_counter()
    pipe.incoming.put_nowait(data)
    while not rx.search(pipe.output, start):
        pipe.written.clear()
        await pipe.written.wait()
    elapsed = time.perf_counter() - t0
    answer = bytes(pipe.output[start:])
    if not re.search(re.escape(tag) + rb" OK", answer):
        raise RuntimeError(f"{data[:60]!r} failed: {answer[-200:]!r}")
    return elapsed, len(answer)


async def run(messages: int, runs: int) -> list[tuple[str, float, int]]:
    from mailwright.accounts.authenticator import Authenticator
    from mailwright.accounts.passwords import hash_password
    from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
    from mailwright.imapd.session import Session, SessionConfig
    from mailwright.store import meta_parser
    from mailwright.store.api import AppendItem
    from mailwright.store.sqlite import SQLiteStore

    rows: list[tuple[str, float, int]] = []
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "data", fsync=False, meta_parser=meta_parser())
        await store.open()
        try:
            await store.add_domain("example.test")
            acc = await store.add_account("alice@example.test", hash_password(PASSWORD))
            inbox = await store.get_mailbox(acc.id, "INBOX")
            assert inbox is not None
            for start in range(0, messages, 1000):
                items = []
                for i in range(start, min(start + 1000, messages)):
                    w = store.blob_writer()
                    w.write(b"From: a@example.test\r\nSubject: message %d\r\n\r\nbody %d\r\n"
                            % (i, i))
                    items.append(AppendItem(await w.finish()))
                await store.append_many(inbox.id, items)
            pipe = _Pipe()
            session = Session(pipe, store, Authenticator(store, base_delay=0.0, max_delay=0.0),
                              SessionConfig(hostname="bench.example.test"))
            task = asyncio.ensure_future(session.run())
            await _command(pipe, b'l LOGIN alice@example.test "%s"\r\n' % PASSWORD.encode(), b"l")
            await _command(pipe, b"s SELECT INBOX\r\n", b"s")

            async def timed(name: str, data: bytes) -> None:
                times, size = [], 0
                for n in range(runs):
                    tag = b"t%d" % n
                    elapsed, size = await _command(pipe, tag + b" " + data + b"\r\n", tag)
                    times.append(elapsed)
                rows.append((name, statistics.median(times), size))

            await timed("UID SEARCH ALL", b"UID SEARCH ALL")
            await timed("UID SEARCH RETURN (PARTIAL -1:-50) ALL",
                        b"UID SEARCH RETURN (PARTIAL -1:-50) ALL")
            await timed("UID FETCH 1:* (FLAGS)", b"UID FETCH 1:* (FLAGS)")
            await timed("UID FETCH 1:* (FLAGS) (PARTIAL -1:-50)",
                        b"UID FETCH 1:* (FLAGS) (PARTIAL -1:-50)")
            await timed("UID FETCH 1:* (FLAGS SAVEDATE)", b"UID FETCH 1:* (FLAGS SAVEDATE)")
            await timed('UID SEARCH SUBJECT "message 77"', b'UID SEARCH SUBJECT "message 77"')
            await timed('ESEARCH IN (personal) SUBJECT "message 77"',
                        b'ESEARCH IN (personal) SUBJECT "message 77"')
            body = b"Subject: draft\r\n\r\nversion\r\n"
            three, replace = [], []
            for n in range(runs):
                last = messages + 1 + 2 * n  # the newest message's UID, the one replaced
                t = 0.0
                for tag, line in (
                    (b"a%d" % n, b"APPEND INBOX {%d+}\r\n" % len(body) + body),
                    (b"b%d" % n, b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % (last - 1)),
                    (b"c%d" % n, b"UID EXPUNGE %d" % (last - 1)),
                ):
                    t += (await _command(pipe, tag + b" " + line + b"\r\n", tag))[0]
                three.append(t)
                tag = b"r%d" % n
                replace.append((await _command(
                    pipe, tag + b" UID REPLACE %d INBOX {%d+}\r\n" % (last, len(body)) + body
                    + b"\r\n", tag))[0])
            rows.append(("APPEND + UID STORE + UID EXPUNGE (3 round trips)",
                         statistics.median(three), 0))
            rows.append(("UID REPLACE (1 round trip)", statistics.median(replace), 0))
            pipe.incoming.put_nowait(b"")
            await task
        finally:
            await store.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = asyncio.run(run(args.messages, args.runs))
    print(f"| command ({args.messages:,} messages) | median (ms) | answer (octets) |")
    print("| --- | ---: | ---: |")
    for name, t, size in rows:
        print(f"| `{name}` | {t * 1000:.1f} | {size or ''} |")


if __name__ == "__main__":
    main()
