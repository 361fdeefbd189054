"""``keel data checkout``: bring a version's files back, whole or not at all, never
clobbering local edits.

The steps, each finished before the next starts:

1. the destination's shape is checked (a folder version needs a folder, a
   file under a file cannot be made): a clear :class:`Conflict` otherwise;
2. a plan (``keel.data.plan``) from the files on disk and the version last
   written there: local edits refuse the checkout unless ``force``;
3. every blob to be written is found and verified (``keel.data.source``):
   a corrupt or missing one stops the checkout naming the dataset file (a
   pack checked as a whole is checked on a thread while the files are
   written, and the checkout waits for it before it keeps anything);
4. the files are written through a staging (``keel.data.staging``) that
   publishes them all, or rolls back and leaves the destination as it was.
   From PARALLEL_FROM files on, a forked process writes half of them where
   it can (``keel.data.writer_process``), else writer threads do.

Measured on 20,000 x 4 KiB files (2-core VM, tmpfs, so without the disk):
~1.3 s before this design, of which ~0.9 s went to reading each packed
blob through the store (a failed ``open`` of a loose path, then an
``open`` and ``pread`` of its pack), ~0.15 s to a temporary name per file
(uuid4, rename) and ~0.1 s to per-file progress updates. Now: ~0.3 s.
On the VM's ext4, the CLI checkout went from 0.70-0.85 s (two writer
threads) to 0.53-0.64 s (a writer process) in alternating runs.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from keel.data import writer_process
from keel.data.destination import Destination
from keel.data.link import Link, check_link, clone, linkable, reflink_works
from keel.data.manifest import Manifest, ManifestEntry
from keel.data.plan import CheckoutPlan, plan_checkout
from keel.data.progress import NoProgress, Progress
from keel.data.source import Sources, blob_identity
from keel.data.staging import Staging
from keel.data.status import working_manifest
from keel.data.version import get_version, load_manifest, source_path
from keel.data.worktree import held_at, remember
from keel.entities import DatasetVersion
from keel.errors import Conflict, InvalidInput, KeelError, NotFound
from keel.workspace import Workspace, resolve_workspace

PROGRESS_EVERY = 256  # files per progress update: Rich's advance costs ~5 us a call
# Writer threads where no writer process is forked (see keel.data.writer_process):
# each on its own folders, overlapping the reads of a store that is not a local
# folder, or big copies (both wait without the GIL).
WRITERS = min(4, max(2, os.cpu_count() or 1))
PARALLEL_FROM = 512  # files; fewer are written by the calling thread alone
# copy_file_range cannot copy between these files: copy through a buffer instead
NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}


@dataclass(frozen=True)
class CheckoutResult:
    """Where a version was written and what changed on disk."""

    version: DatasetVersion
    dest: Path
    written: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    link: str = "copy"  # how files over 1 MiB were placed: copy, reflink, hardlink, symlink


def checkout(ref: str, dest: str | Path | None = None, force: bool = False,
             progress: Progress | None = None, ws: Workspace | None = None,
             link: str | None = None) -> CheckoutResult:
    """Write version ``ref`` to ``dest`` (default: where it was added from).

    ``link`` chooses how files come from the blob store (see ``keel.data.link``):
    ``copy``, ``reflink``, ``hardlink`` or ``symlink``; by default a reflink
    where the filesystem supports one, else a copy. Hard- and symlinked files
    are the store's read-only blobs: replace them with a copy before editing.

    A file at ``dest`` that differs both from the target version and from the
    version last checked out (or added) there is a local edit: checkout refuses
    before touching anything, unless ``force``. So does a corrupt or missing
    blob (naming the file, ``name@N:path``). Nothing is written through a
    symlink under ``dest`` (:class:`UnsafePath` names it); a symlink where a
    file goes is replaced by the file.
    """
    ws = resolve_workspace(ws)
    wanted_link = check_link(link)
    progress = progress or NoProgress()
    version = get_version(ws, ref)
    target = load_manifest(ws, version)
    root = _root(Path(dest) if dest is not None else source_path(ws, version), target,
                 version)
    on_disk = _on_disk(ws, root, target)
    baseline = _baseline(ws, version, root, target) if on_disk else None
    plan = plan_checkout(target, on_disk, baseline, force, version.ref, str(root))
    base_dir = root.parent if target.single else root
    with Destination(base_dir) as into, Sources(ws.blobs, version.ref) as sources:
        kind = _placement(ws, wanted_link)
        relink = _relinks(ws, plan, root, target.single, kind)
        plan.write += relink
        sources.verify(plan.write, {e.digest for e in plan.write if linkable(e.mode)}
                       if kind in ("hardlink", "symlink") else set())
        kind = _reflink_if_possible(ws, wanted_link, kind, sources, plan, base_dir)
        _write(into, sources, plan, root, target.single, kind, set(on_disk), progress,
               version)
    remember(ws, root, version.ref, version.manifest_digest)
    return CheckoutResult(version, root, tuple(e.path for e in plan.write), tuple(plan.stale),
                          len(target.entries) - len(plan.write), kind)


def _root(root: Path, target: Manifest, version: DatasetVersion) -> Path:
    """Where the version goes, after checking that its shape fits there."""
    if target.single and root.is_dir():
        root = root / target.entries[0].path  # into the folder, as cp does
        if root.is_dir():
            raise Conflict(f"{root} is a folder, but {version.ref} is a single file",
                           hint="name another destination, or move the folder away")
    if not target.single and root.exists() and not root.is_dir():
        raise Conflict(f"{root} is a file, but {version.ref} is a folder of "
                       f"{len(target.entries):,} file(s)",
                       hint=f"name a folder to check it out into (it is created if "
                            f"missing): keel data checkout {version.ref} DEST")
    above = root.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise Conflict(f"{above} is a file, so {root} cannot be created under it",
                       hint="name a destination inside a folder, or move the file away")
    return root


def _on_disk(ws: Workspace, root: Path, target: Manifest) -> dict[str, str]:
    """path -> digest of the files at ``root`` now. A single file is listed under the
    version's own name, whatever the destination calls it, so that it is compared."""
    if not root.exists():
        return {}
    found = {e.path: e.digest for e in working_manifest(ws, root).entries}
    if target.single and found:
        return {target.entries[0].path: next(iter(found.values()))}
    return found


