"""What a step returns, stored content-addressed, and given back to the steps that use it.

An output record is a small JSON document::

    {"kind": "json" | "table" | "array" | "file" | "dataset" | "model", "digest": "blake3:…",
     "ref": "name@N" (datasets and models), "format": "polars" | "pandas" (tables),
     "name": file name (files)}

Values are stored without pickle: JSON as canonical JSON, tables as Parquet, arrays as
``.npy`` (``allow_pickle=False``), files as their bytes. The digest is the stored blob's, so
two runs that produce the same content produce the same digest, whatever executor ran them.

A model a step registers (``@step(model=...)``) gets a signature, so that it can be served
and predicted with: from the input example the step returns with it
(:class:`ModelOutput`), else from the first table the step was given (a DataFrame or a table
dataset version) that has every column the model was fitted on. A model registered without
one has a ``warning`` in its output record. The signature is not part of the model's
digest, so caching and reproduction compare the same thing with or without it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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

__all__ = ["ModelOutput", "StepProject", "load_output", "output_exists", "store_output"]

#: How many rows of a step's table serve as the input example of the model it registers.
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class ModelOutput:
    """What a ``@step(model=...)`` may return instead of the bare model: the fitted model
    and an input example (a pandas or polars DataFrame of what it predicts from), from which
    the registered version's signature is inferred.

    >>> @step(model="churn")                                     # doctest: +SKIP
    ... def fit(x: pl.DataFrame, y: list[int]) -> ModelOutput:
    ...     return ModelOutput(LogisticRegression().fit(x, y), input_example=x.head(5))

    Without it the signature comes from the step's first table argument that has every
    column the model was fitted on."""

    model: Any
    input_example: Any = None


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
    arguments: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Store what step ``step`` returned, as an artifact of its run (``outputs/…``, so
    the run owns the blob) or as a dataset or model version made by the run, and return its
    output record. ``arguments`` (what the step was called with) are where the signature of
    a model it registers is inferred from when it returns no :class:`ModelOutput`. ``tags``
    (``@step(tags=...)``) are the tags of the dataset or model version it registers.

    Raises:
        InvalidInputError: a value shipyard cannot store without pickle (the message says
            what to return instead), or a :class:`ModelOutput` from a step that registers no
            model, or whose input example does not fit the model.
        CheckFailedError: the version lacks what the project's annotation policy requires
            (the message says how to give the step its tags).
    """
    from shipyard.errors import CheckFailedError

    try:
        if dataset is not None:
            v = project.datasets.add(dataset, value, message=message, tags=tags)
            run.log_output(v.ref)
            return {"kind": "dataset", "ref": v.ref, "digest": v.digest}
        if model is not None:
            return _register(
                project,
                value,
                step=step,
                run=run,
                model=model,
                message=message,
                arguments=arguments or {},
                tags=tags,
            )
    except CheckFailedError as exc:
        raise _annotation_hint(exc, step, dataset, model, tags or {}) from None
    if isinstance(value, ModelOutput):
        raise InvalidInputError(
            f"step {step} returned a ModelOutput but registers no model: mark it @step(model=NAME)"
        )
    data, record = _encode(value, step)
    name = record.get("name") or f"{step}.{_SUFFIX[record['kind']]}"
    stored = run.put_artifact(f"outputs/{name}", io.BytesIO(data))
    return {**record, "digest": stored.digest}


def _register(
    project: StepProject,
    value: Any,
    *,
    step: str,
    run: ActiveRun,
    model: str,
    message: str,
    arguments: Mapping[str, Any],
    tags: Mapping[str, str] | None,
) -> dict[str, Any]:
    """Register the model a step returned, with a signature when one can be had."""
    if isinstance(value, ModelOutput):
        fitted, example = value.model, value.input_example
        if example is None:
            example = _example_from(project, fitted, arguments)
    else:
        fitted, example = value, _example_from(project, value, arguments)
    mv = project.models.register_model(
        model, fitted, run_id=run.id, input_example=example, description=message, tags=tags
    )
    record: dict[str, Any] = {"kind": "model", "ref": mv.ref, "digest": mv.digest}
    if mv.signature is None:
        why = (
            "the model was fitted without column names"
            if getattr(fitted, "feature_names_in_", None) is None
            else f"step {step} was given no table with every column the model was fitted on"
        )
        warning = (
            f"model {mv.ref} has no signature, so it cannot be served or used by "
            f"`models predict`: {why}; return shipyard.pipelines.ModelOutput(model, "
            "input_example=frame) from the step"
        )
        record["warning"] = warning
        run.set_tag("shipyard.warning", warning)
    return record


def _annotation_hint(
    exc: Any, step: str, dataset: str | None, model: str | None, tags: Mapping[str, str]
) -> Any:
    """The annotation policy's refusal of what step ``step`` registers, with the way a step
    gives tags: ``@step(model="credit", tags={"team": ...})``."""
    from shipyard.governance.annotations import missing_tags, with_hint

    kind, name = ("dataset", dataset) if dataset is not None else ("model", model)
    wanted = {**{k: repr(v) for k, v in tags.items()}, **dict.fromkeys(missing_tags(exc), "...")}
    given = ", ".join(f"{k!r}: {v}" for k, v in wanted.items())
    return with_hint(exc, f"give the step its tags: @step({kind}={name!r}, tags={{{given}}})")


def _example_from(project: StepProject, fitted: Any, arguments: Mapping[str, Any]) -> Any:
    """A few rows of the first table among ``arguments`` (in their order, lists included)
    whose columns cover what ``fitted`` was fitted on, from which a signature can be
    inferred; None when there is none, or the model does not name its columns. Of a dataset
    version only those columns are read."""
    from shipyard.registry.signatures import infer_signature

    names = getattr(fitted, "feature_names_in_", None)
    if names is None:
        return None
    wanted = [str(n) for n in names]
    for candidate in _tables(arguments.values()):
        columns = _columns(candidate)
        if columns is None or not set(wanted) <= columns:
            continue
        if _is_dataset_version(candidate):
            frame = project.datasets.read_polars(
                candidate, via="pipeline.signature", columns=wanted
            )
        else:
            frame = candidate
        example = frame.head(EXAMPLE_ROWS)
        try:
            infer_signature(fitted, example)
        except InvalidInputError:  # a column type no signature describes: try the next
            continue
        return example
    return None


def _tables(values: Any) -> Iterator[Any]:
    for v in values:
        if isinstance(v, list | tuple):
            yield from _tables(v)
        elif _columns(v) is not None:
            yield v


def _columns(value: Any) -> set[str] | None:
    if _is_dataset_version(value):
        return set(value.columns) if value.kind == "table" else None
    kind = type(value).__module__.split(".")[0]
    if kind in ("polars", "pandas") and type(value).__name__ == "DataFrame":
        return {str(c) for c in value.columns}
    return None


def _is_dataset_version(value: Any) -> bool:
    from shipyard.data.versions import DatasetVersion

    return isinstance(value, DatasetVersion)


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
