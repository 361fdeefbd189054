"""A deployment's spec: its routes, shadows, sticky header, canary limits and log sampling.

Stored as JSON in the store (``deployments.spec``); every server worker
reads it, so a change needs no restart. The routes name concrete model
versions (``churn/3``): an alias is resolved when the deployment changes,
and kept as the route's label, so traffic never moves behind anyone's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from keel.errors import InvalidInput
from keel.serving.split import Route, TrafficSplit


@dataclass(frozen=True)
class CanaryLimits:
    """When a canary is rolled back automatically, relative to the stable version."""

    max_error_rate: float = 0.01      # the canary's error rate may exceed stable's by this
    max_p99_ratio: float = 2.0        # canary p99 <= ratio x stable p99 (+ 5 ms of slack)
    min_requests: int = 100           # judge only after this many canary requests
    max_prediction_shift: float | None = None   # total variation distance of predictions

    def to_dict(self) -> dict[str, Any]:
        return {"max_error_rate": self.max_error_rate, "max_p99_ratio": self.max_p99_ratio,
                "min_requests": self.min_requests,
                "max_prediction_shift": self.max_prediction_shift}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CanaryLimits:
        data = data or {}
        limits = cls(float(data.get("max_error_rate", 0.01)),
                     float(data.get("max_p99_ratio", 2.0)), int(data.get("min_requests", 100)),
                     None if data.get("max_prediction_shift") is None
                     else float(data["max_prediction_shift"]))
        limits.check()
        return limits

    def check(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise InvalidInput("--max-error-rate must be between 0 and 1")
        if self.max_p99_ratio < 1:
            raise InvalidInput("--max-p99-ratio must be at least 1")
        if self.min_requests < 1:
            raise InvalidInput("--min-requests must be at least 1")
        if self.max_prediction_shift is not None and not 0 < self.max_prediction_shift <= 1:
            raise InvalidInput("--max-prediction-shift must be in (0, 1]")


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything a server needs to route a deployment's traffic."""

    model: str                                  # the registered model (churn)
    routes: tuple[Route, ...]
    shadows: tuple[Route, ...] = ()
    sticky_header: str | None = None
    limits: CanaryLimits = field(default_factory=CanaryLimits)
    canary_since: int | None = None             # when the current canary started (ms)
    sample: float = 1.0                         # share of requests written to the log

    def split(self) -> TrafficSplit:
        return TrafficSplit(self.routes, self.shadows, self.sticky_header)

    @property
    def stable(self) -> Route:
        return next((r for r in self.routes if r.role == "stable"), self.routes[0])

    @property
    def canary(self) -> Route | None:
        return next((r for r in self.routes if r.role == "canary"), None)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "routes": [r.to_dict() for r in self.routes],
                "shadows": [r.to_dict() for r in self.shadows],
                "sticky_header": self.sticky_header, "limits": self.limits.to_dict(),
                "canary_since": self.canary_since, "sample": self.sample}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentSpec:
        return cls(str(data["model"]), tuple(Route.from_dict(r) for r in data["routes"]),
                   tuple(Route.from_dict(r) for r in data.get("shadows", [])),
                   data.get("sticky_header"), CanaryLimits.from_dict(data.get("limits")),
                   data.get("canary_since"), float(data.get("sample", 1.0)))

    def with_(self, **changes: Any) -> DeploymentSpec:
        return replace(self, **changes)
