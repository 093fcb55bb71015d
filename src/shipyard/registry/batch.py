"""Batch scoring of files larger than memory: read a chunk, check its rows as the model server
checks a request (the signature and the training data's contracts,
:mod:`shipyard.registry.row_checks`), predict, append.

Rows that fail a check, or that the model itself refuses, are handled by ``on_invalid``:

- ``reject`` (default): nothing is written; the error names the first refused rows and why;
- ``skip``: they are left out of the output;
- ``null``: they stay in the output with empty predictions.

With ``skip`` and ``null`` they are also written to ``<output stem>.rejected.csv`` beside the
output, as read, with ``source_row`` (1-based, in the input) and ``reason`` columns.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard._internal.progress import Progress
from shipyard.errors import ConflictError, InvalidInputError
from shipyard.registry.row_checks import RowChecks

if TYPE_CHECKING:
    from shipyard.registry.signatures import CheckedPredictor

__all__ = ["ON_INVALID", "OnInvalid", "rejected_path", "score_file"]

OnInvalid = Literal["reject", "skip", "null"]
ON_INVALID: tuple[OnInvalid, ...] = ("reject", "skip", "null")
_INPUT = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
SHOWN = 20  # refused rows named in a refusal


def rejected_path(dest: Path) -> Path:
    """Where refused rows go: ``scored.parquet`` → ``scored.rejected.csv``."""
    return dest.with_name(f"{dest.stem}.rejected.csv")


def input_format(source: Path) -> str:
    """The format (``csv`` or ``parquet``) of the file to score: checked before a model is
    loaded, which takes far longer than the check.

    Raises:
        InvalidInputError: ``source`` is not an existing .csv or .parquet file.
    """
    fmt = _INPUT.get(source.suffix.lower())
    if fmt is None or not source.is_file():
        raise InvalidInputError(f"{source}: give an existing .csv or .parquet file to score")
    return fmt


def score_file(
    predictor: CheckedPredictor,
    source: Path,
    dest: Path,
    chunk_size: int,
    progress: Progress,
    *,
    checks: RowChecks | None = None,
    on_invalid: OnInvalid = "reject",
    force: bool = False,
    fill: Callable[[Any], Any] | None = None,
    filled: Sequence[str] = (),
) -> dict[str, Any]:
    """Score ``source`` (CSV or Parquet) into ``dest`` (.csv or .parquet), ``chunk_size`` rows
    at a time, writing under a temporary name that is renamed when complete. Each row is
    checked with ``checks`` (:meth:`Models.row_checks <shipyard.registry.models.Models.
    row_checks>`) first.
    The input columns are written with the types they were read with (an int column stays
    int even in a chunk where it has a gap), followed by ``prediction`` (the model's own
    ``predict()``) and, for a classifier, ``proba_<class>``.

    An existing ``dest`` (or rejected-rows file) is replaced only with ``force``; then a
    rejected-rows file of an earlier run goes too when no row is refused now.

    ``fill`` takes each chunk (an Arrow table) and returns it with the ``filled`` columns
    (looked-up features, which the input need not hold) added or replaced, before the rows
    are checked; the output holds them as scored.

    Raises:
        InvalidInputError: unknown formats, an unreadable input, a missing signature column,
            refused rows with ``on_invalid="reject"`` (the first ones named, with why), or a
            chunk that cannot be written with the column types of the first.
        ConflictError: ``dest`` or its rejected-rows file exists and ``force`` is false.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if chunk_size < 1:
        raise InvalidInputError("--chunk-size must be at least 1")
    if on_invalid not in ON_INVALID:
        raise InvalidInputError(f"--on-invalid must be one of {', '.join(ON_INVALID)}")
    fmt = input_format(source)
    out_fmt = _INPUT.get(dest.suffix.lower())
    if out_fmt is None:
        raise InvalidInputError(f"{dest}: the output must end in .csv or .parquet")
    taken = [f for f in (dest, rejected_path(dest)) if f.exists()]
    if taken and not force:
        raise ConflictError(
            f"{taken[0]} already exists; pass --force to replace it (force=True in Python), "
            "or choose another output",
            details={"existing": [str(f) for f in taken]},
        )
    if predictor.signature is None:
        raise InvalidInputError(
            f"{predictor.name} has no signature, so its input cannot be checked; register it "
            "with an input example"
        )
    columns = predictor.signature.columns
    try:
        dataset = ds.dataset(str(source), format=fmt)
        missing = [c for c in columns if c not in dataset.schema.names and c not in filled]
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"{source}: cannot read: {exc}") from None
    if missing:
        raise InvalidInputError(
            f"{source} does not match the signature of {predictor.name}: missing columns: "
            f"{', '.join(missing)}"
        )
    total = dataset.count_rows() if fmt == "parquet" else None
    progress.stage(f"scoring {source.name}", total=total)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    refused_file = rejected_path(dest)
    refused_tmp = refused_file.with_name(f".{refused_file.name}.{uuid.uuid4().hex[:8]}.part")
    writer: Any = None
    refused_writer: Any = None
    schema: Any = None
    refused_schema: Any = None
    refusals: dict[int, str] = {}  # with on_invalid="reject": refused rows, by input row
    rows = scored = refused = 0
    try:
        for batch in dataset.to_batches(batch_size=chunk_size):
            if batch.num_rows == 0:
                continue
            chunk = pa.Table.from_batches([batch])
            if fill is not None:
                chunk = fill(chunk)
            outputs, reasons = _score_chunk(predictor, checks, columns, chunk)
            if on_invalid == "reject" and (reasons or refusals):
                # Nothing will be written: read on only to name up to SHOWN refused rows.
                refusals.update({rows + i + 1: r for i, r in reasons.items()})
                rows += batch.num_rows
                progress.advance(batch.num_rows)
                if len(refusals) >= SHOWN:
                    break
                continue
            if reasons:
                bad = sorted(reasons)
                kept = chunk.take(bad).append_column(
                    "source_row", pa.array([rows + i + 1 for i in bad], pa.int64())
                )
                kept = kept.append_column("reason", pa.array([reasons[i] for i in bad]))
                kept = _plain(kept)
                if refused_writer is None:
                    refused_schema = kept.schema
                    refused_writer = CsvWriter(refused_tmp)
                refused_writer.write_table(kept.cast(refused_schema))
                refused += len(bad)
            good = [i for i in range(chunk.num_rows) if i not in reasons]
            if on_invalid == "skip" and reasons:
                chunk = chunk.take(good)
                outputs = [outputs[i] for i in good]
            scored += len(good)
            table = _with_outputs(chunk, outputs, predictor)
            try:
                if writer is None:
                    schema = table.schema
                    writer = (
                        pq.ParquetWriter(str(tmp), schema, compression="zstd")
                        if out_fmt == "parquet"
                        else CsvWriter(tmp)
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
        if refusals:
            raise _refusal(source, predictor.name, refusals)
        if writer is None:
            raise InvalidInputError(f"{source}: no rows to score")
        writer.close()
        writer = None
        if refused_writer is not None:
            refused_writer.close()
            refused_writer = None
            os.replace(refused_tmp, refused_file)
        else:
            refused_file.unlink(missing_ok=True)  # an earlier run's, replaced with --force
        os.replace(tmp, dest)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"{source}: cannot read: {exc}") from None
    finally:
        for w in (writer, refused_writer):
            if w is not None:
                w.close()
        tmp.unlink(missing_ok=True)
        refused_tmp.unlink(missing_ok=True)
    return {
        "input": str(source),
        "output": str(dest),
        "rows": rows,
        "scored": scored,
        "refused": refused,
        "rejected": str(refused_file) if refused else None,
    }


