"""MLflow 3's logged-model endpoints: what ``mlflow.<flavor>.log_model`` and
``mlflow.<flavor>.load_model("models:/<model_id>")`` call.

A logged model is created PENDING (``POST /mlflow/logged-models``), its files
are uploaded through the ``mlflow-artifacts`` endpoints under
``<experiment>/models/<model_id>/artifacts/`` (see ``mlflow_api.py``), and
the client then finalizes it READY (``PATCH /mlflow/logged-models/{id}``).
Models belong to their experiment's project, like runs: another project's
model answers as a missing one.

Search serves what clients ask (by experiment, newest first, and the
``name = '...'`` filter ``mlflow.register_model("runs:/...")`` sends); any
other filter, or an order, is refused with a clear error rather than ignored.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Depends, Query

from keel.errors import InvalidInput, NotFound
from keel.server.scope import Scope, Scoped
from keel.tracking.keys import check_key

if TYPE_CHECKING:
    from keel.entities import LoggedModel
    from keel.workspace import Workspace

# The one filter served: what register_model("runs:/<id>/<name>") sends.
NAME_FILTER = re.compile(r"""\s*name\s*=\s*(['"])(.*)\1\s*""")
STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
MAX_SEARCH = 1000


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """The logged-model routes (mounted at /api/2.0 and /ajax-api/2.0)."""
    api = APIRouter()
    within = Depends(scoped)

    @api.post("/mlflow/logged-models")
    def create(payload: dict[str, Any] = Body(default_factory=dict), scope: Scope = within
               ) -> dict[str, Any]:
        experiment = scope.experiment(_experiment_id(payload.get("experiment_id")))
        run_id = payload.get("source_run_id") or None
        if run_id is not None:
            scope.run(str(run_id))
        name = str(payload.get("name") or "model")
        if len(name) > 256:
            raise InvalidInput("a logged model's name holds at most 256 characters")
        model = ws.store.create_logged_model(
            "m-" + uuid.uuid4().hex, experiment.id, name, run_id,
            str(payload.get("model_type") or ""), _creator(payload),
            _pairs(payload.get("tags"), "tags"), _pairs(payload.get("params"), "params"))
        return {"model": model_json(model)}

    @api.get("/mlflow/logged-models/{model_id}")
    def get(model_id: str, scope: Scope = within) -> dict[str, Any]:
        return {"model": model_json(scoped_model(scope, model_id))}

    @api.patch("/mlflow/logged-models/{model_id}")
    def finalize(model_id: str, payload: dict[str, Any] = Body(default_factory=dict),
                 scope: Scope = within) -> dict[str, Any]:
        scoped_model(scope, model_id)
        status = str(payload.get("status") or "")
        if status not in STATUSES[1:]:
            raise InvalidInput(f"a logged model is finalized as {' or '.join(STATUSES[1:])}, "
                               f"not {status!r}")
        ws.store.update_logged_model(model_id, status=status)
        return {"model": model_json(ws.store.get_logged_model(model_id))}

    @api.delete("/mlflow/logged-models/{model_id}")
    def delete(model_id: str, scope: Scope = within) -> dict[str, Any]:
        scoped_model(scope, model_id)
        ws.store.update_logged_model(model_id, deleted=True)
        return {}

    @api.patch("/mlflow/logged-models/{model_id}/tags")
    def set_tags(model_id: str, payload: dict[str, Any] = Body(default_factory=dict),
                 scope: Scope = within) -> dict[str, Any]:
        scoped_model(scope, model_id)
        ws.store.update_logged_model(model_id, tags=_pairs(payload.get("tags"), "tags"))
        return {"model": model_json(ws.store.get_logged_model(model_id))}

    @api.delete("/mlflow/logged-models/{model_id}/tags/{tag_key}")
    def delete_tag(model_id: str, tag_key: str, scope: Scope = within) -> dict[str, Any]:
        scoped_model(scope, model_id)
        ws.store.delete_logged_model_tag(model_id, tag_key)
        return {}

    @api.post("/mlflow/logged-models/{model_id}/params")
    def log_params(model_id: str, payload: dict[str, Any] = Body(default_factory=dict),
                   scope: Scope = within) -> dict[str, Any]:
        scoped_model(scope, model_id)
        ws.store.update_logged_model(model_id, params=_pairs(payload.get("params"), "params"))
        return {}

    @api.post("/mlflow/logged-models/search")
    def search(payload: dict[str, Any] = Body(default_factory=dict), scope: Scope = within
               ) -> dict[str, Any]:
        name = _name_filter(payload.get("filter"))
        if payload.get("order_by") or payload.get("datasets"):
            raise InvalidInput("logged-model search by order or dataset is not served yet",
                               hint="search by experiment ids (newest first)")
        ids = payload.get("experiment_ids") or []
        if not isinstance(ids, list):
            raise InvalidInput("experiment_ids must be a list")
        experiments = [scope.experiment(_experiment_id(i)).id for i in ids] \
            or scope.experiment_ids()
        limit = min(_whole(payload.get("max_results") or 100, "max_results", least=1),
                    MAX_SEARCH)
        offset = _offset(payload.get("page_token"))
        found = ws.store.search_logged_models(experiments, limit + 1, offset, name) \
            if experiments else []
        out: dict[str, Any] = {"models": [model_json(m) for m in found[:limit]]}
        if len(found) > limit:
            out["next_page_token"] = str(offset + limit)
        return out

    @api.get("/mlflow/logged-models/{model_id}/artifacts/directories")
    def list_files(model_id: str, artifact_directory_path: str = Query(""),
                   scope: Scope = within) -> dict[str, Any]:
        model = scoped_model(scope, model_id)
        prefix = artifact_directory_path.strip("/")
        return {"root_uri": artifact_uri(model),
                "files": folder_entries(ws.store.logged_model_files(model.id), prefix)}

    @api.post("/mlflow/runs/outputs")
    def log_outputs(payload: dict[str, Any] = Body(default_factory=dict),
                    scope: Scope = within) -> dict[str, Any]:
        run = scope.run(str(payload.get("run_id") or ""))
        outputs = payload.get("models") or []
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise InvalidInput("models must be a list of {model_id, step}")
        tags = []
        for output in outputs:
            model = scoped_model(scope, str(output.get("model_id") or ""))
            step = _whole(output.get("step") or 0, "step", least=0)
            tags.append((f"keel.output.model.{model.id}", str(step)))
        if tags:
            ws.store.write_batch(run.id, [], tags, [])
        return {}

    return api


def model_json(m: LoggedModel) -> dict[str, Any]:
    """MLflow's LoggedModel message as JSON."""
    return {"info": {"model_id": m.id, "experiment_id": str(m.experiment_id), "name": m.name,
                     "creation_timestamp_ms": m.created_at,
                     "last_updated_timestamp_ms": m.updated_at,
                     # (no creator_id: MLflow's is a numeric user id; keel keeps the name)
                     "artifact_uri": artifact_uri(m), "status": m.status,
                     "model_type": m.model_type,
                     "source_run_id": m.source_run_id or "",
                     "status_message": m.status_message,
                     "tags": [{"key": k, "value": v} for k, v in sorted(m.tags.items())]},
            "data": {"params": [{"key": k, "value": v} for k, v in sorted(m.params.items())],
                     "metrics": []}}


def artifact_uri(m: LoggedModel) -> str:
    return f"mlflow-artifacts:/{m.experiment_id}/models/{m.id}/artifacts"


def folder_entries(files: list[Any], prefix: str) -> list[dict[str, Any]]:
    """The entries of folder ``prefix`` among ``files`` (artifacts), MLflow's FileInfo."""
    out: dict[str, dict[str, Any]] = {}
    for artifact in files:
        if prefix and not artifact.path.startswith(prefix + "/"):
            continue
        rest = artifact.path[len(prefix) + 1:] if prefix else artifact.path
        head, _, tail = rest.partition("/")
        if tail:
            out.setdefault(head, {"path": head, "is_dir": True})
        else:
            out[head] = {"path": head, "is_dir": False, "file_size": artifact.size}
    return sorted(out.values(), key=lambda f: f["path"])


def scoped_model(scope: Scope, model_id: str) -> LoggedModel:
    """A logged model of the request's project; NotFound (the same words) otherwise."""
    model = scope.ws.store.get_logged_model(model_id)
    try:
        scope.experiment(model.experiment_id)
    except NotFound:
        raise NotFound(f"no logged model {model_id!r}") from None
    return model


def _experiment_id(value: Any) -> int:
    text = str(value or "")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise NotFound(f"No Experiment with id={text} exists")
    return int(text)


def _pairs(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise InvalidInput(f"{name} must be a list of {{key, value}} objects")
    return {check_key(p.get("key"), name[:-1]): str(p.get("value", "")) for p in value}


def _creator(payload: dict[str, Any]) -> str:
    given = payload.get("tags")
    tags: list[Any] = given if isinstance(given, list) else []
    return next((str(t.get("value", "")) for t in tags
                 if isinstance(t, dict) and t.get("key") == "mlflow.user"), "")


def _whole(value: Any, name: str, least: int) -> int:
    """A whole number field (MLflow sends 64-bit ones as strings)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{name} must be a whole number, got {value!r}"[:200]) from exc
    if not least <= number < 2**63:
        raise InvalidInput(f"{name} {number} is out of range")
    return number


def _offset(token: Any) -> int:
    if not token:
        return 0
    text = str(token)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput("invalid page_token")
    return int(text)


def _name_filter(text: Any) -> str | None:
    """The name a ``name = '...'`` filter asks for; None without a filter."""
    if not text:
        return None
    found = NAME_FILTER.fullmatch(str(text))
    if found is None or found.group(1) in found.group(2):
        raise InvalidInput(f"logged-model search by the filter {str(text)[:100]!r} is not "
                           "served yet", hint="filter by name only: name = 'model'")
    return found.group(2)
