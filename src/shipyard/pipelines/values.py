"""What a step returns, stored content-addressed, and given back to the steps that use it.

An output record is a small JSON document::

    {"kind": "json" | "table" | "array" | "file" | "dataset" | "model", "digest": "blake3:…",
     "ref": "name@N" (datasets and models), "format": "polars" | "pandas" (tables),
     "name": file name (files)}

Values are stored without pickle: JSON as canonical JSON, tables as Parquet, arrays as
``.npy`` (``allow_pickle=False``), files as their bytes. The digest is the stored blob's, so
two runs that produce the same content produce the same digest, whatever executor ran them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shipyard._internal.hashing import canonical_json
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.data.datasets import Datasets
    from shipyard.governance.reports import Evaluations
    from shipyard.registry.models import Models
    from shipyard.stores.artifacts import ArtifactStore
    from shipyard.tracking.active import ActiveRun
    from shipyard.tracking.runs import Runs

__all__ = ["StepProject", "load_output", "output_exists", "store_output"]


class StepProject(Protocol):
    """The services a step's task works through: a :class:`~shipyard.Project` opened on a
    worker, or the services of the process that started the run."""

    @property
    def runs(self) -> Runs: ...

    @property
    def datasets(self) -> Datasets: ...

    @property
    def models(self) -> Models: ...

    @property
    def artifacts(self) -> ArtifactStore: ...

    @property
    def evaluations(self) -> Evaluations: ...


def store_output(
    project: StepProject,
    value: Any,
    *,
    step: str,
    run: ActiveRun,
    dataset: str | None,
    model: str | None,
    message: str,
) -> dict[str, Any]:
    """Store what step ``step`` returned, as an artifact of its run (``outputs/…``, so
    the run owns the blob) or as a dataset or model version made by the run, and return its
    output record.

    Raises:
        InvalidInputError: a value shipyard cannot store without pickle (the message says
            what to return instead).
    """
    if dataset is not None:
        v = project.datasets.add(dataset, value, message=message)
        run.log_output(v.ref)
        return {"kind": "dataset", "ref": v.ref, "digest": v.digest}
    if model is not None:
        mv = project.models.register_model(model, value, run_id=run.id, description=message)
        return {"kind": "model", "ref": mv.ref, "digest": mv.digest}
    data, record = _encode(value, step)
    name = record.get("name") or f"{step}.{_SUFFIX[record['kind']]}"
    stored = run.put_artifact(f"outputs/{name}", io.BytesIO(data))
    return {**record, "digest": stored.digest}


_SUFFIX = {"json": "json", "table": "parquet", "array": "npy"}


def _encode(value: Any, step: str) -> tuple[bytes, dict[str, Any]]:
    if isinstance(value, Path):
        if not value.is_file():
            raise InvalidInputError(f"step {step} returned {value}, which is not a file")
        return value.read_bytes(), {"kind": "file", "name": value.name}
    kind = type(value).__module__.split(".")[0]
    if kind == "polars" and type(value).__name__ == "DataFrame":
        buf = io.BytesIO()
        value.write_parquet(buf, statistics=False)
        return buf.getvalue(), {"kind": "table", "format": "polars"}
    if kind == "pandas" and type(value).__name__ == "DataFrame":
        import polars as pl

        buf = io.BytesIO()
        pl.from_pandas(value).write_parquet(buf, statistics=False)
        return buf.getvalue(), {"kind": "table", "format": "pandas"}
    if kind == "numpy" and type(value).__name__ == "ndarray":
        import numpy as np

        buf = io.BytesIO()
        try:
            np.save(buf, value, allow_pickle=False)
        except ValueError:
            raise InvalidInputError(
                f"step {step} returned a numpy array of objects; return numbers or text"
            ) from None
        return buf.getvalue(), {"kind": "array"}
    try:
        return canonical_json(_plain(value)), {"kind": "json"}
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"step {step} returned a {type(value).__name__}, which shipyard cannot store "
            "without pickle: return JSON values, a DataFrame, a numpy array or a file path, "
            "or register it with @step(dataset=...) or @step(model=...)"
        ) from None


def _plain(value: Any) -> Any:
    # Round-trip through JSON so that tuples come back as lists on every executor alike.
    return json.loads(json.dumps(value, allow_nan=False))


def load_output(project: StepProject, record: dict[str, Any], scratch: Path) -> Any:
    """The value an output record stands for, as a step receives it: a DatasetVersion, a
    ModelVersion, a polars (or pandas) DataFrame, a numpy array, a file path under
    ``scratch``, or a JSON value."""
    kind = record["kind"]
    if kind == "dataset":
        return project.datasets.get(record["ref"])
    if kind == "model":
        return project.models.get(record["ref"])
    data = project.artifacts.read_bytes(record["digest"], owner="pipeline step output")
    if kind == "json":
        return json.loads(data)
    if kind == "table":
        import polars as pl

        frame = pl.read_parquet(io.BytesIO(data))
        return frame.to_pandas() if record.get("format") == "pandas" else frame
    if kind == "array":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "file":
        folder = scratch / record["digest"].split(":", 1)[-1][:16]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / record["name"]
        if not path.exists():
            path.write_bytes(data)
        return path
    raise InvalidInputError(f"unknown step output kind {kind!r}")


def output_exists(project: StepProject, record: dict[str, Any]) -> bool:
    """Whether what a recorded output stands for is still there to reuse."""
    from shipyard.errors import NotFoundError

    try:
        if record["kind"] == "dataset":
            return bool(project.datasets.get(record["ref"]).digest == record["digest"])
        if record["kind"] == "model":
            return bool(project.models.get(record["ref"]).digest == record["digest"])
    except NotFoundError:
        return False
    return project.artifacts.exists(record["digest"])
