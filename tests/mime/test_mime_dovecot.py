"""Random malformed MIME, side by side with a private Dovecot 2.3.19.

Messages are built from fragments (competing Content-* fields, broken types and encodings,
nested and prefix boundaries, stray delimiters, odd addresses, folding, LF and CRLF mixed)
so that they reach the corners the corpus only samples. Each is APPENDed to Dovecot and its
ENVELOPE, BODYSTRUCTURE, BODY, BODY[HEADER], BODY[TEXT] and every part's BODY[p] and
BODY[p.MIME] must equal what mailwright.mime renders from one parse (README normalisation).
Fails without Dovecot or root (tests/support/dovecot.py).
"""

from __future__ import annotations

import imaplib
import random

import pytest

from mailwright.mime import imapfmt, normalize_crlf, parse_message
from mailwright.mime.model import Part
from tests.mime.corpus import norm_body, parse_fetch
from tests.support.dovecot import private_dovecot

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
]

FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=a\n", b'Content-Type: multipart/alternative; '
    b'boundary="a b"\n', b"Content-Type: multipart/digest; boundary=ab\n",
    b"Content-Type: message/rfc822\n", b"Content-Type: text/plain; charset*0*=utf-8''x; "
    b"charset*1=y\n", b"Content-Type: ;;;\n", b"Content-Type: text\n",
    b'Content-Type: text/html; name="x y"; a=b;\n', b"Content-Type: image/png\r\n",
    b"Content-Transfer-Encoding: base64\n", b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Transfer-Encoding: 8 bit;\n", b'Content-Disposition: attachment; filename="x"\n',
    b"Content-Disposition: inline\n", b"Content-Language: en, fr\n",
    b"Content-ID: <cid@x>\n", b"Content-Description: desc\n",
    b"Content-Location: http://x/\n", b'From: "a\\" <b@c>, (x) <@r:q@d>, g: h@i;\n',
    b'To: <>, @, ",\n', b"Cc: Undisclosed recipients:;\r\n", b"Reply-To: foo\n",
    b"Subject: =?utf-8?b?w6k=?=\n\t x\n", b"Subject:  two  spaces \n", b"MIME-Version: 1.0\n",
    b"\n", b"\n", b"\r\n", b"--a\n", b"--a--\n", b"--ab\n", b"--ab--\n", b"--a b\r\n", b"--\n",
    b" continuation\n", b"AAECAw==\n", b"=41=\n=ZZ\n", b"text line\n", b"X-Other: y\n",
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\n", b"Message-ID: <m@x>\n", b"no colon here\n",
]


def _message(r: random.Random) -> bytes:
    return b"".join(r.choice(FRAGMENTS) for _ in range(r.randrange(3, 30)))


def _paths(root: Part) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []

    def walk(part: Part, prefix: tuple[int, ...]) -> None:
        kids = part.children
        if part.kind == "m" and kids:
            kids = kids[0].children if kids[0].kind == "M" else [kids[0]]
        for j, child in enumerate(kids, 1):
            out.append((*prefix, j))
            if len(out) < 12:
                walk(child, (*prefix, j))

    walk(root, ())
    return out[:12]


def _fetch(m: imaplib.IMAP4, seq: int, items: str) -> dict[str, object]:
    typ, data = m.fetch(str(seq), f"({items})")
    assert typ == "OK", data
    flat = b"".join((x[0] + b"\r\n" + x[1]) if isinstance(x, tuple) else x for x in data)
    return parse_fetch(b"* " + flat.replace(b" (", b" FETCH (", 1) + b"\r\n")


def test_random_mime_renders_like_dovecot() -> None:
    rnd = random.Random(20240101)
    messages = [_message(rnd) for _ in range(250)]
    problems: list[str] = []
    with private_dovecot() as dovecot:
        m = imaplib.IMAP4("127.0.0.1", dovecot.port)
        m.login("tester", "secret")
        m.create("mime")
        for raw in messages:
            assert m.append("mime", "()", None, raw)[0] == "OK"
        m.select("mime")
        for seq, raw in enumerate(messages, 1):
            stored = normalize_crlf(raw)
            info = parse_message(stored)
            want = _fetch(m, seq, "ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[HEADER] "
                                  "BODY.PEEK[TEXT]")
            wire = b"* 1 FETCH (ENVELOPE %s BODYSTRUCTURE %s BODY %s BODY[HEADER] %s " \
                   b"BODY[TEXT] %s)\r\n" % (
                       imapfmt.envelope(info.envelope), imapfmt.bodystructure(info),
                       imapfmt.bodystructure(info, False),
                       imapfmt.literal(imapfmt.section_bytes(info, stored, [], "HEADER")),
                       imapfmt.literal(imapfmt.section_bytes(info, stored, [], "TEXT")))
            got = parse_fetch(wire)
            for key, value in want.items():
                a, b = value, got.get(key)
                if key in ("BODY", "BODYSTRUCTURE"):
                    a, b = norm_body(a), norm_body(b)
                if a != b:
                    problems.append(f"{raw!r}\n  {key}: dovecot {a!r:.300}\n  ours {b!r:.300}")
            for path in _paths(info.root):
                sec = ".".join(map(str, path))
                want = _fetch(m, seq, f"BODY.PEEK[{sec}] BODY.PEEK[{sec}.MIME]")
                for text, key in (("", f"BODY[{sec}]"), ("MIME", f"BODY[{sec}.MIME]")):
                    try:
                        ours = imapfmt.section_bytes(info, stored, path, text)
                    except imapfmt.SectionError:
                        ours = b""
                    if want.get(key) != ours:
                        problems.append(f"{raw!r}\n  {key}: dovecot {want.get(key)!r:.200}"
                                        f"\n  ours {ours!r:.200}")
        m.logout()
    assert not problems, "\n".join(problems[:10])
