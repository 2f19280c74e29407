"""One IMAP contract on both backends: where SQLite and PostgreSQL drifted (or could), the same
sessions must give the same answers, byte for byte (issue 15, item 5).

Each file of tests/imapd/backend_contract/ is a script of several sessions (A, B, C...) of
alice, whose INBOX holds three messages at the start:

    # comment
    quota 200                  the account's quota becomes 200 bytes
    deliver                    one more message arrives in INBOX
    A1 SELECT INBOX            session A sends the command (tag A1)
      * 3 EXISTS               ...and these lines are the whole answer

`{UIDV}` stands for INBOX's UIDVALIDITY and `{UIDV:Name}` for another mailbox's; `{BIG}` in a
command is a 300-byte message as a non-synchronising literal; `MAILBOXID (F...)` stands for any
mailbox id. The lines of SELECT that differ by nature between two stores (UIDVALIDITY, MAILBOXID)
or say nothing about them (FLAGS, PERMANENTFLAGS, UNSEEN) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from imap_harness import Client, imap_server, message
from tests.support.backends import Backend

SCRIPTS = sorted((Path(__file__).parent / "backend_contract").glob("*.txt"))
BIG = b"{300+}\r\nSubject: x\r\n\r\n" + b"z" * 286
LEFT_OUT = re.compile(rb"^\* (FLAGS |OK \[(PERMANENTFLAGS|UNSEEN|UIDVALIDITY|MAILBOXID) )")


def steps(path: Path) -> list[tuple[str, list[str]]]:
    """[(step line, expected answer lines)]."""
    out: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("  "):
            out[-1][1].append(line[2:])
        else:
            out.append((line, []))
    return out


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
async def test_imap_backend_contract(tmp_path: Path, backend: Backend, path: Path) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        for i in range(1, 4):
            await srv.deliver(acc, message(i))
        clients: dict[str, Client] = {}
        delivered = 10
        for step, want in steps(path):
            if step.startswith("quota "):
                await srv.store.update_account(acc, quota_bytes=int(step.split()[1]))
                continue
            if step == "deliver":
                delivered += 1
                await srv.deliver(acc, message(delivered))
                continue
            who = step[0]
            if who not in clients:
                clients[who] = await srv.connected()
            names = {
                "{UIDV}" if mb.name == "INBOX" else "{UIDV:" + mb.name + "}": str(mb.uidvalidity)
                for mb in await srv.store.list_mailboxes(acc)
            }
            command = step.encode()
            for key, value in names.items():
                command = command.replace(key.encode(), value.encode())
            got = await clients[who].cmd(command.replace(b"{BIG}", BIG), tag=step.split()[0])
            text = [re.sub(r"MAILBOXID \(F[0-9-]+\)", "MAILBOXID (F...)", line.decode())
                    for line in got if not LEFT_OUT.match(line)]
            for key, value in names.items():
                text = [line.replace(value, key) for line in text]
            assert text == want, f"{path.name}: {step}"
