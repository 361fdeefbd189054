"""A deployment's continuous-training policy, as keel.toml declares it:

    [automate.prod]
    pipeline = "pipeline.py:churn"          # the training pipeline; its last step logs the model
    model = "churn"
    data = "transactions@latest"            # the dataset the retrain reads
    triggers = ["drift_share > 0.3", "performance.accuracy < 0.8", "new_version: transactions"]
    gates = ["accuracy >= 0.85"]            # the gate language of `keel model promote --require`
    canary = { percent = 10, min_requests = 500, max_error_rate = 0.01 }

Optional: ``window`` (the monitoring window triggers read, default "1h"),
``observe`` (how long a canary runs at least before it is judged, default
"0s": judged once it has ``min_requests``), ``alias`` (moved on promotion,
default "champion"), ``holdout`` and ``max_regression`` (passed to the gates),
``reference`` (the monitoring reference).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound
from keel.monitoring.rules import Rule

if TYPE_CHECKING:
    from keel.workspace import Workspace

KNOWN = {"pipeline", "model", "data", "triggers", "gates", "canary", "window", "observe",
         "alias", "holdout", "max_regression", "reference"}
_NEW_VERSION = re.compile(r"^\s*new_version\s*:\s*([A-Za-z0-9][\w.-]*)\s*$")
_SCHEDULE = re.compile(r"^\s*schedule\s*:\s*(\S+)\s*$")


@dataclass(frozen=True)
class Trigger:
    """One trigger: a rule over monitoring figures, a new dataset version, or a schedule."""

    text: str
    rule: Rule | None = None
    dataset: str | None = None
    every_seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Trigger:
        from keel.durations import parse_duration

        if match := _NEW_VERSION.match(text):
            return cls(text, dataset=match.group(1))
        if match := _SCHEDULE.match(text):
            return cls(text, every_seconds=parse_duration(match.group(1), "schedule"))
        try:
            return cls(text, rule=Rule.parse(text))
        except InvalidInput as exc:
            raise InvalidInput(f"bad trigger {text!r}",
                               hint="write a rule (\"drift_share > 0.3\", "
                                    "\"performance.accuracy < 0.8\"), \"new_version: DATASET\" "
                                    "or \"schedule: 7d\"") from exc


@dataclass(frozen=True)
class CanaryPlan:
    percent: float = 10.0
    min_requests: int = 500
    max_error_rate: float = 0.01


@dataclass(frozen=True)
class Policy:
    """What to watch, how to retrain, and how carefully to roll out.

    Declared in Python rather than keel.toml::

        policy = Policy("prod", pipeline=churn, model="churn", data="transactions@latest",
                        triggers=(Trigger.parse("drift_share > 0.3"),),
                        gates=("accuracy >= 0.85",))
        keel.automation.run_once(policy=policy)
    """

    deployment: str
    pipeline: Any  # "pipeline.py:NAME" (from the workspace root), or a @keel.pipeline object
    model: str
    data: str | None = None
    triggers: tuple[Trigger, ...] = ()
    gates: tuple[str, ...] = ()
    canary: CanaryPlan = field(default_factory=CanaryPlan)
    window: str = "1h"
    observe_seconds: float = 0.0
    alias: str = "champion"
    holdout: str | None = None
    max_regression: float | None = None
    reference: str | None = None

    @property
    def pipeline_name(self) -> str:
        """How the pipeline is named in messages and the audit."""
        if isinstance(self.pipeline, str):
            return self.pipeline
        return str(getattr(self.pipeline, "name", self.pipeline))

    @classmethod
    def from_table(cls, deployment: str, table: dict[str, Any]) -> Policy:
        """Read ``[automate.NAME]``; every mistake named with its fix."""
        from keel.durations import parse_duration

        where = f"[automate.{deployment}]"
        unknown = sorted(set(table) - KNOWN)
        if unknown:
            raise InvalidInput(f"{where} in keel.toml has unknown keys: {', '.join(unknown)}",
                               hint=f"known keys: {', '.join(sorted(KNOWN))}")
        for key in ("pipeline", "model"):
            if not isinstance(table.get(key), str) or not table[key].strip():
                raise InvalidInput(f"{where} needs {key} = \"...\"",
                                   hint="pipeline = \"pipeline.py:NAME\", model = \"NAME\"")
        triggers = table.get("triggers", [])
        gates = table.get("gates", [])
        for key, value in (("triggers", triggers), ("gates", gates)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidInput(f"{where} {key} must be a list of strings")
        if not triggers:
            raise InvalidInput(f"{where} has no triggers: nothing would ever retrain",
                               hint="triggers = [\"drift_share > 0.3\"]")
        canary = table.get("canary", {})
        if not isinstance(canary, dict):
            raise InvalidInput(f"{where} canary must be a table, e.g. "
                               "{ percent = 10, min_requests = 500 }")
        plan = CanaryPlan(float(canary.get("percent", 10)), int(canary.get("min_requests", 500)),
                          float(canary.get("max_error_rate", 0.01)))
        if not 0 < plan.percent < 100 or plan.min_requests < 1 or \
                not 0 <= plan.max_error_rate <= 1:
            raise InvalidInput(f"{where} canary: percent in (0, 100), min_requests >= 1, "
                               "max_error_rate in [0, 1]")
        from keel.models.gates import Requirement

        for gate in gates:
            Requirement.parse(gate)  # refuse a bad gate now, not after a retrain
        return cls(deployment, table["pipeline"], table["model"], table.get("data"),
                   tuple(Trigger.parse(t) for t in triggers), tuple(gates), plan,
                   str(table.get("window", "1h")),
                   parse_duration(table.get("observe", "0s"), "observe"),
                   str(table.get("alias", "champion")), table.get("holdout"),
                   table.get("max_regression"), table.get("reference"))


def policies(ws: Workspace, deployment: str | None = None) -> list[Policy]:
    """Every ``[automate.*]`` policy of keel.toml (or the one for ``deployment``)."""
    from keel.config import read_toml

    table = read_toml(ws.root).get("automate", {})
    if not isinstance(table, dict):
        raise InvalidInput("[automate] in keel.toml must hold one table per deployment")
    if deployment is not None:
        if deployment not in table:
            raise NotFound(f"keel.toml declares no [automate.{deployment}]",
                           hint="declared: " + (", ".join(table) or "none") +
                                " (see docs/monitoring.md)")
        return [Policy.from_table(deployment, table[deployment])]
    return [Policy.from_table(name, value) for name, value in table.items()]
