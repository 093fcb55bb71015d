"""Batch scoring of files larger than memory: read a chunk, check it, predict, append."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.progress import Progress
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.registry.signatures import CheckedPredictor

__all__ = ["score_file"]

_INPUT = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def score_file(
    predictor: CheckedPredictor,
    source: Path,
    dest: Path,
    chunk_size: int,
    progress: Progress,
) -> dict[str, Any]:
    """Score ``source`` (CSV or Parquet) into ``dest`` (.csv or .parquet), ``chunk_size`` rows
    at a time, writing under a temporary name that is renamed when complete. The input
    columns are written with the types they were read with (an int column stays int even in
    a chunk where it has a gap), followed by the outputs.

    Raises:
        InvalidInputError: unknown formats, an unreadable input, rows that do not match the
            model's signature (the message names the chunk's first row), or a chunk that
            cannot be written with the column types of the first (the message names the
            input and the rows).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if chunk_size < 1:
        raise InvalidInputError("--chunk-size must be at least 1")
    fmt = _INPUT.get(source.suffix.lower())
    if fmt is None or not source.is_file():
        raise InvalidInputError(f"{source}: give an existing .csv or .parquet file to score")
    out_fmt = _INPUT.get(dest.suffix.lower())
    if out_fmt is None:
        raise InvalidInputError(f"{dest}: the output must end in .csv or .parquet")
    dataset = ds.dataset(str(source), format=fmt)
    total = dataset.count_rows() if fmt == "parquet" else None
    progress.stage(f"scoring {source.name}", total=total)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    writer: Any = None
    schema: Any = None
    rows = 0
    try:
        for batch in dataset.to_batches(batch_size=chunk_size):
            if batch.num_rows == 0:
                continue
            chunk = pa.Table.from_batches([batch])
            try:
                outputs = _score(predictor, chunk.to_pandas())
            except InvalidInputError as exc:
                raise InvalidInputError(f"rows from {rows + 1}: {exc.message}") from None
            table = _with_outputs(chunk, outputs)
            try:
                if writer is None:
                    schema = table.schema
                    writer = (
                        pq.ParquetWriter(str(tmp), schema, compression="zstd")
                        if out_fmt == "parquet"
                        else pacsv.CSVWriter(str(tmp), schema)
                    )
                elif table.schema != schema:
                    # Every chunk is written with the first chunk's column types.
                    table = table.cast(schema)
                writer.write_table(table)
            except OSError as exc:
                raise InvalidInputError(f"{dest}: cannot write: {exc.strerror or exc}") from None
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise InvalidInputError(
                    f"{source}: rows {rows + 1} to {rows + batch.num_rows} cannot be written "
                    f"to {dest} (every chunk is written with the column types of the first): "
                    f"{exc}"
                ) from None
            rows += batch.num_rows
            progress.advance(batch.num_rows)
        if writer is None:
            raise InvalidInputError(f"{source}: no rows to score")
        writer.close()
        writer = None
        os.replace(tmp, dest)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"{source}: cannot read: {exc}") from None
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return {"input": str(source), "output": str(dest), "rows": rows}


def _score(predictor: CheckedPredictor, frame: Any) -> dict[str, Any]:
    """``prediction`` and, for classifiers, ``proba_<class>`` for each row of ``frame``."""
    out: dict[str, Any] = {"prediction": predictor.predict(frame)}
    if predictor.is_classifier and predictor.classes is not None:
        proba = predictor.predict_proba(frame)
        for i, cls in enumerate(predictor.classes):
            out[f"proba_{cls}"] = proba[:, i]
    return out


def _with_outputs(chunk: Any, outputs: dict[str, Any]) -> Any:
    """The input rows as read (so a column keeps its type whatever values a chunk holds,
    unlike a pandas round trip, which turns an int column with a null into floats) with the
    output columns after them; an input column of the same name is replaced in place."""
    import pyarrow as pa

    # A pandas index stored as a column is not an input row's value (pandas would read it
    # back as the index, and the output never had one); the input's pandas metadata would
    # describe other columns than the output's.
    meta = chunk.schema.pandas_metadata or {}
    index_columns = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    table = chunk.drop_columns(index_columns).replace_schema_metadata(None)
    for name, values in outputs.items():
        column = pa.array(values)
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, column) if at >= 0 else table.append_column(name, column)
    return table
