"""Time as keel stores it: integer milliseconds since the epoch.

A leaf module: it imports nothing from keel.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every stored timestamp."""
    return time.time_ns() // 1_000_000
