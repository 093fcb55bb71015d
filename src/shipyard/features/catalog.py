"""The catalog of feature definitions in the metadata store: versions of entities and feature
views, what ``apply`` changes (with a readable diff), and references to features
(``view:feature``, ``view@2:feature``, ``view:*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.features.definitions import Entity, Feature, FeatureView, format_ttl
from shipyard.refs import parse_ref
from shipyard.stores.db.tables import feature_entities, feature_views
from shipyard.stores.versioning import pick_version

__all__ = [
    "ApplyChange",
    "FeatureRef",
    "GlossaryEntry",
    "diff_specs",
    "latest_row",
    "parse_feature_refs",
    "resolve_view",
    "to_entity",
    "to_view",
]


@dataclass(frozen=True)
class ApplyChange(ReadModel):
    """What ``apply`` did (or, in a dry run, would do) to one definition: ``action`` is
    ``created``, ``updated`` or ``unchanged``; ``version`` the version it now has; ``changes``
    the differences from the previous version, one line each."""

    kind: str  # "entity" or "feature_view"
    name: str
    version: int
    action: str
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GlossaryEntry(ReadModel):
    """One feature as the glossary lists it: what it means and who owns it."""

    feature: str  # view:feature
    view: str  # name@version
    entity: str
    type: str
    description: str
    owner: str
    tags: dict[str, str]
    source: str
    ttl: str


@dataclass(frozen=True)
class FeatureRef:
    """Features asked of one view: ``view`` as written (``NAME`` or ``NAME@N``) and feature
    names (``*``: all of them)."""

    view: str
    features: tuple[str, ...]


def parse_feature_refs(refs: Sequence[str] | str) -> list[FeatureRef]:
    """``["payments:late", "payments:count", "income@2:*"]`` grouped by view, in first-seen
    order; a comma-separated string works too.

    Raises:
        InvalidInputError: a reference is not ``VIEW:FEATURE``.
    """
    items = refs.split(",") if isinstance(refs, str) else list(refs)
    grouped: dict[str, list[str]] = {}
    for raw in items:
        text = str(raw).strip()
        if not text:
            continue
        view, sep, feature = text.rpartition(":")
        if not sep or not view or not feature:
            raise InvalidInputError(
                f"feature reference {text!r} must be VIEW:FEATURE (e.g. payments:late_payments, "
                "payments@2:late_payments or payments:*)"
            )
        parse_ref(view)
        names = grouped.setdefault(view, [])
        if feature not in names:
            names.append(feature)
    if not grouped:
        raise InvalidInputError("no features asked for: give VIEW:FEATURE references")
    return [FeatureRef(v, tuple(f)) for v, f in grouped.items()]


def latest_row(conn: Connection, table: Table, name: str) -> Any:
    return conn.execute(
        select(table).where(table.c.name == name).order_by(table.c.version.desc()).limit(1)
    ).first()


def resolve_view(conn: Connection, ref: str) -> FeatureView:
    """The feature view version ``ref`` means (``NAME``: the latest).

    Raises:
        NotFoundError: no such view or version.
    """
    parsed = parse_ref(ref)
    base = select(feature_views).where(feature_views.c.name == parsed.name)
    if conn.execute(base.limit(1)).first() is None:
        from shipyard._internal.suggest import did_you_mean

        known = conn.execute(select(feature_views.c.name).distinct()).scalars()
        raise NotFoundError(
            f"no feature view '{parsed.name}'{did_you_mean(parsed.name, known)}; see "
            "`shipyard features list`, or define it and run `shipyard features apply FILE`"
        )
    row = pick_version(
        conn,
        base,
        feature_views,
        parsed,
        what="feature view",
        versions_command="features show",
    )
    return to_view(row)


def resolve_entity(conn: Connection, ref: str) -> Entity:
    """The entity version ``ref`` means (``NAME``: the latest).

    Raises:
        NotFoundError: no such entity or version.
    """
    parsed = parse_ref(ref)
    base = select(feature_entities).where(feature_entities.c.name == parsed.name)
    if conn.execute(base.limit(1)).first() is None:
        from shipyard._internal.suggest import did_you_mean

        known = conn.execute(select(feature_entities.c.name).distinct()).scalars()
        raise NotFoundError(
            f"no entity '{parsed.name}'{did_you_mean(parsed.name, known)}; see "
            "`shipyard features list`"
        )
    return to_entity(
        pick_version(
            conn,
            base,
            feature_entities,
            parsed,
            what="entity",
            versions_command="features show",
        )
    )


def to_entity(row: Any) -> Entity:
    spec = dict(row.spec)
    return Entity(
        row.name,
        int(row.version),
        list(spec["join_keys"]),
        spec.get("description", ""),
        spec.get("owner", ""),
        row.digest,
        row.created_at,
        row.created_by,
    )


def to_view(row: Any) -> FeatureView:
    spec = dict(row.spec)
    return FeatureView(
        name=row.name,
        version=int(row.version),
        source=spec["source"],
        entity=spec["entity"],
        entity_version=int(spec["entity_version"]),
        join_keys=list(spec["join_keys"]),
        timestamp=spec["timestamp"],
        ttl_seconds=spec.get("ttl_seconds"),
        features=[
            Feature(f["name"], f["type"], f["description"], f["owner"], dict(f["tags"]))
            for f in spec["features"]
        ],
        description=spec.get("description", ""),
        owner=spec.get("owner", ""),
        tags=dict(spec.get("tags") or {}),
        contract=spec.get("contract"),
        digest=row.digest,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def diff_specs(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The differences between two stored definitions, one line each: ``+ feature x (int)``,
    ``- feature y``, ``~ ttl: 30d -> 7d``."""
    if old is None:
        lines = [
            f"+ {k}: {_show(k, v)}"
            for k, v in new.items()
            if k != "features" and v not in (None, "", {}, [])
        ]
        return lines + [f"+ feature {f['name']} ({f['type']})" for f in new.get("features", [])]
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key == "features":
            continue
        if old.get(key) != new.get(key):
            out.append(f"~ {key}: {_show(key, old.get(key))} -> {_show(key, new.get(key))}")
    before = {f["name"]: f for f in old.get("features", [])}
    after = {f["name"]: f for f in new.get("features", [])}
    for name, f in after.items():
        if name not in before:
            out.append(f"+ feature {name} ({f['type']})")
            continue
        for attr in ("type", "description", "owner", "tags"):
            if before[name].get(attr) != f.get(attr):
                out.append(
                    f"~ feature {name} {attr}: {_show(attr, before[name].get(attr))} -> "
                    f"{_show(attr, f.get(attr))}"
                )
    out += [f"- feature {name}" for name in before if name not in after]
    return out


def _show(key: str, value: Any) -> str:
    """A definition's value as people read it: ``30d``, ``'text'``, ``pii=no, team=risk``,
    ``a, b``, ``none``."""
    if key == "ttl_seconds":
        return format_ttl(value)
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _show("", value)


def glossary_entries(view: FeatureView) -> list[GlossaryEntry]:
    return [
        GlossaryEntry(
            f"{view.name}:{f.name}",
            view.ref,
            view.entity,
            f.type,
            f.description,
            f.owner or view.owner,
            f.tags,
            view.source,
            format_ttl(view.ttl_seconds),
        )
        for f in view.features
    ]
