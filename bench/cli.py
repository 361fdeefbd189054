"""Whole-command benchmark: what a user waits for at the prompt, start-up included.

    .venv/bin/python bench/cli.py [--runs 10000] [--reps 7] [--quick] [--json FILE]

Every figure is the median wall time of ``--reps`` runs of a complete command
(interpreter start-up, imports, work, output), keel side by side with the peer
that has the same command:

1  ``keel --help`` against ``dvc --help`` and ``mlflow --help``;
   target: keel <= 0.15 s.
2  ``keel runs list`` on RUNS runs (the newest 100, keel's default);
   target: <= 0.3 s at 10,000 runs. And listing every run, keel
   (``-n RUNS``) against ``mlflow runs list`` (which always lists all).
3  cold ``keel predict`` of a registered scikit-learn model on a 143-row CSV
   against ``mlflow models predict --env-manager local`` on the same data.

``keel --help`` is also checked for what it imports: pandas, SQLAlchemy,
scikit-learn or matplotlib there is a failure, whatever the time.
MLflow and DVC live in bench/.venv-mlflow and bench/.venv-dvc (created on
first use). Seeding (RUNS runs through each tool's Python API) is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peer_python, run_peer

KEEL = Path(sys.executable).parent / "keel"  # the keel of the venv running this script
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "COLUMNS": "120", "NO_COLOR": "1"}
HEAVY = ("pandas", "sqlalchemy", "sklearn", "matplotlib", "pyarrow")


def timed(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds one command takes to run to completion (a failure stops the bench)."""
    start = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env or ENV,
                         check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout[-1500:]}{out.stderr[-1500:]}")
    return elapsed


def median(args: list[str], cwd: Path, reps: int, env: dict[str, str] | None = None) -> float:
    timed(args, cwd, env)  # warm the page cache: every figure is a warm start
    return statistics.median(timed(args, cwd, env) for _ in range(reps))


def help_imports() -> list[str]:
    """Heavy modules that ``keel --help`` imports (should be none)."""
    code = ("import sys; sys.argv = ['keel', '--help']\n"
            "from keel.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=ENV, check=True)
    return [m for m in out.stderr.strip().split(",") if m]


def seed_keel(work: Path, runs: int, train_csv: Path) -> None:
    """RUNS runs through keel's Python API, and a registered model."""
    code = f"""
import pandas as pd, keel, keel.models
for i in range({runs}):
    with keel.start_run(experiment="bench", name=f"run-{{i}}",
                        params={{"lr": i, "depth": i % 7}}) as run:
        run.log_metrics({{"acc": 0.5, "loss": 0.5}})
from sklearn.linear_model import LogisticRegression
frame = pd.read_csv({str(train_csv)!r})
X, y = frame.drop(columns=["target"]), frame["target"]
with keel.start_run(experiment="bench") as run:
    uri = run.log_model(LogisticRegression(max_iter=5000).fit(X, y), input_example=X[:5])
keel.models.register(uri, "bc")
"""
    subprocess.run([str(KEEL), "init"], cwd=work, check=True, capture_output=True, env=ENV)
    subprocess.run([sys.executable, "-c", code], cwd=work, check=True, env=ENV)


def data_files(work: Path) -> tuple[Path, Path]:
    """Breast-cancer rows: a training CSV (with target) and a 143-row CSV to score."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.25, random_state=0)
    train.to_csv(work / "train.csv", index=False)
    test.drop(columns=["target"]).to_csv(work / "score.csv", index=False)
    return work / "train.csv", work / "score.csv"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {}
    mlflow_bin = str(peer_python("mlflow").parent / "mlflow")
    dvc_bin = str(peer_python("dvc").parent / "dvc")
    with tempfile.TemporaryDirectory(prefix="keel-bench-cli-") as temp:
        root = Path(temp)
        keel_dir, mlflow_dir = root / "keel", root / "mlflow"
        keel_dir.mkdir()
        mlflow_dir.mkdir()
        train, score = data_files(root)
        res["help"] = {"keel": median([str(KEEL), "--help"], root, args.reps),
                       "dvc": median([dvc_bin, "--help"], root, args.reps),
                       "mlflow": median([mlflow_bin, "--help"], root, args.reps)}
        res["help_imports"] = help_imports()
        print(f"seeding {args.runs:,} runs in each tool (not timed)...", file=sys.stderr)
        seed_keel(keel_dir, args.runs, train)
        seeded = run_peer("mlflow", "mlflow_cli_side.py", str(mlflow_dir), str(args.runs),
                          str(train))
        mlflow_env = {**ENV, "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_dir}/mlflow.db"}
        res["runs_list"] = {"keel": median([str(KEEL), "runs", "list"], keel_dir, args.reps)}
        res["runs_list_all"] = {
            "keel": median([str(KEEL), "runs", "list", "-n", str(args.runs + 1)], keel_dir,
                           args.reps),
            "mlflow": median([mlflow_bin, "runs", "list", "--experiment-id",
                              seeded["experiment_id"]], mlflow_dir, args.reps, mlflow_env)}
        out = root / "out.csv"
        res["predict"] = {
            "keel": median([str(KEEL), "predict", "models:/bc/1", str(score), "-o", str(out)],
                           keel_dir, args.reps),
            "mlflow": median([mlflow_bin, "models", "predict", "-m", seeded["model_uri"], "-i",
                              str(score), "-t", "csv", "-o", str(root / "mlflow-out.json"),
                              "--env-manager", "local"], mlflow_dir, args.reps, mlflow_env)}
    return res


def report(console: Console, args: argparse.Namespace, res: dict[str, Any]) -> bool:
    """Print the table; True if every target holds."""
    table = Table(title=f"whole commands, median of {args.reps} (seconds; ratio = peer / keel)")
    for column in ("command", "keel", "peer", "ratio", "target", "pass/fail"):
        table.add_column(column, justify="left" if column == "command" else "right")
    ok = True

    def row(label: str, ours: float, peer: float | None, peer_name: str,
            limit: float | None) -> None:
        nonlocal ok
        passed = limit is None or ours <= limit
        ok = ok and passed
        table.add_row(label, f"{ours:.3f}",
                      f"{peer:.3f} ({peer_name})" if peer is not None else "-",
                      f"{peer / ours:.1f}x" if peer is not None else "-",
                      f"<= {limit:g} s" if limit is not None else "-",
                      "-" if limit is None else "[green]pass[/]" if passed else "[red]FAIL[/]")

    h = res["help"]
    row("keel --help", h["keel"], h["dvc"], "dvc", 0.15)
    row("keel --help", h["keel"], h["mlflow"], "mlflow", None)
    row(f"keel runs list ({args.runs:,} runs, newest 100)", res["runs_list"]["keel"], None, "",
        0.3 if args.runs >= 10_000 else None)
    row(f"list all {args.runs:,} runs", res["runs_list_all"]["keel"],
        res["runs_list_all"]["mlflow"], "mlflow runs list", None)
    row("cold predict, 143 rows", res["predict"]["keel"], res["predict"]["mlflow"],
        "mlflow models predict", None)
    console.print(table)
    heavy = res["help_imports"]
    ok = ok and not heavy
    console.print("keel --help imports " + (f"[red]{', '.join(heavy)}[/]" if heavy else
                                             "[green]none of " + ", ".join(HEAVY) + "[/]"))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs seeded in each tool")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per command")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run for CI: 200 runs, 2 repetitions")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.reps = 200, 2
    console = Console()
    if not console.is_terminal:
        console.width = 130
    console.print({"python": platform.python_version(), "cores": os.cpu_count(),
                   "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}"})
    res = measure(args)
    report(console, args, res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