def _score_chunk(
    predictor: CheckedPredictor, checks: RowChecks | None, columns: Sequence[str], chunk: Any
) -> tuple[list[dict[str, Any] | None], dict[int, str]]:
    """The answer for each row of ``chunk`` (None where refused), and why each refused row
    was refused, by its index in the chunk."""
    records = chunk.select(list(columns)).to_pylist()
    errors: list[dict[str, Any]] = []
    checked: dict[int, Any] = {}
    for i, record in enumerate(records):
        value = checks.check(record, i, errors) if checks is not None else record
        if value is not None:
            checked[i] = value
    reasons: dict[int, list[str]] = {}
    for e in errors:
        reasons.setdefault(e["record"], []).append(f"{e['field']}: {e['reason']}")
    outputs: list[dict[str, Any] | None] = [None] * len(records)
    for i, answer in _answers(predictor, checked).items():
        if isinstance(answer, str):
            reasons.setdefault(i, []).append(answer)
        else:
            outputs[i] = answer
    return outputs, {i: "; ".join(r) for i, r in reasons.items()}


def _answers(predictor: CheckedPredictor, checked: dict[int, Any]) -> dict[int, Any]:
    """Answers by row index; a row the model refuses gets the reason instead (when the
    whole chunk fails, each row is scored alone to find which)."""
    if not checked:
        return {}
    indexes = list(checked)
    try:
        answers = predictor.answer(predictor.frame_from_records([checked[i] for i in indexes]))
        return dict(zip(indexes, answers, strict=True))
    except Exception:  # one row the model cannot take fails the whole call: find which
        pass
    out: dict[int, Any] = {}
    for i in indexes:
        try:
            out[i] = predictor.answer(predictor.frame_from_records([checked[i]]))[0]
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            out[i] = f"the model refused it: {first}"
    return out


