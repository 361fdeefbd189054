"""keel's main job, end to end on embedded defaults (what `make demo` runs).

Versions the breast-cancer data set that scikit-learn ships (and a shifted
second batch), trains several scikit-learn classifiers on version 1, tracks
every run and the data version it read (one fails on purpose: failed runs are
tracked too), then compares them, picks the best and shows where it came from.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parents[1] / "build" / "demo"
console = Console()


def candidates() -> dict[str, object]:
    """The models to compare; the last one has an invalid setting and fails."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)),
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=7)),
        "forest": RandomForestClassifier(n_estimators=200, max_depth=6, random_state=0),
        "boosting": GradientBoostingClassifier(n_estimators=150, learning_rate=0.1,
                                               random_state=0),
        "broken-forest": RandomForestClassifier(n_estimators=-5),  # refused by scikit-learn
    }


def version_data() -> None:
    """Snapshot the training data (v1), then a shifted copy (v2), as dataset versions."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    import keel.data

    frame = load_breast_cancer(as_frame=True).frame
    folder = Path("data")
    folder.mkdir(exist_ok=True)
    frame.to_csv(folder / "breast_cancer.csv", index=False)
    v1 = keel.data.add(folder, "breast-cancer", "scikit-learn's breast cancer data").version
    # A second batch as it might arrive later: a recalibrated instrument reads
    # 'mean radius' 30% high and some 'mean texture' values go missing.
    rng = np.random.default_rng(0)
    shifted = frame.copy()
    shifted["mean radius"] = shifted["mean radius"] * 1.3
    shifted.loc[rng.random(len(shifted)) < 0.1, "mean texture"] = np.nan
    shifted.to_csv(folder / "breast_cancer.csv", index=False)
    v2 = keel.data.add(folder, "breast-cancer", "new batch: recalibrated radius sensor").version
    frame.to_csv(folder / "breast_cancer.csv", index=False)  # the working copy stays v1
    console.print(f"  [green]✓[/] versioned the training data as [bold]{v1.ref}[/] and a "
                  f"shifted batch as [bold]{v2.ref}[/] ({v1.files} file, {v1.bytes:,} bytes)")


def show_data_diff() -> None:
    """What moved between the two data versions (profiles compared column by column)."""
    import keel.data

    result = keel.data.diff("breast-cancer@1", "breast-cancer@2")
    for path, change in result.tables.items():
        moved = ", ".join(change.moved_columns) or "none"
        console.print(f"[bold]keel data diff breast-cancer@1 breast-cancer@2[/]: {path}: "
                      f"columns whose distribution moved: [yellow]{moved}[/]")


def train_all() -> str:
    """Run the sweep: a parent run with one nested run per model. Returns the parent id."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    import keel

    with keel.start_run(experiment="breast-cancer", name="model-sweep") as sweep:
        data = sweep.use_dataset("breast-cancer@1")  # recorded as the sweep's input
        frame = pd.read_csv(data / "breast_cancer.csv")
        X, y = frame.drop(columns="target"), frame["target"]
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                            random_state=42, stratify=y)
        sweep.log_params({"dataset": "breast-cancer@1", "test_size": 0.25, "rows": len(X)})
        for name, model in candidates().items():
            started = time.perf_counter()
            try:
                with keel.start_run(name=name, params=_params(model),
                                    tags={"family": type(model).__name__}) as run:
                    run.use_dataset("breast-cancer@1")
                    model.fit(X_train, y_train)
                    _log_learning_curve(run, model, X_test, y_test)
                    proba = model.predict_proba(X_test)[:, 1]
                    pred = (proba >= 0.5).astype(int)
                    run.log_metrics({"auc": roc_auc_score(y_test, proba),
                                     "accuracy": accuracy_score(y_test, pred),
                                     "f1": f1_score(y_test, pred),
                                     "log_loss": log_loss(y_test, proba),
                                     "fit_seconds": time.perf_counter() - started})
                    run.log_dict({"features": list(X.columns)}, "features.json")
                console.print(f"  [green]✓[/] {name:<14} tracked as run {run.id[:12]}")
            except Exception as exc:  # the demo carries on; keel stored the failure
                console.print(f"  [red]✗[/] {name:<14} failed ({type(exc).__name__}); "
                              "keel stored the run as FAILED with its traceback")
    return sweep.id


