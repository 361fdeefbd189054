"""Parallel sweeps: many trials of a script or function, as child runs of one sweep run.

>>> keel.sweep(train, grid={"lr": [0.1, 0.01], "depth": [3, 5]}, parallel=4,
...            metric="val_acc", mode="max")

Failed trials are recorded (their runs FAILED with the traceback), never
fatal; at the end the trials are ranked by the metric. Ctrl-C stops the
sweep: running trials end KILLED, finished ones are kept, the sweep's run is
KILLED with how many trials finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput, NotFound
from keel.pipelines.abort import parse_rule
from keel.pipelines.executor import InlineExecutor, make_executor
from keel.pipelines.space import parse_distributions, parse_grid, trials
from keel.pipelines.task import WorkspaceSpec
from keel.pipelines.trial import TrialOutcome, TrialSpec, run_trial, run_trial_in_worker
from keel.workspace import Workspace


@dataclass
class SweepResult:
    """The sweep's run and its trials, ranked by the metric (best first)."""

    run_id: str
    metric: str | None
    mode: str
    trials: list[TrialOutcome] = field(default_factory=list)
    values: dict[int, float] = field(default_factory=dict)   # trial number -> final metric

    @property
    def ranked(self) -> list[TrialOutcome]:
        def score(t: TrialOutcome) -> float:
            found = self.values.get(t.number, math.nan)
            if math.isnan(found):
                return math.inf
            return -found if self.mode == "max" else found
        # Trials that finished first, then failed or stopped ones (their last value
        # is from part of the work), each group best first.
        return sorted(self.trials, key=lambda t: (t.status != "finished", score(t), t.number))

    @property
    def best(self) -> TrialOutcome | None:
        """The best trial with a value of the metric, or None."""
        ranked = [t for t in self.ranked if t.status == "finished"
                  and not math.isnan(self.values.get(t.number, math.nan))]
        return ranked[0] if ranked else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"sweep_run_id": self.run_id, "metric": self.metric, "mode": self.mode,
                "best_run_id": best.run_id if best else None,
                "trials": [t.to_dict() | {"metric": _json_number(self.values.get(t.number))}
                           for t in self.ranked]}


def _json_number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def sweep(target: Callable[..., Any] | str, grid: dict[str, list[Any]] | list[str] | None = None,
          random: int = 0, space: dict[str, str] | list[str] | None = None, seed: int = 0,
          parallel: int = 1, executor: str = "local", address: str | None = None,
          metric: str | None = None, mode: str = "max", experiment: str | None = None,
          abort_if: list[str] | tuple[str, ...] = (), budget_s: float | None = None,
          early_stop: str | None = None, args: tuple[str, ...] = (),
          ws: Workspace | None = None) -> SweepResult:
    """Run ``target`` (a function called with each trial's params, or a script path)
    once per trial; see the module docstring."""
    from keel.tracking import session
    from keel.tracking.api import start_run

    if mode not in ("max", "min"):
        raise InvalidInput(f"--mode must be max or min, got {mode!r}")
    if early_stop not in (None, "median"):
        raise InvalidInput(f"unknown early stopping {early_stop!r}", hint="use median")
    if early_stop and not metric:
        raise InvalidInput("early stopping needs --metric to compare trials on")
    for rule in abort_if:
        parse_rule(rule)  # a rule that does not parse stops the sweep before it starts
    params_list = trials(parse_grid(grid), parse_distributions(space), random, seed)
    script = _script(target)
    ws = session.workspace(ws, create=True)
    name = experiment or (Path(script).stem if script else getattr(target, "__name__", "sweep"))
    runner = make_executor(executor, parallel, address)
    spec_of = WorkspaceSpec.of(ws)
    result: SweepResult
    # Nested: a sweep run inside a pipeline step is that step's child.
    with start_run(experiment=name, name=f"sweep {name}", ws=ws,
                   tags={"keel.kind": "sweep", "keel.sweep.metric": metric or "",
                         "keel.sweep.mode": mode, "keel.sweep.trials": str(len(params_list)),
                         "keel.sweep.executor": runner.name}) as parent:
        result = SweepResult(parent.id, metric, mode)
        specs = [TrialSpec(n, p, parent.id, name, script=script, args=tuple(args),
                           fn=None if script else target,  # type: ignore[arg-type]
                           rules=tuple(abort_if), budget_s=budget_s,
                           median=(metric, mode, 3) if early_stop and metric else None,
                           cwd=os.getcwd())
                 for n, p in enumerate(params_list, 1)]
        try:
            result.trials = _run_all(specs, runner, ws, spec_of)
        except KeyboardInterrupt:
            runner.interrupt()  # running trials end KILLED; finished ones are kept
            runner.close()
            parent.end("KILLED", "interrupted: the sweep was stopped (Ctrl-C)")
            raise
        finally:
            runner.close()
        parent.flush()
        result.values = _final_values(ws, result.trials, metric)
        parent.log_dict(result.to_dict(), "sweep.json")
        best = result.best
        if best is not None and metric:
            parent.set_tags({"keel.sweep.best_run": best.run_id or "",
                             "keel.sweep.best_params": str(best.params)})
            parent.log_metric(f"best_{metric}", result.values[best.number])
    return result


def _script(target: Callable[..., Any] | str) -> str | None:
    if callable(target):
        return None
    path = Path(target)
    if not path.is_file():
        raise NotFound(f"no script {path}", hint="pass a Python file, e.g. train.py")
    return str(path.resolve())


def _run_all(specs: list[TrialSpec], runner: Any, ws: Workspace,
             where: WorkspaceSpec) -> list[TrialOutcome]:
    futures: dict[cf.Future[TrialOutcome], TrialSpec] = {}
    for spec in specs:
        if isinstance(runner, InlineExecutor):
            futures[runner.submit(run_trial, spec, ws)] = spec
        else:
            futures[runner.submit(run_trial_in_worker, spec, where)] = spec
    outcomes = []
    for future in cf.as_completed(futures):
        spec = futures[future]
        try:
            outcomes.append(future.result())
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the worker died (killed, out of memory...)
            outcomes.append(TrialOutcome(spec.number, spec.params, "failed", None,
                                         f"{type(exc).__name__}: {exc}"))
    return sorted(outcomes, key=lambda t: t.number)


def _final_values(ws: Workspace, outcomes: list[TrialOutcome], metric: str | None
                  ) -> dict[int, float]:
    """The last logged value of ``metric`` of each trial's run."""
    if not metric:
        return {}
    values = {}
    for outcome in outcomes:
        if outcome.run_id:
            found = ws.store.get_run(outcome.run_id).metrics.get(metric)
            if found is not None:
                values[outcome.number] = found
    return values
