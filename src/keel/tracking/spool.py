"""Per-run spool files: the crash-safe first stop of every logged value.

Each call appends one line with a single ``os.write`` (a few microseconds):
once it returns the bytes are in the kernel, so they survive the process
being killed. With ``KEEL_DURABILITY=fsync`` the spool is also fsynced at
every flush (the background writer's 50 ms batches, ``run.flush()`` and the
end of a run), so a power loss costs at most the last batch. A background
writer copies new lines into the store in batches and records how far it got
in the same transaction. The file is held under an exclusive ``flock`` for as
long as its process lives, so another process can tell an orphaned spool
(lock free) from a live one.

The first line names the store the spool belongs to: ``.keel/spool`` is
shared by every ``KEEL_STORE`` a workspace is used with, and only that
store's recovery may replay or remove it.

Line format (tab-separated, keys never contain tabs or newlines)::

    s <store id>                                 (first line)
    m <key> <float repr> <step> <timestamp ms>
    p <key> <json string>
    t <key> <json string>
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from keel.durability import FSYNC, fsync_dir, fsync_fd
from keel.entities import MetricPoint

SUFFIX = ".spool"
INT64 = (-(2**63), 2**63 - 1)  # steps and timestamps go into BIGINT columns


class BadLine(ValueError):
    """A spool line that cannot be stored (malformed, or a value out of range)."""


@dataclass
class Batch:
    """Parsed spool lines ready for one ``write_batch``."""

    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    last_timestamp: int | None = None

    def __bool__(self) -> bool:
        return bool(self.params or self.tags or self.metrics)

    def __len__(self) -> int:
        return len(self.params) + len(self.tags) + len(self.metrics)


class Line(NamedTuple):
    """One spool line, parsed or not, and the offset just past it."""

    raw: bytes
    end: int           # offset in the spool just past this line
    kind: str          # m, p, t, s; "" when the line is bad
    item: object       # a MetricPoint, a (key, value) pair, or the reason a line is bad


def parse_lines(data: bytes) -> Batch:
    """Parse complete spool lines (the caller cuts at the last newline).

    The fast path of every flush; raises :class:`BadLine` on the first line
    that cannot be stored, and the caller then parses line by line
    (:func:`split_lines`) to set the bad ones aside.
    """
    batch = Batch()
    low, high = INT64
    try:
        for line in data.decode("utf-8").splitlines():
            kind, _, rest = line.partition("\t")
            if kind == "m":
                key, value, step, ts = rest.split("\t")
                point = MetricPoint(key, float(value), int(step), int(ts))
                if not (low <= point.step <= high and low <= point.timestamp <= high):
                    raise BadLine(f"step or timestamp of {key!r} is out of the 64-bit range")
                batch.metrics.append(point)
                batch.last_timestamp = point.timestamp
            elif kind in ("p", "t"):
                key, _, value = rest.partition("\t")
                text = json.loads(value)
                if not key or not isinstance(text, str):
                    raise BadLine(f"malformed {kind} line")
                (batch.params if kind == "p" else batch.tags).append((key, text))
            elif kind != "s":
                raise BadLine(f"unknown line kind {kind!r}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadLine(str(exc)) from exc
    return batch


def split_lines(data: bytes, start: int) -> list[Line]:
    """Every line of ``data`` (read at offset ``start``), parsed one by one; a
    line that cannot be parsed is kept with kind "" and the reason."""
    lines = []
    offset = start
    for raw in data.split(b"\n")[:-1]:
        offset += len(raw) + 1
        try:
            batch = parse_lines(raw + b"\n")
        except BadLine as exc:
            lines.append(Line(raw, offset, "", str(exc)))
            continue
        if batch.metrics:
            lines.append(Line(raw, offset, "m", batch.metrics[0]))
        elif batch.params:
            lines.append(Line(raw, offset, "p", batch.params[0]))
        elif batch.tags:
            lines.append(Line(raw, offset, "t", batch.tags[0]))
        else:
            lines.append(Line(raw, offset, "s", None))
    return lines


def batch_of(lines: list[Line]) -> Batch:
    """The good lines of ``lines`` as one batch."""
    batch = Batch()
    for line in lines:
        if line.kind == "m":
            batch.metrics.append(line.item)  # type: ignore[arg-type]
        elif line.kind == "p":
            batch.params.append(line.item)  # type: ignore[arg-type]
        elif line.kind == "t":
            batch.tags.append(line.item)  # type: ignore[arg-type]
    return batch


class Spool:
    """One process's spool for one run: append lines, drain them into the store."""

    def __init__(self, path: Path, run_id: str, fd: int, durability: str = "process") -> None:
        self.path = path
        self.name = path.name
        self.run_id = run_id
        self.fd = fd
        self.durability = durability
        self.offset = 0  # bytes already stored
        self.lock = threading.Lock()
        self.closed = False

    @classmethod
    def create(cls, folder: Path, run_id: str, store_id: str,
               durability: str = "process") -> Spool:
        """A new spool file for a run of store ``store_id``, locked before it
        becomes visible under its final name."""
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}{SUFFIX}"
        temp = final.with_suffix(".creating")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        # Locked first, then renamed: recovery never sees it unlocked while we live.
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"s\t{store_id}\n".encode())
        if durability == FSYNC:
            fsync_fd(fd)
        os.replace(temp, final)
        if durability == FSYNC:
            fsync_dir(folder)
        return cls(final, run_id, fd, durability)

    def append(self, data: bytes) -> None:
        """Append bytes; loops because a large write may be cut short."""
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def read_new(self) -> tuple[bytes, int]:
        """Complete lines past the stored offset, and the offset after them.

        In ``fsync`` durability the file is fsynced first, so every line
        returned here survives a power loss from now on.
        """
        if self.durability == FSYNC:
            fsync_fd(self.fd)
        size = os.fstat(self.fd).st_size
        if size <= self.offset:
            return b"", self.offset
        data = os.pread(self.fd, size - self.offset, self.offset)
        end = data.rfind(b"\n") + 1
        return data[:end], self.offset + end

    def close(self, remove: bool = True) -> None:
        """Release the lock; delete the file once everything in it is stored."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if remove:
                self.path.unlink(missing_ok=True)
            os.close(self.fd)


def run_id_of(spool_name: str) -> str:
    """The run a spool file belongs to, from its name."""
    return spool_name.split(".", 1)[0]


def store_id_of(fd: int) -> str | None:
    """The store a spool belongs to (its first line), None for a spool written
    before spools named their store."""
    head = os.pread(fd, 128, 0)
    line, _, _ = head.partition(b"\n")
    kind, _, value = line.decode("utf-8", "replace").partition("\t")
    return value.strip() if kind == "s" and value.strip() else None


def try_claim(path: Path) -> int | None:
    """Open and lock an orphaned spool; None while its process still runs."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not path.exists():  # finished and removed by its owner meanwhile
        os.close(fd)
        return None
    return fd


def metric_line(key: str, value: float, step: int, timestamp: int) -> str:
    return f"m\t{key}\t{value!r}\t{step}\t{timestamp}\n"


def text_line(kind: str, key: str, value: str) -> str:
    return f"{kind}\t{key}\t{json.dumps(value)}\n"
