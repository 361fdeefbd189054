"""The model registry on the SQL store: models, versions, tags, aliases and the
append-only audit trail. Every change and its audit event commit together."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keel.clock import now_ms
from keel.entities import ACTIVE, ModelEvent, ModelVersion, RegisteredModel
from keel.errors import Conflict, NotFound
from keel.store import schema as t
from keel.store.base import SqlBase


class ModelStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for the model registry."""


    # -- models and versions ----------------------------------------------

    def create_model_version(self, name: str, package_digest: str, source: str,
                             run_id: str | None, user: str, description: str = "",
                             tags: dict[str, str] | None = None) -> ModelVersion:
        """Register the next version of ``name`` (created on first use)."""
        def action(conn: sa.Connection) -> int:
            now = now_ms()
            model_id = self._model_id(conn, name, create=True)
            last = conn.execute(sa.select(sa.func.max(t.model_versions.c.version))
                                .where(t.model_versions.c.model_id == model_id)).scalar()
            number = int(last or 0) + 1
            conn.execute(t.model_versions.insert().values(
                model_id=model_id, version=number, package_digest=package_digest,
                source=source, run_id=run_id, description=description, created_at=now,
                user=user, lifecycle=ACTIVE))
            if tags:
                conn.execute(t.model_tags.insert(), [
                    {"model_id": model_id, "version": number, "key": k, "value": v}
                    for k, v in tags.items()])
            self._event(conn, model_id, "register", user, version=number, to_version=number,
                        reason=description, evidence={"source": source,
                                                      "package_digest": package_digest})
            return number

        for _attempt in range(5):
            try:
                return self.get_model_version(name, self._write(action))
            except IntegrityError:
                continue  # a concurrent registration took the number; take the next
        raise Conflict(f"could not allocate a version number for model {name!r}",
                       hint="retry the registration")

    def _model_id(self, conn: sa.Connection, name: str, create: bool = False) -> int:
        model_id = conn.execute(sa.select(t.registered_models.c.id)
                                .where(t.registered_models.c.name == name)).scalar()
        if model_id is None:
            if not create:
                raise missing_model(name)
            stmt = self._insert(t.registered_models).values(
                name=name, description="", created_at=now_ms()).on_conflict_do_nothing()
            conn.execute(stmt)
            model_id = conn.execute(sa.select(t.registered_models.c.id)
                                    .where(t.registered_models.c.name == name)).scalar_one()
        return int(model_id)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.reader.connect() as conn:
            model_id = self._model_id(conn, name)
            row = conn.execute(sa.select(t.registered_models)
                               .where(t.registered_models.c.id == model_id)).one()
            tags = dict(conn.execute(sa.select(t.model_tags.c.key, t.model_tags.c.value).where(
                t.model_tags.c.model_id == model_id, t.model_tags.c.version == 0)).all())
            aliases = dict(conn.execute(sa.select(t.model_aliases.c.alias,
                                                  t.model_aliases.c.version)
                                        .where(t.model_aliases.c.model_id == model_id)
                                        .order_by(t.model_aliases.c.alias)).all())
            latest = conn.execute(sa.select(sa.func.max(t.model_versions.c.version)).where(
                t.model_versions.c.model_id == model_id,
                t.model_versions.c.lifecycle == ACTIVE)).scalar()
        return RegisteredModel(name=row.name, description=row.description,
                               created_at=row.created_at, tags=tags, aliases=aliases,
                               latest_version=latest)

    def list_registered_models(self) -> list[RegisteredModel]:
        with self.reader.connect() as conn:
            names = conn.execute(sa.select(t.registered_models.c.name)
                                 .order_by(t.registered_models.c.name)).scalars().all()
        return [self.get_registered_model(n) for n in names]

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """``name/version`` (deleted versions too: callers decide what that means)."""
        found = self._versions(name, t.model_versions.c.version == version)
        if not found:
            known = [v.version for v in self._versions(name)]
            raise NotFound(f"model {name!r} has no version {version}",
                           hint=f"versions: {', '.join(map(str, known)) or 'none'} "
                                f"(see `keel model show {name}`)")
        return found[0]

    def list_model_versions(self, name: str, include_deleted: bool = False
                            ) -> list[ModelVersion]:
        """Every version of a model, oldest first."""
        clauses = [] if include_deleted else [t.model_versions.c.lifecycle == ACTIVE]
        return self._versions(name, *clauses)

    def model_versions_of_run(self, run_id: str) -> list[ModelVersion]:
        """Versions registered from a run's package (for lineage)."""
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(t.registered_models.c.name, t.model_versions.c.version)
                                .join(t.registered_models)
                                .where(t.model_versions.c.run_id == run_id)).all()
        return [self.get_model_version(r.name, r.version) for r in rows]

    def _versions(self, name: str, *clauses: Any) -> list[ModelVersion]:
        v = t.model_versions
        with self.reader.connect() as conn:
            model_id = self._model_id(conn, name)
            rows = conn.execute(sa.select(v).where(v.c.model_id == model_id, *clauses)
                                .order_by(v.c.version)).all()
            tag_rows = conn.execute(sa.select(t.model_tags).where(
                t.model_tags.c.model_id == model_id, t.model_tags.c.version > 0)).all()
            alias_rows = conn.execute(sa.select(t.model_aliases).where(
                t.model_aliases.c.model_id == model_id).order_by(t.model_aliases.c.alias)).all()
        tags: dict[int, dict[str, str]] = {}
        for tag in tag_rows:
            tags.setdefault(tag.version, {})[tag.key] = tag.value
        return [ModelVersion(
            id=r.id, name=name, version=r.version, package_digest=r.package_digest,
            source=r.source, run_id=r.run_id, description=r.description,
            created_at=r.created_at, user=r.user, lifecycle=r.lifecycle,
            tags=tags.get(r.version, {}),
            aliases=tuple(a.alias for a in alias_rows if a.version == r.version))
            for r in rows]

    # -- changes (each with its audit event) --------------------------------

    def set_model_alias(self, name: str, alias: str, version: int, user: str, reason: str,
                        evidence: dict[str, Any] | None = None, action: str = "promote"
                        ) -> int | None:
        """Point ``alias`` at ``version``; return the version it pointed at before."""
        def change(conn: sa.Connection) -> int | None:
            model_id = self._model_id(conn, name)
            a = t.model_aliases
            before = conn.execute(sa.select(a.c.version).where(
                a.c.model_id == model_id, a.c.alias == alias)).scalar()
            if before is None:
                conn.execute(a.insert().values(model_id=model_id, alias=alias, version=version))
            else:
                conn.execute(a.update().where(a.c.model_id == model_id, a.c.alias == alias)
                             .values(version=version))
            self._event(conn, model_id, action, user, version=version, alias=alias,
                        from_version=before, to_version=version, reason=reason,
                        evidence=evidence)
            return None if before is None else int(before)

        return self._write(change)

    def remove_model_alias(self, name: str, alias: str, user: str, reason: str) -> int:
        """Drop an alias; return the version it named."""
        def change(conn: sa.Connection) -> int:
            model_id = self._model_id(conn, name)
            a = t.model_aliases
            before = conn.execute(sa.select(a.c.version).where(
                a.c.model_id == model_id, a.c.alias == alias)).scalar()
            if before is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}",
                               hint=f"see its aliases with `keel model show {name}`")
            conn.execute(a.delete().where(a.c.model_id == model_id, a.c.alias == alias))
            self._event(conn, model_id, "unalias", user, version=before, alias=alias,
                        from_version=before, reason=reason)
            return int(before)

        return self._write(change)

    def record_model_event(self, name: str, action: str, user: str, version: int | None = None,
                           alias: str | None = None, from_version: int | None = None,
                           to_version: int | None = None, reason: str = "",
                           evidence: dict[str, Any] | None = None) -> None:
        """Append an event that changes nothing else (a refused promotion)."""
        def change(conn: sa.Connection) -> None:
            self._event(conn, self._model_id(conn, name), action, user, version=version,
                        alias=alias, from_version=from_version, to_version=to_version,
                        reason=reason, evidence=evidence)

        self._write(change)

    def set_model_version_lifecycle(self, name: str, version: int, lifecycle: str, user: str,
                                    reason: str) -> None:
        """Delete (soft) or restore a version; audited."""
        def change(conn: sa.Connection) -> None:
            model_id = self._model_id(conn, name)
            v = t.model_versions
            deleted_at = now_ms() if lifecycle != ACTIVE else None
            conn.execute(v.update().where(v.c.model_id == model_id, v.c.version == version)
                         .values(lifecycle=lifecycle, deleted_at=deleted_at))
            self._event(conn, model_id, "delete" if lifecycle != ACTIVE else "restore", user,
                        version=version, reason=reason)

        self._write(change)

    def set_model_tag(self, name: str, version: int, key: str, value: str, user: str) -> None:
        """Set a tag on a model (version 0) or one of its versions; audited."""
        def change(conn: sa.Connection) -> None:
            model_id = self._model_id(conn, name)
            stmt = self._insert(t.model_tags).values(model_id=model_id, version=version,
                                                     key=key, value=value)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["model_id", "version", "key"], set_={"value": value}))
            self._event(conn, model_id, "tag", user, version=version or None,
                        reason=f"{key}={value}")

        self._write(change)

    def set_model_description(self, name: str, version: int, text: str, user: str) -> None:
        """Describe a model (version 0) or one of its versions; audited."""
        def change(conn: sa.Connection) -> None:
            model_id = self._model_id(conn, name)
            if version:
                v = t.model_versions
                conn.execute(v.update().where(v.c.model_id == model_id, v.c.version == version)
                             .values(description=text))
            else:
                conn.execute(t.registered_models.update()
                             .where(t.registered_models.c.id == model_id)
                             .values(description=text))
            self._event(conn, model_id, "describe", user, version=version or None, reason=text)

        self._write(change)

    def model_history(self, name: str) -> list[ModelEvent]:
        """Every audited event of a model, oldest first."""
        e = t.model_events
        with self.reader.connect() as conn:
            model_id = self._model_id(conn, name)
            rows = conn.execute(sa.select(e).where(e.c.model_id == model_id)
                                .order_by(e.c.id)).all()
        return [ModelEvent(id=r.id, name=name, action=r.action, version=r.version,
                           alias=r.alias, from_version=r.from_version, to_version=r.to_version,
                           user=r.user, time=r.time, reason=r.reason,
                           evidence=json.loads(r.evidence)) for r in rows]

    def _event(self, conn: sa.Connection, model_id: int, action: str, user: str,
               version: int | None = None, alias: str | None = None,
               from_version: int | None = None, to_version: int | None = None,
               reason: str = "", evidence: dict[str, Any] | None = None) -> None:
        conn.execute(t.model_events.insert().values(
            model_id=model_id, action=action, version=version, alias=alias,
            from_version=from_version, to_version=to_version, user=user, time=now_ms(),
            reason=reason, evidence=json.dumps(evidence or {}, default=str)))


def missing_model(name: str) -> NotFound:
    """What asking for a registered model that does not exist gets (and, on the team
    server, one of another project, word for word)."""
    return NotFound(f"no registered model {name!r}",
                    hint="see them with `keel model list`; register one with "
                         f"`keel model register runs:/<run id>/model --name {name}`")
