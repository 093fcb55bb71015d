"""Starting points inferred for people to review: a contract from data, and a preprocessing
spec from a contract.

>>> import polars as pl
>>> contract = infer_contract(pl.DataFrame({"id": [1, 2, 3], "age": [30, 41, 30]}))
>>> contract.columns["id"].unique
True
>>> spec_from_contract(contract).to_dict()["columns"]["age"]
{'impute': 'median', 'scale': 'standard'}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

from shipyard.data.contracts import (
    COLUMN_TYPES,
    INFER_ROW_COUNT_SHARE,
    RANGE_TYPES,
    Bound,
    ColumnSpec,
    Contract,
    DatasetChecks,
    Range,
    parse_datetime,
)
from shipyard.data.ingest import read_table
from shipyard.data.preprocessing import (
    ColumnStep,
    Encode,
    PreprocessingSpec,
    gather_problems,
    not_one_of,
    raise_problems,
)
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["infer_contract", "spec_from_contract"]


def infer_column_type(dtype: Any) -> str | None:
    import polars as pl

    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "category"
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "datetime"
    return None


def infer_contract(
    data: pl.DataFrame | pl.LazyFrame | str | os.PathLike[str],
    *,
    max_categories: int = 20,
    description: str = "",
) -> Contract:
    """Write a starting contract from data; the data it was inferred from passes it.

    Per column: the type; ``nullable: false`` when there are no missing values (null or NaN);
    the observed min and max for numbers and datetimes; for text with at most
    ``max_categories`` distinct values that repeat (at most half as many distinct values as
    values), ``type: category`` with the ``allowed`` values; ``unique: true`` for int and
    string columns whose values are all distinct. A ``row_count`` check asks for at least a
    tenth of the current rows. Columns of other types (lists, structs, decimals, all-null)
    are left out. Edit the result: observed ranges are facts about this batch, not rules.

    >>> import polars as pl
    >>> infer_contract(pl.DataFrame({"id": [1, 2, 3]})).columns["id"].unique
    True

    Raises:
        InvalidInputError: the data cannot be read.
    """
    import polars as pl

    try:
        return read_table(
            data, partial(_infer, max_categories=max_categories, description=description)
        )
    except (pl.exceptions.PolarsError, OSError) as exc:  # a frame given in memory
        raise InvalidInputError(f"cannot read the data to infer a contract: {exc}") from None


def _infer(lf: pl.LazyFrame, *, max_categories: int, description: str) -> Contract:
    import polars as pl

    schema = lf.collect_schema()
    types = {n: t for n, d in schema.items() if (t := infer_column_type(d)) is not None}
    exprs: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, name in enumerate(types):
        col = pl.col(name)
        if types[name] == "float":
            col = col.fill_nan(None)
        exprs += [col.null_count().alias(f"{i}_nulls"), col.n_unique().alias(f"{i}_distinct")]
        if types[name] in RANGE_TYPES:
            exprs += [col.min().alias(f"{i}_min"), col.max().alias(f"{i}_max")]
    stats = lf.select(exprs).collect(engine="streaming").row(0, named=True)
    rows = int(stats["__rows"])
    columns: dict[str, ColumnSpec] = {}
    for i, (name, type_) in enumerate(types.items()):
        nulls = int(stats[f"{i}_nulls"])
        distinct = int(stats[f"{i}_distinct"]) - (1 if nulls else 0)
        present = rows - nulls
        allowed = None
        repeats = type_ == "category" or distinct * 2 <= present
        if type_ in ("string", "category") and 0 < distinct <= max_categories and repeats:
            type_ = "category"
            values = lf.select(pl.col(name).cast(pl.String).drop_nulls().unique().sort())
            allowed = tuple(values.collect().to_series().to_list())
        bounds = [_clean_bound(stats.get(f"{i}_{k}")) for k in ("min", "max")]
        columns[name] = ColumnSpec(
            type=type_,  # type: ignore[arg-type]
            nullable=nulls > 0,
            min=bounds[0],
            max=bounds[1],
            allowed=allowed,
            unique=type_ in ("int", "string") and present >= 2 and distinct == present,
        )
    row_count = Range(min=math.floor(rows * INFER_ROW_COUNT_SHARE) or 1) if rows else None
    return Contract(columns, description, checks=DatasetChecks(row_count=row_count))


def _clean_bound(value: Any) -> Bound | None:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, date):
        return parse_datetime(value)
    return value  # type: ignore[no-any-return]


_NUMERIC_TYPES = ("int", "float")


def spec_from_contract(contract: Any, target: str | None = None) -> PreprocessingSpec:
    """A sensible default spec for the columns of a data contract.

    ``contract`` is an object with ``to_dict()`` or a document
    ``{"columns": {name: {"type": ..., "nullable": ..., "allowed": [...], "unique": ...}}}``.
    Per column:

    - ``target`` (the label) is left out of the spec;
    - unique (id-like) and ``datetime`` columns and strings without ``allowed`` values
      (free text) are dropped;
    - ``int``/``float``: impute median, standard scaling;
    - ``bool``: ordinal encoding with categories ``[false, true]`` (0 and 1); a missing value
      is coded -1 (scikit-learn's imputer does not accept boolean columns);
    - ``string``/``category`` with ``allowed``: impute most_frequent, onehot with the allowed
      values as categories and unknown values ignored; ``category`` without ``allowed``
      learns its categories from the training data.

    ``remainder`` is ``drop``, so columns added later are ignored until the spec names them.

    >>> spec = spec_from_contract(
    ...     {"columns": {"id": {"type": "int", "unique": True}, "age": {"type": "int"},
    ...                  "churned": {"type": "bool"}}},
    ...     target="churned",
    ... )
    >>> spec.to_dict()["columns"]
    {'id': {'drop': True}, 'age': {'impute': 'median', 'scale': 'standard'}}

    Raises:
        InvalidInputError: the contract has no ``columns`` mapping, a column has an unknown
            type, or ``target`` is not one of its columns.
    """
    doc = contract.to_dict() if hasattr(contract, "to_dict") else contract
    columns = doc.get("columns") if isinstance(doc, Mapping) else None
    if not isinstance(columns, Mapping):
        raise InvalidInputError(
            "a contract must be a mapping with 'columns': {name: {type: ..., ...}}"
        )
    problems: list[str] = []
    if target is not None and target not in columns:
        problems.append(
            f"target: column {target!r} is not in the contract; its columns are "
            + ", ".join(map(str, columns))
        )
    steps: dict[str, ColumnStep] = {}
    for name, col in columns.items():
        if name == target:
            continue
        col = {"type": col} if isinstance(col, str) else col or {}  # `age: int` short form
        kind = col.get("type")
        allowed = col.get("allowed")
        if kind not in COLUMN_TYPES:
            problems.append(f"columns.{name}.type: {not_one_of(kind, COLUMN_TYPES)}")
            continue
        if col.get("unique") or kind == "datetime":
            steps[name] = ColumnStep(drop=True)
        elif kind in _NUMERIC_TYPES:
            steps[name] = ColumnStep(impute="median", scale="standard")
        elif kind == "bool":
            # No imputer: SimpleImputer rejects bool arrays. A missing value (None, NaN or
            # pd.NA) is not a known category, so it gets the code -1 of its own.
            steps[name] = ColumnStep(encode=Encode("ordinal", categories=(False, True)))
        elif allowed:
            steps[name] = gather_problems(
                f"columns.{name}.allowed",
                problems,
                partial(_onehot_step, allowed),
            )
        elif kind == "category":
            steps[name] = ColumnStep(impute="most_frequent", encode="onehot")
        else:
            steps[name] = ColumnStep(drop=True)
    raise_problems("contract", problems)
    return PreprocessingSpec(columns=steps, remainder="drop")


def _onehot_step(allowed: Any) -> ColumnStep:
    # Numeric allowed values must be sorted for scikit-learn; strings keep the contract's order.
    categories = tuple(allowed)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in categories):
        categories = tuple(sorted(categories))
    return ColumnStep(impute="most_frequent", encode=Encode("onehot", categories=categories))
