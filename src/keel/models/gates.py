"""Validation gates a version must pass before an alias may point at it.

Three kinds, declared per alias in ``keel.toml`` or on the command line:
metric thresholds (``auc >= 0.85``), no regression against the version the
alias names now (both scored on the same holdout dataset version, now), and
signature compatibility with that version.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from keel.config import find_workspace, read_toml
from keel.entities import ModelVersion
from keel.errors import GateFailed, InvalidInput
from keel.models.metrics import higher_is_better
from keel.packaging.manifest import PackageManifest
from keel.packaging.signature import Signature
from keel.workspace import Workspace

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
    "==": operator.eq}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_./:\-=]+?)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    """``metric op threshold``, e.g. ``auc >= 0.85``."""

    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Requirement:
        match = _REQUIREMENT.match(text)
        if not match:
            raise InvalidInput(f"bad requirement {text!r}",
                               hint="write METRIC OP NUMBER, e.g. \"auc >= 0.85\" "
                                    "(OP is one of >= > <= < ==)")
        try:
            threshold = float(match.group(3))
        except ValueError as exc:
            raise InvalidInput(f"bad number in requirement {text!r}") from exc
        return cls(match.group(1), match.group(2), threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class GatePolicy:
    """Which gates guard an alias."""

    require: tuple[Requirement, ...] = ()
    holdout: str | None = None          # dataset version both models are scored on
    max_regression: float | None = None  # how much worse than the current holder may be
    metric: str | None = None           # the metric compared for regression
    label: str | None = None
    check_signature: bool = True

    @classmethod
    def for_alias(cls, name: str, alias: str, require: list[str] | None = None,
                  holdout: str | None = None, max_regression: float | None = None,
                  metric: str | None = None, label: str | None = None,
                  ws: Workspace | None = None) -> GatePolicy:
        """The gates of ``keel.toml`` for this model and alias, overridden by arguments.

        ``[models.NAME.gates.ALIAS]`` (or ``[gates.ALIAS]`` for every model) holds
        ``require = ["auc >= 0.85"]``, ``holdout``, ``max_regression``, ``metric``,
        ``label``.
        """
        declared = _declared(name, alias, ws)
        policy = cls(
            require=tuple(Requirement.parse(r) for r in _requirements(declared, name, alias)),
            holdout=declared.get("holdout"), max_regression=declared.get("max_regression"),
            metric=declared.get("metric"), label=declared.get("label"),
            check_signature=bool(declared.get("check_signature", True)))
        if require:
            policy = replace(policy, require=tuple(Requirement.parse(r) for r in require))
        given = {"holdout": holdout, "max_regression": max_regression, "metric": metric,
                 "label": label}
        overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        policy = replace(policy, **overrides)
        if policy.max_regression is not None and policy.holdout is None:
            raise InvalidInput("a regression gate needs a holdout dataset version to score "
                               "both models on", hint="add --holdout NAME@VERSION")
        if policy.max_regression is not None and policy.max_regression < 0:
            raise InvalidInput("--max-regression must be 0 or more",
                               hint="it is how much worse than the current version is allowed")
        return policy

    @property
    def is_empty(self) -> bool:
        return not self.require and self.holdout is None and not self.check_signature


def _requirements(declared: dict[str, Any], name: str, alias: str) -> list[str]:
    """``require`` from keel.toml: a list of rules, or one rule as a string."""
    found = declared.get("require", [])
    if isinstance(found, str):
        return [found]  # require = "auc >= 0.9" means the one rule, not its characters
    if not isinstance(found, list) or not all(isinstance(r, str) for r in found):
        raise InvalidInput(f"keel.toml: require for {name}@{alias} must be a list of rules",
                           hint='write require = ["auc >= 0.85", "f1 >= 0.8"]')
    return found


def _declared(name: str, alias: str, ws: Workspace | None) -> dict[str, Any]:
    table = read_toml(ws.root if ws else find_workspace())
    found: dict[str, Any] = {}
    models: Any = table.get("models", {})
    per_model: Any = models.get(name, {}) if isinstance(models, dict) else {}
    for section in (table.get("gates", {}),
                    per_model.get("gates", {}) if isinstance(per_model, dict) else {}):
        if isinstance(section, dict) and isinstance(section.get(alias), dict):
            found.update(section[alias])
    return found


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict and the numbers behind it."""

    gate: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "detail": self.detail,
                "evidence": self.evidence}


@dataclass(frozen=True)
class GateReport:
    """Every gate's result for one candidate version and alias."""

    candidate: str
    alias: str
    current: str | None
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "alias": self.alias, "current": self.current,
                "passed": self.passed, "results": [r.to_dict() for r in self.results]}

    def to_markdown(self) -> str:
        """A summary for a pull-request comment."""
        verdict = "passed" if self.passed else "FAILED"
        lines = [f"### keel gate: `{self.candidate}` -> `{self.alias}`: **{verdict}**", "",
                 f"Current `{self.alias}`: `{self.current or 'none'}`", "",
                 "| gate | result | detail |", "|---|---|---|"]
        lines += [f"| {r.gate} | {'pass' if r.passed else '**FAIL**'} | "
                  f"{r.detail.replace('|', '/')} |" for r in self.results]
        return "\n".join(lines) + "\n"


