"""What a checkout must do in a destination, decided before anything is touched.

From the version's manifest, the files on disk and the version last written
there (the baseline), a :class:`CheckoutPlan` lists the files to write, the
stale files to delete, and the entries in the way of the version's shape
(a file where it has a folder, a folder where it has a file) to set aside.
Whatever would lose bytes keel did not put there refuses the whole checkout
(:class:`Conflict`, naming the files), unless ``force`` discards local edits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from keel.data.manifest import Manifest, ManifestEntry
from keel.errors import Conflict


@dataclass
class CheckoutPlan:
    """The changes a checkout makes (paths relative to the destination)."""

    write: list[ManifestEntry]  # files to create or replace
    stale: list[str]  # tracked files the version does not have: deleted
    aside: list[str] = field(default_factory=list)  # entries in the way: deleted on commit
    unchanged: list[ManifestEntry] = field(default_factory=list)  # already hold their bytes


def plan_checkout(target: Manifest, on_disk: dict[str, str], baseline: Manifest | None,
                  force: bool, ref: str, where: str) -> CheckoutPlan:
    """The plan for writing ``target`` (version ``ref``) where ``on_disk`` (path ->
    digest) is now; ``baseline`` is the version last written there, if known."""
    wanted = target.by_path
    tracked = baseline.by_path if baseline else {}
    edits = [p for p, digest in on_disk.items() if _is_local_edit(p, digest, wanted, tracked)]
    if edits and not force:
        shown = ", ".join(edits[:10]) + (" ..." if len(edits) > 10 else "")
        raise Conflict(f"{len(edits)} file(s) in {where} have local changes that checkout of "
                       f"{ref} would overwrite: {shown}",
                       hint="commit them as a new version with `keel data add`, move them "
                            "away, or pass --force to discard them")
    plan = CheckoutPlan([], [p for p in tracked if p not in wanted and p in on_disk])
    for entry in target.entries:
        (plan.unchanged if on_disk.get(entry.path) == entry.digest else plan.write).append(entry)
    if on_disk:
        _clear_the_way(plan, target, on_disk, tracked, ref, where)
    return plan


def _is_local_edit(path: str, digest: str, wanted: dict[str, ManifestEntry],
                   tracked: dict[str, ManifestEntry]) -> bool:
    """True if checkout would overwrite or delete bytes keel did not put there."""
    if path in wanted and digest == wanted[path].digest:
        return False  # already what the target wants
    if path in tracked and digest == tracked[path].digest:
        return False  # unmodified since keel wrote it: safe to replace
    return path in wanted or path in tracked  # untracked extra files are left alone


def _clear_the_way(plan: CheckoutPlan, target: Manifest, on_disk: dict[str, str],
                   tracked: dict[str, ManifestEntry], ref: str, where: str) -> None:
    """Files on disk where the version has a folder, and folders on disk where it
    has a file: set aside when keel wrote everything in them, else refused."""
    needed = _folders(p.path for p in target.entries)
    present = _folders(on_disk)
    for path in sorted(on_disk.keys() & needed):  # a file where a folder must be
        if path not in tracked:
            raise _in_the_way(f"{path} is a file", f"{ref} has a folder there", where)
        plan.aside.append(path)
    for entry in target.entries:  # a folder where a file must be
        if entry.path not in present:
            continue
        inside = [p for p in on_disk if p.startswith(entry.path + "/")]
        untracked = [p for p in inside if p not in tracked]
        if untracked:
            raise _in_the_way(f"{entry.path} is a folder holding files keel does not track "
                              f"({', '.join(untracked[:3])})", f"{ref} has a file there",
                              where)
        plan.aside.append(entry.path)
    gone = set(plan.aside)
    plan.stale = [p for p in plan.stale if p not in gone and not _under(p, gone)]


def _in_the_way(what: str, why: str, where: str) -> Conflict:
    return Conflict(f"{what} in {where}, but {why}; nothing was changed",
                    hint="move it away (or delete it), then check out again")


def _folders(paths: Iterable[str]) -> set[str]:
    """Every folder the '/'-separated ``paths`` are in, at any depth."""
    folders: set[str] = set()
    for parent in {p.rpartition("/")[0] for p in paths}:
        while parent and parent not in folders:
            folders.add(parent)
            parent = parent.rpartition("/")[0]
    return folders


def _under(path: str, folders: set[str]) -> bool:
    parent = path.rpartition("/")[0]
    while parent:
        if parent in folders:
            return True
        parent = parent.rpartition("/")[0]
    return False
