"""The lineage graph: directed edges between any two entities (dataset, run, model, ...)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard.stores.db.tables import lineage_edges

__all__ = ["add_edge", "children_of", "parents_of", "walk"]


def add_edge(
    conn: Connection,
    parent: tuple[str, str],
    child: tuple[str, str],
    relation: str,
) -> None:
    """Record that ``child`` (kind, ref) was made from ``parent`` (kind, ref)."""
    conn.execute(
        lineage_edges.insert().values(
            parent_kind=parent[0],
            parent=parent[1],
            child_kind=child[0],
            child=child[1],
            relation=relation,
            created_at=datetime.now(UTC),
        )
    )


def parents_of(conn: Connection, kind: str, ref: str) -> list[dict[str, str]]:
    """Direct parents of one entity, in the order they were recorded."""
    rows = conn.execute(
        select(lineage_edges)
        .where(lineage_edges.c.child_kind == kind)
        .where(lineage_edges.c.child == ref)
        .order_by(lineage_edges.c.id)
    )
    return [{"kind": r.parent_kind, "ref": r.parent, "relation": r.relation} for r in rows]


def children_of(conn: Connection, kind: str, ref: str) -> list[dict[str, str]]:
    """Direct children of one entity, in the order they were recorded."""
    rows = conn.execute(
        select(lineage_edges)
        .where(lineage_edges.c.parent_kind == kind)
        .where(lineage_edges.c.parent == ref)
        .order_by(lineage_edges.c.id)
    )
    return [{"kind": r.child_kind, "ref": r.child, "relation": r.relation} for r in rows]


def walk(conn: Connection, kind: str, ref: str, *, upstream: bool) -> list[dict[str, Any]]:
    """Edges reachable from ``ref`` in one direction, breadth first, each node once."""
    seen = {(kind, ref)}
    frontier = [(kind, ref)]
    out: list[dict[str, Any]] = []
    while frontier:
        nxt = []
        for k, r in frontier:
            if upstream:
                cond = (lineage_edges.c.child_kind == k) & (lineage_edges.c.child == r)
            else:
                cond = (lineage_edges.c.parent_kind == k) & (lineage_edges.c.parent == r)
            for e in conn.execute(select(lineage_edges).where(cond).order_by(lineage_edges.c.id)):
                node = (e.parent_kind, e.parent) if upstream else (e.child_kind, e.child)
                out.append(
                    {
                        "parent": f"{e.parent_kind}:{e.parent}",
                        "child": f"{e.child_kind}:{e.child}",
                        "relation": e.relation,
                    }
                )
                if node not in seen:
                    seen.add(node)
                    nxt.append(node)
        frontier = nxt
    return out
