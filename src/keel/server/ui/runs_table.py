"""The runs table of an experiment page: what the query string asks for (filter,
sort, columns, page) and the one page of runs that answers it.

Only the page's rows are fetched (``search_runs`` with ``max_results`` and
``offset``; one row more tells whether a next page exists), so the page
costs the same for 100 runs as for 100,000: nothing counts them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.server.ui.page import href

if TYPE_CHECKING:
    from starlette.datastructures import QueryParams

    from keel.entities import Experiment, Run
    from keel.store.protocol import Store

PAGE, MAX_PAGE = 50, 500
# Shown before anyone picks columns: enough to compare runs at a glance, few
# enough that the table still fits a laptop screen.
DEFAULT_COLUMNS = 6
# Fixed columns and the attribute each sorts by.
ATTRIBUTE_COLUMNS = (("name", "run_name"), ("status", "status"), ("user", "user"),
                     ("started", "start_time"))


@dataclass(frozen=True)
class Column:
    """A params or metrics column: ``metrics.auc``."""

    kind: str  # metrics | params
    key: str

    @property
    def name(self) -> str:
        """How the column chooser and the query string name it."""
        return f"{self.kind}.{self.key}"

    @property
    def order_key(self) -> str:
        # Backticks: keys may hold spaces, '/', ':' and '-', which the bare form cannot.
        return f"{self.kind}.`{self.key}`"

    def value(self, run: Run) -> Any:
        """This column's value in ``run``; None where the run has none."""
        return (run.metrics if self.kind == "metrics" else run.params).get(self.key)


@dataclass(frozen=True)
class RunsQuery:
    """What the experiment page's query string asks for."""

    filter: str = ""
    order: str = ""
    columns: tuple[Column, ...] | None = None  # None: nobody chose, show the defaults
    limit: int = PAGE
    offset: int = 0

    @classmethod
    def parse(cls, params: QueryParams) -> RunsQuery:
        """Read ``filter``, ``order``, ``col`` (repeated; ``cols=1`` marks a choice,
        so choosing none is possible), ``limit`` and ``offset``."""
        chosen = None
        if params.get("cols") or params.getlist("col"):
            parsed = (_column(text) for text in params.getlist("col"))
            chosen = tuple(column for column in parsed if column is not None)
        return cls(params.get("filter", "").strip(), params.get("order", "").strip(), chosen,
                   _integer(params.get("limit"), PAGE, 1, MAX_PAGE, "limit"),
                   _integer(params.get("offset"), 0, 0, 10**12, "offset"))

    def link(self, path: str, **changes: Any) -> str:
        """This query's URL at ``path`` with ``changes`` (``offset=50``, ``order=...``)."""
        values: dict[str, Any] = {"filter": self.filter, "order": self.order,
                                  "limit": self.limit if self.limit != PAGE else None,
                                  "offset": self.offset or None}
        if self.columns is not None:
            values |= {"cols": "1", "col": [c.name for c in self.columns]}
        values |= changes
        return href(path, **values)

    def sort_link(self, path: str, key: str) -> str:
        """Sort by ``key``: descending first (best metric on top), a second click
        ascending; back to the first page."""
        direction = "ASC" if self.order == f"{key} DESC" else "DESC"
        return self.link(path, order=f"{key} {direction}", offset=None)

    def direction(self, key: str) -> str:
        """"asc"/"desc" if the table is sorted by ``key``, else ""."""
        if self.order == f"{key} DESC":
            return "desc"
        return "asc" if self.order == f"{key} ASC" else ""


@dataclass
class RunsPage:
    """One page of an experiment's runs, with the columns to show."""

    query: RunsQuery
    runs: list[Run]
    has_next: bool
    columns: list[Column]
    available: list[Column]
    error: str = ""
    hint: str = ""
    attributes: tuple[tuple[str, str], ...] = field(default=ATTRIBUTE_COLUMNS)

    @classmethod
    def fetch(cls, store: Store, experiment: Experiment, query: RunsQuery) -> RunsPage:
        """The page ``query`` asks for; a bad filter or sort becomes ``error``."""
        orders = [query.order] if query.order else []
        try:
            found = store.search_runs([experiment.id], query.filter, orders,
                                      max_results=query.limit + 1, offset=query.offset)
        except InvalidInput as exc:
            return cls(query, [], False, list(query.columns or ()), list(query.columns or ()),
                       exc.message, exc.hint or "")
        runs, has_next = found[:query.limit], len(found) > query.limit
        available = _available(runs, query.columns or ())
        columns = list(query.columns) if query.columns is not None else _defaults(available)
        return cls(query, runs, has_next, columns, available)

    @property
    def first(self) -> int:
        return self.query.offset + 1 if self.runs else 0

    @property
    def last(self) -> int:
        return self.query.offset + len(self.runs)


def _available(runs: list[Run], chosen: tuple[Column, ...]) -> list[Column]:
    """Every params/metrics key on this page, plus the chosen ones (which a
    filtered page may lack), metrics first."""
    metrics = {key for run in runs for key in run.metrics}
    params = {key for run in runs for key in run.params}
    found = {Column("metrics", k) for k in metrics} | {Column("params", k) for k in params}
    return sorted(found | set(chosen), key=lambda c: (c.kind != "metrics", c.key))


def _defaults(available: list[Column]) -> list[Column]:
    metrics = [c for c in available if c.kind == "metrics"][:DEFAULT_COLUMNS]
    params = [c for c in available if c.kind == "params"][:DEFAULT_COLUMNS]
    return metrics + params


def _column(text: str) -> Column | None:
    kind, _, key = text.partition(".")
    return Column(kind, key) if kind in ("metrics", "params") and key else None


def _integer(text: str | None, default: int, low: int, high: int, what: str) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low} and {high}, got {value}")
    return value
