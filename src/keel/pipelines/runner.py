"""Running a pipeline: decide each step (cached, run, skipped) in graph order and
execute the ones to run on an executor, as child runs of one pipeline run.

A step is decided once every step it needs is done. Its key is computed from
its inputs' recorded digests; a key seen before (and whose run still exists)
means the step is ``cached``, and its declared files are put back. A failed
step stops only what depends on it: its upstream outputs stay cached, so the
next run starts where this one failed. Independent steps run in parallel on
the ``local`` or ``ray`` executor.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput
from keel.pipelines.executor import Executor, InlineExecutor
from keel.pipelines.graph import Graph, Node
from keel.pipelines.inputs import DatasetInput
from keel.pipelines.key import StepKey, explain, step_key
from keel.pipelines.outputs import digests_of
from keel.pipelines.task import (
    CACHED,
    FAILED,
    NOT_RUN,
    RAN,
    SKIPPED,
    Input,
    StepOutcome,
    StepTask,
    WorkspaceSpec,
    execute,
    restore_files,
)
from keel.workspace import Workspace


@dataclass
class PipelineResult:
    """What a pipeline run did: one outcome per step, in graph order."""

    pipeline: str
    run_id: str   # "" when every step was cached: nothing ran, nothing was recorded
    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status in (RAN, CACHED, NOT_RUN) for s in self.steps)

    def status_of(self, step: str) -> str:
        return next(s.status for s in self.steps if s.step == step)

    def to_list(self) -> list[dict[str, Any]]:
        return [{"step": s.step, "status": s.status, "run_id": s.run_id} for s in self.steps]

    def output(self, step: str, ws: Workspace) -> Any:
        """What ``step`` returned (ran or cached), loaded from the blob store."""
        from keel.pipelines.outputs import load_output

        found = next((s for s in self.steps if s.step == step), None)
        if found is None or found.outputs is None:
            raise InvalidInput(f"step {step!r} has no output in this run",
                               hint="it failed, was skipped, or is not a step of the pipeline")
        return load_output(found.outputs["value"], ws.blobs)


@dataclass
class Decision:
    """What one step will do, decided before anything runs (also `pipeline status`)."""

    node: Node
    key: StepKey | None
    inputs: dict[str, Input]
    cached: Any = None          # the StepRecord, when the key was seen
    reason: str = ""


def decide(node: Node, done: dict[str, StepOutcome], records: dict[str, Any],
           ws: Workspace, pipeline: str, forced: bool) -> Decision:
    """The key of ``node`` and whether it is cached, given its upstream outcomes."""
    inputs: dict[str, Input] = {}
    digests: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for name, value in node.inputs.items():
        if isinstance(value, DatasetInput):
            from keel.data.version import get_version

            version = get_version(ws, value.ref)
            inputs[name] = Input("dataset", None, ref=version.ref, source=version.ref)
            digests[name] = [version.manifest_digest]
            sources[name] = f"dataset {value.ref} = {version.ref}"
        else:
            record = records[value.name]
            inputs[name] = Input("output", record, source=value.name,
                                 run_id=done[value.name].run_id or "")
            digests[name] = digests_of(record["value"])
            sources[name] = f"step {value.name}"
    key = step_key(node, digests)
    cached = None if forced or not node.step.cache else ws.reader.cached_step(key.key)
    reason = ""
    if cached is None:
        previous = ws.reader.last_step(pipeline, node.name)
        reason = "forced" if forced else explain(key.components,
                                                 previous.components if previous else None,
                                                 sources)
    return Decision(node, key, inputs, cached, reason)


def run_pipeline(graph: Graph, params: dict[str, Any], ws: Workspace,
                 executor: Executor | None = None, only: tuple[str, ...] = (),
                 force: tuple[str, ...] = (), experiment: str | None = None) -> PipelineResult:
    """Run ``graph`` (traced with ``params``) in ``ws``; see the module docstring.

    The pipeline's own run is started when the first step has to execute: a
    re-run where every step is cached records nothing and returns a result
    whose ``run_id`` is None (what ``dvc repro`` does when nothing changed).
    """
    executor = executor or InlineExecutor()
    for name in (*only, *force):
        graph.node(name)  # an unknown name is refused before anything runs
    forced = set(force)
    cwd = os.getcwd()
    spec = WorkspaceSpec.of(ws)
    done: dict[str, StepOutcome] = {}
    records: dict[str, Any] = {}
    parent = _ParentRun(graph.pipeline, experiment or graph.pipeline, params, ws)
    try:
        pending = list(graph.nodes)
        running: dict[cf.Future[StepOutcome], Node] = {}
        while pending or running:
            for node in [n for n in pending if all(u.name in done for u in n.upstream)]:
                pending.remove(node)
                outcome = _start(node, done, records, ws, graph.pipeline, node.name in forced,
                                 only, parent, experiment or graph.pipeline, cwd, spec,
                                 executor, running)
                if outcome is not None:
                    done[node.name] = outcome
            if running:
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    done[node.name] = _outcome(future, node)
                    if done[node.name].status == RAN:
                        records[node.name] = done[node.name].outputs
        result = PipelineResult(graph.pipeline, parent.run_id or "",
                                [done[n.name] for n in graph.nodes])
        parent.finish(result)
    except BaseException as exc:
        parent.abandon(exc)
        raise
    return result


class _ParentRun:
    """The pipeline's run, started on first need (see ``run_pipeline``)."""

    def __init__(self, pipeline: str, experiment: str, params: dict[str, Any],
                 ws: Workspace) -> None:
        self.pipeline, self.experiment, self.params, self.ws = pipeline, experiment, params, ws
        self.run: Any = None

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def start(self) -> str:
        if self.run is None:
            from keel.tracking.api import start_run

            self.run = start_run(experiment=self.experiment, name=self.pipeline, ws=self.ws,
                                 nested=False, params={k: str(v) for k, v in self.params.items()},
                                 tags={"keel.kind": "pipeline", "keel.pipeline": self.pipeline})
        return str(self.run.id)

    def finish(self, result: PipelineResult) -> None:
        if self.run is None:
            return
        self.run.log_dict({"steps": [s.to_dict() for s in result.steps]}, "pipeline.json")
        if result.ok:
            self.run.end("FINISHED")
        else:
            failed = [s.step for s in result.steps if s.status == FAILED]
            self.run.end("FAILED", f"step(s) failed: {', '.join(failed)}")

    def abandon(self, exc: BaseException) -> None:
        if self.run is not None and not self.run.ended:
            interrupted = isinstance(exc, KeyboardInterrupt)
            self.run.end("KILLED" if interrupted else "FAILED",
                         "interrupted (KeyboardInterrupt)" if interrupted
                         else f"{type(exc).__name__}: {exc}")


