"""Monitoring: the share of drifted features over time per subject, the records
and alerts behind it, and one record's figures and distributions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from keel.server.scope import Scoped, default_only
from keel.server.ui import charts
from keel.server.ui.page import PageRoute, render

if TYPE_CHECKING:
    from keel.entities import MonitorRecord
    from keel.workspace import Workspace

RECORDS = 500
ALERTS = 200
# Distribution charts of one record: the table lists every feature anyway.
MAX_CHARTS = 60


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """``/monitoring`` and ``/monitoring/{record_id}``."""
    api = APIRouter(route_class=PageRoute,
                    dependencies=[Depends(default_only(scoped, "monitoring records"))])

    @api.get("/monitoring", response_model=None)
    def monitoring(request: Request) -> Response:
        records = ws.store.list_monitor_records(limit=RECORDS)
        alerts = list(reversed(ws.store.list_alerts(limit=ALERTS)))
        plots = {"drift": _drift_chart(records)} if records else {}
        return render(request, "monitoring.html.j2", title="Monitoring",
                      records=list(reversed(records)), alerts=alerts, charts=plots,
                      limit=RECORDS)

    @api.get("/monitoring/{record_id}", response_model=None)
    def record(request: Request, record_id: int) -> Response:
        found = ws.store.get_monitor_record(record_id)
        features = found.result.get("drift", {}).get("features", [])
        plots = {}
        for index, feature in enumerate(features[:MAX_CHARTS]):
            spread = feature.get("distribution") or {}
            if spread.get("labels"):
                plots[f"f{index}"] = charts.bar(
                    spread["labels"], [{"label": "reference", "values": spread["reference"]},
                                       {"label": "current", "values": spread["current"]}],
                    x_title=str(feature.get("feature", "")), y_title="share of rows")
        return render(request, "monitor_record.html.j2", title=f"Record {found.id}",
                      record=found, features=features,
                      figures=dict(sorted((found.result.get("figures") or {}).items())),
                      performance=found.result.get("performance") or [],
                      notes=found.result.get("notes") or [], charts=plots,
                      alerts=[a for a in ws.store.list_alerts(found.subject, limit=ALERTS)
                              if a.record_id == found.id])

    return api


def _drift_chart(records: list[MonitorRecord]) -> dict[str, Any]:
    """Share drifted over time, one line per subject."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        lines.setdefault(r.subject, []).append((r.time, r.share_drifted))
    return charts.line([{"label": subject, "points": points}
                        for subject, points in sorted(lines.items())],
                       x="time", x_title="time (UTC)", y_title="share of features drifted",
                       percent=True)
