"""Removing what a blob store holds but nothing needs: the mechanics of ``keel gc``.

The caller says which digests are live; this module never decides that. It
plans first (so ``--dry-run`` shows exactly what would go, and how many
bytes), then carries the plan out:

- a loose blob that is not live goes;
- a pack whose blobs are all dead goes (pack and index);
- a pack that is mostly dead (less than ``KEEP_PACK`` of its bytes live) is
  rewritten: its live blobs go into a new pack, published first, then the
  old one is removed;
- temporary files that writers left behind (a ``data add`` killed while
  copying) go.

Anything younger than the grace period stays, whatever the live set says: a
writer on another machine (a shared object store, where the workspace's write
lease cannot reach) may have stored it and not yet recorded it. A pack whose
contents cannot be read (a legacy pack with a damaged index) is never
touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path

from keel.blobs.digest import is_digest
from keel.blobs.pack import TEMP_SUFFIX, is_framed, read_records, sum_path
from keel.blobs.pack_index import INDEX_MAGIC, Located, decode_index, decode_legacy
from keel.blobs.store import BlobStore
from keel.durability import fsync_dir

KEEP_PACK = 0.5  # rewrite a pack once less than half of its bytes are live


@dataclass(frozen=True)
class Doomed:
    """One thing a sweep removes (or, for a repack, shrinks)."""

    kind: str        # "blob", "pack", "repack" or "temporary"
    path: str
    bytes: int       # bytes freed
    blobs: int = 0   # dead blobs it held
    keep: tuple[str, ...] = ()  # repack: the live digests that move to a new pack


@dataclass
class SweepPlan:
    """What a sweep of one blob store would remove."""

    store: str
    items: list[Doomed] = field(default_factory=list)
    kept_young: int = 0       # unreferenced but younger than the grace period
    unreadable_packs: int = 0  # left alone: their contents cannot be known

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)

    def count(self, kind: str) -> int:
        return sum(1 for item in self.items if item.kind == kind)

    @property
    def dead_blobs(self) -> int:
        return sum(item.blobs for item in self.items)


def plan(store: BlobStore, live: Container[str], grace_s: float,
         now: float | None = None) -> SweepPlan:
    """What to remove from ``store`` given the ``live`` digests (see the module docstring)."""
    cutoff = (time.time() if now is None else now) - grace_s
    result = SweepPlan(store.url)
    if store.local:
        _plan_local(Path(store.root), live, cutoff, result)
    else:
        _plan_remote(store, live, cutoff, result)
    return result


def _plan_local(root: Path, live: Container[str], cutoff: float, result: SweepPlan) -> None:
    if not root.is_dir():
        return
    for entry in os.scandir(root):
        if entry.name.startswith(".tmp-") and entry.is_file(follow_symlinks=False):
            _temporary(entry, cutoff, result)
        elif len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
            for blob in os.scandir(entry.path):
                if ".tmp-" in blob.name:
                    _temporary(blob, cutoff, result)
                    continue
                digest = entry.name + blob.name
                if not is_digest(digest) or digest in live:
                    continue
                st = blob.stat(follow_symlinks=False)
                if st.st_mtime > cutoff:
                    result.kept_young += 1
                else:
                    result.items.append(Doomed("blob", blob.path, st.st_size, 1))
    packs = root / "packs"
    if packs.is_dir():
        _plan_packs(packs, live, cutoff, result)


def _temporary(entry: os.DirEntry[str], cutoff: float, result: SweepPlan) -> None:
    st = entry.stat(follow_symlinks=False)
    if st.st_mtime <= cutoff:
        result.items.append(Doomed("temporary", entry.path, st.st_size))


def _plan_packs(folder: Path, live: Container[str], cutoff: float, result: SweepPlan) -> None:
    names = set(os.listdir(folder))
    for file in sorted(names):
        path = folder / file
        if file.endswith(TEMP_SUFFIX) or ".tmp-" in file:
            st = path.stat()
            if st.st_mtime <= cutoff:
                result.items.append(Doomed("temporary", str(path), st.st_size))
            continue
        if not file.endswith(".pack"):
            continue
        st = path.stat()
        if st.st_mtime > cutoff:
            continue  # a pack is as young as its youngest blob: all of it waits
        located = pack_contents(folder, file[:-len(".pack")], f"{file[:-5]}.idx" in names)
        if located is None:
            result.unreadable_packs += 1
            continue
        keep = tuple(d for d in located if d in live)
        dead = len(located) - len(keep)
        if not dead:
            continue
        live_bytes = sum(located[d][1] for d in keep)
        data_bytes = sum(size for _offset, size in located.values())
        if not keep:
            result.items.append(Doomed("pack", str(path), st.st_size, dead))
        elif live_bytes < KEEP_PACK * data_bytes:
            result.items.append(Doomed("repack", str(path), data_bytes - live_bytes, dead,
                                       keep))


def pack_contents(folder: Path, name: str, has_index: bool) -> Located | None:
    """Where each blob of pack ``name`` is: from its index, else from its framing;
    None if neither can be read (nothing about such a pack can be known)."""
    if has_index:
        try:
            data = (folder / f"{name}.idx").read_bytes()
            return decode_index(data) if data.startswith(INDEX_MAGIC) else decode_legacy(data)
        except (OSError, ValueError):
            pass
    pack = folder / f"{name}.pack"
    if not is_framed(pack):
        return None
    located, damaged = read_records(pack)
    return None if damaged else located


def _plan_remote(store: BlobStore, live: Container[str], cutoff: float,
                 result: SweepPlan) -> None:
    try:
        found = store.fs.find(store.root, detail=True)
    except FileNotFoundError:
        return
    for path, info in found.items():
        parts = path.rstrip("/").split("/")
        if len(parts) < 2 or len(parts[-2]) != 2:
            continue
        digest = parts[-2] + parts[-1]
        modified = _modified(info)
        if ".tmp-" in parts[-1]:
            if modified is not None and modified <= cutoff:
                result.items.append(Doomed("temporary", path, int(info.get("size") or 0)))
            continue
        if not is_digest(digest) or digest in live:
            continue
        if modified is None or modified > cutoff:
            result.kept_young += 1  # no time known: never assume it is old
        else:
            result.items.append(Doomed("blob", path, int(info.get("size") or 0), 1))


def _modified(info: dict[str, object]) -> float | None:
    """A remote object's modification time in seconds, from fsspec's details."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        timestamp = getattr(value, "timestamp", None)
        if callable(timestamp):
            return float(timestamp())
    return None


