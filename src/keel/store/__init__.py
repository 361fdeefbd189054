"""Metadata storage: the schema, migrations, engines and the Store seam."""

from keel.store.protocol import Store
from keel.store.sql_store import SqlStore, open_store

__all__ = ["SqlStore", "Store", "open_store"]
