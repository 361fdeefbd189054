"""Garbage collection: purge what was deleted long enough ago, then remove the
blobs nothing refers to (``keel gc``).

>>> keel.gc.collect(ws, older_than_s=30 * 86400, dry_run=True).bytes
"""

from keel.gc.collect import GcReport, collect
from keel.gc.live import LiveSet, live_digests

__all__ = ["GcReport", "LiveSet", "collect", "live_digests"]
