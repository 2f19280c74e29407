"""The administrator's spam settings over `[spam]` (`spam/overrides.py`): form values parsed
and refused with clear messages, the merge validated like the configuration file, the source
of each value, and every worker applying saved overrides (over the real worker channel) on both
store backends."""

from __future__ import annotations

import json

import pytest

from mailwright.spam import overrides
from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.store.api import Store
from tests.workers.test_channel import Pair

CONFIG = {"junk_threshold": 6.0, "dnsbl": ["zen.spamhaus.org"],
          "domains": {"example.org": {"junk_threshold": 8.0}}}


def test_overrides_form_values_are_parsed_or_refused_by_name() -> None:
    assert overrides.parse_field("", "junk_threshold", " 4.25 ") == 4.25
    assert overrides.parse_field("", "sender_rate", "10") == 10
    assert overrides.parse_field("", "greylist", "on") is True
    assert overrides.parse_field("", "dnsbl", "Zen.Spamhaus.org.\nbl.example, x.test") == [
        "zen.spamhaus.org", "bl.example", "x.test"]
    assert overrides.parse_field("", "rate_exempt", "10.0.0.0/8 ::1") == ["10.0.0.0/8", "::1"]
    assert overrides.parse_field("", "greylist_delay", "5m") == "5m"
    assert overrides.parse_field("example.org", "enabled", "") is False
    for scope, key, text, message in (
        ("", "junk_threshold", "five", "Junk threshold: 'five' is not a number"),
        ("", "junk_threshold", "nan", "is not a number"),
        ("", "sender_rate", "-1", "expected a whole number"),
        ("", "sender_rate", "1.5", "expected a whole number"),
        ("", "dnsbl", "a.test zone!", "'zone!' is not a DNS name"),
        ("", "dnsbl", "bad..zone", "is not a DNS name"),
        ("", "rate_exempt", "300.1.1.1", "is not an address or network"),
        ("", "greylist_delay", "soon", "expected a duration"),
        ("", "greylist", "maybe", "expected on or off"),
        ("", "rspamd_url", "http://x", "cannot be changed here"),
        ("example.org", "dnsbl", "x.test", "cannot be changed here"),
    ):
        with pytest.raises(overrides.FormError, match=message):
            overrides.parse_field(scope, key, text)
    with pytest.raises(overrides.FormError, match="at most 200"):
        overrides.parse_field("", "dnswl", "\n".join(f"z{i}.test" for i in range(201)))


def test_overrides_merge_validate_and_name_their_source() -> None:
    found = {("", "junk_threshold"): "3.0", ("example.org", "reject_threshold"): "0",
             ("example.net", "junk_threshold"): "2.5"}
    settings = overrides.effective(CONFIG, found)
    assert settings.thresholds.junk == 3.0
    assert [b.zone for b in settings.dnsbl] == ["zen.spamhaus.org"]
    assert settings.thresholds_for("a@example.org").junk == 8.0
    assert settings.thresholds_for("a@example.org").reject == 0
    assert settings.thresholds_for("a@example.net").junk == 2.5
    assert overrides.source_of(CONFIG, found, "", "junk_threshold") == "admin"
    assert overrides.source_of(CONFIG, found, "", "dnsbl") == "config"
    assert overrides.source_of(CONFIG, found, "", "greylist") == "default"
    assert overrides.source_of(CONFIG, found, "example.org", "junk_threshold") == "config"
    assert overrides.source_of(CONFIG, found, "example.org", "reject_threshold") == "admin"
    assert overrides.current_value(settings, "", "dnsbl") == ["zen.spamhaus.org"]
    assert overrides.current_value(settings, "", "greylist_delay") == "5m"
    assert overrides.render_value("greylist", False) == "off"
    # the configuration's own rule: reject above junk (or 0)
    with pytest.raises(overrides.FormError, match="reject_threshold: must be above junk"):
        overrides.check(CONFIG, {("", "reject_threshold"): "4.0"})
    overrides.check(CONFIG, {("", "reject_threshold"): "0"})


async def test_saved_overrides_reach_every_worker(store: Store) -> None:
    base = dict(CONFIG)
    pair = Pair()
    filters = []
    for channel in (pair.a, pair.b):
        f = SpamFilter(SpamSettings.from_mapping(base), store, None, "mx.example.test", base)
        f.announce = channel.send_spam_settings
        channel.on_spam_settings = f.expire
        await f.refresh()  # both have read the (empty) overrides just now
        filters.append(f)
    a, b = filters
    await store.spam_overrides_set({("", "junk_threshold"): json.dumps(2.0),
                                    ("", "sender_rate"): json.dumps(7)})
    await a.settings_saved()
    assert a.settings.thresholds.junk == 2.0 and a.sender_rate.per_hour == 7
    await b.refresh()  # within its refresh interval: not read again yet ...
    assert b.settings.thresholds.junk == 6.0
    pair.forward()  # ... until the other worker's announcement arrives
    await b.refresh()
    assert b.settings.thresholds.junk == 2.0 and b.sender_rate.per_hour == 7
    # an override that no longer validates is ignored; the last good settings stay
    await store.spam_overrides_set({("", "reject_threshold"): json.dumps(1.0)})
    await a.refresh(force=True)
    assert a.settings.thresholds.junk == 2.0 and a.settings.thresholds.reject == 15.0
