"""``shipyard demo``: the end-to-end story on synthetic credit-risk data.

It grows with every capability: for now it creates a project, registers two versions of the
applicants table and shows what changed between them.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from shipyard._internal.files import write_text_atomic
from shipyard.cli.data import render_report
from shipyard.data.inference import spec_from_contract
from shipyard.data.splits import SplitSpec
from shipyard.demo import MIN_ROWS
from shipyard.demo.features import feature_store_step
from shipyard.demo.monitoring import watch_for_drift
from shipyard.demo.retraining import retrain_on_drift
from shipyard.demo.traffic import serve_and_drive
from shipyard.demo.training import train_candidates, train_on_legacy_decisions
from shipyard.errors import (
    CheckFailedError,
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
)

if TYPE_CHECKING:
    import polars as pl

    from shipyard.data.datasets import DatasetVersion
    from shipyard.project import Project

__all__ = ["MIN_ROWS", "run_demo", "ui_command"]


DEMO_POLICY = """\
# Gate in front of credit-risk@production.
metrics:
  roc_auc: {min: 0.70}
fairness:
  gender: {demographic_parity_difference: {max: 0.10}}
require: [evaluation, fairness, explainability, contract]
no_regression: {against: production, metric: roc_auc, tolerance: 0.01}
approvals: {min: 1}
card_sections: [intended_use, ethical_considerations]
"""
#: The demo data's personal identifiers, marked ``pii: true`` in its contract.
PERSONAL_IDENTIFIERS = ("applicant_id",)


def run_demo(directory: Path | None = None, *, rows: int = 50_000) -> Path:
    """Run the demo in ``directory`` (default: a new temporary folder); returns the project
    folder."""
    from shipyard._internal.words import number
    from shipyard.data.profiles import diff_profiles
    from shipyard.demo.data import credit_applicants
    from shipyard.project import init_project

    if rows < MIN_ROWS:
        raise InvalidInputError(
            f"the demo needs at least {MIN_ROWS:,} applicants, got {rows:,}: on fewer, its "
            "test set is too small for the policy's fairness and no-regression checks"
        )
    # Piped into a log, long lines stay whole instead of being broken at 80 columns.
    out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    if (root / "shipyard.toml").exists():
        raise ConflictError(f"{root} already holds a project; give --dir a new folder")
    out.rule("[bold]shipyard demo")
    project = init_project(root, name="credit-demo")
    out.print(f"project: {project.root}  (you are [bold]{project.actor}[/bold], admin)")

    raw = root / "raw"
    raw.mkdir(exist_ok=True)
    out.rule("1. register the first batch of loan applicants")
    batch1 = credit_applicants(rows, seed=7)
    csv1 = raw / "applicants_2026q1.csv"
    batch1.write_csv(csv1)
    v1 = project.datasets.add(
        "credit", csv1, message="Q1 applicants", tags={"source": "loan-origination"}
    )
    out.print(f"$ shipyard data add credit {csv1.name} -m 'Q1 applicants'")
    out.print(f"  -> {v1.ref}: {v1.rows:,} rows x {len(v1.columns)} columns, {v1.digest}")
    again = project.datasets.add("credit", csv1)
    out.print(f"  adding the same file again returns {again.ref} (created={again.created})")

    out.rule("2. a second batch arrives: more applicants, a shifted population")
    batch2 = credit_applicants(
        rows // 5, seed=8, start_id=rows + 1, start_date=date(2026, 4, 1), drift=1.0
    )
    combined = batch1.vstack(batch2)
    csv2 = raw / "applicants_2026h1.csv"
    combined.write_csv(csv2)
    v2 = project.datasets.add(
        "credit",
        csv2,
        message="Q1 + April applicants",
        parents=[v1.ref],
        tags={"source": "loan-origination"},
    )
    out.print(f"$ shipyard data add credit {csv2.name} --parent {v1.ref}")
    out.print(f"  -> {v2.ref}: {v2.rows:,} rows, {v2.digest}")

    out.rule(f"3. what changed: shipyard data diff {v1.ref} {v2.ref}")
    d = diff_profiles(v1.schema, v2.schema, v1.profile, v2.profile)
    out.print(f"rows: {d['rows']['from']:,} -> {d['rows']['to']:,} ({d['rows']['change']:+,})")
    shown = [
        c
        for c in d["columns"]
        if c["stat"] in ("mean", "top")
        and c["column"] in ("income", "purpose", "loan_amount", "default", "debt_to_income")
    ]
    for c in shown:
        if c["stat"] == "mean":
            out.print(
                f"  {c['column']:<16} mean {number(c['from'])} -> {number(c['to'])} "
                f"({c.get('relative', 0):+.1%})"
            )
        else:
            out.print(f"  {c['column']:<16} top values {c['from']} -> {c['to']}")

    out.rule("4. a data contract, inferred, reviewed and bound")
    contract_file = _write_contract(project, v1, root)
    cv = project.contracts.add("applicants", contract_file, message="reviewed inference")
    project.contracts.bind("credit", "applicants")
    out.print(
        f"$ shipyard contract infer raw/{csv1.name} -o {contract_file.name}   (then reviewed)"
    )
    out.print(
        f"$ shipyard contract add applicants {contract_file.name} && "
        "shipyard contract bind credit applicants"
    )
    out.print(
        f"  -> {cv.ref}: {len(cv.spec['columns'])} columns, "
        f"{', '.join(PERSONAL_IDENTIFIERS)} marked pii: true; every new version of credit "
        "is now checked"
    )
    report = project.datasets.validate(v2.ref)
    out.print(f"$ shipyard data validate {v2.ref}  -> {report.summary()}")

    out.rule("5. a bad batch is rejected, then quarantined")
    batch3 = _bad_batch(combined, rows)
    csv3 = raw / "applicants_2026h1_fix.csv"
    batch3.write_csv(csv3)
    out.print(f"$ shipyard data add credit {csv3.name}")
    try:
        project.datasets.add("credit", csv3, message="May corrections")
    except CheckFailedError as exc:
        render_report(exc.details["report"], exc.details["contract"], err=False)
        out.print("  -> rejected (exit 3); nothing was stored")
    v3 = project.datasets.add(
        "credit", csv3, message="May corrections", on_invalid="quarantine", parents=[v2.ref]
    )
    q = v3.quarantine or {}
    out.print(f"$ shipyard data add credit {csv3.name} --quarantine")
    out.print(
        f"  -> {v3.ref}: {v3.rows:,} valid rows ({v3.status}); {q['rows']} failing rows "
        f"went to {q['ref']} with the reason for each"
    )

    out.rule("6. reproducible splits")
    spec = SplitSpec(fractions={"train": 0.7, "valid": 0.15, "test": 0.15}, key="applicant_id")
    parts = project.datasets.split(v3.ref, spec)
    out.print(
        f"$ shipyard data split {v3.ref} --fractions train=0.7,valid=0.15,test=0.15 "
        "--key applicant_id"
    )
    for part, pv in parts.items():
        out.print(f"  {part:<6} {pv.ref:<16} {pv.rows:>7,} rows  {pv.digest[:23]}…")
    replayed = project.datasets.replay_split(parts["train"].ref)
    same = all(replayed[k].digest == parts[k].digest for k in parts)
    out.print(f"$ shipyard data split --replay {parts['train'].ref}  -> identical digests: {same}")

    train_report = project.datasets.validate(parts["train"].ref, contract=cv.ref)
    out.print(
        f"$ shipyard data validate {parts['train'].ref} --contract {cv.ref}  -> "
        f"{train_report.summary()}"
    )

    out.rule("7. preprocessing from the contract")
    prep = spec_from_contract(cv.contract, target="default")
    transformer = prep.to_column_transformer()
    train = parts["train"].to_pandas()
    features = transformer.fit_transform(train)
    kept = sorted(c for c, step in prep.to_dict()["columns"].items() if not step.get("drop"))
    out.print(
        f"spec inferred for {len(kept)} feature columns (label 'default' left out); "
        f"fitted on {parts['train'].ref}: {features.shape[1]} model inputs"
    )

    out.rule("8. candidates trained, tracked and registered")
    versions = train_candidates(project, parts["train"], parts["valid"], prep)
    for name, mv in versions.items():
        out.print(
            f"run {mv.run_id[:12] if mv.run_id else ''}  {name:<20} -> {mv.ref}  "
            f"roc_auc {mv.metrics['roc_auc']:.3f}  accuracy {mv.metrics['accuracy']:.3f}"
        )
    run_ids = [mv.run_id for mv in versions.values() if mv.run_id]
    comparison = project.runs.compare(run_ids)
    out.print(f"$ shipyard runs compare {' '.join(r[:8] for r in run_ids)}")
    for row in comparison["metrics"]:
        values = "  ".join(f"{v:.4f}" for v in row["values"])
        out.print(f"  {row['key']:<10} {values}{'   *' if row['differs'] else ''}")
    best = max(versions.values(), key=lambda mv: mv.metrics["roc_auc"])
    project.models.set_alias(best.ref, "champion", comment="best validation ROC AUC")
    out.print(f"$ shipyard models alias {best.ref} champion")
    scored = root / "scored.parquet"
    project.models.predict_file("credit-risk@champion", csv1, scored)
    out.print(f"$ shipyard models predict credit-risk@champion {csv1.name} -o {scored.name}")

    out.rule("9. governance: evaluation, a policy, a second user, promotion")
    legacy = train_on_legacy_decisions(project, parts["train"], parts["valid"], prep)
    out.print(f"a third candidate, trained on last year's manual decisions -> {legacy.ref}")
    policy_file = root / "policies" / "credit-risk.yaml"
    write_text_atomic(policy_file, DEMO_POLICY)
    project.policies.set("credit-risk", policy_file)
    out.print(f"$ shipyard policy set credit-risk {policy_file.relative_to(root)}")
    for mv in [*versions.values(), legacy]:
        e = project.evaluations.evaluate(
            mv.ref, parts["test"].ref, sensitive=["gender", "age_band"], bootstrap=100
        )
        auc = e.report["metrics"]["roc_auc"]
        dpd = e.report["groups"]["gender"]["fairness"]["demographic_parity_difference"]
        out.print(
            f"$ shipyard models evaluate {mv.ref} --data {parts['test'].ref} "
            f"--sensitive gender --sensitive age_band"
        )
        out.print(
            f"  roc_auc {auc['value']:.3f} (95% CI {auc['ci_low']:.3f}-{auc['ci_high']:.3f})"
            f", gender demographic parity difference {dpd:.3f}"
        )
    project.users.add("bob", "approver")
    bob = project.as_actor("bob")
    out.print("$ shipyard users add bob --role approver")
    try:
        project.approvals.approve(best.ref)
    except PermissionDeniedError as exc:
        out.print(f"$ shipyard models approve {best.ref}   (as {project.actor}, who registered it)")
        out.print(f"  -> refused: {exc.message}")
    for mv in (best, legacy):
        bob.approvals.approve(mv.ref, comment="reviewed the evaluation")
        out.print(f"$ SHIPYARD_USER=bob shipyard models approve {mv.ref}")
    out.print(f"$ SHIPYARD_USER=bob shipyard models promote {legacy.ref} --to production")
    try:
        bob.promotions.promote(legacy.ref, to="production")
    except CheckFailedError as exc:
        for check in exc.details["checks"]:
            if not check["passed"]:
                out.print(f"  [red]FAIL[/red] {check['name']}: {check['detail']}")
        out.print("  -> refused (exit 3); production did not move")
    card_text = {
        "intended_use": "Ranks loan applications by risk of default to prioritise manual "
        "review. Not for automated rejection.",
        "ethical_considerations": "Gender and age are monitored for demographic parity; "
        "the policy blocks models whose selection rates differ by more than 10 points.",
        "caveats": "Trained on synthetic applicants; recalibrate before real use.",
    }
    for section, text in card_text.items():
        project.cards.describe(best.ref, section, text)
    doc = bob.promotions.promote(best.ref, to="production", comment="best fair candidate")
    out.print(f"$ SHIPYARD_USER=bob shipyard models promote {best.ref} --to production")
    out.print(
        f"  -> {sum(c['passed'] for c in doc['checks'])} of {len(doc['checks'])} checks "
        f"passed; {best.name}@production is now version {best.version}"
    )
    card_path = root / "model-card.md"
    write_text_atomic(card_path, project.cards.render(best.ref))
    out.print(f"$ shipyard models card {best.ref} -o {card_path.name}")
    lightgbm = versions.get("lightgbm")
    if lightgbm is not None and lightgbm.ref != best.ref:
        # The LightGBM candidate is reviewed like the others and faces the same policy, now
        # against the production version it would replace.
        for section, text in card_text.items():
            project.cards.describe(lightgbm.ref, section, text)
        bob.approvals.approve(lightgbm.ref, comment="reviewed the evaluation")
        out.print(f"$ SHIPYARD_USER=bob shipyard models approve {lightgbm.ref}   (LightGBM)")
        gate = project.promotions.gate(lightgbm.ref, for_alias="production")
        failed = [c for c in gate["checks"] if not c["passed"]]
        out.print(f"$ shipyard check {lightgbm.ref}")
        out.print(f"  {len(gate['checks']) - len(failed)} of {len(gate['checks'])} checks passed")
        for check in failed:
            out.print(f"  [red]FAIL[/red] {check['name']}: {check['detail']}")
        if failed:
            out.print(f"  -> refused: it stays a candidate; production stays {best.ref}")
        else:
            for check in gate["checks"]:
                if check["name"].startswith("no_regression"):
                    out.print(f"  {check['name']}: {check['detail']}")
            out.print(
                f"  -> it may be promoted; production stays {best.ref}, the best on validation"
            )

    out.rule("10. a canary: the challenger takes 10% of the traffic, once it is approved")
    challenger = next(mv for mv in versions.values() if mv.ref != best.ref)
    project.models.set_alias(challenger.ref, "challenger", comment="next candidate")
    out.print(f"$ shipyard models alias {challenger.ref} challenger      (nobody approved it)")
    out.print(
        f"$ SHIPYARD_USER=bob shipyard deployments set {best.name} "
        "--route production=90,challenger=10"
    )
    try:
        bob.deployments.set(best.name, {"production": 90, "challenger": 10})
    except CheckFailedError as exc:
        for item in exc.details["aliases"]:
            for check in item["checks"]:
                if not check["passed"]:
                    out.print(
                        f"  [red]FAIL[/red] {item['alias']} ({item['model']}) "
                        f"{check['name']}: {check['detail']}"
                    )
        out.print("  -> refused (exit 3): no traffic reaches a version nobody approved")
    for section, text in card_text.items():
        project.cards.describe(challenger.ref, section, text)
    bob.approvals.approve(challenger.ref, comment="reviewed the evaluation")
    out.print(f"$ SHIPYARD_USER=bob shipyard models approve {challenger.ref}")
    doc = bob.promotions.promote(challenger.ref, to="challenger", comment="canary candidate")
    out.print(f"$ SHIPYARD_USER=bob shipyard models promote {challenger.ref} --to challenger")
    out.print(
        f"  -> {sum(c['passed'] for c in doc['checks'])} of {len(doc['checks'])} checks "
        "passed, for the challenger alias"
    )
    deployment = bob.deployments.set(
        best.name, {"production": 90, "challenger": 10}, comment="canary"
    )
    out.print(
        f"$ SHIPYARD_USER=bob shipyard deployments set {best.name} "
        "--route production=90,challenger=10"
    )
    out.print(
        f"  -> deployment {deployment.name} version {deployment.version}: production "
        f"{best.ref} 90%, challenger {challenger.ref} 10%; both aliases now move only "
        "through promote and rollback"
    )

    out.rule("11. serving the deployment, with traffic, feedback and business KPIs")
    serve_and_drive(project, "credit-risk", parts["test"], out)

    out.rule("12. monitoring: a new channel shifts incomes, the drift monitor fires")
    drift = watch_for_drift(project.root, "credit-risk", out)

    out.rule("13. retraining on the new channel's outcomes, started by the drift alert")
    retrain_on_drift(project.root, out, new_channel=drift.batch, later=max(rows // 10, 600))

    out.rule("14. a feature store: payment history, point in time, served by applicant id")
    feature_store_step(project, root, combined, parts, out)

    out.rule("15. integrity")
    store = project.verify()
    chain = project.audit.verify()
    out.print(f"artifact store: {store.checked} blobs verified, ok={store.ok}")
    out.print(
        f"audit log: {chain.events} events, chain ok={chain.chain_ok}, governance tables match "
        f"the log: {not chain.state}"
    )
    out.rule()
    out.print("Explore it yourself:")
    for cmd in (
        "data list",
        f"data show {v3.ref}",
        f"data diff {v1.ref} {v2.ref}",
        f"data lineage {v2.ref}",
        "data show credit.quarantine",
        "contract show applicants",
        "features list",
        "features glossary",
        "data lineage credit.features.train@1",
        "runs list --order-by 'metrics.roc_auc DESC'",
        "models versions credit-risk",
        "models alias-history credit-risk",
        "models show credit-risk@production",
        f"check {legacy.ref}",
        "deployments show credit-risk",
        "deployments history credit-risk",
        "deployments metrics credit-risk",
        "monitor history credit-drift",
        "alerts list --open",
        "pipeline runs",
        "scheduler --once",
        "audit verify",
        "audit log",
    ):
        out.print(f"  shipyard --project {project.root} {cmd}")
    out.print(
        "See it all in the web UI (models, runs, datasets, deployments, audit; Ctrl-C stops it):"
    )
    out.print(f"  {ui_command(project.root)}")
    project.close()
    return root


def ui_command(root: Path, port: int = 8000) -> str:
    """The command that opens the web UI of the demo project at ``root``.

    >>> ui_command(Path("/tmp/demo"))
    'shipyard --project /tmp/demo ui --port 8000'
    """
    return f"shipyard --project {root} ui --port {port}"


def _write_contract(project: Project, v1: DatasetVersion, root: Path) -> Path:
    """Infer a contract from the first batch, then review it as a person would: identifiers
    and dates grow with every batch, incomes have no natural ceiling, and an applicant's id
    is personal data (``pii: true``: the prediction log keeps only its keyed hash, and
    ``data get --drop-pii`` leaves it out)."""
    from shipyard._internal.files import write_text_atomic
    from shipyard.data.contracts import Contract
    from shipyard.data.inference import infer_contract

    doc = infer_contract(
        v1.to_polars(), description="Loan applicants from the origination system"
    ).to_dict()
    for column in ("applicant_id", "application_date", "income", "loan_amount"):
        doc["columns"][column].pop("max", None)
    for column in PERSONAL_IDENTIFIERS:
        doc["columns"][column]["pii"] = True
    doc["owner"] = "credit-risk"
    path = root / "contracts" / "applicants.yaml"
    write_text_atomic(path, Contract.from_dict(doc).to_yaml())
    return path


def _bad_batch(combined: pl.DataFrame, rows: int) -> pl.DataFrame:
    """The latest data with a few broken records: impossible ages and a misspelt category."""
    import polars as pl

    broken = pl.col("applicant_id") % 997 == 0
    return combined.with_columns(
        pl.when(broken).then(pl.lit(142)).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.col("applicant_id") % 1499 == 0)
        .then(pl.lit("femal"))
        .otherwise(pl.col("gender"))
        .alias("gender"),
    )
