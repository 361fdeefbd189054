"""Drift benchmark: ``keel.drift`` against Evidently's data-drift preset and a
bare scipy floor, on the same Parquet files, in one invocation.

    .venv/bin/python bench/monitoring.py [--quick] [--rows 100000 1000000] [--reps 3] [--json FILE]

The data: 20 float64 features f00..f19, a reference and a current sample of
``rows`` rows each, drawn with numpy from fixed seeds and written once as
Parquet (snappy, as pyarrow writes it by default). In the current sample
f00-f03 move by half a standard deviation and f04-f05 widen 1.5x (every side
must flag these six), f06 moves by 0.05 standard deviations (which KS detects
at these sizes and a Wasserstein threshold of 0.1 does not), and f07-f19 come
from the reference's own distribution.

The sides, each in a fresh process for every repetition, so that its peak
memory is its own:

- keel: ``keel.drift(ref.parquet, cur.parquet).to_frame()``, the default
  two-sample Kolmogorov-Smirnov test (exact statistic, asymptotic p-value),
  columns on a thread per core;
- keel, Wasserstein: the same with ``methods="wasserstein"``, Evidently's
  method, for a like-for-like row;
- keel, streamed (largest size only): the same with ``max_memory`` set to the
  reference file's size on disk, which forces the bounded-memory path
  (record batches and fine histograms);
- scipy floor: ``pd.read_parquet`` of both files, then
  ``scipy.stats.ks_2samp`` column by column, verdict p < 0.05;
- Evidently (bench/evidently_side.py, in bench/.venv-evidently):
  ``pd.read_parquet`` of both files, then ``Report([DataDriftPreset()]).run``;
  for numeric columns over 1,000 rows its default is the Wasserstein distance
  normed by the reference's standard deviation, drift at >= 0.1. (KS at
  alpha 0.05 is the stricter of the two: it flags f06, Wasserstein does not.)

What is timed: "compute" runs from reading the two Parquet files to having
every feature's verdict, after the imports; "import" is the imports (the tool,
pandas, pyarrow, scipy, and whatever the timed work would load on first use:
keel.data for keel, plotly for Evidently's report); "command" is the whole
subprocess, interpreter start-up included. Compute is the headline: imports
are paid once per process (a monitor checking every hour pays them once), and
Evidently's take ~4 s. Peak memory is the process's peak resident set (VmHWM)
at the end minus the same after the imports, compared with the data's size in
memory (20 x rows x 8 bytes x 2 samples).

Every figure is the median of ``--reps`` repetitions; within a repetition the
sides run in turn, so a passing load on the machine hits all of them alike.
Page caches are warm (the files were just written). Before reporting, keel's
KS statistics are checked equal to scipy's, its verdicts equal to scipy's
(same asymptotic p-value above 10,000 rows), and its Wasserstein distances
equal to Evidently's. Targets: compute >= 20x faster than Evidently, within
2x of the scipy floor, keel's peak memory <= 2x the data's size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import peer_python, ratio  # noqa: E402

FEATURES = [f"f{i:02d}" for i in range(20)]
MUST_DRIFT = FEATURES[:6]  # the clear shifts: every side has to flag them
TARGETS = {"evidently": 20.0, "floor": 2.0, "memory": 2.0}
SIDES = ("keel", "keel_wasserstein", "keel_streamed", "scipy", "evidently")
LABELS = {"keel": ("keel", "KS"), "keel_wasserstein": ("keel", "Wasserstein"),
          "keel_streamed": ("keel, streamed", "KS (binned)"),
          "scipy": ("scipy floor", "KS"), "evidently": ("Evidently", "Wasserstein")}


# --- the data --------------------------------------------------------------------------------

def make_data(folder: Path, rows: int) -> tuple[Path, Path]:
    """Reference and current Parquet files of ``rows`` rows (see the module's notes)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = folder / f"reference-{rows}.parquet", folder / f"current-{rows}.parquet"
    for seed, path in enumerate(paths):
        rng = np.random.default_rng(seed)
        columns = {name: rng.standard_normal(rows) for name in FEATURES}
        if seed == 1:
            for name in FEATURES[:4]:
                columns[name] += 0.5
            for name in FEATURES[4:6]:
                columns[name] *= 1.5
            columns["f06"] += 0.05
        pq.write_table(pa.table(columns), path)
    return paths


# --- one side, in its own process -------------------------------------------------------------

def max_rss_mib() -> float:
    """This process's peak resident memory, MiB. VmHWM rather than ``ru_maxrss``:
    Linux carries a parent's peak into its child's ``ru_maxrss`` across fork and
    exec, so every side would start at this script's ~500 MiB after it wrote the
    1,000,000-row files, hiding whatever the side itself used below that."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_side(side: str, reference: Path, current: Path) -> dict[str, Any]:
    """The side's imports, then its timed work; what evidently_side.py prints, for keel's venv."""
    started = time.perf_counter()
    # Every module the timed work would otherwise load on first use is imported
    # here, so that compute is work: pyarrow's pandas bridge on every side, and
    # keel.data, which keel.drift's first call loads (~50 modules, ~0.1 s).
    import pandas as pd
    import pyarrow.pandas_compat
    import pyarrow.parquet  # noqa: F401
    import scipy.stats

    if side.startswith("keel"):
        import keel
        import keel.data.profile
        import keel.monitoring.drift
        import keel.monitoring.sources
        import keel.monitoring.streaming
    import_s = time.perf_counter() - started
    baseline = max_rss_mib()

    features: list[dict[str, Any]]
    if side == "scipy":
        started = time.perf_counter()
        ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
        found = {c: scipy.stats.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()) for c in ref}
        verdicts = {c: bool(r.pvalue < 0.05) for c, r in found.items()}
        compute_s = time.perf_counter() - started
        features = [{"feature": c, "method": "ks", "statistic": float(r.statistic),
                     "p_value": float(r.pvalue), "drifted": verdicts[c]} for c, r in found.items()]
    else:
        options: dict[str, Any] = {}
        if side == "keel_wasserstein":
            options["methods"] = "wasserstein"
        if side == "keel_streamed":
            options["max_memory"] = reference.stat().st_size
            budget = keel.monitoring.sources.memory_budget(options["max_memory"])
            if not keel.monitoring.sources.resolve(reference, "reference").streams(budget):
                raise SystemExit(f"max_memory={budget} does not force streaming")
        started = time.perf_counter()
        frame = keel.drift(reference, current, **options).to_frame()
        compute_s = time.perf_counter() - started
        features = [{"feature": r.feature, "method": r.method, "statistic": float(r.statistic),
                     "p_value": None if r.p_value is None else float(r.p_value),
                     "drifted": bool(r.drifted)} for r in frame.itertuples()]
    return {"import_s": import_s, "compute_s": compute_s, "baseline_mib": baseline,
            "peak_mib": max_rss_mib(), "features": features}


def measure(side: str, reference: Path, current: Path) -> dict[str, Any]:
    """Run one side in a fresh process; its figures, with the whole command's wall time."""
    if side == "evidently":
        command = [str(peer_python("evidently")), str(HERE / "evidently_side.py")]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--side", side]
    started = time.perf_counter()
    out = subprocess.run([*command, str(reference), str(current)], capture_output=True,
                         text=True, check=False)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"side {side} failed:\n{out.stderr[-3000:]}")
    found = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    found["command_s"] = wall
    found["memory_mib"] = found["peak_mib"] - found["baseline_mib"]
    return found


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("import_s", "compute_s", "command_s", "memory_mib", "baseline_mib")
    summary: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    summary["features"] = runs[0]["features"]
    summary["runs"] = [{k: r[k] for k in keys} for r in runs]
    return summary


