"""FETCH PREVIEW (RFC 8970): the server-made text preview of a message."""

from __future__ import annotations

from pathlib import Path

from imap_harness import imap_server, message
from tests.support.backends import Backend

ALTERNATIVE = (
    b"From: a@example.test\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>the html one</p>\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    b"\r\nGr=C3=BC=C3=9Fe,\r\n  the   plain one\r\n--b--\r\n"
)
HTML_ONLY = (
    b"From: a@example.test\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    b"<html><head><style>p {color: red}</style></head><body><p>Fish &amp; chips</p>"
    b"<!-- hidden --><script>x()</script>today</body></html>\r\n"
)
IMAGE_ONLY = (
    b"From: a@example.test\r\nSubject: pic\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
)
ATTACHED_TEXT = (
    b"From: a@example.test\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
    b"--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\n"
    b"not this\r\n--m--\r\n"
)


async def test_preview_fetch(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1, body="  hello\r\n\r\n  world"))
        await srv.deliver(acc, ALTERNATIVE)
        await srv.deliver(acc, HTML_ONLY)
        await srv.deliver(acc, IMAGE_ONLY)
        await srv.deliver(acc, message(5, body="x" * 300))
        await srv.deliver(acc, ATTACHED_TEXT)
        c = await srv.connected()
        caps = (await c.cmd("a CAPABILITY"))[0].split()
        assert b"PREVIEW" in caps
        await c.cmd("b SELECT INBOX")
        out = await c.cmd("c FETCH 1:6 (PREVIEW)")
        assert out[0] == b'* 1 FETCH (PREVIEW "hello world 1")'
        # text/plain preferred in an alternative; decoded; UTF-8 goes in a literal
        plain = "Grüße, the plain one".encode()
        assert out[1] == b"* 2 FETCH (PREVIEW {%d}\r\n%s)" % (len(plain), plain)
        assert out[2] == b'* 3 FETCH (PREVIEW "Fish & chips today")'
        # nothing to show: the empty string (RFC 8970 3.2)
        assert out[3] == b'* 4 FETCH (PREVIEW "")'
        assert out[4] == b'* 5 FETCH (PREVIEW "%s")' % (b"x" * 256)
        assert out[5] == b'* 6 FETCH (PREVIEW "")'
        # LAZY: ours is always at hand
        out = await c.cmd("d FETCH 1 (UID PREVIEW (LAZY) FLAGS)")
        assert out[0] == b'* 1 FETCH (UID 1 PREVIEW "hello world 1" FLAGS (\\Recent))'
        # a preview is not a read: \Seen stays unset
        out = await c.cmd("e FETCH 1 PREVIEW (CHANGEDSINCE 1)")
        assert out[0].startswith(b'* 1 FETCH (PREVIEW "hello world 1" MODSEQ (')
        assert (await c.cmd("f FETCH 1 (PREVIEW (SOON))"))[-1].startswith(b"f BAD")
        assert (await c.cmd("g SEARCH SEEN"))[0] == b"* SEARCH"
