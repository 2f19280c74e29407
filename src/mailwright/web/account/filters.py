"""Filters, forwarding and the vacation reply: the rule editor, its script, and the raw scripts.

House rules:
- The rule editor and the Forwarding page edit one `sieve.rules.Rules`, written as the script
  `mailwright-rules` and stored and activated with the store methods ManageSieve uses, so
  delivery has one filter path. What the pages show is read back from that script
  (`sieve.rules.parse`), never from a copy beside it.
- A `mailwright-rules` changed by hand (raw editor, filter app) that the editor cannot read
  back is shown read-only with a note; neither page saves over it. The user may keep it under
  another name and start afresh, or edit it as text.
- Another script being active is said on the page; saving rules then activates
  `mailwright-rules` instead (the other script stays stored).
- Redirects honour the server's policy: a valid address, never the account itself, and no
  more than `[sieve] max_redirects` in the whole script (the interpreter's own limit).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mailwright.address import AddressError, parse_address
from mailwright.sieve import rules as sr
from mailwright.store.api import Account
from mailwright.web.roles import FilterStore
from mailwright.web.ui.pages import context, form, render, user_page

MAX_CONDITION_ROWS = 3  # rows the form shows; sr.MAX_CONDITIONS is what the script may hold
MAX_ACTION_ROWS = 3


async def load_rules(store: FilterStore, account: Account) -> tuple[sr.Rules, str | None]:
    """The account's rules, and the text of `mailwright-rules` when it was changed by hand
    (then the rules are empty and must not be saved over it)."""
    text = await store.sieve_get(account.id, sr.SCRIPT_NAME)
    if text is None:
        return sr.Rules(), None
    rules = sr.parse(text)
    return (rules, None) if rules is not None else (sr.Rules(), text)


async def _other_active(store: FilterStore, account: Account) -> str | None:
    active = await store.sieve_active(account.id)
    return active[0] if active and active[0] != sr.SCRIPT_NAME else None


async def save_rules(store: FilterStore, account: Account, rules: sr.Rules) -> None:
    """Store `rules` as `mailwright-rules`, active while it does anything; with nothing left
    to do it is deactivated (if it was the active one) rather than run empty."""
    await store.sieve_put(account.id, sr.SCRIPT_NAME, sr.script(rules))
    if rules.active:
        await store.sieve_activate(account.id, sr.SCRIPT_NAME)
    elif await _other_active(store, account) is None:
        await store.sieve_activate(account.id, None)


def _address_error(address: str, account: Account) -> tuple[str, str | None]:
    """(the address normalised, what is wrong with it or None)."""
    try:
        normal = str(parse_address(address.strip()))
    except AddressError:
        return address, f"“{address}” is not an email address."
    if normal.lower() == account.address.lower():
        return normal, "Mail cannot be forwarded to the same account."
    return normal, None


def _redirects(rules: sr.Rules) -> int:
    return (1 if rules.forward_to else 0) + sum(
        1 for f in rules.filters for a in f.actions if a.kind in ("redirect", "redirect_copy"))


def _policy_error(rules: sr.Rules, limit: int) -> str | None:
    if _redirects(rules) > limit:
        return f"At most {limit} forwarding addresses in all (the server's limit)."
    return None


# --- forwarding and vacation ---------------------------------------------------------------


@user_page
async def forwarding(request: Request, account: Account) -> Response:
    ctx = context(request)
    store = ctx.store
    current, hand = await load_rules(store, account)
    other_active = await _other_active(store, account)
    error = notice = None
    if request.method == "POST" and hand is not None:
        error = ("The script mailwright-rules was changed by hand; it is not replaced from here."
                 " See the Filters page.")
    elif request.method == "POST":
        fields = await form(request)
        forward_to = fields.get("forward_to", "").strip()
        if forward_to:
            forward_to, error = _address_error(forward_to, account)
        try:
            days = int(fields.get("days", "7") or 7)
        except ValueError:
            days = 7
        own = sorted(await ctx.directory.addresses_of(account))
        wanted = sr.Rules(
            forward_to=forward_to if error is None else "",
            keep_copy=fields.get("keep_copy") == "on",
            vacation=fields.get("vacation") == "on",
            subject=fields.get("subject", "")[:200],
            message=fields.get("message", "")[:sr.MAX_TEXT],
            days=max(1, min(days, 90)),
            addresses=tuple(own),
            filters=current.filters,
        )
        error = error or _policy_error(wanted, ctx.config.sieve.max_redirects)
        if error is None:
            await save_rules(store, account, wanted)
            current = wanted
            notice = "Saved." if wanted.active else "Saved: no forwarding and no vacation reply."
            other_active = await _other_active(store, account)
    return await render(request, "account/forwarding.html", title="Forwarding and vacation",
                        section="forwarding.html", rules=current, hand=hand,
                        other_active=other_active, error=error, notice=notice,
                        status=400 if error else 200)


# --- the rule editor -----------------------------------------------------------------------


def _rule_from_form(fields: dict[str, str]) -> sr.Filter:
    conditions = []
    for i in range(1, MAX_CONDITION_ROWS + 1):
        value = fields.get(f"value{i}", "").strip()
        if not value:
            continue  # an empty row is no condition
        field = fields.get(f"field{i}", "")
        header = fields.get(f"header{i}", "").strip() if field == "header" else ""
        if field == "size":
            value = value.replace(" ", "").upper()
        conditions.append(sr.Condition(field, fields.get(f"op{i}", ""), value, header))
    actions = []
    for i in range(1, MAX_ACTION_ROWS + 1):
        kind = fields.get(f"action{i}", "")
        if not kind:
            continue
        takes = sr.ACTIONS.get(kind, "")
        argument = fields.get(f"folder{i}", "") if takes == "folder" else (
            fields.get(f"text{i}", "").strip() if takes else "")
        actions.append(sr.Action(kind, argument))
    return sr.Filter(tuple(conditions), tuple(actions), fields.get("match") == "any")


def _index(value: str, count: int) -> int | None:
    try:
        i = int(value)
    except ValueError:
        return None
    return i if 0 <= i < count else None


async def _rule_post(request: Request, account: Account, rules: sr.Rules,
                     folders: list[str]) -> tuple[sr.Rules | None, str | None, sr.Filter | None]:
    """Apply one rule action of the form: (the new rules or None, error, the rule to show
    again in the form after an error)."""
    ctx = context(request)
    fields = await form(request)
    action = fields.get("action", "")
    filters = list(rules.filters)
    index = _index(fields.get("index", ""), len(filters))
    if action == "rule_delete" and index is not None:
        del filters[index]
    elif action == "rule_up" and index:
        filters[index - 1], filters[index] = filters[index], filters[index - 1]
    elif action == "rule_save":
        rule = _rule_from_form(fields)
        error = sr.check_filter(rule)
        actions = []
        for a in rule.actions:
            if error is None and a.kind in ("move", "copy") and a.argument not in folders:
                error = "Choose a folder you have for each move or copy."
            if error is None and a.kind in ("redirect", "redirect_copy"):
                normal, error = _address_error(a.argument, account)
                a = sr.Action(a.kind, normal)
            actions.append(a)
        rule = sr.Filter(rule.conditions, tuple(actions), rule.any_of)
        if error is None and index is None and len(filters) >= sr.MAX_FILTERS:
            error = f"An account has at most {sr.MAX_FILTERS} rules."
        if error is not None:
            return None, error, rule
        if index is None:
            filters.append(rule)
        else:
            filters[index] = rule
    else:
        return None, "Nothing to do.", None
    wanted = sr.Rules(rules.forward_to, rules.keep_copy, rules.vacation, rules.subject,
                      rules.message, rules.days, rules.addresses, tuple(filters))
    error = _policy_error(wanted, ctx.config.sieve.max_redirects)
    if error is None and len(sr.script(wanted).encode()) > ctx.config.sieve.max_script_size:
        error = f"The rules would make a script larger than {ctx.config.sieve.max_script_size} bytes."
    return (None, error, None) if error else (wanted, None, None)


async def _folders(store: FilterStore, account: Account) -> list[str]:
    return sorted((m.name for m in await store.list_mailboxes(account.id)),
                  key=lambda n: (n.upper() != "INBOX", n.lower()))


def _blank_rows(rule: sr.Filter | None) -> dict[str, Any]:
    """The form's condition and action rows, filled from `rule` (when editing one)."""
    conds: list[sr.Condition | None] = list(rule.conditions if rule else ())
    acts: list[sr.Action | None] = list(rule.actions if rule else ())
    return {
        "conditions": (conds + [None] * MAX_CONDITION_ROWS)[:max(MAX_CONDITION_ROWS, len(conds))],
        "actions": (acts + [None] * MAX_ACTION_ROWS)[:max(MAX_ACTION_ROWS, len(acts))],
        "any_of": bool(rule and rule.any_of),
    }


