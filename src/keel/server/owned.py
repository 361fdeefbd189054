"""Datasets, registered models and deployments as one project's token sees them
through ``/api/v1`` and the UI: its project's only.

A name belongs to the project whose token created it (``project_names``);
names made by the CLI or the Python API, which work in the default project,
have no claim and are the default project's. Another project's dataset or
model answers exactly as a missing one (the store's own NotFound), and its
versions, runs and history with it. Names stay unique across projects, as
experiment names do: creating one another project holds is refused as taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keel.entities import DEFAULT_PROJECT
from keel.errors import AlreadyExists, NotFound
from keel.server.scope import Scope
from keel.store import wire
from keel.store.deployment_store import missing_deployment
from keel.store.model_store import missing_model
from keel.store.records import missing_dataset

DATASET, MODEL, DEPLOYMENT = "dataset", "model", "deployment"
# Feedback stays the default project's: it is keyed by request ids, not names.
DEPLOYMENT_METHODS = tuple(m for m in wire.DEPLOYMENTS if "feedback" not in m)
KIND = {**dict.fromkeys(wire.DATASETS, DATASET), **dict.fromkeys(wire.REGISTRY, MODEL),
        **dict.fromkeys(DEPLOYMENT_METHODS, DEPLOYMENT)}
MISSING: dict[str, Callable[[str], NotFound]] = {
    DATASET: missing_dataset, MODEL: missing_model, DEPLOYMENT: missing_deployment}
CREATES = {"add_dataset_version": DATASET, "create_model_version": MODEL,
           "create_deployment": DEPLOYMENT}
RunCheck = Callable[[Scope, str], None]


def owned_call(store: Any, scope: Scope, check_run: RunCheck, method: str,
               kwargs: dict[str, Any]) -> Any:
    """Call a dataset or registry method of the store within ``scope``'s project."""
    kind = KIND[method]
    if kwargs.get("run_id") is not None:
        check_run(scope, kwargs["run_id"])
    name = kwargs.get("name", kwargs.get("deployment"))
    if method in CREATES:
        _claim(store, scope, kind, str(name))
    elif name is not None:
        _check(store, scope, kind, name)
    elif "version_id" in kwargs:
        name = store.version_dataset(kwargs["version_id"])
        if name is None or _owner(store, kind, name) != scope.project:
            raise NotFound("no such dataset version")
    result = getattr(store, method)(**kwargs)
    return _visible(store, scope, check_run, method, result)


def check_name(store: Any, scope: Scope, kind: str, name: str) -> None:
    """NotFound, as for a missing one, unless ``name`` is ``scope``'s project's."""
    _check(store, scope, kind, name)


def visible(store: Any, scope: Scope, kind: str, items: list[Any]) -> list[Any]:
    """The datasets' versions or registered models of ``items`` that ``scope``'s
    project owns."""
    claims = store.claimed_names(kind)
    return [item for item in items
            if claims.get(_name_of(item), DEFAULT_PROJECT) == scope.project]


def _name_of(item: Any) -> str:
    found = item[0] if isinstance(item, tuple) else item
    if isinstance(found, str):  # an inference segment's (deployment, digest, rows)
        return found
    return str(getattr(found, "dataset", None) or found.name)


def _owner(store: Any, kind: str, name: str) -> str:
    return str(store.name_project(kind, name))


def _check(store: Any, scope: Scope, kind: str, name: str) -> None:
    if _owner(store, kind, name) != scope.project:
        raise MISSING[kind](name)


def _exists(store: Any, kind: str, name: str) -> bool:
    try:
        if kind == DATASET:
            store.list_dataset_versions(name, include_deleted=True)
        elif kind == MODEL:
            store.get_registered_model(name)
        else:
            store.get_deployment(name)
    except NotFound:
        return False
    return True


def _claim(store: Any, scope: Scope, kind: str, name: str) -> None:
    """Let ``scope`` add to ``name``: its own, or new (then claimed for it)."""
    owner = _owner(store, kind, name)
    if owner == scope.project:
        return
    taken = AlreadyExists(f"the {kind} name {name!r} is taken by another project",
                          hint="choose another name")
    if owner != DEFAULT_PROJECT or _exists(store, kind, name):
        raise taken
    if store.claim_name(kind, name, scope.project) != scope.project:
        raise taken  # another project claimed it a moment earlier


def _visible(store: Any, scope: Scope, check_run: RunCheck, method: str, result: Any
             ) -> Any:
    """Lists that span names or runs, cut to what the project may see."""
    if method in ("list_datasets", "list_registered_models", "datasets_of_run",
                  "model_versions_of_run", "list_deployments", "inference_segments"):
        return visible(store, scope, KIND[method], result)
    if method == "runs_of_dataset_version":
        return [pair for pair in result if _run_visible(scope, check_run, pair[0])]
    return result


def _run_visible(scope: Scope, check_run: RunCheck, run_id: str) -> bool:
    try:
        check_run(scope, run_id)
    except NotFound:
        return False
    return True
