"""`mailwright queue list|show|flush|delete` on a real instance directory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailwright.cli.common import opened_store
from mailwright.cli.main import main
from mailwright.config import load_config
from mailwright.delivery.ingest import stage_bytes
from mailwright.store.api import QueueRecipient

MESSAGE = b"From: alice@sender.test\r\nSubject: queued one\r\n\r\nhello\r\n"


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    assert main(["init", str(tmp_path / "a"), "--domain", "sender.test",
                 "--port-base", "30000"]) == 0
    return tmp_path / "a" / "mailwright.toml"


def enqueue(cfg: Path) -> str:
    async def go() -> str:
        async with opened_store(load_config(cfg)) as store:
            blob = await stage_bytes(store, MESSAGE)
            await store.queue_add(blob, "alice@sender.test", {
                "dest.test": [QueueRecipient("bob@dest.test", "scheduled", "FAILURE")]})
            [entry] = await store.queue_claim("cli-test", 1, 10)
            await store.queue_update(entry.id, "cli-test", [
                QueueRecipient("bob@dest.test", "tempfail", "FAILURE", None,
                               "smtp; 451 4.2.1 busy")],
                next_attempt=datetime.now(UTC) + timedelta(hours=1),
                last_error="smtp; 451 4.2.1 busy")
            return entry.queue_id

    return asyncio.run(go())


def test_queue_cli_list_show_flush_delete(instance: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    qid = enqueue(instance)
    capsys.readouterr()
    assert main(["queue", "list", "-c", str(instance)]) == 0
    out = capsys.readouterr().out
    assert f"{qid} domain=dest.test from=alice@sender.test rcpts=1/1" in out
    assert "attempts=1" in out and "last_error='smtp; 451 4.2.1 busy'" in out
    assert "1 entry in the queue" in out

    assert main(["queue", "show", str(qid), "-c", str(instance)]) == 0
    out = capsys.readouterr().out
    assert "bob@dest.test tempfail notify=FAILURE last_reply='smtp; 451 4.2.1 busy'" in out
    assert "Subject: queued one" in out

    assert main(["queue", "flush", "-c", str(instance)]) == 0
    assert "1 entry scheduled" in capsys.readouterr().out
    assert main(["queue", "list", "-c", str(instance)]) == 0
    assert "next=now" in capsys.readouterr().out

    assert main(["queue", "delete", str(qid), "-c", str(instance)]) == 0
    assert main(["queue", "list", "-c", str(instance)]) == 0
    assert "0 entries" in capsys.readouterr().out


def test_queue_cli_unknown_id(instance: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "show", "42", "-c", str(instance)]) == 1
    assert main(["queue", "delete", "42", "-c", str(instance)]) == 1
    err = capsys.readouterr().err
    assert "no queue entry 42" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        main(["queue", "show", "no-pe!", "-c", str(instance)])
    assert info.value.code == 2
