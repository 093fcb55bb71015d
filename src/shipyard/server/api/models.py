"""``/api/v1/models``: the model registry (versions, aliases and their history, evaluations,
cards) and the stored model files, which a remote ``models load`` loads locally with the
trusted-type rules.

References in paths are ``NAME@N``, ``NAME@ALIAS``, ``NAME@latest`` or ``NAME@<digest
prefix>``, URL-encoded (a bare ``NAME`` means its latest version).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from shipyard.governance.cards import ModelCard
from shipyard.governance.reports import StoredEvaluation
from shipyard.project import Project
from shipyard.registry.code_approvals import CodeApproval, CodeSource
from shipyard.registry.versions import AliasEvent, ModelSummary, ModelVersion
from shipyard.server.api._docs import returns, returns_schema
from shipyard.server.auth import acting_project

router = APIRouter(tags=["models"])
Acting = Annotated[Project, Depends(acting_project)]

_DIGEST = "blake3:9f2c41d07a5e3b8c6d1f0a2e4b7c9d8e1f3a5b7c9d0e2f4a6b8c0d1e3f5a7b9c"
_SUMMARY = {
    "name": "credit-risk",
    "latest": 2,
    "versions": 2,
    "aliases": {"production": 1},
    "updated_at": "2026-05-03T10:00:00+00:00",
    "updated_by": "carol",
}
_VERSION = {
    "name": "credit-risk",
    "version": 1,
    "digest": _DIGEST,
    "flavor": "sklearn",
    "signature": {
        "inputs": {
            "columns": {
                "age": {"type": "integer", "nullable": False},
                "income": {"type": "number", "nullable": True},
            }
        },
        "outputs": {"kind": "classification", "classes": [0, 1]},
    },
    "run_id": "5d1c0e9a7b3f4e2d8c6a1b0f9e8d7c6b",
    "status": "approved",
    "description": "logistic regression on every applicant column",
    "metrics": {"roc_auc": 0.72},
    "aliases": ["production"],
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "carol",
    "lineage": [
        {"kind": "run", "ref": "5d1c0e9a7b3f4e2d8c6a1b0f9e8d7c6b", "name": "logreg", "by": "carol"},
        {"kind": "dataset", "ref": "credit.train@1", "context": "train", "digest": _DIGEST},
    ],
    "created": False,
    "environment": {"sklearn": "1.6.1", "numpy": "2.2.4"},
    "ref": "credit-risk@1",
}
_ALIAS_EVENT = {
    "alias": "production",
    "from_version": None,
    "to_version": 1,
    "actor": "abe",
    "time": "2026-05-04T09:30:00+00:00",
    "reason": "promote",
    "comment": "passed review",
}
_EVALUATION = {
    "id": 7,
    "model": "credit-risk@1",
    "dataset": "credit.test@1",
    "dataset_digest": _DIGEST,
    "label": "default",
    "rows": 180,
    "metrics": {"roc_auc": {"value": 0.72, "ci_low": 0.65, "ci_high": 0.79}},
    "groups": {"gender": {"fairness": {"demographic_parity_difference": 0.04}}},
    "importance": [{"feature": "credit_score", "mean": 0.081, "std": 0.012}],
    "created_at": "2026-05-03T11:00:00+00:00",
    "created_by": "carol",
}
_CARD_MARKDOWN = (
    "# Model card: credit-risk@1\n\n## Model details\n\n- Version 1 of `credit-risk`…\n"
)
_CARD = {
    "model": "credit-risk@1",
    "sections": {
        "intended_use": {
            "text": "Ranking consumer credit applications for manual review.",
            "author": "carol",
            "time": "2026-05-03T12:00:00+00:00",
        }
    },
    "markdown": _CARD_MARKDOWN,
}


@router.get(
    "/models",
    summary="List registered models with their latest version and aliases",
    **returns(ModelSummary, many=True, example=[_SUMMARY]),
)
def list_models(project: Acting) -> Any:
    return [m.to_dict() for m in project.models.list()]


@router.get(
    "/models/{name}/versions",
    summary="Every version of a model, oldest first",
    **returns(ModelVersion, many=True, example=[_VERSION], errors=(401, 404)),
)
def list_versions(project: Acting, name: str) -> Any:
    return [v.to_dict() for v in project.models.versions(name)]


@router.get(
    "/models/{name}/aliases",
    summary="A model's aliases now: alias → version",
    **returns_schema(
        {"type": "object", "additionalProperties": {"type": "integer"}},
        example={"challenger": 2, "production": 1},
        errors=(401, 404),
    ),
)
def aliases(project: Acting, name: str) -> Any:
    return project.models.aliases(name)


@router.get(
    "/models/{name}/aliases/history",
    summary="Every move of a model's aliases (or of one), oldest first",
    **returns(AliasEvent, many=True, example=[_ALIAS_EVENT], errors=(401, 404)),
)
def alias_history(
    project: Acting,
    name: str,
    alias: Annotated[str | None, Query(description="only this alias", examples=["production"])] = (
        None
    ),
) -> Any:
    return [e.to_dict() for e in project.models.alias_history(name, alias)]


@router.get(
    "/models/{ref}",
    summary="One model version: signature, lineage, metrics, status and aliases",
    **returns(ModelVersion, example=_VERSION, errors=(401, 404, 422)),
)
def show(project: Acting, ref: str) -> Any:
    return project.models.get(ref).to_dict()


@router.get(
    "/models/{ref}/evaluations",
    summary="The evaluation reports of a version, newest first",
    **returns(StoredEvaluation, many=True, example=[_EVALUATION], errors=(401, 404, 422)),
)
def evaluations(project: Acting, ref: str) -> Any:
    return [e.to_dict() for e in project.evaluations.list(ref)]


@router.get(
    "/models/{ref}/row-checks",
    summary="What every row a version scores is checked against, besides its signature",
    description=(
        "The contracts of the version's training data and the signature columns its fitted "
        "pipeline cannot take missing (probed on its training data here). A remote "
        "`shipyard models predict` scores on the client with these, so it refuses the rows a "
        "local one refuses without reading the training data."
    ),
    **returns_schema(
        {
            "type": "object",
            "required": ["ref", "contracts", "no_nulls"],
            "properties": {
                "ref": {"type": "string"},
                "contracts": {
                    "type": "array",
                    "items": {"type": "object", "description": "a contract, as a version's spec"},
                },
                "no_nulls": {"type": "array", "items": {"type": "string"}},
            },
        },
        example={
            "ref": "credit-risk@1",
            "contracts": [
                {
                    "description": "Loan applicants",
                    "columns": {"age": {"type": "int", "nullable": True, "min": 18, "max": 100}},
                }
            ],
            "no_nulls": ["income"],
        },
        errors=(401, 404, 422),
    ),
)
def row_checks(project: Acting, ref: str) -> Any:
    return project.models.row_check_rules(ref).to_dict()


_CARD_DOC = returns(ModelCard, example=_CARD, errors=(401, 404, 422))
_CARD_DOC["responses"][200]["content"]["text/markdown"] = {
    "schema": {"type": "string"},
    "example": _CARD_MARKDOWN,
}
_CARD_DOC["responses"][200]["content"]["text/html"] = {"schema": {"type": "string"}}


@router.get(
    "/models/{ref}/card",
    summary="The model card: JSON, or the document itself with ?format=markdown or html",
    **_CARD_DOC,
)
def card(
    project: Acting,
    ref: str,
    format: Annotated[
        Literal["json", "markdown", "html"], Query(description="json (default), markdown, html")
    ] = "json",
) -> Any:
    if format == "json":
        return project.cards.card(ref).to_dict()
    media = "text/markdown" if format == "markdown" else "text/html"
    return Response(project.cards.render(ref, format), media_type=f"{media}; charset=utf-8")


_CODE_APPROVAL = {
    "digest": _DIGEST,
    "model": "churn@1",
    "approver": "abe",
    "comment": "read it",
    "time": "2026-05-04T09:00:00+00:00",
    "event_seq": 42,
}


@router.get(
    "/models/{ref}/code",
    summary="The source code of a custom code model version, its digest and its approvals "
    "(runs nothing)",
    **returns(
        CodeSource,
        example={
            "model": "churn@1",
            "digest": _DIGEST,
            "class_name": "Threshold",
            "source": "class Threshold:\n    ...\n",
            "approvals": [_CODE_APPROVAL],
            "approved": True,
        },
        errors=(401, 404, 422),
    ),
)
def code(project: Acting, ref: str) -> Any:
    return project.models.code(ref).to_dict()


class CodeDecisionIn(BaseModel):
    """An approver's approval of a version's code."""

    comment: str = Field("", examples=["read it"])


@router.post(
    "/models/{ref}/code/approve",
    summary="Approve the code of a custom code model version (approver; never its author), "
    "so that it loads and serves",
    **returns(CodeApproval, example=_CODE_APPROVAL, errors=(401, 403, 404, 422)),
)
def approve_code(
    project: Acting,
    ref: str,
    body: Annotated[
        CodeDecisionIn | None,
        Body(openapi_examples={"approve": {"value": {"comment": "read it"}}}),
    ] = None,
) -> Any:
    comment = "" if body is None else body.comment
    return project.models.approve_code(ref, comment=comment).to_dict()


@router.get(
    "/models/{ref}/download",
    summary="The stored model file, verified against its digest before it is sent",
    response_class=StreamingResponse,
    description=(
        "The bytes of the version's model file (a skops file for scikit-learn), with its "
        "digest in `X-Shipyard-Digest` and its flavor in `X-Shipyard-Flavor`; load it with "
        "shipyard's trusted-type rules. Recorded in the audit log as a `model.load`."
    ),
    **returns_schema(
        {"type": "string", "format": "binary"},
        media_type="application/octet-stream",
        errors=(401, 404, 422),
        description="the model file's bytes",
    ),
)
def download(project: Acting, ref: str) -> Any:
    f = project.models.download(ref)
    headers = {
        "X-Shipyard-Digest": f.digest,
        "X-Shipyard-Flavor": f.flavor,
        "X-Shipyard-Ref": f.version.ref,
        "Content-Length": str(f.size),
    }
    return StreamingResponse(f.chunks, media_type="application/octet-stream", headers=headers)
