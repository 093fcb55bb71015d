"""What the runs table shows, as its URL says it (so a view can be shared and bookmarked):
experiments, filter, sort term and metric statistic, chosen columns and the page; and the
links that change one of them (sort on a column, turn a page).

>>> view = RunsView(experiments=("credit",), order="metrics.loss ASC")
>>> view.url(offset=50)
'/runs?experiment=credit&order=metrics.loss+ASC&offset=50'
>>> view.sort_url(Column("metrics", "loss"))
'/runs?experiment=credit&order=metrics.loss+DESC'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlencode

from shipyard.errors import InvalidInputError
from shipyard.tracking.search import Entity, OrderTerm, parse_order_by
from shipyard.tracking.table import Column

__all__ = ["ATTRIBUTE_COLUMNS", "PAGE_SIZES", "RunsView", "column_id"]

#: Page sizes offered (any from 1 to the service's maximum is accepted in the URL).
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_LIMIT = 50
#: The run attributes always shown, with the filter grammar's name of each (None: not sortable).
ATTRIBUTE_COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("run", None),
    ("name", "run_name"),
    ("experiment", "experiment"),
    ("status", "status"),
    ("started", "start_time"),
    ("by", "created_by"),
)
_ENTITY: dict[str, Entity] = {"params": "param", "metrics": "metric", "tags": "tag"}
Stat = Literal["last", "min", "max"]


def column_id(column: Column) -> str:
    """The column as the filter grammar writes it (``metrics.`my loss``` when it must)."""
    return OrderTerm(_ENTITY[column.kind], column.key).identifier


@dataclass(frozen=True)
class RunsView:
    """The runs table's state, every field a query parameter of ``/runs``: ``experiment``
    (repeatable), ``filter``, ``order`` (one order-by term; empty: newest first), ``stat``
    (the metric statistic ``order`` sorts on), ``col`` (repeatable; none: every param and
    metric of the page's runs), ``offset`` and ``limit``."""

    experiments: tuple[str, ...] = ()
    filter: str = ""
    order: str = ""
    stat: Stat = "last"
    columns: tuple[str, ...] = ()
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query parameters of this view with ``changes``; defaults are left out."""
        view = replace(self, **changes)
        out = [("experiment", e) for e in view.experiments]
        if view.filter:
            out.append(("filter", view.filter))
        if view.order:
            out.append(("order", view.order))
        if view.stat != "last":
            out.append(("stat", view.stat))
        out += [("col", c) for c in view.columns]
        if view.offset:
            out.append(("offset", str(view.offset)))
        if view.limit != DEFAULT_LIMIT:
            out.append(("limit", str(view.limit)))
        return out

    def url(self, path: str = "/runs", **changes: Any) -> str:
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path

    def csv_url(self) -> str:
        """The CSV export of the whole filtered result (every page), in this order."""
        return self.url("/runs/export.csv", offset=0, limit=DEFAULT_LIMIT)

    def columns_url(self, shown: Sequence[Column]) -> str:
        """The column chooser's choices for these experiments, with ``shown`` ticked."""
        view = RunsView(experiments=self.experiments, columns=tuple(column_id(c) for c in shown))
        return view.url("/runs/columns")

    @cached_property
    def _term(self) -> OrderTerm | None:
        # parsed once: a page asks for it in every header and metric cell
        try:
            terms = parse_order_by(self.order)
        except InvalidInputError:
            return None
        return terms[0] if len(terms) == 1 else None

    def sorted_on(self) -> OrderTerm | None:
        """The order-by term, or None when sorted newest first (or the term is invalid:
        the service says why)."""
        return self._term

    def direction(self, entity: Entity, key: str, stat: Stat = "last") -> str:
        """``asc`` or ``desc`` when the table is sorted on this column (and statistic)."""
        term = self.sorted_on()
        if term is None and not self.order and (entity, key) == ("attribute", "start_time"):
            return "desc"  # the default order: newest first
        if term is None or term.entity != entity or term.key != key:
            return ""
        if entity == "metric" and stat != self.stat:
            return ""
        return "desc" if term.descending else "asc"

    def sort_url(self, column: Column, stat: Stat = "last") -> str:
        """Sort on ``column`` (a metric on ``stat``): ascending first, then each click
        reverses the order."""
        entity = _ENTITY[column.kind]
        return self._sort(entity, column.key, stat if column.kind == "metrics" else "last")

    def attribute_sort_url(self, attribute: str) -> str:
        return self._sort("attribute", attribute, "last")

    def _sort(self, entity: Entity, key: str, stat: Stat) -> str:
        descending = self.direction(entity, key, stat) == "asc"
        term = OrderTerm(entity, key, descending)
        return self.url(order=str(term), stat=stat, offset=0)

    def shown_stat(self, column: Column) -> Stat:
        """The statistic a metric column shows: the one the table sorts it on, else last."""
        term = self.sorted_on()
        if term is not None and term.entity == "metric" and term.key == column.key:
            return self.stat
        return "last"
