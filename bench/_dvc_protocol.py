"""The measurement protocol bench/data.py runs on keel and on DVC, step for step.

Standard library only: it is imported both by keel's interpreter (keel's side,
and the CLI runs of both tools) and by bench/.venv-dvc's interpreter
(``_dvc_side.py``), so that the two tools are measured by the very same code.

A tool is described by callables: ``add(path, name)`` snapshots a path,
``status()`` returns True when the small-file dataset differs from what was
added, and ``checkout()`` brings the added small-file dataset back into its
working folder. Each status result is checked against what the step did (a
touch is not a change, a rewrite is), and each checkout's result against the
files added, so a tool that got faster by being wrong would stop the
benchmark instead of winning it.

Checkout is timed after the working copy was removed from the working folder
by a rename into ``TRASH`` beside it, not by deleting it: on the benchmark VM
(ext4 without a journal) the kernel skips inodes freed in the last 60 s
(360 s while their inode-table block is unwritten) when it allocates new
ones, scanning past each of them from the start of the block group for
every new file (``recently_deleted`` in ``fs/ext4/ialloc.c``, most of the
kernel's time in a profile of file creation here). Creating 20,000 files
right after deleting 20,000 took 6-7.5 s instead of 0.2-0.6 s, for any
tool. That would time the filesystem, not the tools. The trash is deleted at
the very end; files deleted on the machine shortly before a run (another
run's clean-up, a test suite) slow it the same way.

Each checkout starts after an untimed ``sync``: otherwise the write-back of
the 80 MB the previous repetition left in the page cache runs during the
next one and slows its file creation (0.7 s, 1.1 s, 2.4 s for three
back-to-back keel checkouts on the VM). The CLI checkouts of the two tools
take turns (``alternating_checkouts``), so that a disk that slows down over
the minutes weighs on both alike.

``Floor`` times what any checkout must do at least: create the same files
from bytes already in memory with bare ``os.open``/``os.write``/``os.close``
from one Python process. It moves with the VM's disk from minute to minute
(0.2-3.5 s for 20,000 files in the same hour), so it takes its turn between
the tools' CLI checkouts and the report prints it beside them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

SMALL, BIG = "data", "big.bin"  # relative to the tool's working folder
PER_FOLDER = 200  # files per sub-folder of SMALL: 20,000 files = 100 folders x 200
FILE_BYTES = 4096
VICTIM = Path(SMALL, "d000", "f000.bin")  # the one file touched / modified

Status = Callable[[], bool]
TRASH = "trash"  # beside the tool's folder: where removed working copies go (see above)


def fewer(reps: int) -> int:
    """Repetitions of the touched/modified statuses: each needs a fresh change first."""
    return max(1, (reps + 1) // 2)


def make_small_files(root: Path, count: int) -> None:
    """``count`` files of 4 KiB of random bytes under ``root/d000 .. dNNN``."""
    for n in range(count):
        folder = root / f"d{n // PER_FOLDER:03d}"
        if n % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        (folder / f"f{n % PER_FOLDER:03d}.bin").write_bytes(os.urandom(FILE_BYTES))


def timed(step: Callable[[], object]) -> float:
    """Wall time of one call, in seconds."""
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def _median_status(status: Status, reps: int, expect_change: bool, label: str,
                   before: Callable[[int], None] = lambda _rep: None) -> float:
    """Median time of ``reps`` status calls, ``before(rep)`` run untimed ahead of each."""
    times = []
    for rep in range(reps):
        before(rep)
        started = time.perf_counter()
        changed = status()
        times.append(time.perf_counter() - started)
        if changed != expect_change:
            raise RuntimeError(f"{label}: status said changed={changed}, "
                               f"expected {expect_change}")
    return statistics.median(times)


def _snapshot(root: Path) -> dict[str, int]:
    """Relative path -> size of every file under ``root``."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _median_checkout(work: Path, checkout: Callable[[], object], reps: int,
                     expected: dict[str, int], victim: bytes) -> float:
    """Median time of ``reps`` checkouts, each after the working copy was moved away
    (untimed); each result is checked against the files that were added."""
    return alternating_checkouts({"tool": (work, checkout)}, reps, expected, victim)["tool"]


