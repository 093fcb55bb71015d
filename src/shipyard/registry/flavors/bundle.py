"""The file of a model version that is not a bare skops file: a zip archive of a manifest and
the model's parts, each in its library's own safe format.

An XGBoost model inside a scikit-learn Pipeline is two parts: the pipeline, with its last
step left out, written with skops (its trusted-type check applies), and the booster in
XGBoost's native UBJSON format. One version is one file, so its digest covers every part.

``shipyard-model.json`` comes first and says what the archive holds::

    {"format": "shipyard-model", "version": 1, "flavor": "xgboost",
     "parts": {"model": "model.ubj", "pipeline": "pipeline.skops"}, ...}

Reading never runs code: the manifest is JSON, each part is read as bytes and handed to its
library's parser (skops with the trusted-type check, XGBoost's and LightGBM's model
parsers, onnxruntime), and an archive whose entries are not the ones its manifest names, or
that is larger than :data:`MAX_BYTES` once expanded, is refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard._internal.files import write_bytes_atomic
from shipyard.errors import InvalidInputError

__all__ = ["MANIFEST", "MAX_BYTES", "Bundle", "is_bundle", "read_bundle", "write_bundle"]

MANIFEST = "shipyard-model.json"
FORMAT = "shipyard-model"
VERSION = 1
#: The largest archive, expanded, that is read (a zip bomb is refused before it is expanded).
MAX_BYTES = 8 * 1024**3
_MAX_MANIFEST = 1024**2


@dataclass(frozen=True)
class Bundle:
    """An archive read back: its manifest and the bytes of each part, by part name."""

    manifest: dict[str, Any]
    parts: dict[str, bytes]

    @property
    def flavor(self) -> str:
        return str(self.manifest["flavor"])


def write_bundle(
    path: Path, flavor: str, parts: Mapping[str, tuple[str, bytes]], **fields: Any
) -> None:
    """Write the archive ``path`` atomically: ``parts`` maps a part name to its file name in
    the archive and its bytes; ``fields`` go into the manifest beside them."""
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "flavor": flavor,
        "parts": {name: file for name, (file, _) in parts.items()},
        **fields,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        for file, data in parts.values():
            archive.writestr(file, data)
    write_bytes_atomic(path, buffer.getvalue())


def is_bundle(data: bytes) -> bool:
    """Whether ``data`` is an archive written by :func:`write_bundle` (a skops file is a zip
    archive too, without the manifest)."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return MANIFEST in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def read_bundle(data: bytes, where: str) -> Bundle:
    """The manifest and parts of the archive ``data`` (``where`` names it in errors).

    Raises:
        InvalidInputError: not such an archive, a manifest that does not list exactly its
            entries, or an archive too large once expanded.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            sizes = {i.filename: i.file_size for i in infos}
            if sizes.get(MANIFEST, _MAX_MANIFEST + 1) > _MAX_MANIFEST:
                raise _bad(where, f"no {MANIFEST} of at most 1 MiB")
            if sum(sizes.values()) > MAX_BYTES or len(infos) != len(sizes):
                raise _bad(where, "too large once expanded, or with repeated entries")
            manifest = json.loads(archive.read(MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise _bad(where, "the manifest is not a shipyard model manifest")
            if manifest.get("version") != VERSION:
                raise _bad(where, f"manifest version {manifest.get('version')!r} is not {VERSION}")
            files = manifest.get("parts")
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise _bad(where, "the manifest's parts are not a mapping of names to files")
            if set(files.values()) | {MANIFEST} != set(sizes) or len(set(files.values())) != len(
                files
            ):
                raise _bad(where, "its entries are not the parts its manifest names")
            parts = {name: archive.read(file) for name, file in files.items()}
    except InvalidInputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise _bad(where, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(manifest.get("flavor"), str):
        raise _bad(where, "the manifest names no flavor")
    return Bundle(manifest, parts)


def _bad(where: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: not a readable shipyard model archive: {why}")
