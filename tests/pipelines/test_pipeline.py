"""Pipelines: cached steps re-run only what changed, failures resume, bad graphs are refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import keel
import keel.data
from keel.errors import InvalidInput
from keel.pipelines import load_pipeline
from keel.tracking import session
from tests.conftest import run_keel

PIPELINE = textwrap.dedent('''
    import os
    import keel
    import numpy as np
    import pandas as pd

    def scale(x):
        return x * 2

    @keel.step
    def prepare(rows: int = 60):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(rows, 3))
        return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": (X[:, 2] > 0).astype(int)})

    @keel.step
    def features(data, power: int = 1):
        return data.assign(a=data["a"] ** power)

    @keel.step(outputs=["report.txt"])
    def train(data, C: float = 1.0):
        from sklearn.linear_model import LogisticRegression
        if os.environ.get("KEEL_TEST_FAIL_TRAIN"):
            raise RuntimeError("training blew up")
        model = LogisticRegression(C=C).fit(data[["a", "b"]], data["y"])
        keel.log_metric("acc", model.score(data[["a", "b"]], data["y"]))
        with open("report.txt", "w") as handle:
            handle.write(f"C={C}\\n")
        return model

    @keel.step
    def evaluate(model, data):
        return {"score": float(model.score(data[["a", "b"]], data["y"])),
                "rows": scale(len(data))}

    @keel.pipeline
    def churn(C: float = 1.0, rows: int = 60, power: int = 1):
        data = prepare(rows=rows)
        feats = features(data, power=power)
        model = train(feats, C=C)
        return evaluate(model, feats)
''')


@pytest.fixture
def project(backend: str, tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def _statuses(result: object) -> dict[str, str]:
    rows = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert all(set(r) == {"step", "status", "run_id"} for r in rows)
    return {r["step"]: r["status"] for r in rows}


def test_second_run_is_all_cached(project: Path) -> None:
    first = run_keel("pipeline", "run", "pipeline.py", "--json")
    assert first.returncode == 0, first.stderr
    assert set(_statuses(first).values()) == {"ran"}
    second = _statuses(run_keel("pipeline", "run", "pipeline.py", "--json"))
    assert set(second.values()) == {"cached"}
    assert (project / "report.txt").read_text() == "C=1.0\n"


def test_a_param_change_reruns_exactly_that_step_and_downstream(project: Path) -> None:
    run_keel("pipeline", "run", "pipeline.py")
    status = json.loads(run_keel("pipeline", "status", "pipeline.py", "--param", "C=0.5",
                                 "--json").stdout)
    states = {s["step"]: (s["state"], s["reason"]) for s in status}
    assert states["prepare"][0] == states["features"][0] == "fresh"
    assert states["train"] == ("stale", "params changed: C 1.0 -> 0.5")
    assert states["evaluate"][0] == "stale" and "train" in states["evaluate"][1]
    ran = _statuses(run_keel("pipeline", "run", "pipeline.py", "--param", "C=0.5", "--json"))
    assert ran == {"prepare": "cached", "features": "cached", "train": "ran",
                   "evaluate": "ran"}
    assert (project / "report.txt").read_text() == "C=0.5\n"


def test_a_code_change_in_a_helper_makes_its_callers_stale(project: Path) -> None:
    run_keel("pipeline", "run", "pipeline.py")
    source = (project / "pipeline.py").read_text()
    (project / "pipeline.py").write_text(source.replace("return x * 2", "return x * 3"))
    states = {s["step"]: s for s in json.loads(
        run_keel("pipeline", "status", "pipeline.py", "--json").stdout)}
    assert states["evaluate"]["state"] == "stale"
    assert states["evaluate"]["reason"] == "code changed"
    assert states["train"]["state"] == "fresh"


def test_a_failed_step_resumes_where_it_failed(project: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TEST_FAIL_TRAIN", "1")
    failed = run_keel("pipeline", "run", "pipeline.py", "--json")
    assert failed.returncode == 1
    assert _statuses(failed) == {"prepare": "ran", "features": "ran", "train": "failed",
                                 "evaluate": "skipped"}
    failed_run = next(r["run_id"] for r in json.loads(failed.stdout) if r["step"] == "train")
    stored = keel.get_run(failed_run)
    assert stored.status == "FAILED" and "training blew up" in (stored.error or "")
    monkeypatch.delenv("KEEL_TEST_FAIL_TRAIN")
    resumed = _statuses(run_keel("pipeline", "run", "pipeline.py", "--json"))
    assert resumed == {"prepare": "cached", "features": "cached", "train": "ran",
                       "evaluate": "ran"}


def test_steps_are_child_runs_with_lineage(project: Path) -> None:
    result = json.loads(run_keel("pipeline", "run", "pipeline.py", "--json").stdout)
    ids = {r["step"]: r["run_id"] for r in result}
    train = keel.get_run(ids["train"])
    parent = keel.get_run(train.parent_id or "")
    assert parent.tags["keel.kind"] == "pipeline" and parent.name == "churn"
    assert train.params == {"C": "1.0"} and train.tags["keel.upstream"] == ids["features"]
    assert "acc" in train.metrics
    assert {a.path for a in keel.list_artifacts(ids["train"])} >= {
        "outputs/return.skops", "files/report.txt"}


def test_only_and_force(project: Path) -> None:
    run_keel("pipeline", "run", "pipeline.py")
    forced = _statuses(run_keel("pipeline", "run", "pipeline.py", "--force", "features",
                                "--json"))
    # Same code, same input: the forced step's output is identical, downstream stays cached.
    assert forced == {"prepare": "cached", "features": "ran", "train": "cached",
                      "evaluate": "cached"}
    only = _statuses(run_keel("pipeline", "run", "pipeline.py", "--param", "C=2",
                              "--only", "train", "--json"))
    assert only == {"prepare": "cached", "features": "cached", "train": "ran",
                    "evaluate": "not run"}


def test_the_same_pipeline_runs_on_a_local_pool(project: Path) -> None:
    pooled = run_keel("pipeline", "run", "pipeline.py", "--parallel", "2", "--json")
    assert pooled.returncode == 0, pooled.stderr
    assert set(_statuses(pooled).values()) == {"ran"}
    assert set(_statuses(run_keel("pipeline", "run", "pipeline.py", "--json")).values()) == \
        {"cached"}


def test_show_draws_the_graph(project: Path) -> None:
    shown = run_keel("pipeline", "show", "pipeline.py").stdout
    assert "churn (4 steps)" in shown
    assert "└─ evaluate  ◀ train, features" in shown


def test_a_dataset_version_is_an_input(backend: str, tmp_path: Path) -> None:
    data = tmp_path / "rows"
    data.mkdir()
    (data / "rows.csv").write_text("x\n1\n2\n3\n")
    keel.data.add(data, "rows")
    (tmp_path / "p.py").write_text(textwrap.dedent('''
        import keel, pandas as pd
        @keel.step
        def total(folder):
            return int(pd.read_csv(f"{folder}/rows.csv")["x"].sum())
        @keel.step
        def double(value):
            return value * 2
        @keel.pipeline
        def sums():
            return double(total(keel.dataset("rows@latest")))
    '''))
    first = json.loads(run_keel("pipeline", "run", "p.py", "--json").stdout)
    run_id = first[0]["run_id"]
    links = session.workspace().store.datasets_of_run(run_id)
    assert [(v.ref, role) for v, role in links] == [("rows@1", "input")]
    # The downstream step reads no dataset itself; its lineage reaches it through total.
    import keel.models as km
    found = km.lineage(first[1]["run_id"])
    assert [(d["ref"], d["via_run"]) for d in found["datasets"]] == [("rows@1", run_id)]
    (data / "rows.csv").write_text("x\n1\n2\n3\n4\n")
    keel.data.add(data, "rows")
    status = json.loads(run_keel("pipeline", "status", "p.py", "--json").stdout)
    assert status[0]["state"] == "stale" and status[1]["state"] == "stale"
    assert "dataset rows@latest = rows@2" in status[0]["reason"]


# -- bad input -------------------------------------------------------------------------------

def test_a_cycle_is_refused_naming_it(backend: str, tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(textwrap.dedent('''
        import keel
        @keel.step(after=["b"])
        def a():
            return 1
        @keel.step(after=["a"])
        def b():
            return 2
        @keel.pipeline
        def loop():
            a(); b()
    '''))
    result = run_keel("pipeline", "run", "p.py")
    assert result.returncode == 1 and "has a cycle: a -> b -> a" in result.stderr


def test_a_declared_output_never_written_fails_the_step(backend: str, tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(textwrap.dedent('''
        import keel
        @keel.step(outputs=["missing.html"])
        def report():
            return 1
        @keel.pipeline
        def p():
            report()
    '''))
    result = run_keel("pipeline", "run", "p.py", "--json")
    assert _statuses(result) == {"report": "failed"}
    assert "declares output 'missing.html' but did not write it" in result.stderr


def test_a_return_value_without_a_safe_format_names_the_step(backend: str,
                                                            tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(textwrap.dedent('''
        import keel
        class Blob:
            pass
        @keel.step
        def make():
            return Blob()
        @keel.step(pickle=True)
        def allowed():
            return Blob()
        @keel.pipeline
        def p():
            make(); allowed()
    '''))
    result = run_keel("pipeline", "run", "p.py", "--json")
    assert _statuses(result) == {"make": "failed", "allowed": "ran"}
    assert "step 'make' returned a Blob" in result.stderr


def test_bad_params_are_refused_before_anything_runs(project: Path) -> None:
    for args, message in ((["--param", "C"], "write NAME=VALUE"),
                          (["--param", "C=high"], "not a float"),
                          (["--param", "nope=1"], "has no param 'nope'"),
                          (["--only", "nope"], "has no step 'nope'")):
        result = run_keel("pipeline", "run", "pipeline.py", *args)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
    assert keel.search_runs(as_list=True) == []


def test_a_step_output_used_as_a_value_while_defining_is_explained(backend: str,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(textwrap.dedent('''
        import keel
        @keel.step
        def make():
            return [1, 2]
        @keel.pipeline
        def p():
            make().append(3)
    '''))
    with pytest.raises(InvalidInput, match="used as a value"):
        load_pipeline(str(tmp_path / "p.py")).graph()


def test_steps_are_plain_functions_outside_a_pipeline() -> None:
    @keel.step
    def double(x: int = 2) -> int:
        return x * 2

    assert double(x=21) == 42
