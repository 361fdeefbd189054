"""The model registry: models, one model's versions, aliases, audit history and
lineage, and promotion for admins.

Promotion goes through ``keel.models.promote``, so the gates of
``keel.toml`` apply exactly as on the command line; a refusal is shown with
its reasons (and is in the model's history, as every refusal is). The
middleware lets any editor send a POST; this route asks for admin itself,
and refuses requests a browser marks as coming from another site.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from keel.errors import Forbidden, GateFailed, InvalidInput, KeelError, NotFound
from keel.server.owned import MODEL, check_name, visible
from keel.server.scope import Scope, Scoped
from keel.server.ui.login import read_form
from keel.server.ui.page import HEADERS, PageRoute, error_page, has_role, render, token_of

if TYPE_CHECKING:
    from keel.entities import ModelVersion
    from keel.workspace import Workspace

PROMOTER = "admin"


def router(ws: Workspace, auth: bool, scoped: Scoped) -> APIRouter:
    """``/models``, ``/models/{name}`` and ``POST /ui/models/{name}/promote``."""
    api = APIRouter(route_class=PageRoute)
    within = Depends(scoped)

    @api.get("/models", response_model=None)
    def models(request: Request, scope: Scope = within) -> Response:
        return render(request, "models.html.j2", title="Models", models=visible(
            ws.store, scope, MODEL, ws.store.list_registered_models()))

    @api.get("/models/{name}", response_model=None)
    def model(request: Request, name: str, version: str = "", promoted: str = "",
              scope: Scope = within) -> Response:
        check_name(ws.store, scope, MODEL, name)
        return _model_page(request, ws, auth, name, version, notice=promoted)

    @api.post("/ui/models/{name}/promote", response_model=None)
    async def promote(request: Request, name: str, scope: Scope = within) -> Response:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(check_name, ws.store, scope, MODEL, name)
        if not has_role(request, auth, PROMOTER):
            token = token_of(request)
            role = token.role if token else "no"
            return error_page(request, Forbidden(
                f"a {role} token cannot promote models; promotion needs an admin token",
                hint="ask an admin, or sign in with an admin token"))
        if request.headers.get("sec-fetch-site") == "cross-site":
            return error_page(request, Forbidden("cross-site form posts are refused"))
        form = await read_form(request)
        try:
            done = await run_in_threadpool(_promote, ws, request, name, form)
        except GateFailed as exc:
            return await run_in_threadpool(_model_page, request, ws, auth, name,
                                           form.get("version", ""), exc.message, 409)
        except KeelError as exc:
            return await run_in_threadpool(_model_page, request, ws, auth, name,
                                           form.get("version", ""), exc.message, exc.status)
        return RedirectResponse(f"/models/{quote(name)}?promoted={quote(done)}",
                                status_code=303, headers=HEADERS)

    return api


def _promote(ws: Workspace, request: Request, name: str, form: dict[str, str]) -> str:
    import keel.models

    version, alias = form.get("version", "").strip(), form.get("alias", "").strip()
    if not version.isdigit():
        raise InvalidInput(f"version must be a number, got {version!r}")
    if not alias:
        raise InvalidInput("name the alias to move, such as champion")
    token = token_of(request)
    # promote() records the server's own user; the token says which person it was.
    who = f"web UI, token {token.id}" if token else "web UI"
    reason = form.get("reason", "").strip()
    reason = f"{reason} ({who})" if reason else f"promoted from the {who}"
    done = keel.models.promote(f"{name}/{version}", alias, reason=reason, ws=ws)
    return f"{done.version.ref} is now {done.alias!r}"


def _model_page(request: Request, ws: Workspace, auth: bool, name: str, version: str,
                error: str = "", status: int = 200, notice: str = "") -> Response:
    registered = ws.store.get_registered_model(name)
    versions = list(reversed(ws.store.list_model_versions(name)))
    shown = _chosen(versions, version)
    return render(request, "model.html.j2", status=status, title=name, model=registered,
                  versions=versions, shown=shown, history=list(reversed(
                      ws.store.model_history(name))),
                  lineage=_lineage(ws, shown), can_promote=has_role(request, auth, PROMOTER),
                  error=error, notice=notice)


def _chosen(versions: list[ModelVersion], text: str) -> ModelVersion | None:
    if not versions:
        return None
    if not text:
        return versions[0]
    found = next((v for v in versions if str(v.version) == text), None)
    if found is None:
        raise NotFound(f"{versions[0].name!r} has no version {text!r}",
                       hint="pick one from the versions table")
    return found


def _lineage(ws: Workspace, version: ModelVersion | None) -> dict[str, Any] | None:
    """What the version came from; None when the package cannot be read (then
    the page still shows everything else)."""
    from keel.models.lineage import lineage

    if version is None:
        return None
    try:
        return lineage(version.ref, ws=ws)
    except KeelError as exc:
        return {"error": exc.message}
