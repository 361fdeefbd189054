"""keel's main job, end to end on embedded defaults (what `make demo` runs).

Versions the breast-cancer data set that scikit-learn ships (and a shifted
second batch), then runs the training as a cached pipeline
(``examples/demo/pipeline.py``: prepare -> a parallel sweep of six
candidates -> evaluate -> register): every trial is tracked with its model
package and the data it read (one fails on purpose: failed runs are tracked
too), the best model is registered and promoted to ``champion`` through
validation gates on a versioned holdout, and a weaker one is refused with its
evidence. Then the champion's lineage, a reload in a fresh process and batch
scoring; then serving (``examples/demo/serving.py``): the champion behind
``keel serve`` on 127.0.0.1, traffic, the runner-up as a 10% canary, feedback,
promotion, ``keel deploy status``, the inference log and a prediction's
lineage; then continuous training (``examples/demo/monitoring.py``): drifted
traffic from a recalibrated sensor, drift found and alerted, the HTML report,
a retrain on the newest data version (``examples/demo/retrain.py``) gated,
canaried and promoted by ``keel automate run``, and the new champion's
lineage naming the trigger; then the team server (``examples/demo/team.py``):
the workspace behind ``keel server``, a teammate's workspace logging into it
with ``KEEL_STORE=http://...``, and a viewer's token refused a write. The
workspace (build/demo) is kept: a second ``make demo`` reuses
every pipeline step from the cache and says so.
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


def version_data() -> None:
    """Snapshot the training data (v1), then a shifted copy (v2), as dataset versions."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    import keel.data

    frame = load_breast_cancer(as_frame=True).frame
    folder = Path("data")
    folder.mkdir(exist_ok=True)
    frame.to_csv(folder / "breast_cancer.csv", index=False)
    first = keel.data.add(folder, "breast-cancer", "scikit-learn's breast cancer data")
    v1 = first.version
    # A second batch as it might arrive later: a recalibrated instrument reads
    # 'mean radius' 30% high and some 'mean texture' values go missing.
    rng = np.random.default_rng(0)
    shifted = frame.copy()
    shifted["mean radius"] = shifted["mean radius"] * 1.3
    shifted.loc[rng.random(len(shifted)) < 0.1, "mean texture"] = np.nan
    shifted.to_csv(folder / "breast_cancer.csv", index=False)
    v2 = keel.data.add(folder, "breast-cancer", "new batch: recalibrated radius sensor").version
    frame.to_csv(folder / "breast_cancer.csv", index=False)  # the working copy stays v1
    verb = "versioned" if first.created else "already versioned (unchanged, no new version)"
    console.print(f"  [green]✓[/] {verb}: the training data as [bold]{v1.ref}[/] and a "
                  f"shifted batch as [bold]{v2.ref}[/] ({v1.files} file, {v1.bytes:,} bytes)")


def show_data_diff() -> None:
    """What moved between the two data versions (profiles compared column by column)."""
    import keel.data

    result = keel.data.diff("breast-cancer@1", "breast-cancer@2")
    for path, change in result.tables.items():
        moved = ", ".join(change.moved_columns) or "none"
        console.print(f"[bold]keel data diff breast-cancer@1 breast-cancer@2[/]: {path}: "
                      f"columns whose distribution moved: [yellow]{moved}[/]")


def run_pipeline() -> tuple[object, object]:
    """Run the training pipeline; print what each step did (ran, or cached and reused)."""
    sys.path.insert(0, str(HERE))
    from pipeline import breast_cancer

    from keel.tracking import session

    result = breast_cancer.run(parallel=2)
    table = Table(title="keel pipeline run examples/demo/pipeline.py")
    for column in ("step", "status", "run", "seconds"):
        table.add_column(column)
    for step in result.steps:
        style = {"ran": "green", "cached": "cyan"}.get(step.status, "red")
        table.add_row(step.step, f"[{style}]{step.status}", step.run_id or "-",
                      f"{step.seconds:.1f}" if step.status == "ran" else "-")
    console.print(table)
    if not result.ok:
        failed = [s for s in result.steps if s.error]
        raise SystemExit(f"the pipeline failed: {failed[0].step}: {failed[0].error}")
    cached = [s.step for s in result.steps if s.status == "cached"]
    if len(cached) == len(result.steps):
        console.print("  [cyan]↺[/] every step was cached: nothing was retrained (the first "
                      "`make demo` computed them; change a param to see what re-runs)")
    elif cached:
        console.print(f"  [cyan]↺[/] cached (reused): {', '.join(cached)}")
    ws = session.workspace()
    return result.output("sweep", ws), result.output("register", ws)


