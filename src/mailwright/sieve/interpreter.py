"""Run a validated script against one message for one recipient (RFC 5228 2.10).

House rules:
- No I/O here. What the script needs from outside (does a mailbox exist, was this message
  seen before, the text of an included script) comes through the `Environment` protocol, which
  the delivery code implements; it runs this module in a worker thread.
- Everything is bounded by `Limits`: steps (commands and tests evaluated), wall time, actions,
  redirects, variable sizes, include depth, header edits. Going over a limit is a run-time
  error, and a run-time error keeps the message (RFC 5228 2.10.6): actions collected so far are
  dropped and only the implicit keep remains.
"""

from __future__ import annotations

import email.header
import hashlib
import re
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from . import datetest
from .actions import (
    Action,
    Discard,
    DuplicateRecord,
    FileInto,
    Keep,
    Notify,
    Redirect,
    Reject,
    RunResult,
    Vacation,
)
from .matching import MatchError, match_values
from .message import (
    Envelope,
    HeaderField,
    SieveMessage,
    addresses,
    body_texts,
    decode_header_value,
    split_address,
    unfold,
)
from .validator import Call, CompiledScript


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = 200_000
    max_seconds: float = 5.0
    max_actions: int = 64
    max_redirects: int = 4
    max_variables: int = 256
    max_variable_size: int = 4096
    max_include_depth: int = 10
    max_includes: int = 32
    max_header_edits: int = 64
    subaddress_separator: str = "+"


@dataclass(frozen=True, slots=True)
class ScoreHeaders:
    """Where spamtest and virustest read their input (RFC 5235 leaves this to the site)."""

    spam_score: str = "X-Spam-Score"  # a number, higher is more spammy
    spam_status: str = "X-Spam-Status"  # SpamAssassin form: "Yes, score=7.1 required=5.0"
    spam_max: float = 10.0
    virus_score: str = "X-Virus-Score"  # 1 (clean) to 5 (known virus), as RFC 5235 3.3


class Environment(Protocol):
    def mailbox_exists(self, name: str) -> bool: ...
    def special_use_exists(self, mailbox: str | None, flags: Sequence[str]) -> bool: ...
    def duplicate_seen(self, key: str) -> bool: ...
    def load_include(self, name: str, global_: bool) -> CompiledScript | None: ...


class NullEnvironment:
    """For tests and `sieve check`: nothing exists, nothing was seen, nothing includes."""

    def mailbox_exists(self, name: str) -> bool:
        return name.upper() == "INBOX"

    def special_use_exists(self, mailbox: str | None, flags: Sequence[str]) -> bool:
        return False

    def duplicate_seen(self, key: str) -> bool:
        return False

    def load_include(self, name: str, global_: bool) -> CompiledScript | None:
        return None


class SieveRuntimeError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class _Stop(Exception):
    pass


class _Return(Exception):
    pass


