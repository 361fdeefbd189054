"""MLflow's model registry in the SQL store (served by the team server's
``/mlflow/registered-models`` and ``/mlflow/model-versions`` endpoints; see
``server/mlflow_registry.py``)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keel.clock import now_ms
from keel.entities import MlflowModel, MlflowModelVersion
from keel.errors import AlreadyExists, NotFound
from keel.store import schema as t
from keel.store.base import SqlBase


class MlflowRegistryStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for MLflow's registered models."""

    def create_mlflow_model(self, name: str, project: str, description: str = "",
                            tags: dict[str, str] | None = None) -> MlflowModel:
        now = now_ms()
        try:
            self._write(lambda conn: conn.execute(t.mlflow_models.insert().values(
                name=name, project=project, description=description,
                tags=json.dumps(tags or {}), created_at=now, updated_at=now)))
        except IntegrityError as exc:
            raise AlreadyExists(f"Registered Model (name={name}) already exists.") from exc
        return self.get_mlflow_model(name)

    def get_mlflow_model(self, name: str) -> MlflowModel:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.mlflow_models)
                               .where(t.mlflow_models.c.name == name)).first()
            if row is None:
                raise NotFound(f"Registered Model with name={name} not found")
            aliases = conn.execute(sa.select(t.mlflow_model_aliases.c.alias,
                                             t.mlflow_model_aliases.c.version)
                                   .where(t.mlflow_model_aliases.c.name == name)).all()
        return MlflowModel(name=row.name, project=row.project, description=row.description,
                           created_at=row.created_at, updated_at=row.updated_at,
                           tags=json.loads(row.tags),
                           aliases={a.alias: int(a.version) for a in aliases})

    def list_mlflow_models(self, project: str, max_results: int, offset: int = 0
                           ) -> list[MlflowModel]:
        """A project's registered models by name."""
        m = t.mlflow_models.c
        with self.reader.connect() as conn:
            names = conn.execute(sa.select(m.name).where(m.project == project)
                                 .order_by(m.name).limit(max_results).offset(offset)
                                 ).scalars().all()
        return [self.get_mlflow_model(name) for name in names]

    def create_mlflow_model_version(self, name: str, source: str, run_id: str | None,
                                    model_id: str | None, description: str = "",
                                    tags: dict[str, str] | None = None
                                    ) -> MlflowModelVersion:
        """The next version of ``name`` (which must exist)."""
        v = t.mlflow_model_versions.c

        def action(conn: sa.Connection) -> int:
            if conn.execute(sa.select(t.mlflow_models.c.name)
                            .where(t.mlflow_models.c.name == name)).first() is None:
                raise NotFound(f"Registered Model with name={name} not found")
            last = conn.execute(sa.select(sa.func.max(v.version)).where(v.name == name)).scalar()
            number = int(last or 0) + 1
            now = now_ms()
            conn.execute(t.mlflow_model_versions.insert().values(
                name=name, version=number, source=source, run_id=run_id, model_id=model_id,
                description=description, tags=json.dumps(tags or {}), created_at=now,
                updated_at=now))
            conn.execute(t.mlflow_models.update().where(t.mlflow_models.c.name == name)
                         .values(updated_at=now))
            return number

        for _attempt in range(5):  # two clients numbering at once: the loser renumbers
            try:
                return self.get_mlflow_model_version(name, self._write(action))
            except IntegrityError:
                continue
        raise AlreadyExists(f"could not number a new version of {name!r}: too many at once",
                            hint="try again")

    def get_mlflow_model_version(self, name: str, version: int) -> MlflowModelVersion:
        v = t.mlflow_model_versions.c
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.mlflow_model_versions)
                               .where(v.name == name, v.version == version)).first()
        if row is None:
            raise NotFound(f"Model Version (name={name}, version={version}) not found")
        return _version(row._mapping)

    def mlflow_model_versions(self, name: str) -> list[MlflowModelVersion]:
        v = t.mlflow_model_versions.c
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(t.mlflow_model_versions).where(v.name == name)
                                .order_by(v.version)).all()
        return [_version(r._mapping) for r in rows]

    def set_mlflow_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``name`` at ``version`` (which must exist)."""
        a = t.mlflow_model_aliases

        def action(conn: sa.Connection) -> None:
            v = t.mlflow_model_versions.c
            if conn.execute(sa.select(v.version).where(v.name == name, v.version == version)
                            ).first() is None:
                raise NotFound(f"Model Version (name={name}, version={version}) not found")
            conn.execute(a.delete().where(a.c.name == name, a.c.alias == alias))
            conn.execute(a.insert().values(name=name, alias=alias, version=version))

        self._write(action)

    def delete_mlflow_alias(self, name: str, alias: str) -> None:
        a = t.mlflow_model_aliases
        self._write(lambda conn: conn.execute(
            a.delete().where(a.c.name == name, a.c.alias == alias)))


def _version(row: Any) -> MlflowModelVersion:
    return MlflowModelVersion(name=row["name"], version=int(row["version"]),
                              source=row["source"], run_id=row["run_id"],
                              model_id=row["model_id"], description=row["description"],
                              created_at=row["created_at"], updated_at=row["updated_at"],
                              tags=json.loads(row["tags"]))
