"""Which project a dataset or a registered model belongs to, when it is not the
default project's (the team server's tokens of other projects create them).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "project_names",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("project", sa.String(128), nullable=False),
    )
    op.create_index("ix_project_names_project", "project_names", ["kind", "project"])


def downgrade() -> None:
    op.drop_index("ix_project_names_project", "project_names")
    op.drop_table("project_names")
