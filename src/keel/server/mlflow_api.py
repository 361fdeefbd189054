"""MLflow's tracking REST API over keel's store, so MLflow clients keep working.

Experiments, runs, params, metrics, tags, batches, search, metric history
(``/api/2.0/mlflow/...``, also under ``/ajax-api``), and artifacts through
the ``mlflow-artifacts`` endpoints: a run's ``artifact_uri`` is
``mlflow-artifacts:/<experiment>/<run>/artifacts``, which the client turns
into ``/api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>``.
Limits and error shapes are MLflow's: a log-batch holds at most 1,000
metrics, 100 params and 100 tags; a missing experiment is a 404 with
``RESOURCE_DOES_NOT_EXIST`` (``set_experiment`` relies on it).

Log-batch is idempotent: the client retries 408/429/5xx, so a metric point
already stored (same key, step, timestamp and value) is not stored twice.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from keel.clock import now_ms
from keel.entities import DEFAULT_PROJECT, Artifact, Experiment, MetricPoint, Run
from keel.errors import InvalidInput, NotFound
from keel.server.logged_models import folder_entries, scoped_model
from keel.server.scope import Scope, Scoped
from keel.tracking.keys import (
    MAX_STEP,
    MIN_STEP,
    check_artifact_path,
    check_key,
    check_metric_value,
    param_text,
)

if TYPE_CHECKING:
    from keel.workspace import Workspace

MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_BATCH_BYTES = 1_000_000
MAX_UPLOAD_BYTES = 2 * 1024**3
DEFAULT_EXPERIMENT = "Default"
STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """The MLflow-compatible routes over ``ws`` (mounted at /api/2.0 and /ajax-api/2.0),
    each request seeing its token's project only (``scoped``, see scope.py)."""
    api = APIRouter()
    within = Depends(scoped)

    # -- experiments -------------------------------------------------------------------

    @api.post("/mlflow/experiments/create")
    def create_experiment(payload: dict[str, Any] = Body(default_factory=dict),
                          scope: Scope = within) -> dict[str, Any]:
        name = _required(payload, "name")
        tags = {check_key(t.get("key"), "tag"): str(t.get("value", ""))
                for t in _list(payload.get("tags"), "tags", dict)}
        return {"experiment_id": str(scope.create_experiment(name, tags=tags).id)}

    @api.get("/mlflow/experiments/get")
    def get_experiment(experiment_id: str = Query(...), scope: Scope = within
                       ) -> dict[str, Any]:
        return {"experiment": _experiment(_experiment_by_id(scope, experiment_id))}

    @api.get("/mlflow/experiments/get-by-name")
    def get_experiment_by_name(experiment_name: str = Query(...), scope: Scope = within
                               ) -> dict[str, Any]:
        return {"experiment": _experiment(scope.experiment(experiment_name))}

    # One route per method: a route with both shares one OpenAPI operationId,
    # which makes the spec invalid.
    @api.get("/mlflow/experiments/search")
    @api.post("/mlflow/experiments/search")
    def search_experiments(request: Request,
                           payload: dict[str, Any] = Body(default_factory=dict),
                           scope: Scope = within) -> dict[str, Any]:
        args = {**dict(request.query_params), **payload}
        view = str(args.get("view_type", "ACTIVE_ONLY"))
        found = scope.experiments(include_deleted=view != "ACTIVE_ONLY")
        if view == "DELETED_ONLY":
            found = [e for e in found if e.lifecycle == "deleted"]
        offset = _offset(args.get("page_token"))
        limit = _int(args.get("max_results", 1000), "max_results", least=1)
        page = found[offset:offset + limit]
        out: dict[str, Any] = {"experiments": [_experiment(e) for e in page]}
        if offset + limit < len(found):
            out["next_page_token"] = _token(offset + limit)
        return out

    @api.post("/mlflow/experiments/delete")
    def delete_experiment(payload: dict[str, Any] = Body(default_factory=dict),
                          scope: Scope = within) -> dict[str, Any]:
        experiment = _experiment_by_id(scope, _required(payload, "experiment_id"))
        ws.store.set_experiment_lifecycle(experiment.name, "deleted")
        return {}

    @api.post("/mlflow/experiments/restore")
    def restore_experiment(payload: dict[str, Any] = Body(default_factory=dict),
                           scope: Scope = within) -> dict[str, Any]:
        experiment = _experiment_by_id(scope, _required(payload, "experiment_id"))
        ws.store.set_experiment_lifecycle(experiment.name, "active")
        return {}

    # -- runs --------------------------------------------------------------------------

    @api.post("/mlflow/runs/create")
    def create_run(payload: dict[str, Any] = Body(default_factory=dict),
                   scope: Scope = within) -> dict[str, Any]:
        experiment = _experiment_by_id(scope, str(payload.get("experiment_id") or "0"))
        tags = {check_key(t.get("key"), "tag"): str(t.get("value", ""))
                for t in _list(payload.get("tags"), "tags", dict)}
        name = str(payload.get("run_name") or tags.get("mlflow.runName") or "")
        run = ws.store.create_run(experiment.id, name, str(payload.get("user_id") or ""),
                                  _int(payload.get("start_time") or now_ms(), "start_time"),
                                  parent_id=tags.get("mlflow.parentRunId"), tags=tags,
                                  experiment_name=experiment.name)
        return {"run": _run(ws, run)}

    @api.get("/mlflow/runs/get")
    def get_run(run_id: str = Query("", alias="run_id"),
                run_uuid: str = Query("", alias="run_uuid"), scope: Scope = within
                ) -> dict[str, Any]:
        return {"run": _run(ws, scope.run(_run_id(run_id or run_uuid)))}

    @api.post("/mlflow/runs/update")
    def update_run(payload: dict[str, Any] = Body(default_factory=dict),
                   scope: Scope = within) -> dict[str, Any]:
        run_id = _run_id(payload.get("run_id") or payload.get("run_uuid"))
        run = scope.run(run_id)
        status = str(payload.get("status") or run.status)
        if status not in STATUSES:
            raise InvalidInput(f"unknown run status {status!r}",
                               hint=f"statuses: {', '.join(STATUSES)}")
        if payload.get("run_name"):
            ws.store.write_batch(run_id, [], [("mlflow.runName", str(payload["run_name"]))], [])
        if status != "RUNNING":
            end = payload.get("end_time")
            ws.store.end_run(run_id, status, _int(end, "end_time") if end else now_ms())
        return {"run_info": _run(ws, ws.store.get_run(run_id))["info"]}

    @api.post("/mlflow/runs/delete")
    def delete_run(payload: dict[str, Any] = Body(default_factory=dict),
                   scope: Scope = within) -> dict[str, Any]:
        ws.store.set_run_lifecycle(scope.run(_run_id(payload.get("run_id"))).id, "deleted")
        return {}

    @api.post("/mlflow/runs/restore")
    def restore_run(payload: dict[str, Any] = Body(default_factory=dict),
                    scope: Scope = within) -> dict[str, Any]:
        ws.store.set_run_lifecycle(scope.run(_run_id(payload.get("run_id"))).id, "active")
        return {}

    @api.post("/mlflow/runs/log-metric")
    def log_metric(payload: dict[str, Any] = Body(default_factory=dict),
                   scope: Scope = within) -> dict[str, Any]:
        run_id = _run_id(payload.get("run_id") or payload.get("run_uuid"))
        _log(scope, run_id, metrics=[payload])
        return {}

    @api.post("/mlflow/runs/log-parameter")
    def log_param(payload: dict[str, Any] = Body(default_factory=dict),
                  scope: Scope = within) -> dict[str, Any]:
        run_id = _run_id(payload.get("run_id") or payload.get("run_uuid"))
        _log(scope, run_id, params=[payload])
        return {}

    @api.post("/mlflow/runs/set-tag")
    def set_tag(payload: dict[str, Any] = Body(default_factory=dict),
                scope: Scope = within) -> dict[str, Any]:
        run_id = _run_id(payload.get("run_id") or payload.get("run_uuid"))
        _log(scope, run_id, tags=[payload])
        return {}

    @api.post("/mlflow/runs/log-batch")
    def log_batch(request: Request, payload: dict[str, Any] = Body(default_factory=dict),
                  scope: Scope = within) -> dict[str, Any]:
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BATCH_BYTES:
            raise InvalidInput(f"a log-batch request holds at most 1 MB, this one {size:,} bytes")
        metrics, params, tags = (_list(payload.get(k), k, dict)
                                 for k in ("metrics", "params", "tags"))
        for what, items, limit in (("metrics", metrics, MAX_METRICS),
                                   ("params", params, MAX_PARAMS), ("tags", tags, MAX_TAGS)):
            if len(items) > limit:
                raise InvalidInput(f"a log-batch holds at most {limit} {what}, got {len(items)}",
                                   hint="split it into several batches")
        _log(scope, _run_id(payload.get("run_id")), metrics=metrics, params=params, tags=tags)
        return {}

    @api.post("/mlflow/runs/log-inputs")
    def log_inputs(payload: dict[str, Any] = Body(default_factory=dict),
                   scope: Scope = within) -> dict[str, Any]:
        # Dataset references of MLflow clients are kept as tags (keel's own
        # dataset versions are linked through `keel data`).
        run_id = _run_id(payload.get("run_id"))
        tags = [{"key": f"mlflow.input.{i}", "value": json.dumps(d.get("dataset", {}))[:5000]}
                for i, d in enumerate(_list(payload.get("datasets"), "datasets", dict))]
        scope.run(run_id)  # this project's, even with nothing to log
        if tags:
            _log(scope, run_id, tags=tags)
        return {}

    @api.get("/mlflow/runs/search")
    @api.post("/mlflow/runs/search")
    def search_runs(request: Request, payload: dict[str, Any] = Body(default_factory=dict),
                    scope: Scope = within) -> dict[str, Any]:
        args = {**dict(request.query_params), **payload}
        ids = args.get("experiment_ids") or []
        ids = [ids] if isinstance(ids, str | int) else ids
        experiment_ids = [_experiment_by_id(scope, str(i)).id
                          for i in _list(ids, "experiment_ids", str | int)] \
            or scope.experiment_ids()
        if not experiment_ids:  # a project without experiments yet
            return {"runs": []}
        view = str(args.get("run_view_type", "ACTIVE_ONLY"))
        limit = min(_int(args.get("max_results", 1000), "max_results", least=1), 50_000)
        offset = _offset(args.get("page_token"))
        order = args.get("order_by") or []
        order = _list([order] if isinstance(order, str) else order, "order_by", str)
        runs = ws.store.search_runs(experiment_ids, str(args.get("filter") or ""), order,
                                    max_results=limit + 1, offset=offset,
                                    include_deleted=view != "ACTIVE_ONLY")
        if view == "DELETED_ONLY":
            runs = [r for r in runs if r.lifecycle == "deleted"]
        out: dict[str, Any] = {"runs": [_run(ws, r, full=False) for r in runs[:limit]]}
        if len(runs) > limit:
            out["next_page_token"] = _token(offset + limit)
        return out

    @api.get("/mlflow/metrics/get-history")
    def metric_history(run_id: str = Query("", alias="run_id"),
                       run_uuid: str = Query("", alias="run_uuid"),
                       metric_key: str = Query(...), max_results: int = Query(25_000, ge=1),
                       page_token: str | None = Query(None), scope: Scope = within
                       ) -> dict[str, Any]:
        points = ws.store.metric_history(scope.run(_run_id(run_id or run_uuid)).id,
                                         metric_key)
        offset = _offset(page_token)
        page = points[offset:offset + max_results]
        out: dict[str, Any] = {"metrics": [_metric(p) for p in page]}
        if offset + max_results < len(points):
            out["next_page_token"] = _token(offset + max_results)
        return out

    return api


