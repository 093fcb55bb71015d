"""Policies, approvals and promotion: the gate in front of protected aliases.

A version reaches ``production`` only through :meth:`Governance.promote`, which gathers the
facts from the lineage graph (the evaluation on an exact dataset version, the current holder's
evaluation on the same data, approvals, the training data's contract, card sections), checks
them against the model's policy, and only then moves the alias, in one transaction with its
audit event and alias-history entry. The person who registered a version, or ran the run that
made it, can never approve it.
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from shipyard._internal.hashing import canonical_json, digest_bytes
from shipyard.errors import (
    CheckFailedError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from shipyard.governance.access import require_role
from shipyard.refs import parse_ref, validate_name
from shipyard.registry.models import check_alias
from shipyard.stores.audit import audited
from shipyard.stores.db.tables import (
    approvals,
    model_aliases,
    model_versions,
    policies,
    registered_models,
    runs,
)
from shipyard.stores.versioning import next_version

if TYPE_CHECKING:
    from shipyard.governance.policies import Policy
    from shipyard.governance.policy_checks import PolicyResult
    from shipyard.governance.training_contract import TrainingContract
    from shipyard.project import Project
    from shipyard.registry.models import ModelVersion

__all__ = ["DEFAULT_POLICY", "Approval", "Governance", "StoredPolicy"]

PROJECT_DEFAULT = "*"
# What promotion asks for when the project has no policy file at all.
DEFAULT_POLICY: dict[str, Any] = {"require": ["evaluation"], "approvals": {"min": 1}}


@dataclass(frozen=True)
class Approval:
    """One approver's decision on a model version."""

    model: str
    approver: str
    decision: str
    comment: str
    time: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "approver": self.approver,
            "decision": self.decision,
            "comment": self.comment,
            "time": self.time.isoformat(),
        }


@dataclass(frozen=True)
class StoredPolicy:
    """A version of a policy file."""

    name: str
    version: int
    digest: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "spec": self.spec,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


