"""Durations as people write them on the command line: ``90s``, ``10m``, ``1h``, ``30d``.

Used by retention (``keel gc --older-than 30d``), budgets, windows, token
expiry. A leaf: it imports nothing from keel but errors.
"""

from __future__ import annotations

import re

from keel.errors import InvalidInput

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(text: str | int | float, what: str = "duration") -> float:
    """Seconds in ``text``: a number with a unit (``30d``), several (``1h30m``), or
    a bare number of seconds. Negative or malformed durations are refused."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", raw):
            seconds = float(raw)
        else:
            parts = _DURATION.findall(raw)
            if not raw or "".join(f"{n}{u}" for n, u in parts) != raw.replace(" ", ""):
                raise InvalidInput(f"bad {what} {text!r}",
                                   hint="write a number and a unit: 90s, 10m, 1h, 30d, 2w "
                                        "(or several: 1h30m)")
            seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if seconds < 0:
        raise InvalidInput(f"{what} {text!r} is negative")
    return seconds


def format_duration(seconds: float) -> str:
    """``93784`` -> ``1d2h3m``: the largest units, for messages."""
    if seconds < 60:
        return f"{seconds:g}s"
    out, rest = [], int(seconds)
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(rest, UNITS[unit])
        if count:
            out.append(f"{count}{unit}")
    return "".join(out[:2])
