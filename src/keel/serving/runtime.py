"""What one server process serves, and the housekeeping around it.

A :class:`Runtime` holds the deployment's current :class:`Serving` snapshot
(spec, split, loaded models) and swaps it whole when the deployment changes,
so a request always sees one consistent policy. Its maintenance thread:

- polls the deployment's revision (one tiny query) and loads a new spec's
  models before switching to it; a version that fails to load leaves the
  previous snapshot serving, and the reason is kept for ``/health``;
- flushes this worker's live figures to the store, where every worker's
  figures add up;
- judges a running canary on those summed figures and rolls it back when it
  breaks its limits (a compare-and-set on the revision: of several workers
  deciding at once, one writes the rollback and its audit).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pandas as pd

from keel.clock import now_ms
from keel.errors import Conflict, InvalidInput, KeelError
from keel.packaging.model import PackagedModel
from keel.serving.batcher import MicroBatcher
from keel.serving.fastpath import Predictor
from keel.serving.guard import breach
from keel.serving.inference_log import Entry, InferenceLogWriter
from keel.serving.lineage import new_request_id
from keel.serving.metrics import ServingMetrics
from keel.serving.payload import Batch, parse_body
from keel.serving.pool import LoadFailure, ModelPool
from keel.serving.shadow import Mirrored, ShadowMirror
from keel.serving.spec import DeploymentSpec
from keel.serving.split import Route, TrafficSplit
from keel.serving.stats import LiveStats
from keel.workspace import Workspace

log = logging.getLogger("keel.serving")
ROLLBACK_USER = "keel-guard"


@dataclass(frozen=True)
class ServeOptions:
    """How a server behaves; the defaults suit production, tests shorten the periods."""

    trust: bool = False                   # load pickled (python-flavor) models
    max_body_bytes: int = 16 * 1024 * 1024
    poll_seconds: float = 1.0             # how often the deployment's revision is checked
    stats_seconds: float = 2.0            # how often live figures are flushed and judged
    log_flush_seconds: float = 5.0        # the longest a logged prediction waits for a segment
    log_queue: int = 20_000               # requests waiting for the log before drops
    compact_seconds: float = 600.0        # how often figures older than compact_after merge
    compact_after_seconds: float = 3600.0
    sample: float | None = None           # overrides the deployment's log sample

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Serving:
    """One consistent view of what answers: swapped whole, never edited."""

    revision: int
    spec: DeploymentSpec
    split: TrafficSplit
    models: dict[str, PackagedModel]
    predictors: dict[str, Predictor]  # how each version predicts (see serving.fastpath)
    batchers: dict[str, MicroBatcher]
    shadows: tuple[tuple[Route, Predictor], ...]
    count_predictions: bool  # only a prediction-distribution limit needs them


@dataclass
class Answer:
    """What the app sends back for one request."""

    request_id: str
    version: str
    predictions: Any


class ModelFailed(Exception):
    """The model raised while predicting: a 500, counted against its version."""

    def __init__(self, version: str, error: BaseException) -> None:
        super().__init__(f"model {version} failed: {type(error).__name__}: {error}")
        self.version = version


@dataclass
class Health:
    load_failures: list[LoadFailure] = field(default_factory=list)
    failed_revision: int | None = None
    last_error: str | None = None


class Runtime:
    """The serving state of one process (see the module docstring)."""

    def __init__(self, ws: Workspace, deployment: str, serving: Serving, pool: ModelPool,
                 options: ServeOptions, follow: bool) -> None:
        self.ws = ws
        self.deployment = deployment
        self.options = options
        self.follow = follow  # a deployment in the store (else: one model, fixed)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.pool = pool
        self.stats = LiveStats()
        self.metrics = ServingMetrics()
        self.health = Health()
        self.serving = serving
        self._random = random.Random()
        self._stop = threading.Event()
        self.log = InferenceLogWriter(ws, deployment, self.worker,
                                      flush_seconds=options.log_flush_seconds,
                                      max_queue=options.log_queue)
        self.shadow = ShadowMirror(self.stats, self.log.submit,
                                   lambda: self.metrics.shadow_dropped.labels(deployment).inc())
        self._thread = threading.Thread(target=self._maintain, name="keel-serving",
                                        daemon=True)
        self._thread.start()

    # -- building -------------------------------------------------------------

    @classmethod
    def for_deployment(cls, ws: Workspace, name: str, options: ServeOptions) -> Runtime:
        """Serve deployment ``name`` as stored, following its changes."""
        pool = ModelPool(ws, trust=options.trust)
        deployment = ws.store.get_deployment(name)
        spec = DeploymentSpec.from_dict(deployment.spec)
        failures = pool.ensure(spec.split().versions)
        if failures:
            raise KeelError(f"deployment {name!r} cannot start: " + "; ".join(
                f"{f.version}: {f.reason}" for f in failures),
                hint="fix or roll back the version (keel deploy rollback " + name + ")")
        return cls(ws, name, snapshot(deployment.revision, spec, pool), pool, options,
                   follow=True)

    @classmethod
    def for_model(cls, ws: Workspace, uri: str, options: ServeOptions,
                  name: str | None = None, label: str | None = None) -> Runtime:
        """Serve one model (``models:/churn@champion``, ``runs:/...``, a folder);
        ``label`` names its version in answers and the log (default: ``churn/2``)."""
        from keel.models.load import load_model
        from keel.models.uri import parse_model_ref

        ref = parse_model_ref(uri)
        model = load_model(uri, trust=options.trust, ws=ws)
        version = label or version_label(model, ref)
        pool = ModelPool(ws, trust=options.trust)
        pool.add(version, model)
        spec = DeploymentSpec(ref.name or "model", (Route(version, 100.0, "stable",
                                                          ref.alias or ""),))
        deployment = name or ref.name or "model"
        return cls(ws, deployment, snapshot(0, spec, pool), pool, options, follow=False)

    # -- the request path -----------------------------------------------------

    def handle(self, body: bytes, content_type: str | None, sticky: str | None,
               request_id: str | None = None) -> Answer:
        """One HTTP request: route it, read its rows for the chosen model, predict.
        Raises :class:`BadRequest` (4xx), InvalidInput (422) or :class:`ModelFailed`."""
        serving = self.serving
        route = serving.split.choose(sticky, self._random.random())
        model = serving.models[route.version]
        batch = parse_body(body, content_type, self.options.max_body_bytes, model.signature)
        return self._answer(serving, route, batch, request_id)

    async def handle_async(self, body: bytes, content_type: str | None, sticky: str | None,
                           request_id: str | None = None) -> Answer:
        """:meth:`handle` on the event loop, predicting together with the requests
        that arrive in the same turn (see :mod:`keel.serving.batcher`)."""
        serving = self.serving
        route = serving.split.choose(sticky, self._random.random())
        model = serving.models[route.version]
        batch = parse_body(body, content_type, self.options.max_body_bytes, model.signature)
        if batch.array is None:
            return self._answer(serving, route, batch, request_id)
        started = time.perf_counter()
        try:
            predictions = await serving.batchers[route.version].predict(batch)
        except Exception as exc:
            self._failed(route, started, exc)
        return self._record(serving, route, batch, predictions, started, request_id)

    def predict(self, frame: pd.DataFrame, sticky: str | None = None,
                request_id: str | None = None) -> Answer:
        """Route, predict, count and log one request's rows. Raises InvalidInput
        (the client's fault: 422) or :class:`ModelFailed` (the model's: 500)."""
        serving = self.serving
        route = serving.split.choose(sticky, self._random.random())
        return self._answer(serving, route, Batch(frame), request_id)

    def _answer(self, serving: Serving, route: Route, batch: Batch,
                request_id: str | None) -> Answer:
        started = time.perf_counter()
        try:
            predictions = serving.predictors[route.version](batch)
        except Exception as exc:
            self._failed(route, started, exc)
        return self._record(serving, route, batch, predictions, started, request_id)

    def _failed(self, route: Route, started: float, exc: Exception) -> NoReturn:
        """Count a failure against its version and raise what the app answers."""
        if isinstance(exc, InvalidInput):
            raise exc  # the client's rows: not the model's fault
        elapsed = (time.perf_counter() - started) * 1000.0
        self.stats.observe(route.version, route.role, elapsed, error=True)
        self.metrics.errors.labels(self.deployment, route.version, "live").inc()
        raise ModelFailed(route.version, exc) from exc

    def _record(self, serving: Serving, route: Route, batch: Batch, predictions: Any,
                started: float, request_id: str | None) -> Answer:
        """Count, log and mirror an answered request."""
        version = route.version
        role = "live"
        request_id = request_id or new_request_id(self._random)
        elapsed = (time.perf_counter() - started) * 1000.0
        values = predictions.tolist()
        self.stats.observe(version, route.role, elapsed,
                           values if serving.count_predictions else ())
        self.metrics.latency.labels(self.deployment, version, role).observe(elapsed / 1000.0)
        sample = self.options.sample if self.options.sample is not None else serving.spec.sample
        logged = sample >= 1.0 or (sample > 0 and self._random.random() < sample)
        time_ms = now_ms()
        if logged:
            self.log.submit(Entry(request_id, time_ms, version, role, elapsed, batch,
                                  predictions))
        if serving.shadows:
            self.shadow.submit(Mirrored(request_id, time_ms, batch, logged), serving.shadows)
        return Answer(request_id, version, values)

    # -- housekeeping ---------------------------------------------------------

    def _maintain(self) -> None:
        last_flush = last_compaction = time.monotonic()
        while not self._stop.wait(min(self.options.poll_seconds, self.options.stats_seconds)):
            try:
                if self.follow:
                    self._follow()
                if time.monotonic() - last_flush >= self.options.stats_seconds:
                    last_flush = time.monotonic()
                    self.flush_stats()
                    if self.follow:
                        self._guard()
                if self.follow and \
                        time.monotonic() - last_compaction >= self.options.compact_seconds:
                    last_compaction = time.monotonic()
                    # Bounded figures: the guard sums them since the canary began.
                    cutoff = now_ms() - int(self.options.compact_after_seconds * 1000)
                    self.ws.store.compact_deployment_stats(self.deployment, cutoff)
            except Exception as exc:  # a store outage must not stop serving
                self.health.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("serving housekeeping failed: %s", exc)

    def _follow(self) -> None:
        revision = self.ws.store.deployment_revision(self.deployment)
        if revision == self.serving.revision or revision == self.health.failed_revision:
            return
        deployment = self.ws.store.get_deployment(self.deployment)
        spec = DeploymentSpec.from_dict(deployment.spec)
        failures = self.pool.ensure(spec.split().versions)
        if failures:
            # Keep serving what works; say why, and do not retry this revision.
            self.health.load_failures = failures
            self.health.failed_revision = deployment.revision
            for failure in failures:
                log.error("deployment %s revision %d: %s failed to load, still serving "
                          "revision %d: %s", self.deployment, deployment.revision,
                          failure.version, self.serving.revision, failure.reason)
            return
        self.flush_stats()  # figures counted under the old routes belong to them
        self.serving = snapshot(deployment.revision, spec, self.pool)
        self.health.load_failures, self.health.failed_revision = [], None
        self.pool.retain(spec.split().versions)
        log.info("deployment %s now at revision %d", self.deployment, deployment.revision)

    def flush_stats(self) -> None:
        rows = self.stats.drain()
        if rows and self.follow:
            self.ws.store.add_deployment_stats(self.deployment, self.worker, rows)

    def _guard(self) -> None:
        serving = self.serving
        spec = serving.spec
        canary_route = spec.canary
        if canary_route is None or spec.canary_since is None:
            return
        figures = self.ws.store.deployment_stats(self.deployment, spec.canary_since)
        stable = next((s for s in figures if s.role == "stable"
                       and s.version == spec.stable.version), None)
        canary = next((s for s in figures if s.role == "canary"
                       and s.version == canary_route.version), None)
        if canary is None:
            return
        verdict = breach(stable, canary, spec.limits)
        if verdict is None:
            return
        reason, numbers = verdict
        from keel.serving.rollout import rolled_back

        deployment = self.ws.store.get_deployment(self.deployment)
        if deployment.revision != serving.revision:
            return  # changed meanwhile; judge the new spec next time
        target = rolled_back(spec, deployment, self.ws)
        try:
            self.ws.store.update_deployment(self.deployment, target.to_dict(),
                                            deployment.revision, "auto-rollback",
                                            ROLLBACK_USER, reason, numbers)
        except Conflict:
            return  # another worker rolled it back first
        log.warning("deployment %s: canary %s rolled back: %s", self.deployment,
                    canary_route.version, reason)
        self._follow()

    def close(self) -> None:
        """Stop housekeeping, answer queued shadows, flush figures and the log."""
        self._stop.set()
        self._thread.join(10)
        self.shadow.close()
        try:
            self.flush_stats()
        except Exception as exc:  # shutting down: say it and go on
            log.warning("could not flush the last figures: %s", exc)
        self.log.close()

    def describe(self) -> dict[str, Any]:
        serving = self.serving
        return {"deployment": self.deployment, "revision": serving.revision,
                "routes": [r.to_dict() for r in serving.spec.routes],
                "shadows": [r.to_dict() for r in serving.spec.shadows],
                "loaded": self.pool.loaded,
                "load_failures": [f.__dict__ for f in self.health.load_failures],
                "last_error": self.health.last_error,
                "inference_log": self.log.counters.to_dict(),
                "shadow_dropped": self.shadow.dropped}


def snapshot(revision: int, spec: DeploymentSpec, pool: ModelPool) -> Serving:
    split = spec.split()
    models = pool.models(split.versions)
    predictors = {v: pool.predictor(v) for v in models}
    shadows = tuple((r, predictors[r.version]) for r in spec.shadows)
    batchers = {v: MicroBatcher(p) for v, p in predictors.items()}
    return Serving(revision, spec, split, models, predictors, batchers, shadows,
                   count_predictions=spec.limits.max_prediction_shift is not None)


def version_label(model: PackagedModel, ref: Any) -> str:
    """``churn/2`` for a registry model, else the reference it was loaded by."""
    uri = model.uri
    if "(" in uri and uri.endswith(")"):
        return uri[uri.rindex("(") + 1:-1]
    if ref.kind == "registry" and ref.version:
        return f"{ref.name}/{ref.version}"
    return uri or str(ref)
