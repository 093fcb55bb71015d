"""Datasets and contracts through the team server: the same verbs and read models as
:class:`shipyard.data.datasets.Datasets` and :class:`shipyard.data.contract_registry.Contracts`.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.decode import decode, decode_many
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.client.connection import TRANSFER_TIMEOUT, ServerConnection, segment
from shipyard.client.unsupported import NotAvailableRemotelyError
from shipyard.data.contract_registry import ContractSummary, ContractVersion
from shipyard.data.validation_report import ValidationReport
from shipyard.data.versions import DatasetSummary, DatasetVersion
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl

    from shipyard.data.datasets import DataInput, OnInvalid

__all__ = ["RemoteContracts", "RemoteDatasets"]

_TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


class RemoteDatasets:
    """The dataset registry on the server: ``add``, ``get``, ``list``, ``versions``, plus
    ``export``, ``diff``, ``lineage`` and ``validate``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def _version(self, doc: Any) -> DatasetVersion:
        return decode(DatasetVersion, doc, _service=self)

    def add(
        self,
        name: str,
        data: DataInput,
        *,
        message: str = "",
        tags: Mapping[str, str] | None = None,
        parents: Iterable[str] = (),
        contract: str | None = None,
        on_invalid: OnInvalid = "reject",
        progress: Progress = NO_PROGRESS,
        allow_ragged: bool = False,
    ) -> DatasetVersion:
        """Upload a table (a CSV, Parquet or JSON Lines file, or a DataFrame) as a new version
        of ``name``; checked on the server exactly as :meth:`Datasets.add` checks it.

        Raises:
            NotAvailableRemotelyError: ``data`` is a folder (file trees are added locally).
            CheckFailedError: the data fails its contract (``details["report"]``).
        """
        fields: dict[str, str] = {"message": message, "on_invalid": on_invalid}
        if tags:
            fields["tags"] = json.dumps(dict(tags))
        if contract is not None:
            fields["contract"] = contract
        if allow_ragged:
            fields["allow_ragged"] = "true"
        parent_refs = list(parents)
        if parent_refs:
            fields["parents"] = json.dumps(parent_refs)
        with _upload_source(data) as (filename, handle, size):
            progress.stage(f"uploading {filename}", total=size)
            doc = self._conn.json(
                "POST",
                f"/datasets/{segment(name)}",
                data=fields,
                files={"file": (filename, handle, "application/octet-stream")},
                timeout=TRANSFER_TIMEOUT,
            )
            progress.advance(size)
        return self._version(doc)

    def validate(self, ref: str, *, contract: str | None = None) -> ValidationReport:
        """Validate a version against a contract (default: the bound one); the report is
        stored with the version."""
        doc = self._conn.json(
            "POST", f"/datasets/{segment(ref)}/validate", json_body={"contract": contract}
        )
        return decode(ValidationReport, doc)

    def get(self, ref: str) -> DatasetVersion:
        """The version a reference points at."""
        return self._version(self._conn.json("GET", f"/datasets/{segment(ref)}"))

    def list(self) -> builtins.list[DatasetSummary]:
        """Every dataset with its latest version."""
        return decode_many(DatasetSummary, self._conn.json("GET", "/datasets"))

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of a dataset, oldest first."""
        docs = self._conn.json("GET", f"/datasets/{segment(name)}/versions")
        return [self._version(d) for d in docs]

    def diff(self, ref_a: str, ref_b: str) -> dict[str, Any]:
        """Schema, row-count and statistic changes from ``ref_a`` to ``ref_b``."""
        doc: dict[str, Any] = self._conn.json(
            "GET", f"/datasets/{segment(ref_b)}/diff", params={"against": ref_a}
        )
        return doc

    def lineage(self, ref: str) -> dict[str, Any]:
        """Upstream and downstream of a version."""
        doc: dict[str, Any] = self._conn.json("GET", f"/datasets/{segment(ref)}/lineage")
        return doc

    def export(self, ref: str, dest: str | Path, *, progress: Progress = NO_PROGRESS) -> Path:
        """Download a table version to ``dest`` (.csv, .parquet or .jsonl), replacing it
        atomically; the server logs the read.

        Raises:
            InvalidInputError: unsupported extension, or ``dest`` is a folder.
            NotAvailableRemotelyError: the version is a file tree.
        """
        dest = Path(dest).expanduser()
        fmt = _TABLE_SUFFIXES.get(dest.suffix.lower())
        if fmt is None:
            raise InvalidInputError(f"{dest}: choose an output ending in .csv, .parquet or .jsonl")
        if dest.is_dir():
            raise InvalidInputError(f"{dest} is a folder; give a file name")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with open(tmp, "wb") as out:
                self._download(ref, fmt, out, progress)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def read_polars(self, v: DatasetVersion, *, via: str = "api") -> pl.DataFrame:
        """Download a table version into memory (the server logs the read)."""
        import polars as pl

        buffer = io.BytesIO()
        self._download(v.ref, "parquet", buffer, NO_PROGRESS)
        buffer.seek(0)
        return pl.read_parquet(buffer)

    def _download(self, ref: str, fmt: str, out: Any, progress: Progress) -> None:
        with self._conn.stream(
            "GET", f"/datasets/{segment(ref)}/download", params={"format": fmt}
        ) as response:
            total = response.headers.get("content-length")
            progress.stage(f"downloading {ref}", total=int(total) if total else None)
            for chunk in response.iter_bytes():
                out.write(chunk)
                progress.advance(len(chunk))


class RemoteContracts:
    """Data contracts on the server: ``add``, ``get``, ``list``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def add(
        self, name: str, source: str | os.PathLike[str] | Mapping[str, Any], *, message: str = ""
    ) -> ContractVersion:
        """Store a new version of contract ``name`` from a YAML file (or a mapping)."""
        if isinstance(source, Mapping):
            import yaml

            text = yaml.safe_dump(dict(source), sort_keys=False)
        else:
            text = Path(source).read_text(encoding="utf-8")
        doc = self._conn.json(
            "POST", f"/contracts/{segment(name)}", json_body={"text": text, "message": message}
        )
        return decode(ContractVersion, doc)

    def get(self, ref: str) -> ContractVersion:
        return decode(ContractVersion, self._conn.json("GET", f"/contracts/{segment(ref)}"))

    def list(self) -> builtins.list[ContractSummary]:
        return decode_many(ContractSummary, self._conn.json("GET", "/contracts"))


class _Upload:
    """The file to send for ``data add``: a path as it is, a DataFrame as Parquet."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._handle: Any = None

    def __enter__(self) -> tuple[str, Any, int]:
        data = self._data
        if isinstance(data, str | os.PathLike):
            path = Path(data).expanduser()
            if path.is_dir():
                raise NotAvailableRemotelyError(
                    f"{path} is a folder: file trees cannot be added through the shipyard server "
                    "yet; add a table (CSV, Parquet, JSON Lines) or add the folder where the "
                    "project's stores are reachable"
                )
            if not path.is_file():
                raise InvalidInputError(f"{path}: no such file")
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-upload-")
            path = Path(self._tmp.name) / "data.parquet"
            _write_parquet(data, path)
        self._handle = open(path, "rb")
        return path.name, self._handle, path.stat().st_size

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _upload_source(data: Any) -> _Upload:
    return _Upload(data)


def _write_parquet(data: Any, out: Path) -> None:
    import polars as pl

    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if not isinstance(data, pl.DataFrame):
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise InvalidInputError(
                f"cannot add {type(data).__name__}: give a file path or a pandas or polars "
                "DataFrame"
            )
        data = pl.from_pandas(data)
    data.write_parquet(out)