def _baseline(ws: Workspace, version: DatasetVersion, root: Path, target: Manifest
              ) -> Manifest | None:
    """The version last written to ``root`` (checked out or added there); for the
    add location without a record, the latest version."""
    ref = held_at(ws, root)
    try:
        if ref:
            found = load_manifest(ws, get_version(ws, ref))
        elif version.source and root.absolute() == source_path(ws, version).absolute():
            found = load_manifest(ws, ws.reader.get_dataset_version(version.dataset))
        else:
            return None
    except (NotFound, InvalidInput):
        return None
    if target.single and found.single:  # compared under the target's name (see _on_disk)
        return Manifest((found.entries[0]._replace(path=target.entries[0].path),), True)
    return found


def _placement(ws: Workspace, wanted: Link | None) -> Link:
    """The link kind for loose blobs; the default is settled in
    ``_reflink_if_possible``, once it is known whether any loose blob is written."""
    if wanted in ("hardlink", "symlink", "reflink") and not ws.blobs.local:
        raise InvalidInput(f"--link {wanted} needs a blob store in a local folder, and "
                           f"this workspace's is {ws.blobs.url}",
                           hint="use --link copy")
    return wanted or "copy"


def _reflink_if_possible(ws: Workspace, wanted: Link | None, kind: Link, sources: Sources,
                         plan: CheckoutPlan, base_dir: Path) -> Link:
    """Reflink when asked or by default, if there is a loose blob to write and the
    filesystems allow it (probed once per pair of devices)."""
    if wanted not in (None, "reflink") or not ws.blobs.local:
        return kind
    if not any(sources.loose(e.digest) for e in plan.write):
        return "reflink" if wanted else "copy"  # packed blobs are copied either way
    near = base_dir
    while not near.is_dir():
        near = near.parent
    if reflink_works(ws.blobs.root, str(near)):
        return "reflink"
    if wanted == "reflink":
        raise InvalidInput(f"the filesystem of {base_dir} cannot make reflinks from the "
                           f"blob store ({ws.blobs.root}); nothing was written",
                           hint="reflinks need btrfs, xfs or a similar copy-on-write "
                                "filesystem holding both; use --link copy (the default "
                                "here), or hardlink/symlink for read-only files")
    return "copy"


def _relinks(ws: Workspace, plan: CheckoutPlan, root: Path, single: bool, kind: Link
             ) -> list[ManifestEntry]:
    """Files that already hold their bytes but are not placed as asked: links to
    the store when copies are wanted, copies when links are wanted."""
    if not plan.unchanged or not ws.blobs.local:
        return []
    redo = []
    for entry in plan.unchanged:
        path = root if single else root / entry.path
        try:
            st = os.lstat(path)
        except OSError:
            continue
        is_symlink = stat.S_ISLNK(st.st_mode)
        is_blob = st.st_nlink > 1 and \
            blob_identity(ws.blobs.path_of(entry.digest)) == (st.st_dev, st.st_ino)
        wants_link = kind in ("hardlink", "symlink") and linkable(entry.mode) \
            and ws.blobs.is_loose(entry.digest)
        if wants_link:
            if (kind == "symlink") != is_symlink or (kind == "hardlink") != is_blob:
                redo.append(entry)
        elif is_symlink or is_blob:
            redo.append(entry)
    again = {e.path for e in redo}
    plan.unchanged = [e for e in plan.unchanged if e.path not in again]
    return redo


