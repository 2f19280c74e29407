"""Forwarding and vacation settings written as Sieve (mailwright.sieve.rules)."""

from __future__ import annotations

from mailwright.sieve import compile_script
from mailwright.sieve.rules import Rules, script


def test_nothing_on_is_an_empty_valid_script() -> None:
    text = script(Rules())
    assert "redirect " not in text and "require" not in text
    compile_script(text)


def test_forward_keeping_a_copy_and_vacation() -> None:
    rules = Rules(forward_to="me@elsewhere.test", keep_copy=True, vacation=True,
                  subject='Away "until" Monday \\o/', message="Back soon.\nReally.\r\n",
                  days=3, addresses=("ann@example.test", "sales@example.test"))
    text = script(rules)
    assert 'require ["copy", "vacation"];' in text
    assert 'redirect :copy "me@elsewhere.test";' in text
    assert ':subject "Away \\"until\\" Monday \\\\o/"' in text
    assert ':days 3' in text and '"sales@example.test"' in text
    assert "Back soon.\r\nReally.\r\n" in text
    compile_script(text)


def test_forward_without_copy_and_json_round_trip() -> None:
    rules = Rules(forward_to="me@elsewhere.test", keep_copy=False)
    assert 'redirect "me@elsewhere.test";' in script(rules)
    assert Rules.from_json(rules.to_json()) == rules
    assert Rules.from_json("not json") == Rules()
    assert Rules(days=500, vacation=True).active
    assert ":days 90" in script(Rules(days=500, vacation=True))
