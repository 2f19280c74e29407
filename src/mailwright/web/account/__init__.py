"""Account self-service at /account/ (issue 20, part 2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailwright.store.api import Account
from mailwright.web.ui.pages import render, user_page


@user_page
async def overview(request: Request, account: Account) -> Response:
    return await render(request, "account/overview.html", title="Account")


routes: list[BaseRoute] = [Route("/", overview)]
