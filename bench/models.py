"""Model-package benchmark: keel's scikit-learn package against MLflow's pyfunc, same models.

    .venv/bin/python bench/models.py [--quick] [--json FILE]
    .venv/bin/python bench/models.py --profile      # where keel's 1-row predict goes

Two models, each trained on both sides from the same table (make_classification,
20,000 x 20 float columns f00..f19, the last fifth held out) with the same seed:
a RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0) and a
StandardScaler + LogisticRegression pipeline. Each side logs it with an input
example, registers it, and loads it back as ``models:/bench-NAME/1``; the
predictions of the two loaded models on the held-out rows must agree.

Workloads, per model:
1  load, cold: the load call alone, first in a fresh process (numpy, pandas,
   scikit-learn, skops and the tool are imported first, not timed), median of
   --cold processes. keel twice: with an empty model cache (the package is
   materialised from the blob store) and with the cache present.
2  load, warm: median of --warm loads in one process, after a first one.
3  predict, 1 row: median and p95 of 2,000 calls, each on a 1-row DataFrame.
4  predict, 1,000 rows: median of 200 calls.
Also per side: the estimator's own predict on the same frames, timed in
alternation with the tool's predict (so both see the same machine); the
difference is the tool's overhead. And the tool's import time in a fresh process
(reported, not part of any load).

Both sides run the same protocol code (this file's ``side_main``): keel's in
this venv, MLflow 3.17.2's in bench/.venv-mlflow (created on first use, see
peers.py) through bench/mlflow_models_side.py, each step a fresh process that
prints its JSON last. Ratio = MLflow time / keel time: above 1, keel is faster.
MLflow saves scikit-learn models with skops by default (as keel does); it needs
the trees' types declared trusted at log time and MLFLOW_ALLOW_PICKLE_DESERIALIZATION
to load anything, both set by its side. Its telemetry is switched off. About 1 s
of MLflow's cold load is its own lazy imports (the SQLAlchemy store) and its
check of the model's pip requirements against the installed packages: both
happen inside ``mlflow.pyfunc.load_model``, so they are counted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import peer_python, ratio  # noqa: E402

MODELS = ("rf", "lr")
LABELS = {"rf": "RandomForest(100, depth 8)", "lr": "Scaler+LogisticRegression"}
FEATURES = 20
HELD_OUT = 0.2  # the share of rows held out: the predict inputs and the agreement check


# -- the protocol, shared by both sides (numpy/pandas/scikit-learn only) ---------


class Tool:
    """What a side plugs into the protocol; keel's below, MLflow's in its side script."""

    name = ""

    def import_tool(self) -> None:
        """Import everything the tool needs to load and predict (timed separately)."""

    def log_and_register(self, model: Any, name: str, example: Any) -> str:
        """Log ``model`` in a run, register it as ``name``; its registry URI."""
        raise NotImplementedError

    def load(self, uri: str) -> Any:
        raise NotImplementedError

    def predict(self, loaded: Any, frame: Any) -> Any:
        return loaded.predict(frame)

    def estimator(self, loaded: Any) -> Any:
        """The fitted scikit-learn object inside a loaded package."""
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Forget whatever a previous load left behind (no-op if nothing)."""

    def versions(self) -> dict[str, str]:
        return {}


def read_table(path: Path) -> tuple[Any, Any, Any]:
    """Training frame, training labels and held-out frame from the shared .npz."""
    import numpy as np
    import pandas as pd

    with np.load(path) as data:
        x, y = data["x"], data["y"]
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(x.shape[1])])
    split = len(frame) - int(len(frame) * HELD_OUT)
    return frame.iloc[:split].reset_index(drop=True), y[:split], \
        frame.iloc[split:].reset_index(drop=True)


def make_model(kind: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "rf":
        return RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0))


