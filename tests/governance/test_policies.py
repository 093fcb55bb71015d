"""Policies: YAML gates parsed with every problem reported, and checked against gathered
facts with every check listed and explained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.data.contracts import Range
from shipyard.errors import CheckFailedError, InvalidInputError
from shipyard.governance.cards import SECTIONS
from shipyard.governance.evaluation import FAIRNESS_MEASURES, METRICS
from shipyard.governance.policies import (
    REQUIREMENTS,
    FairnessRule,
    MetricRule,
    NoRegression,
    Policy,
    TierRules,
)
from shipyard.governance.policy_checks import Check, PolicyContext, check_policy

EXAMPLE = """
metrics:
  roc_auc: {min: 0.80}
fairness:
  gender: {demographic_parity_difference: {max: 0.10}}
require: [evaluation, fairness, explainability]
no_regression: {against: production, metric: roc_auc, tolerance: 0.01}
approvals: {min: 1}
"""


def evaluation(
    roc_auc: float | None = 0.812,
    ci: tuple[float | None, float | None] = (0.801, 0.83),
    dpd: float | None = 0.04,
    ratio: float | None = 0.9,
    task: str = "binary",
) -> dict[str, Any]:
    """An evaluation document as EvaluationReport.to_dict writes it."""
    return {
        "task": task,
        "rows": 2000,
        "label": "default",
        "metrics": {
            "roc_auc": {"value": roc_auc, "ci_low": ci[0], "ci_high": ci[1]},
            "log_loss": {"value": 0.45, "ci_low": 0.43, "ci_high": 0.47},
        },
        "confusion_matrix": None,
        "groups": {
            "gender": {
                "metrics": {
                    "F": {"count": 900, "selection_rate": 0.36},
                    "M": {"count": 1100, "selection_rate": 0.40},
                },
                "fairness": {
                    "demographic_parity_difference": dpd,
                    "equalized_odds_difference": 0.05,
                    "selection_rate_ratio": ratio,
                    "four_fifths": None if ratio is None else ratio >= 0.8,
                },
            }
        },
        "importance": [{"feature": "income", "mean": 0.2, "std": 0.01}],
        "notes": [],
        "settings": {"confidence": 0.95},
    }


def context(**changes: Any) -> PolicyContext:
    """Facts under which the example policy passes; ``changes`` override them."""
    facts: dict[str, Any] = {
        "model_ref": "credit-risk@3",
        "evaluation": evaluation(),
        "baseline": evaluation(roc_auc=0.80),
        "against_holder": "credit-risk@1",
        "approvals": [{"approver": "bob", "decision": "approve", "comment": "ok"}],
        "training_contract_passed": True,
        "card_sections": {"intended_use"},
        "risk_tier": None,
        "evaluation_dataset": "holdout@4",
    }
    return PolicyContext(**(facts | changes))


def check(policy: Policy | str, ctx: PolicyContext, name: str) -> Check:
    if isinstance(policy, str):
        policy = Policy.from_yaml(policy)
    found = [c for c in check_policy(policy, ctx).checks if c.name == name]
    assert len(found) == 1, [c.name for c in check_policy(policy, ctx).checks]
    return found[0]


# -- parsing ----------------------------------------------------------------------------------


def test_the_example_policy_parses() -> None:
    """The documented example reads into typed rules and writes back to the same YAML."""
    policy = Policy.from_yaml(EXAMPLE)
    assert policy == Policy(
        metrics={"roc_auc": MetricRule(min=0.8)},
        fairness={"gender": FairnessRule({"demographic_parity_difference": Range(max=0.1)})},
        require=("evaluation", "fairness", "explainability"),
        no_regression=NoRegression("production", "roc_auc", 0.01),
        approvals=1,
    )
    assert Policy.from_yaml(policy.to_yaml()) == policy


def test_the_example_passes_on_good_facts() -> None:
    """With good facts every check of the example passes, and their names are stable."""
    result = check_policy(Policy.from_yaml(EXAMPLE), context())
    assert result.passed, result.summary()
    assert [c.name for c in result.checks] == [
        "require evaluation",
        "require fairness",
        "require explainability",
        "metric roc_auc >= 0.8",
        "fairness gender demographic_parity_difference <= 0.1",
        "no_regression roc_auc vs production",
        "approvals >= 1",
    ]
    assert result.summary() == "passed (7 checks)"
    result.raise_if_failed()


def test_every_failure_is_listed_at_once() -> None:
    """With no facts at all, every rule fails and each failure says what to do."""
    policy = Policy.from_yaml(
        EXAMPLE.replace(
            "[evaluation, fairness, explainability]",
            "[evaluation, fairness, explainability, contract, card]",
        )
        + "card_sections: [caveats]\nevaluation_data: holdout\n"
        "risk_tiers: {high: {approvals: {min: 2}}}\n"
    )
    ctx = PolicyContext(model_ref="credit-risk@3", against_holder="credit-risk@1")
    result = check_policy(policy, ctx)
    assert not result.passed
    assert [(c.name, c.passed) for c in result.checks] == [
        ("evaluation data", False),
        ("require evaluation", False),
        ("require fairness", False),
        ("require explainability", False),
        ("require contract", False),
        ("metric roc_auc >= 0.8", False),
        ("fairness gender demographic_parity_difference <= 0.1", False),
        ("no_regression roc_auc vs production", False),
        ("risk tier", False),
        ("approvals >= 1", False),
        ("card sections", False),
    ]
    assert result.summary().startswith("11 of 11 checks failed: evaluation data, require")
    assert result.checks[1].detail == "credit-risk@3 has no evaluation; evaluate it first"
    with pytest.raises(CheckFailedError) as caught:
        result.raise_if_failed()
    assert caught.value.exit_code == 3 and caught.value.details == result.to_dict()


def test_parse_errors_are_gathered_with_hints() -> None:
    """Every problem is reported in one error, misspellings with a "did you mean"."""
    text = """
