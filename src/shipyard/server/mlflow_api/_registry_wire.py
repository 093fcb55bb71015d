"""The registry's read models in the MLflow protocol's JSON shapes (``RegisteredModel``,
``ModelVersion``): int64 times as JSON numbers of milliseconds, version numbers as text, a
version's ``status`` READY (shipyard registers synchronously) and shipyard's own status in
``status_message``; stages are gone in MLflow 3, so ``current_stage`` is always ``None``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shipyard.registry.mlflow_registry import RegistryModel, RegistryVersion
from shipyard.server.mlflow_api.errors import MlflowError

__all__ = ["download_uri", "model_json", "parse_version", "tags_json", "version_json"]


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def tags_json(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def download_uri(artifact_path: str) -> str:
    """The URI the client downloads a version's MLflow model directory from (through the
    artifact proxy)."""
    return f"mlflow-artifacts:/{artifact_path}"


def version_json(v: RegistryVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": _ms(v.created_at),
        "last_updated_timestamp": _ms(v.created_at),
        "user_id": v.created_by,
        "current_stage": "None",
        "description": v.description,
        "source": v.source,
        "status": "READY",
        "status_message": f"shipyard status: {v.status}",
        "tags": tags_json(v.tags),
        "aliases": v.aliases,
    }
    if v.run_id:
        out["run_id"] = v.run_id
    if v.logged_model_id:
        out["model_id"] = v.logged_model_id
    return out


def model_json(m: RegistryModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "creation_timestamp": _ms(m.created_at),
        "last_updated_timestamp": _ms(m.updated_at),
        "user_id": m.created_by,
        "description": m.description,
        "latest_versions": [version_json(m.latest)] if m.latest else [],
        "tags": tags_json(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
    }


def parse_version(version: str | int) -> int:
    """A version number as the protocol sends it (text).

    Raises:
        MlflowError: INVALID_PARAMETER_VALUE, for anything but a positive whole number.
    """
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"invalid model version {version!r}: a version is a whole number such as '1'",
        )
    return int(text)
