"""The [spam] table: defaults, per-domain and per-account settings, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright.config import ConfigError, parse_config
from mailwright.spam.settings import SpamConfigError, SpamSettings


def test_spam_settings_defaults_are_safe() -> None:
    s = SpamSettings.from_mapping({})
    assert s.dnsbl == () and not s.greylist and s.learn
    assert s.thresholds.junk == 5.0 and s.thresholds.reject == 15.0


def test_spam_settings_known_list_codes_and_overrides() -> None:
    s = SpamSettings.from_mapping({
        "dnsbl": ["zen.spamhaus.org", {"zone": "bl.test", "codes": {"127.0.0.2": "bad"}, "score": 3}],
        "dnswl": ["list.dnswl.org"],
        "junk_threshold": 4,
        "domains": {"Example.org": {"junk_threshold": 6}},
        "accounts": {"boss@example.org": {"reject_threshold": 0}},
    })  # fmt: skip
    zen, custom = s.dnsbl
    assert zen.reason("127.0.0.4") == "XBL: exploited host"
    assert custom.reason("127.0.0.2") == "bad" and custom.score == 3
    assert custom.reason("127.0.0.9") == "listed (127.0.0.9)"
    assert s.dnswl[0].allow
    assert s.thresholds_for("x@example.org").junk == 6
    assert s.thresholds_for("boss@example.org").reject == 0
    assert s.thresholds_for("boss@example.org").junk == 4  # inherits the server's
    assert s.thresholds_for("x@other.example").junk == 4


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"dnsbl": "zen.spamhaus.org"}, "spam.dnsbl"),
        ({"dnsbl": [{"zone": "x.test", "codes": {"nope": "x"}}]}, "spam.dnsbl[0].codes"),
        ({"greet_wait": "soon"}, "spam.greet_wait"),
        ({"junk_threshold": 9, "reject_threshold": 5}, "spam..reject_threshold"),
        ({"accounts": {"a@b.example": {"colour": 1}}}, "spam.accounts.a@b.example.colour"),
        ({"rspamd_url": "ftp://x"}, "spam.rspamd_url"),
        ({"unknown": 1}, "spam.unknown"),
    ],
)
def test_spam_settings_errors_name_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(SpamConfigError, match=f"^{key.replace('[', '.').replace(']', '.')}"):
        SpamSettings.from_mapping(table)


def test_spam_settings_checked_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"spam": {"greylist": "yes"}}, tmp_path / "mailwright.toml")
    assert "spam.greylist" in str(info.value)
    config = parse_config({"spam": {"dnsbl": ["bl.test"]}}, tmp_path / "mailwright.toml")
    assert config.spam == {"dnsbl": ["bl.test"]}
