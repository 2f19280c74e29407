"""Outbound delivery: the persistent queue (service), the SMTP client driver (smtp) and
delivery status notifications (bounce). RFC 5321 4.5.4 (retries), RFC 3461/3464 (DSN)."""

from __future__ import annotations

from mailwright.proto.smtpclient import Recipient

__all__ = ["Recipient"]
