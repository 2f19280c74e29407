"""The webmail in a real browser: Debian's chromium driven by Playwright, on `mailwright serve`.

Mail arrives through the server's own MX port (a real SMTP client), is read, answered and
searched through the pages, found by accessible names and roles as a screen reader would.
The XSS corpus is mailed and read: no dialog may open and no request may leave for the
payloads' host, or for any host but the server's.
"""

from __future__ import annotations

import os
import re
import smtplib
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from tests.support.browser import USER, base_url, browser, page, sign_in, web_server
from tests.support.server import MailwrightServer
from tests.webmail.xss_corpus import PAYLOADS, REMOTE

__all__ = ["browser", "page", "web_server"]  # fixtures

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


def deliver(srv: MailwrightServer, msg: EmailMessage, to: str = USER) -> None:
    """Through the MX port, as mail from the world arrives."""
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        s.ehlo("sender.example.org")
        s.send_message(msg, from_addr="someone@sender.example.org", to_addrs=[to])


def message(subject: str, text: str = "Hello there.", *, html: str | None = None,
            sender: str = "Bob Sender <bob@sender.example.org>",
            attachment: tuple[str, bytes] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = USER
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash((subject, time.time())))}@sender.example.org>"
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment[1], maintype="application", subtype="octet-stream",
                           filename=attachment[0])
    return msg


def stored(srv: MailwrightServer, address: str, mailbox: str = "INBOX") -> list[EmailMessage]:
    """`srv.messages` from a thread of its own (Playwright's sync API runs an event loop here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(srv.messages, address, mailbox).result()


def shoot(page: Page, name: str) -> None:
    """A screenshot for docs/web.md, taken when MAILWRIGHT_SCREENSHOTS=1 (the docs show what
    the tests saw; an ordinary run leaves the source tree alone)."""
    if os.environ.get("MAILWRIGHT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _open(page: Page, subject: str) -> None:
    page.goto("/webmail/")
    page.get_by_role("link", name=subject).first.click()
    expect(page.get_by_role("heading", name=subject, level=1)).to_be_visible()


def test_webmail_read_plain_and_html_with_attachment(page: Page,
                                                     web_server: MailwrightServer) -> None:
    deliver(web_server, message("Quarterly numbers", "Plain version of the numbers.",
                                html="<p>The <b>numbers</b> are in.</p>"
                                     f'<img src="https://{REMOTE}/pixel.png" alt="pixel">',
                                attachment=("numbers.csv", b"a,b\n1,2\n")))
    sign_in(page)
    page.goto("/webmail/")
    inbox = page.get_by_role("navigation", name="Folders")
    expect(inbox.get_by_role("link", name="Inbox")).to_contain_text("1")
    _open(page, "Quarterly numbers")
    frame = page.frame_locator("iframe[title='Message content']")
    expect(frame.locator("b")).to_have_text("numbers")
    expect(page.get_by_role("status")).to_contain_text("1 remote image blocked")
    with page.expect_download() as info:
        page.get_by_role("link", name="numbers.csv").click()
    download = info.value
    assert download.suggested_filename == "numbers.csv"
    assert Path(download.path()).read_bytes() == b"a,b\n1,2\n"
    page.get_by_role("link", name="Show plain text").click()
    expect(page.get_by_label("Message text")).to_contain_text("Plain version of the numbers.")
    href = page.get_by_role("link", name="numbers.csv").get_attribute("href")
    assert href is not None
    response = page.request.get(href)
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    page.get_by_role("link", name="Show formatted (HTML)").click()
    expect(frame.locator("b")).to_have_text("numbers")
    shoot(page, "webmail-read")


def test_webmail_compose_with_attachment_and_reply(page: Page,
                                                   web_server: MailwrightServer,
                                                   tmp_path: Path) -> None:
    web_server.add_user("carol@example.test")
    sign_in(page)
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("To", exact=True).fill("carol@example.test")
    page.get_by_label("Subject").fill("Holiday photos")
    page.get_by_label("Message").fill("Here they are.")
    photo = tmp_path / "beach.txt"
    photo.write_bytes(b"sand and sea")
    page.get_by_label("Attach files").set_input_files(str(photo))
    shoot(page, "webmail-compose")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").first).to_contain_text("Message sent")
    (received,) = [m for m in stored(web_server, "carol@example.test")
                   if m["Subject"] == "Holiday photos"]
    (att,) = list(received.iter_attachments())
    assert att.get_filename() == "beach.txt" and att.get_content() in (b"sand and sea",
                                                                      "sand and sea")
    sent = [m for m in stored(web_server, USER, "Sent") if m["Subject"] == "Holiday photos"]
    assert len(sent) == 1

    # carol answers; alice replies to the answer
    deliver(web_server, message("Re: Holiday photos", "Lovely!\nMore please.",
                                sender="Carol <carol@example.test>"))
    _open(page, "Re: Holiday photos")
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.get_by_label("To", exact=True)).to_have_value("Carol <carol@example.test>")
    expect(page.get_by_label("Subject")).to_have_value("Re: Holiday photos")
    body = page.get_by_label("Message")
    expect(body).to_have_value(re.compile(r"> Lovely!\n> More please."))
    body.press("Control+Home")
    body.type("Tomorrow. ")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").first).to_contain_text("Message sent")
    reply = [m for m in stored(web_server, "carol@example.test")
             if m["Subject"] == "Re: Holiday photos" and m["In-Reply-To"]]
    assert len(reply) == 1 and "Tomorrow." in reply[0].get_body().get_content()


def _png() -> bytes:
    """A 2x2 red PNG (made here, so the test needs no image file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_webmail_inline_cid_image(page: Page, web_server: MailwrightServer) -> None:
    msg = message("Logo inside", "see the logo",
                  html='<p>Logo: <img alt="our logo" src="cid:logo@sender.example.org"></p>')
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html_part.add_related(_png(), maintype="image", subtype="png", cid="<logo@sender.example.org>")
    deliver(web_server, msg)
    sign_in(page)
    _open(page, "Logo inside")
    image = page.frame_locator("iframe[title='Message content']").get_by_alt_text("our logo")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const d = document.querySelector('iframe').contentDocument;"
        " const i = d && d.querySelector('img'); return i && i.complete && i.naturalWidth === 2; }")


