"""Step outputs, stored by digest in safe formats and loaded back.

A step's return value becomes artifacts of the step's run under
``outputs/``, in a format that loads without running code:

=====================  ==================  =============================
value                  format              loaded back as
=====================  ==================  =============================
pandas DataFrame       Parquet             DataFrame
numpy array            .npy (no pickle)    ndarray
scikit-learn model     skops               the model (keel's allow-list)
JSON value             JSON                the value
dict of the above      one file per key    dict
anything else          cloudpickle         only with @keel.step(pickle=True)
=====================  ==================  =============================

The record kept in the step cache is ``{"format", "digest", "size"}`` (or
``{"format": "dict", "items": {...}}``): downstream steps' cache keys use the
digests, so a step whose output did not change leaves its downstream cached.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.tracking.run import ActiveRun

_SUFFIX = {"parquet": ".parquet", "npy": ".npy", "sklearn": ".skops", "json": ".json",
           "pickle": ".pkl"}


def store_output(run: ActiveRun, step: str, value: Any, allow_pickle: bool,
                 name: str = "return") -> dict[str, Any]:
    """Store ``value`` as artifacts of ``run``; return its record."""
    if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) \
            and not _is_json(value):
        return {"format": "dict",
                "items": {key: store_output(run, step, item, allow_pickle, f"{name}.{key}")
                          for key, item in value.items()}}
    kind, data = _encode(step, value, allow_pickle)
    artifact = run.log_bytes(data, f"outputs/{name}{_SUFFIX[kind]}")
    return {"format": kind, "digest": artifact.digest, "size": artifact.size}


def load_output(record: dict[str, Any], blobs: Any) -> Any:
    """The value a record describes, read from the blob store and verified."""
    if record["format"] == "dict":
        return {key: load_output(item, blobs) for key, item in record["items"].items()}
    data = blobs.get_bytes(record["digest"])
    return _decode(record["format"], data)


def digests_of(record: dict[str, Any]) -> list[str]:
    """Every blob digest a record names (what downstream cache keys depend on)."""
    if record["format"] == "dict":
        return [d for item in record["items"].values() for d in digests_of(item)]
    return [record["digest"]]


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _encode(step: str, value: Any, allow_pickle: bool) -> tuple[str, bytes]:
    module = type(value).__module__
    if module.startswith("pandas") and type(value).__name__ == "DataFrame":
        buffer = io.BytesIO()
        value.to_parquet(buffer, index=True)
        return "parquet", buffer.getvalue()
    if module == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return "npy", buffer.getvalue()
    if module.startswith("sklearn"):
        from keel.packaging.flavors import sklearn as flavor

        if flavor.matches(value):
            with tempfile.TemporaryDirectory(prefix="keel-step-") as folder:
                return "sklearn", (Path(folder) / flavor.save(value, Path(folder))).read_bytes()
    if _is_json(value):
        return "json", json.dumps(value, sort_keys=True).encode()
    if allow_pickle:
        import cloudpickle

        return "pickle", cloudpickle.dumps(value)
    raise InvalidInput(f"step {step!r} returned a {type(value).__name__}, which keel cannot "
                       "store without pickle",
                       hint="return a DataFrame, a numpy array, a scikit-learn model, a JSON "
                            "value or a dict of them; or opt in with "
                            "@keel.step(pickle=True)")


def _decode(kind: str, data: bytes) -> Any:
    if kind == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if kind == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "sklearn":
        from keel.packaging.flavors import sklearn as flavor

        with tempfile.TemporaryDirectory(prefix="keel-step-") as folder:
            path = Path(folder) / flavor.MODEL_FILE
            path.write_bytes(data)
            return flavor.load(path, trust=False, trusted_types=())
    if kind == "json":
        return json.loads(data)
    if kind == "pickle":
        import pickle

        # The step that wrote it opted in with pickle=True, and the bytes are
        # verified against the digest recorded when it ran.
        return pickle.loads(data)
    raise InvalidInput(f"unknown step output format {kind!r}",
                       hint="a newer keel may have written it")
