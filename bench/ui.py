"""Web UI benchmark: keel's server-rendered UI against MLflow's React UI on the
same runs, both measured in headless Chromium (Debian's, driven by Playwright).

    .venv/bin/python bench/ui.py [--quick] [--repeats 5] [--json FILE]

keel is measured at 10,000 and 100,000 runs, MLflow at 10,000 (--keel-runs,
--mlflow-runs); --quick is 300 runs a side and one repetition (~2 minutes).
Seeding is untimed but long: ~200 s for keel's 100,000 runs (~2 ms a run),
~140 s for MLflow's 10,000 (~14 ms a run); a full run takes ~15 minutes.

Each side gets a fresh temporary workspace seeded, untimed, with the same
runs: experiment ``bench`` with N runs ``r000000``..., each with param ``lr``
and metrics ``acc`` (a permutation of 0, 1/N, ..., (N-1)/N, so the best run
is unique and the newest run has acc 0) and ``loss``; experiment ``charts``
with one run logging ``loss`` at 20 steps. keel is seeded through its Python
API, MLflow through ``MlflowClient`` on its SQLite store (bench/.venv-mlflow);
then ``keel server --no-auth`` and ``mlflow server`` (SQLite, 1 worker) serve
them on 127.0.0.1. Every timing starts in a fresh browser context (cold cache,
as a first visit) and the median of --repeats is reported, timed from the
user's action (``page.goto`` or the click/Enter) to the condition below,
on the wall clock of the driving process (Playwright's round trips included):

- first rows: navigation to the experiment's runs list until its first data
  row is visible (keel ``/experiments/ID``; MLflow
  ``/#/experiments/ID/runs?workflowType=machine_learning``, as MLflow 3 opens
  an experiment on its GenAI overview otherwise).
- sort by a metric: with the list loaded (untimed), the click that sorts by
  ``acc`` descending (keel: the ``metrics.acc`` column header; MLflow: the
  ``acc`` entry of its open "Sort" menu) until the first row is the best run.
- filter: ``metrics.acc > 0.9`` typed into the filter box (untimed), then
  Enter until the first row is one of the matching runs.
- run charts: navigation to the charted run (keel ``/runs/ID``; MLflow its
  "Model metrics" tab) until the chart is drawn: keel's Chart.js canvas
  marked drawn with painted pixels, MLflow's Plotly line path present.

Anchors (the project's issue): MLflow 3.17.2 at 10,000 runs shows the first
rows 2.8 s after navigation, re-sorts by a metric in 6.5 s, draws a 20-step
chart 2.6 s after opening a run. Targets for keel: first rows, a metric sort
and a filter <= 0.5 s at 100,000 runs; a run's charts <= 0.5 s. Browser,
servers and seeding share the machine (2 cores here); the load average at
start and end is printed with the table. One untimed round per side comes
first (the servers' first requests compile templates and import modules).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import peer_python, ratio  # noqa: E402

from server import free_port, stop, wait_up  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TARGET_S = 0.5
FILTER = "metrics.acc > 0.9"
TIMEOUT_MS = 180_000
CASES = (("first rows", "first_rows"), ("sort by metrics.acc", "sort"),
         (f"filter {FILTER}", "filter"), ("run charts", "charts"))

# Both seeders print one JSON line: the experiments' ids, the best run (acc
# highest), the runs matching FILTER, and the charted run. acc of run i is
# ((N-1-i) * 7919 mod N) / N: 7919 is prime, so this is a permutation.
KEEL_SEED = """
import json, sys, keel
n = int(sys.argv[1])
best, matching = None, []
for i in range(n):
    acc = ((n - 1 - i) * 7919 % n) / n
    with keel.start_run(experiment="bench", name=f"r{i:06d}", params={"lr": str(i % 10)}) as run:
        run.log_metrics({"acc": acc, "loss": 1.0 - acc})
    if acc == (n - 1) / n:
        best = run.id
    if acc > 0.9:
        matching.append(run.id)
with keel.start_run(experiment="charts", name="charted") as run:
    for step in range(20):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
print(json.dumps({"experiment": keel.get_experiment("bench").id,
                  "chart_experiment": keel.get_experiment("charts").id,
                  "best": best, "matching": matching, "charted": run.id}))
"""

MLFLOW_SEED = """
import json, sys, time
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
uri, artifacts, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = MlflowClient(tracking_uri=uri)
experiment = client.create_experiment("bench", artifact_location=artifacts + "/bench")
charts = client.create_experiment("charts", artifact_location=artifacts + "/charts")
best, matching = None, []
for i in range(n):
    acc = ((n - 1 - i) * 7919 % n) / n
    run = client.create_run(experiment, run_name=f"r{i:06d}")
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric("acc", acc, now, 0),
                                               Metric("loss", 1.0 - acc, now, 0)],
                     params=[Param("lr", str(i % 10))])
    client.set_terminated(run.info.run_id)
    if acc == (n - 1) / n:
        best = run.info.run_id
    if acc > 0.9:
        matching.append(run.info.run_id)
