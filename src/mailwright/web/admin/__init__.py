"""Administration at /admin/, for accounts with the admin role (issue 20, part 3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailwright.store.api import Account
from mailwright.web.ui.pages import admin_page, render


@admin_page
async def overview(request: Request, account: Account) -> Response:
    return await render(request, "admin/overview.html", title="Administration")


routes: list[BaseRoute] = [Route("/", overview)]
