"""The team server's ASGI app: token check and write audit in front of the
MLflow-compatible API, errors in MLflow's JSON shape."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from keel.api_client import ERRORS
from keel.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, KeelError, NotFound
from keel.server import store_api, tokens

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from keel.workspace import Workspace

OPEN_PATHS = ("/health", "/api/2.0/mlflow/server-info", "/login", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)
# Browsers carry the token in this cookie (set by the UI's login page).
COOKIE = "keel_token"
API_PREFIXES = ("/api/", "/ajax-api/")
# POSTs that only read: a viewer may send them.
READ_POSTS = ("/mlflow/runs/search", "/mlflow/experiments/search", "/mlflow/logged-models/search",
              "/mlflow/registered-models/get-latest-versions")
# MLflow's error codes for the refusals FastAPI makes itself; other 4xx are BAD_REQUEST.
HTTP_CODES = {404: "ENDPOINT_NOT_FOUND", 413: "RESOURCE_LIMIT_EXCEEDED"}


def create_app(ws: Workspace, auth: bool = True) -> FastAPI:
    """The server over ``ws``. ``auth=False`` only for a server on loopback."""
    from keel.server import logged_models, mlflow_registry
    from keel.server.mlflow_api import artifacts_router, router
    from keel.server.scope import scope_dependency

    app = FastAPI(title="keel server", version="1", docs_url="/docs",
                  openapi_url="/api/v1/openapi.json")
    scoped = scope_dependency(ws)  # each request sees its token's project only
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        app.include_router(router(ws, scoped), prefix=prefix)
        app.include_router(logged_models.router(ws, scoped), prefix=prefix)
        app.include_router(mlflow_registry.router(ws, scoped), prefix=prefix)
    app.include_router(artifacts_router(ws, scoped), prefix="/api/2.0")
    app.include_router(store_api.router(ws, scoped))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "store": ws.store.store_id if hasattr(ws.store, "store_id")
                else "", "auth": auth}

    @app.get("/api/3.0/mlflow/server-info")
    def server_info() -> dict[str, Any]:
        return {"store_type": "SqlStore", "workspaces_enabled": False}

    @app.exception_handler(KeelError)
    def keel_error(request: Request, exc: KeelError) -> JSONResponse:
        return keel_api_error(exc) if _is_v1(request) else mlflow_error(exc)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":  # loc is ("body", character)
            message = (f"the request body is not valid JSON: "
                       f"{first.get('ctx', {}).get('error', '')} (at character {loc[-1]})")
        else:
            where = ".".join(str(p) for p in loc if p != "body") or \
                ("the request body" if loc == ("body",) else "")
            message = f"{first.get('msg', 'invalid request')}" + (f" ({where})" if where else "")
        if _is_v1(request):
            return keel_api_error(InvalidInput(message))
        return _json(400, "INVALID_PARAMETER_VALUE", message)

    @app.exception_handler(DataError)
    def refused_value(request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold, found by the database itself (PostgreSQL
        # refuses NUL in any text, even in a lookup): the request's fault, not ours.
        reason = str(exc.orig or exc).splitlines()[0]
        message = f"the store refused a value: {reason}"
        if _is_v1(request):
            return keel_api_error(InvalidInput(message))
        return _json(400, "INVALID_PARAMETER_VALUE", message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # FastAPI's own refusals (a body that is not UTF-8, an unknown endpoint,
        # a wrong method) in MLflow's shape on the API; pages keep FastAPI's.
        if not request.url.path.startswith(API_PREFIXES):
            return await http_exception_handler(request, exc)
        code = HTTP_CODES.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500
                              else "INTERNAL_ERROR")
        response = _json(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    from keel.server.ui import ui_router

    app.include_router(ui_router(ws, auth, scoped))
    app.add_middleware(TokenMiddleware, ws=ws, enabled=auth)
    return app


def mlflow_error(exc: KeelError) -> JSONResponse:
    """A keel error as MLflow's client expects it: ``{error_code, message}``."""
    message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    if isinstance(exc, NotFound):
        return _json(404, "RESOURCE_DOES_NOT_EXIST", message)
    if isinstance(exc, AlreadyExists):
        return _json(400, "RESOURCE_ALREADY_EXISTS", message)
    if isinstance(exc, Conflict):
        return _json(409, "ABORTED", message)
    if isinstance(exc, Forbidden):
        return _json(403, "PERMISSION_DENIED", message)
    if isinstance(exc, InvalidInput):
        return _json(400, "INVALID_PARAMETER_VALUE", message)
    return _json(500, "INTERNAL_ERROR", message)


def keel_api_error(exc: KeelError) -> JSONResponse:
    """A keel error as ``/api/v1`` answers it: at the error's own status, with
    MLflow's two fields plus the class, message and hint apart, so that an
    ``HttpStore`` raises what the store raised."""
    kind = next((cls.__name__ for cls in type(exc).__mro__ if cls.__name__ in ERRORS),
                "KeelError")
    shaped = json.loads(bytes(mlflow_error(exc).body))
    return JSONResponse({**shaped, "error_type": kind, "detail": exc.message,
                         "hint": exc.hint}, status_code=exc.status)


def _is_v1(request: Request) -> bool:
    return request.url.path.startswith("/api/v1/")


def _json(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


class TokenMiddleware:
    """Every request but /health carries a live token whose role allows it;
    every write is audited with the token that made it."""

    def __init__(self, app: ASGIApp, ws: Workspace, enabled: bool) -> None:
        self.app, self.ws, self.enabled = app, ws, enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or \
                scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        method, path = scope["method"], scope["path"]
        token = None
        if self.enabled:
            secret = _bearer(scope) or _cookie(scope)
            token = await run_in_threadpool(tokens.check, self.ws, secret) if secret else None
            if token is None and method == "GET" and not path.startswith(API_PREFIXES):
                await _redirect(send, "/login?next=" + quote(path))  # a person, in a browser
                return
            if token is None:
                await _send(send, 401, "UNAUTHENTICATED",
                            "a valid token is required: Authorization: Bearer <token> "
                            "(MLFLOW_TRACKING_TOKEN for MLflow clients; "
                            "`keel token create` makes one)")
                return
            needed, _ = _rule(method, path)
            if not tokens.allows(token.role, needed):
                await _send(send, 403, "PERMISSION_DENIED",
                            f"a {token.role} token cannot {method} {path}; it needs {needed}")
                return
        scope.setdefault("state", {})["token"] = token
        status = 500

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, remember)
        if _rule(method, path)[1]:
            await run_in_threadpool(self.ws.store.audit_write, token.id if token else None,
                                    method, path, status)


def _rule(method: str, path: str) -> tuple[str, bool]:
    """The role a request needs, and whether it writes (and is audited)."""
    rule = store_api.role_needed(path, method)
    if rule is not None:
        return rule
    reads = method in ("GET", "HEAD") or path.endswith(READ_POSTS)
    return ("viewer" if reads else "editor"), not reads


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, secret = value.decode("latin-1").partition(" ")
            return secret.strip() if kind.lower() == "bearer" else ""
    return ""


def _cookie(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, secret = part.strip().partition("=")
                if key == COOKIE:
                    return secret
    return ""


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _send(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
