"""shipyard's read models in the MLflow protocol's JSON shapes, and its opaque page tokens.

MLflow writes int64 fields (times, steps) as JSON numbers and ids as strings; an experiment's
id is shipyard's integer id as text, and ``"0"`` (the id the ``mlflow`` client uses when no
experiment is set) stands for shipyard's ``default`` experiment. A metric value that is NaN or
infinite is written as ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (the protobuf JSON mapping
MLflow's server uses) by the server's response class, for every route.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from shipyard.server.mlflow_api.errors import MlflowError
from shipyard.tracking.active import EXTERNAL_PREFIX
from shipyard.tracking.records import RunRecord
from shipyard.tracking.runs import Experiment

__all__ = [
    "DEFAULT_EXPERIMENT",
    "decode_page_token",
    "encode_page_token",
    "experiment_json",
    "run_info_json",
    "run_json",
]

DEFAULT_EXPERIMENT = "default"
#: What run_view_type / view_type may say, as a lifecycle for Runs.search.
VIEW_TYPES = {
    "ACTIVE_ONLY": "active",
    "DELETED_ONLY": "deleted",
    "ALL": "all",
    "1": "active",
    "2": "deleted",
    "3": "all",
}


def experiment_json(e: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": str(e.id),
        "name": e.name,
        "artifact_location": f"mlflow-artifacts:/{e.id}",
        "lifecycle_stage": "active",
        "tags": [],
    }
    if e.last_run is not None:
        out["last_update_time"] = e.last_run
    return out


def run_info_json(r: RunRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": str(r.experiment_id),
        "user_id": r.created_by,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": f"mlflow-artifacts:/{r.experiment_id}/{r.id}/artifacts",
        "lifecycle_stage": r.lifecycle,
    }
    if r.end_time is not None:
        out["end_time"] = r.end_time
    return out


def _dataset_input(r: RunRecord, item: dict[str, str]) -> dict[str, Any]:
    name, context = item["dataset"], item["context"]
    if name.startswith(EXTERNAL_PREFIX):
        described = r.external_inputs.get(f"{name}|{context}")
        if described is not None:
            return described
    tags = [{"key": "mlflow.data.context", "value": context}] if context else []
    return {
        "tags": tags,
        "dataset": {
            "name": name,
            "digest": item["digest"].removeprefix("blake3:")[:16],
            "source_type": "shipyard",
            "source": json.dumps({"dataset": name, "digest": item["digest"]}),
        },
    }


def run_json(r: RunRecord) -> dict[str, Any]:
    return {
        "info": run_info_json(r),
        "data": {
            "metrics": [
                {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                for m in r.latest_metrics
            ],
            "params": [{"key": k, "value": v} for k, v in r.params.items()],
            "tags": [{"key": k, "value": v} for k, v in r.tags.items()],
        },
        "inputs": {"dataset_inputs": [_dataset_input(r, item) for item in r.inputs]},
    }


def _digest(query: Any) -> str:
    text = json.dumps(query, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_page_token(offset: int, query: Any) -> str:
    """An opaque token for the page at ``offset`` of ``query`` (any JSON-able value)."""
    raw = json.dumps({"offset": offset, "query": _digest(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str | None, query: Any) -> int:
    """The offset in a token from :func:`encode_page_token` for the same ``query`` (0 for no
    token).

    Raises:
        MlflowError: INVALID_PARAMETER_VALUE for a malformed token or one made for another
            query.
    """
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, digest = int(data["offset"]), str(data["query"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            "Invalid page token: pass the next_page_token of the previous response unchanged",
        ) from None
    if offset < 0 or digest != _digest(query):
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            "Invalid page token: it was made for another search; page tokens only continue "
            "the search that returned them",
        )
    return offset
