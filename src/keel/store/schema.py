"""Every table keel stores metadata in: the single source of truth for the schema.

Alembic migrations under ``store/migrations`` must produce exactly this; a test
compares the two. Timestamps are integer milliseconds since the epoch. A metric
value of NULL means NaN: SQLite cannot store NaN in a REAL column.
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.revision import SCHEMA_REVISION as SCHEMA_REVISION  # re-exported

metadata = sa.MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY, PostgreSQL wants a BIGINT.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

KEY = 250  # longest key accepted for params, metrics and tags

experiments = sa.Table(
    "experiments", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("lifecycle", sa.String(16), nullable=False, default="active"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Who may see it through the team server (a token sees its project only).
    sa.Column("project", sa.String(128), nullable=False, server_default="default"),
    sa.Index("ix_experiments_project", "project"),
)

experiment_tags = sa.Table(
    "experiment_tags", metadata,
    sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.id"), primary_key=True),
    sa.Column("key", sa.String(KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("parent_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("lifecycle", sa.String(16), nullable=False, default="active"),
    sa.Column("error", sa.Text, nullable=True),
    # When the run was deleted (soft); `keel gc --older-than` purges after that.
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    sa.Index("ix_runs_parent", "parent_id"),
)

params = sa.Table(
    "params", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_params_key_value", "key", "value"),
)

tags = sa.Table(
    "tags", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(KEY), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

# The newest point per (run, key), kept in step with `metrics` on every write,
# so that search filters and sorts by metric without scanning the history.
latest_metrics = sa.Table(
    "latest_metrics", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(KEY), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = sa.Table(
    "artifacts", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

# MLflow 3's logged models (``mlflow.<flavor>.log_model`` through the team
# server): the model's record, and the files the client uploaded for it.
logged_models = sa.Table(
    "logged_models", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("source_run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("status_message", sa.Text, nullable=False, default=""),
    sa.Column("model_type", sa.String(256), nullable=False, default=""),
    sa.Column("creator", sa.String(256), nullable=False, default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("tags", sa.Text, nullable=False, default="{}"),  # JSON object
    sa.Column("params", sa.Text, nullable=False, default="{}"),  # JSON object
    sa.Column("lifecycle", sa.String(16), nullable=False, default="active"),
    sa.Index("ix_logged_models_experiment", "experiment_id", "created_at"),
)

logged_model_files = sa.Table(
    "logged_model_files", metadata,
    sa.Column("model_id", sa.String(64), sa.ForeignKey("logged_models.id"), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

# MLflow's model registry (``mlflow.register_model`` through the team server):
# registered models of MLflow-format models, apart from keel's own registry,
# whose versions are keel packages. A name belongs to one project.
mlflow_models = sa.Table(
    "mlflow_models", metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("tags", sa.Text, nullable=False, default="{}"),  # JSON object
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

mlflow_model_versions = sa.Table(
    "mlflow_model_versions", metadata,
    sa.Column("name", sa.String(256), sa.ForeignKey("mlflow_models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("model_id", sa.String(64), nullable=True),  # a logged model's id, MLflow 3
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("tags", sa.Text, nullable=False, default="{}"),  # JSON object
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

mlflow_model_aliases = sa.Table(
    "mlflow_model_aliases", metadata,
    sa.Column("name", sa.String(256), sa.ForeignKey("mlflow_models.name"), primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# The project of a dataset or registered model ("dataset" / "model" kinds) made
# by another project's token on the team server; a name without a row is the
# default project's (the CLI and the Python API work there).
project_names = sa.Table(
    "project_names", metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Index("ix_project_names_project", "kind", "project"),
)

# How far each spool file has been copied into the store. Updated in the same
# transaction as the rows it covers, so a replay never loses or doubles a point.
spool_offsets = sa.Table(
    "spool_offsets", metadata,
    sa.Column("spool", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
)

datasets = sa.Table(
    "datasets", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# Immutable snapshots; (dataset_id, version) is unique so two processes adding
# at once cannot both become version N (one retries as N+1).
dataset_versions = sa.Table(
    "dataset_versions", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", BigId, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("manifest_digest", sa.String(64), nullable=False),
    sa.Column("files", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("checks_digest", sa.String(64), nullable=True),
    sa.Column("checks_passed", sa.Boolean, nullable=True),
    sa.Column("profiles_digest", sa.String(64), nullable=True),
    sa.Column("lifecycle", sa.String(16), nullable=False, default="active",
              server_default="active"),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
)

# Which runs read (input) or wrote (output) which dataset versions.
run_datasets = sa.Table(
    "run_datasets", metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("version_id", BigId, sa.ForeignKey("dataset_versions.id"), primary_key=True),
    sa.Column("role", sa.String(8), primary_key=True),
    sa.Index("ix_run_datasets_version", "version_id"),
)

registered_models = sa.Table(
    "registered_models", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# Immutable versions; (model_id, version) is unique so two registrations at
# once cannot both become version N (the loser retries as N+1).
model_versions = sa.Table(
    "model_versions", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("package_digest", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("lifecycle", sa.String(16), nullable=False, default="active"),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
    sa.Index("ix_model_versions_run", "run_id"),
)

# Tags of a model (version 0) or of one of its versions.
model_tags = sa.Table(
    "model_tags", metadata,
    sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases", metadata,
    sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# The audit trail: append-only. Evidence (gate results) is JSON text.
model_events = sa.Table(
    "model_events", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("alias", sa.String(128), nullable=True),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("evidence", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_model_events_model", "model_id", "id"),
)

# Facts about the store itself; today one row, ``store_id``: a UUID made when
# the database was created, so that spool files (and later clients) can tell
# which store they belong to even when two stores' URLs look alike.
store_info = sa.Table(
    "store_info", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Pipeline step cache: a step whose key (code, params, inputs, environment) was
# seen reuses the outputs of the run that computed them. ``components`` keeps
# the key's parts (JSON) so `keel pipeline status` can say which one changed.
step_cache = sa.Table(
    "step_cache", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(256), nullable=False),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("components", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_step_cache_step", "pipeline", "step", "created_at"),
)

# Serving. A deployment's traffic policy (JSON spec) with a revision number that
# every change bumps: servers poll it and swap policies without a restart.
deployments = sa.Table(
    "deployments", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Every change of a deployment, with who, why and (for automatic rollbacks) the
# figures that triggered it. Append-only, like model_events.
deployment_events = sa.Table(
    "deployment_events", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("figures", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_deployment_events_name", "deployment", "id"),
)

# Live figures: each server worker adds one row per (version, role) and flush
# window. `keel deploy status` and the canary's rollback check sum them.
deployment_stats = sa.Table(
    "deployment_stats", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("version", sa.String(160), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(128), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("latency", sa.Text, nullable=False),       # histogram bucket counts (JSON)
    sa.Column("predictions", sa.Text, nullable=False),   # prediction histogram (JSON)
    sa.Index("ix_deployment_stats_name_time", "deployment", "time"),
)

# The inference log: append-only Parquet segments in the blob store.
inference_segments = sa.Table(
    "inference_segments", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=False),
    sa.Column("worker", sa.String(128), nullable=False),
    sa.Index("ix_inference_segments_name_time", "deployment", "start_time", "end_time"),
)

# Ground truth attached to predictions by request id, after the fact.
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("deployment", sa.String(128), nullable=True),
    sa.Column("label", sa.Text, nullable=False),          # JSON value
    sa.Column("time", sa.BigInteger, nullable=False),
)

# Monitoring: one row per comparison (the full result as JSON), alerts raised
# from them, and every continuous-training action with its chain and links.
monitor_records = sa.Table(
    "monitor_records", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("window_start", sa.BigInteger, nullable=True),
    sa.Column("window_end", sa.BigInteger, nullable=True),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("current", sa.Text, nullable=False),
    sa.Column("share_drifted", sa.Float, nullable=False),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Index("ix_monitor_records_subject_time", "subject", "time"),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("delivery", sa.Text, nullable=False),
    sa.Index("ix_alerts_subject_time", "subject", "time"),
)

automation_actions = sa.Table(
    "automation_actions", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("chain", sa.BigInteger, nullable=True),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("figures", sa.Text, nullable=False),
    sa.Column("links", sa.Text, nullable=False),
    sa.Index("ix_automation_actions_name", "deployment", "id"),
)

# The team server: tokens (only their SHA-256 is kept) and who wrote what.
tokens = sa.Table(
    "tokens", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

server_audit = sa.Table(
    "server_audit", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("token_id", sa.String(16), nullable=True),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Index("ix_server_audit_time", "time"),
)
