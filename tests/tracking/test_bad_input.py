"""Bad input gets a clear error, and nothing already stored changes."""

from __future__ import annotations

import pytest

import keel
from keel.errors import Conflict, InvalidInput


def snapshot(run_id: str) -> tuple[object, ...]:
    run = keel.get_run(run_id)
    history = keel.get_metric_history(run_id, "loss")
    return run.params, run.metrics, run.tags, run.status, [(p.step, p.value) for p in history]


@pytest.mark.parametrize(("key", "message"), [
    ("", "is empty"),
    ("k" * 251, "251 characters"),
    ("a/../b", "not a clean"),
    ("..", "not a clean"),
    ("/etc/passwd", "not a clean"),
    ("a//b", "not a clean"),
    ("trailing/", "not a clean"),
    ("tab\tkey", "control character"),
    ("new\nline", "control character"),
    ("back\\slash", "backslash"),
])
def test_bad_keys_are_refused_everywhere(backend: str, key: str, message: str) -> None:
    with keel.start_run(params={"ok": 1}) as run:
        run.log_metric("loss", 0.5)
        before = snapshot(run.id)
        for log in (lambda: run.log_metric(key, 1.0), lambda: run.log_param(key, 1),
                    lambda: run.set_tag(key, "v"), lambda: run.log_batch([(key, 1.0, 0)])):
            with pytest.raises(InvalidInput, match=message):
                log()
        assert snapshot(run.id) == before


def test_non_numeric_metric_is_refused(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("loss", 0.5)
        before = snapshot(run.id)
        with pytest.raises(InvalidInput, match="must be a number, got str"):
            run.log_metric("loss", "0.4")
        with pytest.raises(InvalidInput, match="must be a number"):
            run.log_metric("loss", None)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="step must be an integer"):
            run.log_metric("loss", 0.4, step=1.5)  # type: ignore[arg-type]
        assert snapshot(run.id) == before


def test_a_bad_point_in_a_batch_stores_none_of_it(backend: str) -> None:
    with keel.start_run() as run:
        with pytest.raises(InvalidInput):
            run.log_batch([("loss", 0.1, 0), ("loss", "x", 1)])  # type: ignore[list-item]
        run.flush()
        assert keel.get_metric_history(run.id, "loss") == []


def test_param_cannot_change_value(backend: str) -> None:
    with keel.start_run(params={"lr": 0.1}) as run:
        before = snapshot(run.id)
        with pytest.raises(InvalidInput, match=r"'lr' is already '0\.1'") as info:
            run.log_param("lr", 0.2)
        assert "write-once" in str(info.value)
        with pytest.raises(InvalidInput):  # one bad param refuses the whole call
            run.log_params({"new": 1, "lr": 0.3})
        run.log_param("lr", 0.1)  # the same value again is fine
        assert snapshot(run.id) == before


def test_logging_to_a_finished_run_is_refused(backend: str) -> None:
    with keel.start_run() as run:
        run.log_metric("loss", 0.5)
    before = snapshot(run.id)
    for log in (lambda: run.log_metric("loss", 0.1), lambda: run.log_param("x", 1),
                lambda: run.set_tag("t", "v"), lambda: run.log_text("x", "a.txt")):
        with pytest.raises(Conflict, match="is FINISHED") as info:
            log()
        assert f"run_id={run.id!r}" in (info.value.hint or "")
    assert snapshot(run.id) == before


def test_too_long_param_value_is_refused(backend: str) -> None:
    with keel.start_run() as run, pytest.raises(InvalidInput, match="log_text"):
        run.log_param("blob", "x" * 9000)


def test_bad_start_run_arguments_create_nothing(backend: str) -> None:
    with pytest.raises(InvalidInput):
        keel.start_run(experiment="e", params={"bad/../key": 1})
    keel.create_experiment("e")  # the failed start did not create it
    assert keel.search_runs(experiment="e").empty


def test_deleted_experiment_refuses_new_runs(backend: str) -> None:
    from keel.tracking import session

    keel.create_experiment("old")
    session.workspace().store.set_experiment_lifecycle("old", "deleted")
    with pytest.raises(Conflict, match="'old' is deleted") as info:
        keel.start_run(experiment="old")
    assert "keel experiments restore old" in (info.value.hint or "")