metrics:
  roc_acu: {min: 0.8}
  f1: {min: 0.9, max: 0.5, use: ci_lo}
fairness:
  gender: {demographic_parity: {max: 0.1}, four_fifths: yes please}
require: [evaluaton, card, card]
no_regression: {against: production, metric: auc, tolerence: 0.01}
approvls: {min: 1}
risk_tiers: {high: {approvals: {min: -1}, card_section: [caveats]}}
evaluation_data: 3
"""
    with pytest.raises(InvalidInputError) as caught:
        Policy.from_yaml(text)
    problems = caught.value.details["problems"]
    assert caught.value.message.startswith(f"{len(problems)} problems in policy: ")
    expected = [
        "approvls: unknown key; did you mean 'approvals'?",
        "metrics.roc_acu: unknown metric; did you mean 'roc_auc'?",
        "metrics.f1.use: expected one of value, ci_low, ci_high, got 'ci_lo' (a string)",
        "metrics.f1: min 0.9 is greater than max 0.5",
        "fairness.gender.demographic_parity: unknown fairness measure; "
        "did you mean 'demographic_parity_difference'?",
        "fairness.gender.four_fifths: expected true or false, got 'yes please' (a string)",
        "risk_tiers.high.card_section: unknown key; did you mean 'card_sections'?",
        "risk_tiers.high.approvals.min: expected a whole number >= 0, got -1 (an integer)",
        "evaluation_data: expected a dataset name such as holdout or holdout@3, got 3 "
        "(an integer); quote the value to make it text",
        "require[0]: unknown requirement 'evaluaton'; did you mean 'evaluation'?",
        "require[2]: 'card' is listed twice",
        "no_regression.tolerence: unknown key; did you mean 'tolerance'?",
        "no_regression.metric: unknown metric; did you mean 'roc_auc'?",
    ]
    for problem in expected:
        assert any(p.startswith(problem) for p in problems), (problem, problems)
    assert len(problems) == len(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "policy is empty"),
        ("metrics: [roc_auc]", "metrics: expected a mapping"),
        ("- a\n- b", "a policy is a mapping of rules"),
        ("approvals: {min: 1}\napprovals: {min: 2}", "key 'approvals' appears twice"),
        ("metrics: {roc_auc: {min: 0.8}", "policy is not valid YAML at line 1"),
        ("approvals: 2", "approvals: expected a mapping such as {min: 1}"),
        ("metrics: {roc_auc: {}}", "metrics.roc_auc: needs min and/or max"),
        ("fairness: {gender: {}}", "fairness.gender: expected a mapping of fairness measures"),
        ("no_regression: {against: production}", "no_regression: missing 'metric'"),
        ("no_regression: {against: p, metric: f1, tolerance: -1}", "expected a number >= 0"),
        (
            "card_sections: [ethical_consideratons]",
            "card_sections[0]: unknown card section 'ethical_consideratons'; "
            "did you mean 'ethical_considerations'?",
        ),
        (
            "risk_tiers: {high: {card_sections: [caveats, model_details]}}",
            "risk_tiers.high.card_sections[1]: unknown card section 'model_details'; "
            "did you mean 'details'?",
        ),
    ],
)
def test_bad_policies_are_refused(text: str, message: str) -> None:
    """Each kind of mistake is named."""
    with pytest.raises(InvalidInputError, match=message.replace("{", r"\{").replace("[", r"\[")):
        Policy.from_yaml(text)


def test_from_file_names_the_file(tmp_path: Path) -> None:
    """A policy file reads like its text; a problem in it is prefixed by the file name."""
    good, bad = tmp_path / "policy.yaml", tmp_path / "bad.yaml"
    good.write_text(EXAMPLE, encoding="utf-8")
    bad.write_text("approvals: {min: one}\n", encoding="utf-8")
    assert Policy.from_file(good) == Policy.from_yaml(EXAMPLE)
    with pytest.raises(InvalidInputError, match=r"^.*bad\.yaml: 1 problem in policy: approvals"):
        Policy.from_file(bad)
    with pytest.raises(InvalidInputError, match="cannot read policy"):
        Policy.from_file(tmp_path / "missing.yaml")


def test_to_dict_holds_only_what_is_set() -> None:
    """to_dict writes the user's format, leaving out unset rules."""
    text = """
description: credit models
metrics: {roc_auc: {min: 0.8, use: ci_low}, log_loss: {max: 0.5}}
fairness: {gender: {selection_rate_ratio: {min: 0.8}, four_fifths: true}}
require: []
card_sections: [intended_use]
risk_tiers: {high: {approvals: {min: 2}, card_sections: [caveats], require: [fairness]}, low: {}}
evaluation_data: holdout@4
"""
    assert Policy.from_yaml(text).to_dict() == {
        "description": "credit models",
        "metrics": {"roc_auc": {"min": 0.8, "use": "ci_low"}, "log_loss": {"max": 0.5}},
        "fairness": {"gender": {"selection_rate_ratio": {"min": 0.8}, "four_fifths": True}},
        "require": [],
        "card_sections": ["intended_use"],
        "risk_tiers": {
            "high": {
                "approvals": {"min": 2},
                "card_sections": ["caveats"],
                "require": ["fairness"],
            },
            "low": {},
        },
        "evaluation_data": "holdout@4",
    }
    assert Policy.from_dict({}).to_dict() == {}