# --- checks, so that the sides are known to answer the same question --------------------------

def check(rows: int, sides: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Raise if a side misses a clear shift or keel disagrees with its reference
    implementation; the largest differences found."""
    by = {side: {f["feature"]: f for f in found["features"]} for side, found in sides.items()}
    for side, features in by.items():
        missed = [name for name in MUST_DRIFT if not features[name]["drifted"]]
        if missed or len(features) != len(FEATURES):
            raise RuntimeError(f"{side} at {rows:,} rows did not flag {missed} "
                               f"(or compared {len(features)} features)")
    ks_gap = max(abs(by["keel"][c]["statistic"] - by["scipy"][c]["statistic"]) for c in FEATURES)
    wd_gap = max(abs(by["keel_wasserstein"][c]["statistic"] - by["evidently"][c]["statistic"])
                 for c in FEATURES)
    if ks_gap > 1e-12 or wd_gap > 1e-9:
        raise RuntimeError(f"keel's statistics differ at {rows:,} rows: KS by {ks_gap}, "
                           f"Wasserstein by {wd_gap}")
    pairs = [("keel_wasserstein", "evidently")]
    if rows > 10_000:  # scipy's p-value is exact below, keel's asymptotic above 1,000
        pairs.append(("keel", "scipy"))
    for ours, theirs in pairs:
        differ = [c for c in FEATURES if by[ours][c]["drifted"] != by[theirs][c]["drifted"]]
        if differ:
            raise RuntimeError(f"{ours} and {theirs} disagree on {differ} at {rows:,} rows")
    return {"ks_statistic_gap": ks_gap, "wasserstein_gap": wd_gap}


# --- the report -------------------------------------------------------------------------------

def data_mib(rows: int) -> float:
    return len(FEATURES) * rows * 8 * 2 / 2**20


def report(res: dict[str, Any], quick: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 140  # a log file or pipe: keep each table row on one line
    console.print(res["versions"])
    table = Table(title=f"drift over {len(FEATURES)} numeric features: keel vs Evidently "
                        f"{res['versions']['evidently']} DataDriftPreset vs a scipy ks_2samp "
                        f"loop (median of {res['reps']}, seconds)")
    for column in ("rows a side", "side", "method", "import", "compute", "command",
                   "peak MiB over imports", "x data", "drifted"):
        table.add_column(column, justify="left" if column in ("side", "method") else "right")
    for rows, sides in res["sizes"].items():
        size = data_mib(int(rows))
        for side, found in sides.items():
            name, method = LABELS[side]
            drifted = [f["feature"] for f in found["features"] if f["drifted"]]
            extra = [name for name in drifted if name not in MUST_DRIFT]
            table.add_row(f"{int(rows):,}", name, method, f"{found['import_s']:.2f}",
                          f"{found['compute_s']:.3f}", f"{found['command_s']:.2f}",
                          f"{found['memory_mib']:,.0f}", f"{found['memory_mib'] / size:.2f}x",
                          f"{len(drifted)}: f00-f05" + (f" + {', '.join(extra)}" if extra else ""))
        table.add_section()
    console.print(table)

    verdicts = Table(title="ratios (compute is the headline; the data's size in memory is "
                           "20 x rows x 8 bytes x 2 samples)")
    for column in ("rows a side", "ratio", "measured", "target", "pass/fail"):
        verdicts.add_column(column, justify="left" if column == "ratio" else "right")

    def row(rows: int, label: str, value: float, target: str = "-", ok: bool | None = None
            ) -> None:
        verdict = "-" if ok is None else "[green]pass[/]" if ok else "[red]FAIL[/]"
        verdicts.add_row(f"{rows:,}", label, f"{value:.2f}x", target, verdict)

    for key, sides in res["sizes"].items():
        rows = int(key)
        keel, scipy, evidently = sides["keel"], sides["scipy"], sides["evidently"]
        fast = ratio(evidently["compute_s"], keel["compute_s"])
        floor = keel["compute_s"] / scipy["compute_s"]
        memory = keel["memory_mib"] / data_mib(rows)
        row(rows, "compute: Evidently / keel", fast, f">= {TARGETS['evidently']:g}x",
            fast >= TARGETS["evidently"])
        row(rows, "  same method: Evidently / keel Wasserstein",
            ratio(evidently["compute_s"], sides["keel_wasserstein"]["compute_s"]))
        row(rows, "  whole command incl. imports: Evidently / keel",
            ratio(evidently["command_s"], keel["command_s"]))
        row(rows, "compute: keel / scipy floor", floor, f"<= {TARGETS['floor']:g}x",
            floor <= TARGETS["floor"])
        row(rows, "  whole command: keel / scipy floor", keel["command_s"] / scipy["command_s"])
        row(rows, "peak memory: keel / data size", memory, f"<= {TARGETS['memory']:g}x",
            memory <= TARGETS["memory"])
        row(rows, "  scipy floor / data size", scipy["memory_mib"] / data_mib(rows))
        row(rows, "  Evidently / data size", evidently["memory_mib"] / data_mib(rows))
        if "keel_streamed" in sides:
            row(rows, "  keel streamed / data size", sides["keel_streamed"]["memory_mib"]
                / data_mib(rows))
        verdicts.add_section()
    console.print(verdicts)
    console.print(f"Load average (1 min): {res['load_start']:.2f} at the start, "
                  f"{res['load_end']:.2f} at the end (this run's own work is ~1-2).")
    if quick:
        console.print("--quick: tiny sizes, one repetition. This proves the benchmark runs; "
                      "its figures claim nothing.")


def compile_keel() -> None:
    """Compile keel's modules to bytecode, as ``pip install`` does: where
    PYTHONDONTWRITEBYTECODE is set, an editable install would otherwise compile
    them again in every side's process, and count it as import time."""
    import compileall

    import keel

    compileall.compile_dir(str(Path(keel.__file__).resolve().parent), quiet=1)


def versions() -> dict[str, str]:
    """What was measured: tool and library versions on each side, keel's commit, the machine."""
    import numpy
    import pandas
    import pyarrow
    import scipy

    import keel

    peer = subprocess.run([str(peer_python("evidently")), "-c",
                           "import evidently, pandas; print(evidently.__version__, "
                           "pandas.__version__)"], capture_output=True, text=True, check=True)
    evidently, peer_pandas = peer.stdout.split()
    source = Path(keel.__file__).resolve().parent
    git = subprocess.run(["git", "-C", str(source), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False).stdout.strip()
    return {"keel": f"{keel.__version__} ({git or 'no git'})", "evidently": evidently,
            "pandas": f"{pandas.__version__} (keel, floor), {peer_pandas} (Evidently)",
            "numpy": numpy.__version__, "scipy": scipy.__version__,
            "pyarrow": pyarrow.__version__, "python": platform.python_version(),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
                       f"{platform.system()} {platform.release()}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="rows in each sample")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (medians reported)")
    parser.add_argument("--quick", action="store_true",
                        help="5,000 rows, one repetition: proves the bench runs")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # one side, run by measure() in its own process
        print(json.dumps(run_side(args.side, *args.files)))
        return
    if args.quick:
        args.rows, args.reps = [5_000], 1
    compile_keel()
    res: dict[str, Any] = {"versions": versions(), "reps": args.reps,
                           "load_start": os.getloadavg()[0], "sizes": {}, "checks": {}}
    largest = max(args.rows)
    with tempfile.TemporaryDirectory(prefix="keel-bench-monitoring-") as tmp:
        for rows in args.rows:
            print(f"{rows:,} rows a side: writing Parquet...", file=sys.stderr)
            reference, current = make_data(Path(tmp), rows)
            sides = [s for s in SIDES if s != "keel_streamed" or rows == largest]
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
            for number in range(args.reps):
                for side in sides:
                    print(f"  {side}, repetition {number + 1}/{args.reps}...", file=sys.stderr)
                    runs[side].append(measure(side, reference, current))
            summary = {side: median_of(found) for side, found in runs.items()}
            res["checks"][str(rows)] = check(rows, summary)
            res["sizes"][str(rows)] = summary
    res["load_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    report(res, args.quick)


if __name__ == "__main__":
    main()
