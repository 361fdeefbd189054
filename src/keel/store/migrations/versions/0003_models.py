"""The model registry: models, immutable versions, tags, aliases, audit events.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("package_digest", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("lifecycle", sa.String(16), nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_tags",
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "model_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("alias", sa.String(128), nullable=True),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
    )
    op.create_index("ix_model_events_model", "model_events", ["model_id", "id"])


def downgrade() -> None:
    for table in ("model_events", "model_aliases", "model_tags", "model_versions",
                  "registered_models"):
        op.drop_table(table)
