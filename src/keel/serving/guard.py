"""The canary's guard: is the canary worse than the stable version, by the limits?

A pure function of the two versions' figures (summed over workers since the
canary started) and the limits, so every rule is testable without a server.
Judged only once the canary has ``min_requests`` requests:

- its error rate exceeds the stable version's by more than ``max_error_rate``;
- its p99 latency exceeds ``max_p99_ratio`` times the stable p99, plus 5 ms of
  slack (histogram buckets are 25% wide; sub-millisecond p99s are noise). On
  few requests a p99 is the slowest one or two, a single pause of the
  machine, so below 1,000 canary requests the same test uses p95 (below 300,
  p90) of both versions;
- optionally, its predictions are distributed differently: the total
  variation distance between the two prediction histograms exceeds
  ``max_prediction_shift``.
"""

from __future__ import annotations

from typing import Any

from keel.entities import VersionStats
from keel.serving.spec import CanaryLimits
from keel.serving.stats import percentile, summarise

P99_SLACK_MS = 5.0


def breach(stable: VersionStats | None, canary: VersionStats, limits: CanaryLimits
           ) -> tuple[str, dict[str, Any]] | None:
    """``(reason, figures)`` when the canary breaks a limit, else None."""
    if canary.requests < limits.min_requests:
        return None
    figures: dict[str, Any] = {"canary": summarise(canary),
                               "stable": summarise(stable) if stable else None,
                               "limits": limits.to_dict()}
    stable_rate = stable.errors / stable.requests if stable and stable.requests else 0.0
    canary_rate = canary.errors / canary.requests
    if canary_rate > stable_rate + limits.max_error_rate:
        return (f"canary error rate {canary_rate:.2%} over {canary.requests} requests exceeds "
                f"the stable version's {stable_rate:.2%} by more than "
                f"{limits.max_error_rate:.2%}", figures)
    q = latency_quantile(canary.requests)
    canary_q = percentile(canary.latency, q)
    stable_q = percentile(stable.latency, q) if stable else None
    if canary_q is not None and stable_q is not None and \
            canary_q > limits.max_p99_ratio * stable_q + P99_SLACK_MS:
        name = f"p{round(q * 100)}"
        return (f"canary {name} latency {canary_q:.1f} ms exceeds {limits.max_p99_ratio:g} x "
                f"the stable version's {stable_q:.1f} ms", figures)
    if limits.max_prediction_shift is not None and stable is not None:
        shift = total_variation(stable.predictions, canary.predictions)
        figures["prediction_shift"] = shift
        if shift > limits.max_prediction_shift:
            return (f"canary predictions are distributed differently: total variation "
                    f"{shift:.3f} > {limits.max_prediction_shift:g}", figures)
    return None


def latency_quantile(requests: int) -> float:
    """The latency quantile a sample of ``requests`` can judge without one outlier
    deciding it (see the module docstring)."""
    if requests >= 1000:
        return 0.99
    return 0.95 if requests >= 300 else 0.9


def total_variation(a: dict[str, int], b: dict[str, int]) -> float:
    """Half the L1 distance between two count histograms (0: same, 1: disjoint)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    if not total_a or not total_b:
        return 0.0
    keys = a.keys() | b.keys()
    return 0.5 * sum(abs(a.get(k, 0) / total_a - b.get(k, 0) / total_b) for k in keys)
