"""``@keel.pipeline``: a plain Python function that calls steps becomes a pipeline.

>>> @keel.pipeline
... def churn(C: float = 1.0, rows: int = 1000):
...     data = prepare(rows=rows)
...     return train(data, C=C)
>>> churn.run(C=0.5)            # runs what changed; a PipelineResult
>>> churn.status(C=0.5)         # which steps would run, and why

The pipeline's params are its function's keyword arguments (defaults
applied); its graph is what the function calls, traced once per run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput, NotFound
from keel.names import check_label
from keel.pipelines.executor import make_executor
from keel.pipelines.graph import Graph, tracing
from keel.pipelines.runner import PipelineResult, decide, run_pipeline
from keel.pipelines.task import CACHED, StepOutcome
from keel.workspace import Workspace


class Pipeline:
    """A function decorated with ``@keel.pipeline`` (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = check_label(name or fn.__name__, "pipeline name")
        self.signature = inspect.signature(fn)

    def __repr__(self) -> str:
        return f"<keel pipeline {self.name}>"

    def params(self, **overrides: Any) -> dict[str, Any]:
        """The pipeline's params: its defaults, with ``overrides`` applied."""
        try:
            bound = self.signature.bind(**overrides)
        except TypeError as exc:
            known = ", ".join(self.signature.parameters) or "none"
            raise InvalidInput(f"pipeline {self.name!r}: {exc}",
                               hint=f"its params are: {known}") from exc
        bound.apply_defaults()
        return dict(bound.arguments)

    def graph(self, **params: Any) -> Graph:
        """The steps this pipeline calls with ``params``, in an order they can run."""
        with tracing(self.name) as graph:
            self.fn(**self.params(**params))
        if not graph.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no step",
                               hint="call functions decorated with @keel.step in it")
        graph.resolve_after()
        return graph

    def run(self, ws: Workspace | None = None, executor: str = "inline", parallel: int = 1,
            address: str | None = None, only: tuple[str, ...] = (),
            force: tuple[str, ...] = (), experiment: str | None = None,
            **params: Any) -> PipelineResult:
        """Run the steps whose inputs, code, params or environment changed."""
        from keel.tracking import session

        ws = session.workspace(ws, create=True)
        graph = self.graph(**params)
        runner = make_executor(executor, parallel, address)
        try:
            return run_pipeline(graph, self.params(**params), ws, runner, tuple(only),
                                tuple(force), experiment)
        finally:
            runner.close()

    def status(self, ws: Workspace | None = None, **params: Any) -> list[StepState]:
        """Each step fresh (its key was seen) or stale, and why."""
        from keel.tracking import session

        return pipeline_status(self.graph(**params), session.workspace(ws))

    def __call__(self, **params: Any) -> PipelineResult:
        return self.run(**params)


def pipeline(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Make a function a pipeline (see :class:`Pipeline`)."""
    if fn is not None:
        return Pipeline(fn, name)
    return lambda function: Pipeline(function, name)


@dataclass(frozen=True)
class StepState:
    """A step's state for ``keel pipeline status``."""

    step: str
    state: str            # fresh or stale
    reason: str
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "state": self.state, "reason": self.reason,
                "run_id": self.run_id}


def pipeline_status(graph: Graph, ws: Workspace) -> list[StepState]:
    """Walk the graph as a run would, without running: a step is fresh when its key
    was seen; a step downstream of a stale one is stale (its input will change)."""
    done: dict[str, StepOutcome] = {}
    records: dict[str, Any] = {}
    states = []
    for node in graph.nodes:
        stale_up = [u.name for u in node.upstream if u.name not in records]
        if stale_up:
            states.append(StepState(node.name, "stale",
                                    f"upstream {', '.join(stale_up)} will run first"))
            continue
        decision = decide(node, done, records, ws, graph.pipeline, forced=False)
        if decision.cached is not None:
            records[node.name] = decision.cached.outputs
            done[node.name] = StepOutcome(node.name, CACHED, decision.cached.run_id)
            states.append(StepState(node.name, "fresh", "cached", decision.cached.run_id))
        else:
            states.append(StepState(node.name, "stale", decision.reason))
    return states


def load_pipeline(spec: str) -> Pipeline:
    """The pipeline ``path.py:name`` names (or the only pipeline in ``path.py``)."""
    path_text, _, name = spec.partition(":")
    path = Path(path_text)
    if not path.is_file():
        raise NotFound(f"no pipeline file {path}", hint="pass pipeline.py or pipeline.py:NAME")
    module_name = "keel_pipeline_" + hashlib.blake2b(str(path.resolve()).encode(),
                                                     digest_size=8).hexdigest()
    loader = importlib.util.spec_from_file_location(module_name, path)
    if loader is None or loader.loader is None:
        raise InvalidInput(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    # The pipeline's own folder first on the path, as `python pipeline.py` would have it.
    sys.path.insert(0, str(path.resolve().parent))
    try:
        loader.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.resolve().parent))
    _travel_by_value(module)
    found = {obj.name: obj for obj in vars(module).values() if isinstance(obj, Pipeline)}
    if name:
        if name not in found:
            raise NotFound(f"{path} has no pipeline {name!r}",
                           hint="pipelines in it: " + (", ".join(found) or "none"))
        return found[name]
    if len(found) != 1:
        raise InvalidInput(f"{path} holds {len(found)} pipelines" +
                           (f" ({', '.join(found)})" if found else ""),
                           hint="name one: keel pipeline run pipeline.py:NAME")
    return next(iter(found.values()))


def _travel_by_value(module: Any) -> None:
    """A module loaded from a file is not importable by name in a worker process:
    pickle its functions by value when steps are sent to a pool or Ray."""
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except (ImportError, ValueError):
        pass