def import_libraries() -> None:
    """What a serving process has loaded before it asks for a model (both sides)."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.ensemble
    import sklearn.linear_model
    import sklearn.pipeline
    import sklearn.preprocessing  # noqa: F401
    import skops.io  # noqa: F401


def step_setup(tool: Tool, table: Path, out: Path) -> dict[str, Any]:
    """Train, log and register both models; write the loaded models' predictions."""
    import numpy as np

    train, labels, held_out = read_table(table)
    tool.import_tool()
    uris: dict[str, str] = {}
    for kind in MODELS:
        model = make_model(kind).fit(train, labels)
        uris[kind] = tool.log_and_register(model, f"bench-{kind}", train.iloc[:5])
        loaded = tool.load(uris[kind])
        np.save(out / f"{tool.name}-{kind}.npy", np.asarray(tool.predict(loaded, held_out)))
    return {"uris": uris, "versions": tool.versions(),
            "python": platform.python_version()}


def step_cold(tool: Tool, uri: str, clear: bool) -> dict[str, float]:
    """One cold load: this process has loaded no model yet; only the call is timed."""
    import_libraries()
    started = time.perf_counter()
    tool.import_tool()
    imported = time.perf_counter() - started
    if clear:
        tool.clear_cache()
    gc.collect()
    started = time.perf_counter()
    tool.load(uri)
    return {"import": imported, "load": time.perf_counter() - started}


def latencies(calls: list[Callable[[Any], Any]], frames: list[Any],
              count: int) -> list[list[float]]:
    """Seconds per call of each of ``calls``, taking turns on the same frame (in
    alternating order), cycling through ``frames``; a few untimed calls first."""
    for frame in frames[:20]:
        for call in calls:
            call(frame)
    gc.collect()
    times: list[list[int]] = [[] for _ in calls]
    clock = time.perf_counter_ns
    order = list(range(len(calls)))
    for i in range(count):
        frame = frames[i % len(frames)]
        for j in order if i % 2 == 0 else order[::-1]:
            started = clock()
            calls[j](frame)
            times[j].append(clock() - started)
    return [[t / 1e9 for t in one] for one in times]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def step_measure(tool: Tool, uris: dict[str, str], table: Path, warm: int,
                 singles: int, batches: int) -> dict[str, float]:
    """Warm loads and predict latencies of both models, in one process."""
    _train, _labels, held_out = read_table(table)
    import_libraries()
    tool.import_tool()
    rows = [held_out.iloc[[i]] for i in range(min(len(held_out), 500))]
    blocks = [held_out.iloc[i:i + 1000] for i in range(0, len(held_out) - 999, 1000)]
    result: dict[str, float] = {}
    for kind, uri in uris.items():
        loaded = tool.load(uri)  # the first load of this process: not a warm one
        times = []
        for _ in range(warm):
            gc.collect()
            started = time.perf_counter()
            loaded = tool.load(uri)
            times.append(time.perf_counter() - started)
        result[f"{kind}.warm"] = statistics.median(times)

        calls = [lambda f, m=loaded: tool.predict(m, f), tool.estimator(loaded).predict]
        for label, one in zip(("", ".raw"), latencies(calls, rows, singles), strict=True):
            result[f"{kind}.single{label}"] = statistics.median(one)
            result[f"{kind}.single{label}.p95"] = p95(one)
        for label, many in zip(("", ".raw"), latencies(calls, blocks, batches), strict=True):
            result[f"{kind}.batch{label}"] = statistics.median(many)
    return result


def side_main(tool: Tool, argv: list[str]) -> None:
    """A side's entry point: ``STEP WORKDIR TABLE [args]``; prints JSON last."""
    step, workdir, table = argv[0], Path(argv[1]), Path(argv[2])
    os.chdir(workdir)
    if step == "setup":
        result: dict[str, Any] = step_setup(tool, table, Path(argv[3]))
    elif step == "cold":
        result = step_cold(tool, argv[3], argv[4] == "clear")
    elif step == "measure":
        result = step_measure(tool, json.loads(argv[3]), table, int(argv[4]), int(argv[5]),
                              int(argv[6]))
    else:
        raise SystemExit(f"unknown step {step!r}")
    print(json.dumps(result))


# -- keel's side -----------------------------------------------------------------


