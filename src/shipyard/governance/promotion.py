"""Promotion and rollback: the only ways a protected alias moves.

A version reaches ``production`` (or any alias a deployment routes to or shadows) only
through :meth:`Promotions.promote`, which gathers the facts from the lineage graph (the
evaluation on an exact dataset version, the current holder's evaluation on the same data,
confirmed approvals, the training data's contract, card sections, the risk tier), checks them
against the model's policy, and moves the alias only if every check passes.

The check runs inside the transaction that moves the alias: that transaction holds the
project's write lock (the audit head's row lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite)
from before the facts are read until the move commits, so a policy, approval, evaluation,
card section or risk tier that changes concurrently lands either before the check, which
then sees it, or after the move. Checking a training dataset against a contract now reads
the data (and logs the read), so that is done before the lock is taken, and re-read under it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.authz import require_role
from shipyard.errors import CheckFailedError, ConflictError, NotFoundError
from shipyard.refs import parse_ref
from shipyard.registry.aliases import check_alias, move_alias
from shipyard.registry.versions import resolve_version
from shipyard.stores.audit import AuditedTransaction

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.governance.approvals import Approvals
    from shipyard.governance.cards import Cards
    from shipyard.governance.policies import Policy
    from shipyard.governance.policy_checks import PolicyResult
    from shipyard.governance.policy_registry import Policies
    from shipyard.governance.reports import Evaluations, StoredEvaluation
    from shipyard.governance.training_contract import CheckedNow
    from shipyard.registry.models import Models

__all__ = ["Evidence", "Promotions"]


@dataclass(frozen=True)
class Evidence:
    """What a policy check compares (:meth:`Promotions.evidence`): the version's evaluation,
    the alias ``against`` and its ``holder`` (None: nobody holds it), and the holder's
    evaluation on the same dataset content (None: none stored)."""

    policy: Policy
    against: str
    evaluation: StoredEvaluation | None
    holder: str | None
    baseline: StoredEvaluation | None


class Promotions:
    """Service for moving protected aliases: ``check``, ``gate``, ``promote``, ``rollback``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        models: Models,
        datasets: Datasets,
        evaluations: Evaluations,
        policies: Policies,
        approvals: Approvals,
        cards: Cards,
    ) -> None:
        self._ctx = ctx
        self._models = models
        self._datasets = datasets
        self._evaluations = evaluations
        self._policies = policies
        self._approvals = approvals
        self._cards = cards

    # -- checks -------------------------------------------------------------------------------

    def check(
        self,
        ref: str,
        *,
        for_alias: str = "production",
        checked_now: CheckedNow | None = None,
        validate_now: bool = True,
    ) -> PolicyResult:
        """Check a version against its policy, as promotion to ``for_alias`` would.

        ``checked_now`` holds outcomes of training contracts already checked now, and without
        ``validate_now`` no other is checked (see
        :func:`~shipyard.governance.training_contract.training_contracts`).

        Raises:
            ConflictError: without ``validate_now``, a contract not in ``checked_now`` applies.
        """
        from shipyard.governance.policies import TierRules
        from shipyard.governance.policy_checks import PolicyContext, check_policy
        from shipyard.governance.training_contract import summarize, training_contracts

        mv = self._models.get(ref)
        ev = self.evidence(mv.ref, for_alias=for_alias)
        policy, evaluation, holder = ev.policy, ev.evaluation, ev.holder
        baseline = None
        if holder is not None and ev.baseline is not None:
            held = ev.baseline
            baseline = {**held.report, "baseline_ref": holder, "dataset": held.dataset}
        risk_tier = self._policies.risk_tier(mv.name)
        tier = policy.risk_tiers.get(risk_tier or "") or TierRules()
        contract_passed, contract_about = None, None
        if "contract" in (*(policy.require or ()), *(tier.require or ())):
            verdicts = training_contracts(
                self._datasets, mv, checked_now, validate_now=validate_now
            )
            contract_passed, contract_about = summarize(verdicts, mv.ref)
        ctx = PolicyContext(
            model_ref=mv.ref,
            evaluation=evaluation.report if evaluation else None,
            baseline=baseline,
            against_holder=holder,
            approvals=[a.to_dict() for a in self._approvals.list(mv.ref) if a.confirmed],
            training_contract_passed=contract_passed,
            training_contract=contract_about,
            card_sections=set(self._cards.sections(mv.ref)),
            risk_tier=risk_tier,
            evaluation_dataset=evaluation.dataset if evaluation else None,
        )
        return check_policy(policy, ctx)

    def evidence(self, ref: str, *, for_alias: str = "production") -> Evidence:
        """The evaluations a check of ``ref`` for ``for_alias`` compares: the version's newest
        evaluation on the policy's evaluation data (any dataset when the policy names none),
        and the alias holder's (the policy's ``no_regression.against``, else ``for_alias``)
        newest evaluation on exactly the same data.

        >>> project.promotions.evidence("credit-risk@4").holder  # doctest: +SKIP
        'credit-risk@3'
        """
        from shipyard.governance.policies import Policy

        mv = self._models.get(ref)
        policy = self._policies.effective(mv.name)
        spec = policy.to_dict()
        wanted = spec.get("evaluation_data")
        if wanted and "@" in wanted:
            # NAME@latest or NAME@<digest>: the exact version it means now.
            spec["evaluation_data"] = wanted = self._datasets.get(wanted).ref
            policy = Policy.from_dict(spec, stored=True)
        evaluation = self._evaluations.latest(mv.ref, dataset=wanted)
        against = (spec.get("no_regression") or {}).get("against") or for_alias
        holder = self._holder(mv.name, against)
        baseline = None
        if holder is not None and evaluation is not None:
            baseline = self._evaluations.latest(holder, dataset_digest=evaluation.dataset_digest)
        return Evidence(policy, against, evaluation, holder, baseline)

    def gate(self, ref: str, *, for_alias: str = "production") -> dict[str, Any]:
        """Everything CI should check before a move of ``for_alias``: the contract of every
        training dataset and the policy, which reads the same verdicts. ``passed`` is False if
        any check fails."""
        from shipyard.governance.training_contract import training_contracts

        mv = self._models.get(ref)
        checked_now: CheckedNow = {}
        contracts = training_contracts(self._datasets, mv, checked_now)
        checks: builtins.list[dict[str, Any]] = [
            {
                "name": f"contract on training data {c.dataset}",
                "passed": c.passed is not False,
                "detail": c.detail,
            }
            for c in contracts
        ]
        result = self.check(mv.ref, for_alias=for_alias, checked_now=checked_now).to_dict()
        checks += result["checks"]
        return {
            "model": mv.ref,
            "alias": for_alias,
            "passed": all(c["passed"] for c in checks),
            "checks": checks,
        }

    def prepare(self, ref: str) -> CheckedNow:
        """Check now, before taking the write lock, the training contracts that a check of
        ``ref`` would need to check now (they read data, which logs the read)."""
        from shipyard.governance.training_contract import training_contracts

        checked_now: CheckedNow = {}
        training_contracts(self._datasets, self._models.get(ref), checked_now)
        return checked_now

    def check_locked(
        self, tx: AuditedTransaction, ref: str, alias: str, checked_now: CheckedNow
    ) -> tuple[Any, PolicyResult]:
        """The version row ``ref`` means and its check for ``alias``, read while ``tx`` holds
        the write lock (see the module's docstring): what is checked is what the move that
        follows in ``tx`` acts on.

        Raises:
            ConflictError: a training contract now applies that was not checked before the
                lock was taken (its binding changed meanwhile); run the command again.
        """
        row = resolve_version(tx.conn, parse_ref(ref))
        result = self.check(
            f"{row.name}@{row.version}",
            for_alias=alias,
            checked_now=checked_now,
            validate_now=False,
        )
        return row, result

    # -- moving protected aliases -------------------------------------------------------------

    def promote(self, ref: str, *, to: str = "production", comment: str = "") -> dict[str, Any]:
        """Run the policy check and, only if every check passes, move ``to`` to this version
        (approver role), in one transaction with its audit event and alias-history entry.

        Raises:
            CheckFailedError: a check failed; ``details`` lists every check (exit 3).
            PermissionDeniedError: the actor is not an approver.
        """
        check_alias(to)
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "approver", "promote models")
        checked_now = self.prepare(ref)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "approver", "promote models")
            row, result = self.check_locked(tx, ref, to, checked_now)
            model_ref = f"{row.name}@{row.version}"
            checks = [self._servable_check(tx, model_ref), *result.to_dict()["checks"]]
            doc = {"model": model_ref, "alias": to, "passed": True, "checks": checks}
            failed = [c for c in checks if not c["passed"]]
            if failed:
                raise CheckFailedError(
                    f"promotion of {model_ref} to {to} refused: {len(failed)} of "
                    f"{len(checks)} checks failed: "
                    + "; ".join(f"{c['name']}: {c['detail']}" for c in failed),
                    details={**doc, "passed": False},
                )
            move_alias(tx, row, to, reason="promote", comment=comment)
            tx.record("model.promote", "model", model_ref, {"alias": to, "checks": doc["checks"]})
        return {**doc, "promoted": True}

    def auto_promote(self, ref: str, *, comment: str = "") -> builtins.list[dict[str, Any]]:
        """Move each alias the model's policy lists under ``auto_promote`` to ``ref`` when
        every check of the policy for that alias passes, except the approvals (an automatic
        move has no one to approve it). An alias that traffic depends on (``production``,
        which a policy cannot list, or one a deployment routes to or shadows) is never moved
        this way: it needs :meth:`promote`. Returns one outcome per alias:
        ``{"alias", "promoted", "detail", "checks"}``.

        >>> project.promotions.auto_promote("credit@4")  # doctest: +SKIP
        [{'alias': 'challenger', 'promoted': True, 'detail': 'every check passed', ...}]

        Raises:
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.registry.aliases import protected_aliases

        mv = self._models.get(ref)
        aliases = self._policies.effective(mv.name).auto_promote or ()
        if not aliases:
            return []
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "move model aliases")
        checked_now = self.prepare(mv.ref)
        out: builtins.list[dict[str, Any]] = []
        for alias in aliases:
            with self._ctx.audited() as tx:
                row, result = self.check_locked(tx, mv.ref, alias, checked_now)
                checks = [
                    c for c in result.to_dict()["checks"] if not c["name"].startswith("approvals")
                ]
                failed = [f"{c['name']}: {c['detail']}" for c in checks if not c["passed"]]
                if alias in protected_aliases(tx.conn, row.model_id):
                    failed.insert(
                        0,
                        f"alias '{alias}' is protected (traffic depends on it); it moves only "
                        f"through `shipyard models promote {mv.ref} --to {alias}`",
                    )
                if not failed:
                    move_alias(tx, row, alias, reason="auto", comment=comment)
            out.append(
                {
                    "alias": alias,
                    "promoted": not failed,
                    "detail": "; ".join(failed) or "every check passed",
                    "checks": checks,
                }
            )
        return out

    def rollback(
        self, name: str, *, alias: str = "production", comment: str = ""
    ) -> dict[str, Any]:
        """Move ``alias`` back to the version that held it before its current holder
        (approver), recorded as a rollback. Repeated rollbacks walk further back through the
        alias's history. The version rolled back to must still be approved (not rejected
        since) and pass the policy check for ``alias`` now.

        Raises:
            NotFoundError: the alias has no holder, or had none before the current one.
            CheckFailedError: the earlier holder was rejected since, or fails the policy
                check now; nothing moved (exit 3).
            PermissionDeniedError: the actor is not an approver.
        """
        check_alias(alias)
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "approver", "roll back models")
        current, previous = self._rollback_target(name, alias)
        target = f"{name}@{previous}"
        checked_now = self.prepare(target)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "approver", "roll back models")
            if self._rollback_target(name, alias) != (current, previous):
                raise ConflictError(
                    f"{name}@{alias} moved while the rollback was being checked; nothing was "
                    "moved; run rollback again"
                )
            row, result = self.check_locked(tx, target, alias, checked_now)
            checks = [self._servable_check(tx, target), *result.to_dict()["checks"]]
            doc = {"model": name, "alias": alias, "from": current, "to": previous}
            failed = [c for c in checks if not c["passed"]]
            if failed:
                raise CheckFailedError(
                    f"rollback of {name}@{alias} to version {previous} refused: "
                    + "; ".join(f"{c['name']}: {c['detail']}" for c in failed)
                    + f"; to choose another version, use `shipyard models promote "
                    f"{name}@N --to {alias}`",
                    details={**doc, "passed": False, "checks": checks},
                )
            move_alias(tx, row, alias, reason="rollback", comment=comment)
        return {**doc, "passed": True, "checks": checks}

    def _servable_check(self, tx: AuditedTransaction, ref: str) -> dict[str, Any]:
        """The check every protected alias move runs first, whatever the policy says: only a
        version that may serve takes a protected alias (:meth:`Approvals.servable`)."""
        reasons = self._approvals.servable(ref, tx.conn)
        return {
            "name": "servable",
            "passed": not reasons,
            "detail": "; ".join(reasons) or f"{ref} is approved, with no standing rejection",
        }

    def _rollback_target(self, name: str, alias: str) -> tuple[int, int]:
        """(current holder, the version before it): the alias's history read as a stack,
        where a promotion or set pushes a version and a rollback pops one."""
        stack: builtins.list[int] = []
        for e in self._models.alias_history(name, alias):
            if e.reason == "rollback":
                if stack:
                    stack.pop()
                if e.to_version is not None and (not stack or stack[-1] != e.to_version):
                    stack.append(e.to_version)  # an edited history: follow what it says
            elif e.to_version is None:
                stack.clear()
            else:
                stack.append(e.to_version)
        if not stack:
            raise NotFoundError(f"model '{name}' has no current '{alias}' to roll back")
        current = stack[-1]
        earlier = [v for v in stack[:-1] if v != current]
        if not earlier:
            raise NotFoundError(
                f"{name}@{alias} has no earlier holder to roll back to (version {current} "
                "was the first)"
            )
        return current, earlier[-1]

    def _holder(self, name: str, alias: str) -> str | None:
        try:
            return self._models.get(f"{name}@{alias}").ref
        except NotFoundError:
            return None
