"""Webmail at /webmail/: PLACEHOLDER, to be replaced by the webmail work (issue 20, part 1).

How to build on the web foundation (see `mailwright.web.ui.pages` for the details):

* This module's `routes` (a list of Starlette routes) is mounted at `/webmail` by
  `mailwright.web.ui.app.create_app`; paths here are relative (`Route("/", inbox)` is
  `/webmail/`).
* Endpoints get the signed-in account with `current_user(request)` (or decorate with
  `@user_page`, which passes it), the server's `AppContext` with `context(request)`, and answer
  with `await render(request, "webmail/page.html", title=..., **values)`: templates go in
  `webmail/templates/` and extend `base.html` (blocks `title`, `main`; put the area's own
  navigation in block `nav`).
* Every POST/PUT/DELETE must carry the CSRF token: `{{ csrf_field() }}` in forms, the
  `X-CSRF-Token` header from scripts (the token is in `<meta name="csrf-token">` of every
  page), or `?csrf=` on a multipart form's action. The middleware refuses the request otherwise.
* No inline script or style (the CSP forbids them): put files in `webmail/static/`, served
  at `/static/webmail/`. A response may set its own Content-Security-Policy (the sandboxed
  message frame); the middleware adds its headers only where the response has none.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailwright.store.api import Account
from mailwright.web.ui.pages import render, user_page


@user_page
async def inbox(request: Request, account: Account) -> Response:
    return await render(request, "webmail/placeholder.html", title="Webmail")


routes: list[BaseRoute] = [Route("/", inbox)]
