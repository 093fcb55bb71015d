"""Stored policies: a versioned policy file per model and a project default (``*``), and each
model's risk tier, which selects the policy's ``risk_tiers`` rules.

>>> project.policies.set("credit-risk", "policies/credit-risk.yaml")   # doctest: +SKIP
>>> project.policies.effective("credit-risk").approvals                # doctest: +SKIP
1
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import canonical_json, digest_bytes
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError
from shipyard.refs import validate_name
from shipyard.registry.versions import find_model_id
from shipyard.stores.db.tables import policies, registered_models
from shipyard.stores.versioning import next_version

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.governance.policies import Policy

__all__ = ["DEFAULT_POLICY", "PROJECT_DEFAULT", "Policies", "StoredPolicy", "policy_digest"]

PROJECT_DEFAULT = "*"
# What promotion asks for when the project has no policy file at all.
DEFAULT_POLICY: dict[str, Any] = {"require": ["evaluation"], "approvals": {"min": 1}}


@dataclass(frozen=True)
class StoredPolicy(ReadModel):
    """A version of a policy file. ``created`` is True when the call that returned it stored
    a new version (``set`` with content identical to the latest version stores nothing)."""

    name: str
    version: int
    digest: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str
    created: bool = False


def policy_digest(spec: dict[str, Any]) -> str:
    """The digest of a policy document, as recorded with each version (and checked by
    ``audit verify``)."""
    return digest_bytes(canonical_json(spec))


class Policies:
    """Service for policies: ``set``, ``get``, ``list``, plus ``effective`` and the models'
    risk tiers (``risk_tier``, ``set_risk_tier``)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def set(self, name: str, policy: str | os.PathLike[str] | dict[str, Any]) -> StoredPolicy:
        """Store a new version of the policy for model ``name`` (``*`` is the project default).
        Admin only. A policy identical to the latest version (same digest once parsed) is not
        stored again: that version comes back with ``created=False``.

        Raises:
            InvalidInputError: the policy has problems (all listed).
            PermissionDeniedError: the actor is not an admin.
        """
        from shipyard.governance.policies import Policy

        if name != PROJECT_DEFAULT:
            validate_name(name, "model name")
        if isinstance(policy, dict):
            parsed = Policy.from_dict(policy)
        else:
            path = Path(policy)
            if not path.is_file():
                raise InvalidInputError(f"{path}: no such policy file")
            parsed = Policy.from_file(path)
        if parsed.annotations and name != PROJECT_DEFAULT:
            raise InvalidInputError(
                f"the policy for '{name}' sets annotations, which apply to the whole project: "
                "set them in the project default policy (`shipyard policy set '*' FILE`)"
            )
        spec = parsed.to_dict()
        digest = policy_digest(spec)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "set policies")
            latest = tx.conn.execute(
                select(policies)
                .where(policies.c.name == name)
                .order_by(policies.c.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.digest == digest:
                return _stored(latest)
            version = next_version(tx.conn, policies, policies.c.name == name)
            tx.conn.execute(
                policies.insert().values(
                    name=name,
                    version=version,
                    digest=digest,
                    spec=spec,
                    created_at=datetime.now(UTC),
                    created_by=self._ctx.actor,
                )
            )
            tx.record("policy.set", "policy", f"{name}@{version}", {"digest": digest, "spec": spec})
        stored = self.get(name)
        assert stored is not None
        return replace(stored, created=True)

    def get(self, name: str) -> StoredPolicy | None:
        """The latest policy stored for ``name`` (``*``: the project default), or None."""
        with self._ctx.db.read() as conn:
            row = conn.execute(
                select(policies)
                .where(policies.c.name == name)
                .order_by(policies.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else _stored(row)

    def list(self) -> builtins.list[StoredPolicy]:
        """The latest version of every stored policy, by name."""
        with self._ctx.db.read() as conn:
            names = [
                r.name
                for r in conn.execute(select(policies.c.name).distinct().order_by(policies.c.name))
            ]
        return [p for p in (self.get(n) for n in names) if p is not None]

    def effective(self, model: str) -> Policy:
        """The model's policy over the project default; the built-in default without either.
        For ``*``, the project default (or the built-in one)."""
        from shipyard.governance.policies import Policy

        default = self.get(PROJECT_DEFAULT)
        specific = self.get(model) if model != PROJECT_DEFAULT else None
        if default is None and specific is None:
            return Policy.from_dict(DEFAULT_POLICY)
        base = Policy.from_dict(default.spec, stored=True) if default else Policy.from_dict({})
        return (
            Policy.merge(base, Policy.from_dict(specific.spec, stored=True)) if specific else base
        )

    def risk_tier(self, name: str) -> str | None:
        """The model's risk tier, or None."""
        with self._ctx.db.read() as conn:
            row = conn.execute(
                select(registered_models.c.risk_tier).where(registered_models.c.name == name)
            ).first()
        return None if row is None else row.risk_tier

    def set_risk_tier(self, name: str, tier: str | None) -> None:
        """Set the model's risk tier, which selects the policy's ``risk_tiers`` rules (admin);
        None clears it. A near miss of one of the policy's tiers ('hgih' for 'high') is refused;
        a tier the policy does not name (rules-free, e.g. 'medium') is allowed.

        Raises:
            InvalidInputError: the tier is not a name, or looks like a misspelt policy tier.
            NotFoundError: no such model.
        """
        known = builtins.list(self.effective(name).risk_tiers) if tier is not None else []
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "admin", "set risk tiers")
            find_model_id(tx.conn, name)
            if tier is not None:
                from shipyard.governance.policy_checks import misspelt_tier

                validate_name(tier, "risk tier")
                meant = misspelt_tier(tier, known)
                if meant is not None:
                    raise InvalidInputError(
                        f"risk tier {tier!r} is not one of the tiers of the policy of '{name}' "
                        f"({', '.join(known)}); did you mean {meant!r}?",
                        details={"tier": tier, "tiers": known},
                    )
            tx.conn.execute(
                update(registered_models)
                .where(registered_models.c.name == name)
                .values(risk_tier=tier)
            )
            tx.record("model.risk_tier", "model", name, {"tier": tier})


def _stored(row: Any) -> StoredPolicy:
    return StoredPolicy(
        row.name, int(row.version), row.digest, dict(row.spec), row.created_at, row.created_by
    )
