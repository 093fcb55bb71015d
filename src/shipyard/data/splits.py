"""Reproducible splits of a table into named parts (train / valid / test …).

A :class:`SplitSpec` says how rows are assigned to parts; :func:`split_frame` applies it to a
polars DataFrame. The same spec on the same data always gives the same parts, with rows in
their original order, so the Parquet files written from them have the same bytes and digests.

Four methods, chosen by the fields that are set:

``hash`` (``key``)
    A row's part depends only on its key value and the seed, so appending rows never moves an
    existing row, and all rows that share a key land in the same part.
``stratified`` (``stratify``)
    Within each class a seeded shuffle is cut at exact counts, so every part keeps the class
    shares of the whole table.
``random`` (neither)
    A seeded shuffle of all rows, cut at exact counts.
``time`` (``time_column``)
    With ``cutoffs``, part *i* holds rows with ``cutoffs[i-1] <= t < cutoffs[i]``. Without, rows
    are cut in time order at the fractions, and rows with the same time stay together.

>>> import polars as pl
>>> df = pl.DataFrame({"id": range(1000), "y": [0, 1] * 500})
>>> parts = split_frame(df, SplitSpec({"train": 0.8, "test": 0.2}, stratify="y", seed=7))
>>> {name: part.height for name, part in parts.items()}
{'train': 800, 'test': 200}
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from shipyard._internal.words import count
from shipyard.errors import InvalidInputError
from shipyard.refs import NAME_PATTERN

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

__all__ = [
    "SplitMethod",
    "SplitSpec",
    "assign_parts",
    "hash_unit",
    "parse_fractions",
    "split_frame",
]

SplitMethod = Literal["hash", "stratified", "random", "time"]

SUM_TOLERANCE = 1e-9
MAX_SEED = 2**64 - 1
_PART_RE = re.compile(NAME_PATTERN)
_SPEC_KEYS = ("method", "fractions", "parts", "key", "stratify", "seed", "time_column", "cutoffs")

# FNV-1a (64 bit) constants and the MurmurHash3 64-bit finaliser; see hash_unit.
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 2**64 - 1


def _raise_problems(what: str, problems: list[str]) -> None:
    if problems:
        raise InvalidInputError.from_problems(what, problems)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class SplitSpec:
    """How the rows of a table are assigned to named parts.

    ``fractions`` names the parts, in order, with their shares of the rows (positive, summing
    to 1). In a time split with ``cutoffs`` only the names are used: the values are not
    checked and are kept as 0, so the spec (and the document stored with a split) holds only
    what the split applied.

    ``key`` and ``stratify`` cannot be combined: a key split keeps each row in its part for
    ever, while exact per-class counts have to move rows when data is appended. On large data a
    key split is close to stratified anyway (each class is cut by the same uniform hash).
    ``time_column`` cannot be combined with either.

    >>> SplitSpec({"train": 0.7, "valid": 0.15, "test": 0.15}, key="customer_id").method
    'hash'
    >>> SplitSpec({"train": 0, "test": 0}, time_column="ts", cutoffs=["2024-06-01"]).method
    'time'

    Raises:
        InvalidInputError: invalid fractions, seed, column names or cutoffs, or a combination
            of fields that is not supported; every problem is listed in one error.
    """

    fractions: dict[str, float]
    key: str | None = None
    stratify: str | None = None
    seed: int = 0
    time_column: str | None = None
    cutoffs: list[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.fractions, Mapping):
            object.__setattr__(self, "fractions", dict(self.fractions))
        if isinstance(self.cutoffs, list | tuple):
            object.__setattr__(self, "cutoffs", list(self.cutoffs))
        problems = _fraction_problems(self.fractions, check_values=self.cutoffs is None)
        if self.cutoffs is not None and isinstance(self.fractions, dict) and not problems:
            object.__setattr__(self, "fractions", dict.fromkeys(self.fractions, 0.0))
        for field in ("key", "stratify", "time_column"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                problems.append(f"{field}: expected a column name, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            problems.append(f"seed: expected an integer, got {self.seed!r}")
        elif not 0 <= self.seed <= MAX_SEED:
            problems.append(f"seed: {self.seed} is outside 0 … 2**64-1")
        if self.key is not None and self.stratify is not None:
            problems.append(
                "key and stratify cannot be combined: a key split keeps every row in its part "
                "when data is appended, exact per-class counts cannot; use key alone (its "
                "hash cuts every class at the same points) or stratify alone"
            )
        if self.time_column is not None and (self.key is not None or self.stratify is not None):
            problems.append("time_column cannot be combined with key or stratify")
        if self.cutoffs is not None:
            problems += self._cutoff_problems()
        _raise_problems("split spec", problems)

    def _cutoff_problems(self) -> list[str]:
        if self.time_column is None:
            return ["cutoffs: need a time_column to compare them with"]
        if not isinstance(self.cutoffs, list):
            return [f"cutoffs: expected a list of ISO dates or datetimes, got {self.cutoffs!r}"]
        problems: list[str] = []
        if isinstance(self.fractions, dict) and len(self.cutoffs) != len(self.fractions) - 1:
            problems.append(
                f"cutoffs: {count(len(self.fractions), 'part')} need "
                f"{count(len(self.fractions) - 1, 'cutoff')}, got {len(self.cutoffs)}"
            )
        parsed: list[datetime] = []
        for i, text in enumerate(self.cutoffs):
            try:
                parsed.append(datetime.fromisoformat(text))
            except (TypeError, ValueError):
                problems.append(
                    f"cutoffs[{i}]: {text!r} is not an ISO date or datetime "
                    "(e.g. 2024-06-01 or 2024-06-01T12:00:00+00:00)"
                )
        if len(parsed) == len(self.cutoffs):
            if len({dt.tzinfo is None for dt in parsed}) > 1:
                problems.append("cutoffs: mix values with and without a time zone")
            elif any(a >= b for a, b in itertools.pairwise(parsed)):
                problems.append(f"cutoffs: must be strictly increasing, got {self.cutoffs}")
        return problems

    @property
    def method(self) -> SplitMethod:
        """``hash``, ``stratified``, ``random`` or ``time``, from the fields that are set."""
        if self.time_column is not None:
            return "time"
        if self.key is not None:
            return "hash"
        if self.stratify is not None:
            return "stratified"
        return "random"

    @property
    def parts(self) -> list[str]:
        """The part names, in order."""
        return list(self.fractions)

    def describe(self) -> str:
        """How the rows were cut, in words, for listings and ``data show``.

        >>> SplitSpec({"train": 0.8, "test": 0.2}, key="customer_id").describe()
        'by a hash of customer_id (seed 0) into train 0.8, test 0.2'
        >>> SplitSpec({"a": 0, "b": 0}, time_column="ts", cutoffs=["2024-06-01"]).describe()
        'by ts at 2024-06-01 into a, b'
        """
        if self.cutoffs is not None:
            cutoffs, parts = ", ".join(self.cutoffs), ", ".join(self.parts)
            return f"by {self.time_column} at {cutoffs} into {parts}"
        shares = ", ".join(f"{name} {share:g}" for name, share in self.fractions.items())
        how = {
            "hash": f"by a hash of {self.key} (seed {self.seed})",
            "stratified": f"stratified by {self.stratify} (seed {self.seed})",
            "random": f"at random (seed {self.seed})",
            "time": f"in order of {self.time_column}",
        }[self.method]
        return f"{how} into {shares}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document; ``SplitSpec.from_dict(spec.to_dict()) == spec``. A time
        split with cutoffs applies no shares, so its document lists the ``parts`` by name
        instead of ``fractions``.

        >>> SplitSpec({"train": 0.5, "test": 0.5}, time_column="ts", cutoffs=["2024-06-01"]
        ...           ).to_dict()["parts"]
        ['train', 'test']
        """
        shares: dict[str, Any] = (
            {"parts": self.parts}
            if self.cutoffs is not None
            else {"fractions": dict(self.fractions)}
        )
        return {
            "method": self.method,
            **shares,
            "key": self.key,
            "stratify": self.stratify,
            "seed": self.seed,
            "time_column": self.time_column,
            "cutoffs": list(self.cutoffs) if self.cutoffs is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitSpec:
        """Build from a document such as the one :meth:`to_dict` returns.

        ``method`` is optional; when present it must agree with the other fields. A time
        split with ``cutoffs`` may name its ``parts`` (a list) instead of giving ``fractions``.

        Raises:
            InvalidInputError: unknown keys, a missing ``fractions``, or an invalid spec.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"a split spec must be a mapping with 'fractions', got {type(data).__name__}"
            )
        problems = [
            f"{k}: unknown key; expected {', '.join(_SPEC_KEYS)}"
            for k in data
            if k not in _SPEC_KEYS
        ]
        fractions: Any = data.get("fractions")
        if "parts" in data:
            if "fractions" in data:
                problems.append("parts: give fractions or parts, not both")
            elif data.get("cutoffs") is None:
                problems.append(
                    "parts: only a time split with cutoffs names its parts alone; give "
                    "fractions, e.g. {train: 0.8, test: 0.2}"
                )
            else:
                fractions, part_problems = _parts_as_fractions(data["parts"])
                problems += part_problems
        elif "fractions" not in data:
            problems.append("fractions: missing, e.g. {train: 0.8, test: 0.2}")
        _raise_problems("split spec", problems)
        spec = cls(
            fractions=fractions,
            key=data.get("key"),
            stratify=data.get("stratify"),
            seed=data.get("seed", 0),
            time_column=data.get("time_column"),
            cutoffs=data.get("cutoffs"),
        )
        if data.get("method") not in (None, spec.method):
            raise InvalidInputError(
                f"split spec says method {data['method']!r} but its fields make it a "
                f"{spec.method!r} split"
            )
        return spec


def _parts_as_fractions(parts: Any) -> tuple[dict[str, float], list[str]]:
    """The ``parts`` of a time split's document as fractions of 0 (their values are unused)."""
    if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
        return {}, [f"parts: expected a list of part names, got {parts!r}"]
    duplicates = sorted({p for p in parts if parts.count(p) > 1})
    if duplicates:
        return {}, [f"parts: {', '.join(duplicates)} named more than once"]
    return dict.fromkeys(parts, 0.0), []


def _fraction_problems(fractions: Any, *, check_values: bool) -> list[str]:
    if not isinstance(fractions, dict):
        return [f"fractions: expected a mapping of part name to share, got {fractions!r}"]
    if len(fractions) < 2:
        return ["fractions: a split needs at least two parts, e.g. {train: 0.8, test: 0.2}"]
    problems: list[str] = []
    for name, value in fractions.items():
        if not isinstance(name, str) or not _PART_RE.fullmatch(name):
            problems.append(
                f"fractions: part name {name!r} must use letters, digits, '.', '_' or '-'"
            )
        if not _is_number(value) or not math.isfinite(value):
            problems.append(f"fractions.{name}: {value!r} is not a finite number")
        elif check_values and value <= 0:
            problems.append(f"fractions.{name}: must be positive, got {value}")
    if check_values and not problems:
        total = math.fsum(fractions.values())
        if abs(total - 1) > SUM_TOLERANCE:
            hint = " (fractions are shares of 1: write 0.7, not 70)" if total > 1.5 else ""
            problems.append(f"fractions: must sum to 1, got {total:.12g}{hint}")
    return problems


def parse_fractions(text: str) -> dict[str, float]:
    """Parse ``"train=0.7,valid=0.15,test=0.15"`` into an ordered mapping.

    Only the syntax is checked here; :class:`SplitSpec` checks the values.

    >>> parse_fractions("train=0.8, test=0.2")
    {'train': 0.8, 'test': 0.2}

    Raises:
        InvalidInputError: an item is not ``NAME=NUMBER``, or a name repeats; every bad item
            is listed.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("fractions: empty; expected e.g. train=0.8,test=0.2")
    out: dict[str, float] = {}
    problems: list[str] = []
    for item in text.split(","):
        name, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not name:
            problems.append(f"{item.strip()!r} is not NAME=FRACTION")
            continue
        try:
            number = float(value)
        except ValueError:
            problems.append(f"{name}: {value!r} is not a number")
            continue
        if name in out:
            problems.append(f"{name}: given twice")
        out[name] = number
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise InvalidInputError(
            f"{len(problems)} {noun} in fractions {text!r}: "
            + "; ".join(problems)
            + " (expected e.g. train=0.8,test=0.2)",
            details={"problems": problems},
        )
    return out


# --------------------------------------------------------------------------------------------
# Applying a spec


def split_frame(df: pl.DataFrame, spec: SplitSpec) -> dict[str, pl.DataFrame]:
    """Split ``df`` into the parts of ``spec``, in the order of ``spec.fractions``.

    Every row lands in exactly one part; inside a part rows keep their original order. A part
    may be empty (a tiny table, or a time range with no rows).

    >>> import polars as pl
    >>> df = pl.DataFrame({"x": range(100)})
    >>> parts = split_frame(df, SplitSpec({"train": 0.7, "test": 0.3}, seed=1))
    >>> parts["train"].height, parts["test"].height
    (70, 30)

    Raises:
        InvalidInputError: a column named by the spec is missing (the message lists the
            available ones); the key or time column has nulls; the time column is not a
            date or datetime, or a cutoff does not fit its type.
    """
    import polars as pl

    codes = pl.Series(_assign(df, spec))
    return {name: df.filter(codes == i) for i, name in enumerate(spec.fractions)}


def assign_parts(df: pl.DataFrame, spec: SplitSpec) -> pl.Series:
    """The part of every row, as a Series named ``part`` with an Enum of the part names.

    Useful to inspect a split without materialising it: ``df.with_columns(assign_parts(df,
    spec))``.

    Raises:
        InvalidInputError: as :func:`split_frame`.
    """
    import polars as pl

    names = list(spec.fractions)
    codes = pl.Series("part", _assign(df, spec))
    return codes.cast(pl.UInt32).replace_strict(
        list(range(len(names))), names, return_dtype=pl.Enum(names)
    )


def _assign(df: pl.DataFrame, spec: SplitSpec) -> npt.NDArray[np.int64]:
    """The index of every row's part."""
    import numpy as np

    for role in ("key", "stratify", "time_column"):
        column = getattr(spec, role)
        if column is not None and column not in df.columns:
            available = ", ".join(df.columns) or "(none)"
            raise InvalidInputError(
                f"column {column!r} ({role}) is not in the data; available columns: {available}"
            )
    shares = np.array(list(spec.fractions.values()), dtype=np.float64)
    if spec.method == "time":
        return _assign_by_time(df, spec, shares)
    shares = shares / shares.sum()
    if spec.method == "hash":
        assert spec.key is not None
        keys = df.get_column(spec.key)
        _no_nulls(keys, "key")
        bounds = np.cumsum(shares)[:-1]
        return np.searchsorted(bounds, hash_unit(keys, spec.seed), side="right").astype(np.int64)
    # One raw 64-bit draw per row from PCG64: the bit generator's stream is stable across NumPy
    # versions, unlike Generator methods such as permutation().
    draws = np.random.PCG64(spec.seed).random_raw(df.height)
    if spec.method == "stratified":
        assert spec.stratify is not None
        classes = df.get_column(spec.stratify)
        try:
            # Nulls are a class of their own (code 0).
            codes = classes.rank("dense").fill_null(0).to_numpy().astype(np.int64)
        except Exception as exc:  # polars raises several types for unorderable dtypes
            raise InvalidInputError(
                f"cannot stratify on column {spec.stratify!r} of type {classes.dtype}: {exc}"
            ) from None
    else:
        codes = np.zeros(df.height, dtype=np.int64)
    return _cut_shuffled(codes, draws, shares)


def _no_nulls(series: pl.Series, role: str) -> None:
    nulls = series.null_count()
    if nulls:
        raise InvalidInputError(
            f"{role} column {series.name!r} has {nulls} null value{'s' * (nulls != 1)} of "
            f"{series.len()} rows; every row needs a {role.split('_')[0]} value (drop or fill "
            "them first)"
        )


def _exact_counts(sizes: npt.NDArray[np.int64], shares: npt.NDArray[np.float64]) -> Any:
    """Rows per part for groups of the given sizes, by largest-remainder rounding.

    Each row of the result sums to its group size; ties go to the earlier part.
    """
    import numpy as np

    raw = sizes[:, None].astype(np.float64) * shares[None, :]
    counts = np.floor(raw).astype(np.int64)
    missing = sizes - counts.sum(axis=1)
    order = np.argsort(-(raw - counts), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(shares.size)[None, :].repeat(len(sizes), 0), 1)
    return counts + (rank < missing[:, None])


def _cut_shuffled(
    codes: npt.NDArray[np.int64], draws: npt.NDArray[np.uint64], shares: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Order each class by its draws and give the first rows to the first part, and so on."""
    import numpy as np

    n = codes.size
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out
    order = np.lexsort((draws, codes))
    sorted_codes = codes[order]
    sizes = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.arange(n) - starts[sorted_codes]
    bounds = np.cumsum(_exact_counts(sizes, shares), axis=1)[:, :-1]
    out[order] = (rank[:, None] >= bounds[sorted_codes]).sum(axis=1)
    return out


def _assign_by_time(
    df: pl.DataFrame, spec: SplitSpec, shares: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    import numpy as np
    import polars as pl

    assert spec.time_column is not None
    times = df.get_column(spec.time_column)
    if not isinstance(times.dtype, pl.Datetime) and times.dtype != pl.Date:
        raise InvalidInputError(
            f"time column {spec.time_column!r} has type {times.dtype}; a time split needs a "
            "Date or Datetime column (parse text first, e.g. pl.col(...).str.to_datetime())"
        )
    _no_nulls(times, "time_column")
    values = times.to_physical().to_numpy().astype(np.int64)
    if spec.cutoffs is not None:
        bounds = np.array(
            [_cutoff_value(c, times.dtype, spec.time_column) for c in spec.cutoffs],
            dtype=np.int64,
        )
    else:
        # Cut in time order at exact counts, then turn the cut positions into times so that
        # equal times stay together (and no part holds a time earlier than the one before).
        ordered = np.sort(values)
        ends = np.cumsum(_exact_counts(np.array([values.size]), shares / shares.sum())[0])[:-1]
        top = np.iinfo(np.int64).max
        bounds = np.array([ordered[e] if e < values.size else top for e in ends], dtype=np.int64)
    return np.searchsorted(bounds, values, side="right").astype(np.int64)


def _cutoff_value(text: str, dtype: Any, column: str) -> int:
    """A cutoff in the physical units of the time column (days, or ticks since the epoch)."""
    import polars as pl

    moment = datetime.fromisoformat(text)
    if dtype == pl.Date:
        if moment.tzinfo is not None or moment.time() != datetime.min.time():
            raise InvalidInputError(
                f"cutoff {text!r} has a time of day or a time zone, but column {column!r} holds "
                "dates; use a date such as 2024-06-01"
            )
        return int(pl.Series([moment.date()]).to_physical()[0])
    tz = dtype.time_zone
    value = pl.Series([moment])
    if tz is None:
        if moment.tzinfo is not None:
            raise InvalidInputError(
                f"cutoff {text!r} has a time zone, but column {column!r} has none; drop the "
                "offset or give the column a time zone"
            )
    elif moment.tzinfo is None:
        value = value.dt.replace_time_zone(tz)  # read a naive cutoff in the column's zone
    else:
        value = value.dt.convert_time_zone(tz)
    return int(value.cast(pl.Datetime(dtype.time_unit, tz)).to_physical()[0])


def hash_unit(values: pl.Series, seed: int = 0) -> npt.NDArray[np.float64]:
    """A stable, uniform number in [0, 1) for every value, from its text and the seed.

    The text of a value is what polars' cast to String gives (integers as plain digits). The
    number is FNV-1a (64 bit) over the UTF-8 bytes of ``f"{seed}:{text}"``, passed through the
    MurmurHash3 64-bit finaliser, keeping the top 53 bits: ``(h >> 11) / 2**53``. It depends on
    nothing else (not the process, the platform or the library versions), so a recorded split
    can be recomputed years later. The work is vectorised over rows and loops once per byte
    position, so it suits keys of ordinary length.

    >>> import polars as pl
    >>> hash_unit(pl.Series([1, 2])).round(6).tolist()
    [0.321723, 0.885299]

    Raises:
        InvalidInputError: the values contain nulls, or have no text form (lists, structs).
    """
    import numpy as np
    import polars as pl
    import pyarrow as pa

    _no_nulls(values, "key")
    try:
        text = values.cast(pl.String)
    except pl.exceptions.PolarsError:
        raise InvalidInputError(
            f"key column {values.name!r} has type {values.dtype}, which has no text form; use "
            "an integer or string key"
        ) from None
    arr = text.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )

    state = _FNV_OFFSET
    for byte in f"{seed}:".encode():
        state = ((state ^ byte) * _FNV_PRIME) & _MASK64

    lengths = np.diff(offsets)
    # Longest first, so the rows still being hashed at byte position j are a prefix.
    order = np.argsort(-lengths, kind="stable")
    starts = offsets[:-1][order]
    neg_lengths = -lengths[order]
    h = np.full(n, state, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    for j in range(int(-neg_lengths[0]) if n else 0):
        active = int(np.searchsorted(neg_lengths, -j, side="left"))
        head = h[:active]
        head ^= data[starts[:active] + j].astype(np.uint64)
        head *= prime
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    out = np.empty(n, dtype=np.float64)
    out[order] = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return out