def _write(into: Destination, sources: Sources, plan: CheckoutPlan, root: Path,
           single: bool, kind: Link, present: set[str], progress: Progress,
           version: DatasetVersion) -> None:
    """Stage every change, then publish them all; on any error, roll back."""
    progress.start(f"checking out {version.ref}", sum(e.size for e in plan.write))
    try:
        with Staging(into) as staging:
            for rel in plan.aside:
                staging.set_aside(rel)
            for rel in plan.stale:
                staging.remove(rel)
            if len(plan.write) < PARALLEL_FROM:
                _write_group(staging, into, sources, plan.write, root, single, kind, present,
                             progress, lambda: False)
            elif (shares := _forked_shares(sources, plan.write, single, present)) is not None:
                _write_forked(staging, into, sources, shares, root, kind, present, progress)
            else:
                _write_in_threads(staging, into, sources, plan.write, root, single, kind,
                                  present, progress)
            sources.confirm()  # a blob found damaged meanwhile rolls everything back
    except FileExistsError as exc:
        raise Conflict(f"something is in the way at {exc.filename or root} (a folder where "
                       f"{version.ref} has a file?); nothing was changed",
                       hint="move it away, then check out again") from exc
    except IsADirectoryError as exc:
        raise Conflict(f"{exc.filename or root} is a folder where {version.ref} has a file; "
                       "nothing was changed", hint="move it away, then check out again"
                       ) from exc
    except (NotADirectoryError, PermissionError) as exc:
        raise Conflict(f"cannot write {version.ref} to {root}: {exc.strerror} "
                       f"({exc.filename}); nothing was changed",
                       hint="check the destination's permissions and that no file stands "
                            "where the version has a folder") from exc
    except OSError as exc:
        raise KeelError(f"writing {version.ref} to {root} failed: {exc.strerror or exc}; "
                        "nothing was changed",
                        hint="free some space or fix the destination, then try again"
                        ) from exc
    finally:
        progress.done()


def _forked_shares(sources: Sources, entries: list[ManifestEntry], single: bool,
                   present: set[str]) -> tuple[list[ManifestEntry], list[ManifestEntry]] | None:
    """(the parent's share, a writer process's share) when a process may write the
    second half: fresh files from a local store (see ``keel.data.writer_process``)."""
    if single or not sources.blobs.local or not writer_process.available():
        return None
    halves = _by_folder(entries, 2)
    if len(halves) != 2:
        return None
    head, tail = halves
    if any(e.path in present or not sources.local(e.digest) for e in tail):
        return None
    return head, tail


def _write_forked(staging: Staging, into: Destination, sources: Sources,
                  shares: tuple[list[ManifestEntry], list[ManifestEntry]], root: Path,
                  kind: Link, present: set[str], progress: Progress) -> None:
    """Write the first share here while a forked process writes the second."""
    head, tail = shares
    for folder in dict.fromkeys(e.path.rpartition("/")[0] for e in tail):
        into.open_folder(folder)  # made here, so that a rollback removes them

    def child_share(channel: writer_process.Channel) -> None:
        with Destination(into.root) as mine:
            own = Staging(mine)  # only counts: the parent commits or rolls back
            try:
                _write_group(own, mine, sources, tail, root, False, kind, set(),
                             _ChildProgress(channel), channel.stopped)
            finally:
                channel.record_created(own.created_count)

    try:
        child = writer_process.WriterProcess(child_share)
    except OSError:  # no process to be had (too many, no memory): all of it here
        _write_group(staging, into, sources, head + tail, root, False, kind, present,
                     progress, lambda: False)
        return
    both = _BothProgress(progress, child.channel)
    try:
        with child:
            _write_group(staging, into, sources, head, root, False, kind, present, both,
                         lambda: child.channel.failed)
    finally:
        staging.adopt_files([e.path for e in (tail if child.created < 0
                                              else tail[:child.created])])
    progress.advance(child.written - both.seen)
    if child.error is not None:
        raise child.error


