"""Stopping a run early: ``--abort-if`` rules, ``--budget`` and the median rule.

Rules (parsed before anything runs; a rule that does not parse is an error)::

    val_loss not improved for 5 steps       lower is better for losses and errors,
    val_acc not improved for 3 steps        higher for everything else
    val_loss not decreased for 5 steps      (or say which way)
    metrics.acc < 0.6 after step 100        a threshold, checked from that step on
    loss > 10                               ... or from the first step
    loss is nan                             a diverged run

A rule watches the run's metric points as they are logged (a watcher on the
run: no polling, no thread). When it fires it raises
:class:`~keel.errors.RunAborted` from the logging call, with the rule and the
figures; the run ends KILLED with that reason and keeps every point logged.
A budget also fires from a timer, for code that stops logging: it sends SIGINT
to the main thread, and the run ends KILLED with the budget as its reason.
"""

from __future__ import annotations

import math
import operator
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keel.durations import format_duration
from keel.errors import InvalidInput, RunAborted

_PATIENCE = re.compile(r"^(?:metrics\.)?([\w.\-/]+)\s+not\s+(improved|decreased|increased)"
                       r"\s+for\s+(\d+)\s+steps?$", re.IGNORECASE)
_THRESHOLD = re.compile(r"^(?:metrics\.)?([\w.\-/]+)\s*(<=|>=|<|>|==|!=)\s*"
                        r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"
                        r"(?:\s+after\s+step\s+(\d+))?$", re.IGNORECASE)
_NAN = re.compile(r"^(?:metrics\.)?([\w.\-/]+)\s+is\s+nan$", re.IGNORECASE)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}
_LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "perplexity")


@dataclass
class AbortRule:
    """One parsed ``--abort-if`` rule; watches one metric of one run."""

    text: str
    metric: str
    kind: str                      # "patience", "threshold" or "nan"
    op: str = ""
    threshold: float = 0.0
    after_step: int = 0
    patience: int = 0
    lower_is_better: bool = False
    _best: float | None = field(default=None, repr=False)
    _best_step: int = field(default=0, repr=False)

    def on_metric(self, run: Any, key: str, value: float, step: int) -> None:
        if key != self.metric:
            return
        reason = self._check(value, step)
        if reason:
            raise RunAborted(f"aborted by rule {self.text!r}: {reason}",
                             hint="the metrics logged so far are kept; see `keel runs show`")

    def _check(self, value: float, step: int) -> str:
        if self.kind == "nan":
            return f"{self.metric} = {value} at step {step}" if math.isnan(value) else ""
        if self.kind == "threshold":
            if step >= self.after_step and _OPS[self.op](value, self.threshold):
                return f"{self.metric} = {value:.6g} at step {step} ({self.op} {self.threshold:g})"
            return ""
        better = self._best is None or (value < self._best if self.lower_is_better
                                        else value > self._best)
        if better and not math.isnan(value):
            self._best, self._best_step = value, step
            return ""
        if step - self._best_step >= self.patience:
            return (f"{self.metric} best {self._best:.6g} at step {self._best_step}, "
                    f"not improved in {step - self._best_step} steps (now {value:.6g})")
        return ""


def parse_rule(text: str) -> AbortRule:
    """An :class:`AbortRule` from its text; :class:`InvalidInput` naming the rule."""
    clean = " ".join(text.strip().split())
    if match := _PATIENCE.match(clean):
        metric, way, steps = match.group(1), match.group(2).lower(), int(match.group(3))
        if steps < 1:
            raise InvalidInput(f"rule {text!r}: the number of steps must be at least 1")
        lower = way == "decreased" or (way == "improved" and _lower_is_better(metric))
        return AbortRule(clean, metric, "patience", patience=steps, lower_is_better=lower)
    if match := _THRESHOLD.match(clean):
        metric, op, number, after = match.groups()
        return AbortRule(clean, metric, "threshold", op=op, threshold=float(number),
                         after_step=int(after or 0))
    if match := _NAN.match(clean):
        return AbortRule(clean, match.group(1), "nan")
    raise InvalidInput(f"cannot parse the rule {text!r}",
                       hint="write e.g. 'val_loss not improved for 5 steps', "
                            "'metrics.acc < 0.6 after step 100' or 'loss is nan'")


def _lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return any(word in name for word in _LOWER_IS_BETTER)


class Budget:
    """Stops a run after ``seconds`` of wall time: checked whenever it logs, and by a
    timer that interrupts the main thread for code that stops logging."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = 0.0
        self._timer: threading.Timer | None = None
        self.fired = False

    def start(self, run: Any) -> None:
        self._deadline = time.monotonic() + self.seconds
        if threading.current_thread() is threading.main_thread():
            self._timer = threading.Timer(self.seconds, self._expire, args=(run,))
            self._timer.daemon = True
            self._timer.start()

    def stop(self, run: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()

    @property
    def reason(self) -> str:
        return f"aborted by --budget {format_duration(self.seconds)}: the time ran out"

    def on_metric(self, run: Any, key: str, value: float, step: int) -> None:
        if time.monotonic() >= self._deadline:
            raise RunAborted(self.reason, hint="the metrics logged so far are kept")

    def _expire(self, run: Any) -> None:
        if not run.ended:
            self.fired = True
            run.abort_reason = self.reason  # the KeyboardInterrupt's reason, once it lands
            # A real SIGINT to the main thread: unlike _thread.interrupt_main, it
            # also wakes a blocking call (a sleep, a read) instead of waiting for it.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


class MedianRule:
    """Early stopping for sweeps: after ``warmup`` steps, stop a trial whose
    ``metric`` is worse than the median of what the other trials reached at the
    same step (read from the store, as they log)."""

    def __init__(self, metric: str, mode: str, sweep_run_id: str, warmup: int = 3) -> None:
        self.metric, self.mode, self.sweep, self.warmup = metric, mode, sweep_run_id, warmup

    def on_metric(self, run: Any, key: str, value: float, step: int) -> None:
        if key != self.metric or step < self.warmup:
            return
        others = self._values_at(run, step)
        if len(others) < 2:
            return
        others.sort()
        middle = len(others) // 2
        median = others[middle] if len(others) % 2 else (others[middle - 1] + others[middle]) / 2
        worse = value < median if self.mode == "max" else value > median
        if worse:
            raise RunAborted(f"stopped early by the median rule: {self.metric} = {value:.6g} "
                             f"at step {step}, median of {len(others)} other trials "
                             f"{median:.6g}")

    def _values_at(self, run: Any, step: int) -> list[float]:
        store = run.workspace.store
        values = []
        for other in store.child_runs(self.sweep):
            if other == run.id:
                continue
            points = [p for p in store.metric_history(other, self.metric) if p.step == step]
            if points and not math.isnan(points[-1].value):
                values.append(points[-1].value)
        return values
