"""``/api/v1/contracts``: data contracts over HTTP, as ``shipyard contract`` has them.

A new version is posted as the contract's YAML text (``text/yaml``, or JSON
``{"text": ..., "message": ...}``); identical content returns the existing version.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from shipyard.data.contract_registry import ContractSummary, ContractVersion
from shipyard.data.contracts import Contract
from shipyard.errors import InvalidInputError
from shipyard.project import Project
from shipyard.server.api._docs import returns, returns_json
from shipyard.server.auth import acting_project

router = APIRouter(tags=["contracts"])
Acting = Annotated[Project, Depends(acting_project)]

_YAML = """description: Loan applicants
columns:
  applicant_id: {type: int, unique: true, nullable: false}
  age: {type: int, min: 18, max: 100}
  city: {type: category, allowed: [lyon, paris, nice]}
checks:
  row_count: {min: 1000}
"""
_VERSION = {
    "name": "applicants",
    "version": 2,
    "digest": "blake3:9cac19f7f69c459bcdb2be6569e0135ae8409f1447a97baddfec41cd56e69caf",
    "spec": {
        "description": "Loan applicants",
        "columns": {
            "applicant_id": {"type": "int", "nullable": False, "unique": True},
            "age": {"type": "int", "nullable": True, "min": 18, "max": 100},
            "city": {"type": "category", "nullable": True, "allowed": ["lyon", "paris", "nice"]},
        },
        "checks": {"row_count": {"min": 1000}},
    },
    "message": "age bounded",
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "carol",
    "created": True,
    "bound_to": ["applicants"],
    "ref": "applicants@2",
}
_SUMMARY = {
    "name": "applicants",
    "latest": 2,
    "columns": 3,
    "bound_to": ["applicants"],
    "updated_at": "2026-05-03T10:00:00+00:00",
    "updated_by": "carol",
}
#: The contract YAML this server accepts in one request body, at most.
MAX_CONTRACT_BYTES = 1024 * 1024


class ContractIn(BaseModel):
    """A contract version as JSON: its YAML text and what changed."""

    text: str = Field(examples=[_YAML])
    message: str = Field(default="", examples=["age bounded"])


class BindIn(BaseModel):
    """The contract to validate every later version of a dataset against."""

    contract: str = Field(
        description="NAME follows its latest version; NAME@N pins one", examples=["applicants"]
    )
    new: bool = Field(
        False, description="bind a dataset that has no version yet (else it must exist)"
    )


async def _contract_body(request: Request) -> ContractIn:
    """The posted contract: YAML text, or JSON ``{"text", "message"}``."""
    raw = await request.body()
    if len(raw) > MAX_CONTRACT_BYTES:
        raise InvalidInputError(f"the contract is over {MAX_CONTRACT_BYTES} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            return ContractIn.model_validate_json(raw)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
            ]
            raise InvalidInputError.from_problems("the request body", problems) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the contract is not UTF-8 text") from None
    return ContractIn(text=text)


@router.get(
    "/contracts",
    summary="List contracts with their latest version and bound datasets",
    **returns(ContractSummary, many=True, example=[_SUMMARY]),
)
def list_contracts(project: Acting) -> Any:
    return [c.to_dict() for c in project.contracts.list()]


@router.get(
    "/contracts/{name}/versions",
    summary="Every version of a contract, oldest first",
    **returns(ContractVersion, many=True, example=[_VERSION], errors=(401, 404)),
)
def list_versions(project: Acting, name: str) -> Any:
    return [v.to_dict() for v in project.contracts.versions(name)]


@router.get(
    "/contracts/{ref}",
    summary="One contract version (bare name: the latest)",
    **returns(ContractVersion, example=_VERSION, errors=(401, 404, 422)),
)
def show_contract(project: Acting, ref: str) -> Any:
    return project.contracts.get(ref).to_dict()


_ADD_DOC = returns(ContractVersion, example=_VERSION, errors=(401, 403, 422), status=201)
_ADD_DOC["responses"][200] = {
    "description": "identical content is already a version: that version, `created` false",
    "content": {"application/json": {"example": {**_VERSION, "created": False}}},
}


@router.post(
    "/contracts/{name}",
    status_code=201,
    summary="Add a contract version from its YAML text (every problem listed on a 422)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/yaml": {"schema": {"type": "string"}, "example": _YAML},
                "application/json": {
                    "schema": ContractIn.model_json_schema(),
                    "example": {"text": _YAML, "message": "age bounded"},
                },
            },
        }
    },
    **_ADD_DOC,
)
def add_contract(
    project: Acting,
    response: Response,
    name: str,
    body: Annotated[ContractIn, Depends(_contract_body)],
    message: Annotated[str | None, Query(description="what changed (with a YAML body)")] = None,
) -> Any:
    contract = Contract.from_yaml(body.text)
    v = project.contracts.add(name, contract, message=body.message or message or "")
    response.status_code = 201 if v.created else 200
    return v.to_dict()


@router.put(
    "/datasets/{dataset}/contract",
    summary="Bind a contract to a dataset: every later version is validated against it",
    **returns_json(
        {"type": "object", "properties": {"dataset": {}, "contract": {"type": "string"}}},
        example={"dataset": "applicants", "contract": "applicants"},
        errors=(401, 403, 404, 422),
    ),
)
def bind(project: Acting, dataset: str, body: Annotated[BindIn, Body()]) -> Any:
    return {
        "dataset": dataset,
        "contract": project.contracts.bind(dataset, body.contract, new=body.new),
    }


@router.delete(
    "/datasets/{dataset}/contract",
    summary="Stop validating new versions of a dataset",
    **returns_json(
        {"type": "object", "properties": {"dataset": {}, "contract": {"type": "null"}}},
        example={"dataset": "applicants", "contract": None},
        errors=(401, 403, 404),
    ),
)
def unbind(project: Acting, dataset: str) -> Any:
    project.contracts.unbind(dataset)
    return {"dataset": dataset, "contract": None}
