"""``keel data diff``: files, and for tables the statistics, between two versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.data.manifest import ManifestDiff
from keel.data.version import get_version, load_json_blob, load_manifest
from keel.entities import DatasetVersion
from keel.workspace import Workspace, resolve_workspace


@dataclass(frozen=True)
class DataDiff:
    """How ``new`` differs from ``old``: files, and per table a profile comparison."""

    old: DatasetVersion
    new: DatasetVersion
    files: ManifestDiff
    tables: dict[str, Any] = field(default_factory=dict)  # path -> ProfileDiff

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old.ref, "new": self.new.ref, "files": self.files.to_dict(),
                "tables": {path: d.to_dict() for path, d in self.tables.items()}}


def diff(old_ref: str, new_ref: str, ws: Workspace | None = None) -> DataDiff:
    """Compare two versions (of one dataset or of two)."""
    ws = resolve_workspace(ws)
    from keel.data.profile import TableProfile
    from keel.data.profile_diff import compare_profiles

    old, new = get_version(ws, old_ref), get_version(ws, new_ref)
    files = load_manifest(ws, old).diff(load_manifest(ws, new))
    old_profiles = load_json_blob(ws, old.profiles_digest)
    new_profiles = load_json_blob(ws, new.profiles_digest)
    pairs = [(p, p) for p in sorted(old_profiles.keys() & new_profiles.keys())]
    if not pairs and len(old_profiles) == 1 and len(new_profiles) == 1:
        pairs = [(next(iter(old_profiles)), next(iter(new_profiles)))]  # a renamed table
    tables = {}
    for old_path, new_path in pairs:
        if old_profiles[old_path] == new_profiles[new_path]:
            continue
        tables[new_path] = compare_profiles(TableProfile.from_dict(old_profiles[old_path]),
                                            TableProfile.from_dict(new_profiles[new_path]))
    return DataDiff(old, new, files, tables)
