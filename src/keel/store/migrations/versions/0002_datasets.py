"""Datasets, their versions, and which runs read or wrote them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dataset_versions",
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
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
    )
    op.create_table(
        "run_datasets",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("version_id", BigId, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("role", sa.String(8), primary_key=True),
    )
    op.create_index("ix_run_datasets_version", "run_datasets", ["version_id"])


def downgrade() -> None:
    for table in ("run_datasets", "dataset_versions", "datasets"):
        op.drop_table(table)
