"""Sign-in, the second factor (TOTP) and sign-out, shared by every area of the web interface.

The password check is the `Authenticator` every mail protocol uses, with the browser's address
(`request.client`, the PROXY header's when the listener trusts one): failures count toward the
same per-account and per-address bans as IMAP, SMTP AUTH and POP3, and a banned address or
account is refused here too. A wrong TOTP code counts as a wrong password.

Every successful step issues a new session token (no session fixation), and signing in with
a second factor first gives a session in the `totp` stage, which opens no page.
"""

from __future__ import annotations

import secrets
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailwright.accounts import settings
from mailwright.accounts.totp import verify
from mailwright.store.api import Account, WebSession
from mailwright.web.ui.pages import context, form, render
from mailwright.web.ui.security import SESSION_COOKIE, cookie_header, session_id


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/webmail/"
    return target


async def start_session(request: Request, account: Account, stage: str,
                        response: Response) -> WebSession:
    """A new session for `account`, its cookie set on `response`; the request's old one ends."""
    ctx = context(request)
    old = getattr(request.state, "session", None) or getattr(request.state, "pending", None)
    if old is not None:
        await ctx.store.web_session_delete(old.id)
    token = secrets.token_urlsafe(32)
    now = time.time()
    lifetime = ctx.config.web.session_lifetime if stage == "full" else 300.0
    session = WebSession(session_id(token), account.id, secrets.token_urlsafe(32), stage, now,
                         now + lifetime)
    await ctx.store.web_session_put(session)
    response.raw_headers.append((b"set-cookie", cookie_header(SESSION_COOKIE, token,
                                                              int(lifetime))))
    return session


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def signin_page(request: Request) -> Response:
    if request.method == "GET":
        return await render(request, "signin.html", title="Sign in",
                            next=safe_next(request.query_params.get("next")))
    fields = await form(request)
    email = fields.get("email", "").strip()[:320]
    password = fields.get("password", "")[:1024]
    target = safe_next(fields.get("next"))
    ctx = context(request)
    account = await ctx.authenticator.authenticate(email, password, _client_ip(request),
                                                   web=True)
    if account is None:
        return await render(request, "signin.html", status=401, title="Sign in", next=target,
                            email=email, error="Wrong email or password, or too many attempts.")
    await ctx.store.web_sessions_purge(time.time())
    totp = await ctx.store.account_setting(account.id, settings.TOTP)
    if totp is not None:
        response: Response = RedirectResponse(f"/signin/code?next={_quote(target)}", 303)
        await start_session(request, account, "totp", response)
        return response
    response = RedirectResponse(target, 303)
    await start_session(request, account, "full", response)
    return response


async def code_page(request: Request) -> Response:
    """The second step when the account has TOTP on (RFC 6238)."""
    pending = getattr(request.state, "pending", None)
    ctx = context(request)
    account = None if pending is None else await ctx.store.get_account(pending.account_id)
    if pending is None or pending.stage != "totp" or account is None or account.disabled:
        return RedirectResponse("/signin", 303)
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return await render(request, "code.html", title="Sign-in code", next=target)
    fields = await form(request)
    target = safe_next(fields.get("next"))
    ip = _client_ip(request)
    secret = await ctx.store.account_setting(account.id, settings.TOTP)
    last = await ctx.store.account_setting(account.id, settings.TOTP_LAST)
    step = None
    if secret is not None and not ctx.authenticator.is_banned_for(ip, account.address):
        step = verify(secret, fields.get("code", "")[:20], after=int(last or -1))
    if step is None:
        await ctx.authenticator.fail(ip, account.address)
        return await render(request, "code.html", status=401, title="Sign-in code",
                            next=target, error="Wrong code, or too many attempts.")
    await ctx.store.set_account_setting(account.id, settings.TOTP_LAST, str(step))
    response = RedirectResponse(target, 303)
    await start_session(request, account, "full", response)
    return response


async def signout(request: Request) -> Response:
    session = getattr(request.state, "session", None) or getattr(request.state, "pending", None)
    if session is not None:
        await context(request).store.web_session_delete(session.id)
    response = RedirectResponse("/signin", 303)
    response.raw_headers.append((b"set-cookie", cookie_header(SESSION_COOKIE, "", 0)))
    return response


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


routes: list[BaseRoute] = [
    Route("/signin", signin_page, methods=["GET", "POST"]),
    Route("/signin/code", code_page, methods=["GET", "POST"]),
    Route("/signout", signout, methods=["POST"]),
]
