"""The Python API of experiment tracking (re-exported as ``keel.*``)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel import context
from keel.clock import now_ms
from keel.entities import DELETED, Artifact, Experiment, MetricPoint, Run
from keel.errors import Conflict, InvalidInput, NotFound
from keel.names import check_label
from keel.tracking import provenance, session
from keel.tracking.keys import check_artifact_path, check_key, param_text
from keel.tracking.names import run_name
from keel.tracking.recovery import Recovered
from keel.tracking.recovery import recover as _recover
from keel.tracking.run import ActiveRun
from keel.tracking.shutdown import guard
from keel.tracking.spool import Spool
from keel.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EXPERIMENT = "default"


def start_run(experiment: str | None = None, name: str | None = None,
              params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
              run_id: str | None = None, parent_run_id: str | None = None,
              nested: bool = True, ws: Workspace | None = None) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run; use it as a context manager.

    >>> with keel.start_run(experiment="churn", params={"lr": 0.1}) as run:
    ...     run.log_metric("loss", 0.3)

    The run is recorded in ``ws``; without it, in the workspace this thread or
    task is using (``keel.use_workspace``, or the active run's), else the
    current folder's (the first run in a folder without a workspace creates
    ``.keel/`` there). A run started while another run of the same workspace
    is active in this thread or task becomes its child (``nested=False`` to
    start a top-level run instead); runs of other threads are never parents.
    """
    ws = session.workspace(ws, create=True)
    if run_id is not None:
        return _resume(ws, run_id)
    parent = context.active_run()
    if parent is not None and parent.workspace is not ws:
        parent = None  # a run of another workspace cannot be a parent here
    trial = context.current_trial()
    if trial is not None and not trial.runs and parent_run_id is None:
        # The first run of a sweep trial (or of `keel run`) is the trial's run: a
        # child of the sweep's run, with the trial's params and rules.
        parent_run_id = trial.parent_run_id
        experiment = experiment or trial.experiment
        params = {**trial.params, **(params or {})}
    else:
        trial = None
        if parent_run_id is None and nested and parent is not None:
            parent_run_id = parent.id
    if experiment is None:
        experiment = parent.experiment if parent else \
            os.environ.get("KEEL_EXPERIMENT", DEFAULT_EXPERIMENT)
    # Check everything the caller passed before creating anything.
    check_label(experiment, "experiment name")
    if name is not None:
        check_label(name, "run name")
    checked_tags = {check_key(k, "tag key"): param_text(k, v) for k, v in (tags or {}).items()}
    for key, value in (params or {}).items():
        check_key(key, "param key")
        param_text(key, value)
    exp = _experiment(ws, experiment)
    origin = provenance.capture()
    with ws.writing():  # gc keeps the provenance blobs until the run records them
        files = [Artifact(path, ws.blobs.put_bytes(data), len(data))
                 for path, data in origin.artifacts.items()]
        run = ws.store.create_run(exp.id, name or run_name(), user=provenance.current_user(),
                                  start_time=now_ms(), parent_id=parent_run_id,
                                  tags={**origin.tags, **checked_tags}, artifacts=files,
                                  experiment_name=exp.name)
    active = _activate(ws, run)
    if params:
        active.log_params(params)
    if trial is not None:
        trial.runs.append(active.id)
        for watcher in trial.watchers:
            active.watch(watcher)
    return active


def _experiment(ws: Workspace, name: str) -> Experiment:
    """The experiment, looked up once per opened workspace: two queries saved per
    run. Cached on the workspace object so the cache dies with it (a cache keyed
    by id(ws) once handed a closed workspace's ids to its successor). An
    experiment deleted meanwhile by another process keeps receiving runs here."""
    cache = ws.experiment_cache
    if name not in cache:
        cache[name] = ws.store.get_or_create_experiment(name)
    exp: Experiment = cache[name]
    return exp


def _activate(ws: Workspace, run: Run, steps: dict[str, int] | None = None) -> ActiveRun:
    spool = Spool.create(ws.spool_dir, run.id, ws.store.store_id, ws.durability)
    writer = session.writer_for(ws)
    active = ActiveRun(ws, run, spool, writer, steps)
    writer.register(spool)
    context.push_run(active)
    guard.watch(active)
    return active


