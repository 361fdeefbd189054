"""Evaluation runs (metrics, slices, plots) and batch inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models as km
from keel.errors import InvalidInput, NotFound
from keel.workspace import current_workspace
from tests.models.fixtures import Trained


def test_evaluation_stores_metrics_slices_and_plots_as_a_run(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    found = km.evaluate("bc/1", "holdout@1", label="target", slice_by=["region"])
    y = trained.holdout["target"]
    expected = (trained.good.predict(trained.features) == y).mean()  # type: ignore[attr-defined]
    assert found.metrics["accuracy"] == pytest.approx(expected)
    assert found.rows == len(trained.holdout)
    assert set(found.slices["region"]) == {"north", "south", "east"}
    assert sum(s["rows"] for s in found.slices["region"].values()) == len(trained.holdout)
    run = keel.get_run(found.run_id)
    assert run.tags["keel.model"] == "bc/1" and run.params["data"] == "holdout@1"
    assert run.metrics["slice/region=north/accuracy"] == found.slices["region"]["north"][
        "accuracy"]
    files = {a.path for a in keel.list_artifacts(run.id)}
    assert {"plots/confusion_matrix.png", "plots/calibration.png", "evaluation.json"} <= files
    png = current_workspace().blobs.get_bytes(next(a.digest for a in keel.list_artifacts(run.id)
                                                   if a.path == "plots/calibration.png"))
    assert png.startswith(b"\x89PNG")
    used = current_workspace().store.datasets_of_run(run.id)
    assert [(v.ref, role) for v, role in used] == [("holdout@1", "input")]


def test_evaluation_of_a_regressor_and_bad_arguments(trained: Trained, tmp_path: Path) -> None:
    from sklearn.linear_model import Ridge

    X = trained.train.drop(columns=["target", "region", "mean area"])
    with keel.start_run() as run:
        uri = run.log_model(Ridge().fit(X, trained.train["mean area"]), input_example=X[:3])
    trained.holdout.to_csv(tmp_path / "rows.csv", index=False)
    found = km.evaluate(uri, str(tmp_path / "rows.csv"), label="mean area")
    assert set(found.metrics) == {"mae", "rmse", "r2"} and found.metrics["r2"] > 0.9
    assert "plots/residuals.png" in found.plots
    with pytest.raises(InvalidInput, match="slice column 'nope'"):
        km.evaluate(uri, str(tmp_path / "rows.csv"), label="mean area", slice_by=["nope"])
    with pytest.raises(InvalidInput, match="label column 'wrong'"):
        km.evaluate(uri, str(tmp_path / "rows.csv"), label="wrong")
    with pytest.raises(NotFound, match="neither a file nor a dataset version"):
        km.evaluate(uri, "missing.csv")


def test_batch_predict_streams_chunks_and_records_the_job(trained: Trained,
                                                          tmp_path: Path) -> None:
    km.register(trained.good_uri, "bc")
    km.set_alias("bc/1", "champion", reason="test")
    source = tmp_path / "today.csv"
    trained.holdout.to_csv(source, index=False)
    done = km.batch_predict("models:/bc@champion", source, tmp_path / "scored.parquet",
                            chunk_rows=40)
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert done.rows == len(scored) == len(trained.holdout)
    assert np.array_equal(scored["prediction"],
                          trained.good.predict(trained.features))  # type: ignore[attr-defined]
    assert np.allclose(scored["proba_1"], trained.good.predict_proba(  # type: ignore[attr-defined]
        trained.features)[:, 1])
    run = keel.get_run(done.run_id)
    assert run.tags["keel.model"] == "bc/1"
    assert run.params["input.digest"] == done.input_digest
    assert run.metrics["rows"] == len(trained.holdout)
    # Parquet in, CSV out, too.
    km.batch_predict("bc/1", tmp_path / "scored.parquet", tmp_path / "again.csv", chunk_rows=7)
    assert pd.read_csv(tmp_path / "again.csv")["prediction"].tolist() == \
        scored["prediction"].tolist()


def test_batch_predict_bad_input_leaves_no_output(trained: Trained, tmp_path: Path) -> None:
    km.register(trained.good_uri, "bc")
    source = tmp_path / "rows.csv"
    trained.holdout.drop(columns="mean radius").to_csv(source, index=False)
    with pytest.raises(InvalidInput, match="missing column\\(s\\) 'mean radius'"):
        km.batch_predict("bc/1", source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(InvalidInput, match="overwrite the input"):
        km.batch_predict("bc/1", source, source)
    with pytest.raises(InvalidInput, match=r"neither \.csv nor \.parquet"):
        km.batch_predict("bc/1", source, tmp_path / "out.xlsx")


def test_lineage_walks_from_alias_to_data_and_code(trained: Trained) -> None:
    km.register(trained.good_uri, "bc")
    km.set_alias("bc/1", "champion", reason="test")
    found = km.lineage("models:/bc@champion")
    assert found["model"]["name"] == "bc" and found["model"]["aliases"] == ["champion"]
    run_id = trained.good_uri.split("/")[1]
    assert found["run"]["id"] == run_id
    assert found["run"]["params"]["model"] == "Pipeline"
    assert [d["ref"] for d in found["datasets"]] == ["holdout@1"]
    assert found["environment"]["python"] and "commit" in found["code"]
    assert found["registered_as"] == ["bc/1"]
    data = km.lineage("holdout@1")
    assert {r["id"] for r in data["runs"] if r["models"] == ["bc/1"]} == {run_id}
    assert km.lineage(run_id[:10])["run"]["id"] == run_id
    with pytest.raises(NotFound):
        km.lineage("nothing-by-this-name")


def test_autolog_records_params_metrics_model_and_data_digest(trained: Trained) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from keel.models.autolog import dataset_digest

    X, y = trained.train.drop(columns=["target", "region"]), trained.train["target"]
    keel.autolog()
    try:
        with keel.start_run(experiment="auto") as run:
            model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    finally:
        keel.autolog(disable=True)
    stored = keel.get_run(run.id)
    assert stored.params["n_estimators"] == "10"
    assert stored.params["dataset.digest"] == dataset_digest(X, y)
    assert stored.metrics["training_accuracy"] == pytest.approx(model.score(X, y))
    loaded = keel.load_model(f"runs:/{run.id}/model")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    RandomForestClassifier(n_estimators=2).fit(X, y)   # disabled: no new run
    assert len(keel.search_runs("auto", as_list=True)) == 1
