"""Deleting a dataset version (soft, restorable) and restoring it.

A deleted version disappears from ``log``, ``list`` and ``NAME@latest``; its
files stay in the blob store until ``keel gc`` purges versions deleted longer
ago than the retention. A version that a live run read or wrote is part of
that run's lineage: deleting it needs ``force``.
"""

from __future__ import annotations

from keel.data.ref import parse_ref
from keel.entities import ACTIVE, DELETED, DatasetVersion
from keel.errors import Conflict, InvalidInput
from keel.workspace import Workspace, resolve_workspace


def delete(ref: str, force: bool = False, ws: Workspace | None = None) -> DatasetVersion:
    """Soft-delete ``name@N`` (restore with :func:`restore`; ``keel gc`` purges it later).

    >>> keel.data.delete("transactions@1")
    """
    ws = resolve_workspace(ws)
    parsed = parse_ref(ref)
    if parsed.version is None:
        raise InvalidInput(f"name the version to delete: {parsed.name}@N",
                           hint=f"see them with `keel data log {parsed.name}`")
    version = ws.store.get_dataset_version(parsed.name, parsed.version)
    users = [run_id for run_id, _role in ws.store.runs_of_dataset_version(version.id)
             if ws.store.get_run(run_id).lifecycle == ACTIVE]
    if users and not force:
        raise Conflict(f"{version.ref} is in the lineage of {len(users)} run(s) "
                       f"({', '.join(u[:12] for u in users[:3])})",
                       hint="delete those runs first, or pass --force (their lineage will "
                            "then name a version that gc may purge)")
    return ws.store.set_dataset_version_lifecycle(parsed.name, parsed.version, DELETED)


def restore(ref: str, ws: Workspace | None = None) -> DatasetVersion:
    """Undo :func:`delete` (before ``keel gc`` has purged the version)."""
    ws = resolve_workspace(ws)
    parsed = parse_ref(ref)
    if parsed.version is None:
        raise InvalidInput(f"name the version to restore: {parsed.name}@N")
    return ws.store.set_dataset_version_lifecycle(parsed.name, parsed.version, ACTIVE)
