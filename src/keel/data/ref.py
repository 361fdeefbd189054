"""Dataset references: ``transactions``, ``transactions@2``, ``transactions@latest``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


@dataclass(frozen=True)
class DatasetRef:
    """A dataset name and a version number (None means the latest)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else 'latest'}"


def check_name(name: str) -> str:
    """A dataset name: letters, digits, ``_ . -``; no path separators."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidInput(f"bad dataset name {name!r}",
                           hint="use letters, digits, '_', '.', '-' (no '/' or '\\'), "
                                "at most 128 characters, e.g. transactions-eu")
    return name


def parse_ref(text: str) -> DatasetRef:
    """Parse ``name``, ``name@N`` or ``name@latest``."""
    name, sep, version = text.partition("@")
    check_name(name)
    if not sep or version == "latest":
        return DatasetRef(name)
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(f"bad dataset version in {text!r}",
                           hint="write NAME@1, NAME@2, ... or NAME@latest")
    return DatasetRef(name, int(version))
