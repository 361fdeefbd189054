"""The model registry: register packages as immutable versions, resolve
references to them, and keep aliases, tags and deletions audited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keel.entities import ACTIVE, DELETED, ModelVersion
from keel.errors import Conflict, InvalidInput, NotFound
from keel.models.uri import ModelRef, check_alias, check_model_name, parse_model_ref
from keel.packaging.load import read_manifest, verify_files
from keel.packaging.manifest import MANIFEST_FILE, PackageManifest
from keel.tracking.provenance import current_user
from keel.workspace import Workspace, resolve_workspace


@dataclass(frozen=True)
class ResolvedModel:
    """What a reference names: the package, and the registry version if any."""

    ref: ModelRef
    package_digest: str
    version: ModelVersion | None = None
    run_id: str | None = None

    @property
    def label(self) -> str:
        return self.version.ref if self.version else str(self.ref)


def register(source: str, name: str, description: str = "",
             tags: dict[str, str] | None = None, ws: Workspace | None = None) -> ModelVersion:
    """Register the package at ``source`` (``runs:/<id>/model`` or a package
    folder) as the next version of ``name``.

    >>> keel.models.register("runs:/3f2a.../model", "churn")   # -> churn/1
    """
    ws = resolve_workspace(ws)
    check_model_name(name)
    ref = parse_model_ref(source)
    # The lease keeps gc from removing the package's blobs before the version refers to them.
    with ws.writing():
        if ref.kind == "registry":
            resolved = resolve(source, ws)
            digest, run_id = resolved.package_digest, resolved.run_id
        elif ref.kind == "run":
            run_id = ws.store.resolve_run_id(ref.run_id)
            digest = _run_package_digest(ws, run_id, ref.artifact_path)
            source = f"runs:/{run_id}/{ref.artifact_path}"
        else:
            digest, run_id = _store_folder(ws, Path(ref.path)), None
        _check_package(ws, digest, source)
        return ws.store.create_model_version(name, digest, source, run_id, current_user(),
                                             description, tags)


def _run_package_digest(ws: Workspace, run_id: str, artifact_path: str) -> str:
    wanted = f"{artifact_path}/{MANIFEST_FILE}"
    for artifact in ws.store.list_artifacts(run_id):
        if artifact.path == wanted:
            return artifact.digest
    raise NotFound(f"run {run_id} has no model at {artifact_path!r}",
                   hint="log one with run.log_model(model, 'model', input_example=X[:5]); "
                        f"see its artifacts with `keel runs show {run_id[:12]}`")


def _store_folder(ws: Workspace, folder: Path) -> str:
    """Put a package folder's files in the blob store (verified first)."""
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    for name in manifest.files:
        ws.blobs.put_file(folder / name)
    return ws.blobs.put_file(folder / MANIFEST_FILE)


def _check_package(ws: Workspace, digest: str, source: str) -> PackageManifest:
    manifest = PackageManifest.from_yaml(ws.blobs.get_bytes(digest), where=source)
    missing = [n for n, f in manifest.files.items() if not ws.blobs.exists(f.digest)]
    if missing:
        raise NotFound(f"the package at {source} lacks file(s) {', '.join(missing)} in the "
                       "blob store", hint="pull them from the remote, or log the model again")
    return manifest


def resolve(reference: str | ModelRef, ws: Workspace | None = None) -> ResolvedModel:
    """The package a reference names; clear errors for missing or deleted versions."""
    ws = resolve_workspace(ws)
    ref = parse_model_ref(reference) if isinstance(reference, str) else reference
    if ref.kind == "run":
        run_id = ws.store.resolve_run_id(ref.run_id)
        return ResolvedModel(ref, _run_package_digest(ws, run_id, ref.artifact_path),
                             run_id=run_id)
    if ref.kind == "path":
        raise InvalidInput(f"{ref.path} is a package folder, not a stored model",
                           hint="load it with keel.packaging.load_package, or register it "
                                "first with `keel model register FOLDER --name NAME`")
    version = get_version(ref, ws)
    return ResolvedModel(ref, version.package_digest, version, version.run_id)


def get_version(ref: str | ModelRef, ws: Workspace | None = None,
                allow_deleted: bool = False) -> ModelVersion:
    """The registry version ``ref`` names (``churn/3``, ``churn@champion``, ``churn``)."""
    ws = resolve_workspace(ws)
    ref = parse_model_ref(ref, allow_path=False) if isinstance(ref, str) else ref
    if ref.kind != "registry":
        raise InvalidInput(f"{ref} is not a registered model version",
                           hint="name one as NAME/VERSION or NAME@ALIAS")
    if ref.alias:
        model = ws.store.get_registered_model(ref.name)
        if ref.alias not in model.aliases:
            known = ", ".join(f"{a} -> {v}" for a, v in model.aliases.items()) or "none"
            raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}",
                           hint=f"aliases: {known}; set one with `keel model promote "
                                f"{ref.name}/N --alias {ref.alias} --reason ...`")
        version = ws.store.get_model_version(ref.name, model.aliases[ref.alias])
        if version.lifecycle == DELETED and not allow_deleted:
            raise NotFound(f"alias {ref.alias!r} of model {ref.name!r} points at version "
                           f"{version.version}, which is deleted",
                           hint=f"promote another version to {ref.alias}, or restore it with "
                                f"`keel model restore {version.ref}`")
        return version
    if ref.version is None:
        model = ws.store.get_registered_model(ref.name)
        if model.latest_version is None:
            raise NotFound(f"model {ref.name!r} has no active versions",
                           hint=f"register one, or restore one (`keel model show {ref.name}`)")
        return ws.store.get_model_version(ref.name, model.latest_version)
    version = ws.store.get_model_version(ref.name, ref.version)
    if version.lifecycle == DELETED and not allow_deleted:
        raise NotFound(f"model version {version.ref} is deleted",
                       hint=f"restore it with `keel model restore {version.ref}`")
    return version


def delete_version(ref: str, reason: str = "", force: bool = False,
                   ws: Workspace | None = None) -> ModelVersion:
    """Soft-delete a version (its package stays for lineage). A version an alias
    names is kept unless ``force``: the alias would point at nothing."""
    ws = resolve_workspace(ws)
    version = get_version(ref, ws, allow_deleted=True)
    if version.lifecycle == DELETED:
        raise Conflict(f"{version.ref} is already deleted")
    if version.aliases and not force:
        raise Conflict(f"{version.ref} is named by alias(es) {', '.join(version.aliases)}",
                       hint="promote another version to those aliases first, or pass --force")
    ws.store.set_model_version_lifecycle(version.name, version.version, DELETED,
                                         current_user(), reason)
    return ws.store.get_model_version(version.name, version.version)


def restore_version(ref: str, ws: Workspace | None = None) -> ModelVersion:
    """Undo :func:`delete_version`."""
    ws = resolve_workspace(ws)
    version = get_version(ref, ws, allow_deleted=True)
    if version.lifecycle == ACTIVE:
        raise Conflict(f"{version.ref} is not deleted")
    ws.store.set_model_version_lifecycle(version.name, version.version, ACTIVE,
                                         current_user(), "restored")
    return ws.store.get_model_version(version.name, version.version)


def set_alias(ref: str, alias: str, reason: str, ws: Workspace | None = None) -> int | None:
    """Point ``alias`` at a version without gates (use :func:`promote` for gated moves)."""
    ws = resolve_workspace(ws)
    version = get_version(ref, ws)
    return ws.store.set_model_alias(version.name, check_alias(alias), version.version,
                                    current_user(), reason, action="alias")
