"""Replay spools left behind by killed processes; mark their runs KILLED.

A spool names the store it belongs to (its first line). Recovery replays or
removes only spools of the store it was opened with: a workspace used with
``KEEL_STORE=postgresql://...`` and then with its default SQLite store
shares one ``.keel/spool`` folder, and the SQLite store must not touch what
belongs to PostgreSQL. Nothing is ever deleted unless it is stored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from keel.clock import now_ms
from keel.entities import RunEnd
from keel.errors import NotFound
from keel.tracking.quarantine import FOLDER, set_aside
from keel.tracking.spool import SUFFIX, Spool, run_id_of, store_id_of, try_claim
from keel.tracking.writer import drain
from keel.workspace import Workspace

log = logging.getLogger("keel.tracking")


@dataclass(frozen=True)
class Recovered:
    """One orphaned spool brought into the store (or set aside, if its run is gone)."""

    run_id: str
    records: int
    marked_killed: bool
    set_aside: bool = False


def recover(workspace: Workspace) -> list[Recovered]:
    """Store what orphaned spools of this workspace's store hold; safe to run
    while other processes log.

    A spool is orphaned when no process holds its lock, i.e. its writer died
    (SIGKILL, power loss after the kernel kept the bytes, OOM killer).
    """
    found = []
    store_id = workspace.store.store_id
    for path in sorted(workspace.spool_dir.glob(f"*{SUFFIX}")):
        fd = try_claim(path)
        if fd is None:
            continue
        owner = store_id_of(fd)
        if owner is not None and owner != store_id:
            os.close(fd)  # another store's spool: only that store may replay it
            continue
        spool = Spool(path, run_id_of(path.name), fd)
        try:
            item = _replay(workspace, spool, owned=owner is not None)
        except BaseException:
            spool.close(remove=False)
            raise
        if item is not None:
            found.append(item)
    return found


def _replay(workspace: Workspace, spool: Spool, owned: bool) -> Recovered | None:
    store = workspace.store
    try:
        run = store.get_run(spool.run_id)
    except NotFound:
        if not owned:
            # An old spool that does not say which store it belongs to: it may be
            # another store's. Leave it, untouched.
            spool.close(remove=False)
            return None
        # Our own store has no such run (purged since): keep the bytes aside.
        _set_aside_whole(spool)
        return Recovered(spool.run_id, 0, False, set_aside=True)
    spool.offset = store.spool_offset(spool.name)
    killed = run.status == "RUNNING"
    end = RunEnd("KILLED", _last_time(spool) or now_ms(),
                 f"the process logging this run (pid {_pid_of(spool.name)}) died without "
                 "ending it; keel recovered its spooled data") if killed else None
    records = drain(spool, store, end)  # the rest of the data and KILLED: one transaction
    spool.close(remove=True)
    return Recovered(run.id, records, killed)


def _last_time(spool: Spool) -> int | None:
    """When the dead process last logged something: the time of its spool's last
    metric line, else the spool file's last change. A KILLED run ends then, not
    at the (possibly much later) moment recovery ran."""
    size = os.fstat(spool.fd).st_size
    tail = os.pread(spool.fd, min(size, 4096), max(0, size - 4096))
    for line in reversed(tail.split(b"\n")):
        parts = line.split(b"\t")
        if len(parts) == 5 and parts[0] == b"m":
            try:
                return int(parts[4])
            except ValueError:
                break
    return int(os.fstat(spool.fd).st_mtime * 1000) if size else None


def _set_aside_whole(spool: Spool) -> None:
    target = spool.path.parent / FOLDER / spool.name
    target.parent.mkdir(parents=True, exist_ok=True)
    set_aside(spool.path, spool.run_id, b"",
              f"run {spool.run_id} is not in this store; the whole spool was moved to {target}")
    os.replace(spool.path, target)
    spool.close(remove=False)


def _pid_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else "?"


__all__ = ["Recovered", "recover"]
