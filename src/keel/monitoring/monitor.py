"""One monitoring pass: compare a current window with a reference, add
performance where labels exist, store the record, raise alerts.

For a deployment, the current data is a window of its inference log (live
traffic only) and the reference, unless given, is what its stable version
was trained on: the input dataset its lineage names. The model's inputs are
compared feature by feature; its predictions too (prediction drift), the
reference's predictions made by the stable model itself.

    >>> from keel.monitoring import monitor
    >>> result = monitor.run(deployment="prod", window="1h")
    >>> result.drift.share_drifted, result.figures["performance.accuracy"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, NotFound
from keel.monitoring.drift import DRIFT_SHARE, DriftResult, compare_frames, drift
from keel.monitoring.rules import Rule, parse_rules

if TYPE_CHECKING:
    import pandas as pd

    from keel.entities import Alert, MonitorRecord
    from keel.workspace import Workspace

REFERENCE_ROWS = 50_000  # predictions on the reference are made on at most this many rows
META = ("request_id", "row", "time", "deployment", "model_version", "role", "latency_ms",
        "prediction", "label")


@dataclass
class MonitorResult:
    """What one pass compared, found and stored."""

    subject: str
    reference: str
    current: str
    drift: DriftResult
    performance: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    record: MonitorRecord | None = None
    alerts: list[Alert] = field(default_factory=list)
    window: tuple[int | None, int | None] = (None, None)
    model_version: str | None = None
    notes: list[str] = field(default_factory=list)
    frames: tuple[Any, Any] | None = field(default=None, repr=False)  # (reference, current)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``keel monitor run --json`` prints)."""
        return {"subject": self.subject, "reference": self.reference, "current": self.current,
                "record": self.record.id if self.record else None,
                "window": {"start": self.window[0], "end": self.window[1]},
                "model_version": self.model_version, "figures": self.figures,
                "share_drifted": self.drift.share_drifted, "drifted": self.drift.drifted,
                "features": [{k: v for k, v in f.items() if k != "distribution"}
                             for f in self.drift.to_dict()["features"]],
                "performance": self.performance,
                "alerts": [a.to_dict() for a in self.alerts], "notes": self.notes}


def settings(deployment: str, ws: Workspace, section: str = "monitor") -> dict[str, Any]:
    """The ``[monitor.NAME]`` (or ``[automate.NAME]``) table of ``keel.toml``."""
    from keel.config import read_toml

    table = read_toml(ws.root).get(section, {})
    found = table.get(deployment, {}) if isinstance(table, dict) else {}
    if not isinstance(found, dict):
        raise InvalidInput(f"[{section}.{deployment}] in keel.toml must be a table")
    return found


def run(deployment: str | None = None, window: str | int | None = "1h",
        reference: Any = None, current: Any = None, columns: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        methods: str | Mapping[str, str] | None = None,
        thresholds: float | Mapping[str, float] | None = None,
        drift_share: float | None = None, alerts: Sequence[str] | None = None,
        webhook: str | None = None, save: bool = True, predictions: bool = True,
        reference_window: str | None = None, ws: Workspace | None = None) -> MonitorResult:
    """Compare, store a monitoring record and raise alerts.

    Either ``deployment`` (its inference log over the last ``window``, e.g.
    ``"1h"``) or ``current`` (a DataFrame, file or dataset version) is the
    current data; ``reference`` overrides the default reference, or
    ``reference_window`` (``"7d..1d"``: from 7 days ago to 1 day ago) takes
    an earlier window of the same inference log as the reference. ``alerts``
    (rules such as ``"drift_share > 0.3"``) and ``webhook`` add to what
    ``[monitor.NAME]`` in keel.toml declares.
    """
    from keel.workspace import resolve_workspace

    ws = resolve_workspace(ws)
    if deployment is None and current is None:
        raise InvalidInput("nothing to monitor: give a deployment (--deployment NAME) or "
                           "current data (--current FILE|DATASET@N)")
    declared = settings(deployment, ws) if deployment else {}
    share = float(drift_share if drift_share is not None
                  else declared.get("drift_share", DRIFT_SHARE))
    rules = parse_rules(declared.get("alerts"), f"[monitor.{deployment}] alerts") + \
        [Rule.parse(a) for a in alerts or ()]
    hook = webhook or declared.get("webhook")
    methods = methods if methods is not None else declared.get("methods")
    categorical = categorical if categorical is not None else declared.get("categorical")
    if deployment is not None and current is None:
        result = _deployment_pass(deployment, window, reference or declared.get("reference"),
                                  columns, categorical, methods, thresholds, share,
                                  predictions, ws,
                                  reference_window or declared.get("reference_window"))
    else:
        if reference is None:
            raise InvalidInput("give the reference to compare with (--reference "
                               "FILE|DATASET@N)")
        found = drift(reference, current, categorical=categorical, methods=methods,
                      thresholds=thresholds, columns=columns, drift_share=share, ws=ws)
        ref_label, cur_label = _label(reference), _label(current)
        subject = f"deployment:{deployment}" if deployment else f"{ref_label} -> {cur_label}"
        result = MonitorResult(subject, ref_label, cur_label, found)
    result.figures = figures_of(result.drift, result.performance, result.model_version)
    if save:
        result.record = ws.store.add_monitor_record(
            result.subject, result.reference, result.current, result.drift.share_drifted,
            result.drift.drifted, {"drift": result.drift.to_dict(),
                                   "performance": result.performance,
                                   "figures": result.figures, "notes": result.notes,
                                   "model_version": result.model_version},
            *result.window)
    if rules:
        from keel.monitoring.alerts import raise_alerts

        record_id = result.record.id if result.record else None
        result.alerts = raise_alerts(result.subject, record_id, rules, result.figures, hook,
                                     ws, float(declared.get("webhook_timeout", 5.0)))
    return result


