"""Turn a parsed run filter and order into SQLAlchemy expressions over ``runs``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from keel.store import schema as t
from keel.store.filter import And, Comparison, Node, Or, OrderBy

_ATTRIBUTE_COLUMNS: dict[str, Any] = {
    "status": t.runs.c.status, "run_name": t.runs.c.name, "name": t.runs.c.name,
    "run_id": t.runs.c.id, "id": t.runs.c.id, "user": t.runs.c.user,
    "experiment": t.experiments.c.name, "parent_run_id": t.runs.c.parent_id,
    "start_time": t.runs.c.start_time, "end_time": t.runs.c.end_time,
}
_KEYED_TABLES = {"metric": t.latest_metrics, "param": t.params, "tag": t.tags}


def compile_filter(node: Node) -> sa.ColumnElement[bool]:
    """A WHERE clause for ``node`` over ``runs`` joined to ``experiments``."""
    if isinstance(node, And):
        return sa.and_(*(compile_filter(n) for n in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_filter(n) for n in node.items))
    return _compile_comparison(node)


def _compile_comparison(c: Comparison) -> sa.ColumnElement[bool]:
    if c.kind == "attribute":
        return _apply(_ATTRIBUTE_COLUMNS[c.key], c.op, c.value)
    table = _KEYED_TABLES[c.kind]
    # A run matches only if it has the key and the value compares true; NaN
    # metrics are NULL and so match nothing (documented in docs/tracking.md).
    # `id IN (subquery)` rather than a correlated EXISTS: the subquery walks the
    # (key, value) index once instead of probing it per run, 5-20x faster on
    # 100,000 runs with a selective filter.
    matching = sa.select(table.c.run_id).where(table.c.key == c.key,
                                               _apply(table.c.value, c.op, c.value))
    return t.runs.c.id.in_(matching)


def _apply(column: Any, op: str, value: Any) -> sa.ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "IN":
        return column.in_(value)
    if op == "NOT IN":
        return column.not_in(value)
    # A backslash escapes % and _ on both SQLite and PostgreSQL.
    if op == "LIKE":
        return column.like(value, escape="\\")
    if op == "ILIKE":
        return column.ilike(value, escape="\\")
    if op == "NOT LIKE":
        return column.not_like(value, escape="\\")
    if op == "NOT ILIKE":
        return column.not_ilike(value, escape="\\")
    raise AssertionError(f"parser let through unknown operator {op}")


def apply_order(query: sa.Select[Any], orders: list[OrderBy]) -> sa.Select[Any]:
    """Add ORDER BY clauses; missing values sort last whatever the direction."""
    for n, order in enumerate(orders):
        if order.kind == "attribute":
            column = _ATTRIBUTE_COLUMNS[order.key]
        else:
            table = _KEYED_TABLES[order.kind].alias(f"order_{n}")
            query = query.outerjoin(table, sa.and_(table.c.run_id == t.runs.c.id,
                                                   table.c.key == order.key))
            column = table.c.value
        direction = column.asc() if order.ascending else column.desc()
        query = query.order_by(direction.nulls_last())
    # A stable tiebreak so that pages never repeat or skip a run.
    return query.order_by(t.runs.c.start_time.desc(), t.runs.c.id)
