"""RFC 3464 delivery status notifications."""

from __future__ import annotations

import datetime
import email
import email.policy
from email.message import EmailMessage

import pytest

from mailwright.queue.bounce import Action, DSNRecipient, build_dsn, wants_notification

ORIGINAL = (b"From: alice@sender.test\r\nTo: bob@recipient.test\r\nSubject: lunch\r\n"
            b"Message-ID: <m1@sender.test>\r\n\r\nSee you at noon.\r\n")
WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_bounce_structure_headers_only() -> None:
    data = build_dsn(
        reporting_mta="mail.sender.test", sender="alice@sender.test",
        recipients=[DSNRecipient("bob@recipient.test", Action.FAILED, "5.1.1",
                                 "smtp; 550 5.1.1 no such user\r\nInjected: x",
                                 remote_mta="mx.recipient.test",
                                 original_recipient=("rfc822", "bob@recipient.test"),
                                 last_attempt=WHEN)],
        original=ORIGINAL, envid="ENV1", arrival_date=WHEN, now=WHEN)
    assert data is not None
    msg = parse(data)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "alice@sender.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert "MAILER-DAEMON@mail.sender.test" in msg["From"]
    human, status, returned = msg.iter_parts()
    assert human.get_content_type() == "text/plain"
    text = human.get_content()
    assert "bob@recipient.test" in text and "550 5.1.1 no such user" in text
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    assert blocks[0]["Reporting-MTA"] == "dns; mail.sender.test"
    assert blocks[0]["Original-Envelope-Id"] == "ENV1"
    assert blocks[1]["Final-Recipient"] == "rfc822; bob@recipient.test"
    assert blocks[1]["Original-Recipient"] == "rfc822; bob@recipient.test"
    assert blocks[1]["Action"] == "failed"
    assert blocks[1]["Status"] == "5.1.1"
    assert blocks[1]["Remote-MTA"] == "dns; mx.recipient.test"
    assert blocks[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user Injected: x"
    assert blocks[1]["Injected"] is None
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"Subject: lunch" in returned.get_payload(decode=True) or "Subject: lunch" in str(
        returned)
    assert b"See you at noon" not in data


def test_bounce_full_message_when_ret_full() -> None:
    data = build_dsn(reporting_mta="m.test", sender="a@s.test",
                     recipients=[DSNRecipient("b@r.test", Action.FAILED, "5.0.0", "boom")],
                     original=ORIGINAL, ret="FULL")
    assert data is not None
    msg = parse(data)
    returned = list(msg.iter_parts())[2]
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Subject"] == "lunch"
    assert b"See you at noon" in data
    blocks = list(msg.iter_parts())[1].get_payload()
    assert blocks[1]["Diagnostic-Code"] == "X-Mailwright; boom"


def test_bounce_never_to_null_sender() -> None:
    assert build_dsn(reporting_mta="m.test", sender="",
                     recipients=[DSNRecipient("b@r.test", Action.FAILED, "5.0.0")],
                     original=ORIGINAL) is None
    assert build_dsn(reporting_mta="m.test", sender="a@s.test", recipients=[],
                     original=ORIGINAL) is None


def test_bounce_delay_warning() -> None:
    data = build_dsn(reporting_mta="m.test", sender="a@s.test", recipients=[
        DSNRecipient("b@r.test", Action.DELAYED, "4.4.1", "connect failed",
                     will_retry_until=WHEN)], original=ORIGINAL, ret="FULL")
    assert data is not None
    msg = parse(data)
    assert msg["Subject"].startswith("Delayed Mail")
    human, status, returned = msg.iter_parts()
    assert "will keep trying" in human.get_content()
    assert status.get_payload()[1]["Action"] == "delayed"
    assert status.get_payload()[1]["Will-Retry-Until"]
    assert returned.get_content_type() == "text/rfc822-headers"  # never the body in a warning


def test_bounce_utf8_recipient_uses_global_types() -> None:
    data = build_dsn(reporting_mta="m.test", sender="a@s.test",
                     recipients=[DSNRecipient("jöran@r.test", Action.FAILED, "5.6.7", "x")],
                     original=ORIGINAL)
    assert data is not None
    assert b"message/global-delivery-status" in data
    assert "Final-Recipient: utf-8; jöran@r.test".encode() in data


@pytest.mark.parametrize(
    ("notify", "action", "expected"),
    [
        (None, Action.FAILED, True),
        (None, Action.DELAYED, True),
        (None, Action.DELIVERED, False),
        (("NEVER",), Action.FAILED, False),
        (("SUCCESS",), Action.FAILED, False),
        (("SUCCESS",), Action.RELAYED, True),
        (("FAILURE", "DELAY"), Action.DELAYED, True),
        (("failure",), Action.FAILED, True),
    ],
)
def test_bounce_notify(notify: tuple[str, ...] | None, action: Action, expected: bool) -> None:
    assert wants_notification(notify, action) is expected
