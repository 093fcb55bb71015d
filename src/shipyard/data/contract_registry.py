"""The contract registry: versioned data contracts and their binding to datasets.

>>> project.contracts.add("applicants", "contract.yaml")        # doctest: +SKIP
>>> project.contracts.bind("credit", "applicants")              # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import canonical_json, digest_bytes
from shipyard.authz import require_role
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.governance.annotations import check_contract
from shipyard.refs import Ref, parse_ref, validate_name
from shipyard.stores.db.tables import contract_versions, contracts, datasets
from shipyard.stores.versioning import next_version, pick_version

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.contracts import Contract

__all__ = ["ContractSummary", "ContractVersion", "Contracts"]

KIND = "contract"


@dataclass(frozen=True)
class ContractVersion(ReadModel):
    """One immutable version of a data contract."""

    json_properties = ("ref",)

    name: str
    version: int
    digest: str
    spec: dict[str, Any]
    message: str
    created_at: datetime
    created_by: str
    created: bool = False
    bound_to: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def contract(self) -> Contract:
        """The contract itself, ready to validate data."""
        from shipyard.data.contracts import Contract

        return Contract.from_dict(self.spec)


@dataclass(frozen=True)
class ContractSummary(ReadModel):
    """A contract, its latest version and the datasets bound to it."""

    name: str
    latest: int
    columns: int
    bound_to: list[str]
    updated_at: datetime
    updated_by: str


class Contracts:
    """Service for contracts: ``add``, ``get``, ``list``, ``versions``, ``bind``, ``unbind``."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def add(
        self,
        name: str,
        contract: Contract | str | os.PathLike[str] | dict[str, Any],
        *,
        message: str = "",
    ) -> ContractVersion:
        """Register a new version of contract ``name`` from a Contract, a YAML file or a dict.
        Content identical to the latest version returns it with ``created=False``; content
        identical to an older version is a new version (the latest, in force).

        Raises:
            InvalidInputError: the contract is not valid (every problem listed).
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.data.contracts import Contract

        validate_name(name, "contract name")
        if isinstance(contract, Contract):
            parsed = contract
        elif isinstance(contract, dict):
            parsed = Contract.from_dict(contract)
        else:
            path = Path(contract)
            if not path.is_file():
                raise InvalidInputError(f"{path}: no such contract file")
            parsed = Contract.from_file(path)
        spec = parsed.to_dict()
        digest = digest_bytes(canonical_json(spec))
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "add contracts")
            row = tx.conn.execute(select(contracts.c.id).where(contracts.c.name == name)).first()
            if row is None:
                cid = int(
                    tx.conn.execute(
                        contracts.insert().values(
                            name=name, created_at=now, created_by=self._ctx.actor
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
            else:
                cid = int(row.id)
                # Only the version in force (the latest not deleted) makes it "unchanged":
                # content identical to an older version is a new version, so that a user
                # can go back to earlier content.
                latest = tx.conn.execute(
                    _select()
                    .where(contract_versions.c.contract_id == cid)
                    .where(contract_versions.c.deleted_at.is_(None))
                    .order_by(contract_versions.c.version.desc())
                    .limit(1)
                ).first()
                if latest is not None and latest.digest == digest:
                    return _to_version(tx.conn, latest)
            check_contract(tx.conn, name, parsed)
            version = next_version(
                tx.conn, contract_versions, contract_versions.c.contract_id == cid
            )
            tx.conn.execute(
                contract_versions.insert().values(
                    contract_id=cid,
                    version=version,
                    digest=digest,
                    spec=spec,
                    message=message,
                    created_at=now,
                    created_by=self._ctx.actor,
                )
            )
            tx.record(
                "contract.add",
                KIND,
                f"{name}@{version}",
                {"digest": digest, "message": message, "columns": sorted(parsed.columns)},
            )
        v = self.get(f"{name}@{version}")
        return ContractVersion(**{**v.__dict__, "created": True})

    def get(self, ref: str, *, include_deleted: bool = False) -> ContractVersion:
        """The contract version a reference points at (bare name: latest not deleted);
        ``include_deleted`` also returns a deleted version (data validated with it stays
        governed by it).

        Raises:
            NotFoundError: no such contract or version.
            DeletedError: the version was deleted (unless ``include_deleted``).
        """
        with self._ctx.db.read() as conn:
            return _to_version(
                conn, _resolve(conn, parse_ref(ref), include_deleted=include_deleted)
            )

    def versions(self, name: str) -> builtins.list[ContractVersion]:
        """Every version of a contract, oldest first."""
        with self._ctx.db.read() as conn:
            _contract_id(conn, name)
            rows = conn.execute(
                _select()
                .where(contracts.c.name == name)
                .where(contract_versions.c.deleted_at.is_(None))
                .order_by(contract_versions.c.version)
            ).all()
            return [_to_version(conn, r) for r in rows]

    def list(self) -> builtins.list[ContractSummary]:
        """Every contract with its latest version."""
        with self._ctx.db.read() as conn:
            names = [
                r.name
                for r in conn.execute(
                    select(contracts.c.name)
                    .distinct()
                    .join(contract_versions, contract_versions.c.contract_id == contracts.c.id)
                    .where(contract_versions.c.deleted_at.is_(None))
                    .order_by(contracts.c.name)
                )
            ]
            out = []
            for n in names:
                v = _to_version(conn, _resolve(conn, parse_ref(n)))
                out.append(
                    ContractSummary(
                        n,
                        v.version,
                        len(v.spec.get("columns", {})),
                        sorted(_bindings(conn, n)),  # every version, pinned or latest
                        v.created_at,
                        v.created_by,
                    )
                )
            return out

    def delete(self, target: str, *, reason: str = "") -> builtins.list[str]:
        """Soft-delete ``NAME@V`` (or every version of ``NAME``): hidden from listings and
        ``latest``, restorable; the datasets validated with it keep their reports. Returns
        the versions deleted.

        Raises:
            ConflictError: a dataset's binding resolves to a version to delete (unbind it
                first), or nothing left to delete.
            PermissionDeniedError: the actor is not a contributor.
        """
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "delete contracts")
            rows = [r for r in self._targets(tx.conn, target) if r.deleted_at is None]
            if not rows:
                raise ConflictError(f"contract '{target}' is already deleted")
            gone = {int(r.version) for r in rows}
            name = rows[0].name
            bound = sorted(d for d, v in _bindings(tx.conn, name).items() if v in gone)
            if bound:
                raise ConflictError(
                    f"contract '{target}' validates new versions of {', '.join(bound)}; "
                    f"unbind it first with `shipyard contract unbind {bound[0]}`",
                    details={"datasets": bound},
                )
            for r in rows:
                tx.conn.execute(
                    update(contract_versions)
                    .where(contract_versions.c.id == r.id)
                    .values(deleted_at=now, deleted_by=self._ctx.actor, deleted_reason=reason)
                )
                tx.record(
                    "contract.delete",
                    KIND,
                    f"{name}@{r.version}",
                    {"digest": r.digest, "reason": reason},
                )
        return [f"{name}@{v}" for v in sorted(gone)]

    def restore(self, target: str) -> builtins.list[str]:
        """Undo :meth:`delete` for ``NAME@V`` (or every deleted version of ``NAME``).

        Raises:
            ConflictError: nothing deleted to restore.
        """
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "restore contracts")
            rows = [r for r in self._targets(tx.conn, target) if r.deleted_at is not None]
            if not rows:
                raise ConflictError(f"contract '{target}' has no deleted version to restore")
            for r in rows:
                tx.conn.execute(
                    update(contract_versions)
                    .where(contract_versions.c.id == r.id)
                    .values(deleted_at=None, deleted_by=None, deleted_reason=None)
                )
                tx.record("contract.restore", KIND, f"{r.name}@{r.version}", {"digest": r.digest})
        return [f"{r.name}@{r.version}" for r in rows]

    def _targets(self, conn: Connection, target: str) -> builtins.list[Any]:
        ref = parse_ref(target)
        if "@" in target:
            return [_resolve(conn, ref, include_deleted=True)]
        cid = _contract_id(conn, ref.name)
        return builtins.list(
            conn.execute(
                _select()
                .where(contract_versions.c.contract_id == cid)
                .order_by(contract_versions.c.version)
            ).all()
        )

    def bind(self, dataset: str, contract: str, *, new: bool = False) -> str:
        """Validate every later version of ``dataset`` against ``contract`` (``NAME`` follows
        the contract's latest version; any other reference, ``NAME@N`` or a digest prefix,
        pins the version it resolves to now). Returns the stored binding: ``NAME`` or
        ``NAME@N``. A dataset that does not exist yet is bound only with ``new`` (so that its
        first version is checked too): without it, the name is taken for a typo.

        Raises:
            NotFoundError: no such contract, or no such dataset and ``new`` is false.
            PermissionDeniedError: the actor is not a contributor.
        """
        validate_name(dataset, "dataset name")
        ref = parse_ref(contract)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "bind contracts")
            resolved = _resolve(tx.conn, ref)
            # A digest prefix may match more versions later: store the version it means now.
            binding = (
                ref.name if ref.selector.kind == "latest" else f"{ref.name}@{resolved.version}"
            )
            row = tx.conn.execute(
                select(datasets.c.id, datasets.c.contract).where(datasets.c.name == dataset)
            ).first()
            if row is None and not new:
                from shipyard._internal.suggest import did_you_mean

                names = tx.conn.execute(select(datasets.c.name)).scalars()
                raise NotFoundError(
                    f"no dataset '{dataset}'{did_you_mean(dataset, names)}; to bind a contract "
                    "before the first version is added, pass --new (new=True in Python)"
                )
            if row is None:
                tx.conn.execute(
                    datasets.insert().values(
                        name=dataset,
                        created_at=datetime.now(UTC),
                        created_by=self._ctx.actor,
                        contract=binding,
                    )
                )
                tx.record("dataset.create", "dataset", dataset, {})
                previous = None
            else:
                previous = row.contract
                tx.conn.execute(
                    update(datasets).where(datasets.c.id == row.id).values(contract=binding)
                )
            tx.record(
                "contract.bind", "dataset", dataset, {"contract": binding, "previous": previous}
            )
        return binding

    def binding(self, dataset: str) -> str | None:
        """The contract reference bound to ``dataset``, or None."""
        with self._ctx.db.read() as conn:
            row = conn.execute(
                select(datasets.c.contract).where(datasets.c.name == dataset)
            ).first()
        return None if row is None else row.contract

    def unbind(self, dataset: str) -> None:
        """Stop validating new versions of ``dataset``."""
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "bind contracts")
            row = tx.conn.execute(
                select(datasets.c.id, datasets.c.contract).where(datasets.c.name == dataset)
            ).first()
            if row is None or row.contract is None:
                raise NotFoundError(f"dataset '{dataset}' has no bound contract")
            tx.conn.execute(update(datasets).where(datasets.c.id == row.id).values(contract=None))
            tx.record("contract.unbind", "dataset", dataset, {"previous": row.contract})


def _select() -> Any:
    return select(contract_versions, contracts.c.name).join(
        contracts, contracts.c.id == contract_versions.c.contract_id
    )


def _contract_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(contracts.c.id).where(contracts.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no contract '{name}'; see `shipyard contract list`")
    return int(row.id)


def _resolve(conn: Connection, ref: Ref, *, include_deleted: bool = False) -> Any:
    cid = _contract_id(conn, ref.name)
    base = _select().where(contract_versions.c.contract_id == cid)
    return pick_version(
        conn,
        base,
        contract_versions,
        ref,
        what="contract",
        versions_command="contract versions",
        include_deleted=include_deleted,
    )


def _bindings(conn: Connection, name: str) -> dict[str, int]:
    """Each dataset bound to contract ``name`` and the version its binding resolves to now."""
    rows = conn.execute(
        select(datasets.c.name, datasets.c.contract)
        .where(
            (datasets.c.contract == name)
            | datasets.c.contract.startswith(name + "@", autoescape=True)
        )
        .order_by(datasets.c.name)
    ).all()
    return {r.name: int(_resolve(conn, parse_ref(r.contract)).version) for r in rows}


def _to_version(conn: Connection, row: Any) -> ContractVersion:
    return ContractVersion(
        name=row.name,
        version=int(row.version),
        digest=row.digest,
        spec=dict(row.spec),
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        bound_to=[d for d, v in _bindings(conn, row.name).items() if v == int(row.version)],
    )
