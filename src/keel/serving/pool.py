"""The model versions a server holds in memory, loaded once each.

Loading happens off the request path (at start-up and in the runtime's
maintenance thread); a version that fails to load is reported with the
reason and never replaces what is serving.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from keel.packaging.model import PackagedModel
from keel.serving.fastpath import Predictor, fast_predictor, plain_predictor
from keel.workspace import Workspace


@dataclass(frozen=True)
class LoadFailure:
    """Why a model version could not be loaded."""

    version: str
    reason: str


class ModelPool:
    """Loaded :class:`PackagedModel` objects by version (``churn/3``)."""

    def __init__(self, ws: Workspace, trust: bool = False) -> None:
        self._ws = ws
        self._trust = trust
        self._lock = threading.Lock()
        self._models: dict[str, PackagedModel] = {}
        self._predictors: dict[str, Predictor] = {}

    def add(self, version: str, model: PackagedModel) -> None:
        """Hold an already loaded model under ``version`` (and its fastest checked predict)."""
        predictor = fast_predictor(model) or plain_predictor(model)
        with self._lock:
            self._models[version] = model
            self._predictors[version] = predictor

    def predictor(self, version: str) -> Predictor:
        with self._lock:
            return self._predictors[version]

    def ensure(self, versions: set[str]) -> list[LoadFailure]:
        """Load every version not held yet; the failures, each with its reason."""
        from keel.models.load import load_model

        failures = []
        for version in sorted(versions - self._models.keys()):
            try:
                model = load_model(f"models:/{version}", trust=self._trust, ws=self._ws)
            except Exception as exc:  # any failure must leave the current versions serving
                failures.append(LoadFailure(version, f"{type(exc).__name__}: {exc}"))
                continue
            self.add(version, model)
        return failures

    def models(self, versions: set[str]) -> dict[str, PackagedModel]:
        """The held models for ``versions`` (all must be loaded)."""
        with self._lock:
            return {v: self._models[v] for v in versions}

    def retain(self, versions: set[str]) -> None:
        """Forget versions no longer routed to (frees their memory)."""
        with self._lock:
            for version in list(self._models):
                if version not in versions:
                    del self._models[version]
                    self._predictors.pop(version, None)

    @property
    def loaded(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {v: m.signature.describe() for v, m in self._models.items()}
