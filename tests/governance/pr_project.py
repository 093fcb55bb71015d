"""A small credit project for the pull-request report and the CI templates: a champion in
production and a regressing candidate trained on newer, drifted data.

Built once per process (training and evaluating take seconds); each user gets a copy.

- ``credit@1`` (400 applicants, 7 of the demo's columns, contract ``applicants@1`` bound),
  split into ``credit.train@1`` / ``credit.test@1``; ``credit@2`` is a later batch with
  drifted incomes and purposes, split into ``credit.train@2`` / ``credit.test@2``;
- ``credit-risk@1``: every column, trained on ``credit.train@1``, approved by bob and promoted
  to production;
- ``credit-risk@2``: without the credit-bureau columns, trained on ``credit.train@2``: it ranks
  applicants worse, so the no-regression check fails;
- both evaluated on ``credit.test@1`` with ``gender`` as the sensitive column; the policy
  requires an evaluation and the training contract, no regression of roc_auc against
  production, and one approval.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import shipyard
from shipyard.data.inference import infer_contract, spec_from_contract
from shipyard.data.splits import SplitSpec
from shipyard.demo.data import credit_applicants

MODEL = "credit-risk"
CHAMPION, CANDIDATE = f"{MODEL}@1", f"{MODEL}@2"
HOLDOUT = "credit.test@1"
LABEL = "default"
BUREAU_COLUMNS = ("credit_score", "debt_to_income", "prior_defaults")
# A few columns keep training, evaluation (permutation importance) and drift cheap.
COLUMNS = ["gender", "age", "income", "purpose", *BUREAU_COLUMNS, LABEL]
POLICY = {
    "require": ["evaluation", "contract"],
    "no_regression": {"against": "production", "metric": "roc_auc", "tolerance": 0.01},
    "approvals": {"min": 1},
}

_TEMPLATE: dict[str, Path] = {}


def _build(root: Path) -> None:
    with shipyard.init_project(root, actor="alice") as project:
        project.users.add("bob", "approver")
        first = credit_applicants(400, seed=7).select(COLUMNS)
        batch = credit_applicants(400, seed=8, start_id=401, drift=1.0).select(COLUMNS)
        project.contracts.add("applicants", infer_contract(first.vstack(batch)))
        project.contracts.bind("credit", "applicants", new=True)
        v1 = project.datasets.add("credit", first)
        split = SplitSpec({"train": 0.7, "test": 0.3}, seed=1)
        parts1 = project.datasets.split(v1.ref, split)
        v2 = project.datasets.add("credit", batch, parents=[v1.ref])
        parts2 = project.datasets.split(v2.ref, split)
        spec = spec_from_contract(infer_contract(first), target=LABEL)
        lean = spec.to_dict()
        for column in BUREAU_COLUMNS:
            lean["columns"][column] = {"drop": True}
        for train, doc in ((parts1["train"], spec.to_dict()), (parts2["train"], lean)):
            frame = train.to_pandas()
            x, y = frame.drop(columns=[LABEL]), frame[LABEL]
            prep = type(spec).from_dict(doc).to_column_transformer()
            model = Pipeline([("prep", prep), ("model", LogisticRegression())]).fit(x, y)
            with project.start_run(MODEL) as run:
                run.log_input(train.ref, context="train")
                run.log_model(model, MODEL, input_example=x.head(5))
        for ref in (CHAMPION, CANDIDATE):
            project.evaluations.evaluate(ref, HOLDOUT, sensitive=["gender"], bootstrap=20)
        project.policies.set(MODEL, POLICY)
        bob = project.as_actor("bob")
        bob.approvals.approve(CHAMPION)
        bob.approvals.approve(CANDIDATE)
        bob.promotions.promote(CHAMPION, to="production")


def credit_pr_project(dest: Path, tmp_root: Path) -> Path:
    """A copy at ``dest`` of the project (built under ``tmp_root`` on first use)."""
    if "root" not in _TEMPLATE:
        root = tmp_root / "credit-pr-template"
        _build(root)
        _TEMPLATE["root"] = root
    shutil.copytree(_TEMPLATE["root"], dest)
    return dest
