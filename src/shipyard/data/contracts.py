"""Data contracts: what a table must look like, written by people and checked by machines.

A contract is a small YAML document (the format is documented in ``docs/contracts.md``)::

    description: Loan applicants
    columns:
      id:   {type: int, unique: true, nullable: false}
      age:  {type: int, min: 18, max: 100}
      city: {type: category, allowed: [a, b, c]}
    checks:
      row_count: {min: 1000}

One contract compiles to two checkers that agree on every row-level rule: batch validation on
pandera's polars backend (:mod:`shipyard.data.validation`) and a pydantic model for one record
(:meth:`Contract.to_pydantic`), used per request at serving time.

>>> contract = Contract.from_yaml("columns: {age: {type: int, min: 18}}")
>>> contract.columns["age"].min
18
>>> contract.to_pydantic().model_validate({"age": 40}).age
40
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "COLUMN_TYPES",
    "ColumnSpec",
    "ColumnType",
    "Contract",
    "DatasetChecks",
    "LabelRate",
    "QuantileBounds",
    "Range",
    "Representation",
]

ColumnType = Literal["int", "float", "bool", "string", "category", "datetime"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
Bound = int | float | datetime

RANGE_TYPES = ("int", "float", "datetime")
# Inferred contracts ask for at least this share of the rows they were inferred from: it catches
# an empty or truncated load without failing the next, naturally smaller batch.
INFER_ROW_COUNT_SHARE = 0.1


@dataclass(frozen=True)
class ColumnSpec:
    """The rules for one column. Build contracts with :meth:`Contract.from_dict` or
    :meth:`Contract.from_yaml`, which check them; datetime bounds are naive UTC."""

    type: ColumnType
    nullable: bool = True
    min: Bound | None = None
    max: Bound | None = None
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    unique: bool = False
    description: str = ""
    # Personal data: hashed in the prediction log, left out by `data get --drop-pii`, named
    # in the access log when read, listed on the model card.
    pii: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        if self.unique:
            out["unique"] = True
        if self.pii:
            out["pii"] = True
        if self.min is not None:
            out["min"] = bound_to_json(self.min)
        if self.max is not None:
            out["max"] = bound_to_json(self.max)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.regex is not None:
            out["regex"] = self.regex
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Range:
    """Inclusive bounds; either may be None (unbounded)."""

    min: int | float | None = None
    max: int | float | None = None

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True)
class QuantileBounds:
    """The ``q`` quantile (0 to 1, linear interpolation) must lie within ``min``..``max``."""

    q: float
    min: int | float | None = None
    max: int | float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"q": self.q, **Range(self.min, self.max).to_dict()}


@dataclass(frozen=True)
class Representation:
    """Bounds on the share of rows of each group (value) of a sensitive column.

    ``min_share``/``max_share`` apply to every group; ``groups`` gives bounds per value (a
    named group that is absent has share 0). Shares count the rows with a value in the
    column; missing values are no group. When the column lists ``allowed`` values, an absent
    allowed value is a group of share 0 too. A column without any value fails every
    minimum share: no group reaches it.
    """

    min_share: float | None = None
    max_share: float | None = None
    groups: Mapping[Any, Range] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.min_share is not None:
            out["min_share"] = self.min_share
        if self.max_share is not None:
            out["max_share"] = self.max_share
        if self.groups:
            out["groups"] = {
                g: {f"{k}_share": v for k, v in r.to_dict().items()} for g, r in self.groups.items()
            }
        return out


@dataclass(frozen=True)
class LabelRate:
    """The rate of a label (the share of rows where ``label`` equals ``positive``) in each
    group of a sensitive ``column``: every group's rate within ``min``..``max``, the gap
    between the highest and the lowest rate at most ``max_gap``, and the lowest over the
    highest at least ``min_ratio`` (0.8 is the four-fifths rule)."""

    label: str
    column: str
    positive: Any = True
    min: float | None = None
    max: float | None = None
    max_gap: float | None = None
    min_ratio: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "column": self.column}
        if self.positive is not True:
            out["positive"] = self.positive
        for key in ("min", "max", "max_gap", "min_ratio"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class DatasetChecks:
    """Checks over the whole table rather than one row.

    ``max_null_share`` is one share for every contract column, or a share per column.
    """

    row_count: Range | None = None
    unique: tuple[tuple[str, ...], ...] = ()
    max_null_share: float | Mapping[str, float] | None = None
    mean: Mapping[str, Range] = field(default_factory=dict)
    quantile: Mapping[str, tuple[QuantileBounds, ...]] = field(default_factory=dict)
    representation: Mapping[str, Representation] = field(default_factory=dict)
    label_rate: tuple[LabelRate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.row_count is not None:
            out["row_count"] = self.row_count.to_dict()
        if self.unique:
            out["unique"] = [list(key) for key in self.unique]
        if isinstance(self.max_null_share, Mapping):
            out["max_null_share"] = dict(self.max_null_share)
        elif self.max_null_share is not None:
            out["max_null_share"] = self.max_null_share
        if self.mean:
            out["mean"] = {c: r.to_dict() for c, r in self.mean.items()}
        if self.quantile:
            out["quantile"] = {
                c: qs[0].to_dict() if len(qs) == 1 else [q.to_dict() for q in qs]
                for c, qs in self.quantile.items()
            }
        if self.representation:
            out["representation"] = {c: r.to_dict() for c, r in self.representation.items()}
        if self.label_rate:
            rates = [r.to_dict() for r in self.label_rate]
            out["label_rate"] = rates[0] if len(rates) == 1 else rates
        return out


@dataclass(frozen=True)
class Contract:
    """A data contract: columns with their rules, plus dataset-level checks.

    ``strict`` makes columns that the contract does not name a failure.
    """

    columns: Mapping[str, ColumnSpec]
    description: str = ""
    owner: str | None = None
    strict: bool = False
    checks: DatasetChecks = field(default_factory=DatasetChecks)

    @classmethod
    def from_dict(cls, doc: Any) -> Contract:
        """Build a contract from a parsed document, checking every part of it.

        Raises:
            InvalidInputError: listing every problem found ("3 problems in contract: ...").
        """
        from shipyard.data.contract_parsing import Problems, parse_contract

        problems = Problems()
        contract = parse_contract(doc, problems)
        problems.raise_if_any("contract")
        assert contract is not None
        return contract

    @classmethod
    def from_yaml(cls, text: str) -> Contract:
        """Parse a contract from YAML text.

        Raises:
            InvalidInputError: the text is not YAML, or the contract has problems.
        """
        from shipyard.data.contract_parsing import load_yaml

        doc = load_yaml(text, "contract", ": it needs at least 'columns'")
        return cls.from_dict(doc)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Contract:
        """Read a contract from a YAML file.

        Raises:
            InvalidInputError: the file is missing or unreadable, or the contract has problems
                (the message starts with the file name).
        """
        from shipyard.data.contract_parsing import read_document

        p = Path(path)
        text = read_document(p, "contract")
        try:
            return cls.from_yaml(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{p}: {exc.message}", details=exc.details) from None

    def to_dict(self) -> dict[str, Any]:
        """The contract as a JSON-ready document; ``from_dict`` reads it back unchanged."""
        out: dict[str, Any] = {"description": self.description}
        if self.owner is not None:
            out["owner"] = self.owner
        if self.strict:
            out["strict"] = True
        out["columns"] = {name: spec.to_dict() for name, spec in self.columns.items()}
        checks = self.checks.to_dict()
        if checks:
            out["checks"] = checks
        return out

    @property
    def pii_columns(self) -> list[str]:
        """The columns marked ``pii: true`` (personal data), in contract order."""
        return [name for name, spec in self.columns.items() if spec.pii]

    def to_yaml(self) -> str:
        """The contract as YAML, in the format users write."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def to_pydantic(self) -> type[BaseModel]:
        """A pydantic model class validating one record (row) against the row-level rules.

        It enforces type, nullable, min, max, allowed and regex with the same semantics as
        :func:`shipyard.data.validation.validate` (strict types, NaN counts as missing, regex
        search); uniqueness and dataset checks need many rows and are not part of it.
        Nullable fields may be omitted. Built once per contract and cached.

        >>> Model = Contract.from_yaml("columns: {age: {type: int, max: 99}}").to_pydantic()
        >>> Model.model_validate({"age": 5}).age
        5
        """
        return self._pydantic_model

    @cached_property
    def _pydantic_model(self) -> type[BaseModel]:
        return _build_pydantic(self)


