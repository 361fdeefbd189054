"""``@keel.step``: a plain function made a cached, recorded pipeline step.

Outside a pipeline a step is the plain function (call it in tests, in a
notebook). While a ``@keel.pipeline`` function is traced, calling a step
records a node of the graph instead and returns it as a placeholder for the
step's output, to be passed to other steps.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, overload

from keel.errors import InvalidInput
from keel.pipelines.graph import current_graph


class Step:
    """A function decorated with ``@keel.step`` (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None,
                 outputs: Sequence[str] = (), env: Sequence[str] = (),
                 after: Sequence[str] = (), pickle: bool = False, cache: bool = True) -> None:
        if not callable(fn):
            raise InvalidInput(f"@keel.step decorates a function, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.keel_step_function = fn
        self.name = name or fn.__name__
        self.outputs = tuple(_declared(self.name, outputs))
        self.env = tuple(env)
        self.after = tuple(after)
        self.pickle = pickle
        self.cache = cache
        self.signature = inspect.signature(fn)

    def __repr__(self) -> str:
        return f"<keel step {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = current_graph()
        if graph is None:
            return self.keel_step_function(*args, **kwargs)
        return graph.add(self, args, kwargs)


def _declared(step: str, outputs: Sequence[str]) -> list[str]:
    from keel.tracking.keys import check_artifact_path

    if isinstance(outputs, str):
        outputs = [outputs]
    checked = []
    for path in outputs:
        try:
            checked.append(check_artifact_path(path))
        except InvalidInput as exc:
            raise InvalidInput(f"step {step!r}: declared output {path!r} must be a relative "
                               "path inside the project", hint=exc.hint) from exc
    return checked


@overload
def step(fn: Callable[..., Any]) -> Step: ...
@overload
def step(*, name: str | None = None, outputs: Sequence[str] = (), env: Sequence[str] = (),
         after: Sequence[str] = (), pickle: bool = False, cache: bool = True
         ) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         outputs: Sequence[str] = (), env: Sequence[str] = (), after: Sequence[str] = (),
         pickle: bool = False, cache: bool = True) -> Any:
    """Make a function a pipeline step.

    >>> @keel.step
    ... def prepare(rows: int = 1000): ...
    >>> @keel.step(outputs=["report.html"], env=["scikit-learn"])
    ... def train(data, C: float = 1.0): ...

    Keyword arguments with plain values are the step's params; arguments that
    are another step's output or ``keel.dataset(...)`` are its inputs. The
    return value is stored by digest (DataFrames as Parquet, arrays as .npy,
    scikit-learn models with skops, JSON values as JSON; a dict of them as
    named outputs); anything else needs ``pickle=True``. ``outputs`` declares
    files the step writes (relative to the project folder); ``env`` names
    installed distributions whose versions are part of the cache key;
    ``after`` names steps that must run first although no data flows.
    """
    options = {"name": name, "outputs": outputs, "env": env, "after": after,
               "pickle": pickle, "cache": cache}
    if fn is not None:
        return Step(fn, **options)  # type: ignore[arg-type]
    return lambda function: Step(function, **options)  # type: ignore[arg-type]
