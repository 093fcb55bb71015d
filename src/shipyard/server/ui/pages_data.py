"""Pages: datasets (list, versions, one version with its schema, profile charts, first rows,
validation report, lineage and tags; the diff of two versions), contracts (versions and
the datasets bound to them) and features (the feature views and the glossary)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from shipyard.server.ui import charts
from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.visitors import ViewedBy

__all__ = ["router"]

router = APIRouter(route_class=UiRoute)

#: Rows shown in a version's preview.
PREVIEW_ROWS = 20


def lineage_figure(lineage: dict[str, Any]) -> dict[str, Any] | None:
    """The lineage edges (upstream and downstream) as a Sankey diagram: nodes are datasets,
    runs and models, each link one recorded relation."""
    edges = [*lineage.get("upstream", []), *lineage.get("downstream", [])]
    if not edges:
        return None
    nodes: list[str] = []
    index: dict[str, int] = {}
    for e in edges:
        for node in (e["parent"], e["child"]):
            if node not in index:
                index[node] = len(nodes)
                nodes.append(node)
    labels = [n if not n.startswith("run:") else n[:16] for n in nodes]
    return {
        "data": [
            {
                "type": "sankey",
                "node": {"label": labels, "pad": 18},
                "link": {
                    "source": [index[e["parent"]] for e in edges],
                    "target": [index[e["child"]] for e in edges],
                    "value": [1] * len(edges),
                    "label": [e["relation"] for e in edges],
                },
            }
        ],
        "layout": {"title": {"text": "Lineage", "font": {"size": 14}}, "height": 320},
    }


@router.get("/datasets")
def datasets(request: Request, who: ViewedBy) -> Response:
    return page(request, "datasets.html", who, datasets=who.project.datasets.list())


@router.get("/datasets/{name}")
def dataset(request: Request, who: ViewedBy, name: str) -> Response:
    versions = who.project.datasets.versions(name)
    return page(request, "dataset.html", who, name=name, versions=versions[::-1])


@router.get("/datasets/{name}/diff")
def dataset_diff(request: Request, who: ViewedBy, name: str, a: int, b: int) -> Response:
    project = who.project
    diff = project.datasets.diff(f"{name}@{a}", f"{name}@{b}")
    versions = project.datasets.versions(name)
    return page(
        request, "dataset_diff.html", who, name=name, diff=diff, versions=versions, a=a, b=b
    )


@router.get("/datasets/{name}/{version}")
def dataset_version(request: Request, who: ViewedBy, name: str, version: int) -> Response:
    project = who.project
    v = project.datasets.get(f"{name}@{version}")
    preview = None
    if v.kind == "table":
        head = v.to_polars().head(PREVIEW_ROWS)  # a logged read, like any other
        preview = {"columns": head.columns, "rows": head.rows()}
    columns = v.profile.get("columns", {}) if v.profile else {}
    profile_charts = [
        fig for col, stats in columns.items() if (fig := charts.column_profile(col, stats))
    ]
    lineage = project.datasets.lineage(v.ref)
    return page(
        request,
        "dataset_version.html",
        who,
        v=v,
        columns=columns,
        profile_charts=profile_charts,
        preview=preview,
        lineage=lineage,
        lineage_chart=lineage_figure(lineage),
        governing=project.datasets.governing_contracts(v.ref),
        versions=project.datasets.versions(name),
    )


@router.get("/contracts")
def contracts(request: Request, who: ViewedBy) -> Response:
    return page(request, "contracts.html", who, contracts=who.project.contracts.list())


@router.get("/contracts/{name}")
def contract(request: Request, who: ViewedBy, name: str) -> Response:
    versions = who.project.contracts.versions(name)
    return page(request, "contract.html", who, name=name, versions=versions[::-1])


@router.get("/features")
def features(request: Request, who: ViewedBy) -> Response:
    from shipyard.features.definitions import format_ttl

    service = who.project.features
    return page(
        request,
        "features.html",
        who,
        views=service.list(),
        glossary=service.glossary(),
        ttl=format_ttl,
    )
