"""The web interface's state, once for every backend: sign-in sessions, per-account settings
(the administrator role, TOTP) and app passwords.

They are store records so that every worker process and every node sees the same sign-ins
and the same passwords. Times here are the web layer's own UNIX seconds (a session's
`expires` is compared with the `now` its caller passes), not the database clock: the web
layer decides when a session ends.
"""

from __future__ import annotations

import time

from mailwright.store.api import AppPassword, NotFound, WebSession
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx

_SESSION_COLS = "id, account_id, csrf, stage, created, expires"


async def _account_exists(tx: Tx, account_id: int) -> None:
    if await tx.row("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is None:
        raise NotFound("no such account")


class WebStateRules(CoreBase):
    """`api.WebState`: sessions, account settings and app passwords."""

    async def web_session_put(self, session: WebSession) -> None:
        async def op(tx: Tx) -> None:
            await _account_exists(tx, session.account_id)
            await tx.run(
                f"INSERT INTO web_sessions({_SESSION_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id,"
                " csrf = excluded.csrf, stage = excluded.stage, created = excluded.created,"
                " expires = excluded.expires",
                (session.id, session.account_id, session.csrf, session.stage,
                 float(session.created), float(session.expires)),
            )  # fmt: skip

        await self._unit(op)

    async def web_session_get(self, session_id: str) -> WebSession | None:
        async def op(tx: Tx) -> WebSession | None:
            r = await tx.row(
                f"SELECT {_SESSION_COLS} FROM web_sessions WHERE id = ?", (session_id,)
            )
            if r is None:
                return None
            return WebSession(str(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]),
                              float(r[5]))  # fmt: skip

        return await self._view(op)

    async def web_session_delete(self, session_id: str) -> None:
        await self._single(
            lambda tx: tx.run("DELETE FROM web_sessions WHERE id = ?", (session_id,))
        )

    async def web_sessions_delete(self, account_id: int, keep: str | None = None) -> int:
        # every session of the account but `keep` (the one changing the password stays)
        return await self._single(lambda tx: tx.run(
            "DELETE FROM web_sessions WHERE account_id = ? AND id <> coalesce(?, '')",
            (account_id, keep),
        ))

    async def web_sessions_purge(self, now: float) -> int:
        return await self._single(
            lambda tx: tx.run("DELETE FROM web_sessions WHERE expires <= ?", (float(now),))
        )

    async def account_setting(self, account_id: int, key: str) -> str | None:
        row = await self._view(lambda tx: tx.row(
            "SELECT value FROM account_settings WHERE account_id = ? AND key = ?",
            (account_id, key),
        ))
        return None if row is None else str(row[0])

    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None:
        async def op(tx: Tx) -> None:
            await _account_exists(tx, account_id)
            if value is None:
                await tx.run(
                    "DELETE FROM account_settings WHERE account_id = ? AND key = ?",
                    (account_id, key),
                )
                return
            await tx.run(
                "INSERT INTO account_settings(account_id, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
                (account_id, key, value),
            )

        await self._unit(op)

    async def account_settings(self, key: str) -> dict[int, str]:
        rows = await self._view(lambda tx: tx.rows(
            "SELECT account_id, value FROM account_settings WHERE key = ?", (key,)
        ))
        return {int(r[0]): str(r[1]) for r in rows}

    async def app_password_add(self, account_id: int, label: str, digest: str) -> AppPassword:
        created = time.time()

        async def op(tx: Tx) -> int:
            await _account_exists(tx, account_id)
            row = await tx.row(
                "INSERT INTO app_passwords(account_id, label, digest, created)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (account_id, label, digest, created),
            )
            assert row is not None
            return int(row[0])

        return AppPassword(await self._unit(op), account_id, label, digest, created)

    async def app_passwords(self, account_id: int) -> list[AppPassword]:
        rows = await self._view(lambda tx: tx.rows(
            "SELECT id, account_id, label, digest, created FROM app_passwords"
            " WHERE account_id = ? ORDER BY id", (account_id,),
        ))
        return [AppPassword(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]))
                for r in rows]  # fmt: skip

    async def app_password_delete(self, account_id: int, password_id: int) -> bool:
        n = await self._single(lambda tx: tx.run(
            "DELETE FROM app_passwords WHERE account_id = ? AND id = ?",
            (account_id, password_id),
        ))
        return n > 0