def test_merge_lets_the_specific_policy_override_key_by_key() -> None:
    """Metrics merge by name, fairness by column and measure, tiers by tier and key; other
    keys the specific policy sets replace the default's."""
    default = Policy.from_yaml("""
metrics: {roc_auc: {min: 0.8, use: ci_low}, f1: {min: 0.6}}
fairness: {gender: {demographic_parity_difference: {max: 0.1}, four_fifths: true}}
require: [evaluation, fairness]
approvals: {min: 1}
risk_tiers: {high: {approvals: {min: 2}, card_sections: [caveats]}}
""")
    specific = Policy.from_yaml("""
metrics: {roc_auc: {min: 0.9}}
fairness: {gender: {demographic_parity_difference: {max: 0.05}}, age_band: {four_fifths: true}}
require: [evaluation]
risk_tiers: {high: {approvals: {min: 3}}, low: {approvals: {min: 0}}}
""")
    merged = Policy.merge(default, specific)
    assert merged.to_dict() == {
        "metrics": {"roc_auc": {"min": 0.9}, "f1": {"min": 0.6}},
        "fairness": {
            "gender": {"demographic_parity_difference": {"max": 0.05}, "four_fifths": True},
            "age_band": {"four_fifths": True},
        },
        "require": ["evaluation"],
        "approvals": {"min": 1},
        "risk_tiers": {
            "high": {"approvals": {"min": 3}, "card_sections": ["caveats"]},
            "low": {"approvals": {"min": 0}},
        },
    }
    assert Policy.merge(default, Policy()) == default
    assert Policy.merge(Policy(), specific) == specific


