"""Checking a model version against its policy: every check evaluated, each with a sentence.

:func:`check_policy` is pure: the governance service gathers the facts into a
:class:`PolicyContext` and gets back every check; it never stops at the first failure.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import partial
from typing import Any

from shipyard._internal.encode import ReadModel
from shipyard._internal.words import count
from shipyard.errors import CheckFailedError
from shipyard.governance.evaluation import (
    FOUR_FIFTHS,
    LOWER_IS_BETTER,
)
from shipyard.governance.policies import (
    EPS,
    METRIC_USES,
    NoRegression,
    Policy,
    TierRules,
)

__all__ = ["Check", "PolicyContext", "PolicyResult", "check_policy"]


@dataclass(frozen=True)
class PolicyContext:
    """The facts a policy is checked against, gathered by the service.

    ``evaluation`` is this version's :meth:`EvaluationReport.to_dict` on the dataset the
    policy wants (``evaluation_dataset``, e.g. ``holdout@3``); ``baseline`` is the alias
    holder's (``against_holder``, None when the alias has no holder) on the same dataset
    version; ``approvals`` are ``{"approver", "decision", "comment"}`` in time order;
    ``training_contract_passed`` whether the training data passed its contract (None: no
    validation applies), with ``training_contract`` naming the datasets and contracts behind
    that answer; ``card_sections`` the human-written sections of the model card.
    """

    model_ref: str
    evaluation: Mapping[str, Any] | None = None
    baseline: Mapping[str, Any] | None = None
    against_holder: str | None = None
    approvals: Sequence[Mapping[str, Any]] = ()
    training_contract_passed: bool | None = None
    training_contract: str | None = None
    card_sections: AbstractSet[str] = frozenset()
    risk_tier: str | None = None
    evaluation_dataset: str | None = None


@dataclass(frozen=True)
class Check(ReadModel):
    """One rule of a policy: its stable ``name``, the outcome, and a sentence why."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class PolicyResult(ReadModel):
    """Every check of a policy, in a stable order; ``passed`` when all passed."""

    passed: bool
    checks: list[Check]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line: ``passed (7 checks)`` or ``2 of 7 checks failed: approvals >= 1, …``."""
        n = len(self.checks)
        if self.passed:
            return f"passed ({n} check{'s' if n != 1 else ''})"
        names = ", ".join(c.name for c in self.failures)
        return f"{len(self.failures)} of {n} checks failed: {names}"

    def raise_if_failed(self) -> None:
        """Raise when a check failed.

        Raises:
            CheckFailedError: with the summary as message and the result as details.
        """
        if not self.passed:
            raise CheckFailedError(self.summary(), details=self.to_dict())


# -- checking ---------------------------------------------------------------------------------

Outcome = tuple[bool, str]


def check_policy(policy: Policy, ctx: PolicyContext) -> PolicyResult:
    """Check every rule of ``policy`` against ``ctx``; all checks are listed, passed or not.

    Order: evaluation data, requirements, metrics, fairness, no regression, risk tier,
    approvals, card sections. The rules of the model's risk tier add to the top-level ones
    (its ``approvals`` replaces the top-level minimum); when the policy has tiers, a model
    without one, or with one the policy does not define, fails the ``risk tier`` check.
    ``require: [card]`` adds the ``card sections`` check.

    >>> check_policy(Policy.from_file("policy.yaml"), ctx).summary()  # doctest: +SKIP
    '1 of 6 checks failed: approvals >= 1'
    """
    tier = policy.risk_tiers.get(ctx.risk_tier) if ctx.risk_tier is not None else None
    tier = tier or TierRules()
    require = _union(policy.require, tier.require)
    sections = _union(policy.card_sections, tier.card_sections)
    approvals = policy.approvals if tier.approvals is None else tier.approvals
    evaluation = ctx.evaluation if isinstance(ctx.evaluation, Mapping) else None
    checks: list[Check] = []

    def add(name: str, outcome: Outcome) -> None:
        checks.append(Check(name, *outcome))

    def on_evaluation(name: str, check: Callable[[Mapping[str, Any]], Outcome]) -> None:
        if evaluation is not None:
            add(name, check(evaluation))
        else:
            on = f" on {ctx.evaluation_dataset}" if ctx.evaluation_dataset else ""
            add(name, (False, f"{ctx.model_ref} has no evaluation{on}; evaluate it first"))

    if policy.evaluation_data is not None:
        add("evaluation data", _evaluation_data(policy.evaluation_data, ctx))
    for item in require:
        if item == "contract":
            add("require contract", _contract(ctx.training_contract_passed, ctx.training_contract))
        elif item != "card":
            on_evaluation(f"require {item}", partial(_requirement, item, ctx))
    for name, rule in policy.metrics.items():
        which = "" if rule.use == "value" else f" {rule.use}"
        for op, bound in _bounds(rule.min, rule.max):
            check = partial(_metric, name, rule.use, op, bound)
            on_evaluation(f"metric {name}{which} {op} {bound:g}", check)
    for column, fairness in policy.fairness.items():
        for measure, r in fairness.bounds.items():
            for op, bound in _bounds(r.min, r.max):
                check = partial(_fairness, column, measure, op, bound)
                on_evaluation(f"fairness {column} {measure} {op} {bound:g}", check)
        if fairness.four_fifths:
            check = partial(_fairness, column, "selection_rate_ratio", ">=", FOUR_FIFTHS)
            on_evaluation(f"fairness {column} four_fifths", check)
    if (regression := policy.no_regression) is not None:
        name = f"no_regression {regression.metric} vs {regression.against}"
        add(name, _no_regression(regression, ctx))
    if policy.risk_tiers:
        add("risk tier", _tier(policy, ctx.risk_tier, ctx.model_ref))
    if approvals is not None:
        by_tier = tier.approvals is not None
        add(f"approvals >= {approvals}", _approvals(approvals, ctx, by_tier))
    if sections or "card" in require:
        add("card sections", _card(sections, ctx.card_sections))
    return PolicyResult(passed=all(c.passed for c in checks), checks=checks)


def _union(*lists: tuple[str, ...] | None) -> list[str]:
    return list(dict.fromkeys(name for names in lists for name in names or ()))


def _bounds(low: float | None, high: float | None) -> list[tuple[str, float]]:
    return [(op, b) for op, b in ((">=", low), ("<=", high)) if b is not None]


def _evaluation_data(wanted: str, ctx: PolicyContext) -> Outcome:
    actual, fix = ctx.evaluation_dataset, f"evaluate {ctx.model_ref} on {wanted}"
    if ctx.evaluation is None:
        return False, f"{ctx.model_ref} has no evaluation on {wanted}; {fix}"
    if actual is None:
        return False, f"the evaluation does not say which dataset it is on; {fix}"
    if actual == wanted if "@" in wanted else actual.split("@")[0] == wanted:
        return True, f"the evaluation is on {actual}, as the policy requires"
    return False, f"the evaluation is on {actual}, the policy requires {wanted}; {fix}"


def _contract(passed: bool | None, about: str | None) -> Outcome:
    if passed is None:
        fix = "validate the training data against its contract"
        why = f" ({about})" if about else ""
        return False, f"no contract validation is recorded for the training data{why}; {fix}"
    which = f": {about}" if about else ""
    return passed, f"the training data {'passed' if passed else 'failed'} its contract{which}"


def _requirement(item: str, ctx: PolicyContext, evaluation: Mapping[str, Any]) -> Outcome:
    if item == "evaluation":
        on = f" on {ctx.evaluation_dataset}" if ctx.evaluation_dataset else ""
        rows = evaluation.get("rows")
        size = f" ({count(rows, 'row')})" if isinstance(rows, int) else ""
        return True, f"{ctx.model_ref} has an evaluation{on}{size}"
    if item == "fairness":
        groups = evaluation.get("groups")
        columns = ", ".join(str(c) for c in groups) if isinstance(groups, Mapping) else ""
        if columns:
            return True, f"the evaluation has per-group results for {columns}"
        return False, "the evaluation has no per-group results; evaluate with sensitive columns"
    importance = evaluation.get("importance")
    features = [
        str(entry.get("feature"))
        for entry in (importance if isinstance(importance, list) else [])
        if isinstance(entry, Mapping)
    ]
    if not features:
        return False, "the evaluation has no permutation importance; evaluate with repeats > 0"
    n = len(features)
    return True, (
        f"the evaluation has permutation importance for {n} input column{_s(n)} "
        f"(most important: {features[0]})"
    )


def _metric(name: str, use: str, op: str, bound: float, evaluation: Mapping[str, Any]) -> Outcome:
    entry = _metric_entry(evaluation, name)
    if entry is None:
        task = evaluation.get("task")
        return False, f"the evaluation{f' ({task})' if isinstance(task, str) else ''} has no {name}"
    checked = entry[use]
    if checked is None:
        why = (
            "it is undefined on the evaluation data"
            if entry["value"] is None
            else "the evaluation has no confidence interval (it was made without bootstrap)"
        )
        return False, f"{name} has no {use.replace('_', ' ')}: {why}"
    shown = _described(name, entry, evaluation)
    if use != "value":
        shown = f"{name} {use} {_n(checked)}; {shown}"
    if checked >= bound if op == ">=" else checked <= bound:
        return True, f"{shown} {op} {bound:g}"
    return (
        False,
        f"{shown} is {'below the minimum' if op == '>=' else 'above the maximum'} {bound:g}",
    )


def _fairness(
    column: str, measure: str, op: str, bound: float, evaluation: Mapping[str, Any]
) -> Outcome:
    groups = evaluation.get("groups")
    section = groups.get(column) if isinstance(groups, Mapping) else None
    fairness = section.get("fairness") if isinstance(section, Mapping) else None
    if not isinstance(fairness, Mapping):
        known = [str(c) for c in groups] if isinstance(groups, Mapping) else []
        close = difflib.get_close_matches(column, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        fix = f"evaluate with {column!r} as a sensitive column"
        return False, f"the evaluation has no fairness results for {column!r}{hint}; {fix}"
    value = _number(fairness.get(measure))
    if value is None:
        task = evaluation.get("task")
        why = " (fairness measures need a binary classifier)" if task != "binary" else ""
        return False, f"{column}: {measure} is not available in the evaluation{why}"
    four_fifths = (
        " (four-fifths rule)" if measure == "selection_rate_ratio" and bound == 0.8 else ""
    )
    if value >= bound - EPS if op == ">=" else value <= bound + EPS:
        return True, f"{column}: {measure} {_n(value)} {op} {bound:g}{four_fifths}"
    wrong = "<" if op == ">=" else ">"
    rates = _selection_extremes(section)
    return False, f"{column}: {measure} {_n(value)} {wrong} {bound:g}{four_fifths}{rates}"


def _no_regression(rule: NoRegression, ctx: PolicyContext) -> Outcome:
    holder, alias, metric = ctx.against_holder, rule.against, rule.metric
    if holder is None:
        return True, f"{alias} has no holder, so there is nothing to regress against"
    if holder == ctx.model_ref:
        return True, f"{ctx.model_ref} already holds {alias}"
    data = ctx.evaluation_dataset or "the same dataset version"
    if ctx.evaluation is None:
        return False, f"{ctx.model_ref} has no evaluation to compare; evaluate it on {data}"
    if ctx.baseline is None:
        fix = f"evaluate {holder} on {data} so that both are compared on the same rows"
        return False, f"{holder} ({alias}) has no evaluation on {data}; {fix}"
    value = (_metric_entry(ctx.evaluation, metric) or {}).get("value")
    baseline = (_metric_entry(ctx.baseline, metric) or {}).get("value")
    if value is None or baseline is None:
        who = ctx.model_ref if value is None else holder
        return False, f"the evaluation of {who} has no {metric} value"
    lower = metric in LOWER_IS_BETTER
    limit = baseline + rule.tolerance if lower else baseline - rule.tolerance
    shown = f"{metric} {_n(value)} vs {_n(baseline)} for {holder} ({alias})"
    if value <= limit + EPS if lower else value >= limit - EPS:
        return True, f"{shown}; allowed {'up' if lower else 'down'} to {_n(limit)}"
    worse = f"{_n(abs(value - baseline))} {'higher' if lower else 'lower'}"
    return False, f"{shown}: {worse}, more than the tolerance {rule.tolerance:g}"


def misspelt_tier(tier: str, tiers: Iterable[str]) -> str | None:
    """The policy's tier that ``tier`` is a near miss of ('hgih' for 'high'), if any. A tier
    the policy does not name on purpose (say 'medium', with no rules of its own) is not one."""
    known = list(tiers)
    if tier in known:
        return None
    close = difflib.get_close_matches(tier, known, n=1)
    return close[0] if close else None


def _tier(policy: Policy, tier: str | None, model_ref: str) -> Outcome:
    tiers = ", ".join(policy.risk_tiers)
    if tier is None:
        fix = "set the model's risk tier"
        return (
            False,
            f"{model_ref} has no risk tier and the policy has rules by tier ({tiers}); {fix}",
        )
    rules = policy.risk_tiers.get(tier)
    if rules is None:
        meant = misspelt_tier(tier, policy.risk_tiers)
        if meant is not None:
            return (
                False,
                f"{model_ref} has risk tier {tier!r} (did you mean {meant!r}?), which the "
                f"policy does not define; its tiers are {tiers}; set the model's risk tier to "
                "one of them",
            )
        return (
            True,
            f"risk tier {tier!r} has no rules of its own ({tiers} have); top-level rules apply",
        )
    parts = [
        f"{rules.approvals} approval{_s(rules.approvals)}" if rules.approvals is not None else "",
        "card sections " + ", ".join(rules.card_sections) if rules.card_sections else "",
        "require " + ", ".join(rules.require) if rules.require else "",
    ]
    return True, f"risk tier {tier!r} applies: {'; '.join(filter(None, parts)) or 'no extra rules'}"


def _approvals(minimum: int, ctx: PolicyContext, by_tier: bool) -> Outcome:
    latest: dict[str, tuple[str, str]] = {}  # each approver's last decision is the one that counts
    for entry in ctx.approvals:
        who = entry.get("approver") if isinstance(entry, Mapping) else None
        decision = entry.get("decision") if isinstance(entry, Mapping) else None
        if isinstance(who, str) and decision in ("approve", "reject"):
            comment = entry.get("comment")
            latest.pop(who, None)
            latest[who] = (decision, comment if isinstance(comment, str) else "")
    approvers = [who for who, (d, _) in latest.items() if d == "approve"]
    rejecters = [f"{who} ({c!r})" if c else who for who, (d, c) in latest.items() if d == "reject"]
    n = len(approvers)
    count = f"{n} approval{_s(n)}" + (f" ({', '.join(approvers)})" if approvers else "")
    required = f"{minimum} required" + (f" for risk tier {ctx.risk_tier}" if by_tier else "")
    if rejecters:
        return False, f"rejected by {', '.join(rejecters)}; {count}, {required}"
    return n >= minimum, f"{count}, {required}"


def _card(sections: list[str], written: AbstractSet[str]) -> Outcome:
    have = ", ".join(sorted(written))
    if not sections:
        if written:
            return True, f"the model card has written sections: {have}"
        return False, "the model card has no written section; write at least one"
    missing = [s for s in sections if s not in written]
    if missing:
        return False, f"missing card sections: {', '.join(missing)} (written: {have or 'none'})"
    return True, f"all {len(sections)} required sections written: {', '.join(sections)}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# -- reading an evaluation document -----------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _metric_entry(evaluation: Any, name: str) -> dict[str, float | None] | None:
    metrics = evaluation.get("metrics") if isinstance(evaluation, Mapping) else None
    entry = metrics.get(name) if isinstance(metrics, Mapping) else None
    if not isinstance(entry, Mapping):
        return None
    return {key: _number(entry.get(key)) for key in METRIC_USES}


def _described(name: str, entry: Mapping[str, float | None], evaluation: Any) -> str:
    """``roc_auc 0.812 (95% CI 0.801–0.830)``."""
    value, low, high = entry["value"], entry["ci_low"], entry["ci_high"]
    text = f"{name} {_n(value)}" if value is not None else f"{name} undefined"
    if low is not None and high is not None:
        settings = evaluation.get("settings") if isinstance(evaluation, Mapping) else None
        level = _number(settings.get("confidence")) if isinstance(settings, Mapping) else None
        text += f" ({(level or 0.95) * 100:g}% CI {_n(low)}–{_n(high)})"
    return text


def _selection_extremes(section: Any) -> str:
    """``; selection rates from 0.41 (F) to 0.56 (M)`` from the per-group metrics."""
    metrics = section.get("metrics") if isinstance(section, Mapping) else None
    if not isinstance(metrics, Mapping):
        return ""
    rates = {
        str(g): rate
        for g, m in metrics.items()
        if isinstance(m, Mapping) and (rate := _number(m.get("selection_rate"))) is not None
    }
    if len(rates) < 2:
        return ""
    low, high = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
    return f"; selection rates from {_n(rates[low])} ({low}) to {_n(rates[high])} ({high})"


def _n(x: float) -> str:
    """A number for a sentence: three decimals, thousands separators for large values."""
    if abs(x) >= 100:
        return f"{x:,.1f}"
    if x == 0 or abs(x) >= 0.001:
        return f"{x:.3f}"
    return f"{x:.3g}"
