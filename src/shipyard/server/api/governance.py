"""``/api/v1`` governance: policies, ``check`` for CI, approvals, and promotion and rollback
of protected aliases, governed exactly as ``shipyard models promote/rollback`` (the same
service calls, so the same checks, refusals and audit events).

A check that ran and did not pass is not an error of the request: ``POST /check`` answers
200 with ``passed`` false (the CLI exits 3 on it). A promotion or rollback that its checks
refuse is a 422 ``check_failed`` error whose ``details`` list every check, as the CLI's JSON
error does.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.governance.approvals import Approval
from shipyard.governance.policy_checks import Check
from shipyard.governance.policy_registry import StoredPolicy
from shipyard.project import Project
from shipyard.server.api._docs import read_model_schema, returns, returns_schema
from shipyard.server.auth import acting_project

router = APIRouter(tags=["governance"])
Acting = Annotated[Project, Depends(acting_project)]

_POLICY_YAML = (
    "require: [evaluation]\n"
    "metrics:\n  roc_auc: {min: 0.7}\n"
    "no_regression: {metrics: [roc_auc], tolerance: 0.01}\n"
    "approvals: {min: 1}\n"
)
_POLICY = {
    "name": "credit-risk",
    "version": 2,
    "digest": "blake3:5e0c7a1f9b3d2e4c6a8b0d1f3e5a7c9b2d4f6e8a0c1b3d5f7e9a2c4b6d8f0e1a",
    "spec": {
        "require": ["evaluation"],
        "metrics": {"roc_auc": {"min": 0.7}},
        "no_regression": {"metrics": ["roc_auc"], "tolerance": 0.01},
        "approvals": {"min": 1},
    },
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "alice",
    "created": True,
}
_CHECKS = [
    {"name": "servable", "passed": True, "detail": "credit-risk@2 is approved"},
    {"name": "evaluation", "passed": True, "detail": "evaluated on credit.test@1"},
    {"name": "metrics.roc_auc", "passed": True, "detail": "roc_auc 0.74 >= 0.7"},
    {
        "name": "approvals",
        "passed": True,
        "detail": "1 approval (abe), at least 1 needed, none by the author",
    },
]
_FAILED_CHECKS = [
    {"name": "metrics.roc_auc", "passed": False, "detail": "roc_auc 0.57 < 0.7"},
    {"name": "approvals", "passed": False, "detail": "0 approvals, at least 1 needed"},
]
_APPROVAL = {
    "model": "credit-risk@2",
    "approver": "abe",
    "decision": "approve",
    "comment": "reviewed the evaluation and the card",
    "time": "2026-05-04T09:00:00+00:00",
    "confirmed": True,
    "event_seq": 42,
}

_CHECK_LIST = {"type": "array", "items": read_model_schema(Check)}


def _object(description: str, **props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": list(props),
        "properties": props,
    }


_GATE_SCHEMA = _object(
    "Every check CI should see before a move of the alias: the contract of each training "
    "dataset, then the policy's checks; `passed` is false when any fails.",
    model={"type": "string"},
    alias={"type": "string"},
    passed={"type": "boolean"},
    checks=_CHECK_LIST,
)
_PROMOTION_SCHEMA = _object(
    "The promotion that happened: every check it ran (all passed).",
    model={"type": "string"},
    alias={"type": "string"},
    passed={"type": "boolean"},
    checks=_CHECK_LIST,
    promoted={"type": "boolean"},
)
_ROLLBACK_SCHEMA = _object(
    "The rollback that happened: the alias moved from one version back to an earlier one.",
    model={"type": "string"},
    alias={"type": "string"},
    **{"from": {"type": "integer"}, "to": {"type": "integer"}},
    passed={"type": "boolean"},
    checks=_CHECK_LIST,
)


class CheckIn(BaseModel):
    """What to check, as `shipyard check REF --for ALIAS` does."""

    ref: str = Field(description="NAME@REF of the model version", examples=["credit-risk@2"])
    alias: str = Field("production", description="the alias it would move", examples=["production"])


class DecisionIn(BaseModel):
    """An approver's decision on a version."""

    comment: str = Field("", examples=["reviewed the evaluation and the card"])


class PromoteIn(BaseModel):
    """The version to move the alias to."""

    version: int | str = Field(
        description="a version number, or any reference to a version of this model "
        "(NAME@N, an alias, a digest prefix)",
        examples=[2, "credit-risk@2", "staging"],
    )
    to: str = Field(
        "production", description="the protected alias to move", examples=["production"]
    )
    comment: str = Field("", examples=["passed review; beats production on credit.test@1"])


class RollbackIn(BaseModel):
    """The alias to move back to its previous holder."""

    alias: str = Field("production", examples=["production"])
    comment: str = Field("", examples=["v2 mis-scores applicants without a credit history"])


# -- policies -------------------------------------------------------------------------------------


@router.get(
    "/policies",
    summary="The latest version of every stored policy",
    **returns(StoredPolicy, many=True, example=[_POLICY]),
)
def list_policies(project: Acting) -> Any:
    return [p.to_dict() for p in project.policies.list()]


@router.get(
    "/policies/{model}",
    summary="The policy stored for a model ('*': the project default)",
    **returns(StoredPolicy, example=_POLICY, errors=(401, 404)),
)
def show_policy(project: Acting, model: str) -> Any:
    stored = project.policies.get(model)
    if stored is None:
        raise NotFoundError(
            f"no policy stored for '{model}'; the project default or the built-in one applies "
            f"(`shipyard policy show {model}`); an admin stores one with "
            f"PUT /api/v1/policies/{model} or `shipyard policy set {model} FILE`"
        )
    return stored.to_dict()


