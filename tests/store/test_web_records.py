"""The web interface's store records on both backends: sessions, settings, app passwords."""

from __future__ import annotations

import pytest

from mailwright.store.api import NotFound, Store, WebSession


async def test_sessions(store: Store) -> None:
    await store.add_domain("example.test")
    acc = await store.add_account("ann@example.test", "x")
    other = await store.add_account("bob@example.test", "x")
    s1 = WebSession("a" * 64, acc.id, "tok1", "full", 100.0, 200.0)
    await store.web_session_put(s1)
    assert await store.web_session_get(s1.id) == s1
    s1b = WebSession(s1.id, acc.id, "tok2", "full", 100.0, 300.0)
    await store.web_session_put(s1b)  # replaced, not added
    assert await store.web_session_get(s1.id) == s1b
    await store.web_session_put(WebSession("b" * 64, acc.id, "t", "totp", 1.0, 50.0))
    await store.web_session_put(WebSession("c" * 64, other.id, "t", "full", 1.0, 500.0))
    assert await store.web_sessions_purge(60.0) == 1
    assert await store.web_session_get("b" * 64) is None
    await store.web_session_put(WebSession("d" * 64, acc.id, "t", "full", 1.0, 500.0))
    assert await store.web_sessions_delete(acc.id, keep=s1.id) == 1
    assert await store.web_session_get(s1.id) is not None
    assert await store.web_sessions_delete(acc.id) == 1
    await store.web_session_delete("c" * 64)
    assert await store.web_session_get("c" * 64) is None
    with pytest.raises(NotFound):
        await store.web_session_put(WebSession("e" * 64, 999999, "t", "full", 1.0, 2.0))


async def test_settings_and_app_passwords(store: Store) -> None:
    await store.add_domain("example.test")
    acc = await store.add_account("ann@example.test", "x")
    assert await store.account_setting(acc.id, "admin") is None
    await store.set_account_setting(acc.id, "admin", "1")
    await store.set_account_setting(acc.id, "admin", "1")
    assert await store.account_setting(acc.id, "admin") == "1"
    assert await store.account_settings("admin") == {acc.id: "1"}
    await store.set_account_setting(acc.id, "admin", None)
    assert await store.account_settings("admin") == {}
    with pytest.raises(NotFound):
        await store.set_account_setting(999999, "admin", "1")
    p1 = await store.app_password_add(acc.id, "phone", "d1")
    p2 = await store.app_password_add(acc.id, "laptop", "d2")
    assert [p.label for p in await store.app_passwords(acc.id)] == ["phone", "laptop"]
    assert await store.app_password_delete(acc.id, p1.id)
    assert not await store.app_password_delete(acc.id, p1.id)
    assert await store.app_passwords(acc.id) == [p2]
    await store.delete_account(acc.id)  # settings and passwords go with the account
    assert await store.app_passwords(acc.id) == []
