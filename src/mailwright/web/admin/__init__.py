"""Administration at /admin/, for accounts with the admin role (`mailwright user set ADDRESS
--admin yes`): domains, accounts, aliases, DKIM keys, the DNS check, the outbound queue, the
message trace and the spam settings.

Every endpoint is an `admin_page` (403 for the others). The actions call the same shared
functions as the operator commands (`accounts.admin`, `queue.operator`, `transport.zone`,
`mailauth.keys`, `spam.overrides`), so the web and the CLI follow one set of rules.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailwright.accounts import admin as accounts_admin
from mailwright.accounts.passwords import hash_password
from mailwright.address import AddressError, normalize_domain, parse_address
from mailwright.dns.check import check_records
from mailwright.dns.resolver import from_config
from mailwright.mailauth.keys import DkimKeyError, KeyStore
from mailwright.queue import operator
from mailwright.spam import overrides
from mailwright.spam.settings import SpamConfigError, SpamSettings
from mailwright.store.api import Account, StoreError, TraceEvent
from mailwright.transport.zone import RecordsError, domain_records
from mailwright.web.ui.pages import admin_page, context, form, render

MIN_PASSWORD = 10
MIB = 1024 * 1024


async def _page(request: Request, template: str, title: str, **values: Any) -> Response:
    return await render(request, f"admin/{template}", title=title, section=template, **values)


def _flash(request: Request) -> dict[str, str | None]:
    """A notice or error carried over a redirect in the query string (shown as text only)."""
    return {"notice": request.query_params.get("notice"),
            "error": request.query_params.get("error")}


def _back(path: str, *, notice: str = "", error: str = "") -> Response:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    return RedirectResponse(f"{path}?{query}" if query else path, 303)


@admin_page
async def overview(request: Request, account: Account) -> Response:
    store = context(request).store
    return await _page(request, "overview.html", "Administration",
                       domains=len(await store.list_domains()),
                       accounts=len(await store.list_accounts()),
                       aliases=len(await store.list_aliases()),
                       queued=len(await store.queue_list()))


# --- domains -------------------------------------------------------------------------------


@admin_page
async def domains(request: Request, account: Account) -> Response:
    store = context(request).store
    if request.method == "POST":
        fields = await form(request)
        try:
            name = normalize_domain(fields.get("domain", ""))
        except AddressError as exc:
            return _back("/admin/domains", error=f"Not a domain name: {exc}")
        if fields.get("action") == "delete":
            try:
                await store.delete_domain(name)
            except StoreError as exc:
                return _back("/admin/domains", error=f"{name} was not deleted: {exc}")
            return _back("/admin/domains", notice=f"Deleted the domain {name}.")
        try:
            await store.add_domain(name)
        except StoreError as exc:
            return _back("/admin/domains", error=f"{name} was not added: {exc}")
        return _back("/admin/domains", notice=f"Added the domain {name}.")
    return await _page(request, "domains.html", "Domains", items=await store.list_domains(),
                       **_flash(request))


# --- accounts ------------------------------------------------------------------------------


@admin_page
async def accounts(request: Request, account: Account) -> Response:
    ctx = context(request)
    store = ctx.store
    if request.method == "POST":
        fields = await form(request)
        try:
            address = str(parse_address(fields.get("address", "")))
        except AddressError:
            return _back("/admin/accounts", error="That is not an email address.")
        password = fields.get("password", "")
        if len(password) < MIN_PASSWORD:
            return _back("/admin/accounts",
                         error=f"The password must have at least {MIN_PASSWORD} characters.")
        quota = _quota(fields.get("quota", ""), ctx.config.limits.default_quota)
        if not await store.has_domain(address.rpartition("@")[2]):
            return _back("/admin/accounts", error=f"{address.rpartition('@')[2]} is not a"
                         " domain of this server: add it under Domains first.")
        try:
            hashed = await asyncio.to_thread(hash_password, password, ctx.config.passwords)
            new, postmaster = await accounts_admin.create_account(store, address, hashed, quota)
        except StoreError as exc:
            return _back("/admin/accounts", error=f"{address} was not added: {exc}")
        if fields.get("admin") == "on":
            await accounts_admin.set_admin(store, new.id, True)
        notice = f"Added the account {address}."
        if postmaster:
            notice += f" postmaster@{address.rpartition('@')[2]} now delivers to it."
        return _back("/admin/accounts", notice=notice)
    items = await store.list_accounts()
    admins = await accounts_admin.admins(store)
    grants = await store.list_send_as()
    return await _page(request, "accounts.html", "Accounts", items=items, admins=admins,
                       send_as={a.id: [g for i, g in grants if i == a.id] for a in items},
                       default_quota=ctx.config.limits.default_quota // MIB,
                       **_flash(request))


def _quota(text: str, default: int) -> int:
    """MiB in the form, bytes in the store; empty for the configured default."""
    text = text.strip()
    if not text:
        return default
    try:
        return max(0, int(float(text) * MIB))
    except ValueError:
        return default


@admin_page
async def account_detail(request: Request, admin: Account) -> Response:
    store = context(request).store
    address = request.path_params["address"]
    target = await store.find_account(address)
    if target is None:
        return _back("/admin/accounts", error=f"No account {address}.")
    path = f"/admin/accounts/{target.address}"
    if request.method == "POST":
        fields = await form(request)
        action = fields.get("action", "")
        if action == "update":
            disabled = fields.get("disabled") == "on"
            make_admin = fields.get("admin") == "on"
            if target.id == admin.id and (disabled or not make_admin):
                return _back(path, error="You cannot disable yourself or drop your own admin"
                             " role (another administrator can).")
            await store.update_account(target.id, quota_bytes=_quota(fields.get("quota", ""),
                                                                     target.quota_bytes),
                                       disabled=disabled)
            await accounts_admin.set_admin(store, target.id, make_admin)
            if disabled:
                await store.web_sessions_delete(target.id)
            return _back(path, notice="Saved.")
        if action == "password":
            password = fields.get("password", "")
            if len(password) < MIN_PASSWORD:
                return _back(path, error=f"The password must have at least {MIN_PASSWORD}"
                             " characters.")
            await store.set_password(
                target.id,
                await asyncio.to_thread(hash_password, password, context(request).config.passwords))
            await store.web_sessions_delete(target.id)
            return _back(path, notice="Password set; the account's browser sessions ended.")
        if action in ("grant", "revoke"):
            try:
                other = str(parse_address(fields.get("send_as", "")))
            except AddressError:
                return _back(path, error="That is not an email address.")
            missing = await accounts_admin.set_send_as(
                store, target.id, [other] if action == "grant" else [],
                [other] if action == "revoke" else [])
            if missing:
                return _back(path, error=f"No send-as grant for {other}.")
            return _back(path, notice=f"{'Granted' if action == 'grant' else 'Withdrew'}"
                         f" sending as {other}.")
        if action == "delete":
            if target.id == admin.id:
                return _back(path, error="You cannot delete your own account here.")
            if fields.get("confirm", "").strip().lower() != target.address:
                return _back(path, error="Type the account's address to confirm the deletion.")
            notes = await accounts_admin.delete_account(store, target)
            return _back("/admin/accounts", notice=" ".join(
                [f"Deleted {target.address} and its mail.", *notes]))
        return _back(path, error="Unknown action.")
    usage = await store.usage(target.id)
    return await _page(request, "account.html", target.address, target=target, usage=usage,
                       is_target_admin=target.id in await accounts_admin.admins(store),
                       send_as=[a for i, a in await store.list_send_as(target.id)],
                       **_flash(request))


# --- aliases -------------------------------------------------------------------------------


@admin_page
async def aliases(request: Request, account: Account) -> Response:
    store = context(request).store
    if request.method == "POST":
        fields = await form(request)
        source_text = fields.get("source", "").strip()
        try:
            source = (f"@{normalize_domain(source_text[1:])}" if source_text.startswith("@")
                      else str(parse_address(source_text)))
        except AddressError:
            return _back("/admin/aliases", error="The alias must be an address, or @domain for"
                         " a catch-all.")
        if fields.get("action") == "delete":
            try:
                await store.delete_alias(source)
            except StoreError as exc:
                return _back("/admin/aliases", error=f"{source} was not deleted: {exc}")
            return _back("/admin/aliases", notice=f"Deleted the alias {source}.")
        try:
            targets = [str(parse_address(t)) for t in
                       fields.get("targets", "").replace(";", ",").replace("\n", ",").split(",")
                       if t.strip()]
        except AddressError:
            return _back("/admin/aliases", error="Every target must be an email address.")
        if not targets:
            return _back("/admin/aliases", error="Name at least one target address.")
        if not await store.has_domain(source.rpartition("@")[2]):
            return _back("/admin/aliases", error="The alias must be in a domain of this server.")
        try:
            await store.add_alias(source, targets)
        except StoreError as exc:
            return _back("/admin/aliases", error=f"{source} was not added: {exc}")
        return _back("/admin/aliases", notice=f"Added the alias {source}.")
    return await _page(request, "aliases.html", "Aliases", items=await store.list_aliases(),
                       **_flash(request))


# --- DKIM and DNS ----------------------------------------------------------------------------


@admin_page
async def dkim(request: Request, account: Account) -> Response:
    ctx = context(request)
    keys = KeyStore(ctx.config.server.data_dir)
    if request.method == "POST":
        fields = await form(request)
        algorithm: Literal["ed25519", "rsa"] = (
            "ed25519" if fields.get("algorithm") == "ed25519" else "rsa")
        try:
            domain = normalize_domain(fields.get("domain", ""))
            key = await asyncio.to_thread(keys.generate, domain, algorithm=algorithm)
        except (DkimKeyError, AddressError) as exc:
            return _back("/admin/dkim", error=str(exc))
        return _back("/admin/dkim", notice=f"Made the {key.algorithm} key {key.selector} for"
                     f" {key.domain}: publish its record below.")
    domains = sorted({d.name for d in await ctx.store.list_domains()} | set(keys.domains()))
    listing = []
    for domain in domains:
        try:
            listing.append((domain, keys.keys(domain, include_inactive=True)))
        except DkimKeyError:
            continue
    return await _page(request, "dkim.html", "DKIM keys", listing=listing, **_flash(request))


@admin_page
async def dns_check(request: Request, account: Account) -> Response:
    ctx = context(request)
    domains = [d.name for d in await ctx.store.list_domains()]
    domain = request.query_params.get("domain") or (domains[0] if domains else "")
    checks: list[Any] = []
    notes: list[str] = []
    error = None
    if domain:
        try:
            domain = normalize_domain(domain)
            records, notes = domain_records(ctx.config, domain)
            # A resolver without a cache: a record fixed a minute ago must show as fixed.
            checks = await check_records(from_config(ctx.config, cache=False), records)
        except (DkimKeyError, AddressError, RecordsError) as exc:
            error = str(exc)
    return await _page(request, "dns.html", "DNS check", domains=domains, domain=domain,
                       checks=checks, notes=notes, error=error,
                       problems=sum(1 for c in checks if c.status != "ok"))


# --- the outbound queue --------------------------------------------------------------------


@admin_page
async def queue(request: Request, account: Account) -> Response:
    store = context(request).store
    now = datetime.now(UTC)
    if request.method == "POST":
        fields = await form(request)
        if fields.get("action") == "flush":
            count = await store.queue_flush()
            return _back("/admin/queue", notice=f"{count} entries scheduled for delivery now.")
    rows = [(e, operator.age(e.created, now), operator.pending(e),
             "now" if e.next_attempt <= now else operator.when(e.next_attempt))
            for e in await store.queue_list()]
    return await _page(request, "queue.html", "Outbound queue", rows=rows, **_flash(request))


@admin_page
async def queue_entry(request: Request, account: Account) -> Response:
    store = context(request).store
    queue_id = operator.normalize_queue_id(request.path_params["queue_id"])
    if queue_id is None:
        return _back("/admin/queue", error="Not a queue id.")
    if request.method == "POST":
        fields = await form(request)
        if fields.get("action") == "delete":
            gone = await operator.delete(store, queue_id)
            if not gone:
                return _back("/admin/queue", error=f"No queue entry {queue_id}.")
            return _back("/admin/queue", notice=f"Deleted {queue_id} ({', '.join(gone)}),"
                         " without a bounce.")
        due = await operator.retry(store, queue_id)
        if not due:
            return _back("/admin/queue", error=f"No queue entry {queue_id}.")
        return _back(f"/admin/queue/{queue_id}", notice="Scheduled for delivery now.")
    found = await operator.entries(store, queue_id)
    if not found:
        return _back("/admin/queue", error=f"No queue entry {queue_id}.")
    try:
        data = await store.read_blob(found[0].blob_id)
    except (StoreError, OSError):
        data = b""
    now = datetime.now(UTC)
    return await _page(request, "queue_entry.html", f"Queue entry {queue_id}", queue_id=queue_id,
                       entries=found, when=operator.when, age=operator.age(found[0].created, now),
                       headers=operator.header_lines(data), size=len(data), **_flash(request))


# --- the message trace -------------------------------------------------------------------


STAGE_NAMES = {"accepted": "Accepted", "rejected": "Rejected", "filtered": "Filtered",
               "delivered": "Delivered", "queued": "Queued", "deferred": "Deferred",
               "relayed": "Relayed", "bounced": "Bounced", "expired": "Expired",
               "dsn": "Report sent"}
MAX_QUERY = 1000


@admin_page
async def trace(request: Request, account: Account) -> Response:
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    events: list[TraceEvent] = []
    if query:
        events = await context(request).store.trace_find(query)
    return await _page(request, "trace.html", "Message trace", query=query, events=events,
                       stages=STAGE_NAMES, queue_ids=sorted({e.queue_id for e in events
                                                             if e.queue_id}),
                       message_ids=sorted({e.message_id for e in events if e.message_id}))


# --- spam settings --------------------------------------------------------------------------


def _spam_rows(config: dict[str, Any], found: dict[tuple[str, str], str],
               settings: SpamSettings, scope: str) -> list[dict[str, str]]:
    fields = overrides.DOMAIN_EDITABLE if scope else overrides.EDITABLE
    return [{"key": f.key, "label": f.label, "kind": f.kind, "help": f.help,
             "value": overrides.render_value(f.key, overrides.current_value(settings, scope,
                                                                             f.key)),
             "source": overrides.source_of(config, found, scope, f.key)} for f in fields]


@admin_page
async def spam(request: Request, account: Account) -> Response:
    ctx = context(request)
    store = ctx.store
    config = dict(getattr(ctx.config, "spam", {}) or {})
    found = await store.spam_overrides()
    if request.method == "POST":
        fields = await form(request)
        scope = fields.get("scope", "").strip().lower()
        if scope:
            try:
                scope = normalize_domain(scope)
            except AddressError:
                return _back("/admin/spam", error=f"Not a domain name: {scope}")
        editable = overrides.DOMAIN_EDITABLE if scope else overrides.EDITABLE
        changes: dict[tuple[str, str], str | None] = {}
        try:
            if fields.get("action") == "reset":
                key = fields.get("key", "")
                overrides.field_for(scope, key)
                changes[(scope, key)] = None
            else:
                for f in editable:
                    if f.kind == "bool":
                        value: Any = f.key in fields  # an unchecked box sends nothing
                    elif f.key not in fields:
                        continue
                    else:
                        value = overrides.parse_field(scope, f.key, fields[f.key])
                    shown = overrides.current_value(
                        overrides.effective(config, found), scope, f.key)
                    if scope or value != shown or (scope, f.key) in found:
                        changes[(scope, f.key)] = json.dumps(value)
                if scope and not await store.has_domain(scope):
                    raise overrides.FormError(f"{scope} is not a domain of this server")
            overrides.check(config, {**found, **{k: v for k, v in changes.items()
                                                 if v is not None}})
        except (overrides.FormError, SpamConfigError) as exc:
            return await _spam_page(request, config, found, error=str(exc), status=400)
        await store.spam_overrides_set(changes)
        if ctx.spam is not None:
            await ctx.spam.settings_saved()  # this process at once, the other workers next
        where = f" for {scope}" if scope else ""
        return _back("/admin/spam", notice=f"Saved the spam settings{where}: they apply to the"
                     " next message.")
    flash = _flash(request)
    return await _spam_page(request, config, found, notice=flash["notice"], error=flash["error"])


async def _spam_page(request: Request, config: dict[str, Any], found: dict[tuple[str, str], str],
                     *, status: int = 200, notice: str | None = None,
                     error: str | None = None) -> Response:
    ctx = context(request)
    try:
        settings = overrides.effective(config, found)
        broken = None
    except SpamConfigError as exc:
        settings, broken = SpamSettings.from_mapping(config), str(exc)
    domains = sorted({d.name for d in await ctx.store.list_domains()}
                     | {s for s, _k in found if s} | set(settings.domains))
    per_domain = [(d, _spam_rows(config, found, settings, d)) for d in domains
                  if d in settings.domains]
    return await render(request, "admin/spam.html", status=status, title="Spam settings",
                        section="spam.html", rows=_spam_rows(config, found, settings, ""),
                        per_domain=per_domain, domains=domains, broken=broken,
                        filter_on=ctx.spam is not None, notice=notice, error=error,
                        overridden=[(sc, k, v) for (sc, k), v in sorted(found.items())])


routes: list[BaseRoute] = [
    Route("/", overview),
    Route("/domains", domains, methods=["GET", "POST"]),
    Route("/accounts", accounts, methods=["GET", "POST"]),
    Route("/accounts/{address}", account_detail, methods=["GET", "POST"]),
    Route("/aliases", aliases, methods=["GET", "POST"]),
    Route("/dkim", dkim, methods=["GET", "POST"]),
    Route("/dns", dns_check),
    Route("/queue", queue, methods=["GET", "POST"]),
    Route("/queue/{queue_id}", queue_entry, methods=["GET", "POST"]),
    Route("/trace", trace),
    Route("/spam", spam, methods=["GET", "POST"]),
]
