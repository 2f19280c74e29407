"""Verdicts: thresholds per account and per domain, the most lenient for several recipients,
and the lines of `spam check`."""

from __future__ import annotations

from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.store.api import Store

from .messages import ham, spam


async def _trained(store: Store, settings: SpamSettings) -> tuple[SpamFilter, dict[str, int]]:
    await store.add_domain("example.test")
    await store.add_domain("example.org")
    ids = {}
    for address in ("bob@example.test", "carol@example.test", "dave@example.org"):
        ids[address] = (await store.add_account(address, "x")).id
    spam_filter = SpamFilter(settings, store, None, "mail.example.test")
    classifier = spam_filter.classifier
    for i in range(12):
        for label, raw in (("ham", ham(i)), ("spam", spam(i))):
            await classifier.learn(ids["bob@example.test"], f"{label}{i}", label,
                                   await classifier.analyse(raw))  # fmt: skip
    return spam_filter, ids


async def test_verdicts_thresholds_per_account_and_domain(store: Store) -> None:
    settings = SpamSettings.from_mapping({
        "reject_threshold": 6,
        "accounts": {"carol@example.test": {"junk_threshold": 50, "reject_threshold": 0}},
        "domains": {"example.org": {"enabled": False}},
    })  # fmt: skip
    spam_filter, ids = await _trained(store, settings)
    message = spam(40)
    bob = await spam_filter.judge(message, recipients=["bob@example.test"],
                                  account_ids=[ids["bob@example.test"]])  # fmt: skip
    assert bob.verdict == "reject" and bob.score >= 6
    carol = await spam_filter.judge(message, recipients=["carol@example.test"],
                                    account_ids=[ids["carol@example.test"]])  # fmt: skip
    assert carol.verdict == "ham" and carol.required == 50
    dave = await spam_filter.judge(message, recipients=["dave@example.org"],
                                   account_ids=[ids["dave@example.org"]])  # fmt: skip
    assert dave.verdict == "ham" and [r.name for r in dave.reasons] == ["FILTER_OFF"]
    both = await spam_filter.judge(message, recipients=["bob@example.test", "carol@example.test"],
                                   account_ids=list(ids.values())[:2])  # fmt: skip
    assert both.verdict == "ham"  # the most lenient of the recipients' settings


async def test_verdicts_check_lines_name_every_reason(store: Store) -> None:
    spam_filter, ids = await _trained(store, SpamSettings())
    raw = spam(41).replace(b"Date: Mon, 7 Dec 2026 11:41:00 +0000\r\n", b"")
    judged = await spam_filter.judge(raw, recipients=["bob@example.test"],
                                     account_ids=[ids["bob@example.test"]])  # fmt: skip
    lines = judged.lines()
    assert lines[0] == f"score {judged.score:.1f} verdict junk"
    assert any(line.startswith("+1.0 NO_DATE ") for line in lines[1:])
    assert any(" BAYES_SPAM classifier (your own and server-wide)" in line for line in lines[1:])
    assert round(sum(r.points for r in judged.reasons), 1) == judged.score
