"""Model versions in the metadata store: the read models and how references resolve."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import NotFoundError
from shipyard.refs import Ref
from shipyard.stores.db.tables import (
    dataset_versions,
    model_aliases,
    model_versions,
    registered_models,
    run_inputs,
    runs,
)
from shipyard.stores.versioning import pick_version

__all__ = [
    "AliasEvent",
    "ModelSummary",
    "ModelVersion",
    "authors_of",
    "find_model_id",
    "resolve_version",
    "to_version",
]


@dataclass(frozen=True)
class ModelVersion(ReadModel):
    """One registered version of a model."""

    json_properties = ("ref",)

    name: str
    version: int
    digest: str
    flavor: str
    signature: dict[str, Any] | None
    run_id: str | None
    status: str
    description: str
    metrics: dict[str, float]
    aliases: list[str]
    created_at: datetime
    created_by: str
    lineage: list[dict[str, Any]] = field(default_factory=list)
    created: bool = False
    # The library versions it was saved with ({"sklearn": "1.6.1", ...}); empty if unknown.
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def training_data(self) -> list[str]:
        """The dataset versions its run trained on (logged with context ``train``)."""
        return [
            item["ref"]
            for item in self.lineage
            if item.get("kind") == "dataset" and item.get("context") == "train"
        ]


@dataclass(frozen=True)
class ModelSummary(ReadModel):
    """A registered model, its latest version and its aliases."""

    name: str
    latest: int
    versions: int
    aliases: dict[str, int]
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class AliasEvent(ReadModel):
    """One move of an alias."""

    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    time: datetime
    reason: str
    comment: str


def find_model_id(conn: Connection, name: str) -> int:
    row = conn.execute(
        select(registered_models.c.id).where(registered_models.c.name == name)
    ).first()
    if row is None:
        raise NotFoundError(f"no model '{name}'; see `shipyard models list`")
    return int(row.id)


def select_versions() -> Any:
    return select(model_versions, registered_models.c.name).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )


def resolve_version(conn: Connection, ref: Ref) -> Any:
    """The model version row a reference means (aliases included)."""
    model_id = find_model_id(conn, ref.name)
    base = select_versions().where(model_versions.c.model_id == model_id)

    def alias_version(alias: str) -> int:
        row = conn.execute(
            select(model_aliases.c.version)
            .where(model_aliases.c.model_id == model_id)
            .where(model_aliases.c.alias == alias)
        ).first()
        if row is None:
            names = sorted(
                r.alias
                for r in conn.execute(
                    select(model_aliases.c.alias).where(model_aliases.c.model_id == model_id)
                )
            )
            raise NotFoundError(
                f"model '{ref.name}' has no alias '{alias}'; its aliases are: "
                f"{', '.join(names) or 'none'}"
            )
        return int(row.version)

    return pick_version(
        conn,
        base,
        model_versions,
        ref,
        what="model",
        versions_command="models versions",
        alias_version=alias_version,
    )


def to_version(conn: Connection, row: Any) -> ModelVersion:
    aliases = sorted(
        r.alias
        for r in conn.execute(
            select(model_aliases.c.alias)
            .where(model_aliases.c.model_id == row.model_id)
            .where(model_aliases.c.version == row.version)
        )
    )
    inputs: list[dict[str, Any]] = []
    if row.run_id:
        inputs = [
            {"dataset": r.dataset, "context": r.context, "digest": r.digest}
            for r in conn.execute(
                select(run_inputs)
                .where(run_inputs.c.run_id == row.run_id)
                .order_by(run_inputs.c.context)
            )
        ]
    run = None
    if row.run_id:
        run = conn.execute(
            select(runs.c.name, runs.c.created_by).where(runs.c.id == row.run_id)
        ).first()
    lineage = (
        [
            {
                "kind": "run",
                "ref": row.run_id,
                "name": run.name if run else None,
                "by": run.created_by if run else None,
            }
        ]
        if row.run_id
        else []
    )
    lineage += [
        {"kind": "dataset", "ref": i["dataset"], "context": i["context"], "digest": i["digest"]}
        for i in inputs
    ]
    lineage += _tombstones(conn, f"{row.name}@{row.version}", lineage)
    return ModelVersion(
        name=row.name,
        version=int(row.version),
        digest=row.digest,
        flavor=row.flavor,
        signature=row.signature,
        run_id=row.run_id,
        status=row.status,
        description=row.description or "",
        metrics=dict(row.metrics or {}),
        aliases=aliases,
        created_at=row.created_at,
        created_by=row.created_by,
        lineage=lineage,
        environment=dict(row.environment or {}),
    )


def _tombstones(conn: Connection, ref: str, lineage: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the deleted dataset versions of ``lineage`` with their tombstone (who deleted
    them, when, why, whether purged), and return entries for deleted versions further up the
    lineage graph (a split's parent, the data an evaluation used)."""
    from shipyard.data.versions import tombstones
    from shipyard.stores.lineage import walk

    gone = conn.execute(
        select(dataset_versions.c.id).where(dataset_versions.c.deleted_at.is_not(None)).limit(1)
    ).first()
    if gone is None:
        return []
    direct = {item["ref"] for item in lineage if item["kind"] == "dataset"}
    upstream = [
        e["parent"].split(":", 1)[1]
        for e in walk(conn, "model", ref, upstream=True)
        if e["parent"].startswith("dataset:")
    ]
    found = tombstones(conn, sorted(direct | set(upstream)))
    for item in lineage:
        if item["kind"] == "dataset" and item["ref"] in found:
            item["deleted"] = found[item["ref"]]
    return [
        {"kind": "dataset", "ref": r, "context": "upstream", "digest": t["digest"], "deleted": t}
        for r, t in found.items()
        if r not in direct
    ]


def authors_of(conn: Connection, row: Any) -> set[str]:
    """Who authored a model version row: its registrant and the user whose run produced it
    (neither may approve it, nor its code: separation of duties)."""
    authors = {str(row.created_by)}
    if row.run_id:
        run = conn.execute(select(runs.c.created_by).where(runs.c.id == row.run_id)).first()
        if run is not None:
            authors.add(str(run.created_by))
    return authors
