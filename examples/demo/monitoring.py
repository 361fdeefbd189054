"""The demo's last act, the whole loop unattended: a recalibrated sensor sends
drifted traffic to the server -> `keel monitor run` finds the drift (and the
alert rule fires) -> `keel monitor report` writes the HTML report -> `keel
automate run` retrains on the newest data version, gates the candidate
against the champion and starts a canary -> traffic -> `keel automate run`
promotes it -> the new champion's lineage names the trigger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from serving import DEPLOYMENT, KEEL, MODEL, _keel, _port, _post, _wait_ready, _wait_revision

console = Console()
HERE = Path(__file__).resolve().parent
# The recalibrated instrument: radius reads 30% high, so do perimeter and area.
RECALIBRATION = {"mean radius": 1.3, "mean perimeter": 1.3, "mean area": 1.69,
                 "worst radius": 1.3, "worst perimeter": 1.3, "worst area": 1.69}
POLICY = """\
# Written by the demo (examples/demo/monitoring.py).
[monitor.{deployment}]
alerts = ["drift_share > 0.1", "performance.accuracy < 0.9"]

[automate.{deployment}]
pipeline = "{pipeline}:retrain"   # its last step registers the model
model = "{model}"
data = "breast-cancer@latest"
window = "{window}"   # from this act's start (a duration such as "1h" is usual)
triggers = ["drift_share > 0.1", "performance.accuracy < 0.9"]
gates = ["auc >= 0.95", "accuracy >= 0.9"]
canary = {{ percent = 20, min_requests = 100, max_error_rate = 0.01 }}
"""


def recalibrated(frame: Any) -> Any:
    out = frame.copy()
    for column, factor in RECALIBRATION.items():
        out[column] = out[column] * factor
    return out


def write_policy(workspace: Path, window: str) -> None:
    pipeline = os.path.relpath(HERE / "retrain.py", workspace)
    (workspace / "keel.toml").write_text(POLICY.format(deployment=DEPLOYMENT, model=MODEL,
                                                       pipeline=pipeline, window=window))
    console.print(f"  [green]✓[/] keel.toml declares [bold]\\[automate.{DEPLOYMENT}][/]: "
                  "triggers drift_share > 0.1 or accuracy < 0.9 -> retrain (examples/demo/"
                  "retrain.py) on breast-cancer@latest -> gates auc >= 0.95, accuracy >= 0.9 "
                  "-> 20% canary -> promote after 100 healthy requests")


def new_data() -> str:
    """The labelled batch measured with the recalibrated instrument, versioned."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    import keel.data

    folder = Path("data")
    original = (folder / "breast_cancer.csv").read_bytes()
    recalibrated(load_breast_cancer(as_frame=True).frame).to_csv(folder / "breast_cancer.csv",
                                                                 index=False)
    added = keel.data.add(folder, "breast-cancer", "labelled batch from the recalibrated sensor")
    (folder / "breast_cancer.csv").write_bytes(original)  # the working copy stays v1
    console.print(f"  [green]✓[/] the recalibrated sensor's labelled batch is "
                  f"[bold]{added.version.ref}[/] ({'new' if added.created else 'unchanged'})")
    del pd
    return added.version.ref


def _show(title: str, output: str, lines: int = 40) -> None:
    console.print(f"[bold]{title}[/]")
    shown = output.rstrip().splitlines()
    print("\n".join(shown[:lines]) + (f"\n... ({len(shown) - lines} more lines)"
                                      if len(shown) > lines else ""))


def monitor_and_retrain(workspace: Path) -> list[str]:
    """The loop, printed step by step. Returns the commands worth trying afterwards."""
    import pandas as pd

    new_data()
    holdout = pd.read_csv("holdout/holdout.csv")
    drifted = recalibrated(holdout.drop(columns="target"))
    columns, rows = list(drifted.columns), drifted.to_numpy().tolist()
    labels = holdout["target"].tolist()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*KEEL, "serve", "--deployment", DEPLOYMENT, "--port", str(port),
                               "--poll-seconds", "0.2", "--stats-seconds", "0.5",
                               "--log-flush-seconds", "0.5"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def traffic(count: int, start: int = 0) -> dict[str, int]:
        seen: dict[str, int] = {}
        feedback = []
        for i in range(start, start + count):
            answer = _post(f"{url}/predict", {"columns": columns,
                                              "data": [rows[i % len(rows)]]})
            seen[answer["model_version"]] = seen.get(answer["model_version"], 0) + 1
            feedback.append({"request_id": answer["request_id"], "label": labels[i % len(rows)]})
        _post(f"{url}/feedback", feedback)
        return seen

    try:
        _wait_ready(url, server)
        started = time.time()
        seen = traffic(400)
        console.print(f"  [green]✓[/] 400 requests from the recalibrated sensor reached "
                      f"{', '.join(seen)}, with feedback labels")
        time.sleep(1.0)  # one inference-log flush
        # The window starts at this act's first request (a start time works
        # where a duration does), so the serving act's clean traffic stays out.
        window = datetime.fromtimestamp(int(started), UTC).isoformat()
        write_policy(workspace, window)
        _show(f"keel monitor run --deployment {DEPLOYMENT} --window {window}",
              _keel("monitor", "run", "--deployment", DEPLOYMENT, "--window", window))
        report = workspace / "drift-report.html"
        _keel("monitor", "report", "--deployment", DEPLOYMENT, "--window", window, "-o",
              str(report))
        console.print(f"  [green]✓[/] keel monitor report: [bold]{report}[/] (self-contained: "
                      "distributions, drift scores and trend, performance, alerts, feature "
                      "importance and drift attribution)")
        _show("keel automate run --dry-run", _keel("automate", "run", "--dry-run"))
        _show("keel automate run", _keel("automate", "run"))
        _wait_revision(url)
        seen = traffic(600, start=400)
        console.print(f"  [green]✓[/] 600 more requests: {seen} (the canary takes ~20%)")
        time.sleep(1.2)  # one figures flush, so the canary's requests are counted
        _show("keel automate run", _keel("automate", "run"))
        _wait_revision(url)
        seen = traffic(300, start=1000)
        console.print(f"  [green]✓[/] after promotion every request reaches {', '.join(seen)}")
        time.sleep(1.0)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    _show(f"keel automate history {DEPLOYMENT} --last 1",
          _keel("automate", "history", DEPLOYMENT, "--last", "1"), 24)
    lineage = _keel("lineage", f"models:/{MODEL}@champion").rstrip().splitlines()
    _show(f"keel lineage models:/{MODEL}@champion (first lines)", "\n".join(lineage), 14)
    return [f"keel monitor history --deployment {DEPLOYMENT}",
            f"keel monitor alerts --deployment {DEPLOYMENT}",
            f"keel monitor report --deployment {DEPLOYMENT} --window 1h -o report.html",
            f"keel automate history {DEPLOYMENT}",
            "keel automate run --dry-run",
            f"keel model importance {MODEL}@champion --data breast-cancer-holdout@1 "
            "--label target",
            "keel monitor run -r breast-cancer@1 -c breast-cancer@2"]
