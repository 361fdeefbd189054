"""Table profiles: exact statistics, streaming reads, and which columns moved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.data.profile import TableProfile, profile_file, profile_table
from keel.data.profile_diff import compare_profiles
from keel.errors import InvalidInput


def frame(rows: int = 5000, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100 + shift, 15, rows)
    amount[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame({"id": np.arange(rows), "amount": amount,
                         "country": rng.choice(["DE", "FR", "US"], rows, p=[0.5, 0.3, 0.2])})


def test_numeric_statistics_match_numpy(tmp_path: Path) -> None:
    data = frame()
    data.to_csv(tmp_path / "t.csv", index=False)
    profile = profile_file(tmp_path / "t.csv")
    assert profile is not None and profile.rows == 5000
    amount = profile.column("amount")
    values = data["amount"].dropna().to_numpy()
    assert amount.nulls == data["amount"].isna().sum()
    assert amount.null_fraction == pytest.approx(data["amount"].isna().mean())
    assert amount.mean == pytest.approx(values.mean())
    assert amount.std == pytest.approx(values.std(ddof=1))
    assert (amount.min, amount.max) == (pytest.approx(values.min()), pytest.approx(values.max()))
    assert amount.quantiles["p50"] == pytest.approx(np.median(values))
    assert amount.histogram is not None and sum(amount.histogram.counts) == len(values)


def test_categorical_top_values(tmp_path: Path) -> None:
    profile = profile_table(frame())
    country = profile.column("country")
    assert country.kind == "categorical" and country.distinct == 3
    assert [v for v, _ in country.top] == ["DE", "FR", "US"]
    assert sum(n for _, n in country.top) == 5000


def test_parquet_is_streamed_in_batches(tmp_path: Path) -> None:
    rows = 1_000_000
    table = pa.table({"x": np.random.default_rng(0).random(rows), "k": ["a"] * rows})
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=100_000)
    profile = profile_file(tmp_path / "big.parquet")
    assert profile is not None and profile.rows == rows
    assert profile.column("x").mean == pytest.approx(0.5, abs=0.01)
    assert profile.column("x").histogram is not None


def test_shifted_column_moves_and_resample_does_not(tmp_path: Path) -> None:
    base = profile_table(frame(seed=0))
    same = compare_profiles(base, profile_table(frame(seed=1)))
    assert same.moved_columns == []
    shifted = compare_profiles(base, profile_table(frame(shift=30, seed=1)))
    assert shifted.moved_columns == ["amount"]
    change = next(c for c in shifted.columns if c.name == "amount")
    assert change.score_name == "psi" and change.score is not None and change.score > 0.2


def test_changed_category_mix_and_nulls_move() -> None:
    old = frame()
    new = old.copy()
    new["country"] = np.where(np.arange(len(new)) % 2 == 0, "US", new["country"])
    new.loc[new.index[:1000], "id"] = None
    diff = compare_profiles(profile_table(old), profile_table(new))
    assert set(diff.moved_columns) == {"country", "id"}


def test_schema_changes_are_reported() -> None:
    old = frame()
    new = old.drop(columns="country").assign(extra=1.0, id=old["id"].astype(float))
    diff = compare_profiles(profile_table(old), profile_table(new))
    assert diff.added_columns == ("extra",) and diff.removed_columns == ("country",)
    assert diff.type_changes == {"id": ("int64", "double")}


def test_profile_round_trips_through_json() -> None:
    data = frame()
    data.loc[0, "amount"] = np.inf
    profile = profile_table(data)
    restored = TableProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert restored.rows == profile.rows
    assert restored.column("country").top == profile.column("country").top
    assert restored.column("amount").histogram is not None


def test_non_tables_and_broken_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert profile_file(tmp_path / "notes.txt") is None
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(InvalidInput, match=r"bad\.csv"):
        profile_file(tmp_path / "bad.csv")