# -- each check -------------------------------------------------------------------------------


def test_metric_minimum() -> None:
    """A metric passes at or above its minimum; the detail gives value and interval."""
    ok = check(EXAMPLE, context(), "metric roc_auc >= 0.8")
    assert ok == Check("metric roc_auc >= 0.8", True, "roc_auc 0.812 (95% CI 0.801–0.830) >= 0.8")
    low = check(EXAMPLE, context(evaluation=evaluation(roc_auc=0.75)), "metric roc_auc >= 0.8")
    assert not low.passed
    assert low.detail == "roc_auc 0.750 (95% CI 0.801–0.830) is below the minimum 0.8"


def test_metric_maximum_and_interval_bounds() -> None:
    """``use: ci_low`` checks the lower end of the interval; a maximum checks from above;
    a metric the evaluation lacks fails."""
    text = "metrics: {roc_auc: {min: 0.805, use: ci_low}, log_loss: {max: 0.4}, mae: {max: 3}}"
    result = check_policy(Policy.from_yaml(text), context())
    by_name = {c.name: c for c in result.checks}
    assert by_name["metric roc_auc ci_low >= 0.805"].passed is False
    assert by_name["metric roc_auc ci_low >= 0.805"].detail == (
        "roc_auc ci_low 0.801; roc_auc 0.812 (95% CI 0.801–0.830) is below the minimum 0.805"
    )
    assert by_name["metric log_loss <= 0.4"].detail.endswith("is above the maximum 0.4")
    assert by_name["metric mae <= 3"].detail == "the evaluation (binary) has no mae"
    relaxed = "metrics: {roc_auc: {min: 0.8, use: ci_low}}"
    assert check(relaxed, context(), "metric roc_auc ci_low >= 0.8").passed
    no_ci = context(evaluation=evaluation(ci=(None, None)))
    missing = check(relaxed, no_ci, "metric roc_auc ci_low >= 0.8")
    assert not missing.passed and "without bootstrap" in missing.detail
    undefined = check(
        EXAMPLE, context(evaluation=evaluation(roc_auc=None)), "metric roc_auc >= 0.8"
    )
    assert not undefined.passed and "undefined" in undefined.detail


def test_fairness_bounds_and_four_fifths() -> None:
    """Fairness measures are checked per sensitive column; the four-fifths rule checks the
    selection-rate ratio; a column the evaluation lacks fails with a hint."""
    name = "fairness gender demographic_parity_difference <= 0.1"
    assert check(EXAMPLE, context(), name).detail == (
        "gender: demographic_parity_difference 0.040 <= 0.1"
    )
    high = check(EXAMPLE, context(evaluation=evaluation(dpd=0.15)), name)
    assert not high.passed
    assert high.detail == (
        "gender: demographic_parity_difference 0.150 > 0.1; "
        "selection rates from 0.360 (F) to 0.400 (M)"
    )
    text = "fairness: {gender: {four_fifths: true, selection_rate_ratio: {min: 0.85}}}"
    ff = "fairness gender four_fifths"
    assert check(text, context(), ff).passed
    failing = check(text, context(evaluation=evaluation(ratio=0.7)), ff)
    assert not failing.passed and "(four-fifths rule)" in failing.detail
    assert check(text, context(), "fairness gender selection_rate_ratio >= 0.85").passed
    typo = check(
        "fairness: {gendre: {four_fifths: true}}", context(), "fairness gendre four_fifths"
    )
    assert not typo.passed and "did you mean 'gender'?" in typo.detail
    multiclass = context(evaluation=evaluation(dpd=None, task="multiclass"))
    assert "need a binary classifier" in check(EXAMPLE, multiclass, name).detail


