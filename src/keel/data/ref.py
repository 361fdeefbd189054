"""Dataset references: ``transactions``, ``transactions@2``, ``transactions@latest``."""

from __future__ import annotations

from dataclasses import dataclass

from keel.errors import InvalidInput
from keel.names import check_identifier


@dataclass(frozen=True)
class DatasetRef:
    """A dataset name and a version number (None means the latest)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else 'latest'}"


def check_name(name: object) -> str:
    """A dataset name, checked by the one validator every interface uses
    (:func:`keel.names.check_identifier`): letters, digits, ``_ . -``."""
    return check_identifier(name, "dataset name", "transactions-eu")


def parse_ref(text: str) -> DatasetRef:
    """Parse ``name``, ``name@N`` or ``name@latest``."""
    if not isinstance(text, str):
        raise InvalidInput(f"a dataset reference is text such as 'transactions@2', not "
                           f"{type(text).__name__}")
    name, sep, version = text.partition("@")
    check_name(name)
    if not sep or version == "latest":
        return DatasetRef(name)
    if not version.isdigit() or not version.isascii() or int(version) < 1:
        raise InvalidInput(f"bad dataset version in {text[:80]!r}",
                           hint="write NAME@1, NAME@2, ... or NAME@latest")
    return DatasetRef(name, int(version))


def is_pinned(text: str) -> bool:
    """True if ``text`` names a version explicitly (``name@2``, ``name@latest``),
    False for a bare ``name`` (which ``status`` reads as "what is checked out here")."""
    return "@" in text
