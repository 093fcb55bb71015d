"""Turning user files into what the dataset registry stores.

Tabular files (CSV, TSV, JSON Lines) up to ``IN_MEMORY_BYTES`` are parsed into memory in one
multi-threaded pass (:func:`read_frame`), and the Parquet file, the profile and the validation
are made from that frame; a larger file is converted by polars' streaming engine
(:func:`to_parquet`), so a file larger than memory is never loaded whole. Both give the same
Parquet bytes. Every problem with the input is reported as an
:class:`~shipyard.errors.InvalidInputError` naming the file, before anything is stored.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from shipyard.errors import InvalidInputError

__all__ = [
    "TABLE_FORMATS",
    "FileEntry",
    "RaggedLines",
    "detect_format",
    "load_frame",
    "read_frame",
    "scan_table",
    "to_parquet",
    "walk_tree",
]

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
#: A file added (CSV, TSV, JSON Lines) or a DataFrame is written as Parquet with zstd at
#: level 1: on 2 cores a 301 MB CSV's table writes in 0.57 s (1.07 CPU seconds) against
#: 0.81 s (1.51) at zstd's default level 3, for a file 23% larger (127 MB against 103 MB; LZ4
#: writes in 0.42 s but makes 155 MB). Such a version is found again by its source's digest.
PARQUET_COMPRESSION: Final = "zstd"
PARQUET_COMPRESSION_LEVEL: Final = 1
#: What shipyard derives from stored versions (split parts, quarantined rows, erasures) keeps
#: zstd's level 3, as it always had: equal rows give equal bytes, hence the same digest, on
#: every machine and across shipyard versions (a derived version is found by its digest).
DERIVED_COMPRESSION_LEVEL: Final = 3
INFER_ROWS = 10_000

T = TypeVar("T")


def detect_format(path: Path) -> str:
    """``"tree"`` for a folder, else the tabular format from the extension.

    Raises:
        InvalidInputError: missing path, empty file or unknown extension.
    """
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file or folder")
    if path.is_dir():
        return "tree"
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(TABLE_FORMATS))
        raise InvalidInputError(
            f"{path}: unknown file type {path.suffix or '(no extension)'!r}; "
            f"shipyard reads {known}, or a folder as a file tree"
        )
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path}: the file is empty")
    return fmt


def _check_header(path: Path, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        try:
            header = next(csv.reader(f, delimiter=delimiter))
        except StopIteration:
            raise InvalidInputError(f"{path}: the file is empty") from None
        except csv.Error as exc:
            raise InvalidInputError(f"{path}: malformed header line: {exc}") from None
    names = [h.strip() for h in header]
    if not any(names):
        raise InvalidInputError(f"{path}: the header line is blank")
    _check_names(path, names)
    return names


def _check_names(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    dups = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dups:
        raise InvalidInputError(
            f"{path}: duplicate column names: {', '.join(repr(d) for d in dups)}; "
            "every column needs a unique name"
        )
    if "" in names:
        raise InvalidInputError(
            f"{path}: column {names.index('') + 1} has an empty name in the header"
        )


def check_parquet(path: Path) -> None:
    """Raise InvalidInputError unless ``path`` is a readable Parquet file with unique,
    non-empty column names."""
    import polars as pl

    try:
        names = list(pl.scan_parquet(path).collect_schema().names())
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise _explain(path, "parquet", exc) from None
    _check_names(path, names)


def _scan(path: Path, fmt: str, infer_rows: int | None, text: frozenset[str] = frozenset()) -> Any:
    """A LazyFrame over the file; the columns in ``text`` are read as text."""
    import polars as pl

    overrides = dict.fromkeys(text, pl.String)
    if fmt in ("csv", "tsv"):
        lf = pl.scan_csv(
            path,
            separator="\t" if fmt == "tsv" else ",",
            infer_schema_length=infer_rows,
            try_parse_dates=True,
            schema_overrides=overrides or None,
        )
    elif fmt == "parquet":
        lf = pl.scan_parquet(path)
        _check_names(path, list(lf.collect_schema().names()))
        return lf
    else:
        lf = pl.scan_ndjson(
            path, infer_schema_length=infer_rows, schema_overrides=overrides or None
        )
    return _without_wide_ints(lf)


def _without_wide_ints(lf: Any) -> Any:
    """``lf`` with each column the reader typed as a 128-bit integer (a whole number beyond
    64 bits in the text) as its text instead: Parquet readers other than polars, pyarrow and
    pandas have no 128-bit integers, and such numbers are identifiers more often than
    quantities, which a float would round. A contract saying ``int`` then sets such a row
    aside as one that does not fit 64 bits."""
    import polars as pl

    wide = [n for n, t in lf.collect_schema().items() if t in (pl.Int128, pl.UInt128)]
    return lf.with_columns(pl.col(wide).cast(pl.String)) if wide else lf


# polars guesses a 128-bit integer for a column whose first rows hold a number beyond 64 bits,
# then fails on one beyond 128 bits; that column is read again as text.
_WIDE_FAILED = re.compile(r"as dtype `[iu]128` at column '(.*?)' \(column number")


def _explain(path: Path, fmt: str, exc: Exception) -> InvalidInputError:
    text = str(exc).strip().split("\n\n", 1)[0].strip()
    kind = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "jsonl": "JSON Lines"}[fmt]
    return InvalidInputError(f"{path}: not a valid {kind} file: {text}")


@dataclass(frozen=True)
class RaggedLines:
    """Lines of a CSV or TSV file whose field count differs from the header's.

    ``lines`` holds ``(line, fields)`` for the first few (1-based line numbers, where the
    record starts); ``count`` counts them all.
    """

    expected: int
    count: int
    lines: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.count,
            "fields": self.expected,
            "lines": [{"line": line, "fields": n} for line, n in self.lines],
        }

    def describe(self) -> str:
        """``line 3 has 2 fields (the header has 3), and 2 more lines: 7, 9``."""
        (first, n), rest = self.lines[0], self.lines[1:]
        text = f"line {first} has {n} field{'' if n == 1 else 's'} (the header has {self.expected})"
        more = self.count - 1
        if more:
            shown = ", ".join(str(line) for line, _ in rest)
            text += f", and {more:,} more line{'' if more == 1 else 's'}: {shown}"
            text += ", …" if more > len(rest) else ""
        return text


def find_ragged(path: Path, fmt: str, *, longer: bool, limit: int = 10) -> RaggedLines | None:
    """The lines with fewer fields than the header (or, with ``longer``, more), if any.

    A pass over the file with the standard csv reader, so that quoted fields spanning lines
    are counted as polars counts them; a blank line has no fields (polars reads it as a row
    of nulls), which matters only when the header has more than one column.
    """
    found: list[tuple[int, int]] = []
    count = 0
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter="\t" if fmt == "tsv" else ",")
        expected = len(next(reader, []))
        start = reader.line_num + 1
        for row in reader:
            n = len(row)
            if (n > expected) if longer else (n < expected and (n or expected > 1)):
                count += 1
                if len(found) < limit:
                    found.append((start, n))
            start = reader.line_num + 1
    return RaggedLines(expected, count, tuple(found)) if count else None


def _short_rows_possible(parquet: Path) -> bool:
    """Whether the last column of a converted CSV holds a null: a short line always leaves
    one there, so without one no line was short (read from the Parquet statistics)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(parquet).metadata
    last = meta.num_columns - 1
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(last).statistics
        if stats is None or not stats.has_null_count or stats.null_count:
            return True
    return False


