"""Signing in with a token: the login form, the cookie, and signing out.

The secret goes into an HttpOnly cookie (no script can read it) with
SameSite=Strict (no other site's page can make the browser send it, which is
what keeps the promote form safe from cross-site requests). After signing in
the browser returns to ``next``, but only to a path of this server: an
absolute or protocol-relative URL there would make the login page an open
redirect, a favourite tool of phishing mails.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from keel.errors import Forbidden
from keel.server import tokens
from keel.server.app import COOKIE
from keel.server.ui.page import HEADERS, PageRoute, error_page, render

if TYPE_CHECKING:
    from keel.workspace import Workspace

# Where returning would loop: signing in to sign out again, or to the form itself.
NO_RETURN = ("/login", "/logout")
# A login form is a few hundred bytes; refuse to buffer anything much larger.
MAX_FORM = 16_384
# Control characters and backslashes: browsers read "/\evil.example" as "//evil.example".
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None) -> str:
    """``target`` if it is a path of this server, else ``/``.

    >>> safe_next("/runs/abc?x=1"), safe_next("https://evil.example"), safe_next("//evil")
    ('/runs/abc?x=1', '/', '/')
    """
    if not target or not target.startswith("/") or target.startswith("//") \
            or _UNSAFE.search(target):
        return "/"
    if target.split("?", 1)[0] in NO_RETURN:
        return "/"
    return target


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields, first value of each (no multipart: the UI
    sends none, and it saves a dependency)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def router(ws: Workspace, auth: bool) -> APIRouter:
    """``GET``/``POST /login`` and ``GET /logout``."""
    api = APIRouter(route_class=PageRoute)

    @api.get("/login", response_model=None)
    def login_form(request: Request, next: str = "/") -> Response:
        if not auth:
            return RedirectResponse(safe_next(next), status_code=303)
        return render(request, "login.html.j2", title="Sign in", next=safe_next(next),
                      error="", show_nav=False)

    @api.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        if request.headers.get("sec-fetch-site") == "cross-site":
            # Another site signing this browser in with the other site's token
            # ("login CSRF") would have the person's work logged under it.
            return error_page(request, Forbidden("cross-site sign-ins are refused"))
        form = await read_form(request)
        target = safe_next(form.get("next"))
        secret = form.get("token", "").strip()
        token = await run_in_threadpool(tokens.check, ws, secret) if secret else None
        if token is None:
            return render(request, "login.html.j2", status=401, title="Sign in", next=target,
                          error="That token is unknown, revoked or expired.", show_nav=False)
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @api.get("/logout", response_model=None)
    def logout(request: Request) -> Response:
        response = RedirectResponse("/login" if auth else "/", status_code=303,
                                    headers=HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return api
