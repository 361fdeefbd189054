"""Metadata storage: the schema, migrations, engines and the Store seam.

``SqlStore`` and ``open_store`` load SQLAlchemy, and the ``Store`` protocol
every entity, so they are imported on first use: a command that opens no
store (``keel data status`` answering from the working folder's index) does
not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.store.protocol import Store
    from keel.store.sql_store import SqlStore, open_store

_LAZY = {"SqlStore": "keel.store.sql_store", "open_store": "keel.store.sql_store",
         "Store": "keel.store.protocol"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keel.store' has no attribute {name!r}")


__all__ = ["SqlStore", "Store", "open_store"]