class KeelTool(Tool):
    name = "keel"

    def import_tool(self) -> None:
        import keel
        import keel.models  # noqa: F401  (the registry and the loader)

    def log_and_register(self, model: Any, name: str, example: Any) -> str:
        import keel

        with keel.start_run(experiment="bench") as run:
            uri = run.log_model(model, "model", input_example=example)
        return str(keel.models.register(uri, name).uri)

    def load(self, uri: str) -> Any:
        import keel

        return keel.load_model(uri)

    def estimator(self, loaded: Any) -> Any:
        return loaded.raw

    def clear_cache(self) -> None:
        shutil.rmtree(Path.cwd() / ".keel" / "cache" / "models", ignore_errors=True)

    def versions(self) -> dict[str, str]:
        import numpy
        import pandas
        import sklearn
        import skops

        import keel

        return {"keel": keel.__version__, "scikit-learn": sklearn.__version__,
                "skops": skops.__version__, "pandas": pandas.__version__,
                "numpy": numpy.__version__}


# -- the driver ------------------------------------------------------------------


def run_json(args: list[str], what: str) -> dict[str, Any]:
    """Run one side's step as a fresh process; the JSON it prints last."""
    out = subprocess.run(args, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError) as exc:
        raise RuntimeError(f"{what} printed no JSON result:\n{out.stdout[-2000:]}"
                           f"{out.stderr[-2000:]}") from exc


