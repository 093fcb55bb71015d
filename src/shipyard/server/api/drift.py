"""``/api/v1/drift``: drift reports as ``shipyard monitor drift`` makes them, and the drift
reference stored with a table version (reads, for any user; logged as reads of the dataset)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from shipyard.monitoring.drift import DriftReport
from shipyard.project import Project
from shipyard.server.api._docs import returns, returns_schema
from shipyard.server.auth import acting_project

router = APIRouter(tags=["drift"])
Acting = Annotated[Project, Depends(acting_project)]

_COLUMN = {
    "column": "income",
    "kind": "numeric",
    "method": "ks",
    "statistic": 0.41,
    "p_value": 1.2e-30,
    "p_adjusted": 2.4e-30,
    "threshold": 0.05,
    "verdict": "drift",
    "current_rows": 250,
    "reference_null_share": 0.0,
    "current_null_share": 0.0,
    "bins": ["≤ 31,000", "(31,000, 38,500]", "> 38,500"],
    "reference_counts": [140, 140, 140],
    "current_counts": [20, 60, 170],
    "weight": 0.12,
}
_REPORT = {
    "reference": "credit.train@1",
    "current": "credit-risk over the last 1h",
    "reference_rows": 420,
    "current_rows": 250,
    "columns": [_COLUMN],
    "share": 1.0,
    "share_threshold": 0.5,
    "verdict": "drift",
    "missing_columns": [],
    "drifted_columns": ["income"],
}
_REFERENCE_SCHEMA = {
    "type": "object",
    "required": ["format", "rows", "source", "columns"],
    "properties": {
        "format": {"type": "integer"},
        "rows": {"type": "integer", "description": "rows the reference was built from"},
        "source": {"type": "string", "description": "the dataset version, name@N"},
        "columns": {
            "type": "object",
            "description": "per column: numeric (edges, counts per bin, moments, sample) or "
            "categorical (top values and their counts, other); null counts for both",
            "additionalProperties": {"type": "object"},
        },
    },
}
_REFERENCE = {
    "format": 1,
    "rows": 420,
    "source": "credit.train@1",
    "columns": {
        "region": {
            "column": "region",
            "dtype": "String",
            "count": 420,
            "nulls": 0,
            "values": ["north", "south"],
            "counts": [230, 190],
            "other": 0,
            "kind": "categorical",
        }
    },
}


@router.get(
    "/drift",
    summary="Drift of current data against a reference, per column and for the dataset",
    description=(
        "As `shipyard monitor drift`: `subject` is MODEL@ALIAS, MODEL@N (reference: its "
        "training data, from its lineage; columns weighted by its permutation importance) or "
        "DATASET@N (the reference itself); the current data is a dataset version (`current`) "
        "or what a deployment answered over the last `window_seconds`."
    ),
    **returns(DriftReport, example=_REPORT, errors=(401, 404, 422)),
)
def drift(
    project: Acting,
    subject: Annotated[str, Query(examples=["credit-risk@production"])],
    current: Annotated[str | None, Query(examples=["credit@2"])] = None,
    window_seconds: Annotated[float | None, Query(gt=0, examples=[3600])] = None,
    deployment: Annotated[str | None, Query(description="default: the one serving")] = None,
    reference: Annotated[str | None, Query(description="another reference, DATASET@N")] = None,
) -> Any:
    return project.drift.compare(
        subject,
        current=current,
        window_seconds=window_seconds,
        deployment=deployment,
        reference=reference,
    ).to_dict()


@router.get(
    "/datasets/{ref}/reference",
    summary="The drift reference stored with a table version",
    **returns_schema(_REFERENCE_SCHEMA, example=_REFERENCE, errors=(401, 404, 422)),
)
def reference(project: Acting, ref: str) -> Any:
    return project.drift.reference(ref).to_json()
