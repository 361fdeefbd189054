"""Deployments on the SQL store: their specs (with a revision bumped by every
change, committed with its audit event), live figures and the inference log's
segment index and feedback."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from keel.clock import now_ms
from keel.entities import Deployment, DeploymentEvent, VersionStats
from keel.errors import AlreadyExists, Conflict, NotFound
from keel.store import schema as t
from keel.store.base import SqlBase

COMPACTED = "compacted"  # the worker name of merged figures (compact_deployment_stats)
HOUR_MS = 3_600_000


class DeploymentStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for serving."""

    def create_deployment(self, name: str, spec: dict[str, Any], user: str,
                          reason: str = "") -> Deployment:
        """A new deployment at revision 1; :class:`AlreadyExists` if the name is taken."""
        now = now_ms()

        def action(conn: sa.Connection) -> None:
            conn.execute(t.deployments.insert().values(
                name=name, spec=json.dumps(spec), revision=1, created_at=now, updated_at=now))
            self._deployment_event(conn, name, "create", 1, spec, user, reason, {})

        try:
            self._write(action)
        except IntegrityError as exc:
            raise AlreadyExists(f"deployment {name!r} already exists",
                                hint=f"change it with `keel deploy canary {name} ...`, or pick "
                                     "another name") from exc
        return self.get_deployment(name)

    def get_deployment(self, name: str) -> Deployment:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.deployments)
                               .where(t.deployments.c.name == name)).first()
        if row is None:
            raise missing_deployment(name)
        return Deployment(row.name, json.loads(row.spec), row.revision, row.created_at,
                          row.updated_at)

    def deployment_revision(self, name: str) -> int:
        """The current revision only: what a server polls for (one tiny query)."""
        with self.reader.connect() as conn:
            value = conn.execute(sa.select(t.deployments.c.revision)
                                 .where(t.deployments.c.name == name)).scalar()
        if value is None:
            raise missing_deployment(name)
        return int(value)

    def list_deployments(self) -> list[Deployment]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(t.deployments).order_by(t.deployments.c.name)).all()
        return [Deployment(r.name, json.loads(r.spec), r.revision, r.created_at, r.updated_at)
                for r in rows]

    def update_deployment(self, name: str, spec: dict[str, Any], expected_revision: int,
                          action: str, user: str, reason: str = "",
                          figures: dict[str, Any] | None = None) -> Deployment:
        """Replace the spec if the revision is still ``expected_revision`` (two
        servers deciding one rollback at once: the second finds it done); the
        audit event commits with it. :class:`Conflict` if the revision moved."""
        def change(conn: sa.Connection) -> None:
            d = t.deployments
            done = conn.execute(d.update().where(d.c.name == name,
                                                 d.c.revision == expected_revision)
                                .values(spec=json.dumps(spec), revision=expected_revision + 1,
                                        updated_at=now_ms()))
            if done.rowcount != 1:
                raise Conflict(f"deployment {name!r} changed meanwhile (revision is no longer "
                               f"{expected_revision})", hint="look again and retry")
            self._deployment_event(conn, name, action, expected_revision + 1, spec, user,
                                   reason, figures or {})

        self._write(change)
        return self.get_deployment(name)

    def _deployment_event(self, conn: sa.Connection, name: str, action: str, revision: int,
                          spec: dict[str, Any], user: str, reason: str,
                          figures: dict[str, Any]) -> None:
        conn.execute(t.deployment_events.insert().values(
            deployment=name, action=action, revision=revision, spec=json.dumps(spec),
            user=user, time=now_ms(), reason=reason, figures=json.dumps(figures, default=str)))

    def deployment_history(self, name: str) -> list[DeploymentEvent]:
        e = t.deployment_events.c
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(t.deployment_events).where(e.deployment == name)
                                .order_by(e.id)).all()
        return [DeploymentEvent(r.id, r.deployment, r.action, r.revision, json.loads(r.spec),
                                r.user, r.time, r.reason, json.loads(r.figures)) for r in rows]

    # -- live figures --------------------------------------------------------

    def add_deployment_stats(self, deployment: str, worker: str,
                             rows: Iterable[VersionStats]) -> None:
        """One flush window of one worker's figures."""
        now = now_ms()
        values = [{"deployment": deployment, "version": r.version, "role": r.role,
                   "worker": worker, "time": now, "requests": r.requests, "errors": r.errors,
                   "latency": json.dumps(r.latency), "predictions": json.dumps(r.predictions)}
                  for r in rows if r.requests]
        if values:
            self._write(lambda conn: conn.execute(t.deployment_stats.insert(), values))

    def deployment_stats(self, deployment: str, since_ms: int) -> list[VersionStats]:
        """Figures since ``since_ms``, summed over workers and windows, per version+role."""
        s = t.deployment_stats.c
        query = sa.select(s.version, s.role, s.requests, s.errors, s.latency, s.predictions) \
            .where(s.deployment == deployment, s.time >= since_ms)
        summed: dict[tuple[str, str], VersionStats] = {}
        with self.reader.connect() as conn:
            for row in conn.execute(query):
                _add(summed, (row.version, row.role), row)
        return sorted(summed.values(), key=lambda v: (v.role != "stable", v.version))

    def compact_deployment_stats(self, deployment: str, before_ms: int) -> int:
        """Merge a deployment's figures older than ``before_ms`` into one row per
        version, role and hour; returns how many rows fewer there are.

        Workers flush a row per version every few seconds (~1,800 an hour each),
        and every guard check and status sums them since the last change. A
        merged row never spans a change of the deployment (an event) or an hour,
        and takes its oldest row's time, so a sum since a change or since an hour
        stays exact (a guard's canary start precedes its event by milliseconds:
        still exact). Rows already
        merged are left alone, so workers compacting at once cannot double count
        (on PostgreSQL the rows taken are locked until the merge commits).
        """
        s, e = t.deployment_stats.c, t.deployment_events.c

        def action(conn: sa.Connection) -> int:
            changes = [row.time for row in conn.execute(
                sa.select(e.time).where(e.deployment == deployment).order_by(e.time))]
            query = sa.select(t.deployment_stats).where(
                s.deployment == deployment, s.time < before_ms, s.worker != COMPACTED)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            rows = conn.execute(query).all()
            if not rows:
                return 0
            groups: dict[tuple[str, str, int, int], VersionStats] = {}
            oldest: dict[tuple[str, str, int, int], int] = {}
            for row in rows:
                key = (row.version, row.role, row.time // HOUR_MS,
                       bisect.bisect_right(changes, row.time))
                _add(groups, key, row)
                oldest[key] = min(oldest.get(key, row.time), row.time)
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 500):
                conn.execute(t.deployment_stats.delete().where(s.id.in_(ids[start:start + 500])))
            conn.execute(t.deployment_stats.insert(), [
                {"deployment": deployment, "version": v.version, "role": v.role,
                 "worker": COMPACTED, "time": oldest[key], "requests": v.requests,
                 "errors": v.errors, "latency": json.dumps(v.latency),
                 "predictions": json.dumps(v.predictions)} for key, v in groups.items()])
            return len(rows) - len(groups)

        return int(self._write(action))

    # -- inference log -------------------------------------------------------

    def add_inference_segment(self, deployment: str, digest: str, rows: int, start_time: int,
                              end_time: int, worker: str) -> None:
        self._write(lambda conn: conn.execute(t.inference_segments.insert().values(
            deployment=deployment, digest=digest, rows=rows, start_time=start_time,
            end_time=end_time, worker=worker)))

    def inference_segments(self, deployment: str | None, start_ms: int | None,
                           end_ms: int | None) -> list[tuple[str, str, int]]:
        """``(deployment, digest, rows)`` of segments overlapping ``[start, end]``."""
        s = t.inference_segments.c
        query = sa.select(s.deployment, s.digest, s.rows).order_by(s.start_time, s.id)
        if deployment is not None:
            query = query.where(s.deployment == deployment)
        if start_ms is not None:
            query = query.where(s.end_time >= start_ms)
        if end_ms is not None:
            query = query.where(s.start_time <= end_ms)
        with self.reader.connect() as conn:
            return [(r.deployment, r.digest, int(r.rows)) for r in conn.execute(query)]

    def add_feedback(self, items: list[tuple[str, str | None, Any]]) -> int:
        """``(request_id, deployment, label)`` triples; a later label for the same
        request replaces the earlier one. Returns how many were stored."""
        if not items:
            return 0
        now = now_ms()
        stmt = self._insert(t.feedback)
        stmt = stmt.on_conflict_do_update(index_elements=["request_id"],
                                          set_={"label": stmt.excluded.label,
                                                "time": stmt.excluded.time,
                                                "deployment": stmt.excluded.deployment})
        rows = [{"request_id": r, "deployment": d, "label": json.dumps(label), "time": now}
                for r, d, label in items]
        self._write(lambda conn: conn.execute(stmt, rows))
        return len(rows)

    def feedback_for(self, request_ids: list[str]) -> dict[str, Any]:
        """``request_id -> label`` for those that have feedback."""
        found: dict[str, Any] = {}
        f = t.feedback.c
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start:start + 500]
            with self.reader.connect() as conn:
                for row in conn.execute(sa.select(f.request_id, f.label)
                                        .where(f.request_id.in_(chunk))):
                    found[row.request_id] = json.loads(row.label)
        return found


def _add(summed: dict[Any, VersionStats], key: Any, row: Any) -> None:
    """Add one stored row of figures to ``summed[key]``."""
    latency = json.loads(row.latency)
    predictions = json.loads(row.predictions)
    old = summed.get(key)
    if old is None:
        summed[key] = VersionStats(row.version, row.role, row.requests, row.errors, latency,
                                   predictions)
        return
    merged = [a + b for a, b in zip(old.latency, latency, strict=False)]
    counts = dict(old.predictions)
    for value, count in predictions.items():
        counts[value] = counts.get(value, 0) + count
    summed[key] = VersionStats(row.version, row.role, old.requests + row.requests,
                               old.errors + row.errors, merged, counts)


def missing_deployment(name: str) -> NotFound:
    """What asking for a deployment that does not exist gets (and, on the team
    server, one of another project, word for word)."""
    return NotFound(f"no deployment {name!r}",
                    hint=f"create it with `keel deploy create {name} --model NAME@ALIAS`")
