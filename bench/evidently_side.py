"""Evidently's half of bench/monitoring.py; run with bench/.venv-evidently's python.

    python evidently_side.py REFERENCE.parquet CURRENT.parquet

Imports first (Evidently, pandas, pyarrow with its pandas bridge, and the
plotly modules its report loads on first use, so that they count as import,
not as compute), then
times reading both Parquet files and ``Report([DataDriftPreset()]).run``
until every column's verdict is at hand. Prints one line of JSON: import and
compute seconds, peak resident memory after the imports and at the end
(MiB), and per feature the method, score and verdict.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def max_rss_mib() -> float:
    """Peak resident memory, MiB: VmHWM, which unlike ``ru_maxrss`` does not
    start at the parent's peak (see monitoring.py)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    reference, current = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    # plotly is what the report's widgets load on first use: an import, not compute.
    import pandas as pd
    import plotly.graph_objs
    import plotly.subplots  # noqa: F401
    import pyarrow.pandas_compat
    import pyarrow.parquet  # noqa: F401
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - started
    baseline = max_rss_mib()

    started = time.perf_counter()
    ref = pd.read_parquet(reference)
    cur = pd.read_parquet(current)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    metrics = snapshot.dict()["metrics"]
    compute_s = time.perf_counter() - started
    peak = max_rss_mib()

    features: list[dict[str, object]] = []
    counted = None
    for metric in metrics:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            counted = int(metric["value"]["count"])
        elif config["type"].endswith("ValueDrift"):
            method, score, level = config["method"], float(metric["value"]), config["threshold"]
            # Evidently's tests are named "... p_value" (drift below the level);
            # its distances drift at or above it.
            drifted = score < level if "p_value" in method else score >= level
            features.append({"feature": config["column"], "method": method, "statistic": score,
                             "drifted": drifted})
    if counted != sum(bool(f["drifted"]) for f in features):
        raise SystemExit(f"per-column verdicts ({features}) disagree with the count {counted}")
    import evidently

    print(json.dumps({"import_s": import_s, "compute_s": compute_s, "baseline_mib": baseline,
                      "peak_mib": peak, "features": features,
                      "version": evidently.__version__, "pandas": pd.__version__}))


if __name__ == "__main__":
    main()
