"""The demo's retraining step: credit-risk trained by a pipeline of cached steps (a second
run is all cache hits), a schedule whose drift trigger answers the alert the monitoring step
opened, the candidate that run registers gated against production, and the pull-request
report written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.pipelines.records import PipelineRun

__all__ = ["PIPELINE", "SCHEDULE", "retrain_on_drift"]

PIPELINE = '''\
"""credit-risk, trained and scored as cached steps (`shipyard pipeline run retrain.py`)."""

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard import pipeline, step
from shipyard.pipelines import current, dataset

LABEL = "default"
NUMERIC = ["age", "years_employed", "income", "loan_amount", "term_months", "credit_score",
           "open_accounts", "debt_to_income", "prior_defaults"]
CATEGORICAL = ["region", "employment", "housing", "purpose"]


@step(model="credit-risk")
def fit(train, C: float):
    table = train.to_pandas()
    prep = ColumnTransformer([
        ("numeric", Pipeline([("fill", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), NUMERIC),
        ("categorical", Pipeline([("fill", SimpleImputer(strategy="most_frequent")),
                                  ("encode", OneHotEncoder(handle_unknown="ignore"))]),
         CATEGORICAL),
    ])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(C=C, max_iter=1000))])
    return model.fit(table.drop(columns=[LABEL]), table[LABEL])


@step
def score(model, valid) -> dict:
    from sklearn.metrics import roc_auc_score

    table = valid.to_pandas()
    fitted = current().project.models.load(model.ref)
    proba = fitted.predict_proba(table.drop(columns=[LABEL]))[:, 1]
    auc = float(roc_auc_score(table[LABEL], proba))
    current().run.log_metric("roc_auc", auc)
    return {"model": model.ref, "roc_auc": auc}


@pipeline
def retrain(train=dataset("credit.train"), valid=dataset("credit.valid"), C: float = 1.0):
    score(fit(train, C), valid)
'''

SCHEDULE = """\
# shipyard scheduler: what starts retrain.py
triggers:
  drift:
    pipeline: retrain.py:retrain
    alert: credit-drift          # the drift monitor opens an alert
    params: {C: 0.3}             # retrain with stronger regularisation
  new-data:
    pipeline: retrain.py:retrain
    dataset: credit.train        # a new version of the training data
"""


def retrain_on_drift(root: Path, out: Console) -> str | None:
    """Run the step on the demo project at ``root`` (after the drift alert opened); returns
    the candidate the scheduler's run registered."""
    from shipyard._internal.files import write_text_atomic
    from shipyard.governance.pr_report import render_markdown
    from shipyard.project import open_project

    write_text_atomic(root / "retrain.py", PIPELINE)
    write_text_atomic(root / "schedule.yaml", SCHEDULE)
    project = open_project(root)
    try:
        first = project.pipelines.run("retrain.py:retrain")
        out.print("$ shipyard pipeline run retrain.py:retrain")
        _print_run(first, out)
        again = project.pipelines.run("retrain.py:retrain")
        out.print("$ shipyard pipeline run retrain.py:retrain      (nothing changed)")
        _print_run(again, out)

        out.print("$ shipyard scheduler --once      (triggers in schedule.yaml)")
        candidate: str | None = None
        for f in project.scheduler.run_once(project.scheduler.load()):
            out.print(f"  {f.trigger} ({f.kind}): {f.reason}")
            if f.fired:
                out.print(
                    f"    -> pipeline run {(f.pipeline_run or '')[:12]} {f.status}, "
                    f"registered {', '.join(f.models) or 'nothing new'}"
                )
                if f.models:
                    candidate = f.models[0]
        if candidate is None:
            return None
        test = project.datasets.get("credit.test")
        project.evaluations.evaluate(
            candidate, test.ref, label="default", sensitive=["gender", "age_band"], bootstrap=20
        )
        out.print(
            f"$ shipyard models evaluate {candidate} --data {test.ref} --label default "
            "--sensitive gender --sensitive age_band"
        )
        gate = project.promotions.gate(candidate, for_alias="production")
        failed = [c for c in gate["checks"] if not c["passed"]]
        out.print(f"$ shipyard check {candidate}")
        out.print(
            f"  {len(gate['checks']) - len(failed)} of {len(gate['checks'])} checks passed"
            + ("" if failed else "; it may be promoted")
        )
        for c in failed:
            out.print(f"  [red]FAIL[/red] {c['name']}: {c['detail']}")
        if failed:
            out.print("  -> production did not move: the candidate waits for its review")
        report = project.pr_reports.build(candidate, against="production")
        path = root / "pr-report.md"
        write_text_atomic(path, render_markdown(report))
        out.print(
            f"$ shipyard report pr --candidate {candidate} --against production -o {path.name}"
        )
        out.print(f"  -> {path} (gate {'passed' if report.passed else 'FAILED'})")
        return candidate
    finally:
        project.close()


def _print_run(run: PipelineRun, out: Console) -> None:
    took = "" if run.duration_seconds is None else f" in {run.duration_seconds:.2f}s"
    out.print(
        f"  -> pipeline run {run.id[:12]}: {run.status}{took}, "
        f"{run.cache_hits} of {len(run.steps)} steps from the cache"
    )
    for s in run.steps:
        made = (s.outputs or {}).get("ref", "")
        out.print(f"     {s.name:<6} {s.cache:<5} {made}")