def report(swept: dict[str, object]) -> list[object]:
    """Compare the trials, name the best and show its provenance. Returns the runs,
    best first."""
    import keel
    from keel.workspace import current_workspace

    runs = keel.search_runs(experiment="breast-cancer",
                            filter=f"attributes.parent_run_id = '{swept['sweep_run_id']}'",
                            order_by=["metrics.auc DESC"], as_list=True)
    table = Table(title="the sweep's trials (child runs), best first")
    for column in ("run", "model", "status", "auc", "accuracy", "f1", "log_loss"):
        table.add_column(column, justify="right" if column in ("auc", "accuracy", "f1",
                                                               "log_loss") else "left")
    for r in runs:
        cells = [f"{r.metrics[k]:.4f}" if k in r.metrics else "-"
                 for k in ("auc", "accuracy", "f1", "log_loss")]
        status = {"FINISHED": "[green]FINISHED", "FAILED": "[red]FAILED"}.get(r.status, r.status)
        table.add_row(r.id[:12], r.params.get("family", r.name), status, *cells)
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
                                           f"{v.manifest_digest[:12]})" for v, role in used)
                   or "-")
    console.print(Panel(origin, title=f"best trial: {best.params.get('family')} "
                                      f"(auc {best.metrics['auc']:.4f}) — {best.id}"))
    failed = [r for r in runs if r.status == "FAILED"]
    if failed:
        last_line = (failed[0].error or "").strip().splitlines()[-1]
        console.print(f"[red]failed trial kept:[/] {failed[0].params.get('family')} "
                      f"({failed[0].id[:12]}): {last_line}")
    return runs


MODEL = "breast-cancer"
HOLDOUT = "breast-cancer-holdout@1"


def ship(registered: dict[str, object]) -> None:
    """What the pipeline's register step did, the champion's lineage, a reload in a
    fresh process and batch scoring."""
    import keel.models as km
    from keel.cli.lineage import render

    console.print(f"  [green]✓[/] registered {registered['champion']} "
                  f"({registered['family']}) and promoted it to [bold]{MODEL}@champion[/] "
                  "through the gates auc >= 0.95 and max-regression 0.005 on the holdout")
    refused = registered.get("refused")
    if isinstance(refused, dict):
        console.print(f"  [red]✗[/] {refused['ref']} (the stump) refused as champion: "
                      f"{refused['why']}")
        console.print(f"    the refusal and its evidence are in `keel model history {MODEL}`")
    tree = render(km.lineage(f"models:/{MODEL}@champion"))
    console.print(Panel(tree, title=f"keel lineage models:/{MODEL}@champion"))
    _reload_in_fresh_process()
    scored = km.batch_predict(f"models:/{MODEL}@champion", "holdout/holdout.csv",
                              "predictions.parquet")
    console.print(f"  [green]✓[/] batch inference: {scored.rows} rows -> {scored.output} "
                  f"(recorded as run {scored.run_id[:12]})")


def _reload_in_fresh_process() -> None:
    """The champion, loaded by alias in a new interpreter, predicts exactly as it
    does here."""
    import json
    import subprocess

    import pandas as pd

    import keel

    frame = pd.read_csv("holdout/holdout.csv").drop(columns="target")
    model = keel.load_model(f"models:/{MODEL}@champion")
    expected = model.predict_proba(frame)[:, 1].tolist()
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


def where_to_look(runs: list[object], launched_from: Path, more: list[str]) -> None:
    """The commands to explore what the demo made."""
    keel = os.path.relpath(Path(sys.executable).parent / "keel", WORKSPACE)
    best = runs[0]
    lines = [
        f"cd {os.path.relpath(WORKSPACE, launched_from)}",
        f"{keel} runs list",
        f"{keel} runs show {best.id[:12]}",  # type: ignore[attr-defined]
        f"{keel} runs compare {runs[0].id[:12]} {runs[1].id[:12]}",  # type: ignore[attr-defined]
        f"{keel} pipeline status {os.path.relpath(HERE / 'pipeline.py', WORKSPACE)}",
        f"{keel} pipeline show {os.path.relpath(HERE / 'pipeline.py', WORKSPACE)}",
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
        *(command.replace("keel ", f"{keel} ", 1) for command in more),
    ]
    console.print(Panel.fit("\n".join(lines),
                            title=f"where to look: the workspace is {WORKSPACE / '.keel'}"))


def main() -> None:
    # The workspace is kept between runs: a second demo reuses the pipeline's cache.
    # KEEL_DEMO_FRESH=1 starts over.
    launched_from = Path.cwd()
    if os.environ.get("KEEL_DEMO_FRESH"):
        shutil.rmtree(WORKSPACE, ignore_errors=True)
    WORKSPACE.mkdir(parents=True, exist_ok=True)
    os.chdir(WORKSPACE)
    from keel.workspace import init_workspace

    init_workspace(WORKSPACE)  # what `keel init` does
    started = time.perf_counter()
    console.rule("[bold]keel demo: version data, train as a cached pipeline, ship and serve "
                 "the best")
    version_data()
    swept, registered = run_pipeline()
    runs = report(swept)  # type: ignore[arg-type]
    show_data_diff()
    console.rule("[bold]registered, gated, promoted")
    ship(registered)  # type: ignore[arg-type]
    console.rule("[bold]served: canary, feedback, promotion, inference log")
    from serving import serve_and_roll_out

    serving_commands = serve_and_roll_out(runs)
    console.rule("[bold]watched and retrained: drift -> retrain -> gates -> canary -> promote")
    from monitoring import monitor_and_retrain

    monitoring_commands = monitor_and_retrain(WORKSPACE)
    console.rule("[bold]shared: the team server and a teammate's workspace")
    from team import share

    team_commands = share(WORKSPACE)
    where_to_look(runs, launched_from, serving_commands + monitoring_commands + team_commands)
    console.rule(f"done in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
