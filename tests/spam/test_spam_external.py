"""rspamd and SpamAssassin as extra tests feeding the score, against the real engines."""

from __future__ import annotations

from pathlib import Path

from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.store.api import Store

from .engines import GTUBE, free_port, rspamd, spamd
from .messages import ham


def _gtube() -> bytes:
    return ham(0).replace(b"Hi Bob,", b"Hi Bob,\r\n" + GTUBE)


async def test_external_spamassassin_feeds_the_score(store: Store, tmp_path: Path) -> None:
    with spamd(tmp_path) as port:
        spam_filter = SpamFilter(SpamSettings.from_mapping({"spamd": f"127.0.0.1:{port}"}),
                                 store, None, "mail.example.test")  # fmt: skip
        judged = await spam_filter.judge(_gtube())
        (reason,) = [r for r in judged.reasons if r.name == "SPAMASSASSIN"]
        assert reason.points == 8.0 and "SpamAssassin score 1" in reason.text  # GTUBE: 1000
        assert judged.verdict == "junk"
        clean = await spam_filter.judge(ham(1))
        assert [r.points < 5 for r in clean.reasons if r.name == "SPAMASSASSIN"] == [True]


async def test_external_rspamd_feeds_the_score(store: Store, tmp_path: Path) -> None:
    with rspamd(tmp_path) as port:
        spam_filter = SpamFilter(
            SpamSettings.from_mapping({"rspamd_url": f"http://127.0.0.1:{port}"}),
            store, None, "mail.example.test",
        )  # fmt: skip
        judged = await spam_filter.judge(_gtube(), peer_ip="192.0.2.1", sender="a@b.example",
                                         recipients=["bob@example.test"])  # fmt: skip
        (reason,) = [r for r in judged.reasons if r.name == "RSPAMD"]
        assert reason.points >= 5 and "GTUBE" in reason.text, reason  # its reject score: 5
        assert judged.verdict == "junk"


async def test_external_engine_down_adds_nothing(store: Store) -> None:
    port = free_port()  # nothing listens there
    settings = SpamSettings.from_mapping({"spamd": f"127.0.0.1:{port}",
                                          "rspamd_url": f"http://127.0.0.1:{port}",
                                          "external_timeout": 5})  # fmt: skip
    judged = await SpamFilter(settings, store, None, "mail.example.test").judge(ham(2))
    assert not [r for r in judged.reasons if r.name in ("SPAMASSASSIN", "RSPAMD")]
    assert judged.verdict == "ham"