def _type_guess_failed(exc: Exception) -> bool:
    """Whether polars failed because a value does not fit the type guessed from the first
    rows (rather than because the file is not valid)."""
    text = str(exc)
    return "could not parse" in text or "schema" in text.lower()


def scan_table(path: Path, fmt: str, run: Callable[[Any], T]) -> T:
    """Run ``run`` on a polars LazyFrame scanning the tabular file ``path``; its result.

    Column types are guessed from the first ``INFER_ROWS`` rows. When a value further down
    does not fit its column's guessed type, ``run`` is called again on a scan that infers
    the types from the whole file (one more pass, still streaming). A column of whole numbers
    beyond 64 bits is read as text (see :func:`_without_wide_ints`). ``run`` may be called
    more than once, so it must start afresh each time.

    Raises:
        InvalidInputError: the file cannot be read as ``fmt`` (one line, naming the file).
    """
    import polars as pl

    if fmt in ("csv", "tsv"):
        _check_header(path, "\t" if fmt == "tsv" else ",")
    errors: tuple[type[Exception], ...] = (pl.exceptions.PolarsError, OSError, ValueError)
    text: set[str] = set()

    def attempt(infer_rows: int | None) -> T:
        while True:
            try:
                return run(_scan(path, fmt, infer_rows, frozenset(text)))
            except pl.exceptions.ComputeError as exc:
                wide = _WIDE_FAILED.search(str(exc))
                if wide is None or wide.group(1) in text:
                    raise
                text.add(wide.group(1))

    try:
        try:
            return attempt(INFER_ROWS)
        except pl.exceptions.ComputeError as exc:
            if "more fields than defined" in str(exc) and fmt in ("csv", "tsv"):
                ragged = find_ragged(path, fmt, longer=True)
                if ragged is not None:
                    raise InvalidInputError(
                        f"{path}: {ragged.describe()}; a line cannot have more fields than "
                        "the header names; fix those lines"
                    ) from None
            if not _type_guess_failed(exc):
                raise
            return attempt(None)
    except InvalidInputError:
        raise
    except errors as exc:
        raise _explain(path, fmt, exc) from None