class Governance:
    """Service for governance: policies (``set_policy``, ``policy``, ``check``), decisions
    (``approve``, ``reject``, ``approvals``) and alias moves (``promote``, ``rollback``)."""

    def __init__(self, project: Project) -> None:
        self._p = project

    # -- policies -----------------------------------------------------------------------------

    def set_policy(
        self, name: str, policy: str | os.PathLike[str] | dict[str, Any]
    ) -> StoredPolicy:
        """Store a new version of the policy for model ``name`` (``*`` is the project default).
        Admin only.

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
        spec = parsed.to_dict()
        digest = digest_bytes(canonical_json(spec))
        with audited(self._p.db, self._p.actor) as tx:
            require_role(tx.conn, self._p.actor, "admin", "set policies")
            version = next_version(tx.conn, policies, policies.c.name == name)
            tx.conn.execute(
                policies.insert().values(
                    name=name,
                    version=version,
                    digest=digest,
                    spec=spec,
                    created_at=datetime.now(UTC),
                    created_by=self._p.actor,
                )
            )
            tx.record("policy.set", "policy", f"{name}@{version}", {"digest": digest, "spec": spec})
        stored = self.policy(name)
        assert stored is not None
        return stored

    def policy(self, name: str) -> StoredPolicy | None:
        """The latest policy stored for ``name`` (``*``: the project default), or None."""
        with self._p.db.read() as conn:
            row = conn.execute(
                select(policies)
                .where(policies.c.name == name)
                .order_by(policies.c.version.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return StoredPolicy(
            row.name, int(row.version), row.digest, dict(row.spec), row.created_at, row.created_by
        )

    def effective_policy(self, model: str) -> Policy:
        """The model's policy over the project default; the built-in default without either.
        For ``*``, the project default (or the built-in one)."""
        from shipyard.governance.policies import Policy

        default = self.policy(PROJECT_DEFAULT)
        specific = self.policy(model) if model != PROJECT_DEFAULT else None
        if default is None and specific is None:
            return Policy.from_dict(DEFAULT_POLICY)
        base = Policy.from_dict(default.spec) if default else Policy.from_dict({})
        return Policy.merge(base, Policy.from_dict(specific.spec)) if specific else base

    def check(self, ref: str, *, for_alias: str = "production") -> PolicyResult:
        """Check a version against its policy, as promotion to ``for_alias`` would."""
        return self._check(self._p.models.get(ref), for_alias, None)

    def _check(
        self,
        mv: ModelVersion,
        for_alias: str,
        contracts: builtins.list[TrainingContract] | None,
    ) -> PolicyResult:
        """The policy check of ``mv``; ``contracts`` are the training data's contract verdicts
        when the caller has them already (else they are gathered if the policy needs them)."""
        from shipyard.governance.policies import Policy, TierRules
        from shipyard.governance.policy_checks import PolicyContext, check_policy
        from shipyard.governance.training_contract import summarize, training_contracts

        policy = self.effective_policy(mv.name)
        spec = policy.to_dict()
        wanted = spec.get("evaluation_data")
        if wanted and "@" in wanted:
            # NAME@latest or NAME@<digest>: the exact version it means now.
            spec["evaluation_data"] = wanted = self._p.datasets.get(wanted).ref
            policy = Policy.from_dict(spec)
        evaluation = self._p.evaluations.latest(mv.ref, dataset=wanted)
        against = (spec.get("no_regression") or {}).get("against") or for_alias
        holder = self._holder(mv.name, against)
        baseline = None
        if holder is not None and evaluation is not None:
            held = self._p.evaluations.latest(holder, dataset_digest=evaluation.dataset_digest)
            if held is not None:
                baseline = {**held.report, "baseline_ref": holder, "dataset": held.dataset}
        risk_tier = self._risk_tier(mv.name)
        tier = policy.risk_tiers.get(risk_tier or "") or TierRules()
        contract_passed, contract_about = None, None
        if "contract" in (*(policy.require or ()), *(tier.require or ())):
            if contracts is None:
                contracts = training_contracts(self._p, mv)
            contract_passed, contract_about = summarize(contracts, mv.ref)
        ctx = PolicyContext(
            model_ref=mv.ref,
            evaluation=evaluation.report if evaluation else None,
            baseline=baseline,
            against_holder=holder,
            approvals=[a.to_dict() for a in self.approvals(mv.ref)],
            training_contract_passed=contract_passed,
            training_contract=contract_about,
            card_sections=set(self._p.cards.sections(mv.ref)),
            risk_tier=risk_tier,
            evaluation_dataset=evaluation.dataset if evaluation else None,
        )
        return check_policy(policy, ctx)

    def _holder(self, name: str, alias: str) -> str | None:
        with self._p.db.read() as conn:
            row = conn.execute(
                select(model_aliases.c.version)
                .join(registered_models, registered_models.c.id == model_aliases.c.model_id)
                .where(registered_models.c.name == name)
                .where(model_aliases.c.alias == alias)
            ).first()
        return None if row is None else f"{name}@{row.version}"

    def _risk_tier(self, name: str) -> str | None:
        with self._p.db.read() as conn:
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
        from shipyard.registry.versions import find_model_id

        known = builtins.list(self.effective_policy(name).risk_tiers) if tier is not None else []
        with audited(self._p.db, self._p.actor) as tx:
            require_role(tx.conn, self._p.actor, "admin", "set risk tiers")
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

    def gate(self, ref: str, *, for_alias: str = "production") -> dict[str, Any]:
        """Everything CI should check before a move of ``for_alias``: the contract of every
        training dataset (see :mod:`shipyard.governance.training_contract`: checked now, not
        stored, if it has a bound contract and no report yet; else its parents' report) and
        the policy, which reads the same verdicts. ``passed`` is False if any check fails."""
        from shipyard.governance.training_contract import training_contracts

        mv = self._p.models.get(ref)
        contracts = training_contracts(self._p, mv)
        checks: builtins.list[dict[str, Any]] = [
            {
                "name": f"contract on training data {c.dataset}",
                "passed": c.passed is not False,
                "detail": c.detail,
            }
            for c in contracts
        ]
        result = self._check(mv, for_alias, contracts).to_dict()
        checks += result["checks"]
        return {
            "model": mv.ref,
            "alias": for_alias,
            "passed": all(c["passed"] for c in checks),
            "checks": checks,
        }

    # -- approvals ----------------------------------------------------------------------------

    def approve(self, ref: str, *, comment: str = "") -> Approval:
        """Approve a version (approver role; never the version's author)."""
        return self._decide(ref, "approve", comment)

    def reject(self, ref: str, *, comment: str = "") -> Approval:
        """Reject a version (approver role; never the version's author)."""
        return self._decide(ref, "reject", comment)

    def _decide(self, ref: str, decision: str, comment: str) -> Approval:
        now = datetime.now(UTC)
        with audited(self._p.db, self._p.actor) as tx:
            verb = "approve" if decision == "approve" else "reject"
            require_role(tx.conn, self._p.actor, "approver", f"{verb} models")
            row = _version_row(tx.conn, ref)
            authors = {row.created_by}
            if row.run_id:
                run = tx.conn.execute(
                    select(runs.c.created_by).where(runs.c.id == row.run_id)
                ).first()
                if run is not None:
                    authors.add(run.created_by)
            if self._p.actor in authors:
                raise PermissionDeniedError(
                    f"user '{self._p.actor}' cannot {verb} {row.name}@{row.version}: they "
                    "registered it or ran the run that produced it, and an author never approves "
                    "their own model (separation of duties); ask another approver",
                    details={"actor": self._p.actor, "authors": sorted(authors)},
                )
            tx.conn.execute(
                approvals.insert().values(
                    model_id=row.model_id,
                    version=row.version,
                    approver=self._p.actor,
                    decision=decision,
                    comment=comment,
                    time=now,
                )
            )
            standing: dict[str, str] = {
                a.approver: a.decision
                for a in tx.conn.execute(
                    select(approvals.c.approver, approvals.c.decision)
                    .where(approvals.c.model_id == row.model_id)
                    .where(approvals.c.version == row.version)
                    .order_by(approvals.c.id)
                )
            }
            # Any standing rejection keeps the version rejected, as the approvals check does.
            status = "rejected" if "reject" in standing.values() else "approved"
            if row.status in ("candidate", "approved", "rejected") and row.status != status:
                # Not Models.set_status: its "model.approved" event would also match
                # audit.list(action="model.approve"), which filters by prefix.
                tx.conn.execute(
                    update(model_versions)
                    .where(model_versions.c.id == row.id)
                    .values(status=status)
                )
            tx.record(f"model.{verb}", "model", f"{row.name}@{row.version}", {"comment": comment})
        return Approval(f"{row.name}@{row.version}", self._p.actor, decision, comment, now)

    def approvals(self, ref: str) -> builtins.list[Approval]:
        """Every decision on a version, oldest first."""
        with self._p.db.read() as conn:
            row = _version_row(conn, ref)
            rows = conn.execute(
                select(approvals)
                .where(approvals.c.model_id == row.model_id)
                .where(approvals.c.version == row.version)
                .order_by(approvals.c.id)
            ).all()
        return [
            Approval(f"{row.name}@{row.version}", a.approver, a.decision, a.comment, a.time)
            for a in rows
        ]

    # -- moving protected aliases -------------------------------------------------------------

    def promote(self, ref: str, *, to: str = "production", comment: str = "") -> dict[str, Any]:
        """Run the policy check and, only if every check passes, move ``to`` to this version
        (approver role), in one transaction with its audit event and alias-history entry.

        Raises:
            CheckFailedError: a check failed; ``details`` lists every check (exit 3).
            ConflictError: the alias's holder or the version's approvals changed while the
                check ran; nothing moved (run promote again).
            PermissionDeniedError: the actor is not an approver.
        """
        check_alias(to)
        with self._p.db.read() as conn:
            require_role(conn, self._p.actor, "approver", "promote models")
        mv = self._p.models.get(ref)
        with self._p.db.read() as conn:
            seen = _promotion_state(conn, mv.ref, to)
        result = self.check(mv.ref, for_alias=to)
        doc = {"model": mv.ref, "alias": to, **result.to_dict()}
        if not result.passed:
            failed = [c for c in result.checks if not c.passed]
            raise CheckFailedError(
                f"promotion of {mv.ref} to {to} refused: {len(failed)} of {len(result.checks)} "
                "checks failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
                details=doc,
            )
        with audited(self._p.db, self._p.actor) as tx:
            # The check ran outside this transaction: refuse if what it read has changed.
            now = _promotion_state(tx.conn, mv.ref, to)
            if now != seen:
                what = "the holder of " + to if now[0] != seen[0] else "the approvals"
                raise ConflictError(
                    f"{what} changed while the promotion of {mv.ref} was being checked; "
                    "nothing was moved; run promote again",
                    details={"model": mv.ref, "alias": to},
                )
            self._p.models._move_alias(tx, mv.ref, to, reason="promote", comment=comment)
            tx.record("model.promote", "model", mv.ref, {"alias": to, "checks": doc["checks"]})
        return {**doc, "promoted": True}

    def rollback(
        self, name: str, *, alias: str = "production", comment: str = ""
    ) -> dict[str, Any]:
        """Move ``alias`` back to the version that held it before the last move (approver);
        recorded as a rollback.

        Raises:
            NotFoundError: the alias has never moved, or had no earlier holder.
        """
        check_alias(alias)
        with self._p.db.read() as conn:
            require_role(conn, self._p.actor, "approver", "roll back models")
        history = self._p.models.alias_history(name, alias)
        if not history or history[-1].to_version is None:
            raise NotFoundError(f"model '{name}' has no current '{alias}' to roll back")
        previous = history[-1].from_version
        if previous is None:
            raise NotFoundError(
                f"{name}@{alias} has no earlier holder to roll back to (version "
                f"{history[-1].to_version} was the first)"
            )
        with audited(self._p.db, self._p.actor) as tx:
            self._p.models._move_alias(
                tx, f"{name}@{previous}", alias, reason="rollback", comment=comment
            )
        return {"model": name, "alias": alias, "from": history[-1].to_version, "to": previous}


def _promotion_state(conn: Any, ref: str, alias: str) -> tuple[int | None, int | None]:
    """What a promotion check depends on that may change under it: the version holding
    ``alias`` and the id of the latest approval or rejection of ``ref``."""
    row = _version_row(conn, ref)
    holder = conn.execute(
        select(model_aliases.c.version)
        .where(model_aliases.c.model_id == row.model_id)
        .where(model_aliases.c.alias == alias)
    ).scalar()
    decided = conn.execute(
        select(func.max(approvals.c.id))
        .where(approvals.c.model_id == row.model_id)
        .where(approvals.c.version == row.version)
    ).scalar()
    return holder, decided


def _version_row(conn: Any, ref: str) -> Any:
    from shipyard.registry.versions import resolve_version

    return resolve_version(conn, parse_ref(ref))