@pytest.mark.parametrize("item", ["evaluation", "fairness", "explainability"])
def test_required_reports(item: str) -> None:
    """Required reports pass when the evaluation has them and fail when it does not."""
    text = f"require: [{item}]"
    assert check(text, context(), f"require {item}").passed
    bare = evaluation() | {"groups": {}, "importance": []}
    failed = check(
        text, context(evaluation=None if item == "evaluation" else bare), f"require {item}"
    )
    assert not failed.passed


def test_required_contract() -> None:
    """``require: [contract]`` needs a recorded, passed validation of the training data."""
    name = "require contract"
    assert check("require: [contract]", context(), name).detail == (
        "the training data passed its contract"
    )
    assert not check("require: [contract]", context(training_contract_passed=False), name).passed
    unknown = check("require: [contract]", context(training_contract_passed=None), name)
    assert not unknown.passed and "no contract validation is recorded" in unknown.detail
    named = context(training_contract_passed=True, training_contract="t@1 passed c@1")
    assert check("require: [contract]", named, name).detail == (
        "the training data passed its contract: t@1 passed c@1"
    )


def test_card_sections() -> None:
    """Named card sections must all be written; ``require: [card]`` alone needs one."""
    text = "card_sections: [intended_use, caveats]"
    missing = check(text, context(), "card sections")
    assert missing == Check(
        "card sections", False, "missing card sections: caveats (written: intended_use)"
    )
    written = context(card_sections={"intended_use", "caveats"})
    assert check(text, written, "card sections").passed
    assert check("require: [card]", context(), "card sections").passed
    assert not check("require: [card]", context(card_sections=set()), "card sections").passed


def test_no_regression() -> None:
    """The candidate may be worse than the holder by at most the tolerance, on the same data;
    with no holder there is nothing to compare, and a missing baseline says how to fix it."""
    name = "no_regression roc_auc vs production"
    ok = check(EXAMPLE, context(baseline=evaluation(roc_auc=0.82)), name)
    assert ok.passed
    assert ok.detail == (
        "roc_auc 0.812 vs 0.820 for credit-risk@1 (production); allowed down to 0.810"
    )
    worse = check(EXAMPLE, context(baseline=evaluation(roc_auc=0.83)), name)
    assert not worse.passed
    assert worse.detail == (
        "roc_auc 0.812 vs 0.830 for credit-risk@1 (production): 0.018 lower, "
        "more than the tolerance 0.01"
    )
    edge = check(
        EXAMPLE, context(evaluation=evaluation(roc_auc=0.79), baseline=evaluation(0.8)), name
    )
    assert edge.passed  # exactly at baseline - tolerance
    free = check(EXAMPLE, context(against_holder=None, baseline=None), name)
    assert free.passed and "production has no holder" in free.detail
    unmeasured = check(EXAMPLE, context(baseline=None), name)
    assert not unmeasured.passed
    assert unmeasured.detail == (
        "credit-risk@1 (production) has no evaluation on holdout@4; evaluate credit-risk@1 "
        "on holdout@4 so that both are compared on the same rows"
    )
    itself = check(EXAMPLE, context(against_holder="credit-risk@3"), name)
    assert itself.passed


def test_no_regression_flips_for_lower_is_better() -> None:
    """For log_loss, mae and rmse lower is better, so the candidate may exceed the baseline
    by at most the tolerance."""
    text = "no_regression: {against: production, metric: log_loss, tolerance: 0.02}"
    name = "no_regression log_loss vs production"
    base = evaluation()
    better = base | {"metrics": {"log_loss": {"value": 0.40, "ci_low": None, "ci_high": None}}}
    worse = base | {"metrics": {"log_loss": {"value": 0.50, "ci_low": None, "ci_high": None}}}
    assert check(text, context(evaluation=better, baseline=base), name).passed
    failed = check(text, context(evaluation=worse, baseline=base), name)
    assert not failed.passed and "0.050 higher" in failed.detail


