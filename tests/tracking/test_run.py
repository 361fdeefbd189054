"""A run's life: what is logged comes back, and how it ends is recorded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import keel
from keel.errors import Conflict, NotFound


def test_params_metrics_and_tags_come_back(backend: str) -> None:
    with keel.start_run(experiment="churn", name="rf-1", params={"model": "rf", "depth": 4},
                        tags={"team": "risk"}) as run:
        run.log_param("lr", 0.1)
        run.log_metrics({"auc": 0.91, "loss": 0.3})
        run.set_tag("team", "growth")  # tags are mutable
    stored = keel.get_run(run.id)
    assert stored.status == "FINISHED"
    assert stored.name == "rf-1" and stored.experiment == "churn"
    assert stored.params == {"model": "rf", "depth": "4", "lr": "0.1"}
    assert stored.metrics == {"auc": 0.91, "loss": 0.3}
    assert stored.tags["team"] == "growth"
    assert stored.end_time is not None and stored.end_time >= stored.start_time


def test_metric_history_keeps_every_point_with_steps(backend: str) -> None:
    with keel.start_run() as run:
        for value in (0.9, 0.7, 0.5):
            run.log_metric("loss", value)  # steps 0, 1, 2 by default
        run.log_metric("loss", 0.4, step=10)
        run.log_metric("loss", 0.35)  # one past the last step
    history = keel.get_metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.9), (1, 0.7), (2, 0.5), (10, 0.4),
                                                    (11, 0.35)]
    assert all(p.timestamp >= keel.get_run(run.id).start_time for p in history)
    assert keel.get_run(run.id).metrics["loss"] == 0.35


def test_latest_metric_is_the_highest_step_not_the_last_logged(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("acc", 0.8, step=5)
        run.log_metric("acc", 0.1, step=2)  # a late point from an earlier step
    assert keel.get_run(run.id).metrics["acc"] == 0.8


def test_nan_and_infinities_are_stored_as_such(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("a", float("nan"))
        run.log_metric("b", float("inf"))
        run.log_metric("c", float("-inf"))
    stored = keel.get_run(run.id)
    assert math.isnan(stored.metrics["a"])
    assert stored.metrics["b"] == math.inf and stored.metrics["c"] == -math.inf
    assert math.isnan(keel.get_metric_history(run.id, "a")[0].value)


def test_numpy_numbers_are_accepted(backend: str) -> None:
    import numpy as np

    with keel.start_run() as run:
        run.log_metric("x", np.float32(0.5), step=np.int64(3))
    assert keel.get_metric_history(run.id, "x")[0].step == 3


def test_exception_marks_run_failed_with_traceback(backend: str) -> None:
    with pytest.raises(ZeroDivisionError), keel.start_run() as run:
        run.log_metric("loss", 1.0)
        _ = 1 / 0
    stored = keel.get_run(run.id)
    assert stored.status == "FAILED"
    assert stored.error is not None and "ZeroDivisionError" in stored.error
    assert stored.metrics == {"loss": 1.0}  # what was logged before the failure is kept


def test_ctrl_c_marks_run_killed(backend: str) -> None:
    with pytest.raises(KeyboardInterrupt), keel.start_run() as run:
        raise KeyboardInterrupt
    assert keel.get_run(run.id).status == "KILLED"


def test_nested_runs_know_their_parent(backend: str) -> None:
    with keel.start_run(experiment="sweep") as parent:
        with keel.start_run(name="trial-1") as child:
            assert keel.active_run() is child
        assert keel.active_run() is parent
    stored = keel.get_run(child.id)
    assert stored.parent_id == parent.id and stored.experiment == "sweep"
    assert keel.get_run(parent.id).parent_id is None


def test_module_level_functions_log_to_the_active_run(backend: str) -> None:
    with keel.start_run() as run:
        keel.log_param("p", "x")
        keel.log_metric("m", 2.0)
        keel.set_tag("t", "y")
        keel.log_metrics({"n": 3.0})
    stored = keel.get_run(run.id)
    assert (stored.params, stored.metrics["m"], stored.tags["t"]) == ({"p": "x"}, 2.0, "y")


def test_logging_without_an_active_run_says_how_to_start_one(backend: str) -> None:
    with pytest.raises(Conflict, match="no active run") as info:
        keel.log_metric("loss", 1.0)
    assert "start_run" in (info.value.hint or "")


def test_resuming_a_run_appends_to_it(backend: str) -> None:
    with keel.start_run(params={"a": 1}) as run:
        run.log_metric("loss", 1.0)
    with keel.start_run(run_id=run.id) as again:
        again.log_metric("loss", 0.5)
        again.log_param("a", 1)  # same value: fine
    assert [p.value for p in keel.get_metric_history(run.id, "loss")] == [1.0, 0.5]
    assert keel.get_run(run.id).status == "FINISHED"


def test_unknown_ids_raise_not_found(backend: str) -> None:
    with keel.start_run():
        pass
    with pytest.raises(NotFound, match="no run 'feedbeef'"):
        keel.get_run("feedbeef")
    with pytest.raises(NotFound, match="no experiment 'nope'"):
        keel.search_runs(experiment="nope")
    with pytest.raises(NotFound):
        keel.start_run(run_id="0" * 32)


def test_flush_makes_logged_values_visible_to_other_readers(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("loss", 0.2)
        run.flush()
        assert run.info.metrics == {"loss": 0.2}


def test_switching_workspaces_in_one_process_keeps_them_apart(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.workspace import forget_workspaces, init_workspace

    with keel.start_run(experiment="shared-name") as first:
        pass
    forget_workspaces()  # e.g. a notebook moving to another project
    other = tmp_path / "other"
    init_workspace(other)
    monkeypatch.chdir(other)
    monkeypatch.delenv("KEEL_STORE", raising=False)  # the other project is embedded
    with keel.start_run(experiment="shared-name") as second:
        pass
    assert keel.get_run(second.id).experiment == "shared-name"
    with pytest.raises(NotFound):
        keel.get_run(first.id)  # that run lives in the first workspace only
