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
    at a time, writing under a temporary name that is renamed when complete.

    Raises:
        InvalidInputError: unknown formats, an unreadable input, or rows that do not match the
            model's signature (the message names the chunk's first row).
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
    rows = 0
    try:
        for batch in dataset.to_batches(batch_size=chunk_size):
            if batch.num_rows == 0:
                continue
            frame = pa.Table.from_batches([batch]).to_pandas()
            try:
                scored = _score(predictor, frame)
            except InvalidInputError as exc:
                raise InvalidInputError(f"rows from {rows + 1}: {exc.message}") from None
            table = pa.Table.from_pandas(scored, preserve_index=False)
            try:
                if writer is None:
                    writer = (
                        pq.ParquetWriter(str(tmp), table.schema, compression="zstd")
                        if out_fmt == "parquet"
                        else pacsv.CSVWriter(str(tmp), table.schema)
                    )
                writer.write_table(table)
            except OSError as exc:
                raise InvalidInputError(f"{dest}: cannot write: {exc.strerror or exc}") from None
            rows += batch.num_rows
            progress.advance(batch.num_rows)
        if writer is None:
            raise InvalidInputError(f"{source}: no rows to score")
        writer.close()
        writer = None
        os.replace(tmp, dest)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(f"{source}: cannot read: {exc}") from None
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return {"input": str(source), "output": str(dest), "rows": rows}


def _score(predictor: CheckedPredictor, frame: Any) -> Any:
    """The input rows with ``prediction`` and, for classifiers, ``proba_<class>`` columns."""
    out = frame.copy()
    out["prediction"] = predictor.predict(frame)
    if predictor.is_classifier and predictor.classes is not None:
        proba = predictor.predict_proba(frame)
        for i, cls in enumerate(predictor.classes):
            out[f"proba_{cls}"] = proba[:, i]
    return out
