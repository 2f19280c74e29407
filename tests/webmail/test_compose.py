"""Building messages from the compose form, replies and forwards (pure)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from mailwright.mime import parse_message
from mailwright.web.webmail.compose import (
    ComposeError,
    Draft,
    Upload,
    build_message,
    forward_draft,
    recipients,
    reply_draft,
)
from mailwright.web.webmail.message import message_view

WHEN = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_build_message_headers_and_attachment() -> None:
    draft = Draft(from_addr="alice@example.test", from_name="Alice Ünicode",
                  to="Bob <bob@example.org>; carol@example.org", cc="dan@example.org",
                  bcc="eve@example.org", subject="Réunion  demain", body="Salut\nà demain",
                  attachments=(Upload("plan.pdf", "application/pdf", b"%PDF-1.4\n"),))
    data, mid = build_message(draft, hostname="mail.example.test", date=WHEN)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert data.isascii()
    msg = _parse(data)
    assert msg["From"] == "Alice Ünicode <alice@example.test>"
    assert msg["To"] == "Bob <bob@example.org>, carol@example.org"
    assert msg["Bcc"] is None  # never in the copy sent
    assert msg["Subject"] == "Réunion demain"
    assert msg["Message-ID"] == mid and mid.endswith("@mail.example.test>")
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content() == "Salut\r\nà demain\r\n"
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "plan.pdf" and att.get_content() == b"%PDF-1.4\n"
    kept, _ = build_message(draft, hostname="h", keep_bcc=True)
    assert _parse(kept)["Bcc"] == "eve@example.org"


def test_recipients_all_fields_once() -> None:
    draft = Draft(to="a@example.org, B@Example.org", cc="b@example.org", bcc="c@example.org")
    assert recipients(draft) == ["a@example.org", "b@example.org", "c@example.org"]


@pytest.mark.parametrize("to", ["not an address", "Bob <>", "a@b@c", "x@[1.2.3.4"])
def test_recipients_refuses_bad(to: str) -> None:
    with pytest.raises(ComposeError):
        recipients(Draft(to=to))


def test_build_message_header_injection_is_folded_away() -> None:
    draft = Draft(from_addr="a@example.test", to="b@example.org",
                  subject="hi\r\nBcc: victim@example.org")
    msg = _parse(build_message(draft, hostname="h")[0])
    assert msg["Bcc"] is None and "victim" in msg["Subject"]


ORIGINAL = (b"From: Bob <bob@example.org>\r\nTo: alice@example.test, carol@example.org\r\n"
            b"Cc: dan@example.org, Alice <ALICE@example.test>\r\nSubject: Plans\r\n"
            b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <p2@example.org>\r\n"
            b"References: <p0@example.org> <p1@example.org>\r\n\r\nLine one\r\n\r\nLine two\r\n")


def test_reply_draft() -> None:
    view = message_view(parse_message(ORIGINAL), ORIGINAL)
    draft = reply_draft(view, own={"alice@example.test"}, identity="alice@example.test")
    assert draft.to == "Bob <bob@example.org>" and draft.cc == ""
    assert draft.subject == "Re: Plans" and draft.in_reply_to == "<p2@example.org>"
    assert draft.references == ("<p0@example.org>", "<p1@example.org>", "<p2@example.org>")
    assert "Bob <bob@example.org> wrote:\n> Line one\n>\n> Line two" in draft.body
    msg = _parse(build_message(draft, hostname="h")[0])
    assert msg["In-Reply-To"] == "<p2@example.org>"
    assert msg["References"] == "<p0@example.org> <p1@example.org> <p2@example.org>"


def test_reply_all_drops_own_addresses() -> None:
    view = message_view(parse_message(ORIGINAL), ORIGINAL)
    draft = reply_draft(view, own={"alice@example.test"}, identity="alice@example.test",
                        reply_all=True)
    assert draft.to == "Bob <bob@example.org>"
    assert draft.cc == "carol@example.org, dan@example.org"
    again = reply_draft(message_view(parse_message(ORIGINAL.replace(b"Plans", b"RE: Plans")),
                                     ORIGINAL), own=set(), identity="x@example.test")
    assert again.subject == "RE: Plans"


def test_forward_draft() -> None:
    view = message_view(parse_message(ORIGINAL), ORIGINAL)
    draft = forward_draft(view, identity="alice@example.test")
    assert draft.subject == "Fwd: Plans" and draft.to == ""
    assert "---------- Forwarded message ----------" in draft.body
    assert "From: Bob <bob@example.org>" in draft.body and "Line two" in draft.body
