"""Feature definitions: entities and feature views, as users write them (YAML or Python) and as
the catalog stores them (versioned read models).

A definitions file::

    entities:
      - name: applicant
        join_keys: [applicant_id]
        description: A person who applied for credit.
        owner: risk-team
    feature_views:
      - name: payments
        source: payments          # a dataset: NAME follows its latest version, NAME@3 pins one
        entity: applicant
        timestamp: paid_at        # the event-time column of the source
        ttl: 30d                  # how old a value may be and still count (s, m, h, d, w)
        owner: risk-team
        description: Repayment history.
        features:
          - {name: late_payments, type: int, description: Payments more than 30 days late.}

The same in Python: ``Entity(...)``, ``FeatureView(..., features=[Feature(...)])`` given to
``project.features.apply([...])``, or defined at the top level of a ``.py`` file given to
``shipyard features apply``.
"""

from __future__ import annotations

import re
import runpy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError
from shipyard.refs import parse_ref, validate_name

__all__ = [
    "FEATURE_TYPES",
    "Entity",
    "EntityDefinition",
    "Feature",
    "FeatureView",
    "FeatureViewDefinition",
    "format_ttl",
    "load_definitions",
    "parse_ttl",
]

#: The types a feature may declare, and the polars dtype names each accepts in its source.
FEATURE_TYPES: dict[str, tuple[str, ...]] = {
    "int": ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"),
    "float": (
        "Float32",
        "Float64",
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "Decimal",
    ),
    "string": ("String", "Categorical", "Enum"),
    "bool": ("Boolean",),
    "datetime": ("Datetime", "Date"),
}
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(value: Any, where: str) -> int | None:
    """A time to live in seconds from ``30d``, ``12h``, ``90m``, ``3600`` (seconds) or None
    (no limit).

    >>> parse_ttl("30d", "ttl")
    2592000

    Raises:
        InvalidInputError: not a duration.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInputError(f"{where}: ttl must be a duration such as 30d, 12h or 3600")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _TTL.match(str(value))
        if m is None:
            raise InvalidInputError(
                f"{where}: ttl {value!r} is not a duration; write it like 30d, 12h, 90m or 3600"
            )
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds <= 0:
        raise InvalidInputError(f"{where}: ttl must be above 0 (leave it out for no limit)")
    return int(seconds)


def format_ttl(seconds: int | None) -> str:
    """``2592000`` as ``30d``; None as ``none``."""
    if seconds is None:
        return "none"
    for unit in ("d", "h", "m"):
        if seconds % _UNIT[unit] == 0:
            return f"{seconds // _UNIT[unit]}{unit}"
    return f"{seconds}s"


# -- what users write ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature(ReadModel):
    """One feature of a view: a column of its source, its type and what it means."""

    name: str
    type: str
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EntityDefinition:
    """An entity as written: what feature rows are about, and the columns that identify it."""

    name: str
    join_keys: list[str]
    description: str = ""
    owner: str = ""

    def spec(self) -> dict[str, Any]:
        """The canonical definition, as stored and compared."""
        validate_name(self.name, "entity name")
        keys = [str(k) for k in self.join_keys]
        if not keys or any(not k.strip() for k in keys) or len(set(keys)) != len(keys):
            raise InvalidInputError(
                f"entity '{self.name}': join_keys must name one or more distinct columns"
            )
        return {
            "join_keys": keys,
            "description": str(self.description or ""),
            "owner": str(self.owner or ""),
        }


@dataclass(frozen=True)
class FeatureViewDefinition:
    """A feature view as written: features of one entity, read from a dataset's columns."""

    name: str
    source: str
    entity: str
    timestamp: str
    features: list[Feature]
    ttl: int | str | None = None
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    contract: str | None = None

    def spec(self) -> dict[str, Any]:
        """The canonical definition (without the entity's version, added when applied).

        Raises:
            InvalidInputError: every problem found, listed.
        """
        where = f"feature view '{self.name}'"
        validate_name(self.name, "feature view name")
        parse_ref(self.source)
        if self.contract is not None:
            parse_ref(self.contract)
        problems: list[str] = []
        if not str(self.timestamp or "").strip():
            problems.append("timestamp must name the event-time column of the source")
        features: list[dict[str, Any]] = []
        seen: set[str] = set()
        for f in self.features:
            if not isinstance(f, Feature):
                problems.append(f"features must be Feature objects, not {type(f).__name__}")
                continue
            if not f.name.strip():
                problems.append("a feature has no name")
            elif f.name in seen:
                problems.append(f"feature {f.name!r} is defined twice")
            seen.add(f.name)
            if f.type not in FEATURE_TYPES:
                problems.append(
                    f"feature {f.name!r} has type {f.type!r}; use one of "
                    + ", ".join(FEATURE_TYPES)
                )
            features.append(
                {
                    "name": f.name,
                    "type": f.type,
                    "description": str(f.description or ""),
                    "owner": str(f.owner or self.owner or ""),
                    "tags": {str(k): str(v) for k, v in (f.tags or {}).items()},
                }
            )
        if not features and not problems:
            problems.append("it defines no features")
        if problems:
            raise InvalidInputError(
                f"{where}: " + "; ".join(problems), details={"problems": problems}
            )
        return {
            "source": self.source,
            "entity": self.entity,
            "timestamp": self.timestamp,
            "ttl_seconds": parse_ttl(self.ttl, where),
            "description": str(self.description or ""),
            "owner": str(self.owner or ""),
            "tags": {str(k): str(v) for k, v in (self.tags or {}).items()},
            "contract": self.contract,
            "features": features,
        }


