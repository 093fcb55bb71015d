"""The demo's retraining step: credit-risk trained by a pipeline of cached steps (a second
run is all cache hits), the new channel's applicants added to the training data once their
outcomes are known (checked against the contract), a schedule whose drift trigger answers the
alert the monitoring step opened by retraining on that new version, the candidate that run
registers gated against production, and the pull-request report written (with the drift of
the candidate's training data against the champion's)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from shipyard.data.datasets import DatasetVersion
    from shipyard.pipelines.records import PipelineRun
    from shipyard.project import Project

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


def retrain_on_drift(
    root: Path, out: Console, *, new_channel: pl.DataFrame, later: int
) -> str | None:
    """Run the step on the demo project at ``root`` (after the drift alert opened);
    ``new_channel`` is the batch of the new channel that opened it, labelled, and ``later``
    how many more of that channel's applicants arrive in the following weeks. Returns the
    candidate the scheduler's run registered."""
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
        # Without --always-record the command would answer "up to date" and record nothing.
        out.print("$ shipyard pipeline run retrain.py:retrain --always-record   (nothing changed)")
        _print_run(again, out)

        _add_labelled(project, root, new_channel, later, out)

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
        d = report.drift
        out.print(
            f"  its training data {d.current} against the champion's {d.reference}: "
            f"{d.verdict} (weighted share {d.share:.2f} "
            f"{'>=' if d.drifted else '<'} {d.share_threshold:g}"
            + (f"; columns that moved: {', '.join(d.drifted_columns)}" if d.drifted_columns else "")
            + ")"
            if d is not None
            else f"  its training data: {report.drift_note}"
        )
        return candidate
    finally:
        project.close()


def _add_labelled(
    project: Project, root: Path, batch: pl.DataFrame, later: int, out: Console
) -> DatasetVersion:
    """Four weeks on, the outcomes of the new channel's applicants are known: the batch that
    opened the alert and ``later`` more of the channel's applicants join the training data as
    its next version, checked against the contract that governs it (rows that break it are
    quarantined, not trained on)."""
    import io

    import polars as pl

    from shipyard._internal.files import write_bytes_atomic
    from shipyard.demo.data import credit_applicants

    train = project.datasets.get("credit.train")
    contract = project.datasets.governing_contracts(train.ref)[0].contract
    first = batch.select(pl.col("application_date").min()).item()
    following = credit_applicants(
        later,
        seed=12,
        start_id=int(batch.select(pl.col("applicant_id").max()).item()) + 1,
        start_date=first + timedelta(days=1),
        days=27,
        income_shift=-0.5,
    )
    labelled = pl.concat([batch, following])
    grown = pl.concat([train.to_polars(), labelled], how="vertical_relaxed")
    buffer = io.BytesIO()
    grown.write_parquet(buffer)
    path = write_bytes_atomic(
        root / "raw" / "applicants_train_new_channel.parquet", buffer.getvalue()
    )
    new = project.datasets.add(
        "credit.train",
        path,
        message="training data + the new channel's labelled applicants",
        parents=[train.ref],
        contract=contract,
        on_invalid="quarantine",
    )
    rate = float(labelled.select(pl.col("default").mean()).item())
    out.print(
        f"four weeks on, the outcomes of the new channel's applicants are known: the {len(batch)} "
        f"that opened the alert and {later:,} since ({rate:.0%} defaulted)"
    )
    out.print(
        f"$ shipyard data add credit.train {path.name} --parent {train.ref} "
        f"--contract {contract} --quarantine"
    )
    q = new.quarantine or {}
    out.print(
        f"  -> {new.ref}: {new.rows:,} rows ({new.status})"
        + (
            f"; {q['rows']} rows outside the contract went to {q['ref']}"
            if q.get("rows")
            else ", all within the contract"
        )
    )
    return new


def _print_run(run: PipelineRun, out: Console) -> None:
    took = "" if run.duration_seconds is None else f" in {run.duration_seconds:.2f}s"
    out.print(
        f"  -> pipeline run {run.id[:12]}: {run.status}{took}, "
        f"{run.cache_hits} of {len(run.steps)} steps from the cache"
    )
    for s in run.steps:
        made = (s.outputs or {}).get("ref", "")
        out.print(f"     {s.name:<6} {s.cache:<5} {made}")
