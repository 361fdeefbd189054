"""Which project owns a dataset or registered model name (the team server scopes
them by it; see ``server/store_api.py``). A name with no row is the default
project's, which is where the CLI and the Python API create them."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keel.entities import DEFAULT_PROJECT
from keel.store import schema as t
from keel.store.base import SqlBase

KINDS = ("dataset", "model")


class ProjectNameStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for project ownership of names."""

    def name_project(self, kind: str, name: str) -> str:
        """The project owning ``name`` of ``kind`` (the default one without a claim)."""
        p = t.project_names.c
        with self.reader.connect() as conn:
            found = conn.execute(sa.select(p.project).where(p.kind == kind, p.name == name)
                                 ).scalar()
        return str(found) if found is not None else DEFAULT_PROJECT

    def claim_name(self, kind: str, name: str, project: str) -> str:
        """Record ``project`` as the owner of ``name`` unless someone owns it already;
        returns the owner (``project`` if this claim won). Claims are first come,
        first served, so two projects creating one name at once get one owner."""
        with contextlib.suppress(IntegrityError):  # claimed already: the first one owns it
            self._write(lambda conn: conn.execute(t.project_names.insert().values(
                kind=kind, name=name, project=project)))
        return self.name_project(kind, name)

    def claimed_names(self, kind: str) -> dict[str, str]:
        """Every claimed name of ``kind`` and its project (unclaimed ones are the
        default project's)."""
        p = t.project_names.c
        with self.reader.connect() as conn:
            return {r.name: r.project for r in conn.execute(
                sa.select(p.name, p.project).where(p.kind == kind))}

    def version_dataset(self, version_id: int) -> str | None:
        """The name of the dataset a version id belongs to; None for an unknown id."""
        v, d = t.dataset_versions.c, t.datasets.c
        with self.reader.connect() as conn:
            found = conn.execute(sa.select(d.name).join_from(
                t.dataset_versions, t.datasets, v.dataset_id == d.id)
                .where(v.id == version_id)).scalar()
        return str(found) if found is not None else None
