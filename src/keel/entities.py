"""Values the tracking layer stores and returns: frozen dataclasses, no behaviour.

A leaf module (imports nothing from keel) so that the store below and the
domain above can both speak in these terms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
# Every workspace has this project; a team server's token may name another.
DEFAULT_PROJECT = "default"
ACTIVE, DELETED = "active", "deleted"


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: stored with its last batch, in one transaction."""

    status: str
    end_time: int
    error: str | None = None


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    description: str
    lifecycle: str
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)
    project: str = DEFAULT_PROJECT  # the team server shows it to this project's tokens only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric: NaN and +-inf are kept as such."""

    key: str
    value: float
    step: int
    timestamp: int  # milliseconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoggedModel:
    """A model an MLflow 3 client logged through the team server
    (``mlflow.<flavor>.log_model``): its record; its files are artifacts of it."""

    id: str
    experiment_id: int
    name: str
    source_run_id: str | None
    status: str  # LOGGED_MODEL_PENDING, LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED
    status_message: str
    model_type: str
    creator: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    lifecycle: str = "active"


@dataclass(frozen=True)
class MlflowModel:
    """A model registered by an MLflow client (``mlflow.register_model``) through
    the team server; its versions are :class:`MlflowModelVersion`."""

    name: str
    project: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version


@dataclass(frozen=True)
class MlflowModelVersion:
    """One version of an :class:`MlflowModel`: where its files are (``source``, or
    the logged model ``model_id``) and the run that made it."""

    name: str
    version: int
    source: str
    run_id: str | None
    model_id: str | None
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    """A file of a run: its relative path and the blob holding its bytes."""

    path: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Run:
    """A stored run: what it is, and what was logged to it (latest metric values)."""

    id: str
    experiment_id: int
    experiment: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    user: str
    parent_id: str | None
    lifecycle: str
    error: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds between start and end, None while running."""
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # JSON has no NaN/inf: render them as strings a reader can recognise.
        data["metrics"] = {k: v if math.isfinite(v) else str(v) for k, v in self.metrics.items()}
        return data


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable snapshot of a dataset: ``name@version`` and its manifest."""

    id: int
    dataset: str
    version: int
    manifest_digest: str
    files: int
    bytes: int
    message: str
    created_at: int
    user: str
    source: str  # where the data was added from, relative to the workspace root if inside it
    checks_digest: str | None = None
    checks_passed: bool | None = None
    profiles_digest: str | None = None
    lifecycle: str = ACTIVE  # active or deleted (``keel data delete``; gc purges later)

    @property
    def ref(self) -> str:
        """``name@version``, the way users name it."""
        return f"{self.dataset}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ref": self.ref}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetVersion:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**fields)


@dataclass(frozen=True)
class ModelVersion:
    """One immutable registered version of a model: ``name/version``."""

    id: int
    name: str
    version: int
    package_digest: str      # digest of the package's keel-model.yaml
    source: str              # where it was registered from (runs:/<id>/model or a folder)
    run_id: str | None
    description: str
    created_at: int
    user: str
    lifecycle: str           # active or deleted
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name/version``, the way the CLI names it."""
        return f"{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ref": self.ref, "uri": self.uri, "aliases": list(self.aliases)}


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its description, tags, and which version each alias names."""

    name: str
    description: str
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelEvent:
    """One entry of a model's audit history: a registration, an alias move, a
    refused or forced promotion, a deletion. Never updated, never deleted."""

    id: int
    name: str
    action: str              # register, promote, refuse, force, delete, restore, ...
    version: int | None
    alias: str | None
    from_version: int | None
    to_version: int | None
    user: str
    time: int
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepRecord:
    """A pipeline step computed once: its cache key, the run that computed it, its
    outputs (name -> stored form) and the parts of its key (for explanations)."""

    key: str
    pipeline: str
    step: str
    run_id: str
    outputs: dict[str, Any]
    components: dict[str, Any]
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deployment:
    """A named traffic policy over model versions (see ``keel.serving.policy``)."""

    name: str
    spec: dict[str, Any]
    revision: int
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeploymentEvent:
    """One change of a deployment: by whom, why, and the figures behind it."""

    id: int
    deployment: str
    action: str
    revision: int
    spec: dict[str, Any]
    user: str
    time: int
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionStats:
    """Live figures of one model version in one deployment, summed over workers."""

    version: str
    role: str
    requests: int
    errors: int
    latency: list[int]          # counts per latency bucket (keel.serving.stats)
    predictions: dict[str, int]  # counts per predicted value (or value bucket)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MonitorRecord:
    """One monitoring comparison: what was compared, the verdict, every figure."""

    id: int
    subject: str  # "deployment:prod" or "<reference> -> <current>"
    time: int
    window_start: int | None
    window_end: int | None
    reference: str
    current: str
    share_drifted: float
    drifted: bool
    result: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Alert:
    """A monitored figure that crossed a rule, and whether the webhook got it."""

    id: int
    subject: str
    record_id: int | None
    time: int
    rule: str
    value: float | None
    message: str
    delivery: str  # "none" | "delivered (200)" | "failed: ..."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AutomationAction:
    """One step of continuous training, linked to what caused it and what it made.

    ``chain`` is the id of the trigger that started the chain (its own id for
    the trigger itself); ``links`` names the pipeline run, model version,
    deployment revision and monitoring record involved.
    """

    id: int
    deployment: str
    chain: int | None
    time: int
    action: str  # trigger | retrain | gate | canary | promote | rollback | skip
    outcome: str  # ok | failed | refused | waiting | dry-run
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Token:
    """An access token of the team server (the secret itself is never stored)."""

    id: str
    project: str
    role: str  # viewer | editor | validator | admin
    description: str
    created_by: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
