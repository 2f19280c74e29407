from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailwright.mailauth.authresults import (
    ResultInfo,
    authserv_id_of,
    build_header,
    remove_own_results,
)
from mailwright.mailauth.headers import split_message


def test_authresults_build_header_quotes_what_needs_it() -> None:
    header = build_header(
        "mx.example.test",
        [
            ResultInfo("spf", "pass", "matched (ip4) at x", (("smtp.mailfrom", "a.b@x.test"),)),
            ResultInfo("dkim", "pass", None, (("header.d", "x.test"), ("header.b", "ab/c+d=="))),
            ResultInfo("spf", "none", None, (("smtp.mailfrom", 'we ird"@x.test'),)),
        ],
    )
    assert header == (
        b"Authentication-Results: mx.example.test;\r\n"
        b"\tspf=pass (matched \\(ip4\\) at x) smtp.mailfrom=a.b@x.test;\r\n"
        b'\tdkim=pass header.d=x.test header.b="ab/c+d==";\r\n'
        b'\tspf=none smtp.mailfrom="we ird\\"@x.test"\r\n'
    )
    assert build_header("mx.example.test", []) == b"Authentication-Results: mx.example.test; none\r\n"


def test_authresults_authserv_id_forms() -> None:
    assert authserv_id_of(b"mx.example.test; spf=pass") == "mx.example.test"
    assert authserv_id_of(b"  (c (nested)) MX.Example.Test 1; none") == "mx.example.test"
    assert authserv_id_of(b'"mx.example.test"; none') == "mx.example.test"
    assert authserv_id_of(b"mx.example.test.;none") == "mx.example.test"
    assert authserv_id_of(b"") is None


def test_authresults_remove_only_ours_and_keep_bytes() -> None:
    msg = (
        b"Received: from a\r\n\tby b\r\n"
        b"authentication-results: mx.example.test;\r\n dkim=pass\r\n"
        b"Authentication-Results: other.test; dkim=pass\r\n"
        b"Subject: x\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.test; in the body stays\r\n"
    )
    cleaned, count = remove_own_results(msg, "MX.example.test")
    assert count == 1
    assert cleaned == msg.replace(b"authentication-results: mx.example.test;\r\n dkim=pass\r\n", b"")
    same, zero = remove_own_results(msg, "nobody.test")
    assert (same, zero) == (msg, 0)


def test_headers_split_lf_and_no_body() -> None:
    fields, rest = split_message(b"A: 1\nB: 2\n  cont\n\nbody\n")
    assert [(f.name, f.value) for f in fields] == [("a", b"1"), ("b", b"2  cont")]
    assert rest == b"\nbody\n"
    fields, rest = split_message(b"A: 1")
    assert [f.raw for f in fields] == [b"A: 1"] and rest == b""


@given(st.binary(max_size=400), st.text(max_size=30))
def test_authresults_remove_never_raises_and_only_shrinks(data: bytes, ident: str) -> None:
    cleaned, count = remove_own_results(data, ident or "x")
    assert len(cleaned) <= len(data)
    assert (count == 0) == (cleaned == data)
    fields, rest = split_message(data)
    assert b"".join(f.raw for f in fields) + rest == data


def test_authresults_keeps_utf8_in_an_smtputf8_sender() -> None:
    # RFC 8601 2.2 with RFC 6532 3.2: an internationalized address is reported as it is.
    header = build_header(
        "mx.example.test",
        [
            ResultInfo("spf", "pass", "jürgen", (("smtp.mailfrom", "jürgen@müller.example"),)),
            ResultInfo("spf", "none", None, (("smtp.mailfrom", "jü rgen\x85@x.test"),)),
        ],
    )
    assert header == (
        "Authentication-Results: mx.example.test;\r\n"
        "\tspf=pass (j?rgen) smtp.mailfrom=jürgen@müller.example;\r\n"
        '\tspf=none smtp.mailfrom="jü rgen?@x.test"\r\n'
    ).encode()
