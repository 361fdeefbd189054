"""Model flavors: how a kind of model is written to files and read back.

Each flavor module offers ``NAME``, ``matches(model)``, ``save(model, folder)``
(returns the model file's name), ``load(path, trust, trusted_types)`` and
``predict(raw, data)``. Loading never executes code from the package unless the
flavor says it must and the caller passed ``trust=True``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from keel.errors import InvalidInput
from keel.packaging.flavors import onnx, python, sklearn

FLAVORS: dict[str, ModuleType] = {m.NAME: m for m in (sklearn, onnx, python)}


def flavor_named(name: str) -> ModuleType:
    """The flavor module called ``name``."""
    if name not in FLAVORS:
        raise InvalidInput(f"unknown model flavor {name!r}",
                           hint=f"known flavors: {', '.join(FLAVORS)}; a newer keel may "
                                "know more")
    return FLAVORS[name]


def flavor_for(model: Any) -> ModuleType:
    """The first flavor that can package ``model`` (scikit-learn, ONNX, then Python)."""
    for flavor in FLAVORS.values():
        if flavor.matches(model):
            return flavor
    raise InvalidInput(f"keel cannot package a {type(model).__name__}",
                       hint="pass a scikit-learn estimator, an ONNX model, or an object "
                            "with a predict() method")