def gate_failed(report: GateReport) -> GateFailed:
    """The refusal of a promotion, with ``report`` as its evidence."""
    failed = "; ".join(f"{r.gate}: {r.detail}" for r in report.failed)
    return GateFailed(f"{report.candidate} cannot become {report.alias!r}: {failed}",
                      hint="improve the model, or override with --force and a --reason "
                           "(audited)", report=report)


def run_gates(candidate: ModelVersion, alias: str, policy: GatePolicy,
              current: ModelVersion | None, ws: Workspace) -> GateReport:
    """Check ``candidate`` against every gate of ``policy``; never raises on a failure."""
    from keel.models.evaluate import evaluate

    results: list[GateResult] = []
    scored: dict[str, float] = {}
    evidence: dict[str, Any] = {}
    if policy.holdout is not None:
        found = evaluate(candidate.ref, policy.holdout, label=policy.label, ws=ws)
        scored, evidence = found.metrics, {"evaluation_run": found.run_id,
                                           "holdout": policy.holdout}
    logged = _manifest(candidate, ws).metrics
    for requirement in policy.require:
        results.append(_threshold(requirement, scored or logged,
                                  "holdout" if scored else "logged", evidence))
    if policy.holdout is not None and current is not None and current.version != \
            candidate.version:
        results.append(_regression(candidate, current, scored, policy, ws))
    if policy.check_signature and current is not None:
        results.append(_signature(candidate, current, ws))
    return GateReport(candidate.ref, alias, current.ref if current else None, tuple(results))


def _manifest(version: ModelVersion, ws: Workspace) -> PackageManifest:
    return PackageManifest.from_yaml(ws.blobs.get_bytes(version.package_digest))


def _threshold(requirement: Requirement, metrics: dict[str, float], where: str,
               evidence: dict[str, Any]) -> GateResult:
    value = metrics.get(requirement.metric)
    if value is None:
        return GateResult(f"require {requirement}", False,
                          f"metric {requirement.metric!r} not found in the {where} metrics "
                          f"({', '.join(sorted(metrics)) or 'none'})", evidence)
    return GateResult(f"require {requirement}", requirement.holds(value),
                      f"{requirement.metric} = {value:.4f} ({where})",
                      {**evidence, "value": value, "threshold": requirement.threshold})


def _regression(candidate: ModelVersion, current: ModelVersion, scored: dict[str, float],
                policy: GatePolicy, ws: Workspace) -> GateResult:
    from keel.models.evaluate import evaluate

    assert policy.holdout is not None  # the caller checked
    theirs = evaluate(current.ref, policy.holdout, label=policy.label, ws=ws)
    metric = policy.metric or (policy.require[0].metric if policy.require else None) or \
        next((m for m in ("auc", "accuracy", "r2") if m in scored), None)
    allowed = policy.max_regression or 0.0
    name = f"no regression vs {current.ref}"
    if metric is None or metric not in scored or metric not in theirs.metrics:
        return GateResult(name, False, f"metric {metric!r} is not scored for both models",
                          {"candidate": scored, "current": theirs.metrics})
    ours, before = scored[metric], theirs.metrics[metric]
    loss = (before - ours) if higher_is_better(metric) else (ours - before)
    return GateResult(
        name, loss <= allowed + 1e-12,
        f"{metric} on {policy.holdout}: {ours:.4f} vs {before:.4f} "
        f"({'-' if loss > 0 else '+'}{abs(loss):.4f}; a drop of at most {allowed:g} allowed)",
        {"metric": metric, "candidate": ours, "current": before, "regression": loss,
         "max_regression": allowed, "current_evaluation_run": theirs.run_id,
         "holdout": policy.holdout})


def _signature(candidate: ModelVersion, current: ModelVersion, ws: Workspace) -> GateResult:
    ours = Signature.from_dict(_manifest(candidate, ws).signature)
    theirs = Signature.from_dict(_manifest(current, ws).signature)
    name = f"signature compatible with {current.ref}"
    if ours.kind != theirs.kind:
        return GateResult(name, False, f"{ours.kind} input vs {theirs.kind} input")
    if ours.kind == "array":
        same = ours.shape == theirs.shape and ours.dtype == theirs.dtype
        return GateResult(name, same, "same array shape and dtype" if same else
                          f"{ours.describe()} vs {theirs.describe()}")
    mine = {c.name: c.kind for c in ours.columns}
    old = {c.name: c.kind for c in theirs.columns}
    problems = [f"needs new column {c!r}" for c in mine if c not in old]
    problems += [f"drops column {c!r}" for c in old if c not in mine]
    problems += [f"column {c!r} changes {old[c]} -> {k}" for c, k in mine.items()
                 if c in old and old[c] != k]
    return GateResult(name, not problems, "; ".join(problems) or
                      f"same {len(mine)} input columns and types",
                      {"problems": problems})
