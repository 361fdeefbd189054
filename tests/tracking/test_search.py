"""search_runs: MLflow's filter language, ordering and pagination, as a DataFrame."""

from __future__ import annotations

import pytest

import keel
from keel.errors import InvalidInput


@pytest.fixture
def runs(backend: str) -> dict[str, str]:
    ids = {}
    table = [("a", "rf", 0.95, 0.10, "x"), ("b", "rf", 0.85, 0.20, "y"),
             ("c", "lr", 0.91, 0.15, "x"), ("d", "svm", 0.60, 0.90, "z")]
    for name, model, acc, loss, team in table:
        with keel.start_run(experiment="churn", name=name, params={"model": model},
                            tags={"team": team}) as run:
            run.log_metrics({"acc": acc, "val loss": loss})
        ids[name] = run.id
    with pytest.raises(RuntimeError), keel.start_run(experiment="churn", name="e") as run:
        raise RuntimeError("boom")
    ids["e"] = run.id
    with keel.start_run(experiment="other", name="f", params={"model": "rf"}) as run:
        run.log_metric("acc", 0.99)
    ids["f"] = run.id
    return ids


def names(frame: object) -> list[str]:
    return list(frame["name"])  # type: ignore[index]


@pytest.mark.parametrize(("query", "expected"), [
    ("metrics.acc > 0.9", {"a", "c"}),
    ("metrics.acc > 0.9 AND params.model = 'rf'", {"a"}),
    ("params.model = 'rf' AND tags.team != 'x'", {"b"}),
    ("attributes.status = 'FAILED'", {"e"}),
    ("params.model IN ('lr', 'svm')", {"c", "d"}),
    ("params.model NOT IN ('rf')", {"c", "d"}),
    ("params.model LIKE 'r%'", {"a", "b"}),
    ("params.model ILIKE 'R%'", {"a", "b"}),
    ("params.model LIKE 'R%'", set()),
    ("metrics.`val loss` <= 0.15", {"a", "c"}),
    ("metrics.acc < 0.7 OR attributes.run_name = 'b'", {"b", "d"}),
    ("(metrics.acc >= 0.95 OR metrics.acc <= 0.6) AND tags.team = 'x'", {"a"}),
    ("", {"a", "b", "c", "d", "e"}),
])
def test_filters_select_the_right_runs(runs: dict[str, str], query: str,
                                       expected: set[str]) -> None:
    assert set(names(keel.search_runs(experiment="churn", filter=query))) == expected


def test_order_by_metric_puts_missing_values_last(runs: dict[str, str]) -> None:
    frame = keel.search_runs(experiment="churn", order_by=["metrics.acc DESC"])
    assert names(frame) == ["a", "c", "b", "d", "e"]
    frame = keel.search_runs(experiment="churn", order_by=["metrics.acc ASC"])
    assert names(frame) == ["d", "b", "c", "a", "e"]


def test_dataframe_has_metrics_params_and_tags_columns(runs: dict[str, str]) -> None:
    frame = keel.search_runs(experiment="churn", filter="attributes.run_name = 'a'")
    row = frame.iloc[0]
    assert row["run_id"] == runs["a"]
    assert row["metrics.acc"] == 0.95 and row["params.model"] == "rf"
    assert row["tags.team"] == "x" and row["status"] == "FINISHED"


def test_pagination_walks_every_run_once(runs: dict[str, str]) -> None:
    seen, token = [], None
    while True:
        page = keel.search_runs(experiment=["churn", "other"], max_results=2, page_token=token,
                                as_list=True)
        seen += [r.name for r in page]
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == ["a", "b", "c", "d", "e", "f"]


def test_all_experiments_when_none_given(runs: dict[str, str]) -> None:
    assert set(names(keel.search_runs(filter="metrics.acc > 0.96"))) == {"f"}


def test_deleted_runs_are_hidden_until_restored(runs: dict[str, str]) -> None:
    keel.delete_run(runs["a"])
    assert "a" not in names(keel.search_runs(experiment="churn"))
    assert "a" in names(keel.search_runs(experiment="churn", include_deleted=True))
    keel.restore_run(runs["a"])
    assert "a" in names(keel.search_runs(experiment="churn"))


@pytest.mark.parametrize(("query", "position", "token"), [
    ("metrics.acc >", 13, "the end of the filter"),
    ("metrics.acc > 'high'", 14, "'high'"),
    ("params.model = 3", 15, "'3'"),
    ("metrics.acc > 0.9 AND", 21, "the end"),
    ("metrics.acc ~ 1", 12, "'~'"),
    ("foo.bar = 'x'", 0, "'foo.bar'"),
    ("attributes.colour = 'red'", 0, "unknown attribute"),
    ("params.model < 'x'", 13, "does not apply"),
    ("metrics.acc > 0.9 params.x = 'y'", 18, "expected AND, OR"),
    ("(metrics.acc > 0.9", 18, "expected ')'"),
])
def test_bad_filters_name_the_token_and_position(runs: dict[str, str], query: str,
                                                 position: int, token: str) -> None:
    with pytest.raises(InvalidInput) as info:
        keel.search_runs(filter=query)
    assert f"position {position}" in str(info.value)
    assert token in str(info.value)


def test_bad_order_by_and_page_token(runs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="order_by"):
        keel.search_runs(order_by=["acc DESC"])
    with pytest.raises(InvalidInput, match="page_token"):
        keel.search_runs(page_token="garbage")


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_pages_ordered_by_a_metric_walk_every_run_once_in_order(backend: str,
                                                                direction: str) -> None:
    """Runs with the metric come in value order (ties newest first), then the runs
    without it or with NaN, newest first: the same on every page size, across the
    point where one kind ends and the other begins."""
    import math

    made = []
    for i in range(23):
        value = [0.5, 0.25, math.nan, None][i % 4] if i % 3 == 0 else i / 10
        with keel.start_run(experiment="paged", name=f"r{i:02d}") as run:
            if value is not None:
                run.log_metric("score", value)
        made.append((run.id, f"r{i:02d}", value))
    everything = keel.search_runs(experiment="paged", as_list=True, max_results=1000)
    newest = [r.name for r in everything]  # the default order: newest first
    valued = [(v, n) for _, n, v in made if v is not None and not math.isnan(v)]
    valued.sort(key=lambda item: (item[0] if direction == "ASC" else -item[0],
                                  newest.index(item[1])))
    missing = [n for n in newest if n not in {name for _, name in valued}]
    expected = [n for _, n in valued] + missing
    for size in (1, 4, 7, 100):
        seen, token = [], None
        while True:
            page = keel.search_runs(experiment="paged", order_by=[f"metrics.score {direction}"],
                                    max_results=size, page_token=token, as_list=True)
            seen += [r.name for r in page]
            token = page.next_page_token
            if not token:
                break
        assert seen == expected, size
    # A filter and the order together.
    found = keel.search_runs(experiment="paged", filter="metrics.score >= 0.5",
                             order_by=[f"metrics.score {direction}"], as_list=True)
    assert [r.name for r in found] == [n for v, n in valued if v >= 0.5]
