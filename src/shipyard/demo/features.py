"""The demo's feature store step: the applicants' payment history as an ``applicant`` entity
and a ``payments`` feature view (a YAML file the demo writes into the project), point-in-time
training data, a model trained through those features, materialized values and a request
served by applicant id."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard._internal.files import write_text_atomic

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl
    from rich.console import Console

    from shipyard.data.datasets import DatasetVersion
    from shipyard.project import Project
    from shipyard.registry.models import ModelVersion

__all__ = [
    "FEATURES",
    "FEATURES_MODEL",
    "FEATURES_YAML",
    "REQUEST_COLUMNS",
    "feature_store_step",
]

FEATURES_MODEL = "credit-risk-features"
FEATURES = ["late_payments_90d", "avg_payment_ratio", "utilization"]
# What the application form gives at request time; the payment history comes from the store.
REQUEST_COLUMNS = ["income", "loan_amount", "term_months", "debt_to_income", "employment"]
LABEL = "default"

FEATURES_YAML = """\
# The applicants' payment history, as the risk team defines it. Apply with
#   shipyard features apply features/credit.yaml
entities:
  - name: applicant
    join_keys: [applicant_id]
    description: A person who applied for a loan.
    owner: risk-team
feature_views:
  - name: payments
    source: payments               # the monthly statements; payments@1 would pin a version
    entity: applicant
    timestamp: statement_date      # a statement's values are known from this date on
    owner: risk-team
    tags: {source: core-banking}
    # no ttl: a statement holds until the next one
    features:
      - name: late_payments_90d
        type: int
        description: Payments more than 30 days late in the 90 days before the statement.
      - name: avg_payment_ratio
        type: float
        description: Share of the amounts due in those 90 days that was paid, 0 to 1.
      - name: utilization
        type: float
        description: Card and overdraft balance over the credit limit at the statement.
        owner: finance
