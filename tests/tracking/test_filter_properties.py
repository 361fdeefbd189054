"""Property tests: random filters match what a Python reference evaluation says."""

from __future__ import annotations

import contextlib
import fnmatch
import math
import random
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keel
from keel.errors import KeelError
from keel.store.filter import parse

KEYS = ["acc", "loss"]
PARAM_KEYS = ["model", "depth"]
VALUES = ["rf", "lr", "Rf", "r_f", "10", "svm"]


@dataclass
class Fake:
    """What the reference evaluator knows about a stored run."""

    name: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    status: str


def like(pattern: str, value: str, insensitive: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE | re.DOTALL if insensitive else re.DOTALL
    return re.fullmatch(regex, value, flags) is not None


def compare(actual: object, op: str, expected: object) -> bool:
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return False  # documented: a missing key or NaN matches no comparison
    ops = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
           "IN": lambda a, b: a in b, "NOT IN": lambda a, b: a not in b,
           "LIKE": lambda a, b: like(b, a, False), "ILIKE": lambda a, b: like(b, a, True),
           "NOT LIKE": lambda a, b: not like(b, a, False),
           "NOT ILIKE": lambda a, b: not like(b, a, True)}
    return bool(ops[op](actual, expected))


# A filter is generated as (text, reference predicate) so that the reference
# never looks at how keel parsed it.
def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


metric_cmp = st.builds(
    lambda key, op, value: (f"metrics.{key} {op} {value!r}",
                            lambda r: compare(r.metrics.get(key), op, value)),
    st.sampled_from(KEYS), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
    st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, -1.0]))
param_cmp = st.builds(
    lambda kind, key, op, value: (f"{kind}s.{key} {op} {_quote(value)}",
                                  lambda r: compare((r.params if kind == "param" else r.tags)
                                                    .get(key), op, value)),
    st.sampled_from(["param", "tag"]), st.sampled_from(PARAM_KEYS),
    st.sampled_from(["=", "!=", "LIKE", "ILIKE", "NOT LIKE"]),
    st.sampled_from([*VALUES, "r%", "%f", "_f", "%"]))
in_cmp = st.builds(
    lambda key, negate, values: (
        f"params.{key} {'NOT IN' if negate else 'IN'} ({', '.join(map(_quote, values))})",
        lambda r: compare(r.params.get(key), "NOT IN" if negate else "IN", tuple(values))),
    st.sampled_from(PARAM_KEYS), st.booleans(), st.lists(st.sampled_from(VALUES), min_size=1,
                                                         max_size=3))
status_cmp = st.builds(
    lambda status: (f"attributes.status = {_quote(status)}", lambda r: r.status == status),
    st.sampled_from(["FINISHED", "FAILED"]))
atom = st.one_of(metric_cmp, param_cmp, in_cmp, status_cmp)


def _combine(children: st.SearchStrategy) -> st.SearchStrategy:
    def join(word: str, parts: list) -> tuple:
        text = f" {word} ".join(f"({t})" for t, _ in parts)
        preds = [p for _, p in parts]
        if word == "AND":
            return text, lambda r: all(p(r) for p in preds)
        return text, lambda r: any(p(r) for p in preds)
    return st.builds(join, st.sampled_from(["AND", "OR"]), st.lists(children, min_size=2,
                                                                    max_size=3))


filters = st.recursive(atom, _combine, max_leaves=6)

METRIC_VALUES = [0.0, 0.25, 0.5, 1.0, -1.0, math.inf, math.nan, 0.1]


def run_specs(count: int, seed: int = 7) -> list[dict]:
    """A fixed, varied set of runs: some keys missing, NaN and inf included."""
    rng = random.Random(seed)

    def some(keys: list[str], values: list) -> dict:
        return {k: rng.choice(values) for k in keys if rng.random() < 0.75}

    return [{"metrics": some(KEYS, METRIC_VALUES), "params": some(PARAM_KEYS, VALUES),
             "tags": some(PARAM_KEYS, VALUES), "failed": rng.random() < 0.3}
            for _ in range(count)]


def store_runs(specs: list[dict]) -> list[Fake]:
    fakes = []
    for n, spec in enumerate(specs):
        try:
            with keel.start_run(experiment="prop", name=f"r{n}", params=spec["params"],
                                tags=spec["tags"]) as run:
                run.log_metrics(spec["metrics"])
                if spec["failed"]:
                    raise RuntimeError("fail on purpose")
        except RuntimeError:
            pass
        fakes.append(Fake(f"r{n}", spec["metrics"], spec["params"], spec["tags"],
                          "FAILED" if spec["failed"] else "FINISHED"))
    return fakes


def test_random_filters_match_the_reference(backend: str) -> None:
    runs = store_runs(run_specs(16))

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(filters)
    def check(generated: tuple) -> None:
        text, predicate = generated
        found = set(keel.search_runs(experiment="prop", filter=text)["name"])
        assert found == {r.name for r in runs if predicate(r)}, text

    check()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_garbage_raises_keel_error_and_nothing_else(text: str) -> None:
    with contextlib.suppress(KeelError):
        parse(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["metrics.acc", "params.`a b`", ">", "=", "AND", "OR", "(",
                                 ")", "'x'", "1.5", "IN", "NOT", ",", "LIKE", "tags.t", "-",
                                 "attributes.status", '"q"', "`"]), max_size=12))
def test_token_soup_raises_keel_error_and_nothing_else(tokens: list[str]) -> None:
    with contextlib.suppress(KeelError):
        parse(" ".join(tokens))


def test_like_reference_agrees_with_fnmatch_on_simple_patterns() -> None:
    # A check on the checker: '%' behaves like '*' for patterns without '_'.
    assert like("r%", "rf", False) == fnmatch.fnmatchcase("rf", "r*")
