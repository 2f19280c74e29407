"""The spam package is a domain service: it knows the Store interface, never a backend, and
nothing above it (the SMTP session reaches it through `Services.spam`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_layers import SRC, imports_of

FORBIDDEN = ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.net",
             "mailwright.app", "mailwright.cli", "mailwright.smtpd", "mailwright.imapd",
             "mailwright.pop3d", "mailwright.queue")  # fmt: skip


@pytest.mark.parametrize("path", sorted((SRC / "spam").glob("*.py")), ids=lambda p: p.name)
def test_spam_layers_imports_go_downward(path: Path) -> None:
    bad = [name for name in imports_of(path) if name.startswith(FORBIDDEN)]
    assert bad == []


def test_spam_settings_module_is_stdlib_only() -> None:
    # config.py imports it while loading the configuration
    names = imports_of(SRC / "spam" / "settings.py")
    assert all(not n.startswith("mailwright") or n.startswith("mailwright.spam") for n in names)
