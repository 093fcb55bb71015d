"""Errors in the MLflow protocol's shape: ``{"error_code": ..., "message": ...}`` with the
HTTP status the MLflow server gives each code."""

from __future__ import annotations

from fastapi.responses import Response

from shipyard.errors import ShipyardError
from shipyard.server.responses import JSON

__all__ = ["MlflowError", "mlflow_error_response"]

#: shipyard's error codes as MLflow's, with MLflow's HTTP status for each.
_FROM_SHIPYARD = {
    "invalid_input": ("INVALID_PARAMETER_VALUE", 400),
    "invalid_ref": ("INVALID_PARAMETER_VALUE", 400),
    "filter_syntax": ("INVALID_PARAMETER_VALUE", 400),
    "not_found": ("RESOURCE_DOES_NOT_EXIST", 404),
    "conflict": ("RESOURCE_ALREADY_EXISTS", 400),
    "permission": ("PERMISSION_DENIED", 403),
    "unauthenticated": ("UNAUTHENTICATED", 401),
    "too_many_failures": ("REQUEST_LIMIT_EXCEEDED", 429),
    "check_failed": ("INVALID_STATE", 400),
    "method_not_allowed": ("ENDPOINT_NOT_FOUND", 405),
}
_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
}


class MlflowError(ShipyardError):
    """An error raised by the MLflow routes with one of MLflow's error codes."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code = error_code
        self.http_status = _STATUS.get(error_code, 400)


def mlflow_error_response(status: int, code: str, message: str) -> Response:
    """The response for an error raised under the MLflow prefixes (``code`` is shipyard's or
    already MLflow's)."""
    if code in _STATUS:
        error_code, status = code, _STATUS[code]
    elif code in _FROM_SHIPYARD:
        error_code, status = _FROM_SHIPYARD[code]
    elif status == 404:
        error_code = "ENDPOINT_NOT_FOUND"
    elif status >= 500:
        error_code = "INTERNAL_ERROR"
    else:
        error_code = "BAD_REQUEST"
    headers = {"WWW-Authenticate": 'Bearer, Basic realm="shipyard"'} if status == 401 else None
    return JSON({"error_code": error_code, "message": message}, status, headers=headers)
