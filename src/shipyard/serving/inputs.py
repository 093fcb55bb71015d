"""Reading and checking prediction requests: JSON bodies within a size limit, records or
MLflow's ``dataframe_split`` or Open Inference Protocol v2 tensors (:mod:`shipyard.serving.v2`),
then every row against the model's signature, the contract of the data it was trained on, and
the columns its pipeline cannot take missing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from fastapi import Request

    from shipyard.data.contracts import Contract
    from shipyard.registry.signatures import Signature
    from shipyard.serving.app import State
    from shipyard.serving.reload import Slot

__all__ = [
    "MAX_ROWS",
    "RequestError",
    "json_body",
    "parse_json",
    "predict_body",
    "read_body",
    "request_checks",
    "request_rows",
    "sized",
    "validate_rows",
]

MAX_ROWS = 10_000
MISSING = "missing (send null for an unknown value)"
NO_IMPUTER = "the model cannot take a missing value here (its pipeline has no imputer for it)"


class RequestError(Exception):
    """A request the server refuses: HTTP status, reason label, message and details."""

    def __init__(self, status: int, reason: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.details = status, reason, message, details


async def read_body(request: Request, state: State) -> bytes:
    """The request body, refused with 413 past the server's limit."""
    limit = state.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdecimal():
        if int(declared) > limit:
            raise RequestError(413, "body_too_large", f"the request body is over {limit:,} bytes")
        return await request.body()  # the server reads exactly the declared length
    body = bytearray()  # chunked: count while reading
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, "body_too_large", f"the request body is over {limit:,} bytes")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # also NaN, integers over 64 bits, nesting too deep
        raise RequestError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None


async def json_body(request: Request, state: State) -> Any:
    return parse_json(await read_body(request, state))


def request_rows(endpoint: str, doc: Any) -> list[dict[str, Any]]:
    """The rows of a request document sent to ``endpoint`` (``/predict`` or ``/v2/infer``)."""
    if endpoint == "/v2/infer":
        from shipyard.serving.v2 import infer_body

        return infer_body(doc)
    return predict_body(doc)


def predict_body(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise RequestError(422, "invalid_input", 'expected {"records": [{...}, ...]}')
    if "records" in doc:
        records = doc["records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError(422, "invalid_input", '"records" must be a list of objects')
        return sized(records)
    if "dataframe_split" in doc:
        split = doc["dataframe_split"]
        if (
            not isinstance(split, dict)
            or not isinstance(split.get("columns"), list)
            or not (isinstance(split.get("data"), list))
        ):
            raise RequestError(
                422,
                "invalid_input",
                '"dataframe_split" needs "columns" (names) and "data" (rows of values)',
            )
        columns = split["columns"]
        if not all(isinstance(c, str) for c in columns):
            raise RequestError(422, "invalid_input", "dataframe_split column names must be text")
        rows = []
        for i, row in enumerate(split["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise RequestError(
                    422,
                    "invalid_input",
                    f"dataframe_split row {i} has {len(row) if isinstance(row, list) else 'no'} "
                    f"values for {len(columns)} columns",
                )
            rows.append(dict(zip(columns, row, strict=True)))
        return sized(rows)
    raise RequestError(
        422, "invalid_input", 'expected {"records": [...]} or {"dataframe_split": {...}}'
    )


def sized(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows``, refused when empty (422) or more than :data:`MAX_ROWS` (413)."""
    if not rows:
        raise RequestError(422, "invalid_input", "no rows to predict")
    if len(rows) > MAX_ROWS:
        raise RequestError(413, "body_too_large", f"at most {MAX_ROWS:,} rows per request")
    return rows


def request_checks(signature: Signature | None, contracts: Sequence[Contract]) -> tuple[Any, ...]:
    """The pydantic models every request row must pass, in order: the signature's types and
    each contract of the training data (:meth:`Models.input_contracts`) limited to the model's
    inputs, so that a value outside the contract (an age of 250, an unknown category) is
    refused like a badly typed one.

    Where a single contract gives each shared column the signature's type (text and category
    count as one), both become a single model: one validation per row instead of two.
    Empty without a signature.
    """
    from dataclasses import replace

    from shipyard.data.contracts import DatasetChecks

    if signature is None:
        return ()
    inputs = signature.inputs
    subsets = []
    for contract in contracts:
        kept = {c: spec for c, spec in contract.columns.items() if c in inputs.columns}
        if kept:
            subsets.append((contract, kept))
    if not subsets:
        return (inputs.to_pydantic(),)
    if len(subsets) == 1:
        contract, kept = subsets[0]
        if all(_same_type(spec.type, inputs.columns[c].type) for c, spec in kept.items()):
            merged = {c: kept.get(c, spec) for c, spec in inputs.columns.items()}
            return (replace(inputs, columns=merged).to_pydantic(),)
    return (
        *(
            replace(contract, columns=kept, strict=False, checks=DatasetChecks()).to_pydantic()
            for contract, kept in subsets
        ),
        inputs.to_pydantic(),
    )


def _same_type(a: str, b: str) -> bool:
    text = ("string", "category")
    return a == b or (a in text and b in text)


def validate_rows(slot: Slot, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check every row: all signature columns present, then each of ``slot.checks``
    (:func:`request_checks`), then no missing value in a column the version's pipeline
    cannot take missing (``slot.no_nulls``, found when it loaded). Returns the rows as the
    signature's model reads them (ISO text turned into datetimes...), ready for the compiled
    model or :meth:`CheckedPredictor.frame_from_records`.

    Raises:
        RequestError: 422 naming each record, field and reason (at most 50).
    """
    if not slot.checks:
        raise RequestError(
            422, "invalid_input", f"{slot.ref} has no signature, so requests cannot be checked"
        )
    errors: list[dict[str, Any]] = []
    checked: list[Any] = []
    columns, no_nulls = slot.columns, slot.no_nulls
    for i, row in enumerate(rows):
        # Every column must be sent, even one that allows null (the OpenAPI document says so).
        missing = [c for c in columns if c not in row]
        if missing:
            errors += [{"record": i, "field": c, "reason": MISSING} for c in missing]
        else:
            for model in slot.checks:
                value = _check(model, row, i, errors)
                if value is None:
                    break
            else:
                for c in no_nulls:
                    if value[c] is None:
                        errors.append({"record": i, "field": c, "reason": NO_IMPUTER})
            checked.append(value)
        if len(errors) >= 50:
            break
    _refuse(errors)
    return checked


def _check(model: Any, row: dict[str, Any], index: int, errors: list[dict[str, Any]]) -> Any:
    """The row as ``model`` reads it, or None with its problems added to ``errors``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(row).model_dump(by_alias=True)
    except ValidationError as exc:
        from shipyard.registry.signatures import record_errors

        errors += record_errors(exc, index)
        return None


def _refuse(errors: list[dict[str, Any]]) -> None:
    if errors:
        shown = errors[:50]
        problems = [f"record {e['record']}, {e['field']}: {e['reason']}" for e in shown]
        raise RequestError(
            422,
            "invalid_input",
            InvalidInputError.from_problems("the records", problems).message,
            {"errors": shown},
        )