def _resume(ws: Workspace, run_id: str) -> ActiveRun:
    run_id = ws.store.resolve_run_id(run_id)
    if any(r.id == run_id and r.workspace is ws for r in guard.open_runs()):
        raise Conflict(f"run {run_id} is already active in this process",
                       hint="use the handle you have, or end it first")
    return _activate(ws, ws.store.reopen_run(run_id), ws.store.last_steps(run_id))


def params(**defaults: Any) -> dict[str, Any]:
    """The params of the trial this code runs in (a ``keel sweep`` trial, ``keel run
    --param``), over ``defaults``; just ``defaults`` outside a trial.

    >>> p = keel.params(lr=0.1, depth=3)   # {"lr": 0.01, "depth": 3} in a trial with lr=0.01
    """
    trial = context.current_trial()
    given = trial.params if trial is not None else _params_from_environment()
    return {**defaults, **given}


def _params_from_environment() -> dict[str, Any]:
    """``KEEL_PARAMS`` (a JSON object): how a trial's params reach a script that
    runs as its own process (a CI job, another scheduler)."""
    text = os.environ.get("KEEL_PARAMS", "")
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"KEEL_PARAMS is not JSON: {exc}",
                           hint='write it as an object, e.g. {"lr": 0.1}') from exc
    if not isinstance(found, dict):
        raise InvalidInput("KEEL_PARAMS must be a JSON object", hint='e.g. {"lr": 0.1}')
    return found


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread or asyncio task, or None."""
    run: ActiveRun | None = context.active_run()
    return run


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise Conflict("no active run", hint="wrap your code in `with keel.start_run():`")
    return run


def end_run(status: str = "FINISHED") -> None:
    """End the active run (what leaving its ``with`` block does)."""
    _require_active().end(status)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point to the active run."""
    _require_active().log_metric(key, value, step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log several metrics to the active run."""
    _require_active().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    """Log a (write-once) param to the active run."""
    _require_active().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log several params to the active run."""
    _require_active().log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _require_active().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active run."""
    _require_active().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str],
                 artifact_path: str | None = None) -> list[Artifact]:
    """Store a file or folder as artifacts of the active run."""
    return _require_active().log_artifact(local_path, artifact_path)


def log_text(text: str, artifact_file: str) -> Artifact:
    """Store text as an artifact of the active run."""
    return _require_active().log_text(text, artifact_file)


def log_dict(data: dict[str, Any], artifact_file: str) -> Artifact:
    """Store a dict as a JSON artifact of the active run."""
    return _require_active().log_dict(data, artifact_file)


def use_dataset(ref: str) -> Path:
    """Record that the active run reads dataset ``ref``; return a local path to it."""
    return _require_active().use_dataset(ref)


def log_dataset(path: str | os.PathLike[str], name: str, message: str = "",
                follow_symlinks: bool = False) -> Any:
    """Version ``path`` as dataset ``name`` and record it as the active run's output."""
    return _require_active().log_dataset(path, name, message, follow_symlinks)


def flush(ws: Workspace | None = None) -> None:
    """Wait until everything this process logged (to ``ws`` only, if given) is in
    the store; raises the store's error if it cannot take it."""
    for run in guard.open_runs():
        if ws is None or run.workspace is ws:
            run.flush()


# -- reading ---------------------------------------------------------------

def get_run(run_id: str, ws: Workspace | None = None) -> Run:
    """A stored run with its params, latest metrics and tags (any unique id prefix)."""
    ws = session.workspace(ws)
    flush(ws)
    return ws.store.get_run(ws.store.resolve_run_id(run_id))


def get_metric_history(run_id: str, key: str, ws: Workspace | None = None) -> list[MetricPoint]:
    """Every point logged for ``key`` in a run: step, value, timestamp, in step order."""
    ws = session.workspace(ws)
    flush(ws)
    return ws.store.metric_history(ws.store.resolve_run_id(run_id), key)


def list_artifacts(run_id: str, ws: Workspace | None = None) -> list[Artifact]:
    """A run's artifacts: path, digest and size."""
    ws = session.workspace(ws)
    return ws.store.list_artifacts(ws.store.resolve_run_id(run_id))


def download_artifacts(run_id: str, path: str = "", dst: str | os.PathLike[str] = ".",
                       ws: Workspace | None = None) -> Path:
    """Copy a run's artifact (or every artifact under a folder) to ``dst``, verified."""
    ws = session.workspace(ws)
    run_id = ws.store.resolve_run_id(run_id)
    prefix = check_artifact_path(path) if path else ""
    chosen = [a for a in ws.store.list_artifacts(run_id)
              if not prefix or a.path == prefix or a.path.startswith(prefix + "/")]
    if not chosen:
        raise NotFound(f"run {run_id} has no artifact {path!r}",
                       hint=f"see them with `keel runs show {run_id}`")
    from keel.data.destination import Destination
    from keel.data.materialise import materialise

    dest = Path(dst)
    # Through a Destination: a symlinked folder under dst is refused, never written through.
    with Destination(dest) as into:
        for artifact in chosen:
            materialise(ws.blobs, artifact.digest, into, artifact.path, 0o644)
    return dest / prefix if prefix else dest


def create_experiment(name: str, description: str = "", tags: dict[str, str] | None = None,
                      ws: Workspace | None = None) -> Experiment:
    """Create an experiment; names are unique."""
    check_label(name, "experiment name")
    return session.workspace(ws, create=True).store.create_experiment(name, description, tags)


def get_experiment(name: str, ws: Workspace | None = None) -> Experiment:
    """An experiment by name."""
    return session.workspace(ws).store.get_experiment(name)


def delete_run(run_id: str, ws: Workspace | None = None) -> Run:
    """Soft-delete a run (hidden from search; restore with :func:`restore_run`)."""
    store = session.workspace(ws).store
    return store.set_run_lifecycle(store.resolve_run_id(run_id), DELETED)


def restore_run(run_id: str, ws: Workspace | None = None) -> Run:
    """Undo :func:`delete_run`."""
    store = session.workspace(ws).store
    return store.set_run_lifecycle(store.resolve_run_id(run_id), "active")


def recover(ws: Workspace | None = None) -> list[Recovered]:
    """Replay spools of killed processes now (also done when a workspace is first
    used). Returns what this call and that first automatic pass recovered."""
    target = session.workspace(ws)
    earlier, target.recovered_runs = target.recovered_runs, []
    return [*earlier, *_recover(target)]


def search_runs(experiment: str | Sequence[str] | None = None, filter: str = "",
                order_by: Sequence[str] | str | None = None, max_results: int = 1000,
                page_token: str | None = None, as_list: bool = False,
                include_deleted: bool = False, ws: Workspace | None = None
                ) -> pd.DataFrame | RunPage:
    """Find runs with MLflow's filter language; a DataFrame, or Runs with ``as_list``.

    >>> keel.search_runs("churn", "metrics.auc > 0.8 AND params.model = 'rf'",
    ...                  order_by=["metrics.auc DESC"], max_results=10)

    The next page's token is ``df.attrs["next_page_token"]`` (or
    ``page.next_page_token``); None on the last page.
    """
    target = session.workspace(ws)
    flush(target)
    store = target.store
    exp_ids = None
    if experiment is not None:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        exp_ids = [store.get_experiment(n).id for n in names]
    orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
    offset = _decode_token(page_token)
    runs = store.search_runs(exp_ids, filter, orders, max_results, offset, include_deleted)
    next_token = _encode_token(offset + len(runs)) if len(runs) == max_results else None
    if as_list:
        return RunPage(runs, next_token)
    return runs_frame(runs, next_token)


class RunPage(list[Run]):
    """A page of runs from :func:`search_runs` with ``as_list=True``."""

    def __init__(self, runs: list[Run], next_page_token: str | None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token


def runs_frame(runs: list[Run], next_page_token: str | None = None) -> pd.DataFrame:
    """Runs as a DataFrame: attributes, then ``metrics.*``, ``params.*``, ``tags.*``."""
    import pandas as pd

    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run_id": r.id, "experiment": r.experiment, "name": r.name, "status": r.status,
            "start_time": pd.Timestamp(r.start_time, unit="ms", tz="UTC"),
            "end_time": pd.Timestamp(r.end_time, unit="ms", tz="UTC") if r.end_time else pd.NaT,
            "duration_s": r.duration_s, "user": r.user, "parent_run_id": r.parent_id}
        row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.params.items()})
        row.update({f"tags.{k}": v for k, v in r.tags.items()})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else [
        "run_id", "experiment", "name", "status", "start_time", "end_time", "duration_s",
        "user", "parent_run_id"])
    frame.attrs["next_page_token"] = next_page_token
    return frame


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"bad page_token {token!r}",
                           hint="pass the token the previous page returned") from exc
    return offset