def _deployment_pass(name: str, window: str | int | None, reference: Any,
                     columns: Sequence[str] | None, categorical: Sequence[str] | None,
                     methods: str | Mapping[str, str] | None,
                     thresholds: float | Mapping[str, float] | None, share: float,
                     predictions: bool, ws: Workspace,
                     reference_window: str | None = None) -> MonitorResult:
    from keel.clock import now_ms
    from keel.monitoring.performance import performance
    from keel.monitoring.sources import resolve
    from keel.serving import rollout
    from keel.serving.inference_log import InferenceLog, to_ms

    _, spec = rollout.get(name, ws)
    version = spec.stable.version
    start, end = to_ms(window), now_ms()
    log = InferenceLog(name, ws).read(start=start, end=end, role="live")
    if log.empty:
        raise InvalidInput(f"deployment {name!r} logged no live predictions in the window "
                           f"({_window_text(window)})", hint="widen --window, or check that "
                           "the server runs and logs (keel deploy log " + name + ")")
    notes: list[str] = []
    if reference_window is not None:
        ref_start, ref_end = _bounds(reference_window)
        ref_frame = InferenceLog(name, ws).read(start=ref_start, end=ref_end, role="live",
                                                labels=False)
        ref_label = f"{name} live traffic, {reference_window} ago"
        if ref_frame.empty:
            raise InvalidInput(f"deployment {name!r} logged nothing in the reference window "
                               f"{reference_window}", hint="pick a window with traffic")
    else:
        ref_label = _label(reference) if reference is not None else \
            _training_data(version, ws)
        ref_frame = resolve(reference if reference is not None else ref_label, "reference",
                            ws).frame()
    model = _model(version, ws, notes)
    features = list(columns) if columns else _features(log, model)
    current = log[features].reset_index(drop=True)
    missing = [c for c in features if c not in ref_frame.columns]
    if missing:
        raise InvalidInput(f"the reference {ref_label} lacks the model's inputs "
                           f"{', '.join(missing)}", hint="give a reference with the same "
                           "columns as the traffic (--reference DATASET@N or FILE)")
    ref_inputs = ref_frame[features]
    if reference_window is not None:  # both sides were logged: compare the logged predictions
        ref_inputs = ref_inputs.assign(prediction=ref_frame["prediction"].to_numpy())
        current = current.assign(prediction=log["prediction"].to_numpy())
    elif predictions and model is not None and "prediction" in log.columns:
        ref_inputs, current = _with_predictions(model, ref_inputs, current, log, notes)
    if model is not None and model.task == "classification" and "prediction" in current:
        # Class labels are categories, whatever their dtype (0/1 are not a scale).
        categorical = [*(categorical or ()), "prediction"]
    found = compare_frames(ref_inputs, current, categorical=categorical, methods=methods,
                           thresholds=thresholds, drift_share=share)
    result = MonitorResult(f"deployment:{name}", ref_label,
                           f"{name} live traffic, {_window_text(window)}", found,
                           performance=performance(log), window=(start, end),
                           model_version=version, notes=notes)
    result.frames = (ref_inputs, current)
    return result


