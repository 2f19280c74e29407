"""Meaning checks at upload time (RFC 5228 2.10.5: a script with errors must not run at all).

`compile_script` turns the syntax tree into `Call` nodes whose tagged arguments are already
sorted out, after checking: every command and test is known and required (RFC 5228 3.2),
argument counts and types, exclusive tags, comparators and relational operators, constant
regular expressions, variable names, control-structure placement. Every error names its line.
Strings are also decoded here for "encoded-character" (RFC 5228 2.4.2.4), because that decoding
happens before anything else looks at a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ast import Argument, Command, Number, Script, StringList, Tag, Test
from .extensions import (
    CAPABILITIES,
    COMMANDS,
    COMPARATORS,
    NOTIFY_METHODS,
    RELATIONAL_OPS,
    TESTS,
    Spec,
)
from .lexer import SieveSyntaxError
from .parser import parse
from .regex import RegexError, compile_posix

# Bounds on what one script may declare (RFC 5229 6 asks for limits on variables).
MAX_COMMANDS = 10_000
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENCODED = re.compile(r"\$\{(hex|unicode):([^}]*)\}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Call:
    """A validated command or test: tags by name (True for a flag tag), then positionals."""

    name: str
    tags: dict[str, int | str | tuple[str, ...] | bool]
    args: tuple[int | str | tuple[str, ...], ...]
    tests: tuple[Call, ...]
    block: tuple[Call, ...] | None
    line: int


@dataclass(frozen=True, slots=True)
class CompiledScript:
    commands: tuple[Call, ...]
    capabilities: frozenset[str]


class _Validator:
    def __init__(self) -> None:
        self.caps: set[str] = set()
        self.count = 0

    def error(self, line: int, message: str) -> SieveSyntaxError:
        return SieveSyntaxError(line, message)

    # -- strings

    def decode(self, value: str, line: int) -> str:
        if "encoded-character" not in self.caps or "${" not in value:
            return value
        return _ENCODED.sub(lambda m: self._decode_one(m, line), value)

    def _decode_one(self, m: re.Match[str], line: int) -> str:
        kind, body = m.group(1).lower(), m.group(2)
        parts = body.split()
        if not parts and body.strip() == "":
            return "" if body == "" or body.isspace() else m.group(0)
        try:
            if kind == "hex":
                raw = bytes(int(p, 16) for p in parts)
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.error(line, "encoded character is not UTF-8") from None
            out = []
            for p in parts:
                cp = int(p, 16)
                if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                    raise self.error(line, f"invalid unicode character {p}")
                out.append(chr(cp))
            return "".join(out)
        except ValueError:
            return m.group(0)  # RFC 5228 2.4.2.4: malformed sequences are left as they are

    # -- structure

    def commands(self, cmds: tuple[Command, ...], top: bool) -> tuple[Call, ...]:
        out: list[Call] = []
        prev: str | None = None
        seen_other = False
        for cmd in cmds:
            self.count += 1
            if self.count > MAX_COMMANDS:
                raise self.error(cmd.line, "script has too many commands")
            if cmd.name == "require":
                if not top or seen_other:
                    raise self.error(cmd.line, "require must come before any other command")
            else:
                seen_other = True
            if cmd.name in ("elsif", "else") and prev not in ("if", "elsif"):
                raise self.error(cmd.line, f"{cmd.name} without a preceding if")
            out.append(self.command(cmd))
            prev = cmd.name
        return tuple(out)

    def command(self, cmd: Command) -> Call:
        spec = COMMANDS.get(cmd.name)
        if spec is None:
            raise self.error(cmd.line, f"unknown command '{cmd.name}'")
        self.need(spec.ext, cmd.line, f"command '{cmd.name}'")
        tags, args = self.arguments(cmd.name, spec, cmd.arguments, cmd.line)
        tests = self.tests_of(cmd.name, spec, cmd.tests, cmd.line)
        if spec.block and cmd.block is None:
            raise self.error(cmd.line, f"{cmd.name} needs a block")
        if not spec.block and cmd.block is not None:
            raise self.error(cmd.line, f"{cmd.name} takes no block")
        if cmd.name == "require":
            names = args[0]
            assert isinstance(names, tuple)
            for name in names:
                if name == "comparator-i;octet" or name == "comparator-i;ascii-casemap":
                    continue
                if name not in CAPABILITIES:
                    raise self.error(cmd.line, f"unknown extension '{name}'")
                self.caps.add(name)
                if name == "spamtestplus":
                    self.caps.add("spamtest")
                if name in ("vacation-seconds",):
                    self.caps.add("vacation")
        block = self.commands(cmd.block, False) if cmd.block is not None else None
        call = Call(cmd.name, tags, args, tests, block, cmd.line)
        self.check_command(call)
        return call

    def tests_of(self, name: str, spec: Spec, tests: tuple[Test, ...], line: int) -> tuple[Call, ...]:
        if spec.tests == "none" and tests:
            # a word after a command that takes no test: the ';' is missing (as Pigeonhole says)
            raise self.error(line, f"missing ';' after {name}")
        if spec.tests == "one" and len(tests) != 1:
            raise self.error(line, f"{name} needs exactly one test")
        if spec.tests == "many" and not tests:
            raise self.error(line, f"{name} needs a list of tests")
        return tuple(self.test(t) for t in tests)

    def test(self, test: Test) -> Call:
        self.count += 1
        if self.count > MAX_COMMANDS:
            raise self.error(test.line, "script has too many tests")
        spec = TESTS.get(test.name)
        if spec is None:
            raise self.error(test.line, f"unknown test '{test.name}'")
        self.need(spec.ext, test.line, f"test '{test.name}'")
        tags, args = self.arguments(test.name, spec, test.arguments, test.line)
        tests = self.tests_of(test.name, spec, test.tests, test.line)
        call = Call(test.name, tags, args, tests, None, test.line)
        self.check_test(call)
        return call

    def need(self, ext: str | None, line: int, what: str) -> None:
        if ext is not None and ext not in self.caps:
            raise self.error(line, f"{what} needs require \"{ext}\"")

    def arguments(
        self, name: str, spec: Spec, arguments: tuple[Argument, ...], line: int
    ) -> tuple[dict[str, int | str | tuple[str, ...] | bool], tuple[int | str | tuple[str, ...], ...]]:
        tags: dict[str, int | str | tuple[str, ...] | bool] = {}
        groups: dict[str, str] = {}
        positional: list[Argument] = []
        i = 0
        while i < len(arguments):
            arg = arguments[i]
            i += 1
            if not isinstance(arg, Tag):
                positional.append(arg)
                continue
            if positional:
                raise self.error(arg.line, f"tag :{arg.name} after positional arguments of {name}")
            ts = spec.tags.get(arg.name)
            if ts is None:
                raise self.error(arg.line, f"unknown tag :{arg.name} for {name}")
            self.need(ts.ext, arg.line, f"tag :{arg.name}")
            if ts.group is not None:
                if ts.group in groups:
                    raise self.error(
                        arg.line, f":{arg.name} conflicts with :{groups[ts.group]} in {name}"
                    )
                groups[ts.group] = arg.name
            if arg.name in tags:
                raise self.error(arg.line, f"tag :{arg.name} given twice")
            if ts.value is None:
                tags[arg.name] = True
                continue
            if i >= len(arguments):
                raise self.error(arg.line, f":{arg.name} needs a {ts.value} argument")
            val = arguments[i]
            i += 1
            tags[arg.name] = self.value(val, ts.value, f":{arg.name}")
        want = spec.positional
        missing = len(want) - len(positional)
        if not (missing == 0 or (0 < missing <= max(spec.optional_leading, spec.optional_trailing))):
            raise self.error(
                line, f"{name} takes {len(spec.positional)} positional argument(s),"
                f" {len(positional)} given"
            )
        lead = missing if spec.optional_leading else 0
        trail = missing if spec.optional_trailing else 0
        kinds = want[lead : len(want) - trail]
        values = [self.value(a, kind, name) for a, kind in zip(positional, kinds, strict=True)]
        padded: list[int | str | tuple[str, ...] | None] = [None] * lead
        padded += values
        padded += [None] * trail
        return tags, tuple(padded)  # type: ignore[arg-type]

    def value(self, arg: Argument, kind: str, what: str) -> int | str | tuple[str, ...]:
        if kind == "number":
            if not isinstance(arg, Number):
                raise self.error(arg.line, f"{what} needs a number")
            return arg.value
        if not isinstance(arg, StringList):
            raise self.error(arg.line, f"{what} needs a string{' list' if kind == 'strlist' else ''}")
        if kind == "string":
            if not arg.single and len(arg.values) != 1:
                raise self.error(arg.line, f"{what} needs a single string")
            return self.decode(arg.values[0], arg.line)
        return tuple(self.decode(v, arg.line) for v in arg.values)

    # -- per-command rules

    def check_match(self, call: Call) -> None:
        comparator = call.tags.get("comparator", "i;ascii-casemap")
        assert isinstance(comparator, str)
        if comparator not in COMPARATORS:
            raise self.error(call.line, f"unknown comparator '{comparator}'")
        if comparator == "i;ascii-numeric" and "comparator-i;ascii-numeric" not in self.caps:
            raise self.error(call.line, "comparator i;ascii-numeric needs require"
                             " \"comparator-i;ascii-numeric\"")
        if comparator == "i;ascii-numeric" and any(
            m in call.tags for m in ("contains", "matches", "regex")
        ):
            raise self.error(call.line, "comparator i;ascii-numeric cannot match substrings")
        for rel in ("value", "count"):
            op = call.tags.get(rel)
            if isinstance(op, str) and op.lower() not in RELATIONAL_OPS:
                raise self.error(call.line, f"invalid relational operator '{op}'")
        if "regex" in call.tags and call.args:
            keys = call.args[-1]
            if isinstance(keys, tuple):
                for key in keys:
                    if "variables" in self.caps and "${" in key:
                        continue  # compiled at run time
                    try:
                        compile_posix(key, comparator == "i;ascii-casemap")
                    except RegexError as exc:
                        raise self.error(call.line, f"invalid regular expression: {exc}") from None

    def check_test(self, call: Call) -> None:
        if any(t in call.tags for t in ("comparator", "is", "contains", "matches", "regex",
                                        "value", "count")) or call.name in (
            "address", "envelope", "header", "body", "string", "date", "currentdate", "hasflag",
            "spamtest", "virustest", "notify_method_capability",
        ):
            self.check_match(call)
        if call.name == "size" and not ({"over", "under"} & set(call.tags)):
            raise self.error(call.line, "size needs :over or :under")
        if "last" in call.tags and "index" not in call.tags and call.name != "duplicate":
            raise self.error(call.line, ":last needs :index")
        if call.name in ("date", "currentdate"):
            zone = call.tags.get("zone")
            if isinstance(zone, str) and "${" not in zone and not re.fullmatch(r"[+-]\d{4}", zone):
                raise self.error(call.line, f"invalid time zone '{zone}'")
        if call.name == "envelope":
            parts = call.args[0]
            assert isinstance(parts, tuple)
            for p in parts:
                if "${" not in p and p.lower() not in ("from", "to", "auth"):
                    raise self.error(call.line, f"unknown envelope part '{p}'")
        if call.name in ("header", "address", "exists", "date"):
            names = call.args[0]
            header_names = (names,) if isinstance(names, str) else names
            for h in header_names if isinstance(header_names, tuple) else ():
                if isinstance(h, str) and "${" not in h and not _header_name(h):
                    raise self.error(call.line, f"invalid header name '{h}'")

    def check_command(self, call: Call) -> None:
        if call.name == "set":
            name = call.args[0]
            assert isinstance(name, str)
            if not _VARIABLE_NAME.match(name) and not re.fullmatch(r"\d+", name):
                raise self.error(call.line, f"invalid variable name '{name}'")
            if re.fullmatch(r"\d+", name):
                raise self.error(call.line, "cannot assign to a match variable")
        if call.name in ("setflag", "addflag", "removeflag") and call.args[0] is not None:
            name = call.args[0]
            assert isinstance(name, str)
            if not _VARIABLE_NAME.match(name):
                raise self.error(call.line, f"invalid variable name '{name}'")
        if call.name == "redirect":
            address = call.args[0]
            assert isinstance(address, str)
            if "${" not in address and not _plausible_address(address):
                raise self.error(call.line, f"invalid redirect address '{address}'")
        if call.name == "fileinto":
            mailbox = call.args[0]
            assert isinstance(mailbox, str)
            if not mailbox:
                raise self.error(call.line, "fileinto needs a mailbox name")
        if call.name == "deleteheader":
            self.check_match(call)
            if "last" in call.tags and "index" not in call.tags:
                raise self.error(call.line, ":last needs :index")
        if call.name in ("addheader", "deleteheader"):
            field = call.args[0]
            if isinstance(field, str) and "${" not in field and not _header_name(field):
                raise self.error(call.line, f"invalid header name '{field}'")
        if call.name == "notify":
            method = call.args[0]
            assert isinstance(method, str)
            if "${" not in method and method.partition(":")[0].lower() not in NOTIFY_METHODS:
                raise self.error(call.line, f"unsupported notification method '{method}'")
            options = call.tags.get("options", ())
            for option in options if isinstance(options, tuple) else ():
                # RFC 5435 3.5: each option is "name=value"
                if "${" not in option and not re.match(r"^[A-Za-z0-9][A-Za-z0-9.+-]*=", option):
                    raise self.error(call.line, f"invalid notify option '{option}'")
            importance = call.tags.get("importance")
            if isinstance(importance, str) and importance not in ("1", "2", "3"):
                raise self.error(call.line, ":importance must be \"1\", \"2\" or \"3\"")
        if call.name == "vacation":
            from_ = call.tags.get("from")
            if isinstance(from_, str) and "${" not in from_ and not _plausible_address(from_):
                raise self.error(call.line, f"invalid :from address '{from_}'")
        if call.name == "include":
            name = call.args[0]
            assert isinstance(name, str)
            if not name or "/" in name or name.startswith("."):
                raise self.error(call.line, f"invalid script name '{name}'")
        if call.name == "global":
            names = call.args[0]
            assert isinstance(names, tuple)
            if "variables" not in self.caps:
                raise self.error(call.line, "global needs require \"variables\"")
            for v in names:
                if not _VARIABLE_NAME.match(v):
                    raise self.error(call.line, f"invalid variable name '{v}'")


def _header_name(name: str) -> bool:
    # RFC 5322 2.2: printable US-ASCII except colon
    return bool(name) and all(33 <= ord(c) <= 126 and c != ":" for c in name)


def _plausible_address(value: str) -> bool:
    addr = value.strip()
    if addr.endswith(">") and "<" in addr:
        addr = addr[addr.rfind("<") + 1 : -1]
    local, at, domain = addr.rpartition("@")
    return bool(at and local and domain and " " not in domain and "@" not in domain)


def compile_script(source: str | bytes) -> CompiledScript:
    """Parse and validate; raises SieveSyntaxError (with `line`) for any error."""
    script: Script = parse(source)
    v = _Validator()
    commands = v.commands(script.commands, True)
    return CompiledScript(commands, frozenset(v.caps))
