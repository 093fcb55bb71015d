"""The server's OpenAPI document (``/openapi.json``, shown at ``/docs``), with the request
bodies of ``/predict`` and ``/v2/models/{name}/infer`` described from the served version:
each column of its signature, with the type and the limits of the contract it was trained
on (minimum, maximum, allowed values), exactly as the server checks them.

The prediction endpoints are plain routes that read their bodies themselves (faster than
FastAPI's parameter handling), so FastAPI does not see them; their operations and schemas are
added to the generated document each time it is asked for, which also follows the deployment
when it changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.serving.inputs import MAX_ROWS
from shipyard.serving.v2 import DATATYPES

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shipyard.serving.reload import Slot

__all__ = ["describe_inputs", "install"]


def describe_inputs(document: dict[str, Any], model: str, slot: Slot | None) -> dict[str, Any]:
    """``document`` with the prediction endpoints, and their request and answer bodies from
    ``slot`` (the first route served; no bodies without a slot or a signature)."""
    paths = document.setdefault("paths", {})
    for path, operation in _operations(model).items():
        paths.setdefault(path, {})["post"] = operation
    if slot is None or not slot.checks.models:
        return document
    record = slot.checks.models[-1].model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(record.pop("$defs", {}))
    record["title"] = f"{model} record"
    record["description"] = (
        f"One row for {slot.ref} ({slot.alias}): its signature's columns, checked against "
        "the contract of the data it was trained on. Every column must be present: send "
        "null for an unknown value in a column that allows null. Other keys are ignored."
    )
    lookup = slot.features
    if lookup is not None:  # the feature columns come from the online store, by entity id
        properties = record.setdefault("properties", {})
        for column in lookup.columns:
            properties.pop(column, None)
        for key in lookup.join_keys:
            properties.setdefault(
                key, {"title": key, "description": "The entity's id in the feature store."}
            )
        record["description"] += (
            f" The {', '.join(lookup.refs)} columns are looked up in the online store by "
            f"{', '.join(lookup.join_keys)}: a value sent for them is replaced."
        )
    # The server refuses a record without any of the columns (see validate_rows), whatever
    # the pydantic model would default.
    record["required"] = list(record.get("properties", {}))
    schemas["Record"] = record
    schemas["PredictRequest"] = _predict_request(list(record.get("properties", {})))
    schemas["PredictAnswer"] = _predict_answer(slot)
    _body(paths.get("/predict", {}).get("post"), "PredictRequest", "PredictAnswer")
    v2 = paths.get("/v2/models/{name}/infer", {}).get("post")
    if v2 is not None:
        schemas["InferRequest"] = _infer_request(record)
        _body(v2, "InferRequest", None)
    return document


def install(app: FastAPI, model: str) -> None:
    """Make ``app`` describe its prediction bodies from the version it serves."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        state = getattr(app.state, "shipyard", None)
        slot = None
        if state is not None and state.ready:
            plan = state.plan
            slot = next((plan.slots[a] for a in plan.deployment.routes if a in plan.slots), None)
        return describe_inputs(document, model, slot)

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(model: str) -> dict[str, dict[str, Any]]:
    """The operations of the prediction endpoints, without their bodies."""
    responses = {
        "200": {"description": "The predictions, with a request id per row"},
        "400": {"description": "Not JSON, or (v2) a request that breaks the protocol"},
        "413": {"description": "Over the body or row limit"},
        "422": {"description": "A record, field or value refused, each named with why"},
        "500": {"description": "The server failed: the body carries the request id"},
        "503": {"description": "No version may serve now"},
    }
    return {
        "/predict": {
            "summary": "Predict",
            "description": f"Predictions of {model} for rows as records or dataframe_split.",
            "operationId": "predict",
            "responses": {k: dict(v) for k, v in responses.items()},
        },
        "/v2/models/{name}/infer": {
            "summary": "Infer (Open Inference Protocol v2)",
            "description": f"Predictions of {model} for one tensor per input column.",
            "operationId": "infer",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {k: dict(v) for k, v in responses.items()},
        },
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(operation: dict[str, Any] | None, request: str, answer: str | None) -> None:
    if operation is None:
        return
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref(request)}},
    }
    if answer is not None:
        ok = operation.setdefault("responses", {}).setdefault("200", {})
        ok["content"] = {"application/json": {"schema": _ref(answer)}}


def _predict_request(columns: list[str]) -> dict[str, Any]:
    return {
        "title": "PredictRequest",
        "description": (
            f"Rows as records, or as MLflow's dataframe_split; at most {MAX_ROWS:,} rows. "
            "Any problem is a 4xx naming the record, the field and the reason."
        ),
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "records": {"type": "array", "items": _ref("Record"), "maxItems": MAX_ROWS}
                },
                "required": ["records"],
            },
            {
                "type": "object",
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {
                                "type": "array",
                                "items": {"type": "string", "enum": columns},
                            },
                            "data": {"type": "array", "items": {"type": "array"}},
                        },
                        "required": ["columns", "data"],
                    }
                },
                "required": ["dataframe_split"],
            },
        ],
    }


def _predict_answer(slot: Slot) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "predictions": {"type": "array", "items": {}},
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "alias": {"type": "string"},
        "request_ids": {
            "type": "array",
            "items": {"type": "string"},
            "description": "One per row: send it with /feedback and /kpi.",
        },
    }
    if slot.predictor.is_classifier:
        properties["probabilities"] = {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "number"}},
            "description": "Per row, each class's probability.",
        }
    return {"title": "PredictAnswer", "type": "object", "properties": properties}


def _infer_request(record: dict[str, Any]) -> dict[str, Any]:
    names = list(record.get("properties", {}))
    return {
        "title": "InferRequest",
        "description": (
            "Open Inference Protocol v2: one tensor per input column, shaped [rows] or "
            "[rows, 1], with the datatype of its column (GET /v2/models/{name} lists them)."
        ),
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": names},
                        "datatype": {"type": "string", "enum": sorted(DATATYPES)},
                        "shape": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 0},
                            "minItems": 1,
                            "maxItems": 2,
                        },
                        "data": {"type": "array"},
                    },
                    "required": ["name", "shape", "datatype", "data"],
                },
            },
        },
        "required": ["inputs"],
    }
