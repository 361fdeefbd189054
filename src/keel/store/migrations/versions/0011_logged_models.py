"""MLflow 3's logged models, served by the team server: their records and files.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("source_run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("model_type", sa.String(256), nullable=False),
        sa.Column("creator", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("lifecycle", sa.String(16), nullable=False),
    )
    op.create_index("ix_logged_models_experiment", "logged_models",
                    ["experiment_id", "created_at"])
    op.create_table(
        "logged_model_files",
        sa.Column("model_id", sa.String(64), sa.ForeignKey("logged_models.id"),
                  primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("logged_model_files")
    op.drop_index("ix_logged_models_experiment", "logged_models")
    op.drop_table("logged_models")
