"""``keel lineage``: from a model version (or run, or dataset version) back to
the run, its params and metrics, the data it read, the code commit and the
environment, in one structure."""

from __future__ import annotations

from typing import Any

from keel.data.ref import parse_ref
from keel.entities import Run
from keel.errors import InvalidInput, NotFound
from keel.models.registry import resolve
from keel.models.uri import parse_model_ref
from keel.packaging.manifest import PackageManifest
from keel.workspace import Workspace, resolve_workspace


def lineage(reference: str, ws: Workspace | None = None) -> dict[str, Any]:
    """Everything ``reference`` came from. ``reference`` is a model URI
    (``models:/churn@champion``, ``churn/3``, ``runs:/<id>/model``), a run id
    (or prefix), or a dataset version (``transactions@2``)."""
    ws = resolve_workspace(ws)
    kind, value = _classify(reference, ws)
    if kind == "dataset":
        return _dataset_lineage(value, ws)
    if kind == "run":
        return {"subject": reference, "kind": "run", **_run_lineage(value, ws)}
    resolved = resolve(value, ws)
    manifest = PackageManifest.from_yaml(ws.blobs.get_bytes(resolved.package_digest))
    out: dict[str, Any] = {"subject": reference, "kind": "model", "model": {
        "uri": str(resolved.ref), "package_digest": resolved.package_digest,
        "flavor": manifest.flavor, "task": manifest.task, "signature": manifest.signature,
        "requirements": manifest.requirements, "format_version": manifest.format_version}}
    if resolved.version is not None:
        v = resolved.version
        out["model"].update({"name": v.name, "version": v.version, "aliases": list(v.aliases),
                             "registered_by": v.user, "registered_at": v.created_at,
                             "source": v.source, "lifecycle": v.lifecycle})
        automated = _automation(v.ref, ws)
        if automated:
            out["automation"] = automated
    run_id = resolved.run_id or manifest.lineage.get("run_id")
    if run_id:
        try:
            out.update(_run_lineage(run_id, ws))
        except NotFound:  # the package came from another workspace: its manifest remembers
            out["run"] = {"id": run_id, "note": "not in this workspace"}
            out["datasets"] = manifest.lineage.get("datasets", [])
    return out


def _classify(reference: str, ws: Workspace) -> tuple[str, str]:
    if reference.startswith(("models:/", "runs:/")) or "/" in reference:
        return "model", reference
    if "@" in reference:
        name = reference.partition("@")[0]
        try:  # a registered model with that alias wins over a dataset of the same name
            ws.store.get_registered_model(name)
            parse_model_ref(reference)
            return "model", reference
        except (NotFound, InvalidInput):
            parse_ref(reference)
            return "dataset", reference
    try:
        return "run", ws.store.resolve_run_id(reference)
    except (NotFound, InvalidInput):
        pass
    try:
        ws.store.get_registered_model(reference)
        return "model", reference
    except NotFound:
        raise NotFound(f"{reference!r} is not a model, run or dataset version keel knows",
                       hint="pass models:/NAME@ALIAS, NAME/VERSION, a run id or "
                            "NAME@VERSION of a dataset") from None


def _run_lineage(run_id: str, ws: Workspace) -> dict[str, Any]:
    from keel.tracking.lineage import datasets_in_lineage

    run = ws.store.get_run(run_id)
    links = datasets_in_lineage(ws.store, run.id)  # its own, or its nearest ancestors'
    artifacts = {a.path: a.digest for a in ws.store.list_artifacts(run.id)}
    return {
        "run": _run_summary(run),
        "parent_run": run.parent_id,
        "datasets": [{"ref": link.version.ref, "role": link.role,
                      "manifest_digest": link.version.manifest_digest,
                      "files": link.version.files, "bytes": link.version.bytes,
                      "via_parent": link.via is not None, "via_run": link.via}
                     for link in links],
        "code": {"commit": run.tags.get("keel.git.commit"),
                 "branch": run.tags.get("keel.git.branch"),
                 "remote": run.tags.get("keel.git.remote"),
                 "dirty": run.tags.get("keel.git.dirty") == "true",
                 "diff_artifact": "keel/git.diff" if "keel/git.diff" in artifacts else None,
                 "entrypoint": run.tags.get("keel.source.entrypoint")},
        "environment": {"python": run.tags.get("keel.python"),
                        "platform": run.tags.get("keel.platform"),
                        "host": run.tags.get("keel.host"),
                        "packages_artifact": "keel/requirements.txt"
                        if "keel/requirements.txt" in artifacts else None},
        "registered_as": [v.ref for v in ws.store.model_versions_of_run(run.id)],
    }


def _run_summary(run: Run) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "experiment": run.experiment,
            "status": run.status, "user": run.user, "start_time": run.start_time,
            "end_time": run.end_time, "params": dict(run.params),
            "metrics": dict(run.metrics)}


def _dataset_lineage(reference: str, ws: Workspace) -> dict[str, Any]:
    from keel.data.version import get_version

    version = get_version(ws, reference)
    runs = []
    for run_id, role in ws.store.runs_of_dataset_version(version.id):
        run = ws.store.get_run(run_id)
        models = [v.ref for v in ws.store.model_versions_of_run(run_id)]
        for child in ws.store.child_runs(run_id):  # children of a sweep that read it
            models += [v.ref for v in ws.store.model_versions_of_run(child)]
        runs.append({"id": run.id, "name": run.name, "role": role, "status": run.status,
                     "models": models})
    return {"subject": reference, "kind": "dataset",
            "dataset": version.to_dict(), "runs": runs}


def _automation(version_ref: str, ws: Workspace) -> list[dict[str, Any]]:
    """The continuous-training chain that made ``version_ref``, trigger first
    (empty when a person registered it)."""
    actions = ws.store.list_automation_actions(limit=10_000)
    # The latest chain that produced (or reused) the version is what made it current.
    chain = next((a.chain for a in reversed(actions) if a.action == "retrain"
                  and a.links.get("model_version") == version_ref), None)
    if chain is None:
        return []
    return [{"id": a.id, "deployment": a.deployment, "action": a.action,
             "outcome": a.outcome, "time": a.time, "reason": a.reason, "links": a.links}
            for a in actions if a.chain == chain]
