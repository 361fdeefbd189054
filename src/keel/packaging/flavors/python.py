"""Any Python object with ``predict``, saved with cloudpickle. Loading it runs
code from the package, so it loads only with ``trust=True``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from keel.errors import Forbidden, InvalidInput

NAME = "python"
MODEL_FILE = "model.pkl"


def matches(model: Any) -> bool:
    return callable(getattr(model, "predict", None))


def save(model: Any, folder: Path) -> str:
    import cloudpickle

    # By value: the class travels with the package, so a fresh process that
    # cannot import the training script's module can still load it.
    module = sys.modules.get(type(model).__module__)
    by_value = module is not None and module.__name__ not in ("__main__", "builtins")
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        (folder / MODEL_FILE).write_bytes(cloudpickle.dumps(model))
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return MODEL_FILE


def describe(model: Any) -> dict[str, Any]:
    return {"task": getattr(model, "task", None), "classes": None}


def load(path: Path, trust: bool = False, trusted_types: tuple[str, ...] = ()) -> Any:
    if not trust:
        raise Forbidden(f"{path.name} is a Python pickle: loading it runs code from the package",
                        hint="load it only if you trust its author, with trust=True "
                             "(keel model ... --trust on the command line)")
    import pickle

    try:
        model = pickle.loads(path.read_bytes())  # the caller passed trust=True
    except Exception as exc:
        raise InvalidInput(f"{path.name} could not be unpickled: {exc}",
                           hint="load it where the packages it was saved with are "
                                "installed") from exc
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(f"{path.name} holds a {type(model).__name__}, which has no predict()",
                           hint="package an object with a predict(data) method")
    return model


def predict(raw: Any, data: Any) -> Any:
    return raw.predict(data)


def predict_proba(raw: Any, data: Any) -> Any | None:
    method = getattr(raw, "predict_proba", None)
    return None if method is None else method(data)


def requirements() -> list[str]:
    return ["cloudpickle"]