# -- what the catalog returns -------------------------------------------------------------------


@dataclass(frozen=True)
class Entity(ReadModel):
    """A version of an entity."""

    json_properties = ("ref",)

    name: str
    version: int
    join_keys: list[str]
    description: str
    owner: str
    digest: str
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class FeatureView(ReadModel):
    """A version of a feature view: its source dataset (``NAME`` follows the latest version,
    ``NAME@N`` is pinned), its entity version and join keys, the event-time column, the TTL
    in seconds (None: no limit), the features, and the contract that checks what is
    materialized (if any)."""

    json_properties = ("ref",)

    name: str
    version: int
    source: str
    entity: str
    entity_version: int
    join_keys: list[str]
    timestamp: str
    ttl_seconds: int | None
    features: list[Feature]
    description: str
    owner: str
    tags: dict[str, str]
    contract: str | None
    digest: str
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def feature(self, name: str) -> Feature:
        """The feature called ``name``.

        Raises:
            InvalidInputError: the view has no such feature (the message lists them).
        """
        for f in self.features:
            if f.name == name:
                return f
        raise InvalidInputError(
            f"feature view '{self.ref}' has no feature {name!r}; it has "
            + ", ".join(f.name for f in self.features)
        )


# -- reading definition files -------------------------------------------------------------------

Definition = EntityDefinition | FeatureViewDefinition


def load_definitions(source: str | Path | Iterable[Any]) -> list[Definition]:
    """The definitions in a YAML file, a Python file (its top-level ``Entity`` and
    ``FeatureView`` definitions), or a list of definition objects.

    Raises:
        InvalidInputError: the file is missing or malformed (every problem listed).
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such definitions file")
        if path.suffix == ".py":
            found = runpy.run_path(str(path))
            return [
                v for v in found.values() if isinstance(v, EntityDefinition | FeatureViewDefinition)
            ]
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{path} is not valid YAML: {exc}") from None
        return _from_document(doc, str(path))
    out: list[Definition] = []
    for item in source:
        if not isinstance(item, EntityDefinition | FeatureViewDefinition):
            raise InvalidInputError(
                f"cannot apply {type(item).__name__}: give EntityDefinition and "
                "FeatureViewDefinition objects, or a definitions file"
            )
        out.append(item)
    return out


_ENTITY_KEYS = {"name", "join_keys", "description", "owner"}
_VIEW_KEYS = {
    "name",
    "source",
    "entity",
    "timestamp",
    "features",
    "ttl",
    "description",
    "owner",
    "tags",
    "contract",
}
_FEATURE_KEYS = {"name", "type", "description", "owner", "tags"}


def _from_document(doc: Any, where: str) -> list[Definition]:
    if doc is None:
        return []
    if not isinstance(doc, Mapping) or set(doc) - {"entities", "feature_views"}:
        raise InvalidInputError(
            f"{where}: a definitions file is a mapping with 'entities' and 'feature_views' lists"
        )
    problems: list[str] = []
    out: list[Definition] = []
    for i, e in enumerate(doc.get("entities") or []):
        at = f"entities[{i}]"
        if not _mapping_with(e, _ENTITY_KEYS, {"name", "join_keys"}, at, problems):
            continue
        keys = e["join_keys"]
        out.append(
            EntityDefinition(
                str(e["name"]),
                [str(k) for k in keys] if isinstance(keys, list) else [str(keys)],
                str(e.get("description") or ""),
                str(e.get("owner") or ""),
            )
        )
    for i, v in enumerate(doc.get("feature_views") or []):
        at = f"feature_views[{i}]"
        required = {"name", "source", "entity", "timestamp", "features"}
        if not _mapping_with(v, _VIEW_KEYS, required, at, problems):
            continue
        features: list[Feature] = []
        raw = v["features"]
        for j, f in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(f, str):
                f = {"name": f, "type": "float"}
            if _mapping_with(f, _FEATURE_KEYS, {"name", "type"}, f"{at}.features[{j}]", problems):
                features.append(
                    Feature(
                        str(f["name"]),
                        str(f["type"]),
                        str(f.get("description") or ""),
                        str(f.get("owner") or ""),
                        dict(f.get("tags") or {}),
                    )
                )
        out.append(
            FeatureViewDefinition(
                name=str(v["name"]),
                source=str(v["source"]),
                entity=str(v["entity"]),
                timestamp=str(v["timestamp"]),
                features=features,
                ttl=v.get("ttl"),
                description=str(v.get("description") or ""),
                owner=str(v.get("owner") or ""),
                tags=dict(v.get("tags") or {}),
                contract=None if v.get("contract") is None else str(v["contract"]),
            )
        )
    if problems:
        raise InvalidInputError(
            f"{where}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: "
            + "; ".join(problems),
            details={"problems": problems},
        )
    return out


def _mapping_with(
    item: Any, allowed: set[str], required: set[str], at: str, problems: list[str]
) -> bool:
    if not isinstance(item, Mapping):
        problems.append(f"{at} must be a mapping")
        return False
    unknown = sorted(set(item) - allowed)
    missing = sorted(required - set(item))
    if unknown:
        problems.append(f"{at} has unknown keys {', '.join(unknown)}")
    if missing:
        problems.append(f"{at} needs {', '.join(missing)}")
    return not unknown and not missing
