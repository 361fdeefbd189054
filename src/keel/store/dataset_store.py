"""Dataset metadata on the SQL store: datasets, versions, and run links."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keel.clock import now_ms
from keel.entities import ACTIVE, DELETED, DatasetVersion
from keel.errors import Conflict, NotFound
from keel.store import records
from keel.store import schema as t
from keel.store.base import SqlBase

ROLES = ("input", "output")


class DatasetStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for datasets (kept apart to stay small)."""

    def add_dataset_version(self, name: str, fields: dict[str, Any],
                            version: int | None = None) -> DatasetVersion:
        """Store a new version of ``name`` (created on first use) and return it.

        The version number is the next free one unless ``version`` is given
        (pull from a remote keeps the numbers it was pushed with).
        """
        def action(conn: sa.Connection) -> int:
            ds_id = conn.execute(sa.select(t.datasets.c.id)
                                 .where(t.datasets.c.name == name)).scalar()
            if ds_id is None:
                ds_id = conn.execute(t.datasets.insert().values(
                    name=name, created_at=now_ms())).inserted_primary_key[0]  # type: ignore[index]
            number = version
            if number is None:
                last = conn.execute(sa.select(sa.func.max(t.dataset_versions.c.version))
                                    .where(t.dataset_versions.c.dataset_id == ds_id)).scalar()
                number = int(last or 0) + 1
            row = conn.execute(t.dataset_versions.insert().values(
                dataset_id=ds_id, version=number, **fields))
            return int(row.inserted_primary_key[0])  # type: ignore[index]

        for _attempt in range(5):
            try:
                version_id = self._write(action)
                break
            except IntegrityError as exc:
                if version is not None:
                    raise Conflict(f"{name}@{version} already exists with other contents",
                                   hint="the local and remote histories of this dataset "
                                        "differ; add the data again under a new name") from exc
        else:  # pragma: no cover - five concurrent adds of one dataset in a row
            raise Conflict(f"could not allocate a version number for {name!r}",
                           hint="retry the add")
        return self._version_where(t.dataset_versions.c.id == version_id)

    def _version_where(self, *clauses: Any) -> DatasetVersion:
        found = self._versions_where(*clauses)
        if not found:
            raise NotFound("no such dataset version")
        return found[-1]

    def _versions_where(self, *clauses: Any) -> list[DatasetVersion]:
        v = t.dataset_versions
        query = (sa.select(v, t.datasets.c.name.label("dataset_name")).join(t.datasets)
                 .where(*clauses).order_by(v.c.version))
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [records.dataset_version(r._mapping) for r in rows]

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """``name@version``, or the latest (not deleted) version when ``version`` is None."""
        return records.pick_dataset_version(self._versions_where(t.datasets.c.name == name),
                                            name, version)

    def list_dataset_versions(self, name: str, include_deleted: bool = False
                              ) -> list[DatasetVersion]:
        """Every version of a dataset, oldest first (deleted ones only if asked)."""
        return records.dataset_versions(self._versions_where(t.datasets.c.name == name),
                                        name, include_deleted)

    def list_datasets(self) -> list[DatasetVersion]:
        """The latest (not deleted) version of every dataset."""
        latest: dict[str, DatasetVersion] = {}
        for item in self._versions_where(t.dataset_versions.c.lifecycle == ACTIVE):
            latest[item.dataset] = item
        return sorted(latest.values(), key=lambda v: v.dataset)

    def set_dataset_version_lifecycle(self, name: str, version: int, lifecycle: str
                                      ) -> DatasetVersion:
        """Delete (soft) or restore a version; a deletion is timed for retention."""
        found = next((v for v in self.list_dataset_versions(name, include_deleted=True)
                      if v.version == version), None)
        if found is None:
            raise NotFound(f"dataset {name!r} has no version {version}",
                           hint=f"see them with `keel data log {name}`")
        deleted_at = now_ms() if lifecycle != ACTIVE else None
        self._write(lambda conn: conn.execute(
            t.dataset_versions.update().where(t.dataset_versions.c.id == found.id)
            .values(lifecycle=lifecycle, deleted_at=deleted_at)))
        return self._version_where(t.dataset_versions.c.id == found.id)

    def deleted_dataset_versions(self, before_ms: int) -> list[DatasetVersion]:
        """Dataset versions deleted (soft) at or before ``before_ms``."""
        d = t.dataset_versions.c
        return self._versions_where(d.lifecycle == DELETED, d.deleted_at <= before_ms)

    def purge_dataset_versions(self, version_ids: list[int]) -> int:
        """Delete dataset versions for good, with the links runs had to them; returns
        how many. Their blobs become garbage unless another version uses them."""
        def action(conn: sa.Connection) -> None:
            conn.execute(t.run_datasets.delete().where(
                t.run_datasets.c.version_id.in_(version_ids)))
            conn.execute(t.dataset_versions.delete().where(
                t.dataset_versions.c.id.in_(version_ids),
                t.dataset_versions.c.lifecycle == DELETED))

        if version_ids:
            self._write(action)
        return len(version_ids)

    def link_run_dataset(self, run_id: str, version_id: int, role: str) -> None:
        """Record that a run read (input) or wrote (output) a dataset version."""
        if role not in ROLES:
            raise ValueError(role)
        stmt = self._insert(t.run_datasets).on_conflict_do_nothing()
        self._write(lambda conn: conn.execute(
            stmt, {"run_id": run_id, "version_id": version_id, "role": role}))

    def runs_of_dataset_version(self, version_id: int) -> list[tuple[str, str]]:
        """``(run_id, role)`` of every run that read or wrote a version."""
        query = (sa.select(t.run_datasets.c.run_id, t.run_datasets.c.role)
                 .where(t.run_datasets.c.version_id == version_id)
                 .order_by(t.run_datasets.c.run_id))
        with self.reader.connect() as conn:
            return [(r.run_id, r.role) for r in conn.execute(query)]

    def datasets_of_run(self, run_id: str) -> list[tuple[DatasetVersion, str]]:
        """``(version, role)`` for every dataset version a run read or wrote."""
        query = sa.select(t.run_datasets.c.version_id, t.run_datasets.c.role).where(
            t.run_datasets.c.run_id == run_id)
        with self.reader.connect() as conn:
            links = conn.execute(query).all()
        return [(self._version_where(t.dataset_versions.c.id == link.version_id), link.role)
                for link in links]
