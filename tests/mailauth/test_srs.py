"""SRS rewriting and reversal (the pure part; the SMTP part is in test_srs_forwarding.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mailwright.mailauth.srs import SRS, SRSError, is_srs, load_secret

NOW = 1_796_000_000.0  # a fixed instant: the day number is what is encoded
DAY = 86400.0


def test_srs0_round_trip() -> None:
    srs = SRS(b"secret")
    rewritten = srs.forward("Carol.Smith@origin.test", "forwarder.test", now=NOW)
    local, _, domain = rewritten.rpartition("@")
    assert domain == "forwarder.test"
    assert local.startswith("SRS0=") and local.endswith("=origin.test=Carol.Smith")
    assert srs.reverse(rewritten, now=NOW) == "Carol.Smith@origin.test"


def test_srs0_survives_case_folding_by_a_relay() -> None:
    srs = SRS(b"secret")
    rewritten = srs.forward("carol@origin.test", "forwarder.test", now=NOW)
    assert srs.reverse(rewritten.lower(), now=NOW) == "carol@origin.test"
    assert srs.reverse(rewritten.upper(), now=NOW).lower() == "carol@origin.test"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda a: a.replace("origin.test", "victim.test"),  # redirect the bounce elsewhere
        lambda a: a.replace("=carol@", "=mallory@"),
        lambda a: "SRS0=AAAA" + a[9:],  # made-up hash
    ],
)
def test_forged_srs0_is_refused(tamper: object) -> None:
    srs = SRS(b"secret")
    good = srs.forward("carol@origin.test", "forwarder.test", now=NOW)
    assert callable(tamper)
    forged = tamper(good)
    assert forged != good
    with pytest.raises(SRSError):
        srs.reverse(forged, now=NOW)


def test_other_secret_is_refused_but_an_old_secret_is_still_accepted() -> None:
    made = SRS(b"old").forward("carol@origin.test", "forwarder.test", now=NOW)
    with pytest.raises(SRSError):
        SRS(b"new").reverse(made, now=NOW)
    rotated = SRS(b"new", old_secrets=(b"old",))
    assert rotated.reverse(made, now=NOW) == "carol@origin.test"


def test_srs0_expires_after_max_age() -> None:
    srs = SRS(b"secret", max_age_days=21)
    made = srs.forward("carol@origin.test", "forwarder.test", now=NOW)
    assert srs.reverse(made, now=NOW + 21 * DAY) == "carol@origin.test"
    with pytest.raises(SRSError, match="expired"):
        srs.reverse(made, now=NOW + 22 * DAY)


def test_srs1_when_forwarding_an_srs0_address_again() -> None:
    first = SRS(b"first")
    second = SRS(b"second")
    srs0 = first.forward("carol@origin.test", "first.test", now=NOW)
    srs1 = second.forward(srs0, "second.test", now=NOW)
    assert srs1.startswith("SRS1=") and "=first.test==" in srs1
    assert srs1.endswith("@second.test")
    # The second forwarder sends the bounce back to the first, which decodes the rest.
    back = second.reverse(srs1, now=NOW)
    assert back.lower() == srs0.lower()
    assert first.reverse(back, now=NOW) == "carol@origin.test"
    # A third hop keeps SRS1 with the first forwarder's host.
    third = SRS(b"third").forward(srs1, "third.test", now=NOW)
    assert third.startswith("SRS1=") and "=first.test==" in third
    assert SRS(b"third").reverse(third, now=NOW).lower() == srs0.lower()
    with pytest.raises(SRSError):
        second.reverse(srs1.replace("first.test", "evil.test"), now=NOW)


def test_own_domain_sender_is_not_rewritten() -> None:
    assert SRS(b"s").forward("alice@forwarder.test", "forwarder.test") == "alice@forwarder.test"


@pytest.mark.parametrize(
    "address", ["carol@origin.test", "SRS0@x.test", "SRS0=abc@x.test", "SRS2=a=b=c=d@x.test"]
)
def test_non_srs_or_malformed_is_refused(address: str) -> None:
    with pytest.raises(SRSError):
        SRS(b"s").reverse(address)


def test_is_srs() -> None:
    assert is_srs("SRS0=abcd=AB=x.test=y") and is_srs("srs1+x") and not is_srs("srs")
    assert not is_srs("srsfan") and not is_srs("SRS0")


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_secret("", tmp_path)
    assert len(first) >= 40
    assert stat.S_IMODE((tmp_path / "srs.secret").stat().st_mode) == 0o600
    assert load_secret("", tmp_path) == first
    assert load_secret("configured", tmp_path) == b"configured"


def test_empty_secret_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    (tmp_path / "srs.secret").write_bytes(b"\n")
    with pytest.raises(SRSError, match="empty"):
        load_secret("", tmp_path)