def alternating_checkouts(tools: dict[str, tuple[Path, Callable[[], object]]], reps: int,
                          expected: dict[str, int], victim: bytes) -> dict[str, float]:
    """Median checkout time of each tool (its folder and checkout), the tools taking
    turns repetition by repetition so that a disk slowing down or speeding up
    over the minutes (see the module docstring) weighs on all of them alike.
    ``expected``/``victim``: the added files' sizes and VICTIM's added bytes."""
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    for rep in range(reps):
        for tool, (work, checkout) in tools.items():
            trash = work.parent / f"{work.name}-{TRASH}"
            trash.mkdir(exist_ok=True)
            os.rename(work / SMALL, trash / f"{SMALL}-{rep}")
            os.sync()  # the last repetition's files go to disk now, not during this one
            times[tool].append(timed(checkout))
            if _snapshot(work / SMALL) != expected or (work / VICTIM).read_bytes() != victim:
                raise RuntimeError(f"{tool}: checkout did not restore the files that were "
                                   "added")
    return {tool: statistics.median(spent) for tool, spent in times.items()}


def expected_files(source: Path) -> tuple[dict[str, int], bytes]:
    """What a checkout must restore: SMALL's file sizes under ``source`` and VICTIM's bytes
    (taken before any status workload rewrites it)."""
    return _snapshot(source / SMALL), (source / VICTIM).read_bytes()


class Floor:
    """What any checkout must do at least: create SMALL's files (read from ``source``
    once, untimed) with bare ``os.open``/``os.write``/``os.close`` from one Python
    process, relative to open folders as keel's checkout does. Called with a
    folder, it writes them under ``folder / SMALL``; it takes its turn in
    ``alternating_checkouts`` like a tool, so that it is measured in the same
    state of the disk as the tools' checkouts."""

    def __init__(self, source: Path) -> None:
        root = source / SMALL
        self.files = [(p.relative_to(root).as_posix(), p.read_bytes())
                      for p in sorted(root.rglob("*")) if p.is_file()]

    def __call__(self, work: Path) -> None:
        root = work / SMALL
        root.mkdir(parents=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        folders: dict[str, int] = {}  # created and opened: files are made relative to them
        try:
            for rel, data in self.files:
                folder, _, name = rel.rpartition("/")
                if folder not in folders:
                    (root / folder).mkdir(parents=True, exist_ok=True)
                    folders[folder] = os.open(root / folder, os.O_RDONLY)
                fd = os.open(name, flags, 0o644, dir_fd=folders[folder])
                os.write(fd, data)
                os.close(fd)
        finally:
            for fd in folders.values():
                os.close(fd)


def run(work: Path, add: Callable[[str, str], object], status: Status, reps: int,
        reopen_status: Status | None = None, checkout: Callable[[], object] | None = None,
        add_big: bool = True) -> dict[str, float]:
    """Time the workloads in ``work`` (the tool's folder, already the cwd).

    Order: add the small files, the status workloads on them, checkout of the
    small files, then add the big file, so that every status and checkout
    covers exactly the small-file dataset for both tools (DVC's plain
    ``status`` and ``checkout`` cover every tracked output).

    Without ``checkout`` (the caller times checkouts with ``alternating_checkouts``)
    and without ``add_big`` (the caller adds BIG after that), only the small-file
    add and the statuses are timed.

    Each touched/modified repetition touches or rewrites the file anew:
    both tools remember the new digest, so repeating status after a single
    change would time the no-change case from the second call on.
    """
    expected, original = expected_files(work)
    result = {"add_small": timed(lambda: add(SMALL, "d"))}
    result["status_clean"] = _median_status(status, reps, False, "status, nothing changed")
    if reopen_status is not None:
        result["status_clean_reopen"] = _median_status(reopen_status, reps, False,
                                                       "status with reopen, nothing changed")
    victim = work / VICTIM
    first_mtime = victim.stat().st_mtime_ns

    def touch(rep: int) -> None:
        stamp = first_mtime + (rep + 1) * 1_000_000_000  # a new mtime, same bytes
        os.utime(victim, ns=(stamp, stamp))

    def rewrite(_rep: int) -> None:
        victim.write_bytes(os.urandom(FILE_BYTES))  # same size, new bytes and mtime

    result["status_touched"] = _median_status(status, fewer(reps), False,
                                              "status after a touch", touch)
    result["status_modified"] = _median_status(status, fewer(reps), True,
                                               "status after a rewrite", rewrite)
    if checkout is not None:
        result["checkout"] = _median_checkout(work, checkout, fewer(reps), expected, original)
    if add_big:
        result["add_big"] = timed(lambda: add(BIG, "big"))
    return result
