"""What the webmail's listing costs: a page, a threaded page and searches over one folder.

Run as ``python -m bench.webmail_listing [--messages N]``: a fresh SQLite store in a temporary
directory, one account, N generated messages in INBOX (97 subjects, two thirds of them replies
to the one before, so threads form), then each listing twice (the second time the blob and
decoded-text caches are warm). One line per listing, milliseconds; docs/web.md keeps them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.smtpd.harness import add_user, write_config

from mailwright.app import build_context
from mailwright.config import load_config
from mailwright.store.api import AppendItem
from mailwright.web.webmail.mailbox import list_page


def _mail(i: int) -> bytes:
    refs = f"In-Reply-To: <m{i - 1}@bench>\r\nReferences: <m{i - 1}@bench>\r\n" if i % 3 else ""
    return (f"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\n"
            f"Subject: subject {i % 97}\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <m{i}@bench>\r\n{refs}\r\nbody word{i}\r\n").encode()


async def run(messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = await build_context(load_config(write_config(Path(tmp))))
        try:
            alice = await add_user(ctx.store, "alice")
            box = await ctx.store.get_mailbox(alice.id, "INBOX")
            assert box is not None
            items = []
            for i in range(messages):
                writer = ctx.store.blob_writer()
                writer.write(_mail(i))
                items.append(AppendItem(await writer.finish()))
            await ctx.store.append_many(box.id, items)
            cases: list[tuple[str, dict[str, object]]] = [
                ("flat page", {}), ("threaded page", {"threaded": True}),
                ("search word", {"query": "word77"}), ("search from:", {"query": "from:bob"}),
            ]
            for label, options in cases:
                times = []
                for _ in range(2):
                    start = time.perf_counter()
                    await list_page(ctx.store, box, **options)  # type: ignore[arg-type]
                    times.append((time.perf_counter() - start) * 1000)
                print(f"{messages} messages  {label:14s}  first {times[0]:7.1f} ms  "
                      f"again {times[1]:7.1f} ms")
        finally:
            await ctx.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    asyncio.run(run(parser.parse_args().messages))


if __name__ == "__main__":
    main()
