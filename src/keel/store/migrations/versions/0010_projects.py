"""Experiments belong to a project (``default`` unless the team server's token
says otherwise): the server shows a token only its project's experiments,
their runs and their artifacts.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.add_column("experiments", sa.Column("project", sa.String(128), nullable=False,
                                           server_default="default"))
    op.create_index("ix_experiments_project", "experiments", ["project"])


def downgrade() -> None:
    op.drop_index("ix_experiments_project", "experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("project")
