"""A store writer that is SIGKILLed by test_crash_store at random moments.

It appends, flags, copies and expunges in one account, delivers to 20 accounts at once (one
blob, one unit of work: `deliver_each`), and prints one line per operation the store
acknowledged (`ACK <kind> <detail>`), flushed before the next operation starts: the parent
then knows exactly what was acknowledged when the kill landed.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from mailwright.store.api import DeliveryTarget, FlagOp, LocalCopies
from mailwright.store.sqlite import SQLiteStore

FANOUT = 20  # accounts fan00..fan19 get every fan-out message


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(data_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = SQLiteStore(data_dir)
    await store.open()
    acc = await store.find_account("crash@example.test")
    if acc is None:
        await store.add_domain("example.test")
        acc = await store.add_account("crash@example.test", "x")
    inbox = await store.get_mailbox(acc.id, "INBOX")
    archive = await store.get_mailbox(acc.id, "Archive")
    assert inbox is not None and archive is not None
    fans = []
    for k in range(FANOUT):
        fan = await store.find_account(f"fan{k:02d}@example.test")
        if fan is None:
            fan = await store.add_account(f"fan{k:02d}@example.test", "x")
        fans.append(DeliveryTarget(fan.id))
    say("READY")
    n = 0

    async def one(i: int) -> None:
        body = f"Subject: crash {seed}-{i}\r\n\r\n".encode() + rng.randbytes(rng.randint(10, 20000)).hex().encode()
        w = store.blob_writer()
        w.write(body)
        blob = await w.finish()
        rec = await store.append(inbox.id, blob)
        say(f"ACK append {rec.uid} {blob.blob_id}")
        r = rng.random()
        if r < 0.2:
            await store.store_flags(inbox.id, [rec.uid], FlagOp.ADD, ["\\Seen"])
            say(f"ACK seen {rec.uid}")
        elif r < 0.3:
            # announced first: an expunge that commits but is killed before its ACK is legitimate
            say(f"INTENT expunge {rec.uid}")
            gone = await store.expunge(inbox.id, [rec.uid])
            say(f"ACK expunge {' '.join(map(str, gone))}")
        elif r < 0.4:
            mapping = await store.copy(inbox.id, [rec.uid], archive.id)
            say(f"ACK copy {mapping[0][1]} {blob.blob_id}")
        elif r < 0.55:
            w = store.blob_writer()
            w.write(b"Subject: to everyone\r\n\r\n" + body)
            shared = await w.finish()
            done = await store.deliver_each(LocalCopies(shared, tuple(fans)), None)
            assert len(done.records) == FANOUT
            say(f"ACK fanout {shared.blob_id}")

    while True:
        await asyncio.gather(*(one(n + k) for k in range(4)))
        n += 4


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