# --------------------------------------------------------------------------- values


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def parse_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return naive_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return naive_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def bound_to_json(value: Bound) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    return value


# --------------------------------------------------------------------------- pydantic


def _field_name(name: str, index: int) -> str:
    from pydantic import BaseModel

    usable = (
        name.isidentifier()
        and not name.startswith(("_", "model_"))
        and not hasattr(BaseModel, name)
    )
    return name if usable else f"field_{index}"


class _RuleFailed(ValueError):
    """A value a row-level rule refuses; ``check`` names the rule for the refusal's
    ``check`` field (read by :func:`shipyard.registry.signatures.record_errors`)."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


def _one_of(allowed: tuple[Any, ...]) -> Callable[[Any], Any]:
    members = frozenset(allowed)

    def check(value: Any) -> Any:
        if value not in members:
            raise _RuleFailed("allowed", f"must be one of {list(allowed)!r}")
        return value

    return check


def _to_datetime(value: Any) -> Any:
    # JSON has no date type, so records carry ISO 8601 text; compare like validate() does.
    if isinstance(value, str):
        try:
            return naive_utc(datetime.fromisoformat(value))
        except ValueError:
            raise _RuleFailed("type", "expected an ISO 8601 date or time") from None
    return parse_datetime(value) if isinstance(value, date) else value


def _nan_guard(nullable: bool) -> Callable[[Any, Any], Any]:
    def guard(value: Any, handler: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            if nullable:
                return value
            raise _RuleFailed(
                "null", "NaN counts as a missing value and the column is not nullable"
            )
        return handler(value)

    return guard


def _field_annotation(spec: ColumnSpec) -> Any:
    import annotated_types as at
    from pydantic import AfterValidator, BeforeValidator, Strict, StringConstraints, WrapValidator

    python_type: Any = {
        "int": int,
        "float": float,
        "bool": bool,
        "string": str,
        "category": str,
        "datetime": datetime,
    }[spec.type]
    meta: list[Any] = [Strict()]
    if spec.min is not None:
        meta.append(at.Ge(spec.min))
    if spec.max is not None:
        meta.append(at.Le(spec.max))
    if spec.regex is not None:
        meta.append(StringConstraints(pattern=spec.regex))
    if spec.allowed is not None:
        meta.append(AfterValidator(_one_of(spec.allowed)))
    if spec.type == "datetime":
        meta.append(BeforeValidator(_to_datetime))
    annotation: Any = _annotated(python_type, meta)
    if spec.nullable:
        annotation = annotation | None
    if spec.type == "float":
        annotation = _annotated(annotation, [WrapValidator(_nan_guard(spec.nullable))])
    return annotation


def _annotated(base: Any, meta: list[Any]) -> Any:
    from typing import Annotated

    return Annotated[(base, *meta)]


def _build_pydantic(contract: Contract) -> type[BaseModel]:
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for i, (name, spec) in enumerate(contract.columns.items()):
        extra: Any = {"enum": list(spec.allowed)} if spec.allowed is not None else None
        default: Any = None if spec.nullable else ...
        info = Field(
            default,
            alias=name,
            description=spec.description or None,
            json_schema_extra=extra,
        )
        fields[_field_name(name, i)] = (_field_annotation(spec), info)
    config = ConfigDict(
        extra="forbid" if contract.strict else "ignore",
        protected_namespaces=(),
        frozen=True,
        title="ContractRecord",
    )
    model: type[BaseModel] = create_model(
        "ContractRecord", __config__=config, __doc__=contract.description or None, **fields
    )
    return model
