"""Reading and checking prediction requests: JSON bodies within a size limit, records or
MLflow's ``dataframe_split`` or Open Inference Protocol v2 tensors, then every row against the
model's signature and the contract of the data it was trained on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import InvalidInputError
from shipyard.registry.row_checks import check_row

if TYPE_CHECKING:
    from fastapi import Request

    from shipyard.serving.app import Slot, State

__all__ = [
    "MAX_ROWS",
    "RequestError",
    "infer_body",
    "json_body",
    "parse_json",
    "predict_body",
    "read_body",
    "request_rows",
    "validate_rows",
]

MAX_ROWS = 10_000


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
    return infer_body(doc) if endpoint == "/v2/infer" else predict_body(doc)


def predict_body(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise RequestError(422, "invalid_input", 'expected {"records": [{...}, ...]}')
    if "records" in doc:
        records = doc["records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError(422, "invalid_input", '"records" must be a list of objects')
        return _sized(records)
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
        return _sized(rows)
    raise RequestError(
        422, "invalid_input", 'expected {"records": [...]} or {"dataframe_split": {...}}'
    )


def infer_body(doc: Any) -> list[dict[str, Any]]:
    """Open Inference Protocol v2: one tensor per input column."""
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(422, "invalid_input", '"inputs" must be a non-empty list of tensors')
    columns: dict[str, list[Any]] = {}
    for i, t in enumerate(inputs):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("name"), str)
            or not isinstance(t.get("data"), list)
        ):
            raise RequestError(422, "invalid_input", f"inputs[{i}] needs a name and data")
        columns[t["name"]] = t["data"]
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1:
        raise RequestError(422, "invalid_input", "every input tensor needs the same length")
    n = sizes.pop()
    return _sized([{c: v[i] for c, v in columns.items()} for i in range(n)])


def _sized(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        raise RequestError(422, "invalid_input", "no rows to predict")
    if len(rows) > MAX_ROWS:
        raise RequestError(413, "body_too_large", f"at most {MAX_ROWS:,} rows per request")
    return rows


def validate_rows(slot: Slot, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check every row: all signature columns present, then each of ``slot.checks``
    (:func:`request_checks`). Returns the rows as the signature's model reads them (ISO
    text turned into datetimes...), ready for the compiled model or :meth:`CheckedPredictor.
    frame_from_records`.

    Raises:
        RequestError: 422 naming each record, field and reason (at most 50).
    """
    if not slot.checks:
        raise RequestError(
            422, "invalid_input", f"{slot.ref} has no signature, so requests cannot be checked"
        )
    errors: list[dict[str, Any]] = []
    checked: list[Any] = []
    for i, row in enumerate(rows):
        checked.append(check_row(slot.checks, slot.columns, row, i, errors))
        if len(errors) >= 50:
            break
    _refuse(errors)
    return checked


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
