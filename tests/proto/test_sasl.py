"""Server-side SASL mechanisms (RFC 4616 PLAIN, LOGIN)."""

from __future__ import annotations

from mailwright.proto import sasl
from mailwright.proto.sasl import Challenge, Credentials, SaslFailure


def test_sasl_plain_initial_response() -> None:
    m = sasl.server_mechanism("plain")
    assert m is not None and m.name == "PLAIN"
    assert m.start(b"\x00alice\x00secret") == Credentials("", "alice", "secret")


def test_sasl_plain_with_authzid_and_utf8() -> None:
    m = sasl.server_mechanism("PLAIN")
    assert m is not None
    assert m.start(None) == Challenge(b"")
    assert m.step("admin\x00jürgen\x00pässword".encode()) == Credentials(
        "admin", "jürgen", "pässword"
    )


def test_sasl_plain_malformed() -> None:
    for bad in (b"", b"alice", b"\x00alice", b"a\x00b\x00c\x00d", b"\x00\x00pw", b"\x00u\x00",
                b"\x00\xff\x00pw", b"\x00" + b"u" * 256 + b"\x00pw"):  # fmt: skip
        m = sasl.server_mechanism("PLAIN")
        assert m is not None
        assert isinstance(m.start(bad), SaslFailure), bad


def test_sasl_login_two_steps() -> None:
    m = sasl.server_mechanism("LOGIN")
    assert m is not None
    assert m.start(None) == Challenge(b"Username:")
    assert m.step(b"alice") == Challenge(b"Password:")
    assert m.step(b"secret") == Credentials("", "alice", "secret")


def test_sasl_login_initial_response_is_username() -> None:
    m = sasl.server_mechanism("LOGIN")
    assert m is not None
    assert m.start(b"alice") == Challenge(b"Password:")
    assert m.step(b"") == Credentials("", "alice", "")


def test_sasl_login_malformed() -> None:
    m = sasl.server_mechanism("LOGIN")
    assert m is not None
    assert isinstance(m.start(b""), SaslFailure)
    m = sasl.server_mechanism("LOGIN")
    assert m is not None
    assert isinstance(m.start(b"a\x00b"), SaslFailure)


def test_sasl_unknown_mechanism() -> None:
    assert sasl.server_mechanism("CRAM-MD5") is None
    assert sasl.SUPPORTED == ("PLAIN", "LOGIN")
