"""The dataset versions behind a run: its own, or its nearest ancestors'.

A run that records no dataset itself (a sweep's trial, a pipeline step fed
by another step) got its data from where it runs: its parent run (the sweep,
the step that ran the sweep) and the steps whose outputs it read (the
``keel.upstream`` tag of a pipeline step). Those are walked breadth-first
and the nearest level that read or wrote data answers: a trial of a sweep
inside a pipeline reaches the ``prepare`` step's dataset in three hops.
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.entities import DatasetVersion
from keel.errors import NotFound
from keel.store.protocol import Store

MAX_RUNS = 200  # a bound on the walk, far above any real pipeline's depth


@dataclass(frozen=True)
class DatasetLink:
    """A dataset version a run depends on, and through which run (None: itself)."""

    version: DatasetVersion
    role: str                # input or output (of the run it is recorded on)
    via: str | None = None   # the ancestor run that recorded it


def datasets_in_lineage(store: Store, run_id: str) -> list[DatasetLink]:
    """The datasets of ``run_id``, or of its nearest ancestors (see the module docstring)."""
    level, seen, visited = [run_id], {run_id}, 0
    while level and visited < MAX_RUNS:
        found = []
        following: list[str] = []
        for current in level:
            visited += 1
            found += [DatasetLink(v, role, None if current == run_id else current)
                      for v, role in store.datasets_of_run(current)]
            try:
                run = store.get_run(current)
            except NotFound:  # purged since: its part of the chain is gone
                continue
            upstream = [u for u in run.tags.get("keel.upstream", "").split(",") if u]
            for nxt in ([run.parent_id] if run.parent_id else []) + upstream:
                if nxt not in seen:
                    seen.add(nxt)
                    following.append(nxt)
        if found:
            return found
        level = following
    return []
