"""Command-line grammar: verbs, MAIL/RCPT arguments and ESMTP parameters.

RFC 5321 4.1.1 (commands), 4.1.2 (grammar), RFC 1870 (SIZE), RFC 6152 (BODY), RFC 6531
(SMTPUTF8), RFC 3461 4 (DSN parameters), RFC 4954 5 (AUTH=), RFC 3030 2 (BDAT). Every function
here is pure and raises `SMTPProtocolError` with the reply the client gets.
"""

from __future__ import annotations

import re

from . import replies as R
from .address import Path, PathError, parse_path, split_path
from .errors import SMTPProtocolError
from .events import MailParams, RcptParams

# RFC 5321 4.1.2 esmtp-keyword and esmtp-value (UTF-8 values by RFC 6531 3.3).
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE = re.compile("[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_BDAT_SIZE = re.compile(r"[0-9]{1,20}")
_NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def split_verb(line: str) -> tuple[str, str]:
    """Split a command line into the upper-cased verb and its argument text."""
    verb, _, arg = line.partition(" ")
    return verb.upper(), arg


def xtext_decode(text: str) -> str:
    """RFC 3461 4: xtext, "+" followed by two upper-case hex digits encodes an octet."""
    if not _XTEXT.fullmatch(text):
        raise SMTPProtocolError(R.BAD_PARAMETER)
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _parse_params(text: str) -> list[tuple[str, str | None]]:
    params: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for word in text.split(" "):
        if not word:
            continue  # tolerate doubled spaces, as Postfix does
        key, eq, value = word.partition("=")
        if not _KEYWORD.fullmatch(key) or (eq and not _VALUE.fullmatch(value)):
            raise SMTPProtocolError(R.BAD_PARAMETER)
        ukey = key.upper()
        if ukey in seen:
            raise SMTPProtocolError(R.DUPLICATE_PARAMETER)
        seen.add(ukey)
        params.append((ukey, value if eq else None))
    return params


def _path_and_rest(arg: str, prefix: str, syntax: R.Reply) -> tuple[str, str]:
    if arg[: len(prefix)].upper() != prefix:
        raise SMTPProtocolError(syntax)
    # RFC 5321 4.1.1.2 forbids a space after the colon; Postfix and most servers allow it.
    rest = arg[len(prefix) :].lstrip(" ")
    try:
        path_text, after = split_path(rest)
    except PathError:
        raise SMTPProtocolError(syntax) from None
    if after and not after.startswith(" "):
        raise SMTPProtocolError(syntax)
    return path_text, after


def parse_mail(arg: str, *, max_size: int | None) -> tuple[Path | None, MailParams]:
    """Parse `FROM:<path> [params]`; None is the null reverse-path."""
    path_text, rest = _path_and_rest(arg, "FROM:", R.MAIL_SYNTAX)
    size: int | None = None
    body: str | None = None
    smtputf8 = False
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None
    requiretls = False
    for key, value in _parse_params(rest):
        if key == "SIZE":
            # RFC 1870 6: size-value = 1*20DIGIT
            if value is None or not _BDAT_SIZE.fullmatch(value):
                raise SMTPProtocolError(R.BAD_PARAMETER)
            size = int(value)
        elif key == "BODY":
            if value is None:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            uvalue = value.upper()
            if uvalue == "BINARYMIME":
                raise SMTPProtocolError(R.BINARYMIME)
            if uvalue not in ("7BIT", "8BITMIME"):
                raise SMTPProtocolError(R.BAD_PARAMETER)
            body = uvalue
        elif key == "SMTPUTF8":
            # RFC 6531 3.4: SMTPUTF8 takes no value.
            if value is not None:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            smtputf8 = True
        elif key == "RET":
            if value is None or value.upper() not in ("FULL", "HDRS"):
                raise SMTPProtocolError(R.BAD_PARAMETER)
            ret = value.upper()
        elif key == "ENVID":
            # RFC 3461 4.4: at most 100 characters, xtext.
            if value is None or len(value) > 100:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            envid = xtext_decode(value)
        elif key == "AUTH":
            # RFC 4954 5: accepted and kept; a server that does not trust it ignores it.
            if value is None:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            auth = xtext_decode(value)
        elif key == "REQUIRETLS":
            # RFC 8689 4: REQUIRETLS takes no value.
            if value is not None:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            requiretls = True
        else:
            # RFC 5321 4.1.1.11: unrecognised parameters get 555.
            raise SMTPProtocolError(R.UNKNOWN_PARAMETER)
    if path_text == "<>":
        path = None
    else:
        try:
            path = parse_path(path_text)
        except PathError:
            raise SMTPProtocolError(R.BAD_SENDER) from None
        if path.utf8 and not smtputf8:
            # RFC 6531 3.4: UTF-8 in the envelope only with the SMTPUTF8 parameter.
            raise SMTPProtocolError(R.UTF8_NOT_ALLOWED)
    if size is not None and max_size is not None and size > max_size:
        # RFC 1870 6.1: a declared size over the limit is refused at MAIL.
        raise SMTPProtocolError(R.TOO_BIG)
    return path, MailParams(
        size=size, body=body, smtputf8=smtputf8, ret=ret, envid=envid, auth=auth,
        requiretls=requiretls,
    )


def parse_rcpt(arg: str, *, smtputf8: bool) -> tuple[Path, RcptParams]:
    """Parse `TO:<path> [params]`."""
    path_text, rest = _path_and_rest(arg, "TO:", R.RCPT_SYNTAX)
    notify: tuple[str, ...] | None = None
    orcpt: tuple[str, str] | None = None
    for key, value in _parse_params(rest):
        if key == "NOTIFY":
            # RFC 3461 4.1: "NEVER" alone, or a list of SUCCESS, FAILURE, DELAY.
            if value is None:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            items = tuple(v.upper() for v in value.split(","))
            if items == ("NEVER",) or (
                items and all(i in _NOTIFY_VALUES for i in items) and len(set(items)) == len(items)
            ):
                notify = items
            else:
                raise SMTPProtocolError(R.BAD_PARAMETER)
        elif key == "ORCPT":
            # RFC 3461 4.2: addr-type ";" xtext
            if value is None or ";" not in value:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            addr_type, _, xtext = value.partition(";")
            if not _KEYWORD.fullmatch(addr_type) or not xtext:
                raise SMTPProtocolError(R.BAD_PARAMETER)
            # RFC 6533 3: a "utf-8" ORCPT may carry raw UTF-8, which xtext cannot.
            orcpt = (addr_type.upper(), xtext_decode(xtext) if xtext.isascii() else xtext)
        else:
            raise SMTPProtocolError(R.UNKNOWN_PARAMETER)
    if path_text == "<>":
        raise SMTPProtocolError(R.BAD_RECIPIENT)
    try:
        path = parse_path(path_text, allow_postmaster=True)
    except PathError:
        raise SMTPProtocolError(R.BAD_RECIPIENT) from None
    if path.utf8 and not smtputf8:
        raise SMTPProtocolError(R.UTF8_NOT_ALLOWED)
    return path, RcptParams(notify=notify, orcpt=orcpt)


def parse_burl(arg: str) -> tuple[str, bool]:
    """RFC 4468 3: ``BURL SP absolute-URI [SP end-marker]``, ``end-marker = "LAST"``."""
    words = arg.split(" ")
    if not 1 <= len(words) <= 2 or not words[0] or not words[0].isprintable():
        raise SMTPProtocolError(R.BURL_SYNTAX)
    if len(words) == 2 and words[1].upper() != "LAST":
        raise SMTPProtocolError(R.BURL_SYNTAX)
    return words[0], len(words) == 2


def parse_bdat(arg: str) -> tuple[int, bool]:
    """RFC 3030 2: `BDAT chunk-size [LAST]`."""
    words = arg.split(" ")
    if not 1 <= len(words) <= 2 or not _BDAT_SIZE.fullmatch(words[0]):
        raise SMTPProtocolError(R.BDAT_SYNTAX)
    if len(words) == 2 and words[1].upper() != "LAST":
        raise SMTPProtocolError(R.BDAT_SYNTAX)
    return int(words[0]), len(words) == 2
