"""The demo's training, as a keel pipeline: prepare -> sweep -> evaluate -> register.

    keel pipeline run examples/demo/pipeline.py         # from the demo's workspace
    keel pipeline status examples/demo/pipeline.py      # what would run, and why

Every step is cached: run it twice and the second run reuses every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keel

MODEL = "breast-cancer"
DATA = "breast-cancer@1"

# The sweep's candidates: a family and its settings. "forest" with n_estimators
# -5 is refused by scikit-learn: failed trials are tracked too.
CONFIGS = {
    "logreg": {"C": 1.0},
    "knn": {"n_neighbors": 7},
    "forest": {"n_estimators": 200, "max_depth": 6},
    "boosting": {"n_estimators": 150, "learning_rate": 0.1},
    "stump": {"max_depth": 1},
    "broken-forest": {"n_estimators": -5},
}


def make_model(family: str) -> Any:
    """A scikit-learn estimator of ``family`` with the demo's settings."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    settings = CONFIGS[family]
    if family == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, **settings))
    if family == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(**settings))
    if family in ("forest", "broken-forest"):
        return RandomForestClassifier(random_state=0, **settings)
    if family == "boosting":
        return GradientBoostingClassifier(random_state=0, **settings)
    return DecisionTreeClassifier(random_state=0, **settings)


@keel.step(outputs=["holdout/holdout.csv"])
def prepare(data: Path, test_size: float = 0.25) -> dict[str, Any]:
    """Split the versioned data; the held-out rows become a dataset version of
    their own, so promotion gates score every candidate on exactly these bytes."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(Path(data) / "breast_cancer.csv")
    train, holdout = train_test_split(frame, test_size=test_size, random_state=42,
                                      stratify=frame["target"])
    Path("holdout").mkdir(exist_ok=True)
    holdout.to_csv("holdout/holdout.csv", index=False)
    version = keel.log_dataset("holdout", name="breast-cancer-holdout",
                               message=f"{test_size:.0%} held out")
    return {"train": train, "holdout_ref": version.ref}


def train_one(family: str, train_path: str) -> dict[str, float]:
    """One sweep trial: fit ``family`` on the training rows, log metrics and the model."""
    import time

    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    run = keel.active_run()
    assert run is not None
    train = pd.read_parquet(train_path)
    X, y = train.drop(columns="target"), train["target"]
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.2, random_state=0,
                                                  stratify=y)
    started = time.perf_counter()
    model = make_model(family).fit(X_fit, y_fit)
    proba = model.predict_proba(X_val)[:, 1]
    pred = (proba >= 0.5).astype(int)
    run.set_tags({"family": type(model).__name__})
    run.log_model(model, "model", input_example=X_fit[:5])
    return {"auc": roc_auc_score(y_val, proba), "accuracy": accuracy_score(y_val, pred),
            "f1": f1_score(y_val, pred), "log_loss": log_loss(y_val, proba),
            "fit_seconds": time.perf_counter() - started}


@keel.step(env=["scikit-learn"])
def sweep(prepared: dict[str, Any], parallel: int = 2) -> dict[str, Any]:
    """Every candidate as a trial of a parallel sweep (a local process pool)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="keel-demo-"))
    path = folder / "train.parquet"
    prepared["train"].to_parquet(path)
    result = keel.sweep(_trial, grid={"family": list(CONFIGS), "train_path": [str(path)]},
                        parallel=parallel, executor="local", metric="auc", mode="max",
                        experiment="breast-cancer")
    ranked = [{"family": t.params["family"], "run_id": t.run_id, "status": t.status,
               "auc": result.values.get(t.number)} for t in result.ranked]
    return {"sweep_run_id": result.run_id, "trials": ranked,
            "holdout_ref": prepared["holdout_ref"]}


def _trial(family: str, train_path: str) -> dict[str, float]:
    return train_one(family, train_path)


@keel.step
def evaluate(swept: dict[str, Any]) -> dict[str, Any]:
    """The best trial's model scored on the versioned holdout (an evaluation run)."""
    import keel.models as km

    best = next(t for t in swept["trials"] if t["status"] == "finished")
    found = km.evaluate(f"runs:/{best['run_id']}/model", swept["holdout_ref"],
                        label="target")
    return {"best": best, "holdout": found.metrics, "evaluation_run": found.run_id}


@keel.step
def register(swept: dict[str, Any], evaluated: dict[str, Any],
             min_auc: float = 0.95) -> dict[str, Any]:
    """Register the best model and promote it to champion through the gates; then
    show a weaker one (the stump) refused with its evidence."""
    import keel.models as km

    gates = km.GatePolicy.for_alias(MODEL, "champion", require=[f"auc >= {min_auc}"],
                                    holdout=swept["holdout_ref"], max_regression=0.005)
    best = evaluated["best"]
    champion = km.register(f"runs:/{best['run_id']}/model", MODEL,
                           description=f"{best['family']}, best auc of the sweep")
    km.promote(champion.ref, "champion", reason="best of the sweep", policy=gates)
    stump = next(t for t in swept["trials"] if t["family"] == "stump")
    challenger = km.register(f"runs:/{stump['run_id']}/model", MODEL,
                             description="the stump: cheaper, but is it as good?")
    try:
        km.promote(challenger.ref, "champion", reason="cheaper to serve", policy=gates)
        refused = None
    except km.GateFailed as exc:
        refused = {"ref": challenger.ref, "why": exc.message}
    return {"champion": champion.ref, "family": best["family"], "refused": refused}


@keel.pipeline
def breast_cancer(parallel: int = 2, min_auc: float = 0.95) -> Any:
    prepared = prepare(keel.dataset(DATA))
    swept = sweep(prepared, parallel=parallel)
    evaluated = evaluate(swept)
    return register(swept, evaluated, min_auc=min_auc)