run = client.create_run(charts, run_name="charted")
now = int(time.time() * 1000)
client.log_batch(run.info.run_id, metrics=[Metric("loss", 1.0 / (s + 1), now + s, s)
                                           for s in range(20)])
client.set_terminated(run.info.run_id)
print(json.dumps({"experiment": experiment, "chart_experiment": charts, "best": best,
                  "matching": matching, "charted": run.info.run_id}))
"""

# keel: the page is server-rendered; rows are <tr data-run=ID> in #runs.
KEEL_FIRST_ROW = "#runs tbody tr"
KEEL_FIRST_IN = """(ids) => { const r = document.querySelector('#runs tbody tr');
  return r !== null && ids.includes(r.dataset.run); }"""
KEEL_CHART = """() => { const c = document.querySelector('canvas[data-chart]');
  if (c === null || c.dataset.drawn !== '1') return false;
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < px.length; i += 4) { if (px[i] !== 0) return true; }
  return false; }"""
# MLflow: an ag-grid; each row is drawn once per pinned/centre container, the
# pinned-left one holding the run name; row-id is the run id.
MLFLOW_FIRST_ROW = '.ag-pinned-left-cols-container .ag-row[row-index="0"][row-id]'
MLFLOW_FIRST_IN = """(ids) => { const r = document.querySelector(
  '.ag-pinned-left-cols-container .ag-row[row-index="0"]');
  return r !== null && ids.includes(r.getAttribute('row-id')); }"""
MLFLOW_CHART = """() => { const p = document.querySelector(
  '.js-plotly-plot .scatterlayer path.js-line');
  return p !== null && (p.getAttribute('d') || '').split('L').length > 2; }"""


@dataclass
class Seeded:
    """What a seeder reports: ids to navigate to and to expect in the table."""

    experiment: str
    chart_experiment: str
    best: str
    matching: list[str]
    charted: str

    @classmethod
    def parse(cls, stdout: str) -> Seeded:
        data = json.loads(stdout.strip().splitlines()[-1])
        return cls(str(data["experiment"]), str(data["chart_experiment"]), data["best"],
                   data["matching"], data["charted"])


def run_seeder(command: list[str], cwd: Path, what: str) -> tuple[Seeded, float]:
    print(f"seeding {what} (untimed)...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"seeding {what} failed:\n{out.stderr[-3000:]}")
    elapsed = time.perf_counter() - started
    print(f"  seeded in {elapsed:.0f} s", file=sys.stderr, flush=True)
    return Seeded.parse(out.stdout), elapsed


@contextmanager
def keel_site(runs: int) -> Iterator[tuple[str, Seeded, float]]:
    """A seeded keel workspace served by ``keel server --no-auth``; removed after."""
    folder = Path(tempfile.mkdtemp(prefix="keel-bench-ui-keel-"))
    process = None
    try:
        subprocess.run([sys.executable, "-m", "keel.cli.main", "init", str(folder)],
                       check=True, capture_output=True)
        seeded, seconds = run_seeder([sys.executable, "-c", KEEL_SEED, str(runs)], folder,
                                     f"keel with {runs:,} runs")
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "keel.cli.main", "server",
                                    "--no-auth", "--host", "127.0.0.1", "--port", str(port),
                                    "--root", str(folder)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_up(url, process, "/health")
        yield url, seeded, seconds
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def mlflow_site(runs: int) -> Iterator[tuple[str, Seeded, float]]:
    """A seeded MLflow SQLite store served by ``mlflow server``; removed after."""
    python = peer_python("mlflow")
    folder = Path(tempfile.mkdtemp(prefix="keel-bench-ui-mlflow-"))
    process = None
    try:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        seeded, seconds = run_seeder([str(python), "-c", MLFLOW_SEED, uri,
                                      str(folder / "artifacts"), str(runs)], folder,
                                     f"MLflow with {runs:,} runs")
        port = free_port()
        process = subprocess.Popen([str(Path(python).parent / "mlflow"), "server",
                                    "--backend-store-uri", uri,
                                    "--default-artifact-root", str(folder / "artifacts"),
                                    "--host", "127.0.0.1", "--port", str(port),
                                    "--workers", "1"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "PATH": f"{Path(python).parent}:"
                                                              f"{os.environ['PATH']}"},
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        wait_up(url, process, "/health")
        yield url, seeded, seconds
    finally:
        if process is not None:
            stop_group(process)
        shutil.rmtree(folder, ignore_errors=True)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``mlflow server`` and what it started (uvicorn, its huey job
    consumers), which would outlive a terminated parent: its own session."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(30)
            time.sleep(1)  # the group's other members exit after their leader
        except subprocess.TimeoutExpired:
            continue
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 0)
            continue  # some member still runs: escalate
        return


class Side:
    """How to drive one UI: its URLs, the user's actions, and what "done" looks like."""

    def __init__(self, url: str, seeded: Seeded) -> None:
        self.url, self.seeded = url, seeded

    def runs_url(self) -> str:
        raise NotImplementedError

    def run_url(self) -> str:
        raise NotImplementedError

    def first_row(self, page: Page) -> None:
        raise NotImplementedError

    def sort(self, page: Page) -> float:
        raise NotImplementedError

    def filter(self, page: Page) -> float:
        raise NotImplementedError

    def chart(self, page: Page) -> None:
        raise NotImplementedError


