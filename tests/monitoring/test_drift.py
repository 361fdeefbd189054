"""keel.drift: known shifts are detected, same-distribution samples raise false
alarms at the configured rate, large data streams, bad input is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import keel
import keel.data
from keel.errors import InvalidInput, NotFound
from keel.workspace import Workspace


def normal(n: int, seed: int, loc: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(loc, scale, n), "y": rng.normal(0, 1, n)})


def test_result_has_one_row_per_feature_with_the_documented_columns() -> None:
    result = keel.drift(normal(2000, 1), normal(2000, 2, loc=1.0))
    frame = result.to_frame()
    assert list(frame["feature"]) == ["x", "y"]
    for column in ("feature", "method", "statistic", "p_value", "threshold", "drifted"):
        assert column in frame.columns
    assert frame.set_index("feature").loc["x", "drifted"]
    assert not frame.set_index("feature").loc["y", "drifted"]
    assert result.share_drifted == 0.5
    assert result.drifted  # half the features drifted: the default dataset threshold


def test_ks_matches_scipy_on_large_and_small_samples() -> None:
    for n in (300, 50_000):
        ref, cur = normal(n, 3), normal(n, 4, loc=0.05)
        found = keel.drift(ref, cur).feature("x")
        expected = stats.ks_2samp(ref["x"], cur["x"])
        assert found.method == "ks"
        assert found.statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert found.p_value == pytest.approx(expected.pvalue, rel=0.05, abs=1e-6)


def test_ks_statistic_is_exact_across_merge_blocks_and_ties() -> None:
    """The statistic merges a block of values at a time; blocks end between
    distinct values, so ties that straddle a block are stepped over whole."""
    from keel.monitoring.statistics import ks_statistic

    rng = np.random.default_rng(21)
    for n, m, digits in [(7, 5, None), (3_000, 2_000, 1), (3_000, 2_000, 0),
                         (2_500, 40, None), (40, 2_500, 2)]:
        ref, cur = rng.normal(size=n), rng.normal(0.1, 1.0, m)
        if digits is not None:  # heavy ties
            ref, cur = np.round(ref, digits), np.round(cur, digits)
        ref.sort()
        cur.sort()
        expected = stats.ks_2samp(ref, cur).statistic
        for block in (1, 3, 64, 1_000_000):
            assert ks_statistic(ref, cur, block) == pytest.approx(expected, abs=1e-12), \
                (n, m, digits, block)


def test_parquet_files_read_a_column_at_a_time_give_the_dataframe_result(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"a": rng.normal(size=5_000), "b": rng.choice(["u", "v"], 5_000),
                        "c": np.where(rng.random(5_000) < 0.1, np.nan, rng.normal(size=5_000))})
    cur = pd.DataFrame({"a": rng.normal(0.2, 1, 4_000), "b": rng.choice(["u", "v", "w"], 4_000),
                        "c": rng.normal(size=4_000)})
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    from_files = keel.drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    in_memory = keel.drift(ref, cur)
    assert from_files.to_dict() == in_memory.to_dict()
    assert (from_files.rows_reference, from_files.rows_current) == (5_000, 4_000)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(InvalidInput, match=r"cannot read \S*bad\.parquet: .*Parquet"):
        keel.drift(tmp_path / "bad.parquet", tmp_path / "cur.parquet")


def test_mean_shift_of_a_tenth_of_a_standard_deviation_is_detected_at_100k() -> None:
    result = keel.drift(normal(100_000, 5), normal(100_000, 6, loc=0.1))
    assert result.feature("x").drifted
    assert result.feature("x").p_value < 1e-10
    assert not result.feature("y").drifted


def test_variance_change_is_detected() -> None:
    assert keel.drift(normal(5000, 7), normal(5000, 8, scale=1.3)).feature("x").drifted


def test_new_category_is_detected_and_named() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"plan": rng.choice(["basic", "pro"], 5000)})
    cur = pd.DataFrame({"plan": rng.choice(["basic", "pro", "enterprise"], 5000)})
    found = keel.drift(ref, cur).feature("plan")
    assert found.kind == "categorical" and found.method == "chi2"
    assert found.drifted
    assert "enterprise" in found.note


def test_label_shift_is_detected() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"label": (rng.random(4000) < 0.5).astype(int)})
    cur = pd.DataFrame({"label": (rng.random(4000) < 0.6).astype(int)})
    found = keel.drift(ref, cur, categorical=["label"]).feature("label")
    assert found.kind == "categorical" and found.drifted


def test_false_alarm_rate_stays_within_the_configured_level() -> None:
    # 300 same-distribution comparisons of a numeric and a categorical feature:
    # each alarm rate must sit near alpha = 0.05 (binomial sd ~0.013 at 300).
    alarms = {"x": 0, "c": 0}
    trials = 300
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        ref = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(list("abcd"), 400)})
        cur = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(list("abcd"), 400)})
        result = keel.drift(ref, cur)
        for feature in alarms:
            alarms[feature] += result.feature(feature).drifted
    for feature, count in alarms.items():
        assert count / trials <= 0.05 + 3 * 0.0126, (feature, count)
        assert count > 0, f"{feature}: a test that never fires at alpha 0.05 is broken"


def test_distances_pick_their_own_thresholds_and_can_be_overridden() -> None:
    ref, cur = normal(20_000, 11), normal(20_000, 12, loc=0.3)
    result = keel.drift(ref, cur, methods={"x": "wasserstein", "y": "psi"})
    x, y = result.feature("x"), result.feature("y")
    assert x.method == "wasserstein" and x.p_value is None
    assert x.statistic == pytest.approx(stats.wasserstein_distance(ref.x, cur.x)
                                        / ref.x.std(ddof=0), rel=1e-9)
    assert x.drifted and not y.drifted
    relaxed = keel.drift(ref, cur, methods="wasserstein", thresholds={"x": 0.5})
    assert not relaxed.feature("x").drifted


def test_small_categorical_samples_use_a_distance_not_chi_square() -> None:
    ref = pd.DataFrame({"c": ["a", "b", "c", "a"]})
    cur = pd.DataFrame({"c": ["a", "b", "d", "d"]})
    found = keel.drift(ref, cur).feature("c")
    assert found.method == "jensenshannon"
    assert 0 < found.statistic <= 1


def test_streaming_large_parquet_agrees_with_the_in_memory_result(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    n = 300_000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n),
                        "c": rng.choice(["u", "v", "w"], n)})
    cur = pd.DataFrame({"a": rng.normal(0.02, 1, n), "b": rng.exponential(1.1, n),
                        "c": rng.choice(["u", "v", "w", "z"], n, p=[0.3, 0.3, 0.3, 0.1])})
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    exact = keel.drift(ref, cur)
    for method in (None, "wasserstein", "psi"):
        numeric = {"a": method, "b": method} if method else None
        streamed = keel.drift(tmp_path / "ref.parquet", str(tmp_path / "cur.parquet"),
                              methods=numeric, max_memory="1MB")
        exact = keel.drift(ref, cur, methods=numeric)
        for name in ("a", "b", "c"):
            s, e = streamed.feature(name), exact.feature(name)
            assert s.method == e.method and s.drifted == e.drifted
            assert s.statistic == pytest.approx(e.statistic, rel=0.03, abs=2e-3), (name, method)
    assert streamed.rows_reference == n and streamed.rows_current == n


def test_a_dataset_version_is_a_reference(tmp_path: Path) -> None:
    Workspace.open(tmp_path, create=True)
    folder = tmp_path / "data"
    folder.mkdir()
    normal(3000, 14).to_parquet(folder / "t.parquet")
    keel.data.add(folder, "transactions")
    result = keel.drift("transactions@1", normal(3000, 15, loc=0.5))
    assert result.feature("x").drifted
    assert keel.drift("transactions@latest", normal(3000, 16)).share_drifted <= 0.5


# -- bad input ------------------------------------------------------------------------


def test_empty_windows_are_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput, match="current data is empty") as caught:
        keel.drift(normal(10, 1), normal(10, 1).iloc[:0])
    assert "window" in (caught.value.hint or "")


def test_a_column_missing_from_the_current_data_is_named() -> None:
    with pytest.raises(InvalidInput, match="missing from the current data: y"):
        keel.drift(normal(100, 1), normal(100, 2)[["x"]])


def test_a_reference_with_a_different_schema_names_the_columns() -> None:
    other = normal(100, 2).rename(columns={"x": "amount", "y": "age"})
    with pytest.raises(InvalidInput) as caught:
        keel.drift(normal(100, 1), other)
    message = str(caught.value)
    assert "x" in message and "amount" in message and "age" in message
    # Comparing the columns both have is the way out the hint names.
    assert keel.drift(normal(100, 1).assign(amount=1.0), other, columns=["amount"]).features


def test_all_null_and_constant_columns_give_a_verdict_not_a_crash() -> None:
    ref = pd.DataFrame({"nulls": [np.nan] * 50, "const": [3.0] * 50, "ok": np.arange(50.0)})
    cur = pd.DataFrame({"nulls": [np.nan] * 50, "const": [3.0] * 50, "ok": np.arange(50.0)})
    result = keel.drift(ref, cur)
    assert not result.feature("nulls").drifted
    assert "null on both sides" in result.feature("nulls").note
    assert not result.feature("const").drifted
    moved = keel.drift(ref, cur.assign(const=4.0, nulls=1.0))
    assert moved.feature("const").drifted
    assert moved.feature("nulls").drifted and "null in the reference" in moved.feature(
        "nulls").note


def test_mixed_types_compare_as_categories_and_a_type_change_is_named() -> None:
    ref = pd.DataFrame({"code": [1, "1", "a", 2] * 50})
    cur = pd.DataFrame({"code": [1, "a", "a", 2] * 50})
    assert keel.drift(ref, cur).feature("code").kind == "categorical"
    with pytest.raises(InvalidInput, match=r"numeric .* in the reference"):
        keel.drift(pd.DataFrame({"n": [1.0, 2.0]}), pd.DataFrame({"n": ["a", "b"]}))


def test_unknown_methods_and_sources_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"chi2.* does not apply to numeric"):
        keel.drift(normal(50, 1), normal(50, 2), methods={"x": "chi2"})
    with pytest.raises(NotFound, match=r"reference file no-such-file\.parquet does not exist"):
        keel.drift("no-such-file.parquet", normal(50, 2))
    with pytest.raises(InvalidInput, match="memory size"):
        keel.drift(normal(50, 1), normal(50, 2), max_memory="lots")


def test_a_stored_profile_is_a_reference_without_reading_rows(tmp_path: Path) -> None:
    Workspace.open(tmp_path, create=True)
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(17)
    reference = pd.DataFrame({"x": rng.normal(size=20_000),
                              "plan": rng.choice(["basic", "pro", "team"], 20_000)})
    reference.to_parquet(folder / "t.parquet")
    keel.data.add(folder, "customers")
    same = pd.DataFrame({"x": rng.normal(size=5000),
                         "plan": rng.choice(["basic", "pro", "team"], 5000)})
    moved = pd.DataFrame({"x": rng.normal(0.3, 1, 5000),
                          "plan": rng.choice(["basic", "pro", "team"], 5000, p=[0.6, 0.2, 0.2])})
    quiet = keel.drift("profile:customers@1", same)
    assert not quiet.drifted_features
    found = keel.drift("profile:customers@1", moved)
    assert found.drifted_features == ["x", "plan"]
    exact = keel.drift("customers@1", moved)
    # Binned KS never exceeds the exact statistic and stays close to it.
    assert found.feature("x").statistic <= exact.feature("x").statistic + 1e-9
    assert found.feature("x").statistic == pytest.approx(exact.feature("x").statistic, abs=0.03)
    assert "profile" in found.feature("x").note
    profiles = keel.data.profiles("customers@1")
    assert keel.drift(next(iter(profiles.values())), moved).drifted_features == ["x", "plan"]
    with pytest.raises(InvalidInput, match="must be rows, not a profile"):
        keel.drift(moved, "profile:customers@1")
