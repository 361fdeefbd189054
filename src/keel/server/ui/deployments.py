"""Deployments: their traffic split, change history, and live figures (requests,
errors, latency per model version) as tables and charts over the last hour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from keel.clock import now_ms
from keel.server.owned import DEPLOYMENT, check_name, visible
from keel.server.scope import Scope, Scoped
from keel.server.ui import charts
from keel.server.ui.page import PageRoute, render

if TYPE_CHECKING:
    from keel.entities import VersionStats
    from keel.store.protocol import Store
    from keel.workspace import Workspace

# The charts cover an hour in 5-minute windows. The store sums figures since a
# time but keeps no series, so window i is "since its start" minus "since the
# next start": 12 queries over at most an hour of flushes.
WINDOW_MS = 5 * 60_000
WINDOWS = 12


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """``/deployments`` and ``/deployments/{name}``."""
    api = APIRouter(route_class=PageRoute)
    within = Depends(scoped)

    @api.get("/deployments", response_model=None)
    def deployments(request: Request, scope: Scope = within) -> Response:
        from keel.serving.spec import DeploymentSpec

        rows = [(d, DeploymentSpec.from_dict(d.spec))
                for d in visible(ws.store, scope, DEPLOYMENT, ws.store.list_deployments())]
        return render(request, "deployments.html.j2", title="Deployments", rows=rows)

    @api.get("/deployments/{name}", response_model=None)
    def deployment(request: Request, name: str, scope: Scope = within) -> Response:
        from keel.serving import rollout
        from keel.serving.stats import summarise

        check_name(ws.store, scope, DEPLOYMENT, name)
        found, spec = rollout.get(name, ws)
        since = spec.canary_since or found.updated_at
        live = [summarise(s) for s in rollout.live_figures(name, ws, since)]
        plots = timeline(ws.store, name, now_ms())
        split = charts.bar([f"{r.version} ({r.role})" for r in spec.routes],
                           [{"label": "% of traffic", "values": [r.weight for r in spec.routes]}],
                           y_title="% of traffic")
        return render(request, "deployment.html.j2", title=name, deployment=found, spec=spec,
                      since=since, live=live, charts={"split": split, **plots},
                      history=list(reversed(ws.store.deployment_history(name))))

    return api


def timeline(store: Store, name: str, now: int) -> dict[str, Any]:
    """Requests, error rate and p99 latency per version and 5-minute window of the
    last hour, as three line charts keyed ``requests``, ``errors``, ``latency``."""
    from keel.serving.stats import percentile

    starts = [now - WINDOW_MS * (WINDOWS - i) for i in range(WINDOWS)]
    since = [_by_version(store.deployment_stats(name, start)) for start in starts] + [{}]
    series: dict[str, dict[str, list[tuple[int, float | None]]]] = {
        "requests": {}, "errors": {}, "latency": {}}
    versions = sorted({key for window in since for key in window})
    for index, start in enumerate(starts):
        for key in versions:
            requests, errors, latency = _difference(since[index].get(key),
                                                    since[index + 1].get(key))
            end = start + WINDOW_MS
            series["requests"].setdefault(key, []).append((end, requests))
            series["errors"].setdefault(key, []).append(
                (end, errors / requests if requests else None))
            series["latency"].setdefault(key, []).append(
                (end, percentile(latency, 0.99) if requests else None))
    titles = {"requests": "requests per 5 min", "errors": "error rate",
              "latency": "p99 latency (ms)"}
    return {figure: charts.line([{"label": key, "points": points}
                                 for key, points in lines.items()],
                                x="time", x_title="time (UTC)", y_title=titles[figure],
                                percent=figure == "errors")
            for figure, lines in series.items()}


def _by_version(rows: list[VersionStats]) -> dict[str, VersionStats]:
    return {f"{row.version} ({row.role})": row for row in rows}


def _difference(from_start: VersionStats | None, from_end: VersionStats | None
                ) -> tuple[int, int, list[int]]:
    """Figures in a window: everything since its start less everything since its end."""
    if from_start is None:
        return 0, 0, []
    if from_end is None:
        return from_start.requests, from_start.errors, list(from_start.latency)
    latency = [a - b for a, b in zip(from_start.latency, from_end.latency, strict=False)]
    return (from_start.requests - from_end.requests, from_start.errors - from_end.errors,
            latency)