def test_webmail_search(page: Page, web_server: MailwrightServer) -> None:
    deliver(web_server, message("Invoice 4711", "Please pay the invoice."))
    deliver(web_server, message("Lunch plans", "Pizza at noon?"))
    sign_in(page)
    page.goto("/webmail/")
    shoot(page, "webmail-list")
    search = page.get_by_role("searchbox", name="Search mail")
    search.fill("pizza")
    search.press("Enter")
    messages = page.get_by_role("list", name="Messages")
    expect(messages).to_contain_text("Lunch plans")
    expect(messages).not_to_contain_text("Invoice 4711")
    search.fill("subject:invoice")
    search.press("Enter")
    expect(messages).to_contain_text("Invoice 4711")
    expect(messages).not_to_contain_text("Lunch plans")


def test_webmail_xss_corpus_in_browser(page: Page, web_server: MailwrightServer) -> None:
    html = "".join(f"<div>{payload}</div>" for _, payload in PAYLOADS)
    deliver(web_server, message("XSS corpus", "text version", html=html + "<p>END</p>"))
    dialogs: list[str] = []
    outside: list[str] = []
    origin = base_url(web_server)

    def watch(request: Request) -> None:
        if not request.url.startswith((origin, "data:", "about:")):
            outside.append(request.url)

    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", watch)
    sign_in(page)
    _open(page, "XSS corpus")
    frame = page.frame_locator("iframe[title='Message content']")
    expect(frame.locator("p", has_text="END")).to_be_visible()
    page.wait_for_load_state("networkidle")
    for link in frame.locator("a").all():
        href = link.get_attribute("href") or ""
        assert not href.lower().lstrip().startswith(("javascript", "data", "vbscript"))
    # (the frame document's own head has meta tags; the mail is the body)
    assert frame.locator("script, body iframe, body object, body embed, body svg, body form, body meta, base").count() == 0
    assert dialogs == [] and outside == [], (dialogs, outside)
    # even when the user asks for remote images, no script runs
    page.get_by_role("link", name="Load remote images").click()
    expect(frame.locator("p", has_text="END")).to_be_visible()
    assert dialogs == []


@pytest.mark.parametrize("width", [390])
def test_webmail_phone_and_keyboard(page: Page, web_server: MailwrightServer,
                                    width: int) -> None:
    deliver(web_server, message("Small screen", "Fits a phone."))
    sign_in(page)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto("/webmail/")
    messages = page.get_by_role("list", name="Messages")
    expect(messages).to_contain_text("Small screen")
    box = messages.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    shoot(page, "webmail-phone")
    page.keyboard.press("j")  # the newest message, this one
    page.keyboard.press("o")
    expect(page.get_by_role("heading", name="Small screen", level=1)).to_be_visible()
    page.wait_for_load_state("load")
    page.keyboard.press("c")
    expect(page.get_by_role("heading", name="New message")).to_be_visible()