def artifacts_router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """``/api/2.0/mlflow-artifacts/artifacts``: upload, download and list a run's files
    (of the runs of the request's project only)."""
    api = APIRouter()
    within = Depends(scoped)

    @api.put("/mlflow-artifacts/artifacts/{path:path}")
    async def upload(path: str, request: Request, scope: Scope = within) -> Any:
        target = await run_in_threadpool(_artifact_target, scope, path)
        with tempfile.NamedTemporaryFile(prefix="keel-upload-") as spool:
            size = 0
            async for chunk in request.stream():  # streamed: never the whole file in memory
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    return _too_large()
                spool.write(chunk)
            spool.flush()
            with ws.writing():
                digest = ws.blobs.put_file(spool.name)
        artifact = Artifact(target.relative, digest, size)
        if target.model_id:
            await run_in_threadpool(ws.store.add_logged_model_file, target.model_id, artifact)
        else:
            await run_in_threadpool(ws.store.add_artifact, target.run_id, artifact)
        return {}

    @api.get("/mlflow-artifacts/artifacts/{path:path}")
    def download(path: str, scope: Scope = within) -> Response:
        target = _artifact_target(scope, path)
        found = {a.path: a for a in target.files(ws)}
        if target.relative not in found:
            raise NotFound(f"no artifact {target.relative!r} in {target.owner}")
        data = ws.blobs.get_bytes(found[target.relative].digest)  # verified against its digest

        def body() -> Iterator[bytes]:
            view = memoryview(data)
            for start in range(0, len(view), 1 << 20):
                yield bytes(view[start:start + (1 << 20)])

        return StreamingResponse(body(), media_type="application/octet-stream")

    @api.get("/mlflow-artifacts/artifacts")
    def listing(path: str = Query(""), scope: Scope = within) -> dict[str, Any]:
        if not path:
            return {"files": []}
        target = _artifact_target(scope, path, folder=True)
        return {"files": folder_entries(target.files(ws), target.relative)}

    return api


