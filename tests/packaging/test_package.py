"""Package round trips (scikit-learn, ONNX) and signature enforcement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidInput
from keel.packaging import load_package, save_package
from keel.packaging.load import read_manifest


@pytest.fixture
def frame() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target


def test_sklearn_round_trip_keeps_predictions_and_records_the_environment(
        tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = frame
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    save_package(model, tmp_path / "pkg", input_example=X[:5], metrics={"acc": 0.9})
    loaded = load_package(tmp_path / "pkg")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))
    manifest = read_manifest(tmp_path / "pkg")
    assert manifest.flavor == "sklearn" and manifest.task == "classification"
    assert manifest.classes == [0, 1, 2]
    assert {"python", "scikit-learn", "skops"} <= set(manifest.requirements)
    assert manifest.metrics == {"acc": 0.9}
    pd.testing.assert_frame_equal(loaded.input_example(), X[:5].reset_index(drop=True))


def test_predict_names_missing_extra_and_mistyped_columns(
        tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = frame
    save_package(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "pkg", input_example=X)
    model = load_package(tmp_path / "pkg")
    with pytest.raises(InvalidInput, match="missing column\\(s\\) 'petal width \\(cm\\)'"):
        model.predict(X.drop(columns="petal width (cm)"))
    with pytest.raises(InvalidInput, match="unexpected column\\(s\\) 'colour'"):
        model.predict(X.assign(colour="red"))
    with pytest.raises(InvalidInput, match="column 'sepal length \\(cm\\)' holds string"):
        model.predict(X.assign(**{"sepal length (cm)": "long"}))
    with pytest.raises(InvalidInput, match="takes a table of 4 columns"):
        model.predict(np.zeros((2, 3)))
    # Harmless differences are accepted: column order, ints for floats, numeric strings.
    shuffled = X[X.columns[::-1]].copy()
    shuffled["sepal length (cm)"] = shuffled["sepal length (cm)"].round().astype(int)
    assert len(model.predict(shuffled)) == len(X)
    assert len(model.predict(X.astype(str).astype(object))) == len(X)


def test_onnx_round_trip(tmp_path: Path, frame: tuple[pd.DataFrame, pd.Series]) -> None:
    pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = frame
    array = X.to_numpy(dtype=np.float32)
    sk = LogisticRegression(max_iter=500).fit(array, y)
    onnx_model = to_onnx(sk, array[:1], options={"zipmap": False})
    save_package(onnx_model, tmp_path / "pkg", input_example=array[:5])
    loaded = load_package(tmp_path / "pkg")
    assert loaded.manifest.flavor == "onnx"
    assert (loaded.predict(array) == sk.predict(array)).mean() > 0.99
    assert np.allclose(loaded.predict_proba(array), sk.predict_proba(array), atol=1e-4)
    with pytest.raises(InvalidInput, match="shape"):
        loaded.predict(array[:, :2])


def test_saving_needs_an_example_or_signature_and_an_empty_folder(tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    with pytest.raises(InvalidInput, match="needs an input signature"):
        save_package(model, tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep me")
    with pytest.raises(InvalidInput, match="not empty"):
        save_package(model, tmp_path / "b", input_example=[[0]])
    assert (tmp_path / "b" / "x").read_text() == "keep me"
    with pytest.raises(InvalidInput, match="cannot package"):
        save_package(object(), tmp_path / "c", input_example=[[0]])
