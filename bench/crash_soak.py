"""``python -m bench.crash_soak --rounds N``: the mixed-load crash harness, many rounds.

Each round starts `mailwright serve`, runs real SMTP (MX and submission), IMAP APPEND and
UID EXPUNGE and POP3 DELE clients against it while the outbound queue delivers to an aiosmtpd
remote MX, SIGKILLs the server at a random moment, restarts it and checks every promise made
so far (tests/robustness/mixedload.py has the rules). The figures go to standard output in a
form ready for docs/reliability.md. Exit status 0 when every round held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_soak", description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-load", type=float, default=4.0,
                        help="the kill lands up to this many seconds into the load")  # fmt: skip
    parser.add_argument("--min-acks", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--workers", type=int, default=1,
                        help="serve --workers N (every worker is killed with the server)")  # fmt: skip
    args = parser.parse_args(argv)

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tests.robustness.mixedload import MixedCrashWorld

    root = Path(tempfile.mkdtemp(prefix="mw-crash-soak-"))
    world = MixedCrashWorld(root, seed=args.seed, workers=args.workers)
    started = time.monotonic()
    failure = ""
    try:
        for i in range(args.rounds):
            world.run_round(min_acks=args.min_acks, max_load=args.max_load)
            print(f"round {i + 1}/{args.rounds}: acknowledged so far {dict(world.ledger.counts)}",
                  flush=True)  # fmt: skip
        stats = world.finish()
    except Exception as e:  # noqa: BLE001 - a broken promise, or a server that did not start
        failure = f"round {world.round}: {type(e).__name__}: {e}"
        traceback.print_exc()
        stats = world.stats
    finally:
        world.close()
    elapsed = time.monotonic() - started
    acked = dict(world.ledger.counts)
    print()
    print(f"| rounds (SIGKILLs) | {stats.kills} |")
    print(f"| seed | {args.seed} |")
    print(f"| workers | {args.workers} |")
    for kind in ("smtp-mx", "submission", "imap-append", "imap-expunge", "pop3-dele"):
        print(f"| acknowledged {kind} | {acked.get(kind, 0)} |")
    print(
        f"| acknowledged messages checked byte-exact (summed over rounds) | {stats.checked_messages} |"
    )
    print(f"| remote messages delivered twice (at-least-once queue) | {stats.remote_duplicates} |")
    print(f"| POP3 logins refused by a lock left by a killed session | {stats.pop3_locked_out} |")
    print(f"| wall time | {elapsed:.0f} s |")
    print(f"| result | {'FAILED: ' + failure if failure else 'every promise held'} |")
    if args.keep or failure:
        print(f"scratch directory kept: {root}")
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