def _bounds(window: str) -> tuple[int | None, int | None]:
    """``"7d..1d"`` as epoch-ms bounds (each side a duration back or a time)."""
    from keel.serving.inference_log import to_ms

    start, sep, end = window.partition("..")
    if not sep or not start.strip():
        raise InvalidInput(f"bad reference window {window!r}",
                           hint="write START..END, e.g. 7d..1d (from 7 days ago to 1 day ago)")
    return to_ms(start.strip()), to_ms(end.strip()) if end.strip() else None


def _training_data(version: str, ws: Workspace) -> str:
    """The input dataset the version's lineage names (what it was trained on)."""
    from keel.models.lineage import lineage

    try:
        found = lineage(version, ws=ws)
    except KeelError:
        found = {}
    inputs = [d["ref"] for d in found.get("datasets", []) if d.get("role") == "input"]
    if not inputs:
        raise NotFound(f"no training data is recorded for {version}, so there is no default "
                       "reference", hint="give one: --reference DATASET@N or FILE, or set "
                       "reference = \"DATASET@N\" under [monitor.NAME] in keel.toml")
    return str(inputs[0])


def _model(version: str, ws: Workspace, notes: list[str]) -> Any:
    from keel.models.load import load_model

    try:
        return load_model(f"models:/{version}", ws=ws)
    except KeelError as exc:  # a model that won't load here still has its traffic compared
        notes.append(f"predictions not compared: {exc.message}")
        return None


def _features(log: pd.DataFrame, model: Any) -> list[str]:
    present = [c for c in log.columns if c not in META]
    if model is not None and model.signature.kind == "table":
        wanted = [n for n in model.signature.names if n in present]
        if wanted:
            return wanted
    if not present:
        raise InvalidInput("the inference log has no feature columns to compare")
    return present


def _with_predictions(model: Any, reference: pd.DataFrame, current: pd.DataFrame,
                      log: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sides with a ``prediction`` column: the log's, and the stable model's
    on (a sample of) the reference."""
    sample = reference.sample(REFERENCE_ROWS, random_state=0) \
        if len(reference) > REFERENCE_ROWS else reference
    try:
        predicted = model.predict(sample)
    except KeelError as exc:
        notes.append(f"predictions not compared: the model refused the reference: {exc.message}")
        return reference, current
    reference_out = sample.assign(prediction=predicted)
    current_out = current.assign(prediction=log["prediction"].to_numpy())
    if len(sample) < len(reference):  # the inputs are still compared on every row
        notes.append(f"reference predictions made on {len(sample):,} sampled rows")
    return reference_out, current_out


def figures_of(found: DriftResult, performance: list[dict[str, Any]],
               version: str | None) -> dict[str, float]:
    """Every figure a rule may name: drift_share, drifted_features, rows,
    drift.FEATURE (the statistic), p_value.FEATURE, prediction_drift,
    performance.METRIC (the stable version's) and performance.METRIC.VERSION."""
    out: dict[str, float] = {"drift_share": found.share_drifted,
                             "drifted_features": float(len(found.drifted_features)),
                             "rows": float(found.rows_current)}
    for f in found.features:
        out[f"drift.{f.feature}"] = f.statistic
        if f.p_value is not None:
            out[f"p_value.{f.feature}"] = f.p_value
        if f.feature == "prediction":
            out["prediction_drift"] = f.statistic
            out["prediction_drifted"] = float(f.drifted)
    for p in performance:
        out[f"performance.{p['metric']}.{p['version']}"] = p["value"]
        if version is None or p["version"] == version:
            out[f"performance.{p['metric']}"] = p["value"]
    return out


def _label(value: Any) -> str:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return f"DataFrame ({len(value):,} rows)"
    return str(value)


def _window_text(window: str | int | None) -> str:
    if window is None:
        return "everything logged"
    import re

    return f"last {window}" if re.fullmatch(r"(\d+(\.\d+)?[smhdw])+", str(window).lower()) \
        else f"since {window}"