class KeelSide(Side):
    def runs_url(self) -> str:
        return f"{self.url}/experiments/{self.seeded.experiment}"

    def run_url(self) -> str:
        return f"{self.url}/runs/{self.seeded.charted}"

    def first_row(self, page: Page) -> None:
        page.wait_for_selector(KEEL_FIRST_ROW, state="visible", timeout=TIMEOUT_MS)

    def _until_first_in(self, page: Page, act: Callable[[], None], ids: list[str]) -> float:
        # A full page load: wait for the new document, then for its first row.
        started = time.perf_counter()
        with page.expect_navigation(wait_until="commit", timeout=TIMEOUT_MS):
            act()
        page.wait_for_function(KEEL_FIRST_IN, arg=ids, timeout=TIMEOUT_MS)
        return time.perf_counter() - started

    def sort(self, page: Page) -> float:
        header = page.get_by_role("link", name="metrics.acc", exact=True)
        return self._until_first_in(page, header.click, [self.seeded.best])

    def filter(self, page: Page) -> float:
        page.fill("#filter", FILTER)
        return self._until_first_in(page, lambda: page.press("#filter", "Enter"),
                                    self.seeded.matching)

    def chart(self, page: Page) -> None:
        page.wait_for_function(KEEL_CHART, timeout=TIMEOUT_MS)


class MlflowSide(Side):
    def runs_url(self) -> str:
        return f"{self.url}/#/experiments/{self.seeded.experiment}/runs" \
               "?workflowType=machine_learning"

    def run_url(self) -> str:
        return f"{self.url}/#/experiments/{self.seeded.chart_experiment}/runs/" \
               f"{self.seeded.charted}/model-metrics"

    def first_row(self, page: Page) -> None:
        page.wait_for_selector(MLFLOW_FIRST_ROW, state="visible", timeout=TIMEOUT_MS)

    def _until_first_in(self, page: Page, act: Callable[[], None], ids: list[str]) -> float:
        # A single-page app: no navigation, the grid re-renders in place.
        started = time.perf_counter()
        act()
        page.wait_for_function(MLFLOW_FIRST_IN, arg=ids, timeout=TIMEOUT_MS)
        return time.perf_counter() - started

    def sort(self, page: Page) -> float:
        page.click('[data-testid="sort-select-dropdown"]')  # opening the menu is untimed
        entry = page.locator('[data-testid="sort-select-acc"]')
        entry.wait_for(state="visible")
        return self._until_first_in(page, entry.click, [self.seeded.best])

    def filter(self, page: Page) -> float:
        box = page.locator('[data-testid="search-box"]')
        box.fill(FILTER)
        return self._until_first_in(page, lambda: box.press("Enter"), self.seeded.matching)

    def chart(self, page: Page) -> None:
        page.wait_for_function(MLFLOW_CHART, timeout=TIMEOUT_MS)