def execute(store: BlobStore, sweep: SweepPlan) -> int:
    """Carry out ``sweep``; return the bytes freed. Packs are rewritten before the
    old ones are removed, so every live blob is on disk throughout."""
    freed = 0
    for item in sweep.items:
        if item.kind == "repack":
            _repack(store, item.path, item.keep)
        elif item.kind == "pack":
            _remove(_index_of(item.path), store)
            _remove(_sum_of(item.path), store)
            _remove(item.path, store)
        else:
            _remove(item.path, store)
        freed += item.bytes
    if store.local and store.packs is not None:
        store.packs.forget_missing()
    return freed


def _repack(store: BlobStore, old: str, keep: tuple[str, ...]) -> None:
    with store.pack_writer() as pack:  # published (pack, then index) when the block ends
        for digest in keep:
            pack.add(store.get_bytes(digest), digest)  # verified: damage is not carried over
    _remove(_index_of(old), store)
    _remove(_sum_of(old), store)
    _remove(old, store)


def _index_of(pack: str) -> str:
    return pack[:-len(".pack")] + ".idx"


def _sum_of(pack: str) -> str:
    return str(sum_path(Path(pack)))


def _remove(path: str, store: BlobStore) -> None:
    if store.local:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        fsync_dir(os.path.dirname(path))
    else:
        store.fs.rm(path)