def mlflow_python() -> Path:
    """bench/.venv-mlflow's interpreter; a clear message if it cannot be made."""
    folder = HERE / ".venv-mlflow"
    try:
        python = peer_python("mlflow")
    except (subprocess.CalledProcessError, OSError) as exc:
        raise SystemExit(
            f"error: could not create {folder} with MLflow 3.17.2 ({exc}).\n"
            "  It needs the package index pip is configured with (pip.conf / PIP_INDEX_URL)\n"
            f"  and network access to it. Fix that, then remove {folder} and run again;\n"
            f"  or create it by hand: python -m venv {folder} && "
            f"{folder}/bin/pip install mlflow==3.17.2 && touch {folder}/.installed") from exc
    probe = subprocess.run([str(python), "-c", "import mlflow, sklearn, skops, pandas"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise SystemExit(f"error: {folder} cannot import mlflow, scikit-learn, skops and "
                         f"pandas:\n{probe.stderr[-1500:]}\n  remove {folder} and run again")
    return python


class Side:
    """How the driver runs one side's steps."""

    def __init__(self, name: str, command: list[str], workdir: Path, table: Path) -> None:
        self.name, self.command, self.workdir, self.table = name, command, workdir, table

    def run(self, step: str, *args: str) -> dict[str, Any]:
        return run_json([*self.command, step, str(self.workdir), str(self.table), *args],
                        f"{self.name} {step}")


def cold_loads(side: Side, uri: str, clear: bool, times: int) -> tuple[float, float]:
    """Median load and import seconds over ``times`` fresh processes."""
    runs = [side.run("cold", uri, "clear" if clear else "keep") for _ in range(times)]
    return statistics.median(r["load"] for r in runs), statistics.median(r["import"] for r in runs)


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": f"{os.cpu_count()} ({usable} usable)", "cpu": cpu,
            "os": platform.platform(terse=True)}


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from sklearn.datasets import make_classification

    ml_python = mlflow_python()
    from keel.workspace import init_workspace

    results: dict[str, Any] = {"machine": machine(), "settings": vars(args).copy()}
    with tempfile.TemporaryDirectory(prefix="keel-bench-models-") as temp:
        root = Path(temp)
        table = root / "table.npz"
        x, y = make_classification(n_samples=args.rows, n_features=FEATURES, n_informative=10,
                                   random_state=0)
        np.savez(table, x=x, y=y)
        sides = {}
        for name, command in (("keel", [sys.executable, str(Path(__file__).resolve()),
                                        "--side"]),
                              ("mlflow", [str(ml_python),
                                          str(HERE / "mlflow_models_side.py")])):
            (root / name).mkdir()
            sides[name] = Side(name, command, root / name, table)
        init_workspace(root / "keel")

        for name, side in sides.items():
            print(f"{name}: training, logging and registering both models...", file=sys.stderr)
            results[name] = side.run("setup", str(root))
        agreement = {}
        for kind in MODELS:
            ours, theirs = np.load(root / f"keel-{kind}.npy"), np.load(root / f"mlflow-{kind}.npy")
            agreement[kind] = float(np.mean(ours == theirs)) if ours.shape == theirs.shape else 0.0
        results["agreement"] = agreement

        for kind in MODELS:
            print(f"cold loads of {kind} ({args.cold} fresh processes each)...", file=sys.stderr)
            keel_uri, ml_uri = results["keel"]["uris"][kind], results["mlflow"]["uris"][kind]
            results["keel"][f"{kind}.cold"], results["keel"]["import"] = \
                cold_loads(sides["keel"], keel_uri, True, args.cold)
            results["keel"][f"{kind}.cold_cached"], _ = \
                cold_loads(sides["keel"], keel_uri, False, args.cold)
            results["mlflow"][f"{kind}.cold"], results["mlflow"]["import"] = \
                cold_loads(sides["mlflow"], ml_uri, False, args.cold)

        for name, side in sides.items():
            print(f"{name}: warm loads and predictions...", file=sys.stderr)
            results[name].update(side.run("measure", json.dumps(results[name]["uris"]),
                                          str(args.warm), str(args.singles), str(args.batches)))
    return results


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"


def rows_of(results: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, ...]]:
    """(model, workload, keel, MLflow, ratio) for every measured workload."""
    ours, theirs = results["keel"], results["mlflow"]
    out: list[tuple[str, ...]] = []

    def add(model: str, label: str, a: float, b: float) -> None:
        out.append((model, label, fmt(a), fmt(b), f"{ratio(b, a):.2f}x" if a > 0 else "-"))

    add("-", "tool import, fresh process (in no load)", ours["import"], theirs["import"])
    for kind in MODELS:
        model = LABELS[kind]

        def row(label: str, key: str, peer_key: str | None = None, model: str = model) -> None:
            add(model, label, ours[key], theirs[peer_key or key])

        # The honest cold figure: what a fresh process waits for, the tool's own
        # import included on both sides (MLflow's cold load already includes
        # its lazy store imports; keel's import is otherwise left out).
        add(model, "import + load, cold (keel cache empty)",
            ours["import"] + ours[f"{kind}.cold"], theirs["import"] + theirs[f"{kind}.cold"])
        row(f"load, cold (keel cache empty), median of {args.cold}", f"{kind}.cold")
        row("load, cold (keel cache present)", f"{kind}.cold_cached", f"{kind}.cold")
        row(f"load, warm, median of {args.warm}", f"{kind}.warm")
        row(f"predict 1 row, median of {args.singles:,}", f"{kind}.single")
        row("predict 1 row, p95", f"{kind}.single.p95")
        row(f"predict 1,000 rows, median of {args.batches}", f"{kind}.batch")
        row("  estimator alone, 1 row", f"{kind}.single.raw")
        row("  estimator alone, 1,000 rows", f"{kind}.batch.raw")
        for label, key in (("1 row", "single"), ("1,000 rows", "batch")):
            add(model, f"  tool overhead, {label} (predict - estimator)",
                ours[f"{kind}.{key}"] - ours[f"{kind}.{key}.raw"],
                theirs[f"{kind}.{key}"] - theirs[f"{kind}.{key}.raw"])
    return out


