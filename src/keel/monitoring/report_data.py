"""What a monitoring report shows, gathered from a pass and the stored history:
the shape :func:`keel.monitoring.report.render_report` draws."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.monitoring.monitor import MonitorResult
    from keel.workspace import Workspace

TREND_RECORDS = 200


def report_data(result: MonitorResult, ws: Workspace, explain: bool = True,
                label: str | None = None) -> dict[str, Any]:
    """The report's data: this pass's features and distributions, the drift
    trend and performance over the subject's stored records, its alerts, and
    (when the model is known) feature importance and drift attribution."""
    importance, attribution = _explanations(result, ws, label) if explain else ({}, {})
    if attribution:
        result.notes.append("attribution: the share of the prediction shift undone by "
                            "giving one feature its reference values back")
    features = []
    for f in result.drift.features:
        row = {"feature": f.feature, "kind": f.kind, "method": f.method,
               "statistic": f.statistic, "p_value": f.p_value, "threshold": f.threshold,
               "drifted": f.drifted,
               "distribution": {"labels": f.distribution.labels,
                                "reference": f.distribution.reference,
                                "current": f.distribution.current}
               if f.distribution else {"labels": [], "reference": [], "current": []},
               "importance": importance.get(f.feature), "attribution": attribution.get(f.feature)}
        features.append(row)
    records = ws.store.list_monitor_records(result.subject, limit=TREND_RECORDS)
    trend = [{"time": r.time, "share_drifted": r.share_drifted,
              "scores": {f["feature"]: f["statistic"] for f in
                         r.result.get("drift", {}).get("features", [])
                         if f.get("statistic") is not None}} for r in records]
    performance = [{"time": r.time, **p} for r in records
                   for p in r.result.get("performance", [])]
    alerts = [{"time": a.time, "rule": a.rule, "value": a.value, "message": a.message}
              for a in ws.store.list_alerts(result.subject, limit=50)]
    return {
        "title": f"keel drift report: {result.subject}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "subject": result.subject + (f" (model {result.model_version})"
                                     if result.model_version else ""),
        "reference": {"label": result.reference, "rows": result.drift.rows_reference},
        "current": {"label": result.current, "rows": result.drift.rows_current},
        "share_drifted": result.drift.share_drifted, "drifted": result.drift.drifted,
        "drift_share_threshold": result.drift.drift_share,
        "features": features, "trend": trend, "performance": performance, "alerts": alerts,
        "notes": list(result.notes),
    }


def _explanations(result: MonitorResult, ws: Workspace, label: str | None
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """Permutation importance of the stable version on its training data, and
    which features moved its predictions; empty when either cannot be had."""
    if result.model_version is None or result.frames is None:
        return {}, {}
    from keel.models.load import load_model
    from keel.monitoring.explain import drift_attribution, version_importance

    reference, current = result.frames
    inputs = [c for c in reference.columns if c != "prediction"]
    importance: dict[str, float] = {}
    attribution: dict[str, float] = {}
    try:
        model = load_model(f"models:/{result.model_version}", ws=ws)
        attribution = drift_attribution(model.predict, reference[inputs],
                                                current[inputs], inputs)
        label = label or _label_column(result.reference, inputs, ws)
        if label:
            importance = version_importance(result.model_version, result.reference,
                                                    label, ws=ws)
    except (KeelError, ValueError, TypeError) as exc:
        result.notes.append(f"explanations incomplete: {exc}")
    return importance, attribution


def _label_column(reference: str, inputs: list[str], ws: Workspace) -> str | None:
    """The reference's one column that is not a model input, if there is one."""
    from keel.monitoring.sources import resolve

    try:
        source = resolve(reference, "reference", ws)
    except KeelError:
        return None
    extra = [c for c in source.frame().columns if c not in inputs]
    return str(extra[0]) if len(extra) == 1 else None
