"""Compare two table profiles: schema, row count, and which distributions moved."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from keel.data.profile import ColumnProfile, Histogram, TableProfile, _json_safe

# Conventional thresholds: PSI >= 0.2 is a significant population shift in
# credit-risk practice; a total-variation distance of 0.1 moves a tenth of the
# mass between categories; 5 points more (or fewer) nulls is a data-quality shift.
PSI_MOVED = 0.2
TVD_MOVED = 0.1
NULLS_MOVED = 0.05
_EPS = 1e-4  # floor for empty bins, so PSI stays finite


@dataclass(frozen=True)
class ColumnChange:
    """How one column's statistics changed, and whether its distribution moved."""

    name: str
    kind: str
    mean_old: float | None
    mean_new: float | None
    std_old: float | None
    std_new: float | None
    null_fraction_old: float
    null_fraction_new: float
    score_name: str  # psi | tvd | ""
    score: float | None
    moved: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(_json_safe(asdict(self)))


@dataclass(frozen=True)
class ProfileDiff:
    """Differences between an old and a new profile of a table."""

    rows_old: int
    rows_new: int
    added_columns: tuple[str, ...]
    removed_columns: tuple[str, ...]
    type_changes: dict[str, tuple[str, str]]
    columns: tuple[ColumnChange, ...]

    @property
    def moved_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.moved]

    def to_dict(self) -> dict[str, Any]:
        return {"rows_old": self.rows_old, "rows_new": self.rows_new,
                "added_columns": list(self.added_columns),
                "removed_columns": list(self.removed_columns),
                "type_changes": {k: list(v) for k, v in self.type_changes.items()},
                "columns": [c.to_dict() for c in self.columns],
                "moved_columns": self.moved_columns}


def compare_profiles(old: TableProfile, new: TableProfile) -> ProfileDiff:
    """What changed from ``old`` to ``new``, column by column."""
    old_names = [c.name for c in old.columns]
    new_names = [c.name for c in new.columns]
    common = [n for n in new_names if n in old_names]
    changes = tuple(_compare_column(old.column(n), new.column(n)) for n in common)
    types = {n: (old.column(n).type, new.column(n).type) for n in common
             if old.column(n).type != new.column(n).type}
    return ProfileDiff(old.rows, new.rows, tuple(n for n in new_names if n not in old_names),
                       tuple(n for n in old_names if n not in new_names), types, changes)


def _compare_column(old: ColumnProfile, new: ColumnProfile) -> ColumnChange:
    score_name, score = "", None
    if old.kind == new.kind == "numeric" and old.histogram and new.histogram:
        score_name, score = "psi", psi(old.histogram, new.histogram)
    elif old.kind == new.kind == "categorical":
        score_name, score = "tvd", tvd(old.top, old.count - old.nulls, new.top,
                                       new.count - new.nulls)
    limit = PSI_MOVED if score_name == "psi" else TVD_MOVED
    nulls_moved = abs(new.null_fraction - old.null_fraction) >= NULLS_MOVED
    moved = nulls_moved or (score is not None and score >= limit)
    return ColumnChange(old.name, new.kind, old.mean, new.mean, old.std, new.std,
                        old.null_fraction, new.null_fraction, score_name, score, moved)


def psi(old: Histogram, new: Histogram) -> float:
    """Population stability index of ``new`` against ``old``, on old's bin edges.

    New mass is spread onto old's bins assuming values are uniform within each
    new bin; two open-ended bins catch values outside old's range.
    """
    edges = np.concatenate([[-math.inf], old.edges, [math.inf]])
    expected = np.concatenate([[0.0], np.asarray(old.counts, float), [0.0]])
    actual = np.zeros(len(expected))
    new_edges = np.asarray(new.edges, float)
    for (lo, hi), count in zip(itertools.pairwise(new_edges), new.counts, strict=True):
        if count == 0:
            continue
        for j in range(len(expected)):
            overlap = min(hi, edges[j + 1]) - max(lo, edges[j])
            if hi == lo:  # a single-valued bin: all its mass where the value falls
                share = 1.0 if edges[j] <= lo < edges[j + 1] else 0.0
            else:
                share = max(overlap, 0.0) / (hi - lo)
            actual[j] += count * share
    p = np.maximum(expected / max(expected.sum(), 1), _EPS)
    q = np.maximum(actual / max(actual.sum(), 1), _EPS)
    return float(((q - p) * np.log(q / p)).sum())


def tvd(old_top: tuple[tuple[str, int], ...], old_n: int,
        new_top: tuple[tuple[str, int], ...], new_n: int) -> float:
    """Total-variation distance between two top-k frequency tables (rest = 'other')."""
    if not old_n or not new_n:
        return 0.0
    p = {k: v / old_n for k, v in old_top}
    q = {k: v / new_n for k, v in new_top}
    keys = set(p) | set(q)
    distance = sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)
    distance += abs((1 - sum(p.values())) - (1 - sum(q.values())))
    return distance / 2
