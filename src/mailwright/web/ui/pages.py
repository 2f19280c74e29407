"""The helpers every page of the web interface is written with (the extension point).

An area (webmail, account, administration) is a module with a `routes` list of Starlette
routes, mounted by `ui.app` under its prefix. Its endpoints use:

* `current_user(request)`: the signed-in `Account`; raises `SignInRequired`, which the app turns
  into a redirect to the sign-in page (GET) or a 401 (anything else).
* `require_admin(request)`: the same for accounts with the admin role; 403 for the others.
* `render(request, "area/page.html", **values)`: the page in the shared layout, with
  `csrf` (the token each form must send in a hidden `csrf` field, `csrf_field()` writes it),
  `account`, `is_admin` and `title` available to the template. Templates live in the area's
  `templates/` folder and are named with the area's prefix (`webmail/list.html`).
* `context(request)`: the server's `AppContext` as a `web.roles.WebContext` (store, directory,
  authenticator...): its store typed `WebStore`, the roles the web interface uses.

The middleware (`ui.security`) has already checked CSRF and will add the security headers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from mailwright.accounts import settings
from mailwright.store.api import Account

if TYPE_CHECKING:
    from mailwright.web.roles import WebContext

WEB = Path(__file__).resolve().parent.parent
AREAS = ("webmail", "account", "admin")


class SignInRequired(Exception):
    """The page needs a signed-in account."""


class Forbidden(Exception):
    """The signed-in account may not see this page."""


def _environment() -> Environment:
    areas = {a: FileSystemLoader(str(WEB / a / "templates")) for a in AREAS
             if (WEB / a / "templates").is_dir()}
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(WEB / "ui" / "templates")),
                             PrefixLoader(areas)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["timestamp"] = _timestamp
    return env


def _timestamp(value: float) -> str:
    """A UNIX time as UTC date and minute (pages show the server's view; no guessing zones)."""
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M UTC")


templates = Jinja2Templates(env=_environment())


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def signed_in(request: Request) -> Account | None:
    """The signed-in account, or None (for pages that show something either way)."""
    account: Account | None = getattr(request.state, "account", None)
    return account


def current_user(request: Request) -> Account:
    account = signed_in(request)
    if account is None:
        raise SignInRequired
    return account


async def is_admin(request: Request, account: Account | None = None) -> bool:
    account = account or signed_in(request)
    if account is None:
        return False
    cached = getattr(request.state, "is_admin", None)
    if cached is None:
        value = await context(request).store.account_setting(account.id, settings.ADMIN)
        cached = request.state.is_admin = value == "1"
    return bool(cached)


async def require_admin(request: Request) -> Account:
    account = current_user(request)
    if not await is_admin(request, account):
        raise Forbidden
    return account


def csrf_token(request: Request) -> str:
    session = getattr(request.state, "session", None) or getattr(request.state, "pending", None)
    if session is not None:
        return str(session.csrf)
    return str(getattr(request.state, "pre_csrf", ""))


async def render(request: Request, template: str, status: int = 200,
                 **values: Any) -> Response:
    """`template` in the shared layout (see the module docstring for what it is given)."""
    token = csrf_token(request)
    account = signed_in(request)
    values.setdefault("title", "Mailwright")
    return templates.TemplateResponse(request, template, {
        "account": account,
        "is_admin": await is_admin(request) if account is not None else False,
        "csrf": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="csrf" value="{}">').format(token),
        **values,
    }, status_code=status)


Endpoint = Callable[[Request], Awaitable[Response]]


def user_page(fn: Callable[[Request, Account], Awaitable[Response]]) -> Endpoint:
    """An endpoint for signed-in accounts, given the account."""
    @functools.wraps(fn)
    async def endpoint(request: Request) -> Response:
        return await fn(request, current_user(request))

    return endpoint


def admin_page(fn: Callable[[Request, Account], Awaitable[Response]]) -> Endpoint:
    """An endpoint for accounts with the admin role, given the account."""
    @functools.wraps(fn)
    async def endpoint(request: Request) -> Response:
        return await fn(request, await require_admin(request))

    return endpoint


async def form(request: Request) -> dict[str, str]:
    """A urlencoded or multipart form's text fields (the last value of each)."""
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}
