"""MLflow's model registry endpoints: what ``mlflow.register_model``,
``MlflowClient.set_registered_model_alias`` and
``mlflow.<flavor>.load_model("models:/name/1")`` (or ``models:/name@alias``,
``models:/name/latest``) call.

These are MLflow-format models (a logged model, or a run's artifact folder),
kept in their own tables (``store/mlflow_registry_store.py``): keel's
registry holds keel packages, which keel serves, gates and promotes, and an
MLflow model is none of those. A registered model belongs to the project of
the token that created it; another project's answers as a missing one.
Moving or removing an alias is a promotion, so it needs an admin token, as
the UI's promote button does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from keel.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from keel.names import check_label
from keel.server import tokens
from keel.server.logged_models import scoped_model
from keel.server.scope import Scope, Scoped, project_of
from keel.tracking.keys import check_key, param_text

if TYPE_CHECKING:
    from keel.entities import MlflowModel, MlflowModelVersion
    from keel.workspace import Workspace

PROMOTER = "admin"
MAX_RESULTS = 1000
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,255}")
# The one filter served by the searches: what `models:/name/latest` and lookups send.
_NAME_FILTER = re.compile(r"""\s*name\s*=\s*(['"])(.*)\1\s*""")


def router(ws: Workspace, scoped: Scoped) -> APIRouter:
    """The registry routes (mounted at /api/2.0 and /ajax-api/2.0)."""
    api = APIRouter()
    within = Depends(scoped)

    def model(scope: Scope, name: Any) -> MlflowModel:
        found = ws.store.get_mlflow_model(_name(name))
        if found.project != scope.project:
            raise NotFound(f"Registered Model with name={name} not found")
        return found

    def version_of(scope: Scope, name: Any, version: Any) -> MlflowModelVersion:
        model(scope, name)
        return ws.store.get_mlflow_model_version(str(name), _version(version))

    def version_json(v: MlflowModelVersion) -> dict[str, Any]:
        aliases = [a for a, n in ws.store.get_mlflow_model(v.name).aliases.items()
                   if n == v.version]
        return {"name": v.name, "version": str(v.version),
                "creation_timestamp": v.created_at, "last_updated_timestamp": v.updated_at,
                "current_stage": "None", "description": v.description, "source": v.source,
                "run_id": v.run_id or "", "status": "READY", "run_link": "",
                "tags": [{"key": k, "value": val} for k, val in v.tags.items()],
                "aliases": sorted(aliases), **({"model_id": v.model_id} if v.model_id else {})}

    def model_json(m: MlflowModel) -> dict[str, Any]:
        versions = ws.store.mlflow_model_versions(m.name)
        return {"name": m.name, "creation_timestamp": m.created_at,
                "last_updated_timestamp": m.updated_at, "description": m.description,
                "tags": [{"key": k, "value": v} for k, v in m.tags.items()],
                "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())],
                "latest_versions": [version_json(versions[-1])] if versions else []}

    @api.post("/mlflow/registered-models/create")
    def create_model(payload: dict[str, Any] = Body(default_factory=dict),
                     scope: Scope = within) -> dict[str, Any]:
        name = check_label(payload.get("name"), "registered model name")
        try:
            created = ws.store.create_mlflow_model(
                name, scope.project, str(payload.get("description") or ""),
                _tags(payload.get("tags")))
        except AlreadyExists:
            model(scope, name)  # another project's name answers as taken, nothing more
            raise
        return {"registered_model": model_json(created)}

    @api.get("/mlflow/registered-models/get")
    def get_model(name: str = Query(...), scope: Scope = within) -> dict[str, Any]:
        return {"registered_model": model_json(model(scope, name))}

    @api.get("/mlflow/registered-models/search")
    def search_models(filter: str = Query(""), max_results: int = Query(100),
                      page_token: str = Query(""), scope: Scope = within) -> dict[str, Any]:
        wanted = _name_filter(filter)
        limit, offset = _page(max_results, page_token)
        if wanted is not None:
            try:
                found = [model(scope, wanted)]
            except NotFound:
                found = []
            return {"registered_models": [model_json(m) for m in found]}
        models = ws.store.list_mlflow_models(scope.project, limit + 1, offset)
        out: dict[str, Any] = {"registered_models": [model_json(m) for m in models[:limit]]}
        if len(models) > limit:
            out["next_page_token"] = str(offset + limit)
        return out

    @api.post("/mlflow/model-versions/create")
    def create_version(payload: dict[str, Any] = Body(default_factory=dict),
                       scope: Scope = within) -> dict[str, Any]:
        name = str(model(scope, payload.get("name")).name)
        source = payload.get("source")
        if not isinstance(source, str) or not source or len(source) > 4096:
            raise InvalidInput("Missing value for required parameter 'source'")
        run_id = payload.get("run_id") or None
        if run_id is not None:
            scope.run(str(run_id))
        model_id = payload.get("model_id") or None
        if model_id is not None:
            scoped_model(scope, str(model_id))
        created = ws.store.create_mlflow_model_version(
            name, source, run_id and str(run_id), model_id and str(model_id),
            str(payload.get("description") or ""), _tags(payload.get("tags")))
        return {"model_version": version_json(created)}

    @api.get("/mlflow/model-versions/get")
    def get_version(name: str = Query(...), version: str = Query(...),
                    scope: Scope = within) -> dict[str, Any]:
        return {"model_version": version_json(version_of(scope, name, version))}

    @api.get("/mlflow/model-versions/get-download-uri")
    def download_uri(name: str = Query(...), version: str = Query(...),
                     scope: Scope = within) -> dict[str, Any]:
        found = version_of(scope, name, version)
        if found.model_id:
            logged = scoped_model(scope, found.model_id)
            return {"artifact_uri": f"mlflow-artifacts:/{logged.experiment_id}/models/"
                                    f"{logged.id}/artifacts"}
        return {"artifact_uri": found.source}

    @api.get("/mlflow/model-versions/search")
    def search_versions(filter: str = Query(""), max_results: int = Query(1000),
                        scope: Scope = within) -> dict[str, Any]:
        wanted = _name_filter(filter)
        if wanted is None:
            raise InvalidInput("model version search needs a filter name = '<model>'",
                               hint="search one registered model's versions at a time")
        try:
            model(scope, wanted)
        except NotFound:
            return {"model_versions": []}
        versions = ws.store.mlflow_model_versions(wanted)
        newest = sorted(versions, key=lambda v: -v.version)[:max(1, min(max_results,
                                                                         MAX_RESULTS))]
        return {"model_versions": [version_json(v) for v in newest]}

    def latest(scope: Scope, name: Any, stages: Any) -> dict[str, Any]:
        found = model(scope, name)
        wanted = [str(s).lower() for s in stages] if isinstance(stages, list) else []
        versions = ws.store.mlflow_model_versions(found.name)
        # Stages are MLflow 1's; every version here is in stage "None".
        newest = versions[-1:] if not wanted or "none" in wanted else []
        return {"model_versions": [version_json(v) for v in newest]}

    @api.post("/mlflow/registered-models/get-latest-versions")
    def latest_post(payload: dict[str, Any] = Body(default_factory=dict),
                    scope: Scope = within) -> dict[str, Any]:
        return latest(scope, payload.get("name"), payload.get("stages"))

    @api.get("/mlflow/registered-models/get-latest-versions")
    def latest_get(name: str = Query(...), stages: list[str] = Query(default_factory=list),
                   scope: Scope = within) -> dict[str, Any]:
        return latest(scope, name, stages)

    @api.post("/mlflow/registered-models/alias")
    def set_alias(request: Request, payload: dict[str, Any] = Body(default_factory=dict),
                  scope: Scope = within) -> dict[str, Any]:
        _promoter(request)
        found = version_of(scope, payload.get("name"), payload.get("version"))
        ws.store.set_mlflow_alias(found.name, _alias(payload.get("alias")), found.version)
        return {}

    @api.delete("/mlflow/registered-models/alias")
    def delete_alias(request: Request, payload: dict[str, Any] = Body(default_factory=dict),
                     scope: Scope = within) -> dict[str, Any]:
        _promoter(request)
        found = model(scope, payload.get("name"))
        ws.store.delete_mlflow_alias(found.name, _alias(payload.get("alias")))
        return {}

    @api.get("/mlflow/registered-models/alias")
    def by_alias(name: str = Query(...), alias: str = Query(...), scope: Scope = within
                 ) -> dict[str, Any]:
        found = model(scope, name)
        if alias not in found.aliases:
            raise NotFound(f"Registered model alias {alias} not found.")
        return {"model_version": version_json(
            ws.store.get_mlflow_model_version(found.name, found.aliases[alias]))}

    return api


def _promoter(request: Request) -> None:
    token = getattr(request.state, "token", None)
    if token is not None and not tokens.allows(token.role, PROMOTER):
        raise Forbidden(f"a {token.role} token cannot move model aliases; it needs "
                        f"{PROMOTER}", hint=f"project {project_of(request)!r}")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("Missing value for required parameter 'name'")
    return value


def _version(value: Any) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidInput(f"version must be a whole number, got {str(value)[:40]!r}") from None
    if not 1 <= number < 2**31:
        raise InvalidInput(f"version {number} does not exist")
    return number


def _alias(value: Any) -> str:
    if not isinstance(value, str) or not _ALIAS.fullmatch(value) or value == "latest":
        raise InvalidInput(f"bad alias {str(value)[:60]!r}",
                           hint="a letter or '_', then letters, digits, '_' or '-' "
                                "('latest' is reserved)")
    return value


def _tags(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise InvalidInput("tags must be a list of {key, value}")
    out = {}
    for tag in raw:
        if not isinstance(tag, dict):
            raise InvalidInput("tags must be a list of {key, value}")
        key = check_key(tag.get("key"), "tag")
        out[key] = param_text(key, tag.get("value", ""))
    return out


def _name_filter(text: str) -> str | None:
    if not text:
        return None
    found = _NAME_FILTER.fullmatch(text)
    if found is None or found.group(1) in found.group(2):
        raise InvalidInput(f"the filter {text[:100]!r} is not served yet",
                           hint="filter by name only: name = 'model'")
    return found.group(2)


def _page(max_results: int, page_token: str) -> tuple[int, int]:
    limit = max(1, min(max_results, MAX_RESULTS))
    try:
        offset = int(page_token) if page_token else 0
    except ValueError:
        raise InvalidInput(f"bad page_token {page_token[:40]!r}") from None
    if offset < 0:
        raise InvalidInput(f"bad page_token {page_token[:40]!r}")
    return limit, offset
