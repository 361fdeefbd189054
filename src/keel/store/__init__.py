"""Metadata storage: the schema, migrations, engines and the Store seam.

``SqlStore`` and ``open_store`` load SQLAlchemy, so they are imported on first
use: code that only names the ``Store`` protocol stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel.store.protocol import Store

if TYPE_CHECKING:
    from keel.store.sql_store import SqlStore, open_store


def __getattr__(name: str) -> Any:
    if name in ("SqlStore", "open_store"):
        return getattr(importlib.import_module("keel.store.sql_store"), name)
    raise AttributeError(f"module 'keel.store' has no attribute {name!r}")


__all__ = ["SqlStore", "Store", "open_store"]
