"""When runs, model versions and dataset versions were deleted, for retention
(``keel gc --older-than``); dataset versions gain a lifecycle (they can be deleted).

Rows deleted before this migration get the migration's time: their retention
counts from the upgrade, never from an unknown earlier moment.

Revision ID: 0005
Revises: 0004
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    now = time.time_ns() // 1_000_000
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("lifecycle", sa.String(16), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("deleted_at", sa.BigInteger, nullable=True))
    for table in ("runs", "model_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("deleted_at", sa.BigInteger, nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET deleted_at = :now WHERE lifecycle = 'deleted'")
                   .bindparams(now=now))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("lifecycle")
    for table in ("runs", "model_versions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("deleted_at")
