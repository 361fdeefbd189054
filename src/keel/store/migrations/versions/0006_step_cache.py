"""Pipeline step cache: key -> the run that computed the step and its outputs.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "step_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("step", sa.String(256), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_step_cache_step", "step_cache", ["pipeline", "step", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_step_cache_step", "step_cache")
    op.drop_table("step_cache")
