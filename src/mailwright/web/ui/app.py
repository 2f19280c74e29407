"""The web interface's ASGI application: the areas, sign-in and static files on one app.

`create_app` builds it once per server process; `https.create` hands every connection of the
`https` listener to `dispatch`, which gives the web paths to this app and everything else
(MTA-STS policy, autoconfiguration) to the listener's older routes.

Areas are modules with a `routes` list (see `ui.pages` for what their endpoints use):
`/webmail/` is `mailwright.web.webmail`, `/account/` is `mailwright.web.account`, `/admin/`
is `mailwright.web.admin`. Each may have a `static/` folder served at `/static/<area>/`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mailwright.web.asgi import ASGIApp, Receive, Scope, Send
from mailwright.web.ui import signin
from mailwright.web.ui.pages import AREAS, WEB, Forbidden, SignInRequired, render
from mailwright.web.ui.security import WebMiddleware, with_security_headers

if TYPE_CHECKING:
    from mailwright.web.roles import WebContext

# Paths the web interface answers; the rest of the https listener's paths stay as they were.
WEB_PREFIXES = ("/webmail", "/account", "/admin", "/static/", "/signin", "/signout")


async def _home(request: Request) -> Response:
    return RedirectResponse("/webmail/", 303)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        from urllib.parse import quote

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='/')}", 303)
    return PlainTextResponse("sign in first\n", 401)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return await render(request, "error.html", status=403, title="Not allowed",
                        message="This page is for administrators only.")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await render(request, "error.html", status=404, title="Not found",
                            message="There is no such page.")
    return PlainTextResponse(f"{exc.detail}\n", exc.status_code)


def area_routes(name: str) -> list[BaseRoute]:
    routes: list[BaseRoute] = importlib.import_module(f"mailwright.web.{name}").routes
    return routes


def create_app(ctx: WebContext) -> ASGIApp:
    """The web application, wrapped in the session/CSRF/headers middleware."""
    routes: list[BaseRoute] = [Route("/", _home), *signin.routes]
    for name in AREAS:
        static = WEB / name / "static"
        if static.is_dir():
            routes.append(Mount(f"/static/{name}", StaticFiles(directory=str(static)),
                                name=f"static-{name}"))
    routes.append(Mount("/static", StaticFiles(directory=str(WEB / "ui" / "static")),
                        name="static"))
    for name in AREAS:
        routes.append(Mount(f"/{name}", routes=area_routes(name), name=name))
    app = Starlette(routes=routes, exception_handlers={
        SignInRequired: _sign_in_required, Forbidden: _forbidden, HTTPException: _http_error,
    })
    app.state.ctx = ctx
    return WebMiddleware(app, ctx)


def dispatch(web: ASGIApp, other: ASGIApp) -> ASGIApp:
    """Web paths to `web`, the rest to `other`."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == "/" or path.startswith(WEB_PREFIXES):
            await web(scope, receive, send)
        else:
            await other(scope, receive, send)

    other = with_security_headers(other)
    return app