_VAR_REF = re.compile(r"\$\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROTECTED = frozenset({"received", "auto-submitted"})  # RFC 5293 6: never edited


@dataclass(slots=True)
class _Scope:
    caps: frozenset[str]
    variables: dict[str, str] = field(default_factory=dict)
    globals_declared: set[str] = field(default_factory=set)


class Interpreter:
    def __init__(
        self,
        message: SieveMessage,
        envelope: Envelope,
        environment: Environment,
        *,
        limits: Limits | None = None,
        scores: ScoreHeaders | None = None,
        now: datetime | None = None,
    ) -> None:
        self.message = message
        self.envelope = envelope
        self.env = environment
        self.limits = limits or Limits()
        self.scores = scores or ScoreHeaders()
        self.now = now or datetime.now().astimezone()
        self.result = RunResult(message=message)
        self.flags: list[str] = []  # the internal flag variable (RFC 5232 3)
        self.match: list[str] = []
        self.globals: dict[str, str] = {}
        self.deadline = 0.0
        self.included: set[tuple[str, bool]] = set()
        self.include_count = 0
        self.redirects = 0
        self.edits = 0

    # -- entry point

    def run(self, script: CompiledScript) -> RunResult:
        """Run `script` to its end; the result carries actions or the error that voided them."""
        return self.run_all([script])

    def run_all(self, scripts: Sequence[CompiledScript]) -> RunResult:
        """Run scripts in order on one result (the administrator's before and after scripts
        around the user's); `stop` in any of them ends the whole sequence."""
        self.deadline = time.monotonic() + self.limits.max_seconds
        try:
            for script in scripts:
                try:
                    self.block(script.commands, _Scope(script.capabilities), 0)
                except _Return:
                    continue
        except _Stop:
            pass
        except SieveRuntimeError as exc:
            return RunResult(error=str(exc), message=self.message, steps=self.result.steps)
        except (RecursionError, MemoryError):
            return RunResult(error="script too complex", message=self.message)
        self.result.implicit_flags = tuple(self.flags)
        self.result.message = self.message
        return self.result

    # -- control

    def step(self, line: int) -> None:
        self.result.steps += 1
        if self.result.steps > self.limits.max_steps:
            raise SieveRuntimeError(line, "too many steps")
        if self.result.steps % 16 == 0 and time.monotonic() > self.deadline:
            raise SieveRuntimeError(line, "script ran too long")

    def block(self, calls: Sequence[Call], scope: _Scope, depth: int) -> None:
        branch_taken = False
        for call in calls:
            self.step(call.line)
            name = call.name
            if name == "if":
                branch_taken = self.test(call.tests[0], scope)
                if branch_taken:
                    assert call.block is not None
                    self.block(call.block, scope, depth)
                continue
            if name == "elsif":
                if not branch_taken:
                    branch_taken = self.test(call.tests[0], scope)
                    if branch_taken:
                        assert call.block is not None
                        self.block(call.block, scope, depth)
                continue
            if name == "else":
                if not branch_taken:
                    assert call.block is not None
                    self.block(call.block, scope, depth)
                branch_taken = True
                continue
            self.command(call, scope, depth)

    # -- strings and variables

    def expand(self, value: str, scope: _Scope) -> str:
        if "variables" not in scope.caps or "${" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref.isdigit():
                idx = int(ref)
                return self.match[idx] if idx < len(self.match) else ""
            lname = ref.lower()
            if lname.startswith("global."):
                return self.globals.get(lname[7:], "") if _NAME.match(lname[7:]) else m.group(0)
            if not _NAME.match(ref):
                return m.group(0)
            if lname in scope.globals_declared:
                return self.globals.get(lname, "")
            return scope.variables.get(lname, "")

        out = _VAR_REF.sub(sub, value)
        return out[: self.limits.max_variable_size * 4]

    def strings(self, value: object, scope: _Scope) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [self.expand(value, scope)]
        assert isinstance(value, tuple)
        return [self.expand(v, scope) for v in value]

    def string(self, value: object, scope: _Scope) -> str:
        assert isinstance(value, str)
        return self.expand(value, scope)

    def set_variable(self, name: str, value: str, scope: _Scope, line: int) -> None:
        lname = name.lower()
        value = value[: self.limits.max_variable_size]
        if lname.startswith("global."):
            lname = lname[7:]
            target = self.globals
        elif lname in scope.globals_declared:
            target = self.globals
        else:
            target = scope.variables
        if lname not in target and len(target) >= self.limits.max_variables:
            raise SieveRuntimeError(line, "too many variables")
        target[lname] = value

    def get_variable(self, name: str, scope: _Scope) -> str:
        lname = name.lower()
        if lname.startswith("global."):
            return self.globals.get(lname[7:], "")
        if lname in scope.globals_declared:
            return self.globals.get(lname, "")
        return scope.variables.get(lname, "")

    # -- matching

    def compare(self, call: Call, values: Sequence[str], keys: Sequence[str]) -> bool:
        if "value" in call.tags:
            match_type, relation = "value", str(call.tags["value"]).lower()
        elif "count" in call.tags:
            match_type, relation = "count", str(call.tags["count"]).lower()
        else:
            match_type = next((m for m in ("is", "contains", "matches", "regex") if m in call.tags), "is")
            relation = "eq"
        comparator = str(call.tags.get("comparator", "i;ascii-casemap")).lower()
        try:
            found = match_values(values, keys, match_type=match_type, comparator=comparator,
                                 relation=relation, deadline=self.deadline)
        except MatchError as exc:
            raise SieveRuntimeError(call.line, str(exc)) from None
        if found is None:
            return False
        if match_type in ("matches", "regex"):
            self.match = found
        return True

    # -- tests

    def test(self, call: Call, scope: _Scope) -> bool:
        self.step(call.line)
        name = call.name
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not self.test(call.tests[0], scope)
        if name == "anyof":
            return any(self.test(t, scope) for t in call.tests)
        if name == "allof":
            return all(self.test(t, scope) for t in call.tests)
        if name == "size":
            limit = call.args[0]
            assert isinstance(limit, int)
            return self.message.size > limit if "over" in call.tags else self.message.size < limit
        if name == "exists":
            return all(self.message.raw_values(h) for h in self.strings(call.args[0], scope))
        if name == "header":
            values: list[str] = []
            for h in self.strings(call.args[0], scope):
                values += self.indexed(call, self.message.values(h))
            return self.compare(call, values, self.strings(call.args[1], scope))
        if name == "address":
            values = []
            for h in self.strings(call.args[0], scope):
                for raw in self.indexed(call, self.message.raw_values(h)):
                    found = addresses(raw)
                    if not found and unfold(raw) and not any(t in call.tags for t in (
                            "localpart", "domain", "user", "detail")):
                        # RFC 5228 5.1: an unparsable value is only matched as a whole
                        values.append(unfold(raw))
                    for addr in found:
                        part = self.address_part(call, addr)
                        if part is not None:
                            values.append(part)
            return self.compare(call, values, self.strings(call.args[1], scope))
        if name == "envelope":
            values = []
            for part_name in self.strings(call.args[0], scope):
                p = part_name.lower()
                env_addr = {"from": self.envelope.sender, "to": self.envelope.recipient,
                            "auth": self.envelope.auth}.get(p)
                if env_addr is None or (p == "auth" and not env_addr):
                    continue
                part = self.address_part(call, env_addr) if env_addr else ""
                if part is not None:
                    values.append(part)
            return self.compare(call, values, self.strings(call.args[1], scope))
        if name == "body":
            transform = "raw" if "raw" in call.tags else "content" if "content" in call.tags else "text"
            content = tuple(self.strings(call.tags.get("content", ()), scope))
            texts = body_texts(self.message, transform, content)
            if "count" not in call.tags and "value" not in call.tags:
                return self.compare(call, texts, self.strings(call.args[0], scope))
            return self.compare(call, texts, self.strings(call.args[0], scope))
        if name == "string":
            sources = self.strings(call.args[0], scope)
            if "count" in call.tags:
                sources = [s for s in sources if s]
            return self.compare(call, sources, self.strings(call.args[1], scope))
        if name == "date":
            header, part = self.string(call.args[0], scope), self.string(call.args[1], scope)
            values = []
            for raw in self.indexed(call, self.message.values(header)):
                if header.lower() == "received":
                    raw = raw.rpartition(";")[2]  # RFC 5260 4.1: the date after the last ';'
                dt = datetest.parse_date(raw)
                if dt is None:
                    continue
                if "zone" in call.tags:
                    dt = dt.astimezone(datetest.zone(self.string(call.tags["zone"], scope)))
                elif "originalzone" not in call.tags:
                    dt = dt.astimezone(datetest.local_zone())
                value = datetest.date_part(dt, part)
                if value is not None:  # an unknown date part matches nothing (as Pigeonhole)
                    values.append(value)
            return self.compare(call, values, self.strings(call.args[2], scope))
        if name == "currentdate":
            part = self.string(call.args[0], scope)
            dt = self.now
            if "zone" in call.tags:
                dt = dt.astimezone(datetest.zone(self.string(call.tags["zone"], scope)))
            value = datetest.date_part(dt, part)
            if value is None:
                return False
            return self.compare(call, [value], self.strings(call.args[1], scope))
        if name == "duplicate":
            return self.duplicate(call, scope)
        if name == "mailboxexists":
            return all(self.env.mailbox_exists(m) for m in self.strings(call.args[0], scope))
        if name == "specialuse_exists":
            mailbox = self.string(call.args[0], scope) if call.args[0] is not None else None
            return self.env.special_use_exists(mailbox, self.strings(call.args[1], scope))
        if name == "hasflag":
            if call.args[0] is not None:
                flags: list[str] = []
                for var in self.strings(call.args[0], scope):
                    flags += _split_flags(self.get_variable(var, scope))
            else:
                flags = list(self.flags)
            return self.compare(call, flags, self.strings(call.args[1], scope))
        if name == "spamtest":
            return self.compare(call, [self.spam_value("percent" in call.tags)],
                                self.strings(call.args[0], scope))
        if name == "virustest":
            return self.compare(call, [self.virus_value()], self.strings(call.args[0], scope))
        if name == "valid_notify_method":
            return all(_valid_mailto(u) for u in self.strings(call.args[0], scope))
        if name == "notify_method_capability":
            uri = self.string(call.args[0], scope)
            cap = self.string(call.args[1], scope).lower()
            if not _valid_mailto(uri) or cap != "online":
                return False
            return self.compare(call, ["maybe"], self.strings(call.args[2], scope))
        raise SieveRuntimeError(call.line, f"test {name} is not implemented")

    def indexed(self, call: Call, values: list[str]) -> list[str]:
        """RFC 5260 6: :index n [:last] picks one field instance."""
        idx = call.tags.get("index")
        if not isinstance(idx, int) or isinstance(idx, bool):
            return values
        if idx < 1 or idx > len(values):
            return []
        return [values[-idx] if "last" in call.tags else values[idx - 1]]

    def address_part(self, call: Call, addr: str) -> str | None:
        local, domain = split_address(addr)
        if "localpart" in call.tags:
            return local
        if "domain" in call.tags:
            return domain
        if "user" in call.tags or "detail" in call.tags:
            sep = self.limits.subaddress_separator
            user, has_sep, detail = local.partition(sep)
            if "user" in call.tags:
                return user
            return detail if has_sep else None  # RFC 5233 4: no detail, no match
        return addr

    def spam_value(self, percent: bool) -> str:
        score: float | None = None
        raw = self.message.values(self.scores.spam_score)
        if raw:
            m = re.match(r"\s*(-?[0-9]+(?:\.[0-9]+)?)", raw[0])
            if m:
                score = float(m.group(1))
        if score is None:
            status = self.message.values(self.scores.spam_status)
            if status:
                m = re.search(r"score=(-?[0-9]+(?:\.[0-9]+)?)", status[0])
                if m:
                    score = float(m.group(1))
        if score is None:
            return "0"  # RFC 5235 3.2: not tested
        ratio = min(max(score / self.scores.spam_max, 0.0), 1.0)
        if percent:
            return str(int(ratio * 100))
        # RFC 5235 3.2: 1 (not spam) .. 10 (spam), scaled as Pigeonhole scales a score
        return "10" if ratio >= 1.0 else str(int(1 + 9 * ratio))

    def virus_value(self) -> str:
        raw = self.message.values(self.scores.virus_score)
        if raw:
            m = re.match(r"\s*(-?[0-9]+(?:\.[0-9]+)?)", raw[0])
            if m:
                ratio = min(max(float(m.group(1)) / 5.0, 0.0), 1.0)
                return "5" if ratio >= 1.0 else str(int(1 + 4 * ratio))
        return "0"  # RFC 5235 3.3: not tested

    def duplicate(self, call: Call, scope: _Scope) -> bool:
        # RFC 7352 3: the message is identified by :uniqueid, by a header, or by Message-ID
        if "uniqueid" in call.tags:
            ident = self.string(call.tags["uniqueid"], scope)
        else:
            header = self.string(call.tags.get("header", "message-id"), scope)
            values = self.message.values(header)
            if not values:
                return False
            ident = values[0].strip()
        handle = self.string(call.tags.get("handle", ""), scope)
        key = "duplicate:" + hashlib.sha256(f"{handle}\x00{ident}".encode()).hexdigest()
        seconds = call.tags.get("seconds", 7 * 86400)
        assert isinstance(seconds, int)
        seen = any(d.key == key for d in self.result.duplicates) or self.env.duplicate_seen(key)
        refresh = "last" in call.tags
        if not seen or refresh:
            self.result.duplicates.append(DuplicateRecord(key, seconds, refresh))
        return seen

    # -- commands

    def add_action(self, action: Action, line: int) -> None:
        acts = self.result.actions
        if isinstance(action, FileInto) and action.mailbox.upper() == "INBOX" and not (
            action.create or action.special_use
        ):
            action = Keep(action.flags)  # fileinto "INBOX" is keep (RFC 5228 4.3)
        if action in acts:
            return  # RFC 5228 4.1-4.3: the same action twice is done once
        if len(acts) >= self.limits.max_actions:
            raise SieveRuntimeError(line, "too many actions")
        # RFC 5429 2.1: a refused message is not also delivered, forwarded or answered
        delivering = Keep | FileInto | Redirect | Vacation | Reject
        if isinstance(action, Reject) and any(isinstance(a, delivering) for a in acts):
            raise SieveRuntimeError(line, "reject conflicts with an earlier action")
        if isinstance(action, delivering) and any(isinstance(a, Reject) for a in acts):
            raise SieveRuntimeError(line, "action conflicts with reject")
        if isinstance(action, Vacation) and any(isinstance(a, Vacation) for a in acts):
            raise SieveRuntimeError(line, "only one vacation action per run")
        acts.append(action)

    def flag_list(self, call: Call, scope: _Scope) -> tuple[str, ...]:
        if "flags" in call.tags:
            flags: list[str] = []
            for f in self.strings(call.tags["flags"], scope):
                flags += _split_flags(f)
            return tuple(_dedupe_flags(flags))
        if "imap4flags" in scope.caps:
            return tuple(self.flags)
        return ()

    def command(self, call: Call, scope: _Scope, depth: int) -> None:
        name = call.name
        line = call.line
        if name == "require":
            return
        if name == "stop":
            raise _Stop
        if name == "return":
            raise _Return
        if name == "keep":
            self.add_action(Keep(self.flag_list(call, scope)), line)
            self.result.implicit_keep = False
        elif name == "discard":
            self.add_action(Discard(), line)
            self.result.implicit_keep = False
        elif name == "fileinto":
            mailbox = self.string(call.args[0], scope)
            special = call.tags.get("specialuse")
            self.add_action(FileInto(
                mailbox, self.flag_list(call, scope), bool(call.tags.get("create")),
                self.string(special, scope) if special is not None else None,
                bool(call.tags.get("copy")),
            ), line)
            if not call.tags.get("copy"):
                self.result.implicit_keep = False
        elif name == "redirect":
            address = self.string(call.args[0], scope).strip()
            if address.endswith(">") and "<" in address:
                address = address[address.rfind("<") + 1 : -1]
            local, domain = split_address(address)
            if not local or not domain:
                raise SieveRuntimeError(line, f"invalid redirect address '{address}'")
            action = Redirect(address, bool(call.tags.get("copy")))
            if action not in self.result.actions:
                self.redirects += 1
                if self.redirects > self.limits.max_redirects:
                    raise SieveRuntimeError(line, "too many redirects")
            self.add_action(action, line)
            if not call.tags.get("copy"):
                self.result.implicit_keep = False
        elif name in ("reject", "ereject"):
            self.add_action(Reject(self.string(call.args[0], scope), name == "ereject"), line)
            self.result.implicit_keep = False
        elif name == "vacation":
            self.vacation(call, scope)
        elif name == "notify":
            method = self.string(call.args[0], scope)
            if not _valid_mailto(method):
                raise SieveRuntimeError(line, f"invalid notification URI '{method}'")
            opts = call.tags.get("options", ())
            frm = call.tags.get("from")
            msg = call.tags.get("message")
            self.add_action(Notify(
                method, self.string(frm, scope) if frm is not None else None,
                str(call.tags.get("importance", "2")),
                tuple(self.strings(opts, scope)),
                self.string(msg, scope) if msg is not None else None,
            ), line)
        elif name == "set":
            self.set_command(call, scope)
        elif name in ("setflag", "addflag", "removeflag"):
            self.flag_command(call, scope)
        elif name == "include":
            self.include(call, scope, depth)
        elif name == "global":
            for v in self.strings(call.args[0], scope):
                scope.globals_declared.add(v.lower())
        elif name == "addheader":
            self.addheader(call, scope)
        elif name == "deleteheader":
            self.deleteheader(call, scope)
        else:
            raise SieveRuntimeError(line, f"command {name} is not implemented")

    def vacation(self, call: Call, scope: _Scope) -> None:
        period = call.tags.get("seconds")
        if isinstance(period, int):
            seconds = period
        else:
            days = call.tags.get("days", 7)
            seconds = (days if isinstance(days, int) else 7) * 86400
        reason = self.string(call.args[0], scope)
        subject = call.tags.get("subject")
        frm = call.tags.get("from")
        handle_tag = call.tags.get("handle")
        addrs = tuple(self.strings(call.tags.get("addresses", ()), scope))
        subject_s = self.string(subject, scope) if subject is not None else None
        from_s = self.string(frm, scope) if frm is not None else None
        if handle_tag is not None:
            handle = self.string(handle_tag, scope)
        else:
            # RFC 5230 4.2: without :handle, the arguments themselves identify the response
            handle = "\x00".join((reason, subject_s or "", from_s or "", ",".join(addrs),
                                  "mime" if call.tags.get("mime") else ""))
        self.add_action(Vacation(reason, seconds, subject_s, from_s, addrs,
                                 bool(call.tags.get("mime")), handle), call.line)

    def set_command(self, call: Call, scope: _Scope) -> None:
        name = self.string(call.args[0], scope)
        value = self.string(call.args[1], scope)
        # RFC 5229 4.1: modifiers apply by precedence, highest first
        mods = [m for m in ("lower", "upper", "lowerfirst", "upperfirst", "quotewildcard",
                            "quoteregex", "encodeurl", "length") if m in call.tags]
        for m in mods:
            if m == "lower":
                value = value.lower()
            elif m == "upper":
                value = value.upper()
            elif m == "lowerfirst":
                value = value[:1].lower() + value[1:]
            elif m == "upperfirst":
                value = value[:1].upper() + value[1:]
            elif m == "quotewildcard":
                value = re.sub(r"([*?\\])", r"\\\1", value)
            elif m == "quoteregex":
                value = re.sub(r"([*?\\.+^$|()\[\]{}])", r"\\\1", value)
            elif m == "encodeurl":
                value = urllib.parse.quote(value, safe="-._~")
            elif m == "length":
                value = str(len(value))
        self.set_variable(name, value, scope, call.line)

    def flag_command(self, call: Call, scope: _Scope) -> None:
        given: list[str] = []
        for f in self.strings(call.args[1], scope):
            given += _split_flags(f)
        if call.args[0] is not None:
            var = self.string(call.args[0], scope)
            current = _split_flags(self.get_variable(var, scope))
        else:
            var = None
            current = list(self.flags)
        if call.name == "setflag":
            new = _dedupe_flags(given)
        elif call.name == "addflag":
            new = _dedupe_flags(current + given)
        else:
            drop = {g.lower() for g in given}
            new = [f for f in current if f.lower() not in drop]
        if var is None:
            self.flags = new
        else:
            self.set_variable(var, " ".join(new), scope, call.line)

    def include(self, call: Call, scope: _Scope, depth: int) -> None:
        name = self.string(call.args[0], scope)
        global_ = "global" in call.tags
        key = (name, global_)
        if "once" in call.tags and key in self.included:
            return
        if depth + 1 > self.limits.max_include_depth:
            raise SieveRuntimeError(call.line, "includes nested too deeply")
        self.include_count += 1
        if self.include_count > self.limits.max_includes:
            raise SieveRuntimeError(call.line, "too many includes")
        script = self.env.load_include(name, global_)
        if script is None:
            if "optional" in call.tags:
                return
            raise SieveRuntimeError(call.line, f"included script '{name}' does not exist")
        self.included.add(key)
        try:
            self.block(script.commands, _Scope(script.capabilities), depth + 1)
        except _Return:
            pass

    def addheader(self, call: Call, scope: _Scope) -> None:
        field_name = self.string(call.args[0], scope)
        value = self.string(call.args[1], scope)
        if field_name.lower() in _PROTECTED:
            return  # RFC 5293 6: silently ignored for protected fields
        self.edit(call.line)
        value = _fold(value.replace("\r", "").replace("\n", " "))
        hdr = HeaderField(field_name, _encode_header(value))
        if "last" in call.tags:
            self.message.fields.append(hdr)
        else:
            self.message.fields.insert(0, hdr)
        self.message.edited = True
        self.message._parsed = None

    def deleteheader(self, call: Call, scope: _Scope) -> None:
        field_name = self.string(call.args[0], scope)
        if field_name.lower() in _PROTECTED:
            return
        self.edit(call.line)
        patterns = self.strings(call.args[1], scope) if call.args[1] is not None else None
        positions = [i for i, f in enumerate(self.message.fields) if f.name.lower() == field_name.lower()]
        idx = call.tags.get("index")
        if isinstance(idx, int) and not isinstance(idx, bool):
            if idx < 1 or idx > len(positions):
                return
            positions = [positions[-idx] if "last" in call.tags else positions[idx - 1]]
        keep: list[HeaderField] = []
        drop = set()
        for i in positions:
            value = decode_header_value(self.message.fields[i].raw)
            if patterns is None or self.compare(call, [value], patterns):
                drop.add(i)
        if not drop:
            return
        keep = [f for i, f in enumerate(self.message.fields) if i not in drop]
        self.message.fields[:] = keep
        self.message.edited = True
        self.message._parsed = None

    def edit(self, line: int) -> None:
        self.edits += 1
        if self.edits > self.limits.max_header_edits:
            raise SieveRuntimeError(line, "too many header edits")


def _split_flags(value: str) -> list[str]:
    return [f for f in value.split() if f]


def _dedupe_flags(flags: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for f in flags:
        if f.lower() not in seen:
            seen.add(f.lower())
            out.append(f)
    return out


def _valid_mailto(uri: str) -> bool:
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != "mailto":
        return False
    to = urllib.parse.unquote(rest.partition("?")[0])
    return all("@" in a and a.split("@")[0] and a.split("@")[1] for a in to.split(",") if a) and bool(to)


def _fold(value: str) -> str:
    return unfold(value)


def _encode_header(value: str) -> str:
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8").encode()


def run_script(
    script: CompiledScript,
    message: SieveMessage,
    envelope: Envelope,
    environment: Environment | None = None,
    *,
    limits: Limits | None = None,
    scores: ScoreHeaders | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Run one script; see `Interpreter`."""
    return Interpreter(message, envelope, environment or NullEnvironment(), limits=limits,
                       scores=scores, now=now).run(script)