def _params(model: object) -> dict[str, object]:
    """The estimator's own settings, flattened (pipelines name their steps)."""
    params = model.get_params(deep=True)  # type: ignore[attr-defined]
    return {k: v for k, v in params.items()
            if isinstance(v, int | float | str | bool | type(None)) and len(k) < 80}


def _log_learning_curve(run: object, model: object, X_test: object, y_test: object) -> None:
    """Boosting exposes a score per stage: log it as a step metric."""
    from sklearn.metrics import roc_auc_score

    staged = getattr(model, "staged_predict_proba", None)
    if staged is None:
        return
    for step, proba in enumerate(staged(X_test)):
        if step % 10 == 0:
            score = roc_auc_score(y_test, proba[:, 1])
            run.log_metric("auc_by_stage", score, step=step)  # type: ignore[attr-defined]


def report(sweep_id: str, launched_from: Path) -> None:
    """Compare the runs, name the best and show its provenance."""
    import keel
    from keel.workspace import current_workspace

    runs = keel.search_runs(experiment="breast-cancer",
                            filter=f"attributes.parent_run_id = '{sweep_id}'",
                            order_by=["metrics.auc DESC"], as_list=True)
    table = Table(title="runs of experiment 'breast-cancer', best first")
    for column in ("run", "model", "status", "auc", "accuracy", "f1", "log_loss"):
        table.add_column(column, justify="right" if column in ("auc", "accuracy", "f1",
                                                               "log_loss") else "left")
    for r in runs:
        cells = [f"{r.metrics[k]:.4f}" if k in r.metrics else "-"
                 for k in ("auc", "accuracy", "f1", "log_loss")]
        status = {"FINISHED": "[green]FINISHED", "FAILED": "[red]FAILED"}.get(r.status, r.status)
        table.add_row(r.id[:12], r.name, status, *cells)
    console.print(table)

    best = next(r for r in runs if r.status == "FINISHED")
    tags = best.tags
    origin = Table.grid(padding=(0, 2))
    for label, key in (("git commit", "keel.git.commit"), ("git status", "keel.git.status"),
                       ("branch", "keel.git.branch"), ("entry point", "keel.source.entrypoint"),
                       ("python", "keel.python"), ("host", "keel.host"), ("user", "keel.user")):
        origin.add_row(f"[bold]{label}", tags.get(key, "-"))
    files = ", ".join(a.path for a in keel.list_artifacts(best.id))
    origin.add_row("[bold]artifacts", files)
    used = current_workspace().store.datasets_of_run(best.id)
    origin.add_row("[bold]data", ", ".join(f"{v.ref} ({role}, manifest "
                                           f"{v.manifest_digest[:12]})" for v, role in used))
    console.print(Panel(origin, title=f"best run: {best.name} (auc {best.metrics['auc']:.4f}) "
                                      f"— {best.id}"))
    failed = [r for r in runs if r.status == "FAILED"]
    if failed:
        last_line = (failed[0].error or "").strip().splitlines()[-1]
        console.print(f"[red]failed run kept:[/] {failed[0].name} ({failed[0].id[:12]}): "
                      f"{last_line}")
    keel_bin = Path(sys.executable).parent / "keel"
    rel = os.path.relpath(WORKSPACE, launched_from)
    console.print(Panel.fit(
        f"cd {rel}\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} runs list\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} runs show {best.id[:12]}\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} runs compare {runs[0].id[:12]} "
        f"{runs[1].id[:12]}\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} runs list --filter \"metrics.auc > 0.99\"\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} data log breast-cancer\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} data diff breast-cancer@1 breast-cancer@2\n"
        f"{os.path.relpath(keel_bin, WORKSPACE)} data show breast-cancer@1",
        title=f"where to look: the workspace is {WORKSPACE / '.keel'}"))


def main() -> None:
    # A fresh workspace each time, so the output reads the same on every run.
    launched_from = Path.cwd()
    shutil.rmtree(WORKSPACE, ignore_errors=True)
    WORKSPACE.mkdir(parents=True)
    os.chdir(WORKSPACE)
    from keel.workspace import init_workspace

    init_workspace(WORKSPACE)  # what `keel init` does
    started = time.perf_counter()
    console.rule("[bold]keel demo: version data, track a model sweep")
    version_data()
    sweep_id = train_all()
    report(sweep_id, launched_from)
    show_data_diff()
    console.rule(f"done in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
