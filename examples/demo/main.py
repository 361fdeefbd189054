"""keel's main job, end to end on embedded defaults (what `make demo` runs).

Versions the breast-cancer data set that scikit-learn ships (and a shifted
second batch), trains several scikit-learn classifiers on version 1, tracks
every run, its model package and the data version it read (one fails on
purpose: failed runs are tracked too), compares them, registers the best model
and promotes it to `champion` through validation gates on a versioned holdout,
shows a weaker model refused with its evidence, prints the champion's lineage,
reloads it in a fresh process and scores a file with it.
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
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)),
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=7)),
        "forest": RandomForestClassifier(n_estimators=200, max_depth=6, random_state=0),
        "boosting": GradientBoostingClassifier(n_estimators=150, learning_rate=0.1,
                                               random_state=0),
        "stump": DecisionTreeClassifier(max_depth=1, random_state=0),  # a weak baseline
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


def train_all() -> tuple[str, dict[str, object]]:
    """Run the sweep: a parent run with one nested run per model, each logging its
    model package. Returns the parent id and the fitted models by run id."""
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
        # The held-out rows become a dataset version of their own: promotion
        # gates score every candidate on exactly these bytes.
        Path("holdout").mkdir(exist_ok=True)
        X_test.assign(target=y_test).to_csv("holdout/holdout.csv", index=False)
        sweep.log_dataset("holdout", name="breast-cancer-holdout", message="25% held out")
        fitted: dict[str, object] = {}
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
                    run.log_model(model, "model", input_example=X_train[:5])
                    fitted[run.id] = model
                console.print(f"  [green]✓[/] {name:<14} tracked as run {run.id[:12]}")
            except Exception as exc:  # the demo carries on; keel stored the failure
                console.print(f"  [red]✗[/] {name:<14} failed ({type(exc).__name__}); "
                              "keel stored the run as FAILED with its traceback")
    return sweep.id, fitted


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


def report(sweep_id: str) -> list[object]:
    """Compare the runs, name the best and show its provenance. Returns the runs,
    best first."""
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
    return runs


MODEL = "breast-cancer"
HOLDOUT = "breast-cancer-holdout@1"


def ship(runs: list[object], fitted: dict[str, object]) -> None:
    """Register the best model, promote it through the gates, watch a weaker one
    get refused, print the lineage, and reload the champion in a fresh process."""
    import keel.models as km
    from keel.cli.gate_options import print_report
    from keel.cli.lineage import render

    finished = [r for r in runs if r.status == "FINISHED"]  # type: ignore[attr-defined]
    best, weakest = finished[0], finished[-1]
    champion = km.register(f"runs:/{best.id}/model", MODEL,  # type: ignore[attr-defined]
                           description=f"{best.name}, best auc of the sweep")  # type: ignore[attr-defined]
    gates = km.GatePolicy.for_alias(MODEL, "champion", require=["auc >= 0.95"],
                                    holdout=HOLDOUT, max_regression=0.005)
    done = km.promote(champion.ref, "champion", reason="best of the first sweep", policy=gates)
    print_report(done.report, console)
    console.print(f"  [green]✓[/] registered {champion.ref} ({best.name}) and promoted it to "  # type: ignore[attr-defined]
                  f"[bold]{MODEL}@champion[/]")
    challenger = km.register(f"runs:/{weakest.id}/model", MODEL,  # type: ignore[attr-defined]
                             description=f"{weakest.name}: cheaper, but is it as good?")  # type: ignore[attr-defined]
    try:
        km.promote(challenger.ref, "champion", reason="cheaper to serve", policy=gates)
    except km.GateFailed as refused:
        print_report(refused.report, console)
        console.print(f"  [red]✗[/] {challenger.ref} ({weakest.name}) refused as champion; "  # type: ignore[attr-defined]
                      f"the refusal and its evidence are in `keel model history {MODEL}`")
    tree = render(km.lineage(f"models:/{MODEL}@champion"))
    console.print(Panel(tree, title=f"keel lineage models:/{MODEL}@champion"))
    _reload_in_fresh_process(fitted[best.id])  # type: ignore[attr-defined]
    scored = km.batch_predict(f"models:/{MODEL}@champion", "holdout/holdout.csv",
                              "predictions.parquet")
    console.print(f"  [green]✓[/] batch inference: {scored.rows} rows -> {scored.output} "
                  f"(recorded as run {scored.run_id[:12]})")


def _reload_in_fresh_process(model: object) -> None:
    """The champion, loaded by alias in a new interpreter, predicts exactly as
    the in-memory model did."""
    import json
    import subprocess

    import pandas as pd

    frame = pd.read_csv("holdout/holdout.csv").drop(columns="target")
    expected = model.predict_proba(frame)[:, 1].tolist()  # type: ignore[attr-defined]
    code = ("import json, keel, pandas as pd\n"
            "frame = pd.read_csv('holdout/holdout.csv').drop(columns='target')\n"
            f"model = keel.load_model('models:/{MODEL}@champion')\n"
            "print(json.dumps(model.predict_proba(frame)[:, 1].tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    reloaded = json.loads(out.stdout)
    same = reloaded == expected
    mark = "[green]✓[/]" if same else "[red]✗[/]"
    console.print(f"  {mark} a fresh Python process loaded models:/{MODEL}@champion and "
                  f"{'predicted identically' if same else 'predicted DIFFERENTLY'} on "
                  f"{len(frame)} rows")
    if not same:
        raise SystemExit("reloaded model disagrees with the trained one")


def where_to_look(runs: list[object], launched_from: Path) -> None:
    """The commands to explore what the demo made."""
    keel = os.path.relpath(Path(sys.executable).parent / "keel", WORKSPACE)
    best = runs[0]
    lines = [
        f"cd {os.path.relpath(WORKSPACE, launched_from)}",
        f"{keel} runs list",
        f"{keel} runs show {best.id[:12]}",  # type: ignore[attr-defined]
        f"{keel} runs compare {runs[0].id[:12]} {runs[1].id[:12]}",  # type: ignore[attr-defined]
        f"{keel} runs list --filter \"metrics.auc > 0.99\"",
        f"{keel} data log breast-cancer",
        f"{keel} data diff breast-cancer@1 breast-cancer@2",
        f"{keel} data show breast-cancer@1",
        f"{keel} model show {MODEL}@champion",
        f"{keel} model history {MODEL}",
        f"{keel} lineage models:/{MODEL}@champion",
        f"{keel} model evaluate {MODEL}@champion --data {HOLDOUT}",
        f"{keel} predict models:/{MODEL}@champion holdout/holdout.csv -o scored.csv",
        f"{os.path.relpath(sys.executable, WORKSPACE)} -c \"import keel; "
        f"print(keel.load_model('models:/{MODEL}@champion'))\"",
    ]
    console.print(Panel.fit("\n".join(lines),
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
    console.rule("[bold]keel demo: version data, track a sweep, ship the best model")
    version_data()
    sweep_id, fitted = train_all()
    runs = report(sweep_id)
    show_data_diff()
    console.rule("[bold]register, gate, promote")
    ship(runs, fitted)
    where_to_look(runs, launched_from)
    console.rule(f"done in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
