"""``keel ci smoke``: the pipeline on a sample of its data, in a throwaway workspace.

The cheapest check worth running on every commit: every step still runs end
to end, and the metrics it logs stay within declared sanity bounds. Each
dataset the pipeline reads is sampled (the first ``rows`` rows, or a seeded
``sample`` fraction, of each CSV/Parquet file; other files as they are) into
a temporary workspace under the same name and version number, and the
pipeline runs there, in a scratch folder, on nothing cached: the project's
own workspace and files are not touched.

Bounds come from ``--require`` or keel.toml::

    [ci.smoke]
    require = ["accuracy >= 0.6"]
    rows = 1000
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.config import read_toml
from keel.errors import InvalidInput
from keel.models.gates import Requirement
from keel.pipelines.inputs import DatasetInput
from keel.pipelines.pipeline import Pipeline
from keel.pipelines.runner import PipelineResult
from keel.workspace import Workspace, init_workspace

TABULAR = (".csv", ".parquet", ".pq")


@dataclass
class SmokeReport:
    """What a smoke run found: step outcomes, metrics, and each bound checked."""

    pipeline: str
    sample: str
    result: PipelineResult | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (rule, passed, detail)

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.ok and all(p for _, p, _ in self.checks)

    def to_markdown(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        lines = [f"### keel smoke: `{self.pipeline}` on {self.sample}: **{verdict}**", "",
                 "| step | status |", "|---|---|"]
        for step in self.result.steps if self.result else []:
            lines.append(f"| {step.step} | {step.status} |")
        if self.checks:
            lines += ["", "| bound | result | value |", "|---|---|---|"]
            lines += [f"| {rule} | {'pass' if ok else '**FAIL**'} | {detail} |"
                      for rule, ok, detail in self.checks]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "sample": self.sample, "passed": self.passed,
                "steps": self.result.to_list() if self.result else [],
                "metrics": {k: v for k, v in self.metrics.items() if math.isfinite(v)},
                "checks": [{"rule": r, "passed": p, "detail": d} for r, p, d in self.checks]}


def smoke(pipe: Pipeline, ws: Workspace, rows: int | None = None, sample: float | None = None,
          require: list[str] | None = None, params: dict[str, Any] | None = None,
          seed: int = 0) -> SmokeReport:
    """Run ``pipe`` on a sample of its datasets in a throwaway workspace."""
    declared = _declared(ws)
    rows = rows if rows is not None or sample is not None else declared.get("rows", 1000)
    if rows is not None and rows < 1:
        raise InvalidInput("--rows must be at least 1")
    if sample is not None and not 0 < sample <= 1:
        raise InvalidInput(f"--sample must be a fraction in (0, 1], got {sample}",
                           hint="write 1% or 0.01")
    rules = [Requirement.parse(r) for r in (require or declared.get("require", []))]
    graph = pipe.graph(**(params or {}))
    label = f"{rows:,} rows" if sample is None else f"a {sample:.2%} sample"
    report = SmokeReport(pipe.name, label)
    with tempfile.TemporaryDirectory(prefix="keel-smoke-") as temp:
        scratch = init_workspace(Path(temp) / "workspace")
        db = scratch / ".keel" / "keel.db"
        with Workspace.open(scratch, store=str(db), blobs=str(scratch / ".keel" / "blobs")) \
                as throwaway:
            for node in graph.nodes:
                for item in node.inputs.values():
                    if isinstance(item, DatasetInput):
                        _sample_dataset(ws, throwaway, item.ref, Path(temp), rows, sample,
                                        seed)
            previous = os.getcwd()
            os.chdir(scratch)
            try:
                report.result = pipe.run(ws=throwaway, **(params or {}))
            finally:
                os.chdir(previous)
            report.metrics = _metrics(throwaway, report.result)
    for rule in rules:
        value = report.metrics.get(rule.metric)
        if value is None:
            report.checks.append((str(rule), False, "not logged by any step"))
        else:
            report.checks.append((str(rule), rule.holds(value), f"{value:.6g}"))
    return report


def _declared(ws: Workspace) -> dict[str, Any]:
    table = read_toml(ws.root).get("ci", {})
    found = table.get("smoke", {}) if isinstance(table, dict) else {}
    return found if isinstance(found, dict) else {}


def _sample_dataset(source: Workspace, target: Workspace, ref: str, temp: Path,
                    rows: int | None, sample: float | None, seed: int) -> None:
    """Copy a sample of ``ref`` into ``target``, as the same name and version number."""
    import keel.data
    from keel.data.version import get_version

    version = get_version(source, ref)
    try:
        target.store.get_dataset_version(version.dataset, version.version)
        return  # two steps read the same version: sampled once
    except Exception:
        pass
    folder = temp / "samples" / version.ref.replace("@", "-")
    original = keel.data.local_path(version.ref, ws=source)
    files = [original] if original.is_file() else [p for p in original.rglob("*") if p.is_file()]
    for path in files:
        rel = path.name if original.is_file() else path.relative_to(original).as_posix()
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in TABULAR:
            _sample_table(path, dest, rows, sample, seed)
        else:
            shutil.copyfile(path, dest)
    added = keel.data.add(folder / files[0].name if original.is_file() else folder,
                          version.dataset, f"smoke sample of {version.ref}", ws=target).version
    if added.version != version.version:  # keep the number a pinned NAME@N asks for
        fields = {k: v for k, v in added.to_dict().items()
                  if k not in ("id", "dataset", "version", "ref")}
        target.store.add_dataset_version(version.dataset, fields, version=version.version)


def _sample_table(path: Path, dest: Path, rows: int | None, sample: float | None,
                  seed: int) -> None:
    import pandas as pd

    csv = path.suffix.lower() == ".csv"
    frame = pd.read_csv(path) if csv else pd.read_parquet(path)
    if sample is None:
        frame = frame.head(rows or 1000)
    else:
        frame = frame.sample(frac=sample, random_state=seed).sort_index()
    if csv:
        frame.to_csv(dest, index=False)
    else:
        frame.to_parquet(dest, index=False)


def _metrics(ws: Workspace, result: PipelineResult | None) -> dict[str, float]:
    """Every metric the steps logged (the last step that logged a name wins)."""
    found: dict[str, float] = {}
    for step in result.steps if result else []:
        if step.run_id and step.status == "ran":
            found.update(ws.store.get_run(step.run_id).metrics)
    return found


def parse_sample(text: str) -> float:
    """``1%`` or ``0.01`` -> 0.01."""
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise InvalidInput(f"bad --sample {text!r}", hint="write 1% or 0.01") from exc
