"""Reading and checking prediction requests: JSON bodies within a size limit, records or
MLflow's ``dataframe_split`` or Open Inference Protocol v2 tensors (:mod:`shipyard.serving.v2`),
then every row against the model's signature, the contract of the data it was trained on, and
the columns its pipeline cannot take missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from fastapi import Request

    from shipyard.serving.app import State
    from shipyard.serving.reload import Slot

__all__ = [
    "MAX_ROWS",
    "RequestError",
    "json_body",
    "parse_json",
    "predict_body",
    "read_body",
    "request_rows",
    "sized",
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


def validate_rows(slot: Slot, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check every row with the version's row checks (:class:`~shipyard.registry.row_checks.
    RowChecks`: every signature column present, its type, the training data's contracts, and
    no missing value where the pipeline cannot take one). Returns the rows as the signature's
    model reads them (ISO text turned into datetimes...), ready for the compiled model or
    :meth:`CheckedPredictor.frame_from_records`.

    Raises:
        RequestError: 422 naming each record, field and reason (at most 50).
    """
    if not slot.checks.models:
        raise RequestError(
            422, "invalid_input", f"{slot.ref} has no signature, so requests cannot be checked"
        )
    errors: list[dict[str, Any]] = []
    checked: list[Any] = []
    check = slot.checks.check
    for i, row in enumerate(rows):
        checked.append(check(row, i, errors))
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