_POLICY_BODY = {
    "requestBody": {
        "required": True,
        "description": 'The policy file: YAML text, or JSON `{"text": YAML}`.',
        "content": {
            "text/yaml": {"schema": {"type": "string"}, "example": _POLICY_YAML},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"text": {"type": "string"}},
                },
                "example": {"text": _POLICY_YAML},
            },
        },
    }
}


@router.put(
    "/policies/{model}",
    summary="Store a new version of a model's policy ('*': the project default; admin)",
    openapi_extra=_POLICY_BODY,
    **returns(StoredPolicy, example=_POLICY, errors=(401, 403, 422)),
)
async def set_policy(project: Acting, model: str, request: Request) -> Any:
    from starlette.concurrency import run_in_threadpool

    from shipyard.governance.policies import Policy

    text = _yaml_text(await request.body(), request.headers.get("content-type", ""))
    spec = Policy.from_yaml(text).to_dict()
    stored = await run_in_threadpool(project.policies.set, model, spec)
    return stored.to_dict()


def _yaml_text(body: bytes, content_type: str) -> str:
    """The policy text of a request body: the body itself, or the ``text`` of a JSON one."""
    try:
        raw = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the policy is not UTF-8 text") from None
    if content_type.split(";")[0].strip().lower() != "application/json":
        return raw
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the body is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        raise InvalidInputError(
            'a JSON body must be {"text": "<policy YAML>"}; or send the YAML itself as text/yaml'
        )
    text: str = doc["text"]
    return text


# -- checks ---------------------------------------------------------------------------------------


@router.post(
    "/check",
    summary="For CI: the training data's contracts and the policy, as `shipyard check`",
    description=(
        "Answers 200 whether or not the version passes: `passed` says (the CLI exits 3 when "
        "it is false)."
    ),
    **returns_schema(
        _GATE_SCHEMA,
        example={
            "model": "credit-risk@2",
            "alias": "production",
            "passed": False,
            "checks": [
                {
                    "name": "contract on training data credit.train@1",
                    "passed": True,
                    "detail": "applicants@1 passed",
                },
                *_FAILED_CHECKS,
            ],
        },
        errors=(401, 404, 422),
    ),
)
def check(project: Acting, body: CheckIn) -> Any:
    return project.promotions.gate(body.ref, for_alias=body.alias)


# -- approvals ------------------------------------------------------------------------------------


@router.post(
    "/models/{ref}/approve",
    summary="Approve a version (approver; never its author)",
    **returns(Approval, example=_APPROVAL, errors=(401, 403, 404, 422)),
)
def approve(project: Acting, ref: str, body: DecisionIn) -> Any:
    return project.approvals.approve(ref, comment=body.comment).to_dict()


@router.post(
    "/models/{ref}/reject",
    summary="Reject a version (approver; never its author); a standing rejection keeps it "
    "from serving",
    **returns(
        Approval,
        example={**_APPROVAL, "decision": "reject", "comment": "regresses on applicants over 60"},
        errors=(401, 403, 404, 422),
    ),
)
def reject(project: Acting, ref: str, body: DecisionIn) -> Any:
    return project.approvals.reject(ref, comment=body.comment).to_dict()


@router.get(
    "/models/{ref}/approvals",
    summary="Every decision on a version, oldest first (only confirmed ones count)",
    **returns(Approval, many=True, example=[_APPROVAL], errors=(401, 404, 422)),
)
def approvals(project: Acting, ref: str) -> Any:
    return [a.to_dict() for a in project.approvals.list(ref)]


# -- promotion and rollback -----------------------------------------------------------------------


@router.post(
    "/models/{name}/promote",
    summary="Check the policy and, only if every check passes, move a protected alias to the "
    "version (approver)",
    description=(
        "As `shipyard models promote NAME@VERSION --to ALIAS`. Refused with 422 "
        "`check_failed` when a check fails; `details.checks` lists every check."
    ),
    **returns_schema(
        _PROMOTION_SCHEMA,
        example={
            "model": "credit-risk@2",
            "alias": "production",
            "passed": True,
            "checks": _CHECKS,
            "promoted": True,
        },
        errors=(401, 403, 404, 409, 422),
    ),
)
def promote(project: Acting, name: str, body: PromoteIn) -> Any:
    return project.promotions.promote(
        _version_ref(name, body.version), to=body.to, comment=body.comment
    )


def _version_ref(name: str, version: int | str) -> str:
    """``NAME@VERSION`` from a path's model name and a body's version (a number, or a
    reference that must name the same model)."""
    text = str(version).strip()
    if "@" not in text:
        return f"{name}@{text}"
    if text.split("@", 1)[0] != name:
        raise InvalidInputError(
            f"version {text!r} is not a version of '{name}'; give a version number or {name}@REF"
        )
    return text


@router.post(
    "/models/{name}/rollback",
    summary="Move a protected alias back to its previous holder (approver)",
    description=(
        "As `shipyard models rollback NAME --alias ALIAS`: the earlier holder must still be "
        "approved and pass the policy now, else 422 `check_failed` with every check."
    ),
    **returns_schema(
        _ROLLBACK_SCHEMA,
        example={
            "model": "credit-risk",
            "alias": "production",
            "from": 2,
            "to": 1,
            "passed": True,
            "checks": _CHECKS,
        },
        errors=(401, 403, 404, 409, 422),
    ),
)
def rollback(project: Acting, name: str, body: RollbackIn) -> Any:
    return project.promotions.rollback(name, alias=body.alias, comment=body.comment)
