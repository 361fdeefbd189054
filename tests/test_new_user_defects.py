"""Defects a new user hit, each pinned: clear errors, consistent names, honest output."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models as km
from keel.errors import InvalidInput, NotFound
from keel.tracking import session
from tests.conftest import run_keel
from tests.models.fixtures import Trained


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    return result.stderr


# -- errors that were raw tracebacks ---------------------------------------------------------

def test_predict_into_a_missing_folder_fails_before_any_run(trained: Trained,
                                                            tmp_path: Path) -> None:
    km.register(trained.good_uri, "bc")
    trained.features.to_csv(tmp_path / "in.csv", index=False)
    result = run_keel("predict", "models:/bc/1", "in.csv", "-o", "/missing/dir/out.csv")
    assert "output folder /missing/dir does not exist" in _one_error_line(result)
    with pytest.raises(NotFound):
        keel.get_experiment("batch-inference")  # no FAILED run was left behind


@pytest.mark.parametrize("content", ["", "a,b\n1,2,3\n\"x\n"])
def test_predict_on_an_empty_or_malformed_csv_is_one_line(trained: Trained, tmp_path: Path,
                                                          content: str) -> None:
    km.register(trained.good_uri, "bc")
    (tmp_path / "bad.csv").write_text(content)
    result = run_keel("predict", "models:/bc/1", "bad.csv", "-o", "out.csv")
    assert "cannot read bad.csv as CSV" in _one_error_line(result)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("text", [" OR ".join(["metrics.a > 1"] * 2000),
                                  "(" * 5000 + "metrics.a > 1" + ")" * 5000])
def test_huge_filters_are_refused_with_a_hint(backend: str, text: str) -> None:
    keel.create_experiment("x")
    result = run_keel("runs", "list", "--filter", text)
    assert "hint:" in _one_error_line(result)


def test_a_long_or_filter_within_the_limit_runs(backend: str) -> None:
    with keel.start_run(experiment="x") as run:
        run.log_metric("a", 5.0)
    text = " OR ".join(f"metrics.a = {i}" for i in range(199))
    assert [r.id for r in keel.search_runs("x", text, as_list=True)] == [run.id]


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("KEEL_STORE", "/etc/passwd", "is not a keel database"),
    ("KEEL_BLOBS", "bogus://x", "cannot use 'bogus://x' as the blob store"),
])
def test_bad_store_settings_are_one_line(backend: str, variable: str, value: str,
                                         message: str) -> None:
    keel.create_experiment("x")
    result = run_keel("runs", "list", env={variable: value})
    assert message in _one_error_line(result)


# -- names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "../../etc", "a\x00b", "x" * 1000, "\x1b[31mred"])
def test_bad_experiment_and_run_names_are_refused_in_python_as_on_the_cli(
        backend: str, name: str) -> None:
    with pytest.raises(InvalidInput):
        keel.create_experiment(name)
    with pytest.raises(InvalidInput):
        keel.start_run(experiment=name)
    with pytest.raises(InvalidInput):
        keel.start_run(name=name)
    assert run_keel("experiments", "create", name).returncode == 1
    assert keel.search_runs(as_list=True) == []


def test_user_text_never_reaches_the_terminal_raw(backend: str) -> None:
    with keel.start_run(experiment="x") as run:
        pass
    # A name stored by an older keel, before names were checked.
    from keel.store import schema as t
    ws = session.workspace()
    with ws.store.writer.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(t.runs.update().where(t.runs.c.id == run.id)
                     .values(name="\x1b[2Jcleared"))
    shown = run_keel("runs", "list").stdout + run_keel("runs", "show", run.id).stdout
    assert "\x1b" not in shown and "\\x1b[2Jcleared" in shown


# -- API behaviour -------------------------------------------------------------------------

def test_get_run_and_metric_history_accept_id_prefixes(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("m", 1.0)
    assert keel.get_run(run.id[:8]).id == run.id
    assert [p.value for p in keel.get_metric_history(run.id[:8], "m")] == [1.0]


def test_log_dict_refuses_values_json_cannot_hold(backend: str) -> None:
    with keel.start_run() as run, pytest.raises(InvalidInput, match="not JSON serializable"):
        run.log_dict({"a": object()}, "meta.json")
    assert [a.path for a in keel.list_artifacts(run.id)
            if not a.path.startswith("keel/")] == []


def test_four_processes_resuming_one_run_continue_its_steps(backend: str) -> None:
    with keel.start_run(experiment="resume") as run:
        for _ in range(3):
            run.log_metric("loss", 1.0)  # steps 0, 1, 2
    code = textwrap.dedent(f"""
        import keel
        with keel.start_run(run_id={run.id!r}) as run:
            run.log_metric("loss", 0.5)
    """)
    for _ in range(4):  # one after the other: each continues from what is stored
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
    assert [p.step for p in keel.get_metric_history(run.id, "loss")] == list(range(7))


def test_numeric_strings_in_pandas_string_columns_are_accepted(trained: Trained) -> None:
    model = keel.load_model(trained.good_uri)
    as_text = trained.features.astype(str).astype("string")
    expected = model.predict(trained.features)
    assert np.array_equal(model.predict(as_text), expected)


def test_a_gate_require_written_as_one_string_is_one_rule(trained: Trained,
                                                          tmp_path: Path) -> None:
    km.register(trained.good_uri, "bc")
    (tmp_path / "keel.toml").write_text('[gates.champion]\nrequire = "accuracy >= 0.99"\n')
    with pytest.raises(km.GateFailed, match=r"require accuracy >= 0.99"):
        km.promote("bc/1", "champion", reason="first")


def test_registering_a_folder_that_is_not_a_package_says_so(trained: Trained) -> None:
    result = run_keel("model", "register", "/etc", "--name", "x")
    assert "/etc is not a model package" in _one_error_line(result)


def test_recover_says_what_the_automatic_recovery_did(backend: str) -> None:
    keel.create_experiment("crash")
    code = textwrap.dedent("""
        import os, signal, keel
        run = keel.start_run(experiment="crash")
        run.log_metric("m", 1.0)
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    run_id = killed.stdout.strip()
    result = run_keel("recover")  # opening the workspace recovers; recover reports it
    assert f"run {run_id}: " in result.stdout and "marked KILLED" in result.stdout


def test_config_shows_the_paths_in_use(backend: str, tmp_path: Path) -> None:
    shown = run_keel("config").stdout
    if backend == "sqlite":
        assert str(tmp_path / ".keel" / "keel.db") in shown
    assert str(tmp_path / ".keel" / "blobs") in shown
    assert "None" not in shown


def test_help_shows_no_type_after_flags_and_counts_read_well(backend: str) -> None:
    assert "<bool>" not in run_keel("runs", "list", "--help").stdout
    with keel.start_run(experiment="x"):
        pass
    listed = run_keel("runs", "list").stdout
    assert listed.strip().endswith("1 run")
    as_json = json.loads(run_keel("runs", "list", "--json").stdout)
    assert len(as_json) == 1
    assert isinstance(pd.DataFrame(as_json), pd.DataFrame)
