"""MLflow 3's logged models in the SQL store (served by the team server's
``/mlflow/logged-models`` endpoints; see ``server/logged_models.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keel.clock import now_ms
from keel.entities import ACTIVE, Artifact, LoggedModel
from keel.errors import NotFound
from keel.store import schema as t
from keel.store.base import SqlBase


class LoggedModelStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for MLflow's logged models."""

    def create_logged_model(self, model_id: str, experiment_id: int, name: str,
                            source_run_id: str | None, model_type: str, creator: str,
                            tags: dict[str, str], params: dict[str, str]) -> LoggedModel:
        """A new logged model, PENDING until its client finalizes it."""
        now = now_ms()
        values = dict(id=model_id, experiment_id=experiment_id, name=name,
                      source_run_id=source_run_id, status="LOGGED_MODEL_PENDING",
                      status_message="", model_type=model_type, creator=creator,
                      created_at=now, updated_at=now, tags=json.dumps(tags),
                      params=json.dumps(params), lifecycle=ACTIVE)
        self._write(lambda conn: conn.execute(t.logged_models.insert().values(**values)))
        return self.get_logged_model(model_id)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.logged_models)
                               .where(t.logged_models.c.id == model_id)).first()
        if row is None or row.lifecycle != ACTIVE:
            raise NotFound(f"no logged model {model_id!r}")
        return _logged_model(row._mapping)

    def update_logged_model(self, model_id: str, status: str | None = None,
                            status_message: str | None = None,
                            tags: dict[str, str] | None = None,
                            params: dict[str, str] | None = None,
                            deleted: bool = False) -> None:
        """Change a logged model's status, add tags or params (merged), or delete it
        (soft: its files stay until ``keel gc``)."""
        def action(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(t.logged_models)
                               .where(t.logged_models.c.id == model_id)).first()
            if row is None or row.lifecycle != ACTIVE:
                raise NotFound(f"no logged model {model_id!r}")
            values: dict[str, Any] = {"updated_at": now_ms()}
            if status is not None:
                values["status"] = status
            if status_message is not None:
                values["status_message"] = status_message
            if tags:
                values["tags"] = json.dumps({**json.loads(row.tags), **tags})
            if params:
                values["params"] = json.dumps({**json.loads(row.params), **params})
            if deleted:
                values["lifecycle"] = "deleted"
            conn.execute(t.logged_models.update().where(t.logged_models.c.id == model_id)
                         .values(**values))

        self._write(action)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        model = self.get_logged_model(model_id)
        remaining = {k: v for k, v in model.tags.items() if k != key}
        self._write(lambda conn: conn.execute(
            t.logged_models.update().where(t.logged_models.c.id == model_id)
            .values(tags=json.dumps(remaining), updated_at=now_ms())))

    def search_logged_models(self, experiment_ids: Sequence[int], max_results: int,
                             offset: int = 0, name: str | None = None) -> list[LoggedModel]:
        """Live logged models of ``experiment_ids`` (named ``name``, if given), newest
        first."""
        m = t.logged_models.c
        query = (sa.select(t.logged_models)
                 .where(m.experiment_id.in_(list(experiment_ids)), m.lifecycle == ACTIVE)
                 .order_by(m.created_at.desc(), m.id).limit(max_results).offset(offset))
        if name is not None:
            query = query.where(m.name == name)
        with self.reader.connect() as conn:
            return [_logged_model(r._mapping) for r in conn.execute(query)]

    def add_logged_model_file(self, model_id: str, artifact: Artifact) -> None:
        """Record (or replace) one file of a logged model."""
        f = t.logged_model_files

        def action(conn: sa.Connection) -> None:
            conn.execute(f.delete().where(f.c.model_id == model_id, f.c.path == artifact.path))
            conn.execute(f.insert().values(model_id=model_id, path=artifact.path,
                                           digest=artifact.digest, size=artifact.size))

        try:
            self._write(action)
        except IntegrityError as exc:  # the model vanished meanwhile
            raise NotFound(f"no logged model {model_id!r}") from exc

    def logged_model_files(self, model_id: str) -> list[Artifact]:
        f = t.logged_model_files.c
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(f.path, f.digest, f.size)
                                .where(f.model_id == model_id).order_by(f.path)).all()
        return [Artifact(r.path, r.digest, int(r.size)) for r in rows]


def _logged_model(row: Any) -> LoggedModel:
    return LoggedModel(id=row["id"], experiment_id=row["experiment_id"], name=row["name"],
                       source_run_id=row["source_run_id"], status=row["status"],
                       status_message=row["status_message"], model_type=row["model_type"],
                       creator=row["creator"], created_at=row["created_at"],
                       updated_at=row["updated_at"], tags=json.loads(row["tags"]),
                       params=json.loads(row["params"]), lifecycle=row["lifecycle"])
