"""The pipeline step cache on the SQL store (see ``schema.step_cache``)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from keel.clock import now_ms
from keel.entities import ACTIVE, StepRecord
from keel.store import records
from keel.store import schema as t
from keel.store.base import SqlBase


class StepStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for pipeline caching."""

    def cached_step(self, key: str) -> StepRecord | None:
        """The record of a step computed with ``key``, if its run still exists and is
        not deleted (a deleted run's outputs may be purged: never reuse them)."""
        c, r = t.step_cache.c, t.runs.c
        query = (sa.select(t.step_cache).join(t.runs, r.id == c.run_id)
                 .where(c.key == key, r.lifecycle == ACTIVE))
        with self.reader.connect() as conn:
            row = conn.execute(query).first()
        return records.step_record(row._mapping) if row is not None else None

    def last_step(self, pipeline: str, step: str) -> StepRecord | None:
        """The most recent record of a pipeline's step (for `pipeline status`)."""
        c, r = t.step_cache.c, t.runs.c
        query = (sa.select(t.step_cache).join(t.runs, r.id == c.run_id)
                 .where(c.pipeline == pipeline, c.step == step, r.lifecycle == ACTIVE)
                 .order_by(c.created_at.desc()).limit(1))
        with self.reader.connect() as conn:
            row = conn.execute(query).first()
        return records.step_record(row._mapping) if row is not None else None

    def record_step(self, record: StepRecord) -> None:
        """Remember that ``record.run_id`` computed ``record.key`` (last one wins)."""
        values = {"key": record.key, "pipeline": record.pipeline, "step": record.step,
                  "run_id": record.run_id, "outputs": json.dumps(record.outputs),
                  "components": json.dumps(record.components), "created_at": now_ms()}
        stmt = self._insert(t.step_cache).values(**values)
        update = {k: v for k, v in values.items() if k != "key"}
        self._write(lambda conn: conn.execute(
            stmt.on_conflict_do_update(index_elements=["key"], set_=update)))
