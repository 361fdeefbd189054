"""A workspace with a versioned holdout table and two logged models: a good
logistic regression and a poor one (a constant classifier)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import keel
import keel.data


@dataclass
class Trained:
    train: pd.DataFrame
    holdout: pd.DataFrame
    good_uri: str
    poor_uri: str
    good: object
    poor: object

    @property
    def features(self) -> pd.DataFrame:
        return self.holdout.drop(columns=["target", "region"])


def breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [*range(6), -1]]
    frame["region"] = ["north", "south", "east"] * (len(frame) // 3) + \
        ["north"] * (len(frame) % 3)
    return train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])


@pytest.fixture
def trained(backend: str, tmp_path: Path) -> Trained:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, holdout = breast_cancer()
    (tmp_path / "holdout").mkdir()
    holdout.to_csv(tmp_path / "holdout" / "holdout.csv", index=False)
    keel.data.add(tmp_path / "holdout", "holdout", "held-out rows")
    X, y = train.drop(columns=["target", "region"]), train["target"]
    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    poor = DummyClassifier(strategy="most_frequent").fit(X, y)
    uris = []
    for model in (good, poor):
        with keel.start_run(experiment="bc") as run:
            run.use_dataset("holdout@1")
            run.log_params({"model": type(model).__name__})
            uris.append(run.log_model(model, "model", input_example=X[:5]))
    return Trained(train, holdout, uris[0], uris[1], good, poor)
