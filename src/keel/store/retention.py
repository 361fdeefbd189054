"""Retention on the SQL store: what was deleted long enough ago to purge, purging
it for good, and every blob digest the metadata still refers to.

``keel gc`` uses these: purge first (in the store, audited for models), then
remove the blobs nothing refers to any more.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from keel.clock import now_ms
from keel.entities import DELETED
from keel.store import schema as t
from keel.store.base import SqlBase

# Tables holding one run's rows, deleted with the run (children first).
_RUN_TABLES = ("metrics", "latest_metrics", "params", "tags", "artifacts", "run_datasets",
               "spool_offsets", "step_cache")


class RetentionMixin(SqlBase):
    """Methods :class:`SqlStore` gains for garbage collection."""

    def deleted_runs(self, before_ms: int) -> list[str]:
        """Ids of runs deleted (soft) at or before ``before_ms``."""
        r = t.runs.c
        query = sa.select(r.id).where(r.lifecycle == DELETED, r.deleted_at <= before_ms)
        with self.reader.connect() as conn:
            return list(conn.execute(query.order_by(r.id)).scalars())

    def registered_runs(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` a model version was registered from (never purged:
        the version's lineage points at them)."""
        found: set[str] = set()
        v = t.model_versions.c
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start:start + 500]
            with self.reader.connect() as conn:
                found.update(conn.execute(sa.select(v.run_id).where(v.run_id.in_(chunk)))
                             .scalars())
        return found

    def purge_runs(self, run_ids: list[str]) -> int:
        """Delete runs and everything logged to them, for good; returns how many.

        Children of a purged run stay, as top-level runs. Runs a model version
        was registered from are skipped (see :meth:`registered_runs`)."""
        keep = self.registered_runs(run_ids)
        doomed = [r for r in run_ids if r not in keep]
        for start in range(0, len(doomed), 500):
            chunk = doomed[start:start + 500]

            def action(conn: sa.Connection, chunk: list[str] = chunk) -> None:
                conn.execute(t.runs.update().where(t.runs.c.parent_id.in_(chunk))
                             .values(parent_id=None))
                for name in _RUN_TABLES:
                    table = t.metadata.tables[name]
                    conn.execute(table.delete().where(table.c.run_id.in_(chunk)))
                conn.execute(t.runs.delete().where(t.runs.c.id.in_(chunk)))

            self._write(action)
        return len(doomed)

    def deleted_model_versions(self, before_ms: int) -> list[tuple[str, int]]:
        """``(name, version)`` of model versions deleted at or before ``before_ms``."""
        v, m = t.model_versions.c, t.registered_models.c
        query = (sa.select(m.name, v.version).join_from(t.model_versions, t.registered_models)
                 .where(v.lifecycle == DELETED, v.deleted_at <= before_ms)
                 .order_by(m.name, v.version))
        with self.reader.connect() as conn:
            return [(name, int(version)) for name, version in conn.execute(query)]

    def purge_model_version(self, name: str, version: int, user: str, reason: str) -> None:
        """Delete a (soft-deleted) model version for good; the audit history keeps a
        ``purge`` event. Its package's blobs become garbage unless referenced elsewhere."""
        def action(conn: sa.Connection) -> None:
            model_id = conn.execute(sa.select(t.registered_models.c.id)
                                    .where(t.registered_models.c.name == name)).scalar_one()
            conn.execute(t.model_tags.delete().where(t.model_tags.c.model_id == model_id,
                                                     t.model_tags.c.version == version))
            # An alias left on a deleted version (deleted with --force) goes with it.
            conn.execute(t.model_aliases.delete().where(t.model_aliases.c.model_id == model_id,
                                                        t.model_aliases.c.version == version))
            conn.execute(t.model_versions.delete().where(
                t.model_versions.c.model_id == model_id, t.model_versions.c.version == version,
                t.model_versions.c.lifecycle == DELETED))
            conn.execute(t.model_events.insert().values(
                model_id=model_id, action="purge", version=version, user=user,
                time=now_ms(), reason=reason, evidence="{}"))

        self._write(action)

    def referenced_digests(self, without_runs: Collection[str] = (),
                           without_versions: Collection[tuple[str, int]] = (),
                           without_datasets: Collection[int] = ()
                           ) -> dict[str, set[str]]:
        """Every blob digest the metadata names directly, by kind: ``artifacts``
        (of every stored run, deleted or not), ``dataset_manifests``,
        ``dataset_documents`` (profiles and check reports), ``models``
        (package manifests), ``inference_log`` (its Parquet segments) and
        ``logged_models`` (files of MLflow clients' logged models).
        Files listed inside manifests are found by the caller, which reads them.

        ``without_runs`` / ``without_versions`` / ``without_datasets`` (version
        ids) are left out, as if already purged: what ``keel gc --dry-run``
        needs to say what a purge would free.
        """
        d, a, v = t.dataset_versions.c, t.artifacts.c, t.model_versions.c
        skip_runs = set(without_runs)
        skip_versions = set(without_versions)
        skip_datasets = set(without_datasets)
        with self.reader.connect() as conn:
            artifacts = {digest for run_id, digest in
                         conn.execute(sa.select(a.run_id, a.digest)) if run_id not in skip_runs}
            manifests: set[str] = set()
            documents: set[str] = set()
            for row in conn.execute(sa.select(d.id, d.manifest_digest, d.profiles_digest,
                                              d.checks_digest)):
                if row.id in skip_datasets:
                    continue
                manifests.add(row.manifest_digest)
                documents.update(x for x in (row.profiles_digest, row.checks_digest) if x)
            segments = set(conn.execute(sa.select(t.inference_segments.c.digest)).scalars())
            models = {digest for name, version, digest in conn.execute(
                sa.select(t.registered_models.c.name, v.version, v.package_digest)
                .join_from(t.model_versions, t.registered_models))
                if (name, version) not in skip_versions}
            # Files MLflow clients uploaded for their logged models (deleted ones
            # too, as a deleted run's artifacts: soft deletion keeps the bytes).
            logged = set(conn.execute(sa.select(t.logged_model_files.c.digest)).scalars())
            # Cached explanations (keel.monitoring.explain) hang off version tags.
            explained = set(conn.execute(sa.select(t.model_tags.c.value).where(
                t.model_tags.c.key.like("keel.importance/%"))).scalars())
        return {"artifacts": artifacts, "dataset_manifests": manifests,
                "dataset_documents": documents, "models": models,
                "inference_log": segments, "model_documents": explained,
                "logged_models": logged}