def test_webmail_forward_with_attachments_and_completion(page: Page,
                                                         web_server: MailwrightServer) -> None:
    web_server.add_user("dave@example.test")
    deliver(web_server, message("Signed contract", "See attached.",
                                attachment=("contract.pdf", b"%PDF-1.4 contract")))
    deliver(web_server, message("From Dave", sender="Dave Doe <dave@example.test>"))
    sign_in(page)
    _open(page, "Signed contract")
    page.get_by_role("link", name="Forward").click()
    page.wait_for_load_state()  # the page's script listens for typing once it has run
    expect(page.get_by_label("Subject")).to_have_value("Fwd: Signed contract")
    expect(page.get_by_label("contract.pdf")).to_be_checked()
    to = page.get_by_label("To", exact=True)
    to.press_sequentially("dav")
    # address completion from the history: Dave wrote to us
    expect(page.locator("#contacts option").first).to_have_attribute(
        "value", "Dave Doe <dave@example.test>, ")
    to.fill("dave@example.test")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").first).to_contain_text("Message sent")
    (fwd,) = [m for m in stored(web_server, "dave@example.test")
              if m["Subject"] == "Fwd: Signed contract"]
    (att,) = list(fwd.iter_attachments())
    assert att.get_filename() == "contract.pdf"
    assert att.get_content() == b"%PDF-1.4 contract"


def test_webmail_draft_saved_while_typing(page: Page, web_server: MailwrightServer) -> None:
    sign_in(page)
    page.get_by_role("link", name="Compose").click()
    page.wait_for_load_state()
    page.get_by_label("Subject").fill("Unfinished thoughts")
    page.get_by_label("Message").press_sequentially("Half a sentence")
    expect(page.locator("#compose-status")).to_have_text("Draft saved", timeout=20_000)
    drafts = [m for m in stored(web_server, USER, "Drafts")
              if m["Subject"] == "Unfinished thoughts"]
    assert len(drafts) == 1
    # typing on replaces the draft, it does not add a second one
    page.get_by_label("Message").press_sequentially(" and the rest.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status").first).to_contain_text("Draft saved")
    drafts = [m for m in stored(web_server, USER, "Drafts")
              if m["Subject"] == "Unfinished thoughts"]
    assert len(drafts) == 1
    assert "Half a sentence and the rest." in drafts[0].get_body().get_content()
    page.goto("/webmail/")
    page.get_by_role("navigation", name="Folders").get_by_role("link", name="Drafts").click()
    page.get_by_role("link", name="Unfinished thoughts").click()
    expect(page.get_by_label("Message")).to_have_value("Half a sentence and the rest.")


def test_webmail_live_update_and_bulk_actions(page: Page, web_server: MailwrightServer) -> None:
    deliver(web_server, message("Before watching"))
    sign_in(page)
    page.goto("/webmail/")
    messages = page.get_by_role("list", name="Messages")
    expect(messages).to_contain_text("Before watching")
    page.wait_for_load_state()  # the event stream opens once the page's script has run
    deliver(web_server, message("Arrived while watching", sender="Erin <erin@example.org>"))
    deliver(web_server, message("Second arrival", sender="Erin <erin@example.org>"))
    # no reload: the change hub's event brings the new messages in
    expect(messages).to_contain_text("Second arrival", timeout=20_000)
    expect(messages).to_contain_text("Arrived while watching")
    page.get_by_label("Select Erin: Arrived while watching").check()
    page.get_by_label("Select Erin: Second arrival").check()
    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("status").first).to_contain_text("2 messages: archived")
    expect(page.get_by_role("list", name="Messages")).not_to_contain_text("Second arrival")
    page.get_by_role("navigation", name="Folders").get_by_role("link", name="Archive").click()
    expect(page.get_by_role("list", name="Messages")).to_contain_text("Second arrival")
    page.get_by_label("Select Erin: Second arrival").check()
    page.get_by_label("Move to folder").select_option(label="Trash")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("1 message: moved")
    expect(page.get_by_role("list", name="Messages")).not_to_contain_text("Second arrival")


def test_webmail_other_accounts_mail_is_not_found(page: Page,
                                                  web_server: MailwrightServer) -> None:
    web_server.add_user("frank@example.test")
    sign_in(page, "frank@example.test")
    page.goto("/webmail/")
    mine = page.get_by_role("navigation", name="Folders").get_by_role("link", name="Inbox")
    frank_inbox = int((mine.get_attribute("href") or "").rsplit("/", 1)[1])
    # alice's INBOX has a smaller id; every URL naming it answers 404 to frank
    for path in ("/webmail/f/1", "/webmail/m/1/1", "/webmail/m/1/1/html",
                 "/webmail/m/1/1/part/1", "/webmail/compose?reply=1:1"):
        assert frank_inbox != 1
        assert page.request.get(path).status == 404, path
