"""Models the serving tests deploy. Python-flavor models travel by value (cloudpickle),
so a server loads them with trust=True."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np


class Flaky:
    """Answers like a threshold rule, but raises on rows with ``f0`` above ``limit``."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def predict(self, frame: Any) -> np.ndarray:
        if (frame["f0"] > self.limit).any():
            raise RuntimeError(f"flaky model: f0 above {self.limit}")
        return (frame["f0"] + frame["f1"] > 0).astype(int).to_numpy()


class Gated:
    """Waits until the file ``gate`` exists (at most a minute), then fails: a shadow
    that is both as slow and as broken as a model can be."""

    def __init__(self, gate: str) -> None:
        self.gate = gate

    def predict(self, frame: Any) -> np.ndarray:
        deadline = time.monotonic() + 60
        while not os.path.exists(self.gate) and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("this shadow fails on every request")


class Constant:
    """Predicts ``value`` for every row."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, frame: Any) -> np.ndarray:
        return np.full(len(frame), self.value)
