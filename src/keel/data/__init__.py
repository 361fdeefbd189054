"""Versioned datasets: snapshots in the content-addressed store, status, diff,
checkout, push/pull to remotes, profiles and quality checks.

>>> import keel.data
>>> keel.data.add("data/transactions.csv", name="transactions", message="March")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keel.data.add import AddResult, add
from keel.data.checkout import CheckoutResult, checkout
from keel.data.delete import delete, restore
from keel.data.diff import DataDiff, diff
from keel.data.manifest import Manifest, ManifestDiff, ManifestEntry
from keel.data.pull import pull
from keel.data.push import TransferResult, push
from keel.data.ref import DatasetRef, check_name, parse_ref
from keel.data.status import FolderStatus, status
from keel.data.version import get_version, load_json_blob, load_manifest
from keel.entities import DatasetVersion
from keel.errors import ChecksFailed
from keel.workspace import Workspace, resolve_workspace


def get(ref: str, ws: Workspace | None = None) -> DatasetVersion:
    """The version ``ref`` names (``name``, ``name@2``, ``name@latest``)."""
    return get_version(resolve_workspace(ws), ref)


def log(name: str, ws: Workspace | None = None) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first."""
    return resolve_workspace(ws).store.list_dataset_versions(check_name(name))


def profiles(ref: str, ws: Workspace | None = None) -> dict[str, Any]:
    """``path -> TableProfile`` for every CSV/Parquet file of a version."""
    from keel.data.profile import TableProfile

    ws = resolve_workspace(ws)
    stored = load_json_blob(ws, get_version(ws, ref).profiles_digest)
    return {path: TableProfile.from_dict(p) for path, p in stored.items()}


def local_path(ref: str, ws: Workspace | None = None) -> Path:
    """A read-only local copy of a version's files (see ``run.use_dataset``)."""
    from keel.data.cache import cached_copy

    ws = resolve_workspace(ws)
    return cached_copy(ws, get_version(ws, ref))


__all__ = [
    "AddResult", "CheckoutResult", "ChecksFailed", "DataDiff", "DatasetRef", "DatasetVersion",
    "FolderStatus", "Manifest", "ManifestDiff", "ManifestEntry", "TransferResult", "add",
    "checkout", "delete", "diff", "get", "load_manifest", "local_path", "log", "parse_ref",
    "profiles", "pull", "push", "restore", "status",
]
