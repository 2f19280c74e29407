"""The ACL commands' grammar (RFC 4314 3, ABNF in 7): mailbox, identifier and rights are
astrings; anything else is a tagged BAD, and the commands need an authenticated session."""

from __future__ import annotations

import pytest

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.grammar import CommandError, parse_command
from mailwright.proto.imap.state import State, check_allowed


def test_parser_acl_commands() -> None:
    assert parse_command(b'a SETACL INBOX/Drafts "John Doe" lrswicda') == ast.SetAcl(
        "a", "INBOX/Drafts", "John Doe", "lrswicda")
    assert parse_command(b"a SETACL INBOX -Fred +lr") == ast.SetAcl("a", "INBOX", "-Fred", "+lr")
    assert parse_command(b'a SETACL INBOX fred ""') == ast.SetAcl("a", "INBOX", "fred", "")
    assert parse_command(b"a DELETEACL INBOX Fred") == ast.DeleteAcl("a", "INBOX", "Fred")
    assert parse_command(b"a GETACL {5+}\r\nINBOX") == ast.GetAcl("a", "INBOX")
    assert parse_command(b"a LISTRIGHTS ~/Mail/saved smith") == ast.ListRights(
        "a", "~/Mail/saved", "smith")
    assert parse_command(b'a MYRIGHTS "Other Users/alice@example.org/Projects"') == (
        ast.MyRights("a", "Other Users/alice@example.org/Projects"))
    listing = parse_command(b'a LIST "" % RETURN (MYRIGHTS)')
    assert isinstance(listing, ast.ListCmd) and listing.returns == ("MYRIGHTS",)


@pytest.mark.parametrize("line", [
    b"a SETACL INBOX fred", b"a SETACL INBOX", b"a DELETEACL INBOX", b"a GETACL",
    b"a GETACL INBOX extra", b"a MYRIGHTS", b"a LISTRIGHTS INBOX", b"a SETACL INBOX (fred) lr",
    b"a MYRIGHTS INBOX  ", b"a SETACL INBOX fred lr x",
])
def test_parser_acl_malformed_is_bad(line: bytes) -> None:
    with pytest.raises(CommandError) as err:
        parse_command(line)
    assert err.value.tag == "a" and err.value.error.status == "BAD"


def test_acl_commands_need_authentication() -> None:
    for line in (b"a GETACL INBOX", b"a MYRIGHTS INBOX", b"a SETACL INBOX x lr"):
        cmd = parse_command(line)
        with pytest.raises(ProtocolError):
            check_allowed(cmd, State.NOT_AUTHENTICATED)
        check_allowed(cmd, State.AUTHENTICATED)
        check_allowed(cmd, State.SELECTED)
