"""Webmail at `/webmail/` on the `https` listener (issue 20, part 1).

The modules here are sans-I/O where they can be (sanitising, message display, composing,
search queries) and speak to the store (`web.roles.WebmailStore`) and the SMTP submission
session otherwise; `routes.py` is the thin HTTP layer on the shared web foundation.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # `routes` (what the web application mounts) is imported on first use, so the sans-I/O
    # modules here stay importable without the web framework.
    if name == "routes":
        from .routes import routes

        return routes
    raise AttributeError(name)