class _ChildProgress:
    """The writer process's progress, published on the shared page."""

    def __init__(self, channel: writer_process.Channel) -> None:
        self.channel = channel
        self.total = 0

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        self.total += amount
        self.channel.progress(self.total)

    def done(self) -> None:
        pass


class _BothProgress:
    """The parent's progress, with what the writer process wrote meanwhile."""

    def __init__(self, progress: Progress, channel: writer_process.Channel) -> None:
        self.progress = progress
        self.channel = channel
        self.seen = 0  # of the child's bytes, already reported

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        written = self.channel.written
        self.progress.advance(amount + written - self.seen)
        self.seen = written

    def done(self) -> None:
        pass


def _write_in_threads(staging: Staging, into: Destination, sources: Sources,
                      entries: list[ManifestEntry], root: Path, single: bool, kind: Link,
                      present: set[str], progress: Progress) -> None:
    """Writer threads, each on its own folders: where no process can be forked, and
    for stores that are not local folders (whose reads wait on the network)."""
    groups = _by_folder(entries, WRITERS)
    into.open_folder("")  # the root, made once before the threads start
    stop = threading.Event()

    def work(group: list[ManifestEntry]) -> None:
        with Destination(into.root) as mine:
            try:
                _write_group(staging, mine, sources, group, root, single, kind, present,
                             progress, stop.is_set)
            except BaseException:
                stop.set()  # the other writers stop too: all is rolled back
                raise
            finally:
                staging.adopt(mine)

    with ThreadPoolExecutor(len(groups)) as pool:
        for done in [pool.submit(work, group) for group in groups]:
            done.result()


def _by_folder(entries: list[ManifestEntry], count: int) -> list[list[ManifestEntry]]:
    """``entries`` (sorted by path) cut into up to ``count`` runs of about equal
    length, each cut at a change of folder: two writers never create files in
    the same folder, whose lock would serialise them in the kernel."""
    if count <= 1 or not entries:
        return [entries]
    size = -(-len(entries) // count)
    groups: list[list[ManifestEntry]] = [[]]
    for entry in entries:
        last = groups[-1]
        if len(last) >= size and last[-1].path.rpartition("/")[0] != \
                entry.path.rpartition("/")[0]:
            groups.append([])
        groups[-1].append(entry)
    return groups


def _write_group(staging: Staging, into: Destination, sources: Sources,
                 group: list[ManifestEntry], root: Path, single: bool, kind: Link,
                 present: set[str], progress: Progress, stop: Callable[[], bool]) -> None:
    """One writer's share of the files (see ``_by_folder``); ``stop()`` is checked
    every PROGRESS_EVERY files: another writer failed, everything is rolled back."""
    done = 0
    for count, entry in enumerate(group, 1):
        rel = root.name if single else entry.path
        _place(staging, into, sources, entry, rel, kind, entry.path in present)
        done += entry.size
        if count % PROGRESS_EVERY == 0:
            progress.advance(done)
            done = 0
            if stop():
                return
    progress.advance(done)


def _place(staging: Staging, into: Destination, sources: Sources, entry: ManifestEntry,
           rel: str, kind: Link, replace: bool) -> None:
    """Stage one file from its verified source, placed as ``kind`` asks."""
    writable = entry.mode | 0o200  # a copy is theirs to edit
    packed = sources.packed(entry.digest)
    if packed is not None:
        staging.write(rel, packed, writable, replace, into)
        return
    blob = sources.loose(entry.digest)
    if blob is None:  # a store that is not a local folder
        staging.write(rel, sources.fetch(entry.digest, entry.path), writable, replace, into)
    elif kind in ("hardlink", "symlink") and linkable(entry.mode):
        staging.link(rel, os.path.abspath(blob), kind == "hardlink", replace, into)
    else:
        staging.write(rel, partial(_copy_blob, blob, kind == "reflink"), writable, replace,
                      into)


def _copy_blob(blob: str, reflink: bool, fd: int) -> None:
    """Copy a loose blob into the new file ``fd``: a reflink if asked (and possible),
    else in the kernel (``copy_file_range``), else through a buffer."""
    with open(blob, "rb") as src:
        if reflink and clone(src.fileno(), fd):
            return
        remaining = os.fstat(src.fileno()).st_size
        try:
            while remaining > 0:
                sent = os.copy_file_range(src.fileno(), fd, remaining)
                if sent == 0:
                    break
                remaining -= sent
            return
        except (AttributeError, OSError) as exc:  # not Linux, or not between these two
            if isinstance(exc, OSError) and exc.errno not in NO_KERNEL_COPY:
                raise
        src.seek(0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        while chunk := src.read(1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
