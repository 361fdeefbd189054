"""Writing a model package folder."""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keel.blobs.digest import hash_file
from keel.errors import InvalidInput
from keel.packaging.flavors import flavor_for, flavor_named
from keel.packaging.manifest import MANIFEST_FILE, PackageFile, PackageManifest
from keel.packaging.signature import Signature

EXAMPLE_FILE = "input_example.json"


def save_package(model: Any, folder: str | Path, input_example: Any = None,
                 signature: Signature | None = None, flavor: str | None = None,
                 metrics: dict[str, float] | None = None,
                 lineage: dict[str, Any] | None = None) -> PackageManifest:
    """Write ``model`` as a package into ``folder`` (created; must be empty).

    The signature comes from ``input_example`` unless given. Without either,
    predictions are not checked, so an example is strongly advised.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise InvalidInput(f"{folder} is not empty", hint="save a package into a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    kind = flavor_named(flavor) if flavor else flavor_for(model)
    if signature is None and input_example is not None:
        signature = Signature.infer(input_example)
    if signature is None:
        raise InvalidInput("a model package needs an input signature",
                           hint="pass input_example=X[:5] (or signature=Signature.infer(X))")
    model_file = kind.save(model, folder)
    example_file = None
    if input_example is not None:
        write_example(input_example, folder / EXAMPLE_FILE)
        example_file = EXAMPLE_FILE
    files = {p.relative_to(folder).as_posix(): PackageFile(hash_file(p), p.stat().st_size)
             for p in sorted(folder.rglob("*")) if p.is_file()}
    described = kind.describe(model)
    manifest = PackageManifest(
        flavor=kind.NAME, model_file=model_file, signature=signature.to_dict(), files=files,
        task=described["task"], classes=described["classes"], input_example=example_file,
        requirements=requirements(kind.requirements()),
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        lineage=lineage or {}, created_at=time.time_ns() // 1_000_000,
        keel_version=_version("keel"))
    (folder / MANIFEST_FILE).write_text(manifest.to_yaml())
    return manifest


def requirements(names: list[str]) -> dict[str, str]:
    """Installed versions of the packages a flavor needs, plus Python's."""
    found = {"python": platform.python_version()}
    for name in names:
        version = _version(name)
        if version:
            found[name] = version
    return found


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def write_example(example: Any, path: Path) -> None:
    """Keep an input example as JSON (a table keeps column names and dtypes)."""
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, dict) or (isinstance(example, list) and example \
            and isinstance(example[0], dict)):
        example = pd.DataFrame(example)
    if isinstance(example, pd.DataFrame):
        body = {"kind": "table", "dtypes": {str(k): str(v) for k, v in example.dtypes.items()},
                "data": json.loads(example.to_json(orient="split", index=False))}
    else:
        array = np.asarray(example)
        body = {"kind": "array", "dtype": str(array.dtype), "data": array.tolist()}
    path.write_text(json.dumps(body))


def read_example(path: Path) -> pd.DataFrame | np.ndarray:
    """An input example written by :func:`write_example`."""
    body = json.loads(path.read_text())
    if body["kind"] == "table":
        split = body["data"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        return frame.astype(body["dtypes"])
    return np.asarray(body["data"], dtype=body["dtype"])
