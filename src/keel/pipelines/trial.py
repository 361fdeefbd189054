"""One trial of a sweep (or the single run of ``keel run``): its params, its parent,
the rules that may stop it, and running it anywhere an executor sends it.

A trial runs either a script (``runpy``, as ``python train.py`` would, with
``sys.argv`` set) or a Python function called with the params as keyword
arguments inside a run keel starts. In both cases the first run started in
the trial's context is the trial's run: a child of the sweep's run, with the
trial's params logged and its rules watching it (``keel.context``).
"""

from __future__ import annotations

import runpy
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keel import context
from keel.errors import RunAborted
from keel.pipelines.task import WorkspaceSpec
from keel.workspace import Workspace, use_workspace

# How a trial ended.
FINISHED, FAILED, ABORTED, NO_RUN = "finished", "failed", "aborted", "no run"


@dataclass
class Trial:
    """The context a trial runs in (see ``keel.context.Trial``)."""

    params: dict[str, Any]
    parent_run_id: str | None
    experiment: str | None
    watchers: list[Any] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to run one trial."""

    number: int
    params: dict[str, Any]
    parent_run_id: str | None
    experiment: str | None
    script: str | None = None
    args: tuple[str, ...] = ()
    fn: Callable[..., Any] | None = None
    rules: tuple[str, ...] = ()
    budget_s: float | None = None
    median: tuple[str, str, int] | None = None   # (metric, mode, warmup) of early stopping
    cwd: str = "."


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended, and the run that recorded it."""

    number: int
    params: dict[str, Any]
    status: str
    run_id: str | None
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.number, "params": self.params, "status": self.status,
                "run_id": self.run_id, "reason": self.reason,
                "seconds": round(self.seconds, 3)}


def watchers_for(spec: TrialSpec) -> list[Any]:
    """The rule objects a trial's run is watched by (fresh ones per trial)."""
    from keel.pipelines.abort import Budget, MedianRule, parse_rule

    found: list[Any] = [parse_rule(r) for r in spec.rules]
    if spec.budget_s is not None:
        found.append(Budget(spec.budget_s))
    if spec.median is not None and spec.parent_run_id is not None:
        metric, mode, warmup = spec.median
        found.append(MedianRule(metric, mode, spec.parent_run_id, warmup))
    return found


def run_trial(spec: TrialSpec, ws: Workspace) -> TrialOutcome:
    """Run ``spec`` in this process, in ``ws``; never raises for the trial's own failure."""
    import os

    trial = Trial(dict(spec.params), spec.parent_run_id, spec.experiment, watchers_for(spec))
    started = time.perf_counter()
    status, reason = FINISHED, ""
    previous_cwd = os.getcwd()
    try:
        os.chdir(spec.cwd)
        with use_workspace(ws), context.running_trial(trial):
            if spec.script is not None:
                _run_script(spec.script, spec.args)
            else:
                _run_function(spec, trial)
    except RunAborted as exc:
        status, reason = ABORTED, exc.message
    except KeyboardInterrupt:
        if trial.runs and trial.watchers and _abort_reason(trial):
            status, reason = ABORTED, _abort_reason(trial)
        else:
            raise
    except Exception as exc:
        status = FAILED
        reason = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
    finally:
        os.chdir(previous_cwd)
    run_id = trial.runs[0] if trial.runs else None
    if run_id is None and status == FINISHED:
        status, reason = NO_RUN, "the script started no run (call keel.start_run())"
    return TrialOutcome(spec.number, spec.params, status, run_id, reason,
                        time.perf_counter() - started)


def _abort_reason(trial: Trial) -> str:
    for watcher in trial.watchers:
        if getattr(watcher, "fired", False):
            return str(watcher.reason)
    return ""


def _run_script(script: str, args: tuple[str, ...]) -> None:
    saved = sys.argv
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise RuntimeError(f"{script} exited with status {exit_.code}") from None
    finally:
        sys.argv = saved


def _run_function(spec: TrialSpec, trial: Trial) -> None:
    from keel.tracking.api import start_run

    assert spec.fn is not None
    with start_run(name=f"trial-{spec.number}") as run:
        found = spec.fn(**spec.params)
        if isinstance(found, dict):
            run.log_metrics({k: v for k, v in found.items() if isinstance(v, int | float)})


def run_trial_in_worker(spec: TrialSpec, where: WorkspaceSpec) -> TrialOutcome:
    """A trial on a pool or Ray worker: open the workspace it names, run it, close."""
    ws = where.open()
    try:
        return run_trial(spec, ws)
    finally:
        ws.close()


def run_script(script: str, params: dict[str, Any], rules: tuple[str, ...] = (),
               budget_s: float | None = None, experiment: str | None = None,
               args: tuple[str, ...] = (), ws: Workspace | None = None) -> TrialOutcome:
    """``keel run``: run a script once, its first run watched by ``rules`` and
    ``budget_s``, ``keel.params()`` returning ``params``."""
    import os
    from pathlib import Path

    from keel.errors import NotFound
    from keel.pipelines.abort import parse_rule
    from keel.tracking import session

    if not Path(script).is_file():
        raise NotFound(f"no script {script}", hint="pass a Python file, e.g. train.py")
    for rule in rules:
        parse_rule(rule)  # refused before the script starts
    spec = TrialSpec(1, params, None, experiment, script=str(Path(script).resolve()),
                     args=args, rules=rules, budget_s=budget_s, cwd=os.getcwd())
    return run_trial(spec, session.workspace(ws, create=True))
