"""Filter rules, forwarding and vacation settings written as Sieve (mailwright.sieve.rules),
read back from the script, and run by the interpreter as the rules say."""

from __future__ import annotations

from mailwright.sieve import Envelope, SieveMessage, compile_script, run_script
from mailwright.sieve.actions import Discard, FileInto, Keep, Redirect, Reject
from mailwright.sieve.rules import Action, Condition, Filter, Rules, check_filter, parse, script


def test_nothing_on_is_an_empty_valid_script() -> None:
    text = script(Rules())
    assert "redirect " not in text and "require" not in text
    compile_script(text)


def test_forward_keeping_a_copy_and_vacation() -> None:
    rules = Rules(forward_to="me@elsewhere.test", keep_copy=True, vacation=True,
                  subject='Away "until" Monday \\o/', message="Back soon.\nReally.\r\n",
                  days=3, addresses=("ann@example.test", "sales@example.test"))
    text = script(rules)
    assert 'require ["copy", "vacation"];' in text
    assert 'redirect :copy "me@elsewhere.test";' in text
    assert ':subject "Away \\"until\\" Monday \\\\o/"' in text
    assert ':days 3' in text and '"sales@example.test"' in text
    assert "Back soon.\r\nReally.\r\n" in text
    compile_script(text)


def test_forward_without_copy_and_json_round_trip() -> None:
    rules = Rules(forward_to="me@elsewhere.test", keep_copy=False)
    assert 'redirect "me@elsewhere.test";' in script(rules)
    assert Rules.from_json(rules.to_json()) == rules
    assert Rules.from_json("not json") == Rules()
    assert Rules(days=500, vacation=True).active
    assert ":days 90" in script(Rules(days=500, vacation=True))


# --- filter rules ----------------------------------------------------------------------------

RULES = Rules(
    vacation=True, message="Away.", forward_to="me@elsewhere.test", keep_copy=True,
    filters=(
        Filter((Condition("subject", "contains", "invoice"), Condition("size", "over", "1K")),
               (Action("move", "Archive"), Action("read"))),
        Filter((Condition("from", "is", "boss@remote.test"),
                Condition("header", "matches", "*announce*", "List-Id")),
               (Action("flag"), Action("copy", 'Odd "name" \\ here'), Action("stop")), any_of=True),
        Filter((Condition("to", "contains", "sales@"),), (Action("reject", "No sales, thanks."),)),
        Filter((Condition("cc", "matches", "*@spam.test"),), (Action("discard"),)),
        Filter((Condition("subject", "is", "fwd me"),), (Action("redirect_copy", "x@y.test"),)),
    ))


def _run(text: str, message: str) -> tuple[list[object], bool]:
    raw = message.replace("\n", "\r\n").encode()
    result = run_script(compile_script(text), SieveMessage.from_bytes(raw),
                        Envelope("gina@remote.test", "ann@example.test"))
    assert result.error is None, result.error
    return list(result.actions), result.implicit_keep


def test_rules_round_trip_through_the_script() -> None:
    text = script(RULES)
    assert parse(text) == RULES
    assert parse(text.replace("\r\n", "\n")) == RULES  # a client that stored bare LFs
    assert 'require ["copy", "fileinto", "imap4flags", "reject", "vacation"];' in text
    assert 'if allof (header :contains "subject" "invoice", size :over 1K) {' in text
    assert ('if anyof (address :all :is "from" "boss@remote.test", '
            'header :matches "List-Id" "*announce*") {') in text
    assert 'fileinto :copy "Odd \\"name\\" \\\\ here";' in text
    # flags first (RFC 5232: fileinto takes the flags set so far), whatever the user's order
    assert text.index('addflag "\\\\Seen";') < text.index('fileinto "Archive";')
    # rules before the vacation reply and forwarding
    assert text.index("discard;") < text.index("vacation ") < text.index("redirect :copy \"me@")


def test_a_changed_script_is_not_taken_for_the_editors() -> None:
    text = script(RULES)
    assert parse(text.replace('"invoice"', '"bill"', 1).replace("invoice", "bill")) is not None
    assert parse(text.replace('fileinto "Archive";', 'fileinto "Spam";')) is None  # body only
    assert parse(text + "keep;\r\n") is None
    assert parse('require "fileinto";\r\nif true { fileinto "X"; }\r\n') is None
    assert parse("# mailwright-rules: {not json\r\nkeep;\r\n") is None
    assert parse("") is None


def test_the_generated_script_does_what_the_rules_say() -> None:
    text = script(Rules(filters=RULES.filters))
    big = "x" * 2000
    actions, keep = _run(text, f"From: a@b.test\nSubject: Invoice 7\n\n{big}\n")
    assert actions == [FileInto("Archive", ("\\Seen",))] and not keep
    actions, keep = _run(text, "From: a@b.test\nSubject: Invoice 7\n\nshort\n")
    assert actions == [] and keep  # both conditions needed
    actions, keep = _run(text, "From: Boss <boss@remote.test>\nSubject: hi\n\nx\n")
    assert actions == [FileInto('Odd "name" \\ here', ("\\Flagged",), copy=True)] and keep
    actions, _ = _run(text, "From: a@b.test\nTo: sales@example.test\nSubject: s\n\nx\n")
    assert actions == [Reject("No sales, thanks.", extended=False)]
    actions, keep = _run(text, "From: a@b.test\nCc: z@spam.test\nSubject: s\n\nx\n")
    assert actions == [Discard()] and not keep
    actions, keep = _run(text, "From: a@b.test\nSubject: FWD me\n\nx\n")
    assert actions == [Redirect("x@y.test", copy=True)] and keep
    assert Keep not in [type(a) for a in actions]


def test_check_filter_refuses_what_cannot_be_written() -> None:
    ok = (Action("move", "Archive"),)
    assert check_filter(Filter((Condition("subject", "is", "x"),), ok)) is None
    assert "at least one condition" in (check_filter(Filter((), ok)) or "")
    assert "at least one action" in (check_filter(Filter((Condition("to", "is", "x"),), ())) or "")
    assert check_filter(Filter((Condition("size", "contains", "1"),), ok))  # no such comparison
    assert check_filter(Filter((Condition("size", "over", "lots"),), ok))
    assert check_filter(Filter((Condition("header", "is", "x", "Bad:Name"),), ok))
    assert check_filter(Filter((Condition("subject", "is", "two\nlines"),), ok))
    assert check_filter(Filter((Condition("subject", "is", "x"),), (Action("move", ""),)))
    assert check_filter(Filter((Condition("subject", "is", "x"),),
                               (Action("reject", "no"), Action("move", "A"))))
    assert check_filter(Filter((Condition("subject", "is", "x"),),
                               (Action("discard"), Action("redirect", "a@b.test"))))
    assert check_filter(Filter((Condition("subject", "is", "x"),), (Action("flag"), Action("flag"))))
    assert check_filter(Filter((Condition("subject", "is", "x"),), (Action("explode"),)))
