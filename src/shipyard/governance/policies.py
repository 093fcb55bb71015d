"""Policies: promotion gates written as YAML files, checked against gathered facts.

A policy says what a model version must show before it may hold an alias such as
``production``: metric minimums, fairness bounds, required reports, no regression against the
current holder on the same data, approvals and model-card sections by risk tier::

    metrics:
      roc_auc: {min: 0.80}
    fairness:
      gender: {demographic_parity_difference: {max: 0.10}}
    require: [evaluation, fairness, explainability]
    no_regression: {against: production, metric: roc_auc, tolerance: 0.01}
    approvals: {min: 1}

:func:`check_policy` is pure: the service gathers the facts into a :class:`PolicyContext`
(evaluation reports, approvals, card sections, …) and gets back every check with a sentence
saying why it passed or failed; it never stops at the first failure. The format is described
in ``docs/governance.md``.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from shipyard.data.contract_parsing import (
    Problems,
    _check_keys,
    _got,
    _join,
    _parse_number,
    _parse_range,
    unique_key_loader,
)
from shipyard.data.contracts import Range
from shipyard.errors import CheckFailedError, InvalidInputError
from shipyard.governance.evaluation import (
    FAIRNESS_MEASURES,
    FOUR_FIFTHS,
    LOWER_IS_BETTER,
    METRICS,
)

__all__ = [
    "REQUIREMENTS",
    "Check",
    "FairnessRule",
    "MetricRule",
    "NoRegression",
    "Policy",
    "PolicyContext",
    "PolicyResult",
    "TierRules",
    "check_policy",
]

REQUIREMENTS = ("evaluation", "fairness", "explainability", "contract", "card")
METRIC_USES = ("value", "ci_low", "ci_high")
_TOP_KEYS = (
    "description",
    "metrics",
    "fairness",
    "require",
    "no_regression",
    "approvals",
    "card_sections",
    "risk_tiers",
    "evaluation_data",
)
_TIER_KEYS = ("approvals", "card_sections", "require")
_FAIRNESS_KEYS = (*FAIRNESS_MEASURES, "four_fifths")
# How deep Policy.merge merges mappings key by key; below this a value is replaced whole.
_MERGE_DEPTH = {"metrics": 1, "fairness": 2, "risk_tiers": 2}
_EPS = 1e-12  # float slack when comparing against baseline ± tolerance


# -- the policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRule:
    """Bounds on one metric of the evaluation; ``use`` picks the value checked: the metric
    itself, or the low or high end of its confidence interval."""

    min: int | float | None = None
    max: int | float | None = None
    use: str = "value"

    def to_dict(self) -> dict[str, Any]:
        out = Range(self.min, self.max).to_dict()
        if self.use != "value":
            out["use"] = self.use
        return out


@dataclass(frozen=True)
class FairnessRule:
    """Bounds on the fairness measures of one sensitive column, and the four-fifths rule."""

    bounds: dict[str, Range] = field(default_factory=dict)
    four_fifths: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {m: r.to_dict() for m, r in self.bounds.items()}
        if self.four_fifths is not None:
            out["four_fifths"] = self.four_fifths
        return out


@dataclass(frozen=True)
class NoRegression:
    """The candidate's ``metric`` must not be worse than the ``against`` alias holder's on
    the same dataset version by more than ``tolerance``."""

    against: str
    metric: str
    tolerance: int | float = 0

    def to_dict(self) -> dict[str, Any]:
        return {"against": self.against, "metric": self.metric, "tolerance": self.tolerance}


@dataclass(frozen=True)
class TierRules:
    """Rules for the models of one risk tier; None means "not set by this tier"."""

    approvals: int | None = None
    card_sections: tuple[str, ...] | None = None
    require: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.approvals is not None:
            out["approvals"] = {"min": self.approvals}
        if self.card_sections is not None:
            out["card_sections"] = list(self.card_sections)
        if self.require is not None:
            out["require"] = list(self.require)
        return out


@dataclass(frozen=True)
class Policy:
    """A promotion gate. Fields left None are not set (and :meth:`merge` keeps the default's).

    >>> Policy.from_yaml("metrics: {roc_auc: {min: 0.8}}").metrics["roc_auc"].min
    0.8
    """

    description: str = ""
    metrics: dict[str, MetricRule] = field(default_factory=dict)
    fairness: dict[str, FairnessRule] = field(default_factory=dict)
    require: tuple[str, ...] | None = None
    no_regression: NoRegression | None = None
    approvals: int | None = None
    card_sections: tuple[str, ...] | None = None
    risk_tiers: dict[str, TierRules] = field(default_factory=dict)
    evaluation_data: str | None = None

    @classmethod
    def from_yaml(cls, text: str) -> Policy:
        """Parse a policy from YAML text.

        Raises:
            InvalidInputError: the text is not YAML, is empty, or the policy has problems
                (all of them listed).
        """
        import yaml

        try:
            doc = yaml.load(text, Loader=unique_key_loader())  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            reason = getattr(exc, "problem", None) or str(exc)
            raise InvalidInputError(f"policy is not valid YAML{where}: {reason}") from None
        if doc is None:
            raise InvalidInputError("policy is empty; write at least one rule, e.g. require")
        return cls.from_dict(doc)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy from a YAML file.

        Raises:
            InvalidInputError: the file cannot be read, or the policy has problems (the
                message starts with the file name).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"{p}: cannot read policy: {exc.strerror}") from None
        try:
            return cls.from_yaml(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{p}: {exc.message}", details=exc.details) from None

    @classmethod
    def from_dict(cls, doc: Any) -> Policy:
        """Read a policy document (as written in YAML, or by :meth:`to_dict`).

        Raises:
            InvalidInputError: ``"3 problems in policy: metrics.roc_acu: unknown metric;
                did you mean 'roc_auc'?; …"``, every problem listed.
        """
        p = Problems()
        policy = _parse_policy(doc, p)
        p.raise_if_any("policy")
        assert policy is not None
        return policy

    def to_dict(self) -> dict[str, Any]:
        """The policy as a JSON-ready document holding only what is set."""
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        if self.metrics:
            out["metrics"] = {name: rule.to_dict() for name, rule in self.metrics.items()}
        if self.fairness:
            out["fairness"] = {col: rule.to_dict() for col, rule in self.fairness.items()}
        if self.require is not None:
            out["require"] = list(self.require)
        if self.no_regression is not None:
            out["no_regression"] = self.no_regression.to_dict()
        if self.approvals is not None:
            out["approvals"] = {"min": self.approvals}
        if self.card_sections is not None:
            out["card_sections"] = list(self.card_sections)
        if self.risk_tiers:
            out["risk_tiers"] = {tier: rules.to_dict() for tier, rules in self.risk_tiers.items()}
        if self.evaluation_data is not None:
            out["evaluation_data"] = self.evaluation_data
        return out

    def to_yaml(self) -> str:
        """The policy as YAML, in the format users write."""
        import yaml

        doc = self.to_dict()
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        if "\x85" in text:  # PyYAML writes NEL unescaped, then reads it as a line break
            text = yaml.safe_dump(doc, sort_keys=False, width=100)
        return text

    @staticmethod
    def merge(default: Policy, specific: Policy) -> Policy:
        """The ``default`` policy (the project's) overridden key by key by ``specific`` (a
        model's): metrics merge by metric name, fairness by column and measure, risk_tiers
        by tier and key; anything else that ``specific`` sets (require, approvals,
        card_sections, no_regression, evaluation_data, description) replaces the default's.

        >>> Policy.merge(project_default, model_policy)  # doctest: +SKIP
        """
        merged = dict(default.to_dict())
        for key, value in specific.to_dict().items():
            merged[key] = _merge(merged.get(key), value, _MERGE_DEPTH.get(key, 0))
        return Policy.from_dict(merged)


def _merge(base: Any, over: Any, depth: int) -> Any:
    if depth == 0 or not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base.get(key), value, depth - 1)
    return out


# -- parsing ----------------------------------------------------------------------------------


def _parse_policy(doc: Any, p: Problems) -> Policy | None:
    if not isinstance(doc, Mapping):
        p.add("", f"a policy is a mapping of rules such as metrics and require, got {_got(doc)}")
        return None
    _check_keys(doc, _TOP_KEYS, "", p)
    description = doc.get("description", "")
    if not isinstance(description, str):
        p.add("description", f"expected text, got {_got(description, expected_text=True)}")
    policy = Policy(
        description=description if isinstance(description, str) else "",
        metrics={
            name: rule
            for name, raw in _mapping(doc, "metrics", p).items()
            if (rule := _parse_metric(name, raw, p)) is not None
        },
        fairness={
            str(column): fair
            for column, raw in _mapping(doc, "fairness", p).items()
            if (fair := _parse_fairness(column, raw, f"fairness.{column}", p)) is not None
        },
        require=_requirements(doc, "", p),
        no_regression=_parse_no_regression(doc.get("no_regression"), p),
        approvals=_parse_approvals(doc, "", p),
        card_sections=_names(doc, "card_sections", "", p),
        risk_tiers={
            str(tier): rules
            for tier, raw in _mapping(doc, "risk_tiers", p).items()
            if (rules := _parse_tier(tier, raw, f"risk_tiers.{tier}", p)) is not None
        },
        evaluation_data=_parse_dataset(doc.get("evaluation_data"), p),
    )
    return None if p.items else policy


def _parse_tier(tier: Any, raw: Any, path: str, p: Problems) -> TierRules | None:
    if not isinstance(tier, str) or not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping of {', '.join(_TIER_KEYS)}, got {_got(raw)}")
        return None
    _check_keys(raw, _TIER_KEYS, path, p)
    return TierRules(
        approvals=_parse_approvals(raw, path, p),
        card_sections=_names(raw, "card_sections", path, p),
        require=_requirements(raw, path, p),
    )


def _parse_dataset(value: Any, p: Problems) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    got = _got(value, expected_text=True)
    p.add("evaluation_data", f"expected a dataset name such as holdout or holdout@3, got {got}")
    return None


def _mapping(doc: Mapping[Any, Any], key: str, p: Problems) -> Mapping[Any, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    p.add(key, f"expected a mapping, got {_got(value)}")
    return {}


def _known(name: Any, known: Sequence[str], path: str, what: str, p: Problems) -> bool:
    if name in known:
        return True
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(known)}"
    p.add(path, f"unknown {what}; {hint}")
    return False


def _parse_metric(name: Any, raw: Any, p: Problems) -> MetricRule | None:
    path = f"metrics.{name}"
    if not _known(name, METRICS, path, "metric", p):
        return None
    if not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping such as {{min: 0.8}}, got {_got(raw)}")
        return None
    _check_keys(raw, ("min", "max", "use"), path, p)
    use = raw.get("use", "value")
    if use not in METRIC_USES:
        p.add(_join(path, "use"), f"expected one of {', '.join(METRIC_USES)}, got {_got(use)}")
    bounds = _parse_range({k: v for k, v in raw.items() if k in ("min", "max")}, path, p)
    if bounds is None or use not in METRIC_USES:
        return None
    return MetricRule(bounds.min, bounds.max, use)


def _parse_fairness(column: Any, raw: Any, path: str, p: Problems) -> FairnessRule | None:
    if not isinstance(column, str) or not column:
        p.add(path, f"a sensitive column name is text, got {_got(column)}")
        return None
    if not isinstance(raw, Mapping) or not raw:
        example = "{demographic_parity_difference: {max: 0.1}}"
        p.add(path, f"expected a mapping of fairness measures such as {example}, got {_got(raw)}")
        return None
    bounds: dict[str, Range] = {}
    four_fifths = None
    for measure, value in raw.items():
        at = _join(path, measure)
        if not _known(measure, _FAIRNESS_KEYS, at, "fairness measure", p):
            continue
        if measure == "four_fifths":
            if isinstance(value, bool):
                four_fifths = value
            else:
                p.add(at, f"expected true or false, got {_got(value)}")
        elif (bound := _parse_range(value, at, p)) is not None:
            bounds[measure] = bound
    return FairnessRule(bounds, four_fifths)


def _parse_no_regression(raw: Any, p: Problems) -> NoRegression | None:
    path = "no_regression"
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        example = "{against: production, metric: roc_auc, tolerance: 0.01}"
        p.add(path, f"expected a mapping such as {example}, got {_got(raw)}")
        return None
    _check_keys(raw, ("against", "metric", "tolerance"), path, p)
    against, metric = raw.get("against"), raw.get("metric")
    ok = True
    if not isinstance(against, str) or not against:
        p.add(_join(path, "against"), f"expected an alias such as production, got {_got(against)}")
        ok = False
    if metric is None:
        p.add(path, f"missing 'metric'; one of: {', '.join(METRICS)}")
        ok = False
    elif not _known(metric, METRICS, _join(path, "metric"), "metric", p):
        ok = False
    tolerance = raw.get("tolerance", 0)
    number = _parse_number(tolerance, _join(path, "tolerance"), p)
    if number is not None and number < 0:
        p.add(_join(path, "tolerance"), f"expected a number >= 0, got {number!r}")
        number = None
    if not ok or number is None:
        return None
    return NoRegression(against, metric, number)  # type: ignore[arg-type]


def _parse_approvals(raw: Mapping[Any, Any], path: str, p: Problems) -> int | None:
    value = raw.get("approvals")
    at = _join(path, "approvals")
    if value is None:
        return None
    if not isinstance(value, Mapping) or "min" not in value:
        p.add(at, f"expected a mapping such as {{min: 1}}, got {_got(value)}")
        return None
    _check_keys(value, ("min",), at, p)
    count = value["min"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        p.add(_join(at, "min"), f"expected a whole number >= 0, got {_got(count)}")
        return None
    return count


def _names(
    raw: Mapping[Any, Any],
    key: str,
    path: str,
    p: Problems,
    known: Sequence[str] = (),
    what: str = "name",
) -> tuple[str, ...] | None:
    """A list of distinct names (of ``known`` ones, when given)."""
    value = raw.get(key)
    at = _join(path, key)
    if value is None:
        return None
    if not isinstance(value, list):
        p.add(at, f"expected a list, got {_got(value)}")
        return None
    names: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            p.add(f"{at}[{i}]", f"expected a name, got {_got(item, expected_text=True)}")
        elif item in names:
            p.add(f"{at}[{i}]", f"{item!r} is listed twice")
        elif not known or _known(item, known, f"{at}[{i}]", f"{what} {item!r}", p):
            names.append(item)
    return tuple(names)


def _requirements(raw: Mapping[Any, Any], path: str, p: Problems) -> tuple[str, ...] | None:
    return _names(raw, "require", path, p, REQUIREMENTS, "requirement")


# -- facts and results ------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyContext:
    """The facts a policy is checked against, gathered by the service.

    ``evaluation`` is this version's :meth:`EvaluationReport.to_dict` on the dataset the
    policy wants (``evaluation_dataset``, e.g. ``holdout@3``); ``baseline`` is the alias
    holder's (``against_holder``, None when the alias has no holder) on the same dataset
    version; ``approvals`` are ``{"approver", "decision", "comment"}`` in time order;
    ``card_sections`` the human-written sections of the model card.
    """

    model_ref: str
    evaluation: Mapping[str, Any] | None = None
    baseline: Mapping[str, Any] | None = None
    against_holder: str | None = None
    approvals: Sequence[Mapping[str, Any]] = ()
    training_contract_passed: bool | None = None
    card_sections: AbstractSet[str] = frozenset()
    risk_tier: str | None = None
    evaluation_dataset: str | None = None


@dataclass(frozen=True)
class Check:
    """One rule of a policy: its stable ``name``, the outcome, and a sentence why."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class PolicyResult:
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

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}

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
    (its ``approvals`` replaces the top-level minimum). ``require: [card]`` adds the
    ``card sections`` check.

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
            add("require contract", _contract(ctx.training_contract_passed))
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


def _contract(passed: bool | None) -> Outcome:
    if passed is None:
        fix = "validate the training data against its contract"
        return False, f"no contract validation is recorded for the training data; {fix}"
    return passed, f"the training data {'passed' if passed else 'failed'} its contract"


def _requirement(item: str, ctx: PolicyContext, evaluation: Mapping[str, Any]) -> Outcome:
    if item == "evaluation":
        on = f" on {ctx.evaluation_dataset}" if ctx.evaluation_dataset else ""
        rows = evaluation.get("rows")
        size = f" ({rows:,} rows)" if isinstance(rows, int) else ""
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
    if value >= bound - _EPS if op == ">=" else value <= bound + _EPS:
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
    if value <= limit + _EPS if lower else value >= limit - _EPS:
        return True, f"{shown}; allowed {'up' if lower else 'down'} to {_n(limit)}"
    worse = f"{_n(abs(value - baseline))} {'higher' if lower else 'lower'}"
    return False, f"{shown}: {worse}, more than the tolerance {rule.tolerance:g}"


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
