"""MLflow's model registry, served by the team server: registered models, their
versions and aliases (``mlflow.register_model``, ``models:/name/1``).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "mlflow_models",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "mlflow_model_versions",
        sa.Column("name", sa.String(256), sa.ForeignKey("mlflow_models.name"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "mlflow_model_aliases",
        sa.Column("name", sa.String(256), sa.ForeignKey("mlflow_models.name"),
                  primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlflow_model_aliases")
    op.drop_table("mlflow_model_versions")
    op.drop_table("mlflow_models")
