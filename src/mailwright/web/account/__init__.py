"""Account self-service at /account/: password, two-step sign-in, app passwords, forwarding,
vacation and filters (`filters`), junk training (`junk`), and how to set up a mail client.

Everything acts on the signed-in account only (`user_page`); the account id never comes from
the request. Changing the password asks for the current one through the shared
`Authenticator` (a stolen session cannot guess it faster than IMAP could) and ends the
account's other browser sessions.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailwright.accounts import settings, totp
from mailwright.accounts.authenticator import app_password_digest
from mailwright.accounts.passwords import hash_password
from mailwright.config import PasswordsConfig
from mailwright.store.api import Account
from mailwright.web.account import clients, filters, junk
from mailwright.web.ui.pages import context, form, render, user_page

MIN_PASSWORD = 10
MAX_APP_PASSWORDS = 20
TOTP_PENDING = "totp_pending"  # account setting: a secret shown but not yet confirmed
# Unambiguous letters and digits: an app password is typed into a phone now and then.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def _page(request: Request, template: str, title: str, **values: Any) -> Response:
    return await render(request, f"account/{template}", title=title, section=template, **values)


@user_page
async def overview(request: Request, account: Account) -> Response:
    store = context(request).store
    usage = await store.usage(account.id)
    return await _page(
        request, "overview.html", "Account", usage=usage,
        totp_on=await store.account_setting(account.id, settings.TOTP) is not None,
        app_passwords=len(await store.app_passwords(account.id)),
        rules=(await filters.load_rules(store, account))[0],
    )


# --- password ------------------------------------------------------------------------------


@user_page
async def password(request: Request, account: Account) -> Response:
    if request.method == "GET":
        return await _page(request, "password.html", "Change password")
    fields = await form(request)
    new = fields.get("new", "")
    error = None
    if len(new) < MIN_PASSWORD:
        error = f"The new password must have at least {MIN_PASSWORD} characters."
    elif new != fields.get("again", ""):
        error = "The two new passwords differ."
    elif len(new) > 1024:
        error = "The new password is too long."
    ctx = context(request)
    if error is None:
        checked = await ctx.authenticator.authenticate(account.address,
                                                       fields.get("current", "")[:1024],
                                                       _ip(request), web=True)
        if checked is None or checked.id != account.id:
            error = "The current password is wrong."
    if error is not None:
        return await _page(request, "password.html", "Change password", error=error,
                           status=400)
    await ctx.store.set_password(account.id, await _hash(new, ctx.config.passwords))
    ended = await ctx.store.web_sessions_delete(account.id, keep=request.state.session.id)
    return await _page(request, "password.html", "Change password",
                       notice="Your password has been changed."
                       + (f" {ended} other browser session(s) were signed out." if ended else ""))


async def _hash(password: str, limits: PasswordsConfig) -> str:
    import asyncio

    return await asyncio.to_thread(hash_password, password, limits)


# --- app passwords -------------------------------------------------------------------------


def new_app_password() -> str:
    """Five groups of four characters from a 31-letter alphabet: 99 bits."""
    chars = [secrets.choice(_ALPHABET) for _ in range(20)]
    return "-".join("".join(chars[i:i + 4]) for i in range(0, 20, 4))


@user_page
async def app_passwords(request: Request, account: Account) -> Response:
    store = context(request).store
    created = None
    error = None
    if request.method == "POST":
        fields = await form(request)
        label = " ".join(fields.get("label", "").split())[:80]
        if not label:
            error = "Give the app password a name, such as the device it is for."
        elif len(await store.app_passwords(account.id)) >= MAX_APP_PASSWORDS:
            error = f"An account has at most {MAX_APP_PASSWORDS} app passwords."
        else:
            created = new_app_password()
            await store.app_password_add(account.id, label, app_password_digest(created))
    return await _page(request, "app_passwords.html", "App passwords", created=created,
                       error=error, items=await store.app_passwords(account.id),
                       totp_on=await store.account_setting(account.id, settings.TOTP) is not None,
                       status=400 if error else 200)


@user_page
async def app_password_delete(request: Request, account: Account) -> Response:
    try:
        pw_id = int(request.path_params["pw_id"])
    except ValueError:
        pw_id = -1
    await context(request).store.app_password_delete(account.id, pw_id)
    return RedirectResponse("/account/app-passwords", 303)


# --- two-step sign-in (TOTP) ---------------------------------------------------------------


@user_page
async def two_factor(request: Request, account: Account) -> Response:
    store = context(request).store
    enabled = await store.account_setting(account.id, settings.TOTP) is not None
    pending = None if enabled else await store.account_setting(account.id, TOTP_PENDING)
    error = notice = None
    if request.method == "POST":
        fields = await form(request)
        action = fields.get("action", "")
        if action == "start" and not enabled:
            pending = totp.new_secret()
            await store.set_account_setting(account.id, TOTP_PENDING, pending)
        elif action == "confirm" and pending:
            step = totp.verify(pending, fields.get("code", "")[:20])
            if step is None:
                await context(request).authenticator.fail(_ip(request), account.address)
                error = "That code is not right: check the device's clock and try again."
            else:
                await store.set_account_setting(account.id, settings.TOTP, pending)
                await store.set_account_setting(account.id, settings.TOTP_LAST, str(step))
                await store.set_account_setting(account.id, TOTP_PENDING, None)
                enabled, pending = True, None
                notice = ("Two-step sign-in is on. Mail apps now need an app password;"
                          " your password alone no longer opens IMAP, POP3 or SMTP.")
        elif action == "disable" and enabled:
            checked = await context(request).authenticator.authenticate(
                account.address, fields.get("current", "")[:1024], _ip(request), web=True)
            if checked is None or checked.id != account.id:
                error = "The current password is wrong."
            else:
                for key in (settings.TOTP, settings.TOTP_LAST):
                    await store.set_account_setting(account.id, key, None)
                enabled = False
                notice = "Two-step sign-in is off."
    uri = qr = None
    if pending:
        uri = totp.provisioning_uri(pending, account.address, context(request).hostname)
        qr = _qr_data_uri(uri)
    return await _page(request, "two_factor.html", "Two-step sign-in", enabled=enabled,
                       pending=pending, uri=uri, qr=qr, error=error, notice=notice,
                       status=400 if error else 200)


def _qr_data_uri(text: str) -> str:
    """An SVG QR code of `text` as a data: URI (the CSP allows data: images, nothing else)."""
    import segno

    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))


# --- mail client set-up --------------------------------------------------------------------


@user_page
async def client_setup(request: Request, account: Account) -> Response:
    ctx = context(request)
    domain = account.address.rpartition("@")[2]
    profile = f"{clients.web_origin(ctx.config)}/account/clients/mailwright.mobileconfig"
    return await _page(request, "clients.html", "Mail apps", servers=clients.servers(ctx.config),
                       domain=domain, hostname=ctx.hostname, profile=profile,
                       qr=clients.qr_svg(profile),
                       autoconfig=f"/.well-known/autoconfig/mail/config-v1.1.xml"
                                  f"?emailaddress={account.address}")


@user_page
async def mobileconfig(request: Request, account: Account) -> Response:
    ctx = context(request)
    body = clients.mobileconfig(ctx.config, account.address, stamp=int(time.time()))
    return Response(body, media_type="application/x-apple-aspen-config", headers={
        "Content-Disposition": 'attachment; filename="mailwright.mobileconfig"'})


routes: list[BaseRoute] = [
    Route("/", overview),
    Route("/password", password, methods=["GET", "POST"]),
    Route("/app-passwords", app_passwords, methods=["GET", "POST"]),
    Route("/app-passwords/{pw_id}/delete", app_password_delete, methods=["POST"]),
    Route("/two-factor", two_factor, methods=["GET", "POST"]),
    Route("/forwarding", filters.forwarding, methods=["GET", "POST"]),
    Route("/filters", filters.filters, methods=["GET", "POST"]),
    Route("/junk", junk.junk, methods=["GET", "POST"]),
    Route("/clients", client_setup),
    Route("/clients/mailwright.mobileconfig", mobileconfig),
]
