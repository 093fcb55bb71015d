"""``/api/v1/datasets``: the dataset registry over HTTP, as ``shipyard data`` has it.

Uploads are ``data add`` (multipart; the file name's extension gives the format), with the
same contract checks: data that fails in reject mode is a 422 ``check_failed`` whose
``details`` hold the validation report, and nothing is stored. Downloads stream the verified
bytes and are logged as reads, like ``data get``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from shipyard.data.transfer import DOWNLOAD_FORMATS
from shipyard.data.validation import ValidationReport
from shipyard.data.versions import DatasetSummary, DatasetVersion
from shipyard.project import Project
from shipyard.server.api._docs import error_responses, returns, returns_json
from shipyard.server.api._forms import json_field
from shipyard.server.auth import acting_project

router = APIRouter(tags=["datasets"])
Acting = Annotated[Project, Depends(acting_project)]

_DIGEST = "blake3:4d782742ac1aa9ded58faf201a24ca6915db693dec8449c2f43fc68a7f152bbf"
_VERSION = {
    "name": "applicants",
    "version": 2,
    "digest": _DIGEST,
    "kind": "table",
    "rows": 4,
    "columns": ["applicant_id", "age", "city"],
    "schema": {"applicant_id": "Int64", "age": "Int64", "city": "String"},
    "profile": {
        "rows": 4,
        "columns": {
            "age": {
                "dtype": "Int64",
                "kind": "number",
                "count": 4,
                "nulls": 0,
                "distinct": 4,
                "min": 29,
                "max": 51,
                "mean": 39.75,
                "std": 10.05,
                "quantiles": {"0.05": 29.8, "0.5": 39.5, "0.95": 50.1},
            },
            "city": {
                "dtype": "String",
                "kind": "string",
                "count": 4,
                "nulls": 0,
                "distinct": 3,
                "top": [{"value": "lyon", "count": 2}, {"value": "paris", "count": 1}],
            },
        },
    },
    "size_bytes": 1650,
    "message": "Q2 batch",
    "tags": {"source": "crm"},
    "source": {"path": "applicants_2026q2.csv", "format": "csv", "size": 96, "digest": _DIGEST},
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "carol",
    "parents": ["applicants@1"],
    "status": "valid",
    "validation": {"passed": True, "rows": 4, "failures": []},
    "contract": "applicants@1",
    "created": True,
    "quarantine": None,
    "ref": "applicants@2",
}
_SUMMARY = {
    "name": "applicants",
    "versions": 2,
    "latest": 2,
    "kind": "table",
    "rows": 4,
    "columns": 3,
    "status": "valid",
    "contract": "applicants",
    "updated_at": "2026-05-03T10:00:00+00:00",
    "updated_by": "carol",
}
_EDGE = {"type": "object", "properties": {k: {"type": "string"} for k in ("parent", "child")}}
_LINEAGE_SCHEMA = {
    "type": "object",
    "required": ["ref", "digest", "upstream", "downstream"],
    "properties": {
        "ref": {"type": "string"},
        "digest": {"type": "string"},
        "upstream": {"type": "array", "items": _EDGE},
        "downstream": {"type": "array", "items": _EDGE},
        "tombstones": {
            "type": "object",
            "description": "The deleted dataset versions among the nodes, by reference: "
            "digest, by, at, reason, purged_at.",
        },
    },
}
_LINEAGE = {
    "ref": "applicants@2",
    "digest": _DIGEST,
    "upstream": [
        {
            "parent": "dataset:applicants@1",
            "child": "dataset:applicants@2",
            "relation": "derived_from",
        }
    ],
    "downstream": [
        {"parent": "dataset:applicants@2", "child": "run:63dfdc6e3b78", "relation": "input:train"}
    ],
    "tombstones": {},
}
_DIFF_SCHEMA = {
    "type": "object",
    "required": ["from", "to", "identical", "schema", "rows", "columns"],
    "properties": {
        "from": {"type": "string"},
        "to": {"type": "string"},
        "identical": {"type": "boolean"},
        "schema": {"type": "object"},
        "rows": {"type": "object"},
        "columns": {"type": "array", "items": {"type": "object"}},
    },
}
_DIFF = {
    "schema": {"added": [], "removed": [], "retyped": []},
    "rows": {"from": 3, "to": 4, "change": 1},
    "columns": [
        {
            "column": "age",
            "stat": "mean",
            "from": 38.0,
            "to": 39.75,
            "change": 1.75,
            "relative": 0.046,
        },
        {"column": "city", "stat": "top", "from": ["lyon", "paris"], "to": ["lyon", "nice"]},
    ],
    "from": "applicants@1",
    "to": "applicants@2",
    "identical": False,
}
_FAILED_REPORT = {
    "passed": False,
    "rows": 4,
    "failures": [
        {
            "column": "age",
            "check": "max",
            "failed_rows": 1,
            "examples": [250],
            "message": "values above 100",
        }
    ],
}


class ValidateIn(BaseModel):
    """What to validate a version against."""

    contract: str | None = Field(
        default=None,
        description="a contract reference (default: the one bound)",
        examples=["applicants@1"],
    )
    store: bool = Field(
        default=True,
        description="record the report with the version (contributor); false: only check "
        "(a viewer may)",
    )


@router.get(
    "/datasets",
    summary="List datasets with their latest version",
    **returns(DatasetSummary, many=True, example=[_SUMMARY]),
)
def list_datasets(project: Acting) -> Any:
    return [d.to_dict() for d in project.datasets.list()]


@router.get(
    "/datasets/{name}/versions",
    summary="Every version of a dataset, oldest first",
    **returns(DatasetVersion, many=True, example=[_VERSION], errors=(401, 404)),
)
def list_versions(project: Acting, name: str) -> Any:
    return [v.to_dict() for v in project.datasets.versions(name)]


@router.get(
    "/datasets/{ref}",
    summary="One version: schema, profile, lineage parents, validation, tags, author",
    **returns(DatasetVersion, example=_VERSION, errors=(401, 404, 422)),
)
def show_dataset(project: Acting, ref: str) -> Any:
    return project.datasets.get(ref).to_dict()


@router.get(
    "/datasets/{ref}/lineage",
    summary="Where a version came from and what was made from it",
    **returns_json(_LINEAGE_SCHEMA, example=_LINEAGE, errors=(401, 404, 422)),
)
def lineage(project: Acting, ref: str) -> Any:
    return project.datasets.lineage(ref)


@router.get(
    "/datasets/{ref}/diff",
    summary="Schema, row-count and statistic changes from `against` to this version",
    **returns_json(_DIFF_SCHEMA, example=_DIFF, errors=(401, 404, 422)),
)
def diff(
    project: Acting,
    ref: str,
    against: Annotated[
        str, Query(description="the version to compare from", examples=["applicants@1"])
    ],
) -> Any:
    return project.datasets.diff(against, ref)


_DOWNLOAD_CONTENT = {
    media: {"schema": {"type": "string", "format": "binary"}} for media in DOWNLOAD_FORMATS.values()
}


@router.get(
    "/datasets/{ref}/download",
    summary="Stream a table version (verified; the read is logged like `data get`)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the table's bytes; `X-Shipyard-Digest` is the stored version's "
            "digest (of its Parquet bytes)",
            "content": _DOWNLOAD_CONTENT,
        },
        **error_responses(401, 404, 422),
    },
)
def download(
    project: Acting,
    ref: str,
    format: Annotated[
        Literal["parquet", "csv", "jsonl"],
        Query(description="parquet: the stored bytes; csv or jsonl: converted like `data get`"),
    ] = "parquet",
) -> StreamingResponse:
    d = project.datasets.download(ref, format)
    return StreamingResponse(
        d.chunks(),
        media_type=d.media_type,
        headers={
            "Content-Length": str(d.size),
            "Content-Disposition": f'attachment; filename="{d.filename}"',
            "X-Shipyard-Ref": d.ref,
            "X-Shipyard-Digest": d.digest,
        },
    )


_UNCHANGED = {
    "description": "identical content is already a version: that version, `created` false",
    "content": {"application/json": {"example": {**_VERSION, "created": False}}},
}
_REJECTED = {
    "description": "bad input (`invalid_input`), or the data fails its contract in reject "
    "mode (`check_failed`, the report in `details`; nothing is stored)",
    "content": {
        "application/json": {
            "example": {
                "error": "check_failed",
                "message": "rejected: the batch for dataset 'applicants' fails contract "
                "applicants@1: 1 check failed: age: max (1 row); nothing was stored",
                "details": {"report": _FAILED_REPORT, "contract": "applicants@1"},
            }
        }
    },
}

_UPLOAD_DOC = returns(DatasetVersion, example=_VERSION, errors=(401, 403, 404, 409), status=201)
_UPLOAD_DOC["responses"].update({200: _UNCHANGED, 422: _REJECTED})


@router.post(
    "/datasets/{name}",
    status_code=201,
    summary="Add a version from an uploaded table file (`data add`)",
    **_UPLOAD_DOC,
)
def upload(
    project: Acting,
    response: Response,
    name: str,
    file: Annotated[
        UploadFile, File(description="CSV, TSV, Parquet or JSON Lines; the extension counts")
    ],
    message: Annotated[str, Form(description="what this version is")] = "",
    tags: Annotated[str, Form(description="a JSON object of tags", examples=["{}"])] = "{}",
    parents: Annotated[
        str, Form(description="a JSON list of the versions it derives from", examples=["[]"])
    ] = "[]",
    contract: Annotated[
        str | None, Form(description="validate against this contract (default: the bound one)")
    ] = None,
    on_invalid: Annotated[
        Literal["reject", "quarantine", "allow"],
        Form(description="data that fails: reject it, quarantine its failing rows, or allow"),
    ] = "reject",
    allow_ragged: Annotated[
        bool, Form(description="fill the missing fields of short CSV lines with nulls")
    ] = False,
) -> Any:
    v = project.datasets.upload(
        name,
        file.file,
        filename=file.filename or "",
        message=message,
        tags=json_field(tags, "tags", dict),
        parents=json_field(parents, "parents", list) or (),
        contract=contract or None,
        on_invalid=on_invalid,
        allow_ragged=allow_ragged,
    )
    stored = v.created or v.quarantine is not None  # this call wrote something
    response.status_code = 201 if stored else 200
    return v.to_dict()


@router.post(
    "/datasets/{ref}/validate",
    summary="Check a version against a contract (200 with `passed` false when it fails)",
    **returns(
        ValidationReport,
        example=_FAILED_REPORT,
        errors=(401, 403, 404, 422),
    ),
)
def validate(project: Acting, ref: str, body: ValidateIn | None = None) -> Any:
    body = body or ValidateIn()
    return project.datasets.validate(ref, contract=body.contract, store=body.store).to_dict()
