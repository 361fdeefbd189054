"""The team server's web UI: server-rendered pages over the same store and domain
functions the CLI uses, for people in a browser.

Pages: ``/`` (experiments), ``/experiments/{id}`` (runs: filter, sort, columns,
pages), ``/runs/{id}`` (params, metrics and their charts, tags, provenance,
artifacts), ``/compare``, ``/datasets``, ``/models`` (with promotion for
admins), ``/deployments``, ``/monitoring``; ``/login`` and ``/logout``.
Jinja2 renders them (templates in ``server/templates``), Chart.js draws the
charts from JSON embedded in the page, and nothing is fetched from another
origin (see :mod:`keel.server.ui.page` for the policy).

Only the server imports this package (``create_app`` includes the router).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from keel.server.ui import assets, datasets, deployments, login, models, monitoring, runs

if TYPE_CHECKING:
    from keel.server.scope import Scoped
    from keel.workspace import Workspace


def ui_router(ws: Workspace, auth: bool, scoped: Scoped) -> APIRouter:
    """Every page of the web UI over ``ws``; ``auth`` as the server's (with it
    off, every visitor may do what an admin may); ``scoped`` gives each request
    its token's project (see keel.server.scope)."""
    api = APIRouter()
    for part in (assets.router(), login.router(ws, auth), runs.router(ws, scoped),
                 datasets.router(ws, scoped), models.router(ws, auth, scoped),
                 deployments.router(ws, scoped), monitoring.router(ws, scoped)):
        api.include_router(part, include_in_schema=False)  # pages, not API: not in OpenAPI
    return api


__all__ = ["ui_router"]