def _script_name_ok(name: str) -> bool:
    # RFC 5804 1.6: no control characters, no line or paragraph separators
    return 0 < len(name) <= 128 and not any(
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in name)


@user_page
async def filters(request: Request, account: Account) -> Response:
    """The rule editor, then the account's Sieve scripts (the ones ManageSieve clients edit)
    edited as text; a script is validated before it is stored, and an invalid one is refused
    with its line."""
    from mailwright.sieve import SieveSyntaxError, compile_script

    ctx = context(request)
    store = ctx.store
    limits = ctx.config.sieve
    name = request.query_params.get("name", "").strip()
    editing = _index(request.query_params.get("rule", ""), sr.MAX_FILTERS)
    rules, hand = await load_rules(store, account)
    folders = await _folders(store, account)
    content = None
    shown: sr.Filter | None = None
    error = notice = None
    if request.method == "POST":
        fields = await form(request)
        action = fields.get("action", "save")
        if action.startswith("rule_"):
            if hand is not None:
                error = ("The script mailwright-rules was changed by hand; the rule editor does"
                         " not replace it.")
            else:
                wanted, error, shown = await _rule_post(request, account, rules, folders)
                if wanted is not None:
                    await save_rules(store, account, wanted)
                    rules, editing = wanted, None
                    notice = "Rules saved: they apply to mail arriving from now on."
                elif shown is not None:
                    editing = _index(fields.get("index", ""), len(rules.filters))
        elif action == "keep_hand" and hand is not None:
            kept = f"{sr.SCRIPT_NAME} (by hand, {time.strftime('%Y-%m-%d %H%M%S')})"
            await store.sieve_rename(account.id, sr.SCRIPT_NAME, kept)
            rules, hand = sr.Rules(), None
            notice = f"Your script is kept as “{kept}”; the rule editor starts with no rules."
        else:
            name = fields.get("name", "").strip()
            if not _script_name_ok(name):
                error = "A script needs a name (no control characters)."
            elif action == "delete":
                active = await store.sieve_active(account.id)
                if active and active[0] == name:
                    error = "Deactivate the script before deleting it."
                else:
                    await store.sieve_delete(account.id, name)
                    notice, name = f"Deleted {name}.", ""
            elif action == "deactivate":
                await store.sieve_activate(account.id, None)
                notice = "No script is active now: mail goes to the inbox unfiltered."
            else:
                content = fields.get("content", "").replace("\r\n", "\n").replace("\n", "\r\n")
                known = {i.name for i in await store.sieve_list(account.id)}
                if len(content.encode()) > limits.max_script_size:
                    error = f"The script is larger than {limits.max_script_size} bytes."
                elif name not in known and len(known) >= limits.max_scripts:
                    error = f"An account has at most {limits.max_scripts} scripts."
                else:
                    try:
                        compile_script(content)
                    except SieveSyntaxError as exc:
                        error = f"Not saved: line {exc.line}: {exc.message}"
                if error is None:
                    await store.sieve_put(account.id, name, content)
                    if fields.get("activate") == "on":
                        await store.sieve_activate(account.id, name)
                    notice = f"Saved {name}."
            rules, hand = await load_rules(store, account)
    if editing is not None and editing >= len(rules.filters):
        editing = None
    if shown is None and editing is not None:
        shown = rules.filters[editing]
    scripts = await store.sieve_list(account.id)
    if content is None and name:
        content = await store.sieve_get(account.id, name)
    return await render(
        request, "account/filters.html", title="Filters", section="filters.html",
        scripts=scripts, name=name, content=content or "", error=error, notice=notice,
        rules=rules, hand=hand, other_active=await _other_active(store, account),
        folders=folders, editing=editing, rows=_blank_rows(shown), sr=sr,
        status=400 if error else 200)
