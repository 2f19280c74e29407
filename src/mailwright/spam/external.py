"""Optional external engines, for operators who already run one: rspamd and SpamAssassin.

Each is one more test feeding the same score. rspamd is asked over its HTTP protocol
(`POST /checkv2`, the message as the body, envelope facts in request headers); SpamAssassin's
spamd through aiospamc (the SPAMC/SPAMD protocol's CHECK). Their scores are on their own
scales, so each is mapped onto ours by its own threshold: an engine at its threshold adds 5
points (our junk threshold), and a negative score subtracts at most 2. An engine that is down
or slow adds nothing (the built-in tests still decide) and is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

import h11

from .checks import Reason

__all__ = ["ask_rspamd", "ask_spamd"]

log = logging.getLogger("mailwright.spam")
MAX_RESPONSE = 1024 * 1024


def _mapped(score: float, threshold: float) -> float:
    if threshold <= 0:
        threshold = 5.0
    points = 5.0 * score / threshold
    return round(max(-2.0, min(points, 8.0)), 1)


async def ask_rspamd(
    url: str, message: bytes, *, peer_ip: str, helo: str, sender: str,
    recipients: list[str], timeout: float,
) -> Reason | None:  # fmt: skip
    """rspamd's opinion through `/checkv2`, as a Reason (None when it cannot be had)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 11333
    headers = [("Host", f"{host}:{port}"), ("Content-Length", str(len(message))),
               ("Connection", "close"), ("IP", peer_ip), ("Helo", helo or "unknown"),
               ("From", sender or "<>")]  # fmt: skip
    headers += [("Rcpt", r) for r in recipients[:50]]
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE)
                writer.write(conn.send(h11.Request(method="POST", target="/checkv2",
                                                   headers=headers)))  # fmt: skip
                writer.write(conn.send(h11.Data(data=message)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                body = bytearray()
                status = 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                        continue
                    if isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_RESPONSE:
                            raise ValueError("response too large")
                    elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        break
            finally:
                writer.close()
        if status != 200:
            raise ValueError(f"HTTP status {status}")
        answer = json.loads(bytes(body))
        score = float(answer.get("score", 0.0))
        required = float(answer.get("required_score", 15.0))
        symbols = answer.get("symbols") or {}
        top = sorted(symbols.values(), key=lambda s: -abs(float(s.get("score", 0))))[:3]
        names = ", ".join(str(s.get("name")) for s in top)
    except (OSError, TimeoutError, ValueError, h11.ProtocolError) as exc:
        log.warning("rspamd at %s gave no answer: %s", url, exc)
        return None
    return Reason("RSPAMD", _mapped(score, required),
                  f"rspamd score {score:.1f} of {required:.1f} ({names or 'no symbols'})")  # fmt: skip


async def ask_spamd(address: str, message: bytes, *, timeout: float) -> Reason | None:
    """SpamAssassin's opinion through spamd (CHECK), as a Reason."""
    import aiospamc
    from aiospamc.connections import Timeout

    host, _, port = address.rpartition(":")
    try:
        response = await aiospamc.check(
            message, host=host or "127.0.0.1", port=int(port), timeout=Timeout(total=timeout)
        )
        spam = response.headers["Spam"]
        score, threshold = float(spam.score), float(spam.threshold)
    except Exception as exc:  # noqa: BLE001 - aiospamc raises many types; all mean "no answer"
        log.warning("spamd at %s gave no answer: %s", address, exc)
        return None
    return Reason("SPAMASSASSIN", _mapped(score, threshold),
                  f"SpamAssassin score {score:.1f} of {threshold:.1f}")  # fmt: skip
