"""Datasets: every dataset's latest version, and one dataset's versions with
the profile of a version (per file and column; histograms as bar charts)."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from keel.errors import InvalidInput, NotFound
from keel.server.owned import DATASET, check_name, visible
from keel.server.scope import Scope, Scoped
from keel.server.ui import charts
from keel.server.ui.page import PageRoute, render

if TYPE_CHECKING:
    from keel.data.profile import ColumnProfile, TableProfile
    from keel.entities import DatasetVersion
    from keel.workspace import Workspace

# Histograms drawn per version: a 300-column table would be 300 canvases.
MAX_CHARTS = 60


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """``/datasets`` and ``/datasets/{name}`` (``?version=N`` for a version's profile)."""
    api = APIRouter(route_class=PageRoute)
    within = Depends(scoped)

    @api.get("/datasets", response_model=None)
    def datasets(request: Request, scope: Scope = within) -> Response:
        return render(request, "datasets.html.j2", title="Datasets",
                      latest=visible(ws.store, scope, DATASET, ws.store.list_datasets()))

    @api.get("/datasets/{name}", response_model=None)
    def dataset(request: Request, name: str, version: str = "", scope: Scope = within
                ) -> Response:
        import keel.data

        check_name(ws.store, scope, DATASET, name)
        versions = ws.store.list_dataset_versions(name)
        if not versions:
            raise NotFound(f"no dataset named {name!r}", hint="the datasets page lists them")
        shown = _chosen(versions, version)
        profiles: dict[str, TableProfile] = keel.data.profiles(shown.ref, ws=ws)
        plots, files = _profile_charts(profiles)
        return render(request, "dataset.html.j2", title=name, name=name,
                      versions=list(reversed(versions)), shown=shown, files=files,
                      charts=plots)

    return api


def _chosen(versions: list[DatasetVersion], text: str) -> DatasetVersion:
    if not text:
        return versions[-1]
    if not text.isdigit():
        raise InvalidInput(f"version must be a number, got {text!r}")
    found = next((v for v in versions if v.version == int(text)), None)
    if found is None:
        raise NotFound(f"{versions[-1].dataset!r} has no version {text}",
                       hint="pick one from the versions table")
    return found


def _profile_charts(profiles: dict[str, TableProfile]
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A chart per column with a histogram (numeric) or top values (categorical),
    and the files' tables, each column naming its chart id (or "")."""
    plots: dict[str, Any] = {}
    files = []
    for path, profile in sorted(profiles.items()):
        columns = []
        for column in profile.columns:
            chart = _column_chart(column) if len(plots) < MAX_CHARTS else None
            chart_id = ""
            if chart is not None:
                chart_id = f"p{len(plots)}"
                plots[chart_id] = chart
            columns.append({"column": column, "chart": chart_id})
        files.append({"path": path, "rows": profile.rows, "columns": columns})
    return plots, files


def _column_chart(column: ColumnProfile) -> dict[str, Any] | None:
    if column.histogram is not None and column.histogram.counts:
        edges = column.histogram.edges
        labels = [f"{_short(lo)} to {_short(hi)}" for lo, hi in pairwise(edges)]
        return charts.bar(labels, [{"label": "rows", "values": list(column.histogram.counts)}],
                          x_title=column.name, y_title="rows")
    if column.top:
        return charts.bar([value for value, _ in column.top],
                          [{"label": "rows", "values": [count for _, count in column.top]}],
                          x_title=column.name, y_title="rows")
    return None


def _short(value: float) -> str:
    return f"{value:.6g}"  # 1200, 22.4, 0.05: no exponent for ordinary edges