def _start(node: Node, done: dict[str, StepOutcome], records: dict[str, Any], ws: Workspace,
           pipeline: str, forced: bool, only: tuple[str, ...], parent: _ParentRun,
           experiment: str, cwd: str, spec: WorkspaceSpec, executor: Executor,
           running: dict[cf.Future[StepOutcome], Node]) -> StepOutcome | None:
    """Decide ``node``; submit it (returns None) or return its outcome at once."""
    blocked = [u.name for u in node.upstream if done[u.name].status not in (RAN, CACHED)]
    if blocked:
        return StepOutcome(node.name, SKIPPED,
                           reason=f"upstream {', '.join(blocked)} did not produce outputs")
    decision = decide(node, done, records, ws, pipeline, forced)
    if decision.cached is not None:
        restore_files(decision.cached, cwd, ws)
        records[node.name] = decision.cached.outputs
        return StepOutcome(node.name, CACHED, decision.cached.run_id, decision.cached.outputs)
    if only and node.name not in only:
        return StepOutcome(node.name, NOT_RUN, reason=decision.reason)
    assert decision.key is not None
    task = StepTask(pipeline, experiment, node, decision.inputs, decision.key.key,
                    decision.key.components, parent.start(), cwd)
    if isinstance(executor, InlineExecutor):
        future = executor.submit(execute, task, ws)
    else:
        future = executor.submit(_execute_in_worker, task, spec)
    running[future] = node
    return None


def _execute_in_worker(task: StepTask, spec: WorkspaceSpec) -> StepOutcome:
    """A step on a pool or Ray worker: open the workspace it names, run, close."""
    ws = spec.open()
    try:
        return execute(task, ws)
    finally:
        ws.close()


def _outcome(future: cf.Future[StepOutcome], node: Node) -> StepOutcome:
    try:
        return future.result()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the worker itself failed (killed, unpicklable...)
        return StepOutcome(node.name, FAILED, error=f"{type(exc).__name__}: {exc}")


def check_targets(graph: Graph, only: tuple[str, ...]) -> None:
    """Refuse an ``only`` list naming no step."""
    if only and not any(n.name in only for n in graph.nodes):
        raise InvalidInput("--only names no step of this pipeline",
                           hint="steps: " + ", ".join(n.name for n in graph.nodes))
