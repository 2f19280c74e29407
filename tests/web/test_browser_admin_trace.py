"""The message trace and the spam settings in a real browser, on a server that really sends:
an administrator submits a message over SMTP and traces it by Message-ID and by queue id; a
remote failure shows as deferred or bounced with its reason; a junk threshold changed on the
spam page changes the verdict of the next message the MX takes."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import ADMIN, USER, base_url, sign_in
from tests.support.dnsserver import DNSServer
from tests.support.server import PASSWORD, MailwrightServer, free_port_base, wait_for


def _cli_output(srv: MailwrightServer, *args: str) -> str:
    """A command's output, or "" while it fails (`trace` exits 1 until the event is written:
    a wait must keep polling then, not fail at the first look)."""
    try:
        return srv.cli(*args)
    except AssertionError:
        return ""


@pytest.fixture(scope="module")
def trace_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    with DNSServer() as dns:
        dns.add("nullmx.test", "MX", "0 .")  # RFC 7505: accepts no mail, a permanent failure
        dns.add("down.test", "MX", "10 mx.down.test.")
        dns.add("mx.down.test", "A", "127.0.0.1")
        srv = MailwrightServer(Path(tmp_path_factory.mktemp("trace")))
        srv.use_dns(dns.config_value)
        # down.test's MX port: nothing listens there, so every attempt fails for now
        srv.set_outbound(port=free_port_base() + 25, retry_schedule=("1h",))
        srv.add_user(USER)
        srv.add_user(ADMIN)
        srv.cli("user", "set", ADMIN, "--admin", "yes")
        srv.start()
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture
def admin_page(browser: Browser, trace_server: MailwrightServer) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, base_url=base_url(trace_server),
                                  viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, ADMIN)
        yield page
    finally:
        context.close()


def _tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _message(sender: str, to: list[str], subject: str, message_id: str,
             body: str = "Hello, this is a message for the trace.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(body)
    return msg.as_bytes()


def _queue_id(reply: bytes) -> str:
    text = reply.decode()
    assert "queued as " in text, text
    return text.rsplit("queued as ", 1)[1].strip()


def submit(srv: MailwrightServer, to: list[str], message_id: str) -> str:
    """ADMIN submits over implicit TLS with AUTH; the queue id of the reply."""
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), timeout=30,
                          context=_tls()) as client:
        client.login(ADMIN, PASSWORD)
        client.mail(ADMIN)
        for rcpt in to:
            assert client.rcpt(rcpt)[0] == 250
        code, reply = client.data(_message(ADMIN, to, "Trace me", message_id))
        assert code == 250, reply
        return _queue_id(reply)


def mx_send(srv: MailwrightServer, message_id: str) -> str:
    """A message from the world to USER through the MX; the queue id of the reply."""
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as client:
        client.ehlo("client.remote.test")
        client.mail("news@sender.example")
        assert client.rcpt(USER)[0] == 250
        code, reply = client.data(_message("news@sender.example", [USER], "Weekly news",
                                           message_id))
        assert code == 250, reply
        return _queue_id(reply)


def message_ids(srv: MailwrightServer, address: str, mailbox: str) -> list[str]:
    """The Message-IDs in a mailbox (read in a thread: Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(1) as pool:
        found = pool.submit(srv.messages, address, mailbox).result()
    return [str(m["Message-ID"]) for m in found]


def trace(page: Page, key: str) -> None:
    page.goto("/admin/trace")
    page.get_by_label("Message-ID or queue id").fill(key)
    page.get_by_role("button", name="Trace").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()


def _rows(page: Page) -> list[str]:
    """The timeline's entries, each as one line of text."""
    timeline = page.get_by_role("region", name="Timeline").get_by_role("listitem")
    return [" ".join(t.split()) for t in timeline.all_inner_texts()]


def test_admin_traces_a_submitted_message_by_message_id_and_queue_id(
        admin_page: Page, trace_server: MailwrightServer) -> None:
    page = admin_page
    qid = submit(trace_server, [USER, "bob@nullmx.test", "carol@down.test"],
                 "trace-1@example.test")
    # the remote attempts happen in the background: wait until both have a result
    def settled() -> bool:
        out = trace_server.cli("trace", qid, expect=0)
        return "bounced" in out and "deferred" in out

    wait_for("both remote attempts", settled)

    trace(page, "<trace-1@example.test>")
    rows = _rows(page)
    assert rows[0].split()[2] == "Accepted", rows
    assert "submission from [127.0.0.1]" in rows[0] and f"as {ADMIN} with TLS" in rows[0]
    assert "sender <root@example.test>" in rows[0], rows
    assert any("Delivered" in r and "into INBOX of alice@example.test" in r for r in rows), rows
    assert sum("Queued" in r for r in rows) == 2, rows
    bounced = [r for r in rows if "Bounced" in r]
    assert bounced and "bob@nullmx.test" in bounced[0] and "5.1.10" in bounced[0], rows
    deferred = [r for r in rows if "Deferred" in r]
    assert deferred and "carol@down.test" in deferred[0] and "next attempt" in deferred[0], rows
    expect(page.get_by_role("status")).to_contain_text(qid)

    # the same timeline by queue id (lower case too), and from the command line
    trace(page, qid.lower())
    assert _rows(page) == rows
    out = trace_server.cli("trace", qid)
    assert out.splitlines()[0] == "message-id <trace-1@example.test>"
    assert [line.split()[2] for line in out.splitlines()[1:]][:1] == ["accepted"]
    assert "bounced" in out and "deferred" in out and "dsn" in out

    # nothing known
    page.goto("/admin/trace?q=nothing-here%40example.test")
    expect(page.get_by_role("status")).to_contain_text("Nothing is known about")
    trace_server.cli("trace", "nothing-here@example.test", expect=1)


def test_spam_threshold_changes_the_next_verdict(admin_page: Page,
                                                 trace_server: MailwrightServer) -> None:
    page = admin_page
    before = mx_send(trace_server, "news-1@sender.example")
    trace(page, before)
    accepted = next(r for r in _rows(page) if "Accepted" in r)
    assert "verdict ham" in accepted, accepted
    assert "news-1@sender.example" in page.get_by_role("status").inner_text()

    page.goto("/admin/spam")
    junk = page.get_by_label("Junk threshold", exact=True)
    expect(junk).to_have_value("5.0")
    expect(page.locator("#s-junk_threshold-help")).to_contain_text("Source: default")
    # validation: the reject threshold must stay above the junk threshold
    junk.fill("20")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("must be above junk_threshold")
    page.get_by_label("Junk threshold", exact=True).fill("not a number")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("'not a number' is not a number")
    # everything is junk from now on
    page.get_by_label("Junk threshold", exact=True).fill("-50")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved the spam settings")
    expect(page.get_by_label("Junk threshold", exact=True)).to_have_value("-50.0")
    expect(page.locator("#s-junk_threshold-help")).to_contain_text("Source: set here")

    after = mx_send(trace_server, "news-2@sender.example")
    trace(page, "news-2@sender.example")
    rows = _rows(page)
    assert any("Accepted" in r and "verdict junk" in r and "junk at -50.0" in r
               for r in rows), rows
    assert any("Filtered" in r and "into Junk" in r for r in rows), rows
    assert any("Delivered" in r and "into Junk of alice@example.test" in r for r in rows), rows
    assert after != before
    assert message_ids(trace_server, USER, "Junk") == ["<news-2@sender.example>"]

    # refused at the end of DATA: the trace says why
    page.goto("/admin/spam")
    page.get_by_label("Reject threshold", exact=True).fill("-40")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved the spam settings")
    with smtplib.SMTP("127.0.0.1", trace_server.port("smtp"), timeout=30) as client:
        client.ehlo("client.remote.test")
        client.mail("news@sender.example")
        client.rcpt(USER)
        code, reply = client.data(_message("news@sender.example", [USER], "More news",
                                           "news-refused@sender.example"))
    assert code == 554 and b"refused as spam" in reply, reply
    wait_for("the refusal's trace",
             lambda: "rejected" in _cli_output(trace_server, "trace", "news-refused@sender.example"))
    trace(page, "news-refused@sender.example")
    (refused,) = _rows(page)
    assert "Rejected" in refused and "554 5.7.1 Message refused as spam" in refused, refused
    assert "verdict reject" in refused and USER in refused, refused

    # back to the configured values
    page.goto("/admin/spam")
    page.get_by_role("button", name="Use the configured reject_threshold").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    page.get_by_role("button", name="Use the configured junk_threshold").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.get_by_label("Junk threshold", exact=True)).to_have_value("5.0")
    mx_send(trace_server, "news-3@sender.example")
    assert [m for m in message_ids(trace_server, USER, "INBOX")
            if "news-" in m] == ["<news-1@sender.example>", "<news-3@sender.example>"]


def test_non_admin_gets_403_on_trace_and_spam(browser: Browser,
                                               trace_server: MailwrightServer) -> None:
    context = browser.new_context(ignore_https_errors=True, base_url=base_url(trace_server))
    try:
        page = context.new_page()
        sign_in(page, USER)
        for path in ("/admin/trace?q=x", "/admin/spam"):
            response = page.goto(path)
            assert response is not None and response.status == 403, path
            expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        context.close()
