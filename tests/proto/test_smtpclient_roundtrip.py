"""The client core joined to the server core (proto/smtp): every byte one side writes is read by
the other, so the two agree on pipelining, dot-stuffing, xtext and DSN parameters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.proto import smtp
from mailwright.proto.smtpclient import (
    NEED_DATA,
    ClientConnection,
    Data,
    Ehlo,
    Envelope,
    Greeting,
    Mail,
    Quit,
    Rcpt,
    Recipient,
    RemoteProtocolError,
    ReplyParser,
    Response,
    mail_params,
    rcpt_params,
)


class Link:
    """A client core and a server core wired back to back, with a tiny server policy."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.client = ClientConnection()
        self.server = smtp.ServerConnection("mx.test", starttls=False)
        self.rng = rng
        self.received: list[tuple[smtp.MailFrom, list[smtp.RcptTo], bytes]] = []
        self._mail: smtp.MailFrom | None = None
        self._rcpts: list[smtp.RcptTo] = []
        self._data = b""
        self.server.greet()

    def _chunks(self, data: bytes) -> list[bytes]:
        if self.rng is None or not data:
            return [data] if data else []
        out, i = [], 0
        while i < len(data):
            step = self.rng.randint(1, 9)
            out.append(data[i : i + step])
            i += step
        return out

    def to_server(self, data: bytes) -> None:
        for piece in self._chunks(data):
            self.server.receive_data(piece)
            self._serve()

    def _serve(self) -> None:
        while True:
            event = self.server.next_event()
            if event is smtp.NEED_DATA:
                return
            if event is smtp.PAUSED:
                raise AssertionError("paused without an answer")
            if isinstance(event, smtp.MailFrom):
                self._mail, self._rcpts, self._data = event, [], b""
                self.server.accept()
            elif isinstance(event, smtp.RcptTo):
                if event.path.mailbox.startswith("nobody"):
                    self.server.reject(smtp.Reply(550, "5.1.1", "no such user"))
                else:
                    self._rcpts.append(event)
                    self.server.accept()
            elif isinstance(event, smtp.DataChunk):
                self._data += event.data
            elif isinstance(event, smtp.MessageEnd):
                assert self._mail is not None
                self.received.append((self._mail, self._rcpts, self._data))
                self.server.accept()
            elif isinstance(event, smtp.Hello | smtp.MessageStart):
                self.server.accept()

    def events(self) -> list[object]:
        """Move the server's replies to the client and drain the client's events."""
        for piece in self._chunks(self.server.data_to_send()):
            self.client.receive_data(piece)
        out: list[object] = []
        while (event := self.client.next_event()) is not NEED_DATA:
            out.append(event)
        return out


def transaction(link: Link, env: Envelope, message: bytes) -> list[Response]:
    [greeting] = link.events()
    assert isinstance(greeting, Greeting) and greeting.reply.code == 220
    link.to_server(link.client.send(Ehlo("client.test")))
    [ehlo] = link.events()
    assert isinstance(ehlo, Response) and ehlo.reply.code == 250
    ext = link.client.extensions
    assert ext is not None and ext.pipelining and ext.dsn and ext.smtputf8
    wire = link.client.send(Mail(env.sender, mail_params(env, ext)))
    for r in env.recipients:
        wire += link.client.send(Rcpt(r.address, rcpt_params(r, ext)))
    wire += link.client.send(Data())
    link.to_server(wire)  # one pipelined group (RFC 2920 3.1)
    replies = [e for e in link.events() if isinstance(e, Response)]
    assert replies[-1].reply.code == 354
    link.to_server(link.client.send_data(message) + link.client.end_data())
    replies += [e for e in link.events() if isinstance(e, Response)]
    link.to_server(link.client.send(Quit()))
    replies += [e for e in link.events() if isinstance(e, Response)]
    return replies


MESSAGE = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nplain\r\n.\r\nend"


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_roundtrip_pipelined_with_dsn(seed: int | None) -> None:
    link = Link(random.Random(seed) if seed is not None else None)
    env = Envelope("a+x=y@sender.test", (
        Recipient("b@dest.test", ("SUCCESS", "FAILURE"), ("rfc822", "b+tag=1@dest.test")),
        Recipient("nobody@dest.test"),
        Recipient("c@dest.test", ("NEVER",)),
    ), size=len(MESSAGE), ret="HDRS", envid="env id+1=2")
    replies = transaction(link, env, MESSAGE)
    codes = [(type(r.command).__name__, r.reply.code) for r in replies]
    assert codes == [("Mail", 250), ("Rcpt", 250), ("Rcpt", 550), ("Rcpt", 250), ("Data", 354),
                     ("EndOfData", 250), ("Quit", 221)]
    [(mail, rcpts, data)] = link.received
    assert mail.params.ret == "HDRS" and mail.params.envid == "env id+1=2"
    assert mail.params.size == len(MESSAGE)
    assert rcpts[0].params.notify == ("SUCCESS", "FAILURE")
    assert rcpts[0].params.orcpt == ("RFC822", "b+tag=1@dest.test")  # addr-type: any case
    assert rcpts[1].params.notify == ("NEVER",)
    assert data == MESSAGE + b"\r\n"  # the last line gets its CRLF


def test_roundtrip_smtputf8() -> None:
    link = Link()
    message = "Subject: größe\r\n\r\nça va\r\n".encode()
    env = Envelope("jöran@sender.test", (Recipient("zoë@dest.test"),), size=len(message),
                   eight_bit=True, utf8_headers=True)
    replies = transaction(link, env, message)
    assert [r.reply.code for r in replies] == [250, 250, 354, 250, 221]
    [(mail, rcpts, data)] = link.received
    assert mail.params.smtputf8 and mail.params.body == "8BITMIME"
    assert str(rcpts[0].path.mailbox) == "zoë@dest.test"
    assert data == message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_roundtrip_any_bytes_survive(message: bytes) -> None:
    link = Link()
    env = Envelope("a@sender.test", (Recipient("b@dest.test"),), size=len(message),
                   eight_bit=not message.isascii())
    transaction(link, env, message)
    [(_, _, data)] = link.received
    # What the server stores is the message with every line ending made CRLF.
    expected = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert data == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_reply_parser_never_crashes(data: bytes) -> None:
    parser = ReplyParser(max_line_length=64, max_lines=4)
    parser.receive_data(data)
    try:
        while parser.next_reply() is not None:
            pass
    except RemoteProtocolError:
        pass
