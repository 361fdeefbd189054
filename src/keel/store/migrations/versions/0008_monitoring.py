"""Monitoring and continuous training: monitoring records, alerts, automation actions.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_records",
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
    )
    op.create_index("ix_monitor_records_subject_time", "monitor_records", ["subject", "time"])
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("delivery", sa.Text, nullable=False),
    )
    op.create_index("ix_alerts_subject_time", "alerts", ["subject", "time"])
    op.create_table(
        "automation_actions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("chain", sa.BigInteger, nullable=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("links", sa.Text, nullable=False),
    )
    op.create_index("ix_automation_actions_name", "automation_actions", ["deployment", "id"])


def downgrade() -> None:
    op.drop_table("automation_actions")
    op.drop_table("alerts")
    op.drop_table("monitor_records")
