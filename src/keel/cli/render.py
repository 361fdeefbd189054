"""How the CLI shows values: times, sizes, counts and user text (escaped)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from rich.markup import escape
from rich.text import Text

from keel.names import printable


def when(ms: int | None) -> str:
    """A stored time (ms since the epoch) as ``YYYY-MM-DD HH:MM:SS`` in UTC, or ``-``."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(n: int) -> str:
    """Bytes for people: ``512 B``, ``3.2 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(n)


def number(value: float) -> str:
    """A metric value: six significant digits, NaN and inf spelled out."""
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def markup_text(value: str) -> str:
    """User text to embed in a Rich markup string: markup escaped, control
    characters shown escaped."""
    return escape(printable(value))


def user_text(value: str | None, style: str = "") -> Text:
    """Text people typed (names, messages), shown literally: no Rich markup, and
    control characters (a terminal escape sequence in a run name) shown escaped."""
    return Text(printable(value or ""), style=style)


def columns(headers: list[str], rows: list[list[str]], right: frozenset[int] = frozenset()
            ) -> str:
    """Rows aligned in columns under a header, as ``docker ps`` prints them.

    For long listings: Rich's ``Table`` spends ~1 ms a row measuring and
    wrapping cells (120 ms for ``keel runs list``'s 100 rows, more than the
    query), and a listing is read and copied, not admired. Cells are printed
    whole (ids must stay copyable); user text is escaped by the caller.
    """
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])
