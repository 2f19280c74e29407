"""`mailwright check`: the config, the TLS files, the store, every mailbox and every alias.

On a terminal a progress bar counts the mailboxes; piped, only the problems (or the one OK
line) are printed.
"""

from __future__ import annotations

import argparse

from mailwright.cli.accounts import dangling_aliases
from mailwright.cli.common import load, with_store
from mailwright.cli.progress import progress
from mailwright.cli.roles import MailboxCheck
from mailwright.filemodes import open_to_others


async def _mailbox_problems(store: MailboxCheck) -> list[str]:
    accounts = await store.list_accounts()
    boxes = [(acc, mb) for acc in accounts for mb in await store.list_mailboxes(acc.id)]
    problems: list[str] = []
    with progress(len(boxes) + 2, "check", unit="mailbox") as bar:
        problems += await store.check()  # integrity, blobs, UID bounds, quota counters
        bar.update()
        for acc, mb in boxes:
            recs = await store.list_messages(mb.id)
            status = await store.mailbox_status(mb.id)
            uids = [r.uid for r in recs]
            where = f"{acc.address} {mb.name}"
            if uids != sorted(set(uids)):
                problems.append(f"mailbox {where}: UIDs not unique and ascending")
            if uids and uids[-1] >= status.uidnext:
                problems.append(f"mailbox {where}: uid {uids[-1]} not below uidnext {status.uidnext}")
            if status.messages != len(recs):
                problems.append(f"mailbox {where}: status says {status.messages} messages, "
                                f"{len(recs)} listed")
            bar.update()
        problems += await dangling_aliases(store)
        bar.update()
    return problems


def cmd_check(args: argparse.Namespace) -> int:
    config = load(args)
    problems: list[str] = []
    for path in (config.tls.cert, config.tls.key):
        if path is not None and not path.exists():
            problems.append(f"{config.source}: tls: {path} does not exist")
    if config.tls.cert and config.tls.key and not problems:
        try:
            from mailwright.tls import server_context

            server_context(config.tls.cert, config.tls.key)
        except Exception as e:  # noqa: BLE001 - any TLS load failure is a config problem
            problems.append(f"{config.source}: tls: cannot load certificate/key: {e}")
    # Before the store opens (which closes the data directory itself to other users).
    exposed = [config.source, config.server.data_dir]
    exposed += [p for p in (config.tls.key,) if p is not None]
    for path, mode in open_to_others(exposed):
        kind = "directory" if path.is_dir() else "file"
        problems.append(f"{path}: {kind} mode {mode:04o} lets other users in (chmod o-rwx)")
    from mailwright.cli.sieve_cmd import check_global_scripts

    problems += check_global_scripts(config)  # the [sieve] before/after scripts compile
    problems += with_store(config, _mailbox_problems)
    for p in problems:
        print(p)
    if not problems:
        print(f"{config.source}: configuration and store OK")
    return 1 if problems else 0
