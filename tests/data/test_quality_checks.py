"""Quality expectations: each check passes and fails as declared, with examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data.checks import CheckReport, Expectations, validate, validate_file
from keel.errors import InvalidInput


@pytest.fixture
def table() -> pd.DataFrame:
    amount = np.arange(10, dtype=float) * 10
    amount[[3, 7]] = np.nan
    return pd.DataFrame({"id": [0, 1, 2, 3, 4, 5, 6, 7, 8, 8],
                         "amount": amount,
                         "country": ["DE", "FR", "US", "DE", "XX", "FR", "US", "DE", "FR", "YY"]})


def result(report: CheckReport, prefix: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.results if r.check.startswith(prefix))


def test_each_check_fails_on_the_right_rows(table: pd.DataFrame) -> None:
    expect = Expectations(not_null=("amount",), unique=("id",),
                          ranges={"amount": (0.0, 50.0)},
                          allowed={"country": ("DE", "FR", "US")}, rows=(1, 5))
    report = validate(table, expect, "t.csv")
    assert not report.passed and len(report.failures) == 5
    nulls = result(report, "not_null")
    assert nulls.failing == 2 and [e["row"] for e in nulls.examples] == [3, 7]
    assert [e["row"] for e in result(report, "unique").examples] == [8, 9]
    out_of_range = result(report, "range")
    assert out_of_range.failing == 3 and out_of_range.examples[0] == {"row": 6, "amount": 60.0}
    assert [e["country"] for e in result(report, "allowed").examples] == ["XX", "YY"]
    assert "10 rows" in result(report, "rows").message


def test_passing_checks(table: pd.DataFrame) -> None:
    expect = Expectations(columns={"id": "int", "amount": "number", "country": "string"},
                          not_null=("id",), ranges={"amount": (0.0, None)}, rows=(5, None))
    assert validate(table, expect).passed


def test_examples_are_capped_but_failing_counts_all() -> None:
    data = pd.DataFrame({"x": [None] * 20})
    res = validate(data, Expectations(not_null=("x",))).results[0]
    assert res.failing == 20 and len(res.examples) == 5


def test_types_and_missing_columns(table: pd.DataFrame) -> None:
    report = validate(table, Expectations(columns={"amount": "int", "id": "number",
                                                   "gone": "string"}))
    assert not result(report, "type(amount)").passed
    assert result(report, "type(id)").passed
    assert result(report, "type(gone)").message == "column 'gone' is missing"


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_files_are_validated(table: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t.{suffix}"
    table.to_csv(path, index=False) if suffix == "csv" else table.to_parquet(path)
    report = validate_file(path, Expectations(not_null=("amount",)))
    assert report.source == path.name and report.failures[0].failing == 2


def test_reports_survive_json_with_nan(table: pd.DataFrame) -> None:
    report = validate(table, Expectations(unique=("id",), ranges={"amount": (None, 5.0)}))
    text = json.dumps(report.to_dict())
    assert CheckReport.from_dict(json.loads(text)) == report


def test_from_dict_parses_keel_toml_tables() -> None:
    expect = Expectations.from_dict({"columns": {"id": "int"}, "not_null": ["id"],
                                     "ranges": {"amount": [0, "inf"]},
                                     "allowed": {"c": ["a"]}, "rows": [1, 10]})
    assert expect.ranges == {"amount": (0.0, None)} and expect.rows == (1, 10)
    assert Expectations.from_dict(expect.to_dict()) == expect


@pytest.mark.parametrize(("bad", "message"), [
    ({"nullable": ["x"]}, "unknown check 'nullable'"),
    ({"columns": {"x": "integer"}}, "type 'integer' of 'x' is unknown"),
    ({"ranges": {"x": [5, 1]}}, "min 5.0 is above max 1.0"),
    ({"ranges": {"x": 5}}, r"checks.ranges.x must be \[min, max\]"),
    ({"not_null": "x"}, "checks.not_null must be a list"),
    ({"rows": [1]}, "checks.rows must be"),
    ({"allowed": {"c": []}}, "checks.allowed.c must be a non-empty list"),
])
def test_malformed_declarations_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Expectations.from_dict(bad)