@contextmanager
def fresh_page(browser: Browser) -> Iterator[Page]:
    """A new context (empty cache, cookies, storage): a first visit."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_timed(page: Page, url: str, until: Callable[[Page], None]) -> float:
    started = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    until(page)
    return time.perf_counter() - started


def loaded(page: Page, side: Side) -> None:
    """The runs list open and settled, before a timed action."""
    page.goto(side.runs_url(), timeout=TIMEOUT_MS)
    side.first_row(page)
    from playwright.sync_api import TimeoutError as Slow

    with suppress(Slow):  # a page that keeps polling is settled enough
        page.wait_for_load_state("networkidle", timeout=5_000)


def measure(browser: Browser, side: Side, repeats: int) -> dict[str, Any]:
    """Median (and all samples) of each case, in seconds."""
    samples: dict[str, list[float]] = {key: [] for _, key in CASES}
    for _ in range(repeats + 1):  # the first round warms the server up, and is dropped
        with fresh_page(browser) as page:
            samples["first_rows"].append(open_timed(page, side.runs_url(), side.first_row))
        with fresh_page(browser) as page:
            loaded(page, side)
            samples["sort"].append(side.sort(page))
        with fresh_page(browser) as page:
            loaded(page, side)
            samples["filter"].append(side.filter(page))
        with fresh_page(browser) as page:
            samples["charts"].append(open_timed(page, side.run_url(), side.chart))
        print(f"  {type(side).__name__} round: " + ", ".join(
            f"{key} {values[-1]:.3f} s" for key, values in samples.items()),
            file=sys.stderr, flush=True)
    return {key: {"median_s": statistics.median(values[1:]), "samples_s": values[1:],
                  "warm_up_s": values[0]}
            for key, values in samples.items()}


def launch() -> tuple[Any, Browser]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    playwright = sync_playwright().start()
    # --no-sandbox: Chromium refuses its sandbox when run as root.
    return playwright, playwright.chromium.launch(executable_path=executable,
                                                  args=["--no-sandbox"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="300 runs a side, 1 repetition: proves it runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keel-runs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--mlflow-runs", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.keel_runs, args.mlflow_runs, args.repeats = [300], 300, 1
    load_start = os.getloadavg()
    results: dict[str, Any] = {"keel": {}, "mlflow": {}, "seeding_s": {}}
    playwright, browser = launch()
    try:
        for runs in args.keel_runs:
            with keel_site(runs) as (url, seeded, seconds):
                results["seeding_s"][f"keel {runs}"] = seconds
                results["keel"][runs] = measure(browser, KeelSide(url, seeded), args.repeats)
        with mlflow_site(args.mlflow_runs) as (url, seeded, seconds):
            results["seeding_s"][f"mlflow {args.mlflow_runs}"] = seconds
            results["mlflow"][args.mlflow_runs] = measure(browser, MlflowSide(url, seeded),
                                                          args.repeats)
    finally:
        browser.close()
        playwright.stop()
    load_end = os.getloadavg()
    report(args, results, load_start, load_end)


def report(args: argparse.Namespace, results: dict[str, Any],
           load_start: tuple[float, float, float], load_end: tuple[float, float, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    keel, mlflow = results["keel"], results["mlflow"]
    biggest = max(args.keel_runs)
    # The ratio compares equal sizes; without one, keel's closest size.
    same = min(args.keel_runs, key=lambda n: abs(n - args.mlflow_runs))
    table = Table(title="keel UI vs MLflow 3.17.2 UI, headless Chromium, median of "
                        f"{args.repeats}, seconds"
                        + (" (quick: nothing claimed)" if args.quick else ""),
                  caption=f"MLflow/keel: keel ({same:,}) vs MLflow; targets: keel ({biggest:,}); "
                          "the charted run has 20 steps; "
                          f"load average {load_start[0]:.2f} at start, "
                          f"{load_end[0]:.2f} at end; {os.cpu_count()} cores")
    table.add_column("workload")
    for runs in args.keel_runs:
        table.add_column(f"keel ({runs:,})", justify="right")
    table.add_column(f"MLflow ({args.mlflow_runs:,})", justify="right")
    table.add_column("MLflow/keel", justify="right")
    table.add_column("target", justify="right")
    table.add_column("pass", justify="center")
    verdicts: dict[str, bool] = {}
    for label, key in CASES:
        ours = keel[biggest][key]["median_s"]
        theirs = mlflow[args.mlflow_runs][key]["median_s"]
        verdicts[key] = ours <= TARGET_S
        table.add_row(label, *(f"{keel[n][key]['median_s']:.3f}" for n in args.keel_runs),
                      f"{theirs:.3f}",
                      f"{ratio(theirs, keel[same][key]['median_s']):.1f}x",
                      f"<= {TARGET_S}",
                      "-" if args.quick else ("yes" if verdicts[key] else "NO"))
    Console(width=max(Console().width, 110)).print(table)
    seeding = ", ".join(f"{name} runs {s:.0f} s" for name, s in results["seeding_s"].items())
    print(f"seeding (untimed): {seeding}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": platform.platform(), "cores": os.cpu_count(), "quick": args.quick,
            "repeats": args.repeats, "load_average_start": load_start,
            "load_average_end": load_end, "target_s": TARGET_S, "results": results,
            "pass": verdicts}, indent=2, default=str))


if __name__ == "__main__":
    main()
