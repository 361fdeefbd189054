"""One step to execute, as a self-contained value, and executing it anywhere.

A :class:`StepTask` holds everything a step needs (the step, its arguments
with inputs given as stored output records or dataset versions, its key, the
parent run) and nothing tied to the process that made it, so the same
``execute`` runs it inline, in a worker process of the local pool, or on a
Ray worker (which opens the workspace from a :class:`WorkspaceSpec`).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.entities import StepRecord
from keel.errors import InvalidInput
from keel.pipelines.graph import call_arguments
from keel.pipelines.outputs import load_output, store_output
from keel.workspace import Workspace

# Statuses a step ends with.
RAN, CACHED, FAILED, SKIPPED, NOT_RUN = "ran", "cached", "failed", "skipped", "not run"


@dataclass(frozen=True)
class WorkspaceSpec:
    """Where a worker finds the workspace: its folder and its stores, explicitly
    (a worker must not guess from its own current folder or environment)."""

    root: str
    store: str
    blobs: str

    @classmethod
    def of(cls, ws: Workspace) -> WorkspaceSpec:
        # The URL as set, not the opened store's: a cached re-run opens no store.
        # A path is made absolute here, as opening the store would (workers may
        # start in another folder).
        store = ws.store_url
        if "://" not in store:
            store = str(Path(store).expanduser().resolve())
        return cls(str(ws.root), store, ws.blobs.url)

    def open(self) -> Workspace:
        return Workspace.open(Path(self.root), store=self.store, blobs=self.blobs)


@dataclass(frozen=True)
class Input:
    """An input of a task: another step's stored output, or a dataset version."""

    kind: str                       # "output" or "dataset"
    record: dict[str, Any] | None   # output: its record
    ref: str = ""                   # dataset: the resolved NAME@N
    source: str = ""                # where it comes from, for messages and lineage
    run_id: str = ""                # output: the run that computed it


@dataclass(frozen=True)
class StepTask:
    """A step to execute (see the module docstring)."""

    pipeline: str
    experiment: str
    node: Any                       # the graph Node (its step, arguments and params)
    inputs: dict[str, Input]
    key: str
    components: dict[str, Any]
    parent_run_id: str
    cwd: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended: its status, its run, its outputs record, or the error."""

    step: str
    status: str
    run_id: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "status": self.status, "run_id": self.run_id,
                "error": self.error, "reason": self.reason,
                "seconds": round(self.seconds, 3)}


def execute(task: StepTask, ws: Workspace) -> StepOutcome:
    """Run one step as a child run of the pipeline run; record it in the step cache."""
    import time

    from keel.tracking.api import start_run

    node = task.node
    started = time.perf_counter()
    upstream = sorted({i.run_id for i in task.inputs.values() if i.run_id})
    tags = {"keel.kind": "step", "keel.pipeline": task.pipeline, "keel.step": node.name,
            "keel.step.key": task.key, **task.tags}
    if upstream:
        tags["keel.upstream"] = ",".join(upstream)
    run_id = None
    try:
        with start_run(experiment=task.experiment, name=node.name,
                       parent_run_id=task.parent_run_id, nested=False, ws=ws,
                       params={k: _shown(v) for k, v in node.params.items()},
                       tags=tags) as run:
            run_id = run.id
            values = _load_inputs(task, run, ws)
            args, kwargs = call_arguments(node, values)
            value = _in_folder(task.cwd, lambda: node.step.keel_step_function(*args, **kwargs))
            outputs = {"value": store_output(run, node.name, value, node.step.pickle),
                       "files": _store_files(task, run)}
            ws.store.record_step(StepRecord(task.key, task.pipeline, node.name, run.id,
                                            outputs, task.components))
    except Exception as exc:  # the run is FAILED with its traceback; the pipeline goes on
        error = "".join(traceback.format_exception_only(exc)).strip()
        if not isinstance(exc, InvalidInput):
            error += "\n" + "".join(traceback.format_tb(exc.__traceback__)[-3:])
        return StepOutcome(node.name, FAILED, run_id, error=error,
                           seconds=time.perf_counter() - started)
    return StepOutcome(node.name, RAN, run_id, outputs, seconds=time.perf_counter() - started)


def _shown(value: Any) -> Any:
    """A param as the run shows it: plain values as they are, others as JSON."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    from keel.pipelines.fingerprint import canonical

    return canonical(value)


def _load_inputs(task: StepTask, run: Any, ws: Workspace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, item in task.inputs.items():
        if item.kind == "dataset":
            values[name] = run.use_dataset(item.ref)  # a read-only path; recorded as input
        else:
            assert item.record is not None
            values[name] = load_output(item.record["value"], ws.blobs)
    return values


def _in_folder(folder: str, action: Any) -> Any:
    """Run ``action`` with ``folder`` as the current folder, if it is not already.

    Only workers change folders (a pool or Ray worker runs one step at a time);
    an inline run is already in the project folder, and threads share it.
    """
    if os.getcwd() == folder:
        return action()
    previous = os.getcwd()
    os.chdir(folder)
    try:
        return action()
    finally:
        os.chdir(previous)


def _store_files(task: StepTask, run: Any) -> dict[str, str]:
    """Declared output files: each must exist once the step returned."""
    stored = {}
    for name in task.node.step.outputs:
        path = Path(task.cwd) / name
        if not path.is_file():
            raise InvalidInput(f"step {task.node.name!r} declares output {name!r} but did not "
                               f"write it (no file {path})",
                               hint="write the file in the step, or remove it from outputs=")
        folder = str(Path("files") / Path(name).parent).rstrip("/.")
        artifact = run.log_artifact(path, folder if folder != "files" else "files")[0]
        stored[name] = artifact.digest
    return stored


def restore_files(record: StepRecord, cwd: str, ws: Workspace) -> None:
    """Put a cached step's declared files back where the step wrote them, when they
    are missing or differ (a cached step still leaves its files in place)."""
    from keel.blobs.digest import hash_file

    for name, digest in record.outputs.get("files", {}).items():
        path = Path(cwd) / name
        if path.is_file() and hash_file(path) == digest:
            continue
        ws.blobs.fetch(digest, path)
