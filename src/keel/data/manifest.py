"""A dataset version's manifest: relative path -> digest, size and mode."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple


class ManifestEntry(NamedTuple):
    """One file of a dataset version (a tuple: manifests hold tens of thousands)."""

    path: str  # relative, '/'-separated
    digest: str
    size: int
    mode: int  # permission bits, so executables stay executable on checkout


@dataclass(frozen=True)
class ManifestDiff:
    """Files added, removed and modified between two manifests (sorted paths)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    modified: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed),
                "modified": list(self.modified)}


@dataclass(frozen=True)
class Manifest:
    """The files of a dataset version, sorted by path.

    ``single`` marks a version made from one file (not a folder), so checkout
    writes a file rather than a folder.
    """

    entries: tuple[ManifestEntry, ...]
    single: bool = False

    @property
    def by_path(self) -> dict[str, ManifestEntry]:
        return {e.path: e for e in self.entries}

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def to_bytes(self) -> bytes:
        """Canonical JSON: the same files always give the same bytes (and digest)."""
        body = {"format": 1, "single": self.single,
                "files": [[e.path, e.digest, e.size, e.mode] for e in self.entries]}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        return cls(tuple(ManifestEntry._make(f) for f in body["files"]), bool(body.get("single")))

    @classmethod
    def build(cls, entries: list[ManifestEntry], single: bool = False) -> Manifest:
        return cls(tuple(sorted(entries, key=lambda e: e.path)), single)

    def diff(self, newer: Manifest) -> ManifestDiff:
        """What changed from this manifest to ``newer``."""
        old, new = self.by_path, newer.by_path
        return ManifestDiff(
            added=tuple(sorted(new.keys() - old.keys())),
            removed=tuple(sorted(old.keys() - new.keys())),
            modified=tuple(sorted(p for p in old.keys() & new.keys()
                                  if old[p].digest != new[p].digest)))
