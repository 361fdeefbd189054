"""Pipelines benchmark: keel's cached re-run against `dvc repro`, and sweep overhead.

    .venv/bin/python bench/pipelines.py [--steps 50] [--trials 16] [--reps 5] [--quick]

1  A chain of STEPS steps, each reading the previous one's output and writing
   its own (keel: a pipeline of @keel.step functions returning JSON; DVC: a
   dvc.yaml of STEPS stages running `python stage.py N`, each with its script
   and the previous output as deps and its output file as out). Both run once
   (not timed); then the no-change re-run is timed, as a whole command
   (`keel pipeline run`, `dvc repro`) and, for keel, in-process
   (`pipeline.run()` after the import). Targets: keel's no-change re-run
   < 1 s on the embedded store, and >= 5x faster than `dvc repro`.
2  A sweep of TRIALS trivial trials (a script that logs one metric), on the
   local pool (2 workers) and on a local Ray runtime: wall time, and the
   overhead per trial (wall time / trials, the trials doing next to nothing).
   Ray's start-up (ray.init) is reported apart.

DVC lives in bench/.venv-dvc (created on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peer_python

KEEL = Path(sys.executable).parent / "keel"
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def keel_pipeline(steps: int) -> str:
    lines = ["import keel", ""]
    for i in range(steps):
        args = "previous" if i else ""
        body = "previous['n'] + 1" if i else "0"
        lines += ["@keel.step", f"def s{i:02d}({args}):",
                  f"    return {{'n': {body}, 'step': {i}}}", ""]
    lines += ["@keel.pipeline", "def chain():", "    out = s00()"]
    lines += [f"    out = s{i:02d}(out)" for i in range(1, steps)]
    return "\n".join(lines) + "\n"


def dvc_project(folder: Path, steps: int) -> None:
    (folder / "stage.py").write_text(textwrap.dedent("""
        import json, sys
        i = int(sys.argv[1])
        n = json.load(open(f"out_{i - 1:02d}.json"))["n"] + 1 if i else 0
        json.dump({"n": n, "step": i}, open(f"out_{i:02d}.json", "w"))
    """))
    stages = {}
    for i in range(steps):
        deps = ["stage.py"] + ([f"out_{i - 1:02d}.json"] if i else [])
        stages[f"s{i:02d}"] = {"cmd": f"python stage.py {i}", "deps": deps,
                               "outs": [f"out_{i:02d}.json"]}
    (folder / "dvc.yaml").write_text(json.dumps({"stages": stages}, indent=1))


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env or ENV,
                         check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return elapsed


def median(args: list[str], cwd: Path, reps: int, env: dict[str, str] | None = None) -> float:
    return statistics.median(run(args, cwd, env) for _ in range(reps))


def measure_pipelines(root: Path, steps: int, reps: int) -> dict[str, float]:
    keel_dir, dvc_dir = root / "keel", root / "dvc"
    keel_dir.mkdir()
    dvc_dir.mkdir()
    (keel_dir / "chain.py").write_text(keel_pipeline(steps))
    run([str(KEEL), "init"], keel_dir)
    first = run([str(KEEL), "pipeline", "run", "chain.py"], keel_dir)
    res = {"keel_first": first,
           "keel_cli": median([str(KEEL), "pipeline", "run", "chain.py"], keel_dir, reps)}
    code = textwrap.dedent(f"""
        import statistics, time
        from keel.pipelines import load_pipeline
        pipe = load_pipeline("chain.py")
        pipe.run()
        times = []
        for _ in range({reps}):
            t = time.perf_counter(); result = pipe.run(); times.append(time.perf_counter() - t)
            assert {{s.status for s in result.steps}} == {{"cached"}}
        print(statistics.median(times))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=keel_dir, capture_output=True,
                         text=True, check=True, env=ENV)
    res["keel_op"] = float(out.stdout.strip().splitlines()[-1])
    dvc = str(peer_python("dvc").parent / "dvc")
    dvc_project(dvc_dir, steps)
    env = {**ENV, "PATH": f"{Path(sys.executable).parent}:{ENV.get('PATH', '')}"}
    run(["git", "init", "-q"], dvc_dir)
    run([dvc, "init", "-q"], dvc_dir, env)
    res["dvc_first"] = run([dvc, "repro"], dvc_dir, env)
    res["dvc_cli"] = median([dvc, "repro"], dvc_dir, reps, env)
    return res


