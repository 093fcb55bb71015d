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
    auto_promote: [challenger]

``auto_promote`` names aliases (never ``production``) that a version a scheduled pipeline run
registers takes by itself when every other check of the policy passes for that alias; only
the approvals are not asked for, since no one is there to give them.

This module parses, validates, prints and merges policies (:class:`Policy`); checking a
version against one (``check_policy`` and ``PolicyContext``) is in
:mod:`shipyard.governance.policy_checks`. The format is described in ``docs/governance.md``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.data.contract_parsing import (
    Problems,
    check_keys,
    got,
    parse_number,
    parse_range,
    sub,
)
from shipyard.data.contracts import Range
from shipyard.errors import InvalidInputError
from shipyard.governance.evaluation import (
    FAIRNESS_MEASURES,
    METRICS,
)

__all__ = [
    "CONTRACT_ANNOTATIONS",
    "REQUIREMENTS",
    "Annotations",
    "FairnessRule",
    "MetricRule",
    "NoRegression",
    "Policy",
    "TierRules",
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
    "annotations",
    "auto_promote",
)
# What a contract can be required to carry (`annotations: {contracts: [...]}`).
CONTRACT_ANNOTATIONS = ("description", "owner", "column_descriptions")
_ANNOTATION_KEYS = ("datasets", "contracts", "model_tags")
_TIER_KEYS = ("approvals", "card_sections", "require")
_FAIRNESS_KEYS = (*FAIRNESS_MEASURES, "four_fifths")
# How deep Policy.merge merges mappings key by key; below this a value is replaced whole.
_MERGE_DEPTH = {"metrics": 1, "fairness": 2, "risk_tiers": 2}
EPS = 1e-12  # float slack when comparing against baseline ± tolerance


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
class Annotations:
    """What must be written down before something is registered (project default policy only).

    ``datasets``: tags every new dataset version carries (``description`` is also met by the
    version's message); ``contracts``: parts of every new contract version, out of
    :data:`CONTRACT_ANNOTATIONS` (``column_descriptions``: a description on every column);
    ``model_tags``: tags every new model version carries (or its registered model has).
    """

    datasets: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()
    model_tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.datasets or self.contracts or self.model_tags)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(getattr(self, k)) for k in _ANNOTATION_KEYS if getattr(self, k)}


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
    annotations: Annotations = field(default_factory=Annotations)
    auto_promote: tuple[str, ...] | None = None

    @classmethod
    def from_yaml(cls, text: str) -> Policy:
        """Parse a policy from YAML text.

        Raises:
            InvalidInputError: the text is not YAML, is empty, or the policy has problems
                (all of them listed).
        """
        from shipyard.data.contract_parsing import load_yaml

        doc = load_yaml(text, "policy", "; write at least one rule, e.g. require")
        return cls.from_dict(doc)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy from a YAML file.

        Raises:
            InvalidInputError: the file cannot be read, or the policy has problems (the
                message starts with the file name).
        """
        from shipyard.data.contract_parsing import read_document

        p = Path(path)
        text = read_document(p, "policy")
        try:
            return cls.from_yaml(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{p}: {exc.message}", details=exc.details) from None

    @classmethod
    def from_dict(cls, doc: Any, *, stored: bool = False) -> Policy:
        """Read a policy document (as written in YAML, or by :meth:`to_dict`). With
        ``stored``, a policy read back from the store: card section names are not checked
        (versions set before they were keep loading; the card check reports a name no card
        section has).

        Raises:
            InvalidInputError: ``"3 problems in policy: metrics.roc_acu: unknown metric;
                did you mean 'roc_auc'?; …"``, every problem listed.
        """
        p = Problems()
        policy = _parse_policy(doc, p, check_sections=not stored)
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
        if self.annotations:
            out["annotations"] = self.annotations.to_dict()
        if self.auto_promote is not None:
            out["auto_promote"] = list(self.auto_promote)
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
        return Policy.from_dict(merged, stored=True)


def _merge(base: Any, over: Any, depth: int) -> Any:
    if depth == 0 or not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base.get(key), value, depth - 1)
    return out


# -- parsing ----------------------------------------------------------------------------------


def _parse_policy(doc: Any, p: Problems, *, check_sections: bool = True) -> Policy | None:
    if not isinstance(doc, Mapping):
        p.add(
            "",
            f"a policy is a mapping of rules such as metrics and require, got {got(doc)}",
        )
        return None
    check_keys(doc, _TOP_KEYS, "", p)
    description = doc.get("description", "")
    if not isinstance(description, str):
        p.add("description", f"expected text, got {got(description, expected_text=True)}")
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
        card_sections=_card_sections(doc, "", p, check_sections),
        risk_tiers={
            str(tier): rules
            for tier, raw in _mapping(doc, "risk_tiers", p).items()
            if (rules := _parse_tier(tier, raw, f"risk_tiers.{tier}", p, check_sections))
            is not None
        },
        evaluation_data=_parse_dataset(doc.get("evaluation_data"), p),
        annotations=_parse_annotations(doc.get("annotations"), p),
        auto_promote=_auto_promote(doc, p),
    )
    return None if p.items else policy


def _parse_annotations(raw: Any, p: Problems) -> Annotations:
    path = "annotations"
    if raw is None:
        return Annotations()
    if not isinstance(raw, Mapping):
        example = "{datasets: [owner, description], contracts: [column_descriptions]}"
        p.add(path, f"expected a mapping such as {example}, got {got(raw)}")
        return Annotations()
    check_keys(raw, _ANNOTATION_KEYS, path, p)
    return Annotations(
        datasets=_names(raw, "datasets", path, p, what="tag") or (),
        contracts=_names(raw, "contracts", path, p, CONTRACT_ANNOTATIONS, "annotation") or (),
        model_tags=_names(raw, "model_tags", path, p, what="tag") or (),
    )


def _auto_promote(doc: Mapping[Any, Any], p: Problems) -> tuple[str, ...] | None:
    from shipyard.registry.aliases import ALWAYS_PROTECTED

    names = _names(doc, "auto_promote", "", p, what="alias")
    for i, name in enumerate(names or ()):
        if name in ALWAYS_PROTECTED:
            p.add(
                f"auto_promote[{i}]",
                f"{name!r} is never promoted automatically: it always needs its approvals; "
                "name a non-production alias such as challenger",
            )
    return names


def _parse_tier(
    tier: Any, raw: Any, path: str, p: Problems, check_sections: bool = True
) -> TierRules | None:
    if not isinstance(tier, str) or not isinstance(raw, Mapping):
        p.add(path, f"expected a mapping of {', '.join(_TIER_KEYS)}, got {got(raw)}")
        return None
    check_keys(raw, _TIER_KEYS, path, p)
    return TierRules(
        approvals=_parse_approvals(raw, path, p),
        card_sections=_card_sections(raw, path, p, check_sections),
        require=_requirements(raw, path, p),
    )


def _parse_dataset(value: Any, p: Problems) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    shown = got(value, expected_text=True)
    p.add("evaluation_data", f"expected a dataset name such as holdout or holdout@3, got {shown}")
    return None


def _mapping(doc: Mapping[Any, Any], key: str, p: Problems) -> Mapping[Any, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    p.add(key, f"expected a mapping, got {got(value)}")
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
        p.add(path, f"expected a mapping such as {{min: 0.8}}, got {got(raw)}")
        return None
    check_keys(raw, ("min", "max", "use"), path, p)
    use = raw.get("use", "value")
    if use not in METRIC_USES:
        p.add(
            sub(path, "use"),
            f"expected one of {', '.join(METRIC_USES)}, got {got(use)}",
        )
    bounds = parse_range({k: v for k, v in raw.items() if k in ("min", "max")}, path, p)
    if bounds is None or use not in METRIC_USES:
        return None
    return MetricRule(bounds.min, bounds.max, use)


def _parse_fairness(column: Any, raw: Any, path: str, p: Problems) -> FairnessRule | None:
    if not isinstance(column, str) or not column:
        p.add(path, f"a sensitive column name is text, got {got(column)}")
        return None
    if not isinstance(raw, Mapping) or not raw:
        example = "{demographic_parity_difference: {max: 0.1}}"
        p.add(
            path,
            f"expected a mapping of fairness measures such as {example}, got {got(raw)}",
        )
        return None
    bounds: dict[str, Range] = {}
    four_fifths = None
    for measure, value in raw.items():
        at = sub(path, measure)
        if not _known(measure, _FAIRNESS_KEYS, at, "fairness measure", p):
            continue
        if measure == "four_fifths":
            if isinstance(value, bool):
                four_fifths = value
            else:
                p.add(at, f"expected true or false, got {got(value)}")
        elif (bound := parse_range(value, at, p)) is not None:
            bounds[measure] = bound
    return FairnessRule(bounds, four_fifths)


def _parse_no_regression(raw: Any, p: Problems) -> NoRegression | None:
    path = "no_regression"
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        example = "{against: production, metric: roc_auc, tolerance: 0.01}"
        p.add(path, f"expected a mapping such as {example}, got {got(raw)}")
        return None
    check_keys(raw, ("against", "metric", "tolerance"), path, p)
    against, metric = raw.get("against"), raw.get("metric")
    ok = True
    if not isinstance(against, str) or not against:
        p.add(
            sub(path, "against"),
            f"expected an alias such as production, got {got(against)}",
        )
        ok = False
    if metric is None:
        p.add(path, f"missing 'metric'; one of: {', '.join(METRICS)}")
        ok = False
    elif not _known(metric, METRICS, sub(path, "metric"), "metric", p):
        ok = False
    tolerance = raw.get("tolerance", 0)
    number = parse_number(tolerance, sub(path, "tolerance"), p)
    if number is not None and number < 0:
        p.add(sub(path, "tolerance"), f"expected a number >= 0, got {number!r}")
        number = None
    if not ok or number is None:
        return None
    return NoRegression(str(against), str(metric), number)


def _parse_approvals(raw: Mapping[Any, Any], path: str, p: Problems) -> int | None:
    value = raw.get("approvals")
    at = sub(path, "approvals")
    if value is None:
        return None
    if not isinstance(value, Mapping) or "min" not in value:
        p.add(at, f"expected a mapping such as {{min: 1}}, got {got(value)}")
        return None
    check_keys(value, ("min",), at, p)
    count = value["min"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        p.add(sub(at, "min"), f"expected a whole number >= 0, got {got(count)}")
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
    at = sub(path, key)
    if value is None:
        return None
    if not isinstance(value, list):
        p.add(at, f"expected a list, got {got(value)}")
        return None
    names: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            p.add(f"{at}[{i}]", f"expected a name, got {got(item, expected_text=True)}")
        elif item in names:
            p.add(f"{at}[{i}]", f"{item!r} is listed twice")
        elif not known or _known(item, known, f"{at}[{i}]", f"{what} {item!r}", p):
            names.append(item)
    return tuple(names)


def _card_sections(
    raw: Mapping[Any, Any], path: str, p: Problems, check: bool = True
) -> tuple[str, ...] | None:
    """The model-card sections a policy requires: names `models describe --section` takes, so
    a typo is caught when the policy is set, not by a check that can never pass (``check``
    is off for a policy read back from the store, which may predate the check)."""
    from shipyard.governance.cards import SECTIONS

    known = tuple(SECTIONS) if check else ()
    return _names(raw, "card_sections", path, p, known, "card section")


def _requirements(raw: Mapping[Any, Any], path: str, p: Problems) -> tuple[str, ...] | None:
    return _names(raw, "require", path, p, REQUIREMENTS, "requirement")
