"""Monitoring records, alerts and continuous-training actions on the SQL store."""

from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa

from keel.clock import now_ms
from keel.entities import Alert, AutomationAction, MonitorRecord
from keel.errors import NotFound
from keel.store import schema as t
from keel.store.base import SqlBase


class MonitorStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for monitoring and automation."""

    def add_monitor_record(self, subject: str, reference: str, current: str,
                           share_drifted: float, drifted: bool, result: dict[str, Any],
                           window_start: int | None = None,
                           window_end: int | None = None) -> MonitorRecord:
        """Store one comparison; returns it with its id and time."""
        now = now_ms()
        values = dict(subject=subject, time=now, window_start=window_start,
                      window_end=window_end, reference=reference, current=current,
                      share_drifted=float(share_drifted), drifted=bool(drifted),
                      result=json.dumps(_finite(result), allow_nan=False, default=_plain))
        new_id = self._write(lambda conn: conn.execute(
            t.monitor_records.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]
        return self.get_monitor_record(int(new_id))

    def get_monitor_record(self, record_id: int) -> MonitorRecord:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.monitor_records)
                               .where(t.monitor_records.c.id == record_id)).first()
        if row is None:
            raise NotFound(f"no monitoring record {record_id}",
                           hint="list them with `keel monitor history`")
        return _record(row)

    def list_monitor_records(self, subject: str | None = None, since_ms: int | None = None,
                             limit: int = 500) -> list[MonitorRecord]:
        """Records oldest first (the newest ``limit``)."""
        r = t.monitor_records
        query = sa.select(r).order_by(r.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(r.c.subject == subject)
        if since_ms is not None:
            query = query.where(r.c.time >= since_ms)
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [_record(row) for row in reversed(rows)]

    def add_alert(self, subject: str, record_id: int | None, rule: str, value: float | None,
                  message: str, delivery: str) -> Alert:
        values = dict(subject=subject, record_id=record_id, time=now_ms(), rule=rule,
                      value=None if value is None or not math.isfinite(value) else value,
                      message=message, delivery=delivery)
        new_id = self._write(lambda conn: conn.execute(
            t.alerts.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]
        return Alert(int(new_id), **values)  # type: ignore[arg-type]

    def list_alerts(self, subject: str | None = None, limit: int = 500) -> list[Alert]:
        a = t.alerts
        query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(a.c.subject == subject)
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [Alert(row.id, row.subject, row.record_id, row.time, row.rule, row.value,
                      row.message, row.delivery) for row in reversed(rows)]

    def add_automation_action(self, deployment: str, action: str, outcome: str, reason: str,
                              figures: dict[str, Any] | None = None,
                              links: dict[str, Any] | None = None,
                              chain: int | None = None) -> AutomationAction:
        """Audit one continuous-training action. A trigger (``chain`` None)
        starts a chain: its own id becomes the chain of what follows."""
        a = t.automation_actions
        values = dict(deployment=deployment, chain=chain, time=now_ms(), action=action,
                      outcome=outcome, reason=reason,
                      figures=json.dumps(_finite(figures or {}), default=_plain),
                      links=json.dumps(links or {}, default=_plain))

        def insert(conn: sa.Connection) -> int:
            new_id = int(conn.execute(a.insert().values(**values))
                         .inserted_primary_key[0])  # type: ignore[index]
            if chain is None:
                conn.execute(a.update().where(a.c.id == new_id).values(chain=new_id))
            return new_id

        return self.get_automation_action(self._write(insert))

    def get_automation_action(self, action_id: int) -> AutomationAction:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.automation_actions)
                               .where(t.automation_actions.c.id == action_id)).first()
        if row is None:
            raise NotFound(f"no automation action {action_id}")
        return _action(row)

    def list_automation_actions(self, deployment: str | None = None, chain: int | None = None,
                                limit: int = 1000) -> list[AutomationAction]:
        """Actions oldest first (the newest ``limit``)."""
        a = t.automation_actions
        query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
        if deployment is not None:
            query = query.where(a.c.deployment == deployment)
        if chain is not None:
            query = query.where(a.c.chain == chain)
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [_action(row) for row in reversed(rows)]


def _record(row: Any) -> MonitorRecord:
    return MonitorRecord(row.id, row.subject, row.time, row.window_start, row.window_end,
                         row.reference, row.current, row.share_drifted, bool(row.drifted),
                         json.loads(row.result))


def _action(row: Any) -> AutomationAction:
    return AutomationAction(row.id, row.deployment, row.chain, row.time, row.action,
                            row.outcome, row.reason, json.loads(row.figures),
                            json.loads(row.links))


def _finite(value: Any) -> Any:
    """NaN and infinities (not JSON) as null, at any depth."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plain(value: Any) -> Any:
    """numpy scalars and other stragglers as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
