"""The language core on its own: lexer, validator errors with lines, the wildcard matcher,
limits and run-time errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.sieve import (
    Envelope,
    Limits,
    SieveMessage,
    SieveSyntaxError,
    compile_script,
    run_script,
)
from mailwright.sieve.actions import FileInto, Keep, Redirect
from mailwright.sieve.lexer import Kind, tokenize
from mailwright.sieve.matching import wildcard_match

MSG = SieveMessage.from_bytes(b"Subject: Hello World\r\nTo: bob@example.test\r\n\r\nbody\r\n")
ENV = Envelope("alice@example.org", "bob@example.test")


def run(text: str, limits: Limits | None = None) -> object:
    return run_script(compile_script(text), SieveMessage.from_bytes(MSG.render()), ENV,
                      limits=limits)


def test_sieve_lexer_lines_and_multiline_strings() -> None:
    toks = tokenize('keep;\n# c\n/* a\nb */ fileinto text:\nline\n..dot\n.\n;\n"q\\"x\\\\"')
    assert [(t.kind, t.line) for t in toks if t.kind is Kind.IDENTIFIER] == [
        (Kind.IDENTIFIER, 1), (Kind.IDENTIFIER, 4)]
    strings = [t for t in toks if t.kind is Kind.STRING]
    assert strings[0].text == "line\r\n.dot\r\n" and strings[0].line == 4
    assert strings[1].text == 'q"x\\' and strings[1].line == 9


@pytest.mark.parametrize(("script", "line", "fragment"), [
    ("keep;\n\nfrobnicate;", 3, "unknown command"),
    ('require "fileinto";\nkeep;\nrequire "envelope";', 3, "require must come before"),
    ('if true {\n keep;\n', 3, "block opened at line 1"),
    ('fileinto "x";', 1, 'needs require "fileinto"'),
    ('require "vacation";\nvacation :days "x" "y";', 2, ":days needs a number"),
    ('if header :is :contains "a" "b" { keep; }', 1, "conflicts"),
    ('require "regex";\n\nif header :regex "a" "[" { keep; }', 3, "regular expression"),
    ('\n\n"x";', 3, "expected a command"),
    (b"keep;\n\xff", 2, "UTF-8"),
])
def test_sieve_validator_errors_name_the_line(script: str | bytes, line: int, fragment: str) -> None:
    with pytest.raises(SieveSyntaxError) as err:
        compile_script(script)
    assert err.value.line == line and fragment in err.value.message


def _reference(value: str, key: str, fold: bool) -> list[str] | None:
    """The wildcard semantics as a backtracking regex (non-greedy groups, anchored)."""
    out, i = [], 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key):
            out.append(re.escape(key[i + 1]))
            i += 2
            continue
        out.append("(.*?)" if c == "*" else "(.)" if c == "?" else re.escape(c))
        i += 1
    m = re.fullmatch("".join(out), value, re.DOTALL | (re.IGNORECASE | re.ASCII if fold else 0))
    return None if m is None else [value, *m.groups()]


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="abAB*?\\", max_size=10), st.text(alphabet="abAB*?\\", max_size=12),
       st.booleans())
def test_sieve_wildcard_matcher_equals_backtracking_reference(
    key: str, value: str, fold: bool
) -> None:
    assert wildcard_match(value, key, fold) == _reference(value, key, fold)


def test_sieve_wildcard_matcher_is_linear_on_hostile_keys() -> None:
    value = "a" * 20000
    assert wildcard_match(value, "*a*a*a*a*a*a*a*a*b", False) is None  # returns, no blow-up


def test_sieve_limits_make_run_time_errors() -> None:
    many = "".join(f'redirect "r{i}@example.org";\n' for i in range(5))
    assert "too many redirects" in (run(many).error or "")  # type: ignore[attr-defined]
    actions = 'require "fileinto";\n' + "".join(f'fileinto "f{i}";\n' for i in range(70))
    assert "too many actions" in (run(actions).error or "")  # type: ignore[attr-defined]
    steps = "if " + "not " * 50 + "true { keep; }\n"
    result = run(steps * 10, Limits(max_steps=100))
    assert "too many steps" in (result.error or "")  # type: ignore[attr-defined]
    variables = 'require "variables";\n' + "".join(f'set "v{i}" "x";\n' for i in range(300))
    assert "too many variables" in (run(variables).error or "")  # type: ignore[attr-defined]


def test_sieve_failed_run_has_no_actions_and_keeps() -> None:
    result = run('require ["fileinto", "reject"];\nfileinto "A";\nreject "no";')
    assert result.failed and result.actions == [] and result.implicit_keep  # type: ignore[attr-defined]


def test_sieve_actions_dedupe_and_keep_cancelling() -> None:
    result = run('require ["fileinto", "copy"];\nfileinto "A"; fileinto "A";'
                 ' redirect :copy "x@y.z"; redirect :copy "x@y.z";')
    assert result.actions == [FileInto("A"), Redirect("x@y.z", copy=True)]  # type: ignore[attr-defined]
    assert not result.implicit_keep  # type: ignore[attr-defined]
    result = run('require "fileinto";\nkeep; fileinto "INBOX";')
    assert result.actions == [Keep()]  # type: ignore[attr-defined]


def test_sieve_editheader_protects_received() -> None:
    msg = SieveMessage.from_bytes(b"Received: x\r\nSubject: s\r\n\r\nb")
    compiled = compile_script('require "editheader";\ndeleteheader "received";'
                              ' addheader "Received" "forged"; deleteheader "subject";')
    result = run_script(compiled, msg, ENV)
    assert result.message is not None
    assert result.message.render() == b"Received: x\r\n\r\nb"
