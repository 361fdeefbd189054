"""ONNX models, run with onnxruntime (``pip install 'keel[onnx]'``). An ONNX file
is a graph of operators, never code, so it loads without ``trust``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keel.errors import InvalidInput

NAME = "onnx"
MODEL_FILE = "model.onnx"


def matches(model: Any) -> bool:
    return type(model).__module__.startswith("onnx") and hasattr(model, "SerializeToString")


def save(model: Any, folder: Path) -> str:
    (folder / MODEL_FILE).write_bytes(model.SerializeToString())
    return MODEL_FILE


def describe(model: Any) -> dict[str, Any]:
    return {"task": None, "classes": None}


def load(path: Path, trust: bool = False, trusted_types: tuple[str, ...] = ()) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise InvalidInput("this package holds an ONNX model and onnxruntime is not installed",
                           hint="pip install 'keel[onnx]'") from exc
    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidInput(f"{path.name} is not a valid ONNX model: {exc}",
                           hint="the package is damaged; log the model again") from exc


def _feed(session: Any, data: Any) -> dict[str, Any]:
    inputs = session.get_inputs()
    array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
    if len(inputs) == 1:
        want = np.float32 if "float" in inputs[0].type else None
        return {inputs[0].name: array.astype(want) if want else array}
    # One graph input per column (converters do this for mixed-type tables).
    return {i.name: np.asarray(data[i.name]).reshape(-1, 1) for i in inputs}


def predict(raw: Any, data: Any) -> Any:
    outputs = raw.run(None, _feed(raw, data))
    return np.asarray(outputs[0]).reshape(len(outputs[0]), -1).squeeze(axis=1) \
        if np.asarray(outputs[0]).ndim == 2 and np.asarray(outputs[0]).shape[1] == 1 \
        else np.asarray(outputs[0])


def predict_proba(raw: Any, data: Any) -> Any | None:
    outputs = raw.run(None, _feed(raw, data))
    if len(outputs) < 2:
        return None
    proba = outputs[1]
    if isinstance(proba, list) and proba and isinstance(proba[0], dict):
        keys = sorted(proba[0])  # skl2onnx's ZipMap: one dict of class -> probability per row
        return np.array([[row[k] for k in keys] for row in proba])
    return np.asarray(proba)


def requirements() -> list[str]:
    return ["onnxruntime", "numpy"]
