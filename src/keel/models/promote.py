"""Gated alias moves: ``keel model promote churn/4 --alias champion``."""

from __future__ import annotations

from dataclasses import dataclass

from keel.entities import ACTIVE, ModelVersion
from keel.errors import InvalidInput
from keel.models.gates import GatePolicy, GateReport, gate_failed, run_gates
from keel.models.registry import get_version
from keel.models.uri import check_alias
from keel.tracking.provenance import current_user
from keel.workspace import Workspace, resolve_workspace


@dataclass(frozen=True)
class Promotion:
    """A completed alias move and the gate evidence behind it."""

    version: ModelVersion
    alias: str
    previous: int | None
    report: GateReport
    forced: bool


def promote(ref: str, alias: str, reason: str = "", policy: GatePolicy | None = None,
            force: bool = False, model: str | None = None,
            ws: Workspace | None = None) -> Promotion:
    """Move ``alias`` to version ``ref`` if every gate passes.

    A failing gate raises :class:`GateFailed` (the refusal and its evidence go
    to the model's history). ``force=True`` moves the alias anyway; it needs a
    ``reason`` and is audited as forced. ``alias`` may be written
    ``NAME@ALIAS``; NAME (or ``model``) must then be the version's own model.
    """
    ws = resolve_workspace(ws)
    version = get_version(ref, ws)
    if "@" in alias:
        model, _, alias = alias.partition("@")
    if model is not None and model != version.name:
        raise InvalidInput(f"{version.ref} is a version of {version.name!r}, not of {model!r}",
                           hint=f"aliases belong to one model: promote a version of {model!r}, "
                                f"or use the alias on {version.name!r}")
    check_alias(alias)
    if force and not reason.strip():
        raise InvalidInput("a forced promotion needs a reason",
                           hint="add --reason \"why the gates may be skipped\" (it is audited)")
    policy = policy or GatePolicy.for_alias(version.name, alias, ws=ws)
    current = _current(version.name, alias, ws)
    report = run_gates(version, alias, policy, current, ws)
    evidence = report.to_dict()
    if not report.passed and not force:
        ws.store.record_model_event(version.name, "refuse", current_user(),
                                    version=version.version, alias=alias,
                                    from_version=current.version if current else None,
                                    to_version=version.version, reason=reason,
                                    evidence=evidence)
        raise gate_failed(report)
    forced = force and not report.passed
    previous = ws.store.set_model_alias(version.name, alias, version.version, current_user(),
                                        reason, evidence, action="force" if forced else "promote")
    return Promotion(ws.store.get_model_version(version.name, version.version), alias,
                     previous, report, forced)


def check(ref: str, alias: str, policy: GatePolicy | None = None,
          ws: Workspace | None = None) -> GateReport:
    """Run the gates without moving anything (``keel ci gate``)."""
    ws = resolve_workspace(ws)
    version = get_version(ref, ws)
    check_alias(alias)
    policy = policy or GatePolicy.for_alias(version.name, alias, ws=ws)
    return run_gates(version, alias, policy, _current(version.name, alias, ws), ws)


def _current(name: str, alias: str, ws: Workspace) -> ModelVersion | None:
    """The version the alias names now; None if unset or deleted (a deleted
    version cannot be loaded, so there is nothing to compare against)."""
    model = ws.store.get_registered_model(name)
    number = model.aliases.get(alias)
    if number is None:
        return None
    version = ws.store.get_model_version(name, number)
    return version if version.lifecycle == ACTIVE else None
