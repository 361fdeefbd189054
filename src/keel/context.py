"""Ambient state of one thread, asyncio task or request: its active runs and workspace.

Everything here lives in :mod:`contextvars`, never in module globals, so two
threads, two asyncio tasks or two server requests never see each other's
runs. A new thread starts with an empty context (a run started there is a
top-level run, not a child of some other thread's run); an asyncio task
starts with a copy of its creator's context (a run it starts is a child of
the run that was active where the task was created, as the code reads).

The values are kept as immutable tuples: a task that starts a run sets its
own copy and never changes the stack its creator sees.

A leaf module: it imports nothing from keel (runs and workspaces are
described by the small protocol below).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class ScopedRun(Protocol):
    """What this module needs of a run: its workspace, and whether it ended."""

    workspace: Any

    @property
    def ended(self) -> bool: ...


_runs: ContextVar[tuple[Any, ...]] = ContextVar("keel_active_runs", default=())
_workspace: ContextVar[Any] = ContextVar("keel_workspace", default=None)


def active_run() -> Any:
    """The innermost run started in this context and not ended yet, or None."""
    for run in reversed(_runs.get()):
        if not run.ended:
            return run
    return None


def push_run(run: ScopedRun) -> None:
    """Make ``run`` the active run of this context (runs nest like a stack)."""
    _runs.set((*(r for r in _runs.get() if not r.ended), run))


def pop_run(run: ScopedRun) -> None:
    """Forget ``run`` in this context (a run ended elsewhere is skipped by
    :func:`active_run` anyway, since it reports ``ended``)."""
    stack = _runs.get()
    if run in stack:
        _runs.set(tuple(r for r in stack if r is not run))


def active_runs() -> tuple[Any, ...]:
    """Every run of this context not ended yet, outermost first."""
    return tuple(r for r in _runs.get() if not r.ended)


def current_workspace() -> Any:
    """The workspace this context works in: the one set by :func:`using_workspace`,
    else the workspace of the active run, else None (the caller then uses the
    current folder's)."""
    chosen = _workspace.get()
    if chosen is not None:
        return chosen
    run = active_run()
    return run.workspace if run is not None else None


@contextmanager
def using_workspace(workspace: Any) -> Iterator[Any]:
    """Run a block with ``workspace`` as this context's workspace.

    >>> with keel.use_workspace(keel.Workspace.open("/srv/team-a")):
    ...     keel.search_runs("churn")
    """
    token = _workspace.set(workspace)
    try:
        yield workspace
    finally:
        _workspace.reset(token)


class Trial(Protocol):
    """What this module needs of a trial (a sweep's or ``keel run``'s): the params it
    was given, the parent its run goes under, and what its runs must obey."""

    params: dict[str, Any]
    parent_run_id: str | None
    experiment: str | None
    watchers: list[Any]
    runs: list[str]


_trial: ContextVar[Any] = ContextVar("keel_trial", default=None)


def current_trial() -> Any:
    """The trial this context runs, or None."""
    return _trial.get()


@contextmanager
def running_trial(trial: Trial) -> Iterator[Trial]:
    """Run a block as ``trial``: ``keel.params()`` returns its params and the first
    run started in it is the trial's run (a child of ``parent_run_id``)."""
    token = _trial.set(trial)
    try:
        yield trial
    finally:
        _trial.reset(token)