TRIVIAL = """
import keel
p = keel.params(i=0)
with keel.start_run():
    keel.log_metric("score", p["i"] * 0.5)
"""


def measure_sweeps(root: Path, trials: int) -> dict[str, float]:
    folder = root / "sweep"
    folder.mkdir()
    (folder / "trivial.py").write_text(TRIVIAL)
    run([str(KEEL), "init"], folder)
    grid = ["--grid", "i=" + ",".join(str(i) for i in range(trials))]
    res = {"local": run([str(KEEL), "sweep", "trivial.py", *grid, "--parallel", "2",
                         "--metric", "score"], folder)}
    res["inline"] = run([str(KEEL), "sweep", "trivial.py", *grid, "--metric", "score"], folder)
    code = textwrap.dedent("""
        import time
        from keel.pipelines.executor import RayExecutor
        t = time.perf_counter(); RayExecutor(2).close(); print(time.perf_counter() - t)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=ENV)
    res["ray_init"] = float(out.stdout.strip().splitlines()[-1])
    res["ray"] = run([str(KEEL), "sweep", "trivial.py", *grid, "--parallel", "2", "--executor",
                      "ray", "--metric", "score"], folder)
    return res


def report(console: Console, args: argparse.Namespace, p: dict[str, float],
           s: dict[str, float]) -> None:
    table = Table(title=f"pipelines: {args.steps}-step chain, no-change re-run "
                        f"(median of {args.reps}); ratio = DVC / keel")
    for column in ("workload", "keel", "DVC", "ratio", "target", "pass/fail"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    ratio = p["dvc_cli"] / p["keel_cli"]
    table.add_row("first run (all steps execute), whole command", f"{p['keel_first']:.2f}",
                  f"{p['dvc_first']:.2f}", f"{p['dvc_first'] / p['keel_first']:.1f}x", "-", "-")
    table.add_row("no-change re-run, whole command", f"{p['keel_cli']:.3f}",
                  f"{p['dvc_cli']:.3f}", f"{ratio:.1f}x", ">= 5x",
                  "[green]pass" if ratio >= 5 else "[red]FAIL")
    table.add_row("no-change re-run, in-process (after import)", f"{p['keel_op']:.3f}", "-",
                  "-", "< 1 s", "[green]pass" if p["keel_op"] < 1 else "[red]FAIL")
    console.print(table)
    sweeps = Table(title=f"sweep of {args.trials} trivial trials (whole command)")
    for column in ("executor", "wall s", "per trial s"):
        sweeps.add_column(column, justify="left" if column == "executor" else "right")
    for key, label in (("inline", "inline (one at a time, in the command's process)"),
                       ("local", "local pool, 2 workers"), ("ray", "Ray, 2 CPUs (incl. start)")):
        sweeps.add_row(label, f"{s[key]:.2f}", f"{s[key] / args.trials:.3f}")
    sweeps.add_row("  of which Ray start-up (ray.init + shutdown)", f"{s['ray_init']:.2f}", "-")
    sweeps.add_row("Ray, start-up excluded", f"{s['ray'] - s['ray_init']:.2f}",
                   f"{(s['ray'] - s['ray_init']) / args.trials:.3f}")
    console.print(sweeps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 8 steps, 4 trials")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.trials, args.reps = 8, 4, 2
    console = Console()
    if not console.is_terminal:
        console.width = 130
    console.print({"load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
                   "cores": os.cpu_count()})
    with tempfile.TemporaryDirectory(prefix="keel-bench-pipelines-") as temp:
        p = measure_pipelines(Path(temp), args.steps, args.reps)
        s = measure_sweeps(Path(temp), args.trials)
    report(console, args, p, s)
    if args.json:
        args.json.write_text(json.dumps({"pipelines": p, "sweeps": s}, indent=2))


if __name__ == "__main__":
    main()
