"""The `shipyard runs`, `experiments` and `models` commands as a user runs them: JSON
documents, tables, exit codes and messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

import shipyard
from shipyard.registry.flavors import save_model
from tests.cli.conftest import Cli
from tests.registry.test_models import NAME, HandRolled, applicants, fit_pipeline


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    """The credit pipeline of the registry tests, fitted once for the module."""
    return fit_pipeline()


@dataclass(frozen=True)
class Runs:
    """Three runs of `credit` in a CLI project, by name."""

    ids: dict[str, str]


@pytest.fixture
def runs(cli_project: Path) -> Runs:
    """gbm-a (auc 0.91), lr-b (auc 0.62) and gbm-c (auc 0.40, failed), logged by alice."""
    ids = {}
    with shipyard.open_project(cli_project) as project:
        for name, model, auc, status in [
            ("gbm-a", "gbm", 0.91, "FINISHED"),
            ("lr-b", "lr", 0.62, "FINISHED"),
            ("gbm-c", "gbm", 0.40, "FAILED"),
        ]:
            run = project.start_run(experiment="credit", name=name, tags={"team": "risk"})
            run.log_params({"model": model, "seed": 7})
            run.log_metric("auc", auc)
            run.end(status)
            ids[name] = run.id
    return Runs(ids)


@dataclass(frozen=True)
class Registered:
    """credit-risk versions 1 and 2 logged by one run, and the frame they were fitted on."""

    run_id: str
    frame: pd.DataFrame
    pipeline: Pipeline


@pytest.fixture
def registered(cli_project: Path, pipeline: Pipeline) -> Iterator[Registered]:
    """credit-risk@1 and @2 (the same pipeline, logged twice) from one run."""
    frame, _ = applicants()
    with (
        shipyard.open_project(cli_project) as project,
        project.start_run(experiment="credit", name="lr") as run,
    ):
        run.log_metric("auc", 0.83)
        run.log_model(pipeline, NAME, input_example=frame.head())
        run.log_model(pipeline, NAME, input_example=frame.head())
    yield Registered(run.id, frame, pipeline)


# -- runs ---------------------------------------------------------------------------------------


def test_runs_list_json_filters_orders_and_limits(cli: Cli, runs: Runs) -> None:
    """`runs list --json` prints every run as one document; --filter, --order-by and --limit
    select and sort them; the table names the runs."""
    res = cli("runs", "list", "--json")
    assert res.code == 0, res.stderr
    listed = res.json()
    assert sorted(r["name"] for r in listed) == ["gbm-a", "gbm-c", "lr-b"]
    assert {"id", "status", "params", "metrics", "tags", "start_time"} <= set(listed[0])
    assert "environment" not in listed[0]

    res = cli(
        "runs", "list", "--filter", "metrics.auc > 0.5", "--order-by", "metrics.auc DESC",
        "--limit", "1", "--json",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert [r["name"] for r in res.json()] == ["gbm-a"]

    res = cli("runs", "list", "--filter", "params.model = 'gbm'", "--order-by", "metrics.auc")
    assert res.code == 0, res.stderr
    assert res.stdout.index("gbm-c") < res.stdout.index("gbm-a") and "lr-b" not in res.stdout
    assert cli("runs", "list", "--filter", "metrics.auc > 0.99").stdout.strip() == "no runs match"


def test_a_malformed_filter_exits_2_naming_the_position(cli: Cli, runs: Runs) -> None:
    """A filter that does not parse is a usage error: exit 2 with the position on stderr and
    no traceback; under --json, stdout is one error document."""
    res = cli("runs", "list", "--filter", "metrics.auc >> 0.5")
    assert res.code == 2
    assert "position 13" in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""

    res = cli("runs", "list", "--filter", "metrics.auc >> 0.5", "--json")
    assert res.code == 2
    doc = res.json()
    assert doc["error"] == "invalid_input" and doc["details"]["position"] == 13


def test_runs_show_and_compare(cli: Cli, runs: Runs) -> None:
    """`runs show PREFIX --json` prints the whole run; `runs compare A B --json` marks the keys
    that differ, and the table marks them with *."""
    a, b = runs.ids["gbm-a"], runs.ids["lr-b"]
    res = cli("runs", "show", a[:8], "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["id"] == a and doc["name"] == "gbm-a" and doc["status"] == "FINISHED"
    assert doc["params"] == {"model": "gbm", "seed": "7"} and doc["metrics"] == {"auc": 0.91}
    assert "python_version" in doc["environment"]
    assert "gbm-a" in cli("runs", "show", a[:8]).stdout

    res = cli("runs", "compare", a, b[:10], "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert [r["id"] for r in doc["runs"]] == [a, b]
    differs = {row["key"]: row["differs"] for row in doc["params"] + doc["metrics"]}
    assert differs == {"model": True, "seed": False, "auc": True}
    table = cli("runs", "compare", a, b).stdout
    assert "param model*" in table and "param seed*" not in table

    res = cli("runs", "show", "0" * 32)
    assert res.code == 1 and "no run" in res.stderr


def test_runs_show_prints_times_as_the_other_commands_do(cli: Cli, runs: Runs) -> None:
    """`runs show` prints the start and end of a run in UTC, as `2025-01-31 12:00:00 UTC`,
    the format of the other commands."""
    a = runs.ids["gbm-a"]
    doc = cli("runs", "show", a, "--json").json()
    start, end = (
        datetime.fromisoformat(doc[k]).strftime("%Y-%m-%d %H:%M:%S UTC")
        for k in ("start_time", "end_time")
    )
    assert f"by alice, {start} -> {end}" in cli("runs", "show", a).stdout


def test_runs_delete_restore_and_experiment_counts(cli: Cli, runs: Runs) -> None:
    """`runs delete` hides a run from `runs list` and the experiment count (`--deleted` shows
    it); `runs restore` brings it back."""
    gone = runs.ids["lr-b"]
    res = cli("runs", "delete", gone, "--json")
    assert res.code == 0, res.stderr
    assert res.json()["lifecycle"] == "deleted"
    assert gone not in {r["id"] for r in cli("runs", "list", "--json").json()}
    assert gone in {r["id"] for r in cli("runs", "list", "--deleted", "--json").json()}
    [experiment] = cli("experiments", "list", "--json").json()
    assert (experiment["name"], experiment["runs"]) == ("credit", 2)

    res = cli("runs", "restore", gone[:12])
    assert res.code == 0 and f"restored run {gone}" in res.stdout
    assert gone in {r["id"] for r in cli("runs", "list", "--json").json()}
    [experiment] = cli("experiments", "list", "--json").json()
    assert experiment["runs"] == 3 and experiment["created_by"] == "alice"
    assert "credit" in cli("experiments", "list").stdout


# -- models -------------------------------------------------------------------------------------


def test_models_list_versions_and_show(cli: Cli, registered: Registered) -> None:
    """`models list`, `versions` and `show --json` each print one document describing the
    registered versions, with signature, run and metrics."""
    res = cli("models", "list", "--json")
    assert res.code == 0, res.stderr
    [summary] = res.json()
    assert (summary["name"], summary["latest"], summary["versions"]) == (NAME, 2, 2)

    versions = cli("models", "versions", NAME, "--json").json()
    assert [v["ref"] for v in versions] == [f"{NAME}@1", f"{NAME}@2"]

    shown = cli("models", "show", NAME, "--json").json()
    assert shown["version"] == 2 and shown["run_id"] == registered.run_id
    assert shown["metrics"] == {"auc": 0.83} and shown["status"] == "candidate"
    assert list(shown["signature"]["inputs"]["columns"]) == ["age", "income", "city"]
    assert shown["signature"]["ignored"] == ["id"]  # fitted on, dropped by the pipeline
    text = cli("models", "show", f"{NAME}@1").stdout
    assert f"{NAME}@1" in text
    [outputs] = [line for line in text.splitlines() if line.startswith("outputs: ")]
    assert "{" not in outputs and outputs.startswith("outputs: classification of ")

    res = cli("models", "show", f"{NAME}@9")
    assert res.code == 1 and "latest is 2" in res.stderr


def test_models_alias_moves_and_production_is_protected(cli: Cli, registered: Registered) -> None:
    """`models alias` moves staging and `alias-history --json` lists every move with alias,
    versions, actor and time; `production` exits 1 saying it is protected and is not moved."""
    res = cli("models", "alias", f"{NAME}@1", "staging")
    assert res.code == 0 and f"{NAME}@staging -> version 1" in res.stdout
    res = cli("models", "alias", f"{NAME}@2", "staging", "--comment", "better", "--json")
    assert res.code == 0 and res.json()["aliases"] == ["staging"]

    res = cli("models", "alias", f"{NAME}@1", "production")
    assert res.code == 1
    assert "protected" in res.stderr and "promot" in res.stderr

    res = cli("models", "alias-history", NAME, "--json")
    assert res.code == 0, res.stderr
    history = res.json()
    assert [(e["alias"], e["from_version"], e["to_version"]) for e in history] == [
        ("staging", None, 1),
        ("staging", 1, 2),
    ]
    assert all(e["actor"] == "alice" and e["time"] for e in history)
    assert history[1]["comment"] == "better"
    assert "staging" in cli("models", "alias-history", NAME).stdout


def test_models_archive_refuses_an_aliased_version(cli: Cli, registered: Registered) -> None:
    """`models archive` of the staging version exits 1 naming the alias; an unaliased version
    is archived."""
    cli("models", "alias", f"{NAME}@2", "staging")
    res = cli("models", "archive", f"{NAME}@2")
    assert res.code == 1 and "staging" in res.stderr
    res = cli("models", "archive", f"{NAME}@1", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["status"] == "archived"
    statuses = [v["status"] for v in cli("models", "versions", NAME, "--json").json()]
    assert statuses == ["archived", "candidate"]


def test_models_register_from_a_run_artifact(
    cli: Cli, cli_project: Path, pipeline: Pipeline
) -> None:
    """`models register NAME --run ID --artifact PATH` needs an input example for the
    signature: without one it exits 1 saying to pass --input-example; with a CSV of input
    rows it registers a version whose signature has the model's columns, that `models
    predict` scores with; a file with an untrusted type exits 1 naming it."""
    frame, target = applicants(40)
    save_model(pipeline, cli_project / "model.skops")
    save_model(HandRolled().fit(frame, target), cli_project / "custom.skops")
    frame.head(5).to_csv(cli_project / "example.csv", index=False)
    frame.to_csv(cli_project / "input.csv", index=False)
    with (
        shipyard.open_project(cli_project) as project,
        project.start_run(experiment="credit") as run,
    ):
        run.log_artifact(cli_project / "model.skops")
        run.log_artifact(cli_project / "custom.skops")

    res = cli("models", "register", "credit-file", "--run", run.id[:8], "--artifact",
              "model.skops")  # fmt: skip
    assert res.code == 1
    assert "no input example" in res.stderr and "--input-example FILE" in res.stderr
    assert cli("models", "list", "--json").json() == []

    res = cli("models", "register", "credit-file", "--run", run.id[:8], "--artifact",
              "model.skops", "--input-example", "example.csv", "--json")  # fmt: skip
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["ref"], doc["run_id"], doc["created"]) == ("credit-file@1", run.id, True)
    assert list(doc["signature"]["inputs"]["columns"]) == ["age", "income", "city"]
    res = cli("models", "predict", "credit-file@1", "input.csv", "-o", "out.csv", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["scored"] == 40
    np.testing.assert_array_equal(
        pd.read_csv(cli_project / "out.csv")["prediction"], pipeline.predict(frame)
    )

    res = cli("models", "register", "other", "--run", run.id, "--artifact", "model.skops",
              "--input-example", "missing.parquet")  # fmt: skip
    assert res.code == 1 and "missing.parquet" in res.stderr

    res = cli("models", "register", "custom", "--run", run.id, "--artifact", "custom.skops",
              "--input-example", "example.csv")  # fmt: skip
    assert res.code == 1 and "HandRolled" in res.stderr
    assert [m["name"] for m in cli("models", "list", "--json").json()] == ["credit-file"]


def test_an_autologged_model_registers_with_its_signature_and_predicts(
    cli: Cli, cli_project: Path, pipeline: Pipeline
) -> None:
    """The documented path: autolog stores the fitted model as the run artifact `model` with
    `input_example.parquet`; `models register NAME --run RUN --artifact model` infers the
    signature from that example, and `models predict` scores a file with the version,
    predicting what the fitted pipeline predicts."""
    frame, target = applicants(60)
    frame.to_csv(cli_project / "input.csv", index=False)
    with shipyard.open_project(cli_project) as project:
        with project.start_run(experiment="credit", autolog=True) as run:
            fitted = clone(pipeline).fit(frame, target)
        artifacts = {a["path"] for a in project.runs.get(run.id).artifacts}
    assert {"model", "input_example.parquet"} <= artifacts

    res = cli("models", "register", "credit-auto", "--run", run.id, "--artifact", "model")
    assert res.code == 0, res.stderr
    assert "credit-auto@1" in res.stdout and "3 input columns" in res.stdout
    shown = cli("models", "show", "credit-auto@1", "--json").json()
    assert list(shown["signature"]["inputs"]["columns"]) == ["age", "income", "city"]
    assert shown["signature"]["ignored"] == ["id"]

    res = cli("models", "predict", "credit-auto@1", "input.csv", "-o", "out.parquet", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["scored"] == 60
    np.testing.assert_array_equal(
        pd.read_parquet(cli_project / "out.parquet")["prediction"], fitted.predict(frame)
    )


def test_models_predict_scores_a_csv_in_chunks(
    cli: Cli, cli_project: Path, registered: Registered
) -> None:
    """`models predict NAME@REF input.csv -o out.parquet --chunk-size 7 --json` reports every
    row and writes them with predictions equal to the pipeline's."""
    frame = registered.frame.head(50)
    frame.to_csv(cli_project / "input.csv", index=False)
    res = cli("models", "predict", f"{NAME}@1", "input.csv", "-o", "out.parquet",
              "--chunk-size", "7", "--json")  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.json() == {
        "input": "input.csv",
        "output": "out.parquet",
        "rows": 50,
        "scored": 50,
        "refused": 0,
        "rejected": None,
    }
    scored = pd.read_parquet(cli_project / "out.parquet")
    assert len(scored) == 50
    np.testing.assert_array_equal(scored["prediction"], registered.pipeline.predict(frame))
    assert {"proba_0", "proba_1"} <= set(scored.columns)

    res = cli("models", "predict", f"{NAME}@1", "input.csv", "-o", "out.csv", "--chunk-size", "9")
    assert res.code == 0 and "scored 50 of 50 rows" in res.stdout
    assert len(pd.read_csv(cli_project / "out.csv")) == 50

    frame.drop(columns=["age"]).to_csv(cli_project / "bad.csv", index=False)
    res = cli("models", "predict", f"{NAME}@1", "bad.csv", "-o", "bad.parquet")
    assert res.code == 1 and "missing columns: age" in res.stderr
    assert not (cli_project / "bad.parquet").exists()


def test_a_viewer_can_predict_but_not_move_aliases(
    cli: Cli, cli_project: Path, registered: Registered
) -> None:
    """A viewer's `models alias` exits 1 saying they are a viewer, while `models show` and
    `models predict` work for them."""
    assert cli("users", "add", "victor", "--role", "viewer").code == 0
    res = cli("models", "alias", f"{NAME}@1", "staging", user="victor")
    assert res.code == 1
    assert "'victor' is a viewer and cannot move model aliases" in res.stderr
    assert cli("models", "show", NAME, "--json").json()["aliases"] == []

    registered.frame.head(20).to_csv(cli_project / "input.csv", index=False)
    res = cli("models", "predict", NAME, "input.csv", "-o", "out.parquet", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["rows"] == 20