def to_parquet(
    path: Path, fmt: str, out: Path, *, allow_ragged: bool = False
) -> RaggedLines | None:
    """Convert a tabular file to Parquet at ``out``, streaming; the short lines of a CSV or
    TSV file, which ``allow_ragged`` lets through (their missing fields are null).

    Raises:
        InvalidInputError: the file cannot be read as ``fmt``, a line has more fields than the
            header, or (without ``allow_ragged``) fewer, naming the line.
    """

    def sink(lf: Any) -> None:
        # polars writes into a handle we own: if it fails, no writer thread can create the
        # file again after we have removed it.
        with open(out, "wb") as handle:
            lf.sink_parquet(
                handle,
                compression=PARQUET_COMPRESSION,
                compression_level=PARQUET_COMPRESSION_LEVEL,
            )

    try:
        scan_table(path, fmt, sink)
        if fmt not in ("csv", "tsv") or not _short_rows_possible(out):
            return None
        ragged = find_ragged(path, fmt, longer=False)
        if ragged is not None and not allow_ragged:
            raise InvalidInputError(
                f"{path}: {ragged.describe()}; fix those lines, or pass --allow-ragged to "
                "fill the missing fields with nulls"
            )
        return ragged
    except BaseException:
        out.unlink(missing_ok=True)
        raise


# A text table up to this size is parsed into memory in one multi-threaded pass, and the
# Parquet file, the profile and the validation are all made from that frame; a larger one is
# converted by the streaming engine, its memory bounded, and read again to profile it. In
# memory, the peak is about 2.7 times the file (816 MiB for a 301 MB CSV of 8 columns).
IN_MEMORY_BYTES = 512 * 1024 * 1024


def read_frame(
    path: Path, fmt: str, *, allow_ragged: bool = False
) -> tuple[Any, RaggedLines | None]:
    """The table in the CSV, TSV or JSON Lines file ``path`` as a polars DataFrame, parsed on
    every core, and the short lines of a CSV or TSV file, which ``allow_ragged`` lets
    through (their missing fields are null). What :func:`to_parquet` checks, checked alike.

    Raises:
        InvalidInputError: as :func:`to_parquet`.
    """
    frame = scan_table(path, fmt, lambda lf: lf.collect())
    ragged = None
    # A short line always leaves a null in the last column: without one no line was short.
    if fmt in ("csv", "tsv") and frame.width and frame.get_column(frame.columns[-1]).has_nulls():
        ragged = find_ragged(path, fmt, longer=False)
        if ragged is not None and not allow_ragged:
            raise InvalidInputError(
                f"{path}: {ragged.describe()}; fix those lines, or pass --allow-ragged to "
                "fill the missing fields with nulls"
            )
    return frame, ragged


def write_parquet(frame: Any, out: Path) -> None:
    """Write ``frame`` as the Parquet file ``out`` (removed again if the write fails)."""
    try:
        frame.write_parquet(
            out, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL
        )
    except BaseException:
        out.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class FileEntry:
    """One file of a file-tree dataset."""

    path: str  # relative, '/'-separated
    absolute: str
    size: int
    executable: bool


def walk_tree(root: Path) -> Iterator[FileEntry]:
    """Every regular file under ``root``, sorted by relative path; symlinks are followed."""
    entries: list[FileEntry] = []
    base = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        dirnames.sort()
        rel = os.path.relpath(dirpath, base)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError as exc:
                raise InvalidInputError(f"{full}: cannot read: {exc.strerror}") from None
            entries.append(FileEntry(prefix + name, full, st.st_size, bool(st.st_mode & 0o111)))
    entries.sort(key=lambda e: e.path)
    if not entries:
        raise InvalidInputError(f"{root}: the folder holds no files")
    yield from entries


def load_frame(data: Any) -> Any:
    """A polars DataFrame from a frame (polars, lazy or pandas) or a path to a CSV, TSV,
    Parquet or JSON Lines file.

    Raises:
        InvalidInputError: the input is none of these, or the file cannot be read.
    """
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data
    return read_table(data, lambda lf: lf.collect())


def read_table(data: Any, run: Callable[[Any], T]) -> T:
    """Run ``run`` on ``data`` as a polars LazyFrame; its result. ``data`` is a polars
    DataFrame or LazyFrame, a pandas DataFrame or a path to a table file, read with
    :func:`scan_table` (``run`` may be called twice).

    Raises:
        InvalidInputError: the input is none of these, or the file cannot be read.
    """
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return run(data.lazy())
    if isinstance(data, pl.LazyFrame):
        return run(data)
    if type(data).__module__.startswith("pandas"):
        return run(pl.from_pandas(data).lazy())
    if not isinstance(data, str | os.PathLike):
        raise InvalidInputError(
            f"expected a polars DataFrame or LazyFrame, a pandas DataFrame or a path to a "
            f"table file, got {type(data).__name__}"
        )
    path = Path(data)
    fmt = detect_format(path)
    if fmt == "tree":
        raise InvalidInputError(f"{path}: is a folder; expected a table file")
    return scan_table(path, fmt, run)