# -- helpers ---------------------------------------------------------------------------


def _required(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if value in (None, ""):
        raise InvalidInput(f"Missing value for required parameter '{key}'")
    if isinstance(value, list | dict):
        raise InvalidInput(f"'{key}' must be a string, got {value!r}"[:200])
    return str(value)


def _int(value: Any, name: str, least: int = MIN_STEP) -> int:
    """An integer field (MLflow's JSON carries 64-bit ones as strings)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{name} must be an integer, got {value!r}"[:200]) from exc
    if not least <= number <= MAX_STEP:
        raise InvalidInput(f"{name} {number} is out of range ({least} to {MAX_STEP})")
    return number


def _list(value: Any, name: str, kind: Any) -> list[Any]:
    """A repeated field of the request: a list of ``kind`` (absent: empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
        what = "objects" if kind is dict else "strings"
        raise InvalidInput(f"{name} must be a list of {what}, got {value!r}"[:200])
    return value


def _run_id(value: Any) -> str:
    if not value:
        raise InvalidInput("Missing value for required parameter 'run_id'")
    return str(value)


def default_experiment(project: str) -> str:
    """The name of MLflow's default experiment (id "0") in ``project``."""
    return DEFAULT_EXPERIMENT if project == DEFAULT_PROJECT else f"{DEFAULT_EXPERIMENT}-{project}"


def _experiment_by_id(scope: Scope, experiment_id: str) -> Experiment:
    if experiment_id == "0":  # MLflow's default experiment
        return scope.get_or_create_experiment(default_experiment(scope.project))
    if not (experiment_id.isascii() and experiment_id.isdigit()) or len(experiment_id) > 18:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return scope.experiment(int(experiment_id))


def _offset(token: Any) -> int:
    if not token:
        return 0
    try:
        return max(0, int(json.loads(base64.urlsafe_b64decode(str(token)))["offset"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("invalid page_token") from exc


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _log(scope: Scope, run_id: str, metrics: Sequence[dict[str, Any]] = (),
         params: Sequence[dict[str, Any]] = (), tags: Sequence[dict[str, Any]] = ()) -> None:
    run = scope.run(run_id)
    if run.lifecycle != "active":
        raise InvalidInput(f"run {run_id} is deleted", hint="restore it first")
    points = []
    for m in metrics:
        key = check_key(m.get("key"), "metric")
        value = _metric_value(key, m.get("value"))
        points.append(MetricPoint(key, value, _int(m.get("step") or 0, "step"),
                                  _int(m.get("timestamp") or now_ms(), "timestamp")))
    params_out = [(check_key(p.get("key"), "param"), param_text(str(p["key"]), p.get("value")))
                  for p in params]
    tags_out = [(check_key(t.get("key"), "tag"), str(t.get("value", ""))) for t in tags]
    for key, text in params_out:
        existing = run.params.get(key)
        if existing is not None and existing != text:
            raise InvalidInput(f"Changing param values is not allowed. Param with key='{key}' "
                               f"was already logged with value='{existing}' for run ID="
                               f"'{run_id}'. Attempted logging new value '{text}'.")
    # once=True: a retried batch (the client retries 408/429/5xx) must not double
    # the history, even when its copies arrive together.
    scope.ws.store.write_batch(run.id, params_out, tags_out, points, once=True)


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, str):  # MLflow sends NaN and infinities as strings
        try:
            value = float(value)
        except ValueError as exc:
            raise InvalidInput(f"metric {key!r} has a non-numeric value {value!r}") from exc
    return check_metric_value(key, value)


@dataclass(frozen=True)
class ArtifactTarget:
    """Whose file an artifact path names: a run's, or a logged model's."""

    relative: str  # checked; "" for the root folder
    run_id: str = ""
    model_id: str = ""

    @property
    def owner(self) -> str:
        return f"logged model {self.model_id}" if self.model_id else f"run {self.run_id}"

    def files(self, ws: Workspace) -> list[Artifact]:
        return ws.store.logged_model_files(self.model_id) if self.model_id \
            else ws.store.list_artifacts(self.run_id)


def _artifact_target(scope: Scope, path: str, folder: bool = False) -> ArtifactTarget:
    """``<experiment>/<run>/artifacts/<relative>`` (a run's file) or
    ``<experiment>/models/<model id>/artifacts/<relative>`` (a logged model's),
    checked against the request's project."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 2 and parts[1] == "models":
        return _model_target(scope, path, parts, folder)
    if len(parts) < 3 or parts[2] != "artifacts" or (len(parts) < 4 and not folder):
        raise InvalidInput(f"artifact path {path!r} is not <experiment>/<run>/artifacts/<file>")
    run = scope.run(parts[1])
    if str(run.experiment_id) != parts[0] and not (
            parts[0] == "0" and run.experiment == default_experiment(scope.project)):
        raise NotFound(f"no run {parts[1]} in experiment {parts[0]}")
    relative = "/".join(parts[3:])
    return ArtifactTarget(check_artifact_path(relative) if relative else "", run_id=run.id)


def _model_target(scope: Scope, path: str, parts: tuple[str, ...], folder: bool
                  ) -> ArtifactTarget:
    if len(parts) < 4 or parts[3] != "artifacts" or (len(parts) < 5 and not folder):
        raise InvalidInput(f"artifact path {path!r} is not "
                           "<experiment>/models/<model id>/artifacts/<file>")
    model = scoped_model(scope, parts[2])
    if str(model.experiment_id) != parts[0]:
        raise NotFound(f"no logged model {parts[2]} in experiment {parts[0]}")
    relative = "/".join(parts[4:])
    return ArtifactTarget(check_artifact_path(relative) if relative else "", model_id=model.id)


def _too_large() -> Response:
    body = {"error_code": "RESOURCE_LIMIT_EXCEEDED",
            "message": f"uploads are limited to {MAX_UPLOAD_BYTES:,} bytes"}
    return Response(json.dumps(body), status_code=413, media_type="application/json")


def _experiment(e: Experiment) -> dict[str, Any]:
    return {"experiment_id": str(e.id), "name": e.name,
            "artifact_location": f"mlflow-artifacts:/{e.id}",
            "lifecycle_stage": "active" if e.lifecycle == "active" else "deleted",
            "creation_time": e.created_at, "last_update_time": e.created_at,
            "tags": [{"key": k, "value": v} for k, v in e.tags.items()]}


def _metric(p: MetricPoint) -> dict[str, Any]:
    shown: Any = p.value if math.isfinite(p.value) else \
        str(p.value).replace("inf", "Infinity")
    return {"key": p.key, "value": shown, "timestamp": p.timestamp, "step": p.step}


def _run(ws: Workspace, run: Run, full: bool = True) -> dict[str, Any]:
    """MLflow's run JSON. ``full``: each metric's latest point with its step and
    time (a query per metric); search results carry the latest values only."""
    info = {"run_id": run.id, "run_uuid": run.id, "run_name": run.name,
            "experiment_id": str(run.experiment_id), "user_id": run.user,
            "status": run.status, "start_time": run.start_time,
            "artifact_uri": f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts",
            "lifecycle_stage": "active" if run.lifecycle == "active" else "deleted"}
    if run.end_time is not None:
        info["end_time"] = run.end_time
    latest = []
    for key in sorted(run.metrics):
        history = ws.store.metric_history(run.id, key) if full else []
        latest.append(_metric(history[-1]) if history else
                      _metric(MetricPoint(key, run.metrics[key], 0, run.start_time)))
    return {"info": info,
            "data": {"metrics": latest,
                     "params": [{"key": k, "value": v} for k, v in sorted(run.params.items())],
                     "tags": [{"key": k, "value": v} for k, v in sorted(run.tags.items())]},
            "inputs": {}}
