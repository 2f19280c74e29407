"""`store.blobs.CrlfNormalizer` (the stored form is CRLF): bare LF becomes CRLF across chunk
boundaries, input already in CRLF form passes unchanged (the fast path), and any split of a
message into chunks gives the same bytes as the whole."""

from __future__ import annotations

import random

from mailwright.store.blobs import CrlfNormalizer


def normalise(chunks: list[bytes]) -> bytes:
    n = CrlfNormalizer()
    return b"".join(n.feed(c) for c in chunks)


def test_crlf_bare_lf_becomes_crlf_across_chunks() -> None:
    assert normalise([b"a\nb\r\nc\n"]) == b"a\r\nb\r\nc\r\n"
    assert normalise([b"a\r", b"\nb"]) == b"a\r\nb"  # one CRLF split between chunks
    assert normalise([b"a", b"\nb"]) == b"a\r\nb"  # a bare LF at the start of a chunk
    assert normalise([b"a\r", b"\r\n", b"\n"]) == b"a\r\r\n\r\n"
    assert normalise([b"\n"]) == b"\r\n"


def test_crlf_form_passes_unchanged() -> None:
    data = b"Subject: x\r\n\r\nbody\r\nline\r\n"
    n = CrlfNormalizer()
    assert n.feed(data) is data


def test_crlf_any_split_gives_the_whole() -> None:
    rnd = random.Random(5)
    for _ in range(2000):
        data = bytes(rnd.choice(b"\r\nab") for _ in range(rnd.randint(0, 40)))
        whole = normalise([data])
        cuts = sorted(rnd.sample(range(len(data) + 1), min(len(data) + 1, rnd.randint(0, 5))))
        pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert normalise(pieces) == whole, (data, pieces)
        assert b"\n" not in whole.replace(b"\r\n", b"")
