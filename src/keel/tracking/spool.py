"""Per-run spool files: the crash-safe first stop of every logged value.

Each call appends one line with a single ``os.write`` (a few microseconds, no
fsync): once it returns the bytes are in the kernel, so they survive the
process being killed. A background writer copies new lines into the store in
batches and records how far it got in the same transaction. The file is held
under an exclusive ``flock`` for as long as its process lives, so another
process can tell an orphaned spool (lock free) from a live one.

Line format (tab-separated, keys never contain tabs or newlines)::

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

from keel.entities import MetricPoint

SUFFIX = ".spool"


@dataclass
class Batch:
    """Parsed spool lines ready for one ``write_batch``."""

    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    last_timestamp: int | None = None

    def __bool__(self) -> bool:
        return bool(self.params or self.tags or self.metrics)


def parse_lines(data: bytes) -> Batch:
    """Parse complete spool lines (the caller cuts at the last newline)."""
    batch = Batch()
    for line in data.decode("utf-8").splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "m":
            key, value, step, ts = rest.split("\t")
            point = MetricPoint(key, float(value), int(step), int(ts))
            batch.metrics.append(point)
            batch.last_timestamp = point.timestamp
        elif kind in ("p", "t"):
            key, _, value = rest.partition("\t")
            (batch.params if kind == "p" else batch.tags).append((key, json.loads(value)))
    return batch


class Spool:
    """One process's spool for one run: append lines, drain them into the store."""

    def __init__(self, path: Path, run_id: str, fd: int) -> None:
        self.path = path
        self.name = path.name
        self.run_id = run_id
        self.fd = fd
        self.offset = 0  # bytes already stored
        self.lock = threading.Lock()
        self.closed = False

    @classmethod
    def create(cls, folder: Path, run_id: str) -> Spool:
        """A new spool file, locked before it becomes visible under its final name."""
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}{SUFFIX}"
        temp = final.with_suffix(".creating")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        # Locked first, then renamed: recovery never sees it unlocked while we live.
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(temp, final)
        return cls(final, run_id, fd)

    def append(self, data: bytes) -> None:
        """Append bytes; loops because a large write may be cut short."""
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def read_new(self) -> tuple[bytes, int]:
        """Complete lines past the stored offset, and the offset after them."""
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