def test_approvals() -> None:
    """Distinct approvers are counted; a standing rejection fails the check and names who;
    an approver's last decision is the one that counts."""
    name = "approvals >= 2"
    text = "approvals: {min: 2}"
    one = context(approvals=[{"approver": "bob", "decision": "approve", "comment": ""}] * 2)
    assert check(text, one, name) == Check(name, False, "1 approval (bob), 2 required")
    two = context(
        approvals=[
            {"approver": "bob", "decision": "approve", "comment": ""},
            {"approver": "carol", "decision": "approve", "comment": "lgtm"},
        ]
    )
    assert check(text, two, name).passed
    rejected = context(
        approvals=[
            *two.approvals,
            {"approver": "dan", "decision": "reject", "comment": "too risky"},
        ]
    )
    failed = check(text, rejected, name)
    assert failed == Check(
        name, False, "rejected by dan ('too risky'); 2 approvals (bob, carol), 2 required"
    )
    reconsidered = context(
        approvals=[
            {"approver": "dan", "decision": "reject", "comment": "fix the data"},
            *two.approvals,
            {"approver": "dan", "decision": "approve", "comment": "fixed"},
        ]
    )
    assert check(text, reconsidered, name).passed
    nobody = check(text, context(approvals=[]), name)
    assert nobody.detail == "0 approvals, 2 required"


def test_risk_tiers_select_extra_rules() -> None:
    """The model's risk tier adds its rules: more approvals and card sections for high risk;
    a model without a tier fails; a tier without rules of its own passes, unless it is a near
    miss of one of the policy's tiers (a typo)."""
    text = """
approvals: {min: 1}
card_sections: [intended_use]
risk_tiers:
  high: {approvals: {min: 2}, card_sections: [ethical_considerations, caveats]}
  low: {approvals: {min: 1}}
"""
    policy = Policy.from_yaml(text)
    high = check_policy(policy, context(risk_tier="high"))
    assert [(c.name, c.passed) for c in high.checks] == [
        ("risk tier", True),
        ("approvals >= 2", False),
        ("card sections", False),
    ]
    assert high.checks[1].detail == "1 approval (bob), 2 required for risk tier high"
    assert high.checks[2].detail == (
        "missing card sections: ethical_considerations, caveats (written: intended_use)"
    )
    assert check_policy(policy, context(risk_tier="low")).passed
    untiered = check(text, context(risk_tier=None), "risk tier")
    assert not untiered.passed and "has no risk tier" in untiered.detail
    medium = check(text, context(risk_tier="medium"), "risk tier")
    assert medium.passed and "top-level rules apply" in medium.detail
    assert check(text, context(risk_tier="medium"), "approvals >= 1").passed
    hgih = check(text, context(risk_tier="hgih"), "risk tier")
    assert not hgih.passed and "'hgih' (did you mean 'high'?)" in hgih.detail


def test_evaluation_data() -> None:
    """``evaluation_data`` names the dataset (any version, or one version) of the evaluation."""
    name = "evaluation data"
    assert check("evaluation_data: holdout", context(), name).passed
    assert check("evaluation_data: holdout@4", context(), name).passed
    other = check("evaluation_data: holdout@3", context(), name)
    assert not other.passed and "the policy requires holdout@3" in other.detail
    assert not check("evaluation_data: holdout", context(evaluation=None), name).passed


def test_result_to_dict_shape() -> None:
    """to_dict is exactly {"passed", "checks": [{"name", "passed", "detail"}]}, JSON-ready."""
    doc = check_policy(Policy.from_yaml(EXAMPLE), context(approvals=[])).to_dict()
    assert set(doc) == {"passed", "checks"} and doc["passed"] is False
    assert all(set(c) == {"name", "passed", "detail"} for c in doc["checks"])
    assert doc["checks"][-1] == {
        "name": "approvals >= 1",
        "passed": False,
        "detail": "0 approvals, 1 required",
    }
    json.dumps(doc)


# -- properties -------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False, width=32))
names = st.text("abcdefgh_", min_size=1, max_size=8)


