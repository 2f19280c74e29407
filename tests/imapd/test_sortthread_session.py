"""SORT, THREAD and SEARCH through a real session (parser, dispatch, store, meta JSON)."""

from __future__ import annotations

from pathlib import Path

from imap_harness import imap_server
from tests.support.backends import Backend

MESSAGES = [
    b"Message-ID: <a@x>\r\nSubject: topic\r\nFrom: Zed <zed@x.test>\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nfirst\r\n",
    b"Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: Re: topic\r\nFrom: amy@x.test\r\n"
    b"Date: Mon, 1 Jan 2024 11:00:00 +0000\r\n\r\nsecond\r\n",
    b"Message-ID: <c@x>\r\nSubject: =?utf-8?q?=C3=A9t=C3=A9?=\r\nFrom: bob@x.test\r\n"
    b"Date: Sun, 31 Dec 2023 09:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"w6l0w6kgc2Vjb25kZQ==\r\n",
]


async def test_sort_thread_search_in_session(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        for m in MESSAGES:
            await srv.deliver(acc, m)
        c = await srv.connected()
        caps = await c.cmd("a CAPABILITY")
        assert b"SORT" in caps[0] and b"THREAD=REFERENCES" in caps[0]
        assert (await c.cmd("b SELECT INBOX"))[-1].startswith(b"b OK")
        out = await c.cmd("c SORT (SUBJECT) UTF-8 ALL")
        # "été" sorts as "ETE" (decomposed, as Dovecot does), before "topic"
        assert out[0] == b"* SORT 3 1 2" and out[-1].startswith(b"c OK")
        out = await c.cmd("d SORT (REVERSE DATE) UTF-8 ALL")
        assert out[0] == b"* SORT 2 1 3"
        out = await c.cmd("e UID SORT (FROM) UTF-8 ALL")
        assert out[0] == b"* SORT 2 3 1"
        out = await c.cmd("f THREAD REFERENCES UTF-8 ALL")
        assert out[0] == b"* THREAD (3)(1 2)"
        out = await c.cmd("g THREAD ORDEREDSUBJECT UTF-8 ALL")
        assert out[0] == b"* THREAD (3)(1 2)"
        out = await c.cmd(b"h SEARCH CHARSET UTF-8 BODY \"SECOND\"")
        assert out[0] == b"* SEARCH 2 3"
        out = await c.cmd(b'i SEARCH CHARSET UTF-8 SUBJECT "\xc3\xa9T\xc3\xa9"')
        assert out[0] == b"* SEARCH 3"
        out = await c.cmd("k SEARCH SENTBEFORE 1-Jan-2024")
        assert out[0] == b"* SEARCH 3"
        out = await c.cmd("j FETCH 3 (BINARY[1] BODY.PEEK[1])")
        assert out[0] == (b"* 3 FETCH (BINARY[1] {13}\r\n\xc3\xa9t\xc3\xa9 seconde "
                          b"BODY[1] {22}\r\nw6l0w6kgc2Vjb25kZQ==\r\n FLAGS (\\Recent \\Seen))")