"""

FEATURES_POLICY = """\
# Gate in front of credit-risk-features@production.
approvals: {min: 1}
"""


def feature_store_step(
    project: Project,
    root: Path,
    applicants: pl.DataFrame,
    parts: dict[str, DatasetVersion],
    out: Console,
) -> ModelVersion:
    """Register the statements of ``applicants``, apply the definitions, build point-in-time
    training data for the ``parts`` (train, valid, test splits), train and promote
    ``credit-risk-features``, materialize, serve one request by applicant id and score the
    test applications in batch. Returns the promoted version."""
    import polars as pl

    from shipyard.demo.data import payment_history
    from shipyard.demo.traffic import serving

    raw = root / "raw"
    payments_csv = raw / "payments_2026h1.csv"
    statements = payment_history(applicants)
    statements.write_csv(payments_csv)
    pv = project.datasets.add(
        "payments",
        payments_csv,
        message="monthly statements from core banking",
        tags={"source": "core-banking"},
    )
    out.print(f"$ shipyard data add payments raw/{payments_csv.name} -m 'monthly statements'")
    out.print(f"  -> {pv.ref}: {pv.rows:,} statements")
    definitions = root / "features" / "credit.yaml"
    write_text_atomic(definitions, FEATURES_YAML)
    changes = project.features.apply(definitions)
    out.print(f"$ shipyard features apply {definitions.relative_to(root)}")
    for c in changes:
        kind = "view" if c.kind == "feature_view" else "entity"
        out.print(f"  {c.action} {kind} {c.name}@{c.version}")

    wanted = ",".join(f"payments:{f}" for f in FEATURES)
    training: dict[str, DatasetVersion] = {}
    for part in ("train", "valid"):
        got = project.features.historical(parts[part].ref, wanted, output=f"credit.features.{part}")
        assert got.dataset is not None
        training[part] = got.dataset
        out.print(
            f"$ shipyard features historical --entities {parts[part].ref} "
            f"--features {wanted} -o credit.features.{part}"
        )
        none = got.frame.get_column(FEATURES[0]).null_count()
        out.print(
            f"  -> {got.dataset.ref}: {got.rows:,} applications, each with the latest "
            f"statement at or before its application_date ({none:,} new customers without "
            "one: null)"
        )
    later = (
        parts["train"]
        .to_polars()
        .join(statements, on="applicant_id")
        .filter(pl.col("statement_date") > pl.col("application_date"))
        .get_column("applicant_id")
        .n_unique()
    )
    out.print(
        f"  {later:,} training applicants also have a statement dated after their "
        "application; it is never joined to it (it would tell the model how the loan went)"
    )

    mv, baseline = _train(project, training["train"], training["valid"])
    out.print(
        f"run {mv.run_id[:12] if mv.run_id else ''}  logistic-regression on "
        f"{', '.join(REQUEST_COLUMNS)} + payments -> {mv.ref}  roc_auc "
        f"{mv.metrics['roc_auc']:.3f} (without the payment history: {baseline:.3f})"
    )
    policy = root / "policies" / f"{FEATURES_MODEL}.yaml"
    write_text_atomic(policy, FEATURES_POLICY)
    project.policies.set(FEATURES_MODEL, policy)
    bob = project.as_actor("bob")
    bob.approvals.approve(mv.ref, comment="reviewed the payment features")
    bob.promotions.promote(mv.ref, to="production", comment="served by applicant id")
    out.print(f"$ shipyard policy set {FEATURES_MODEL} {policy.relative_to(root)}")
    out.print(
        f"$ SHIPYARD_USER=bob shipyard models approve {mv.ref} && "
        f"SHIPYARD_USER=bob shipyard models promote {mv.ref} --to production"
    )

    (done,) = project.features.materialize()
    out.print("$ shipyard features materialize")
    out.print(f"  -> {done.view}: {done.rows:,} applicants' latest statements in {done.store}")

    test = parts["test"].to_polars()
    with_history = project.datasets.get(pv.ref).to_polars().get_column("applicant_id")
    row = test.filter(pl.col("applicant_id").is_in(with_history.implode())).row(0, named=True)
    applicant = int(row["applicant_id"])
    record = {"applicant_id": applicant} | _form(row)
    online = project.features.online([{"applicant_id": applicant}], f"payments:{FEATURES[0]}")
    out.print(
        f"$ shipyard features online --entity applicant_id={applicant} "
        f"--features payments:{FEATURES[0]}"
    )
    got_row = online.rows[0]
    out.print(
        f"  {FEATURES[0]} = {got_row.values[FEATURES[0]]} ({got_row.status[FEATURES[0]]}, "
        f"statement of {_day(got_row.event_time[FEATURES[0]])})"
    )
    with serving(project, FEATURES_MODEL) as (client, port):
        out.print(f"$ shipyard serve {FEATURES_MODEL} --port {port}   (in the background)")
        body = json.dumps({"records": [record]})
        out.print(
            f"$ curl -s localhost:{port}/predict -H 'content-type: application/json' -d '{body}'"
        )
        r = client.post("/predict", json={"records": [record]})
        r.raise_for_status()
        answer = r.json()
        proba = {k: round(v, 3) for k, v in answer["probabilities"][0].items()}
        out.print(
            f"  -> prediction {answer['predictions'][0]}, probabilities {json.dumps(proba)} "
            f"({FEATURES_MODEL}@{answer['version']})"
        )
        out.print(f"  the server looked up {', '.join(FEATURES)} of applicant {applicant}")
        newcomer = test.filter(~pl.col("applicant_id").is_in(with_history.implode())).row(
            0, named=True
        )
        r = client.post(
            "/predict",
            json={"records": [{"applicant_id": newcomer["applicant_id"]} | _form(newcomer)]},
        )
        r.raise_for_status()
        out.print(
            f"  applicant {newcomer['applicant_id']}, a new customer without statements: "
            f"prediction {r.json()['predictions'][0]}, the missing history imputed as in "
            "training (a model without an imputer would refuse it: HTTP 422 missing_feature)"
        )

    applications = raw / "applications_test.csv"
    test.select("applicant_id", "application_date", *REQUEST_COLUMNS).write_csv(applications)
    scored = root / "scored-features.parquet"
    doc = project.models.predict_file(f"{FEATURES_MODEL}@production", applications, scored)
    out.print(
        f"$ shipyard models predict {FEATURES_MODEL}@production raw/{applications.name} "
        f"-o {scored.name}"
    )
    how = doc["features"]
    out.print(
        f"  -> {doc['scored']:,} applications scored with the payment history as of each "
        f"row's {how['timestamp']} (point in time: the file has a date column; --online "
        "reads the latest values instead)"
    )
    return mv


def _train(
    project: Project, train: DatasetVersion, valid: DatasetVersion
) -> tuple[ModelVersion, float]:
    """Fit a logistic regression on the request-time columns plus the payment history (a new
    customer's missing history imputed with the median), log the run with ``train`` as its training
    data and register it; also the same model without the history, for comparison."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train_df = train.to_pandas()
    valid_df = valid.to_pandas()

    def fit(columns: list[str]) -> tuple[Any, float]:
        numbers = [c for c in columns if c != "employment"]
        pipeline = Pipeline(
            [
                (
                    "prep",
                    ColumnTransformer(
                        [
                            (
                                "employment",
                                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                ["employment"],
                            ),
                            (
                                "numbers",
                                Pipeline(
                                    [
                                        ("impute", SimpleImputer(strategy="median")),
                                        ("scale", StandardScaler()),
                                    ]
                                ),
                                numbers,
                            ),
                        ]
                    ),
                ),
                ("model", LogisticRegression(max_iter=1000)),
            ]
        )
        pipeline.fit(train_df[columns], train_df[LABEL])
        auc = float(roc_auc_score(valid_df[LABEL], pipeline.predict_proba(valid_df[columns])[:, 1]))
        return pipeline, auc

    columns = [*REQUEST_COLUMNS, *FEATURES]
    _, baseline = fit(REQUEST_COLUMNS)
    with project.start_run(FEATURES_MODEL, name="with-payments", tags={"team": "risk"}) as run:
        run.log_input(train.ref, context="train")
        run.log_input(valid.ref, context="valid")
        pipeline, auc = fit(columns)
        run.log_params({"model": "logistic-regression", "features": ",".join(FEATURES)})
        run.log_metrics({"roc_auc": auc, "roc_auc_without_payments": baseline})
        mv = run.log_model(
            pipeline,
            FEATURES_MODEL,
            input_example=train_df[columns].head(20),
            description="logistic regression on the application and the payment history",
        )
    return mv, baseline


def _form(row: dict[str, Any]) -> dict[str, Any]:
    """The request-time columns of an application row."""
    return {c: row[c] for c in REQUEST_COLUMNS}


def _day(value: Any) -> str:
    return value.date().isoformat() if value is not None else "-"
