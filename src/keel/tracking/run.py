"""The handle of a run being logged: ``with keel.start_run() as run: run.log_metric(...)``."""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from keel import context
from keel.clock import now_ms
from keel.entities import Artifact, DatasetVersion, MetricPoint, Run, RunEnd
from keel.errors import Conflict, InvalidInput, NotFound, RunAborted
from keel.tracking.keys import (
    MAX_STEP,
    MIN_STEP,
    check_artifact_path,
    check_key,
    check_metric_value,
    check_step,
    param_text,
)
from keel.tracking.shutdown import guard
from keel.tracking.spool import Spool, text_line
from keel.tracking.writer import BackgroundWriter, drain

if TYPE_CHECKING:
    from keel.workspace import Workspace


class ActiveRun:
    """A run this process is logging to. Use it as a context manager: an
    exception inside the block marks the run FAILED (traceback stored), Ctrl-C
    marks it KILLED, a clean exit FINISHED."""

    def __init__(self, workspace: Workspace, run: Run, spool: Spool,
                 writer: BackgroundWriter, steps: dict[str, int] | None = None) -> None:
        self.workspace = workspace
        self.id = run.id
        self.name = run.name
        self.experiment = run.experiment
        self.parent_id = run.parent_id
        self._spool = spool
        self._fd = spool.fd
        self._writer = writer
        self._params: dict[str, str] = dict(run.params)
        self._keys: set[str] = set()
        # The last step of each key: a default step continues from it (a resumed
        # run starts from what the store holds).
        self._steps: dict[str, int] = dict(steps or {})
        self._ended: str | None = None
        # Rules watching what this run logs (--abort-if, budgets, early stopping).
        self._watchers: list[Any] = []
        self.abort_reason: str | None = None

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} name={self.name!r} experiment={self.experiment!r}>"

    @property
    def ended(self) -> bool:
        """True once the run has ended (nothing more can be logged to it)."""
        return self._ended is not None

    @property
    def status(self) -> str:
        """RUNNING until the run ends, then how it ended."""
        return self._ended or "RUNNING"

    @property
    def info(self) -> Run:
        """The run as stored now (flushes first, so it includes everything logged)."""
        if not self._ended:
            self.flush()
        return self.workspace.store.get_run(self.id)

    def _check_open(self) -> None:
        if self._ended:
            raise Conflict(f"run {self.id} is {self._ended}; nothing more can be logged to it",
                           hint="start a new run, or resume this one with "
                                f"keel.start_run(run_id={self.id!r})")

    # -- metrics: the hot path ---------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Log one point; returns in microseconds and survives a crash once returned.

        ``step`` defaults to one past the key's last step (0 for the first point).
        NaN and +-inf are stored as such.
        """
        if self._ended:
            self._check_open()
        if key not in self._keys:
            self._keys.add(check_key(key, "metric key"))
        if type(value) is not float:
            value = check_metric_value(key, value)
        if step is None:
            step = self._steps.get(key, -1) + 1
        elif type(step) is not int or not MIN_STEP <= step <= MAX_STEP:
            step = check_step(step)
        self._steps[key] = step
        line = f"m\t{key}\t{value!r}\t{step}\t{time.time_ns() // 1_000_000}\n"
        os.write(self._fd, line.encode())
        if self._watchers:  # after the write: an aborting point is kept
            self._notify(key, value, step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log several metrics at once (one write)."""
        self.log_batch([(k, v, step) for k, v in metrics.items()])

    def log_batch(self, metrics: list[tuple[str, float, int | None]] | list[MetricPoint]
                  ) -> None:
        """Log many ``(key, value, step)`` points in one write; all or none are accepted."""
        self._check_open()
        now = now_ms()
        lines = []
        steps = dict(self._steps)
        known = self._keys
        for item in metrics:
            step: int | None
            if isinstance(item, MetricPoint):
                key, value, step = item.key, item.value, item.step
            else:
                key, value, step = item
            # Fast paths for keys already checked and plain floats/ints: a
            # 5,000-point batch spends 3x less time here (bench A3).
            if key not in known:
                check_key(key, "metric key")
            if type(value) is not float:
                value = check_metric_value(key, value)
            if step is None:
                step_no = steps.get(key, -1) + 1
            else:
                step_no = step if type(step) is int and MIN_STEP <= step <= MAX_STEP \
                    else check_step(step)
            steps[key] = step_no
            lines.append(f"m\t{key}\t{value!r}\t{step_no}\t{now}\n")
        self._steps = steps
        self._keys.update(steps)
        self._spool.append("".join(lines).encode())
        if self._watchers:
            for item in metrics:
                point = item if isinstance(item, MetricPoint) else \
                    MetricPoint(item[0], float(item[1]), steps[item[0]], now)
                self._notify(point.key, point.value, point.step)

    def watch(self, watcher: Any) -> None:
        """Have ``watcher.on_metric(run, key, value, step)`` see every point logged;
        it may stop the run by raising :class:`~keel.errors.RunAborted`."""
        self._watchers.append(watcher)
        start = getattr(watcher, "start", None)
        if start is not None:
            start(self)

    def _notify(self, key: str, value: float, step: int) -> None:
        for watcher in self._watchers:
            watcher.on_metric(self, key, value, step)

    # -- params and tags ---------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record a setting; params are write-once (same value again is fine)."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several params; if any conflicts, none is recorded."""
        self._check_open()
        checked: dict[str, str] = {}
        for key, value in params.items():
            check_key(key, "param key")
            text = param_text(key, value)
            old = self._params.get(key, checked.get(key))
            if old is not None and old != text:
                raise InvalidInput(
                    f"param {key!r} is already {old!r} in run {self.id}; params are write-once",
                    hint="log values that change as metrics or tags, or start a new run")
            checked[key] = text
        new = {k: v for k, v in checked.items() if k not in self._params}
        if new:
            self._spool.append("".join(text_line("p", k, v) for k, v in new.items()).encode())
            self._params.update(new)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (tags are mutable: the last value wins)."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._check_open()
        lines = [text_line("t", check_key(k, "tag key"), param_text(k, v))
                 for k, v in tags.items()]
        self._spool.append("".join(lines).encode())

    # -- artifacts ---------------------------------------------------------

    def log_artifact(self, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> list[Artifact]:
        """Store a file, or every file under a folder, as run artifacts.

        ``artifact_path`` is the folder inside the run (default: the top).
        """
        self._check_open()
        source = Path(local_path)
        if not source.exists():
            raise NotFound(f"{source} does not exist", hint="pass a file or folder to log")
        prefix = check_artifact_path(artifact_path) + "/" if artifact_path else ""
        if source.is_file():
            files = [(source, prefix + source.name)]
        else:
            files = [(p, prefix + p.relative_to(source).as_posix())
                     for p in sorted(source.rglob("*")) if p.is_file()]
        for _path, name in files:
            check_artifact_path(name)
        stored = []
        with self.workspace.writing():  # gc keeps these blobs until they are recorded
            for path, name in files:
                digest = self.workspace.blobs.put_file(path)
                stored.append(Artifact(name, digest, path.stat().st_size))
            for artifact in stored:
                self.workspace.store.add_artifact(self.id, artifact)
        return stored

    def log_bytes(self, data: bytes, artifact_file: str) -> Artifact:
        """Store a buffer as an artifact."""
        self._check_open()
        name = check_artifact_path(artifact_file)
        with self.workspace.writing():
            artifact = Artifact(name, self.workspace.blobs.put_bytes(data), len(data))
            self.workspace.store.add_artifact(self.id, artifact)
        return artifact

    def log_text(self, text: str, artifact_file: str) -> Artifact:
        """Store text as an artifact (UTF-8)."""
        return self.log_bytes(text.encode(), artifact_file)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> Artifact:
        """Store a dict as a JSON artifact (values must be JSON: str, numbers,
        bools, None, lists and dicts of them)."""
        try:
            text = json.dumps(data, indent=2)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"log_dict({artifact_file!r}): {exc}",
                               hint="convert the value first (str(), float(), .tolist()), "
                                    "or store it with log_text") from exc
        return self.log_bytes(text.encode(), artifact_file)

    # -- datasets ----------------------------------------------------------

    def use_dataset(self, ref: str) -> Path:
        """Record that this run reads dataset version ``ref`` (``name@2``) and
        return a local, read-only path to its files."""
        from keel.data.cache import cached_copy
        from keel.data.version import get_version

        self._check_open()
        version = get_version(self.workspace, ref)
        path = cached_copy(self.workspace, version)
        self.workspace.store.link_run_dataset(self.id, version.id, "input")
        return path

    def log_dataset(self, path: str | os.PathLike[str], name: str, message: str = "",
                    follow_symlinks: bool = False) -> DatasetVersion:
        """Version ``path`` as dataset ``name`` (a new version only if it changed)
        and record it as an output of this run (see ``keel.data.add`` for
        ``follow_symlinks``)."""
        from keel.data.add import add

        self._check_open()
        result = add(Path(path), name, message or f"written by run {self.id}",
                     ws=self.workspace, follow_symlinks=follow_symlinks)
        self.workspace.store.link_run_dataset(self.id, result.version.id, "output")
        return result.version

    # -- models ------------------------------------------------------------

    def log_model(self, model: Any, artifact_path: str = "model", input_example: Any = None,
                  signature: Any = None, flavor: str | None = None) -> str:
        """Package ``model`` (skops for scikit-learn, ONNX, or a trusted Python
        object) with its signature and lineage, and store it as artifacts under
        ``artifact_path``. Returns its URI, ``runs:/<run id>/<artifact_path>``.

        >>> run.log_model(clf, "model", input_example=X_train[:5])
        """
        import tempfile

        from keel.packaging import save_package

        self._check_open()
        prefix = check_artifact_path(artifact_path)
        self.flush()
        stored = self.workspace.store.get_run(self.id)
        with tempfile.TemporaryDirectory(prefix="keel-model-") as temp:
            save_package(model, Path(temp) / "package", input_example=input_example,
                         signature=signature, flavor=flavor, metrics=stored.metrics,
                         lineage=self._lineage(stored))
            self.log_artifact(Path(temp) / "package", artifact_path=prefix)
        return f"runs:/{self.id}/{prefix}"

    def _lineage(self, stored: Run) -> dict[str, Any]:
        """Where a model logged now comes from, written into its manifest."""
        from keel.tracking.lineage import datasets_in_lineage

        used = datasets_in_lineage(self.workspace.store, self.id)
        return {"run_id": self.id, "experiment": self.experiment,
                "params": dict(stored.params),
                "datasets": [{"ref": link.version.ref,
                              "manifest_digest": link.version.manifest_digest,
                              "role": link.role, **({"via_run": link.via} if link.via else {})}
                             for link in used],
                "git_commit": stored.tags.get("keel.git.commit"),
                "git_dirty": stored.tags.get("keel.git.status") == "dirty",
                "python": stored.tags.get("keel.python")}

    # -- lifecycle ---------------------------------------------------------

    def flush(self) -> None:
        """Wait until everything logged so far is in the store; raises the store's
        error if it cannot take it (the data stays in the spool)."""
        drain(self._spool, self.workspace.store)

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Store everything pending, then close the run with ``status``."""
        if self._ended:
            return
        for watcher in self._watchers:  # a budget's timer, say: nothing to watch any more
            stop = getattr(watcher, "stop", None)
            if stop is not None:
                stop(self)
        self._writer.unregister(self._spool)
        # The last batch and the end status go in one transaction. The spool's
        # offset row stays (one small row per run and process): deleting it in
        # a second transaction would let a crash between the two replay the
        # whole spool into an already ended run.
        drain(self._spool, self.workspace.store, RunEnd(status, now_ms(), error))
        self._ended = status
        self._spool.close(remove=True)
        context.pop_run(self)
        guard.forget(self)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, RunAborted):
            self.end("KILLED", str(getattr(exc, "message", exc)))
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED", self.abort_reason or "interrupted (KeyboardInterrupt)")
        elif issubclass(exc_type, SystemExit) and getattr(exc, "code", 1) in (0, None):
            self.end("FINISHED")
        else:
            self.end("FAILED", "".join(traceback.format_exception(exc_type, exc, tb)))
