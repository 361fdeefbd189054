"""Prometheus metrics of a serving process: requests, errors and latency per version.

Each app gets its own registry (no process-global metrics). With several
workers, ``PROMETHEUS_MULTIPROC_DIR`` is set before they start and
``/metrics`` adds up every worker's files.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)


class ServingMetrics:
    """The counters and histogram one server process updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("keel_requests", "Prediction requests answered",
                                ["deployment", "version", "role", "status"],
                                registry=self.registry)
        self.errors = Counter("keel_errors", "Prediction requests that failed in the model",
                              ["deployment", "version", "role"], registry=self.registry)
        self.latency = Histogram("keel_request_latency_seconds",
                                 "Time from request to answer, model included",
                                 ["deployment", "version", "role"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.log_dropped = Counter("keel_inference_log_dropped",
                                   "Rows the inference log could not keep",
                                   ["deployment"], registry=self.registry)
        self.shadow_dropped = Counter("keel_shadow_dropped",
                                      "Requests not mirrored because the shadow queue was full",
                                      ["deployment"], registry=self.registry)

    def render(self) -> bytes:
        """The text exposition format, summed over workers in multi-process mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
