"""parse_message never raises, whatever the bytes; the renderings never raise either.

Inputs are built from MIME-ish fragments (headers, delimiters, encodings, junk) so that the
generator reaches the interesting paths, not just random bytes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.mime import MessageInfo, imapfmt, normalize_crlf, parse_message
from mailwright.mime.searchfields import search_fields

_FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=a\r\n",
    b"Content-Type: multipart/digest; boundary=\"a b\"\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset*0*=utf-8''x; charset*1=y\r\n",
    b"Content-Type: ;;;\r\n",
    b"Content-Type: text\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: 8 bit;\r\n",
    b"Content-Disposition: attachment; filename=\"x\r\n",
    b"Content-Language: en, (c) fr\r\n",
    b"From: \"a\\\" <b@c>, (x) <@r:q@d>, g: h@i;\r\n",
    b"To: <>, @, \",\r\n",
    b"Subject: =?utf-8?b?w6k=?=\r\n\t x\r\n",
    b"MIME-Version: 1.0\r\n",
    b"\r\n",
    b"\n",
    b"--a\r\n",
    b"--a--\r\n",
    b"--a b\r\n",
    b"--\r\n",
    b" continuation\r\n",
    b"AAECAw==\r\n",
    b"=41=\r\n=ZZ\r\n",
    b"\x00\xff\x80",
    b"\r",
]

messages = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=40).map(b"".join),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=8)), max_size=40).map(
        b"".join
    ),
)


def _walk_paths(part: object, prefix: tuple[int, ...], out: list[tuple[int, ...]]) -> None:
    children = getattr(part, "children", [])
    for i, c in enumerate(children, 1):
        out.append((*prefix, i))
        if len(out) < 50:
            _walk_paths(c, (*prefix, i), out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_parse_message_never_raises(raw: bytes) -> None:
    for data in (raw, normalize_crlf(raw)):
        info = parse_message(data)
        assert info.size == len(data)
        # no internal parser error either (notes about malformed input are fine)
        assert not any(p.startswith("parser error") for p in info.problems), info.problems
        again = MessageInfo.from_json(info.to_json())
        assert imapfmt.bodystructure(again) == imapfmt.bodystructure(info)
        # the stored form (sections read lazily) with its SEARCH field cache
        stored = MessageInfo.from_meta(info.to_meta(search_fields(data, info.header_end)))
        assert imapfmt.envelope(stored.envelope) == imapfmt.envelope(info.envelope)
        assert stored == info
        imapfmt.envelope(info.envelope)
        paths: list[tuple[int, ...]] = [()]
        _walk_paths(info.root, (), paths)
        for path in paths[:50]:
            for text in ("", "MIME", "HEADER", "TEXT"):
                try:
                    imapfmt.section_bytes(info, data, path, text)
                except imapfmt.SectionError:
                    pass
            try:
                imapfmt.binary_section(info, data, path)
                imapfmt.binary_size(info, data, path)
            except (imapfmt.SectionError, imapfmt.UnknownCTE, imapfmt.BrokenEncoding):
                pass


_SEARCHES = ['TEXT "a"', 'BODY "x"', 'SUBJECT "e"', 'FROM "@"', 'HEADER Content-Type ""',
             "SENTBEFORE 1-Jan-2030", "SENTON 1-Jan-2024", "NOT TO b"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=6))
def test_search_sort_thread_never_raise(raws: list[bytes]) -> None:
    from mailwright.imapd import search, sortthread
    from mailwright.proto.imap import ast
    from mailwright.proto.imap.grammar import parse_command
    from mailwright.store.api import MessageRecord

    pairs = []
    infos = {}
    texts = {}
    for seq, raw in enumerate(raws, 1):
        data = normalize_crlf(raw)
        info = parse_message(data)
        pairs.append((seq, MessageRecord(1, seq, 1, frozenset(), 1e9 + seq, len(data), "")))
        infos[seq] = info
        texts[seq] = search.MessageText(info, data)
    crit = tuple(ast.SortCriterion(k) for k in ("SUBJECT", "DATE", "FROM", "TO", "CC",
                                               "DISPLAYFROM", "DISPLAYTO", "SIZE", "ARRIVAL"))
    assert len(sortthread.sort_records(crit, pairs, infos)) == len(pairs)
    for alg in ("REFERENCES", "ORDEREDSUBJECT"):
        out = sortthread.thread(alg, pairs, infos, uid=True)
        numbers = [int(x) for x in out.replace(b"(", b" ").replace(b")", b" ").split()]
        assert sorted(numbers) == list(range(1, len(pairs) + 1))
    ctx = search.SearchContext(len(pairs), len(pairs))
    for text in _SEARCHES:
        cmd = parse_command(f"A SEARCH {text}".encode())
        assert isinstance(cmd, ast.Search)
        search.search(cmd.key, pairs, ctx, lambda r: texts[r.uid])
