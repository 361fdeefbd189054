"""A loaded model package: the model plus its manifest, with checked predictions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from keel.errors import InvalidInput
from keel.packaging.manifest import PackageManifest
from keel.packaging.signature import Signature


@dataclass
class PackagedModel:
    """A model read from a package. ``predict`` checks its input against the
    signature first, so a wrong column fails with its name, not deep in the model.

    Example: ``keel.load_model("models:/churn@champion").predict(frame)``
    """

    manifest: PackageManifest
    raw: Any                  # the underlying estimator / session / object
    flavor: ModuleType
    path: Path                # the package folder it was read from
    uri: str = ""             # how it was asked for (models:/..., runs:/...)
    package_digest: str = ""  # digest of keel-model.yaml: the package's identity

    def __repr__(self) -> str:
        return (f"<PackagedModel {self.uri or self.path} flavor={self.manifest.flavor} "
                f"inputs={self.signature.describe()}>")

    @cached_property
    def signature(self) -> Signature:
        return Signature.from_dict(self.manifest.signature)

    @property
    def task(self) -> str | None:
        return self.manifest.task

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest.classes

    def prepare(self, data: Any) -> Any:
        """``data`` checked and laid out as the model expects (see :class:`Signature`)."""
        return self.signature.enforce(data)

    def predict(self, data: Any) -> np.ndarray:
        """Predictions for every row of ``data`` (DataFrame, array, dicts)."""
        return np.asarray(self.flavor.predict(self.raw, self.prepare(data)))

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes` order (classifiers only)."""
        proba = self.flavor.predict_proba(self.raw, self.prepare(data))
        if proba is None:
            raise InvalidInput(f"{self.uri or 'this model'} gives no probabilities",
                               hint="use predict(); only classifiers have predict_proba")
        return np.asarray(proba)

    def input_example(self) -> pd.DataFrame | np.ndarray | None:
        """The example the model was logged with, if any."""
        from keel.packaging.save import read_example

        if not self.manifest.input_example:
            return None
        return read_example(self.path / self.manifest.input_example)