@st.composite
def bounds(draw: st.DrawFn) -> dict[str, Any]:
    low, high = sorted([draw(numbers), draw(numbers)])
    keys = draw(st.sampled_from([("min",), ("max",), ("min", "max")]))
    return {k: v for k, v in (("min", low), ("max", high)) if k in keys}


def subset(options: tuple[str, ...] | list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(list(options)), unique=True)


metric_rules = st.builds(
    lambda b, use: b | ({"use": use} if use else {}),
    bounds(),
    st.sampled_from([None, "value", "ci_low", "ci_high"]),
)
fairness_rules = (
    st.dictionaries(st.sampled_from(FAIRNESS_MEASURES), bounds(), max_size=3)
    .flatmap(
        lambda d: st.builds(
            lambda ff: d | ({"four_fifths": ff} if ff is not None else {}),
            st.sampled_from([None, True, False]),
        )
    )
    .filter(bool)
)
card_sections = st.lists(st.sampled_from(list(SECTIONS)), unique=True, max_size=3)
tier_rules = st.fixed_dictionaries(
    {},
    optional={
        "approvals": st.builds(lambda n: {"min": n}, st.integers(0, 4)),
        "card_sections": card_sections,
        "require": subset(REQUIREMENTS),
    },
)
policy_docs = st.fixed_dictionaries(
    {},
    optional={
        "description": st.text(max_size=20),
        "metrics": st.dictionaries(st.sampled_from(METRICS), metric_rules, max_size=4),
        "fairness": st.dictionaries(st.sampled_from(["gender", "age", "x"]), fairness_rules),
        "require": subset(REQUIREMENTS),
        "no_regression": st.fixed_dictionaries(
            {
                "against": st.sampled_from(["production", "champion"]),
                "metric": st.sampled_from(METRICS),
                "tolerance": st.one_of(st.integers(0, 2), st.floats(0, 1, width=32)),
            }
        ),
        "approvals": st.builds(lambda n: {"min": n}, st.integers(0, 4)),
        "card_sections": card_sections,
        "risk_tiers": st.dictionaries(st.sampled_from(["high", "low", "mid"]), tier_rules),
        "evaluation_data": st.sampled_from(["holdout", "holdout@2", "other@1"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(policy_docs)
def test_policies_round_trip(doc: dict[str, Any]) -> None:
    """Any valid policy document reads into a policy whose to_dict (and YAML) reads back equal."""
    policy = Policy.from_dict(doc)
    assert Policy.from_dict(policy.to_dict()) == policy
    assert Policy.from_yaml(policy.to_yaml() or "{}") == policy
    assert Policy.merge(policy, policy) == policy


maybe_number = st.one_of(
    st.none(), numbers, st.just(float("nan")), st.booleans(), st.text(max_size=3)
)
metric_entries = st.fixed_dictionaries(
    {}, optional={k: maybe_number for k in ("value", "ci_low", "ci_high")}
)
evaluations = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "task": st.sampled_from(["binary", "multiclass", "regression", 3]),
            "rows": st.one_of(st.integers(0, 10**6), st.text(max_size=2)),
            "metrics": st.one_of(
                st.dictionaries(st.sampled_from(METRICS), metric_entries), st.lists(st.none())
            ),
            "groups": st.one_of(
                st.dictionaries(
                    st.sampled_from(["gender", "age", "x"]),
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "fairness": st.dictionaries(
                                st.sampled_from([*FAIRNESS_MEASURES, "four_fifths"]), maybe_number
                            ),
                            "metrics": st.dictionaries(
                                names,
                                st.one_of(
                                    st.dictionaries(st.just("selection_rate"), maybe_number),
                                    maybe_number,
                                ),
                            ),
                        },
                    ),
                ),
                st.text(max_size=3),
            ),
            "importance": st.one_of(
                st.lists(st.dictionaries(st.just("feature"), maybe_number)), st.none()
            ),
            "settings": st.dictionaries(st.just("confidence"), maybe_number),
        },
    ),
)
approval_lists = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "approver": st.one_of(st.sampled_from(["bob", "carol", "dan"]), st.none()),
                "decision": st.sampled_from(["approve", "reject", "comment", None]),
            },
            optional={"comment": st.one_of(st.text(max_size=5), st.none())},
        ),
        st.none(),
    ),
    max_size=5,
)
contexts = st.builds(
    PolicyContext,
    model_ref=st.sampled_from(["m@2", "m@1"]),
    evaluation=evaluations,
    baseline=evaluations,
    against_holder=st.sampled_from([None, "m@1", "m@2"]),
    approvals=approval_lists,
    training_contract_passed=st.sampled_from([None, True, False]),
    training_contract=st.sampled_from([None, "t@1 passed c@1"]),
    card_sections=st.sets(names, max_size=3),
    risk_tier=st.sampled_from([None, "high", "low", "mid", "other"]),
    evaluation_dataset=st.sampled_from([None, "holdout@2", "holdout@1", "other@1"]),
)


