"""Minimal asyncio protocol clients used by the load generators (no third-party code)."""

from __future__ import annotations


def source_address(process: int, k: int, spread: int = 1000) -> str:
    """A loopback source address for client ``k`` of load process ``process``.

    Many clients come from many addresses in real life; servers limit logins and connections
    per address (Mailwright allows two password checks in flight per address), so sessions are
    spread round-robin over ``spread`` addresses of 127.0.0.0/8 (all routed to lo on Linux).
    """
    i = k % spread
    return f"127.{10 + process % 200}.{i // 250}.{i % 250 + 1}"