def _label_type(predictor: CheckedPredictor) -> Any:
    """The Arrow type of the ``prediction`` column, from the signature's outputs (a chunk in
    which every row was refused still has it)."""
    import pyarrow as pa

    outputs = predictor.signature.outputs if predictor.signature else {}
    kinds = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    return kinds.get(outputs.get("dtype", "float"), pa.float64())


def _refusal(source: Path, model: str, refusals: dict[int, str]) -> InvalidInputError:
    shown = sorted(refusals)[:SHOWN]
    problems = [f"row {row}: {refusals[row]}" for row in shown]
    more = " (and maybe more)" if len(refusals) >= SHOWN else ""
    n = len(shown)
    return InvalidInputError(
        f"{source}: {n} row{'s' if n != 1 else ''}{more} refused by the checks of {model} "
        "(its signature and the contract of its training data): "
        + "; ".join(problems)
        + "; nothing was written; score the others with --on-invalid skip or null",
        details={"rows": [{"row": row, "reason": refusals[row]} for row in shown]},
    )


def _plain(table: Any) -> Any:
    """``table`` without pandas metadata or index columns (see :func:`_with_outputs`)."""
    meta = table.schema.pandas_metadata or {}
    index_columns = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    return table.drop_columns(index_columns).replace_schema_metadata(None)


def _with_outputs(
    chunk: Any, answers: list[dict[str, Any] | None], predictor: CheckedPredictor
) -> Any:
    """The input rows as read (so a column keeps its type whatever values a chunk holds,
    unlike a pandas round trip, which turns an int column with a null into floats) with the
    output columns after them; an input column of the same name is replaced in place. A
    pandas index stored as a column is not an input row's value and is left out."""
    import pyarrow as pa

    table = _plain(chunk)
    outputs: dict[str, tuple[list[Any], Any]] = {
        "prediction": (
            [None if a is None else a["prediction"] for a in answers],
            _label_type(predictor),
        )
    }
    if predictor.is_classifier and predictor.classes is not None:
        for cls in predictor.classes.tolist():
            name = str(cls)
            outputs[f"proba_{cls}"] = (
                [None if a is None else a.get("probabilities", {}).get(name) for a in answers],
                pa.float64(),
            )
    for name, (values, type_) in outputs.items():
        column = pa.array(values, type=type_)
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, column) if at >= 0 else table.append_column(name, column)
    return table


class CsvWriter:
    """Arrow tables appended to one CSV file as ``data get`` writes CSV, so that times read
    ``2026-01-01T06:53:00+00:00`` in every file shipyard writes."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._header = True

    def write_table(self, table: Any) -> None:
        import polars as pl

        from shipyard._internal.timestamps import iso_datetimes

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        iso_datetimes(frame.lazy()).collect().write_csv(self._handle, include_header=self._header)
        self._header = False

    def close(self) -> None:
        self._handle.close()
