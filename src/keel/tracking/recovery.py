"""Replay spools left behind by killed processes; mark their runs KILLED."""

from __future__ import annotations

from dataclasses import dataclass

from keel.errors import NotFound
from keel.store.sql_store import RunEnd, now_ms
from keel.tracking.spool import SUFFIX, Spool, run_id_of, try_claim
from keel.tracking.writer import drain
from keel.workspace import Workspace


@dataclass(frozen=True)
class Recovered:
    """One orphaned spool brought into the store."""

    run_id: str
    records: int
    marked_killed: bool


def recover(workspace: Workspace) -> list[Recovered]:
    """Store what orphaned spools hold; safe to run while other processes log.

    A spool is orphaned when no process holds its lock, i.e. its writer died
    (SIGKILL, power loss after the kernel kept the bytes, OOM killer).
    """
    found = []
    for path in sorted(workspace.spool_dir.glob(f"*{SUFFIX}")):
        fd = try_claim(path)
        if fd is None:
            continue
        spool = Spool(path, run_id_of(path.name), fd)
        try:
            found.append(_replay(workspace, spool))
        except NotFound:
            # The run itself never reached the store: nothing to attach points to.
            spool.close(remove=True)
        except BaseException:
            spool.close(remove=False)
            raise
    return found


def _replay(workspace: Workspace, spool: Spool) -> Recovered:
    store = workspace.store
    run = store.get_run(spool.run_id)
    spool.offset = store.spool_offset(spool.name)
    killed = run.status == "RUNNING"
    end = RunEnd("KILLED", now_ms(), f"the process logging this run (pid "
                 f"{_pid_of(spool.name)}) died without ending it; keel recovered its "
                 "spooled data") if killed else None
    records = drain(spool, store, end)  # the rest of the data and KILLED: one transaction
    spool.close(remove=True)
    return Recovered(run.id, records, killed)


def _pid_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else "?"


__all__ = ["Recovered", "recover"]
