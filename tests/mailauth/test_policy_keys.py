from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailwright.mailauth import Action, DomainAuthPolicy, KeyStore, MailauthSettings, PolicyError
from mailwright.mailauth.keys import DkimKeyError, default_selector, txt_strings


def test_policy_defaults_are_safe() -> None:
    p = DomainAuthPolicy()
    assert p.verify and p.dmarc_enforce and p.dkim_sign
    assert (p.on_dmarc_reject, p.on_dmarc_quarantine) == (Action.REJECT, Action.QUARANTINE)
    assert p.quarantine_mailbox == "Junk"


def test_policy_settings_from_toml_table() -> None:
    settings = MailauthSettings.from_mapping(
        {
            "dmarc_enforce": True,
            "on_spf_fail": "quarantine",
            "domains": {
                "Lists.Example": {"on_dmarc_reject": "quarantine", "trusted_arc_sealers": ["Google.com"]},
            },
        }
    )
    assert settings.for_domain("other.test").on_spf_fail is Action.QUARANTINE
    per = settings.for_domain("lists.example.")
    assert per.on_dmarc_reject is Action.QUARANTINE
    assert per.on_spf_fail is Action.QUARANTINE  # inherited from the top level
    assert per.trusted_arc_sealers == ("google.com",)


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ({"verify": "yes"}, "mailauth.verify"),
        ({"on_dmarc_reject": "explode"}, "mailauth.on_dmarc_reject"),
        ({"bogus": 1}, "bogus"),
        ({"domains": {"x.test": {"quarantine_mailbox": ""}}}, 'mailauth.domains."x.test".quarantine_mailbox'),
    ],
)
def test_policy_errors_name_the_key(table: dict[str, object], where: str) -> None:
    with pytest.raises(PolicyError, match=where.replace(".", r"\.")):
        MailauthSettings.from_mapping(table)


def test_keys_generate_layout_and_reload(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    rsa = store.generate("Example.Test", algorithm="rsa")
    ed = store.generate("example.test", algorithm="ed25519", selector="ed1")
    assert rsa.selector == default_selector("rsa") and rsa.selector.startswith("rsa")
    assert sorted(p.name for p in (tmp_path / "dkim" / "example.test").iterdir()) == sorted(
        [f"{rsa.selector}.rsa.pem", f"{rsa.selector}.rsa.json", "ed1.ed25519.pem", "ed1.ed25519.json"]
    )
    assert [k.selector for k in store.keys("EXAMPLE.test")] == ["ed1", rsa.selector]
    assert store.keys("example.test")[1].private_pem == rsa.private_pem
    assert ed.txt_record().startswith("v=DKIM1; k=ed25519; p=")
    assert len(ed.public_key_b64()) == 44  # 32 raw bytes (RFC 8463 4.2)
    with pytest.raises(DkimKeyError):
        store.generate("example.test", algorithm="rsa", selector="ed1")
    with pytest.raises(DkimKeyError):
        store.generate("../etc", algorithm="rsa")
    assert store.keys("nothing.test") == []
    assert default_selector("ed25519", dt.date(2026, 1, 5)) == "ed202601"


def test_keys_inactive_are_not_used_for_signing(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key = store.generate("example.test", algorithm="ed25519", selector="old")
    meta = tmp_path / "dkim" / "example.test" / "old.ed25519.json"
    meta.write_text(meta.read_text().replace('"active": true', '"active": false'))
    assert store.keys("example.test") == []
    assert store.keys("example.test", include_inactive=True)[0].selector == key.selector


def test_keys_txt_strings_split_at_255() -> None:
    text = "a" * 300 + '"'
    assert txt_strings(text) == '"' + "a" * 255 + '" "' + "a" * 45 + '\\""'
