"""Versioned datasets: snapshots in the content-addressed store, status, diff,
checkout, push/pull to remotes, profiles and quality checks.

>>> import keel.data
>>> keel.data.add("data/transactions.csv", name="transactions", message="March")

Every name below is loaded on first use (PEP 562), so that ``keel data status``
loads the status code only, not add's, checkout's or the remotes' (~10 ms of
a 0.2 s command). Several functions share their name with the module that
defines them (``keel.data.checkout`` is a function, defined in the module
``keel/data/checkout.py``): importing such a module must not replace the
function on this package, as Python's import system would by default (see
``_Package``).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from keel.data.add import AddResult, add
    from keel.data.checkout import CheckoutResult, checkout
    from keel.data.delete import delete, restore
    from keel.data.diff import DataDiff, diff
    from keel.data.manifest import Manifest, ManifestDiff, ManifestEntry
    from keel.data.pull import pull
    from keel.data.push import TransferResult, push
    from keel.data.ref import DatasetRef, parse_ref
    from keel.data.status import FolderStatus, status
    from keel.data.version import load_manifest
    from keel.entities import DatasetVersion
    from keel.errors import ChecksFailed
    from keel.workspace import Workspace

# name -> the module that defines it
_LAZY = {
    "AddResult": "keel.data.add", "add": "keel.data.add",
    "CheckoutResult": "keel.data.checkout", "checkout": "keel.data.checkout",
    "delete": "keel.data.delete", "restore": "keel.data.delete",
    "DataDiff": "keel.data.diff", "diff": "keel.data.diff",
    "Manifest": "keel.data.manifest", "ManifestDiff": "keel.data.manifest",
    "ManifestEntry": "keel.data.manifest",
    "pull": "keel.data.pull",
    "TransferResult": "keel.data.push", "push": "keel.data.push",
    "DatasetRef": "keel.data.ref", "check_name": "keel.data.ref", "parse_ref": "keel.data.ref",
    "FolderStatus": "keel.data.status", "status": "keel.data.status",
    "get_version": "keel.data.version", "load_json_blob": "keel.data.version",
    "load_manifest": "keel.data.version",
    "DatasetVersion": "keel.entities",
    "ChecksFailed": "keel.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module 'keel.data' has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package's module type: importing ``keel.data.add`` (the module) leaves
    ``keel.data.add`` (the function) as it is. Other submodules (``keel.data.index``)
    are attributes as usual."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def get(ref: str, ws: Workspace | None = None) -> DatasetVersion:
    """The version ``ref`` names (``name``, ``name@2``, ``name@latest``)."""
    from keel.data.version import get_version
    from keel.workspace import resolve_workspace

    return get_version(resolve_workspace(ws), ref)


def log(name: str, ws: Workspace | None = None) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first."""
    from keel.data.ref import check_name
    from keel.workspace import resolve_workspace

    return resolve_workspace(ws).store.list_dataset_versions(check_name(name))


def profiles(ref: str, ws: Workspace | None = None) -> dict[str, Any]:
    """``path -> TableProfile`` for every CSV/Parquet file of a version."""
    from keel.data.profile import TableProfile
    from keel.data.version import get_version, load_json_blob
    from keel.workspace import resolve_workspace

    ws = resolve_workspace(ws)
    stored = load_json_blob(ws, get_version(ws, ref).profiles_digest)
    return {path: TableProfile.from_dict(p) for path, p in stored.items()}


def local_path(ref: str, ws: Workspace | None = None) -> Path:
    """A read-only local copy of a version's files (see ``run.use_dataset``)."""
    from keel.data.cache import cached_copy
    from keel.data.version import get_version
    from keel.workspace import resolve_workspace

    ws = resolve_workspace(ws)
    return cached_copy(ws, get_version(ws, ref))


__all__ = [
    "AddResult", "CheckoutResult", "ChecksFailed", "DataDiff", "DatasetRef", "DatasetVersion",
    "FolderStatus", "Manifest", "ManifestDiff", "ManifestEntry", "TransferResult", "add",
    "checkout", "delete", "diff", "get", "load_manifest", "local_path", "log", "parse_ref",
    "profiles", "pull", "push", "restore", "status",
]
