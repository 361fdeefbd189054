"""Experiments and runs: the experiment list, an experiment's runs table, a
run's page with its charts and artifacts, and runs compared side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from keel.errors import InvalidInput
from keel.server.scope import Scope, Scoped
from keel.server.ui import artifacts, charts
from keel.server.ui.page import PageRoute, render
from keel.server.ui.runs_table import RunsPage, RunsQuery

if TYPE_CHECKING:
    from keel.entities import Experiment, Run
    from keel.store.protocol import Store
    from keel.workspace import Workspace

# Runs counted exactly on the experiment list; above it the list says "1,000+".
# The store has no count, so counting is a bisection over one-row pages
# (~11 probes of at most 1,000 rows each), never a scan of 100,000 runs.
COUNT_CAP = 1_000
# Metric charts per page: a run logging hundreds of metrics keeps a usable page.
MAX_CHARTS = 40
MAX_COMPARE = 10
MAX_CHILDREN = 100
PROVENANCE = ("keel.git.", "keel.source.")
ENVIRONMENT = ("keel.python", "keel.platform", "keel.host")


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """``/``, ``/experiments/{id}``, ``/runs/{id}``, its artifacts, and ``/compare``:
    of the experiments of the visitor's project only."""
    api = APIRouter(route_class=PageRoute)
    within = Depends(scoped)

    @api.get("/", response_model=None)
    def experiments(request: Request, scope: Scope = within) -> Response:
        rows = [(e, run_count(ws.store, e.id)) for e in scope.experiments()]
        return render(request, "experiments.html.j2", title="Experiments", rows=rows)

    @api.get("/experiments/{ref}", response_model=None)
    def experiment(request: Request, ref: str, scope: Scope = within) -> Response:
        found = _experiment(scope, ref)
        query = RunsQuery.parse(request.query_params)
        page = RunsPage.fetch(ws.store, found, query)
        return render(request, "experiment.html.j2", status=400 if page.error else 200,
                      title=found.name, experiment=found, page=page,
                      here=f"/experiments/{found.id}")

    @api.get("/runs/{run_id}", response_model=None)
    def run(request: Request, run_id: str, scope: Scope = within) -> Response:
        found = scope.run(ws.store.resolve_run_id(run_id))
        keys = ws.store.metric_keys(found.id)
        plots = {f"m{i}": charts.line([{"label": key, "points": charts.metric_points(
                    ws.store.metric_history(found.id, key))}], y_title=key)
                 for i, key in enumerate(keys[:MAX_CHARTS])}
        return render(request, "run.html.j2", title=found.name, run=found,
                      **_tags(found), metric_keys=keys[:MAX_CHARTS],
                      hidden_charts=max(0, len(keys) - MAX_CHARTS), charts=plots,
                      artifacts=artifacts.views(ws, found.id, ws.store.list_artifacts(found.id)),
                      datasets=ws.store.datasets_of_run(found.id),
                      models=ws.store.model_versions_of_run(found.id),
                      children=ws.store.child_runs(found.id)[:MAX_CHILDREN])

    @api.get("/runs/{run_id}/artifacts/{path:path}", response_model=None)
    def artifact(run_id: str, path: str, scope: Scope = within) -> Response:
        return artifacts.serve(ws, scope.run(ws.store.resolve_run_id(run_id)).id, path)

    @api.get("/compare", response_model=None)
    def compare(request: Request, scope: Scope = within) -> Response:
        ids = _compared(request)
        runs = [scope.run(ws.store.resolve_run_id(i)) for i in ids]
        keys = sorted({k for r in runs for k in r.metrics})
        plots = {f"m{i}": charts.line([{"label": f"{r.name} ({r.id[:8]})",
                                        "points": charts.metric_points(
                                            ws.store.metric_history(r.id, key))}
                                       for r in runs], y_title=key)
                 for i, key in enumerate(keys[:MAX_CHARTS])}
        params = sorted({k for r in runs for k in r.params})
        return render(request, "compare.html.j2", title="Compare runs", runs=runs,
                      params=params, metrics=keys, metric_keys=keys[:MAX_CHARTS],
                      differs={k: len({r.params.get(k) for r in runs}) > 1 for k in params},
                      charts=plots)

    return api


def run_count(store: Store, experiment_id: int) -> str:
    """The number of live runs of an experiment, as text; ``1,000+`` beyond
    ``COUNT_CAP`` (see there for why it bisects)."""
    def exists(offset: int) -> bool:
        return bool(store.search_runs([experiment_id], max_results=1, offset=offset))

    if exists(COUNT_CAP):
        return f"{COUNT_CAP:,}+"
    low, high = 0, COUNT_CAP  # runs exist at every offset below low, none at high
    while low < high:
        middle = (low + high) // 2
        if exists(middle):
            low = middle + 1
        else:
            high = middle
    return f"{low:,}"


def _experiment(scope: Scope, ref: str) -> Experiment:
    return scope.experiment(int(ref) if ref.isdigit() else ref)


def _compared(request: Request) -> list[str]:
    """Run ids from ``?runs=a,b`` and/or repeated ``?run=a&run=b``, in order, once each."""
    given = [part.strip() for text in request.query_params.getlist("runs")
             for part in text.split(",")] + request.query_params.getlist("run")
    ids = list(dict.fromkeys(i for i in given if i))
    if not ids:
        raise InvalidInput("no runs to compare",
                           hint="tick runs on an experiment page, or open /compare?runs=ID,ID")
    if len(ids) > MAX_COMPARE:
        raise InvalidInput(f"{len(ids)} runs asked for; at most {MAX_COMPARE} compare at once")
    return ids


def _tags(run: Run) -> dict[str, Any]:
    """The run's tags split three ways: code provenance, environment, the rest."""
    provenance = {k: v for k, v in run.tags.items() if k.startswith(PROVENANCE)}
    environment = {k: v for k, v in run.tags.items() if k in ENVIRONMENT}
    rest = {k: v for k, v in run.tags.items() if k not in provenance and k not in environment}
    return {"provenance": dict(sorted(provenance.items())),
            "environment": dict(sorted(environment.items())),
            "tags": dict(sorted(rest.items()))}
