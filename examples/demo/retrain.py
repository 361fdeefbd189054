"""The demo's retraining pipeline, run by continuous training (``keel automate``):
fit the sweep's best family on the newest data version and register it.

    keel automate run            # from the demo's workspace: runs this when a trigger fires

The policy that runs it is ``[automate.demo]`` in the workspace's keel.toml
(``examples/demo/monitoring.py`` writes it). Its last step returns the
version it registered, which the loop then gates, canaries and promotes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import MODEL, make_model

import keel


@keel.step(env=["scikit-learn"])
def train(data: Path, family: str = "logreg", source: str = "") -> dict[str, Any]:
    """Fit ``family`` on the data version, score it on a stratified validation
    split, log and register the model (promotion is the loop's business)."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import keel.models as km

    frame = pd.read_csv(Path(data) / "breast_cancer.csv")
    X, y = frame.drop(columns="target"), frame["target"]
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.25, random_state=0,
                                                  stratify=y)
    model = make_model(family).fit(X_fit, y_fit)
    proba = model.predict_proba(X_val)[:, 1]
    pred = (proba >= 0.5).astype(int)
    run = keel.active_run()
    assert run is not None
    run.log_metrics({"auc": roc_auc_score(y_val, proba), "accuracy": accuracy_score(y_val, pred),
                     "f1": f1_score(y_val, pred)})
    uri = run.log_model(model, "model", input_example=X_fit[:5])
    version = km.register(uri, MODEL, description=f"{family} retrained on {source}")
    return {"model_version": version.ref}


@keel.pipeline
def retrain(data: str = "breast-cancer@latest", family: str = "logreg") -> Any:
    return train(keel.dataset(data), family=family, source=data)
