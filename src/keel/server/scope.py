"""What one request may reach: the experiments of its token's project, their runs
and their artifacts.

Every workspace has the project ``default``; the CLI and the Python API work
in it. A team server's token names one project (``keel token create
--project churn``): MLflow clients and the web UI using it see only that
project's experiments and runs. Anything of another project answers exactly
as if it did not exist (404, the store's own words), so ids cannot be probed.
Datasets, models, deployments and monitoring records are created by the CLI
and the Python API, hence in ``default``: other projects' tokens see none.

Experiment names are unique across the workspace: creating a name another
project holds is refused as "already exists" (a name, never its contents).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from keel.entities import DEFAULT_PROJECT, Experiment, Run
from keel.errors import AlreadyExists, NotFound

if TYPE_CHECKING:
    from keel.workspace import Workspace

MAX_KNOWN = 100_000  # experiments whose project is remembered


class ProjectIndex:
    """Experiment id -> project, remembered: an experiment never changes project,
    and a request about a run would otherwise cost one more query."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._known: dict[int, str] = {}
        self._lock = threading.Lock()

    def of(self, experiment_id: int) -> str:
        project = self._known.get(experiment_id)
        if project is None:
            project = self._ws.store.get_experiment(experiment_id).project
            with self._lock:
                if len(self._known) >= MAX_KNOWN:
                    self._known.clear()
                self._known[experiment_id] = project
        return project


def project_of(request: Request) -> str:
    """The project of the request's token (``default`` on a server without auth)."""
    token = getattr(request.state, "token", None)
    return token.project if token is not None else DEFAULT_PROJECT


@dataclass(frozen=True)
class Scope:
    """The store as one project sees it."""

    ws: Workspace
    project: str
    index: ProjectIndex

    @property
    def is_default(self) -> bool:
        """True for the project that holds datasets, models and deployments."""
        return self.project == DEFAULT_PROJECT

    def experiment(self, name_or_id: str | int) -> Experiment:
        """An experiment of this project; NotFound (as for a missing one) otherwise."""
        found = self.ws.store.get_experiment(name_or_id)
        if found.project != self.project:
            raise NotFound(f"no experiment {name_or_id!r}",
                           hint="list them with `keel experiments list`")
        return found

    def experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self.ws.store.list_experiments(include_deleted, project=self.project)

    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> Experiment:
        return self.ws.store.create_experiment(name, tags=tags, project=self.project)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """``name`` in this project, created on first use."""
        try:
            return self.experiment(name)
        except NotFound:
            try:
                return self.create_experiment(name)
            except AlreadyExists:  # created meanwhile (here, or it is another project's)
                return self.experiment(name)

    def run(self, run_id: str) -> Run:
        """A run of one of this project's experiments; NotFound otherwise."""
        found = self.ws.store.get_run(run_id)
        self.check_run(found)
        return found

    def check_run(self, run: Run) -> None:
        if self.index.of(run.experiment_id) != self.project:
            raise NotFound(f"no run {run.id!r}", hint="list runs with `keel runs list`")

    def experiment_ids(self) -> list[int]:
        """Every experiment of this project, deleted ones too (a search's default)."""
        return [e.id for e in self.experiments(include_deleted=True)]


Scoped = Callable[[Request], Scope]


def scope_dependency(ws: Workspace) -> Scoped:
    """A FastAPI dependency giving each request its :class:`Scope`; the requests of
    one app share its :class:`ProjectIndex`."""
    index = ProjectIndex(ws)

    def scoped(request: Request) -> Scope:
        return Scope(ws, project_of(request), index)

    return scoped


def default_only(scoped: Scoped, what: str) -> Callable[[Request], None]:
    """A router dependency for pages of the default project's things (datasets,
    models, deployments, monitoring): another project's token gets a 404."""
    def check(request: Request) -> None:
        scope = scoped(request)
        if not scope.is_default:
            raise NotFound(f"project {scope.project!r} has no {what}",
                           hint="they belong to the default project")
    return check
