"""CATENATE (RFC 4469) and URLAUTH (RFC 4467) through a real IMAP session on both store
backends: forwarding a message with its attachment without downloading it (parts byte-exact),
URLAUTH generation, verification, expiry and reset, and hostile input (another user's mailbox,
forged tokens, long URL lists, oversized results)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imap_harness import Client, imap_server, message
from tests.support.backends import Backend

from mailwright.imapd.session import SessionConfig
from mailwright.mime import imapfmt, parse_message
from mailwright.store.api import Store

HOST = "imap.example.test"
ALICE = "alice@example.test"
BOB = "bob@example.test"

ATTACHMENT = (b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURl\r\n"
              b"Y29kZT4+CnN0cmVhbQp4nCvkMlAwUDC1NNUzMVGwMDHSszRSKErlCtfiyuMCAGQhBcUKZW5k\r\n")
ORIGINAL = (
    b"From: Carol <carol@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: the report\r\n"
    b"Message-ID: <report@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Here is the report.\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b'Content-Disposition: attachment; filename="report.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + ATTACHMENT
    + b"--outer--\r\n"
)


def _lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


async def _messages(store: Store, account_id: int, mailbox: str) -> list[bytes]:
    mb = await store.get_mailbox(account_id, mailbox)
    assert mb is not None
    return [await store.read_blob(r.blob_id) for r in await store.list_messages(mb.id)]


def _part(raw: bytes, path: tuple[int, ...], text: str = "") -> bytes:
    return imapfmt.section_bytes(parse_message(raw), raw, path, text)


async def _tagged(c: Client, data: bytes, tag: str) -> list[bytes]:
    c.send(data)
    return [bytes(x) for x in await c.read_until(re.escape(tag.encode()) + rb" (OK|NO|BAD)")]


def _enc(address: str) -> str:
    return address.replace("@", "%40")


async def test_forward_with_attachment_is_byte_exact(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        uid = await srv.deliver(acc, ORIGINAL)
        inbox = await srv.store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        c = await srv.connected()
        head = (b"From: Alice <alice@example.test>\r\nTo: dave@example.test\r\n"
                b"Subject: Fwd: the report\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="fwd"\r\n\r\n'
                b"--fwd\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n--fwd\r\n")
        url = f"/INBOX;UIDVALIDITY={inbox.uidvalidity}/;UID={uid}"
        out = await _tagged(c, (
            b"f1 APPEND Sent (\\Seen) CATENATE (TEXT " + _lit(head)
            + f' URL "{url}/;SECTION=2.MIME" URL "{url}/;SECTION=2" TEXT '.encode()
            + _lit(b"\r\n--fwd--\r\n") + b")\r\n"), "f1")
        assert out[-1].startswith(b"f1 OK [APPENDUID "), out
        [sent] = await _messages(srv.store, acc, "Sent")
        # RFC 2046 5.1.1: the CRLF before a boundary belongs to the boundary, not the part
        assert sent == head + _part(ORIGINAL, (2,), "MIME") + ATTACHMENT[:-2] + b"\r\n--fwd--\r\n"
        # the attachment part is byte-exact, and so is its decoded content
        assert _part(sent, (2,)) == _part(ORIGINAL, (2,)) == ATTACHMENT[:-2]
        info = parse_message(sent)
        assert imapfmt.binary_section(info, sent, (2,)) == imapfmt.binary_section(
            parse_message(ORIGINAL), ORIGINAL, (2,))
        # the whole original message as a message/rfc822 part
        out = await _tagged(c, (
            b"f2 APPEND Drafts CATENATE (TEXT "
            + _lit(b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n")
            + f' URL "imap://{_enc(ALICE)}@{HOST}/INBOX/;UID={uid}")\r\n'.encode()), "f2")
        assert out[-1].startswith(b"f2 OK"), out
        [draft] = await _messages(srv.store, acc, "Drafts")
        assert draft.endswith(b"\r\n\r\n" + ORIGINAL)


async def test_urlauth_generate_fetch_expire_reset(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        alice = await srv.add_user(ALICE)
        await srv.add_user(BOB)
        uid = await srv.deliver(alice, ORIGINAL)
        a = await srv.connected(ALICE)
        b = await srv.connected(BOB)
        base = f"imap://{_enc(ALICE)}@{HOST}/INBOX/;UID={uid}"

        async def gen(rump: str) -> str:
            out = await a.cmd(f'g GENURLAUTH "{rump}" INTERNAL')
            assert out[-1].startswith(b"g OK"), out
            m = re.fullmatch(rb'\* GENURLAUTH "(.*)"', out[0])
            assert m is not None, out
            full = m.group(1).decode()
            assert re.fullmatch(re.escape(rump) + ":INTERNAL:[0-9a-f]{40}", full), full
            return full

        async def fetch(c: Client, url: str) -> bytes | None:
            out = await c.cmd(f'u URLFETCH "{url}"')
            assert out[-1].startswith(b"u OK"), out
            body = bytes(out[0])
            assert body.startswith(b'* URLFETCH "' + url.encode() + b'" '), body
            rest = body[len(url) + 14 :]
            if rest == b"NIL":
                return None
            m = re.match(rb"\{(\d+)\}\r\n", rest)
            if m:
                return rest[m.end():]
            assert rest.startswith(b'"') and rest.endswith(b'"'), rest
            return rest[1:-1]

        for_bob = await gen(base + f"/;SECTION=2;URLAUTH=user+{_enc(BOB)}")
        assert await fetch(b, for_bob) == _part(ORIGINAL, (2,))
        assert await fetch(a, for_bob) is None  # user+bob: only bob
        anyone = await gen(base + ";URLAUTH=anonymous")
        assert await fetch(b, anyone) == ORIGINAL
        authuser = await gen(base + "/;SECTION=HEADER;URLAUTH=authuser")
        assert await fetch(b, authuser) == _part(ORIGINAL, (), "HEADER")
        # submit+alice is for the submission server acting for alice (BURL), not for IMAP
        submit = await gen(base + f";URLAUTH=submit+{_enc(ALICE)}")
        assert await fetch(a, submit) is None
        # forged: a token changed by one digit, a token moved to another URL, no token
        forged = anyone[:-1] + ("0" if anyone[-1] != "0" else "1")
        assert await fetch(b, forged) is None
        token = anyone.rsplit(":", 1)[1]
        assert await fetch(b, base.replace(f"UID={uid}", "UID=99")
                           + f";URLAUTH=anonymous:INTERNAL:{token}") is None
        assert await fetch(b, base) is None
        # expiry (RFC 4467 3: ;EXPIRE= is part of what the token signs)
        past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        expired = await gen(base + f";EXPIRE={past};URLAUTH=anonymous")
        assert await fetch(b, expired) is None
        later = await gen(base + f";EXPIRE={future};URLAUTH=anonymous")
        assert await fetch(b, later) == ORIGINAL
        assert await fetch(b, later.replace(future, past)) is None  # the date is signed
        # bob may CATENATE alice's authorized URL into his own mailbox, not an unauthorized one
        out = await _tagged(b, f'k1 APPEND INBOX CATENATE (URL "{for_bob}")\r\n'.encode(), "k1")
        assert out[-1].startswith(b"k1 OK"), out
        out = await _tagged(b, f'k2 APPEND INBOX CATENATE (URL "{base}")\r\n'.encode(), "k2")
        assert out[-1] == f"k2 NO [BADURL {base}] CATENATE URL cannot be resolved".encode()
        # RESETKEY of the mailbox invalidates every URL made with its key
        out = await a.cmd("r1 RESETKEY INBOX")
        assert out[-1] == b"r1 OK [URLMECH INTERNAL] Key reset", out
        for url in (for_bob, anyone, later):
            assert await fetch(b, url) is None
        fresh = await gen(base + ";URLAUTH=anonymous")
        assert fresh != anyone and await fetch(b, fresh) == ORIGINAL
        out = await a.cmd("r2 RESETKEY")
        assert out[-1].startswith(b"r2 OK"), out
        assert await fetch(b, fresh) is None
        # only the owner authorizes URLs to a mailbox
        out = await b.cmd(f'g2 GENURLAUTH "{base};URLAUTH=anonymous" INTERNAL')
        assert out[-1].startswith(b"g2 NO [BADURL "), out
        out = await a.cmd(f'g3 GENURLAUTH "{base};URLAUTH=anonymous" OTHER')
        assert out[-1].startswith(b"g3 NO [BADURL "), out


async def test_catenate_limits(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        uid = await srv.deliver(acc, ORIGINAL)
        srv.config = SessionConfig(hostname=HOST, max_append=len(ORIGINAL) * 2)
        c = await srv.connected()
        url = f'URL "/INBOX/;UID={uid}"'
        # the catenated message outgrows APPENDLIMIT: NO [TOOBIG] (RFC 4469 6)
        out = await _tagged(c, f"t1 APPEND Drafts CATENATE ({url} {url} {url})\r\n".encode(),
                            "t1")
        assert out[-1] == b"t1 NO [TOOBIG] Message too large", out
        # a TEXT literal announced above the limit is refused before its data
        out = await _tagged(c, b"t2 APPEND Drafts CATENATE (TEXT {%d}\r\n"
                            % (len(ORIGINAL) * 2 + 1), "t2")
        assert out[-1].startswith(b"t2 NO [TOOBIG]"), out
        # a huge list of URL parts: refused at the bound, the session goes on
        line = b"t3 APPEND Drafts CATENATE (" + b" ".join(
            [b'URL "/INBOX/;UID=1/;PARTIAL=0.1"'] * 1001) + b")\r\n"
        out = await _tagged(c, line, "t3")
        assert out[-1] == b"t3 NO [LIMIT] too many CATENATE parts", out
        # each URL reads its whole message, however small its part: a budget of four times
        # APPENDLIMIT of stored data per APPEND
        parts = b" ".join([b'URL "/INBOX/;UID=1/;PARTIAL=0.1"'] * 9)
        out = await _tagged(c, b"t4 APPEND Drafts CATENATE (" + parts + b")\r\n", "t4")
        assert out[-1] == b"t4 NO [LIMIT] CATENATE reads too much stored data", out
        parts = b" ".join([b'URL "/INBOX/;UID=1/;PARTIAL=0.1"'] * 8)
        out = await _tagged(c, b"t4 APPEND Drafts CATENATE (" + parts + b")\r\n", "t4")
        assert out[-1].startswith(b"t4 OK"), out
        [small] = await _messages(srv.store, acc, "Drafts")
        assert small == b"F" * 8
        # a TEXT literal that would take the message past APPENDLIMIT is refused before "+"
        c.send(f"t9 APPEND Drafts CATENATE ({url} TEXT {{{len(ORIGINAL) + 1}}}\r\n".encode())
        assert await c.read_line() == b"t9 NO [TOOBIG] Message too large"
        out = await c.cmd("t5 URLFETCH " + " ".join(["x"] * 101))
        assert out[-1].startswith(b"t5 BAD [LIMIT]"), out
        # malformed CATENATE: a BAD, and the next command is read normally
        for bad in (b"CATENATE ()", b"CATENATE (FOO)", b"CATENATE (URL)", b"CATENATE URL x"):
            out = await _tagged(c, b"t6 APPEND Drafts " + bad + b"\r\n", "t6")
            assert out[-1].startswith(b"t6 BAD"), (bad, out)
        out = await _tagged(c, b't7 APPEND Drafts CATENATE (URL "/INBOX/;UID=1;x=1")\r\n', "t7")
        assert out[-1].startswith(b"t7 NO [BADURL "), out
        out = await c.cmd("t8 NOOP")
        assert out[-1].startswith(b"t8 OK"), out


async def test_catenate_url_literal_and_split_input(tmp_path: Path, backend: Backend) -> None:
    """The URL itself as a literal (RFC 4469 5 ``url = "URL" SP astring``), fed a byte at a
    time: the streaming core reads it between the parts."""
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        c = srv.client(split=1)
        await c.login()
        url = b"/INBOX/;UID=1/;SECTION=TEXT"
        c.send(b"l1 APPEND Drafts CATENATE (TEXT {5+}\r\nA\r\n\r\n URL {%d}\r\n" % len(url))
        assert (await c.read_line()) == b"+ Ready for literal data"
        out = await _tagged(c, url + b" URL {%d+}\r\n" % len(url) + url + b")\r\n", "l1")
        assert out[-1].startswith(b"l1 OK"), out
        [made] = await _messages(srv.store, acc, "Drafts")
        assert made == b"A\r\n\r\n" + b"hello 1\r\n" * 2


async def test_unauthenticated_catenate_is_refused(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client()
        await c.greeting()
        out = await c.cmd('n1 APPEND INBOX CATENATE (URL "/INBOX/;UID=1")')
        assert out[-1].startswith(b"n1 BAD"), out
        out = await c.cmd('n2 URLFETCH "imap://x@y/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:'
                          + "0" * 40 + '"')
        assert out[-1].startswith(b"n2 BAD"), out