@settings(max_examples=300, deadline=None)
@given(policy_docs, contexts)
def test_checking_never_raises(doc: dict[str, Any], ctx: PolicyContext) -> None:
    """Whatever the facts (missing, partial or malformed evaluations, odd approvals), every
    check gets an outcome, names are unique, and the result is JSON-ready."""
    result = check_policy(Policy.from_dict(doc), ctx)
    assert result.passed == all(c.passed for c in result.checks)
    names_seen = [c.name for c in result.checks]
    assert len(names_seen) == len(set(names_seen))
    assert all(isinstance(c.passed, bool) and c.detail for c in result.checks)
    json.dumps(result.to_dict(), allow_nan=False)


def test_tier_rules_are_typed() -> None:
    """Risk tier rules read into TierRules, unset keys None."""
    policy = Policy.from_yaml("risk_tiers: {high: {approvals: {min: 2}}}")
    assert policy.risk_tiers == {"high": TierRules(approvals=2)}


def test_a_real_evaluation_is_checked() -> None:
    """An EvaluationReport document from evaluate() is what the checks read."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from shipyard.governance.evaluation import evaluate
    from shipyard.registry.signatures import CheckedPredictor, infer_signature

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=600), "noise": rng.normal(size=600)})
    frame["gender"] = rng.choice(["F", "M"], size=600)
    frame["y"] = (frame["x"] + rng.normal(scale=0.5, size=600) > 0).astype(int)
    model = LogisticRegression().fit(frame[["x", "noise"]], frame["y"])
    predictor = CheckedPredictor(model, infer_signature(model, frame[["x", "noise"]]))
    report = evaluate(predictor, frame, "y", sensitive=["gender"], bootstrap=50)
    policy = Policy.from_yaml(
        "metrics: {roc_auc: {min: 0.8, use: ci_low}, log_loss: {max: 0.6}}\n"
        "fairness: {gender: {demographic_parity_difference: {max: 0.2}, four_fifths: true}}\n"
        "require: [evaluation, fairness, explainability]\n"
    )
    result = check_policy(policy, PolicyContext("m@1", evaluation=report.to_dict()))
    assert result.passed, result.to_dict()
    assert "(most important: x)" in result.checks[2].detail


def test_a_stored_policy_with_an_unknown_card_section_still_loads(tmp_path: Path) -> None:
    """A policy stored before card section names were checked keeps loading: the project's
    gates still run (its unknown section is simply a card section no card has), while setting
    it again is refused with the suggestion."""
    from sqlalchemy import update

    import shipyard
    from shipyard.stores.db.tables import policies

    with shipyard.init_project(tmp_path / "proj") as project:
        stored = project.policies.set("*", {"card_sections": ["intended_use"]})
        with project.db.write() as conn:  # as an earlier version stored it, unchecked
            conn.execute(
                update(policies)
                .where(policies.c.name == "*")
                .where(policies.c.version == stored.version)
                .values(
                    spec={
                        "card_sections": ["limitations"],
                        "risk_tiers": {"high": {"card_sections": ["intended-use"]}},
                    }
                )
            )
        effective = project.policies.effective("credit-risk")
        assert effective.card_sections == ("limitations",)
        assert effective.risk_tiers["high"].card_sections == ("intended-use",)
        with pytest.raises(InvalidInputError, match="unknown card section 'limitations'"):
            project.policies.set("*", {"card_sections": ["limitations"]})
