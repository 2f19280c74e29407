"""One entry point per fuzzed parser, taking raw bytes: shared by the coverage-guided atheris
run (tests/fuzz/atheris_fuzz.py) and the regression replay of the inputs it found
(tests/fuzz/test_corpus_regressions.py), so a kept input is checked exactly as it was found.

Each target raises AssertionError (or whatever escaped the parser) on a bug and returns
quietly otherwise. The first bytes of the input choose how it is split and how the toy
responder decides, so the fuzzer explores those too.
"""

from __future__ import annotations

from collections.abc import Callable

from mailwright.mime import imapfmt, normalize_crlf, parse_message
from mailwright.proto.imap.connection import NEED_DATA as IMAP_NEED_DATA
from mailwright.proto.imap.connection import PAUSED as IMAP_PAUSED
from mailwright.proto.imap.connection import ImapConnection
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.proxy import NEED_DATA as PROXY_NEED_DATA
from mailwright.proto.proxy import ProxyParser, ProxyProtocolError
from mailwright.proto.smtpclient import connection as sc
from mailwright.proto.smtpclient.errors import LocalProtocolError, RemoteProtocolError
from mailwright.proto.smtpclient.replies import Extensions
from mailwright.sieve import Envelope, SieveMessage, SieveSyntaxError, compile_script, run_script

from . import test_imap_fuzz, test_pop3_fuzz, test_sieve_fuzz, test_smtp_fuzz


def _header(raw: bytes) -> tuple[int, int, bytes]:
    """(split step, decision bits, the rest): step 0 feeds the input whole."""
    if len(raw) < 2:
        return 0, 0xFF, raw
    return raw[0] % 40, raw[1], raw[2:]


def _pieces(data: bytes, step: int) -> list[bytes]:
    if step == 0:
        return [data]
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def smtp(raw: bytes) -> None:
    step, bits, data = _header(raw)
    sizes = [step] * (len(data) // step) if step else []
    decisions = [bool(bits >> i & 1) for i in range(8)]
    test_smtp_fuzz.drive(data, sizes, decisions)


def imap(raw: bytes) -> None:
    step, bits, data = _header(raw)
    cuts = list(range(step, len(data), step)) if step else []
    decisions = [bool(bits >> i & 1) for i in range(4)]
    test_imap_fuzz._run(data, cuts, decisions)
    # the default limits too (the ones the server runs with), before and after login
    for authenticated in (False, True):
        p = ImapConnection(authenticated=authenticated)
        for piece in [*_pieces(data, step), b"\r\n"]:
            p.receive_data(piece)
            while True:
                try:
                    ev = p.next_event()
                except ProtocolError as exc:
                    assert exc.to_bytes().endswith(b"\r\n")
                    continue
                if ev is IMAP_NEED_DATA:
                    break
                if ev is not IMAP_PAUSED:
                    continue
                p.accept_literal()


def pop3_(raw: bytes) -> None:
    step, _bits, data = _header(raw)
    whole = test_pop3_fuzz._run([data])
    test_pop3_fuzz._check_wire(whole)
    assert test_pop3_fuzz._run(_pieces(data, step)) == whole, "the split changed the answers"


def mime(raw: bytes) -> None:
    for data in (raw, normalize_crlf(raw)):
        info = parse_message(data)
        assert info.size == len(data)
        assert not any(p.startswith("parser error") for p in info.problems), info.problems
        imapfmt.bodystructure(info)
        imapfmt.envelope(info.envelope)
        for text in ("", "MIME", "HEADER", "TEXT"):
            try:
                imapfmt.section_bytes(info, data, (1,), text)
            except imapfmt.SectionError:
                pass


def proxy(raw: bytes) -> None:
    step, _bits, data = _header(raw)
    p = ProxyParser()
    try:
        for piece in _pieces(data, step):
            p.receive_data(piece)
            if p.next_event() is not PROXY_NEED_DATA:
                return
    except ProxyProtocolError:
        return


def smtpclient(raw: bytes) -> None:
    """A hostile remote MX: any reply bytes to our outbound client's EHLO, MAIL, RCPT, DATA."""
    step, _bits, data = _header(raw)
    conn = sc.ClientConnection(max_reply_line=200, max_reply_lines=10)
    script: list[sc.Command] = [sc.Ehlo("client.test"), sc.Mail("a@b.test", ("SIZE=10",)),
                                sc.Rcpt("c@d.test"), sc.Data()]  # fmt: skip
    try:
        for piece in [*_pieces(data, step), b""]:
            conn.receive_data(piece)
            for _ in range(10_000):
                ev = conn.next_event()
                if ev is sc.NEED_DATA or isinstance(ev, sc.ConnectionClosed):
                    break
                if isinstance(ev, sc.Response) and isinstance(ev.command, sc.Ehlo):
                    Extensions.from_reply(ev.reply)
                if isinstance(ev, sc.Greeting | sc.Response) and script:
                    try:
                        conn.send(script.pop(0))
                    except LocalProtocolError:
                        script.clear()  # the state forbids it: the driver would stop here
            else:
                raise AssertionError("the client core made no progress")
    except RemoteProtocolError:
        return


def sieve(raw: bytes) -> None:
    """A script, then (after a NUL) a message: compile, and run what compiles."""
    script, _, message = raw.partition(b"\x00")
    try:
        compiled = compile_script(script)
    except SieveSyntaxError as exc:
        assert exc.line >= 1
        return
    result = run_script(compiled, SieveMessage.from_bytes(message), Envelope("a@b.c", "d@e.f"))
    assert result.error is None or result.error.startswith(("line ", "script"))


def managesieve(raw: bytes) -> None:
    step, _bits, data = _header(raw)
    whole = test_sieve_fuzz._ms_run([data])
    assert test_sieve_fuzz._ms_run(_pieces(data, step)) == whole, "the split changed the events"


TARGETS: dict[str, Callable[[bytes], None]] = {
    "smtp": smtp,
    "imap": imap,
    "pop3": pop3_,
    "mime": mime,
    "proxy": proxy,
    "smtpclient": smtpclient,
    "sieve": sieve,
    "managesieve": managesieve,
}