def notes(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    ours, theirs, m = results["keel"], results["mlflow"], results["machine"]
    held_out = int(args.rows * HELD_OUT)
    lines = [f"{LABELS[kind]}: keel and MLflow predictions agree on {share:.2%} of "
             f"{held_out:,} held-out rows" for kind, share in results["agreement"].items()]
    lines += [f"machine: {m['cores']} cores, {m['cpu']}, {m['os']}",
              f"keel side: python {ours['python']}, "
              + ", ".join(f"{k} {v}" for k, v in ours["versions"].items()),
              f"MLflow side: python {theirs['python']}, "
              + ", ".join(f"{k} {v}" for k, v in theirs["versions"].items()),
              f"data: {args.rows:,} x {FEATURES} (make_classification), "
              f"{args.rows - held_out:,} rows to train, {held_out:,} held out"]
    return lines


def report(results: dict[str, Any], args: argparse.Namespace, markdown: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    rows = rows_of(results, args)
    table = Table(title="keel vs MLflow 3.17.2 pyfunc, same scikit-learn models; "
                        "ratio = MLflow / keel (higher: keel faster)")
    for column in ("model", "workload", "keel", "MLflow", "ratio"):
        table.add_column(column, justify="left" if column in ("model", "workload") else "right")
    previous = ""
    for row in rows:
        if row[0] != previous and previous:
            table.add_section()
        previous = row[0]
        table.add_row(*row)
    console.print(table)
    for line in notes(results, args):
        colour = "red" if "agree on" in line and "100.00%" not in line else "default"
        console.print(f"[{colour}]{line}", highlight=False)
    if markdown:
        print("\n| workload | keel | MLflow | ratio |\n|---|---:|---:|---:|")
        for model, label, *cells in rows:
            name = label.strip() if model == "-" else f"{model}: {label.strip()}"
            print(f"| {name} | " + " | ".join(cells) + " |")


def profile(args: argparse.Namespace) -> None:
    """cProfile of keel's 1-row predict, and its split: signature check vs estimator."""
    import cProfile
    import io
    import pstats

    import numpy as np
    from sklearn.datasets import make_classification

    import keel
    from keel.workspace import forget_workspaces, init_workspace

    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="keel-bench-profile-") as temp:
        root = Path(temp)
        x, y = make_classification(n_samples=args.rows, n_features=FEATURES, n_informative=10,
                                   random_state=0)
        np.savez(root / "table.npz", x=x, y=y)
        train, labels, held_out = read_table(root / "table.npz")
        init_workspace(root)
        os.chdir(root)
        try:
            tool = KeelTool()
            rows = [held_out.iloc[[i]] for i in range(500)]
            for kind in MODELS:
                uri = tool.log_and_register(make_model(kind).fit(train, labels),
                                            f"bench-{kind}", train.iloc[:5])
                model = keel.load_model(uri)
                signature = model.signature
                whole, check, parse, enforce, raw, direct = (
                    statistics.median(t) for t in latencies(
                        [model.predict, model.prepare, lambda _f, m=model: m.signature,
                         signature.enforce, lambda f, m=model: m.raw.predict(m.prepare(f)),
                         model.raw.predict], rows, args.singles))
                raw -= check  # the estimator on a prepared frame
                print(f"\n== {LABELS[kind]}: keel 1-row predict, medians of "
                      f"{args.singles:,} calls (taking turns)")
                for label, value, what in (
                        ("predict", whole, "model.predict(frame)"),
                        ("  signature check", check, "model.prepare(frame)"),
                        ("    manifest -> Signature", parse, "the .signature property"),
                        ("    enforce", enforce, "Signature.enforce(frame)"),
                        ("  estimator", raw, "model.raw.predict(prepared)"),
                        ("estimator, caller's frame", direct,
                         "model.raw.predict(frame): no check, unfragmented frame")):
                    print(f"{label:<28}{fmt(value):>10}  {value / whole:5.0%}  {what}")
                profiler = cProfile.Profile()
                profiler.enable()
                for i in range(args.singles):
                    model.predict(rows[i % len(rows)])
                profiler.disable()
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
                print(text.getvalue())
        finally:
            forget_workspaces()
            os.chdir(home)


def main() -> None:
    if sys.argv[1:2] == ["--side"]:
        side_main(KeelTool(), sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--profile", action="store_true",
                        help="profile keel's 1-row predict instead (no MLflow)")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    full = {"rows": 20_000, "cold": 5, "warm": 20, "singles": 2000, "batches": 200}
    quick = {"rows": 6_000, "cold": 2, "warm": 3, "singles": 200, "batches": 20}
    for key, value in (quick if args.quick else full).items():
        setattr(args, key, value)
    if args.profile:
        profile(args)
        return
    results = benchmark(args)
    report(results, args, args.markdown)
    if args.json:
        results["settings"]["json"] = str(args.json)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
