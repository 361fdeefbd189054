"""Workflows given a workspace record there, even when the current folder has another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.data
import keel.models as km
from keel.errors import NotFound
from keel.workspace import Workspace
from tests.models.fixtures import breast_cancer


@pytest.fixture
def model_in_other(backend: str, other_workspace: Workspace, tmp_path: Path) -> str:
    """A registered model and a holdout dataset that exist only in the second workspace."""
    from sklearn.linear_model import LogisticRegression

    train, holdout = breast_cancer()
    folder = tmp_path / "holdout"
    folder.mkdir()
    holdout.to_csv(folder / "holdout.csv", index=False)
    keel.data.add(folder, "holdout", ws=other_workspace)
    X, y = train.drop(columns=["target", "region"]), train["target"]
    with keel.start_run(experiment="bc", ws=other_workspace) as run:
        uri = run.log_model(LogisticRegression(max_iter=2000).fit(X, y), input_example=X[:5])
    km.register(uri, "bc", ws=other_workspace)
    keel.create_experiment("local-only")  # the current folder's workspace is in use too
    return "models:/bc/1"


def _experiments(ws: Workspace | None) -> set[str]:
    return {r.experiment for r in keel.search_runs(as_list=True, ws=ws)}


def test_evaluate_records_its_run_and_data_link_in_the_given_workspace(
        model_in_other: str, other_workspace: Workspace) -> None:
    found = km.evaluate(model_in_other, "holdout@1", label="target", ws=other_workspace)
    assert keel.get_run(found.run_id, ws=other_workspace).experiment == "model-evaluations"
    with pytest.raises(NotFound):
        keel.get_run(found.run_id)  # not in the current folder's workspace
    assert "model-evaluations" not in _experiments(None)
    linked = other_workspace.store.datasets_of_run(found.run_id)
    assert [(v.ref, role) for v, role in linked] == [("holdout@1", "input")]


def test_batch_predict_records_its_run_in_the_given_workspace(
        model_in_other: str, other_workspace: Workspace, tmp_path: Path) -> None:
    _, holdout = breast_cancer()
    holdout.drop(columns=["target", "region"]).to_parquet(tmp_path / "in.parquet")
    job = km.batch_predict(model_in_other, tmp_path / "in.parquet", tmp_path / "out.parquet",
                           ws=other_workspace)
    assert keel.get_run(job.run_id, ws=other_workspace).experiment == "batch-inference"
    assert "batch-inference" not in _experiments(None)
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == len(holdout)


def test_autolog_with_a_workspace_records_fits_there(backend: str,
                                                     other_workspace: Workspace) -> None:
    from sklearn.linear_model import LinearRegression

    keel.create_experiment("local-only")
    keel.autolog(log_models=False, ws=other_workspace)
    try:
        LinearRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    finally:
        keel.autolog(disable=True)
    fitted = keel.search_runs(as_list=True, ws=other_workspace)
    assert [r.tags["keel.estimator"] for r in fitted] == ["LinearRegression"]
    assert keel.search_runs(as_list=True) == []  # nothing landed in the current folder


def test_autolog_inside_a_run_records_in_that_run(backend: str,
                                                  other_workspace: Workspace) -> None:
    from sklearn.linear_model import LinearRegression

    keel.autolog(log_models=False)
    try:
        with keel.start_run(experiment="fit", ws=other_workspace) as run:
            LinearRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    finally:
        keel.autolog(disable=True)
    assert keel.get_run(run.id, ws=other_workspace).tags["keel.estimator"] == "LinearRegression"


def test_autolog_digest_sees_every_element_of_large_object_arrays() -> None:
    from keel.models.autolog import dataset_digest

    first = np.array([f"row-{i}" for i in range(2_000)], dtype=object)
    second = first.copy()
    second[1_000] = "changed"  # in the middle, where repr() writes "..."
    assert dataset_digest(first) != dataset_digest(second)
    assert dataset_digest(first) == dataset_digest(first.copy())
