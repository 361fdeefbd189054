"""Garbage collection: purge what was deleted long enough ago, then remove the
blobs nothing refers to (``keel gc``)."""
