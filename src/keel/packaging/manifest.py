"""``keel-model.yaml``: what a model package holds and where it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from keel.errors import IncompatibleVersion, InvalidInput

MANIFEST_FILE = "keel-model.yaml"
# Bump when a reader of the previous format could misread a new package.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PackageFile:
    """One file of a package: its BLAKE3 digest and size, checked on every load."""

    digest: str
    size: int


@dataclass(frozen=True)
class PackageManifest:
    """The manifest of a model package (``keel-model.yaml``)."""

    flavor: str
    model_file: str
    signature: dict[str, Any]
    files: dict[str, PackageFile]
    task: str | None = None            # "classification", "regression" or None
    classes: list[Any] | None = None   # class labels of a classifier, in predict_proba order
    input_example: str | None = None   # file holding the example (JSON, pandas "split")
    requirements: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0
    keel_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_yaml(self) -> str:
        """The manifest as YAML text (stable key order, so equal packages hash equal)."""
        data = asdict(self)
        data["files"] = {k: asdict(v) for k, v in sorted(self.files.items())}
        return yaml.safe_dump(data, sort_keys=True, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str | bytes, where: str = MANIFEST_FILE) -> PackageManifest:
        """Parse a manifest; refuse one from a newer keel or one missing fields."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{where} is not valid YAML: {exc}",
                               hint="the package is damaged; log the model again") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} does not hold a keel model manifest",
                               hint="a package folder has keel-model.yaml at its top")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise InvalidInput(f"{where} has no format_version",
                               hint="the package is damaged; log the model again")
        if version > FORMAT_VERSION:
            raise IncompatibleVersion(
                f"{where} uses model format {version}; this keel reads up to {FORMAT_VERSION}",
                hint="upgrade keel (pip install -U keel) to load this package")
        try:
            files = {k: PackageFile(**v) for k, v in (data.pop("files") or {}).items()}
            fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(files=files, **fields)
        except (TypeError, KeyError, AttributeError) as exc:
            raise InvalidInput(f"{where} is missing or mangles a field: {exc}",
                               hint="the package is damaged; log the model again") from exc
