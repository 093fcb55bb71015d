"""Pipelines as a user runs them: steps cached by content, explained misses, records and
lineage, failures, retries, timeouts, resume, YAML pipelines, and Dask."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import shipyard
from shipyard.project import Project
from tests.cli.conftest import Cli

PIPELINE = """
import polars as pl

import helpers
from shipyard import pipeline, step
from shipyard.pipelines import current, dataset


@step(dataset="sales.clean")
def clean(raw) -> pl.DataFrame:
    return raw.to_polars().with_columns(pl.col("amount") * helpers.RATE)


@step
def total(table) -> float:
    return float(table.to_polars()["amount"].sum())


@step
def part(i: int) -> int:
    return i * i


@step
def summary(t: float, parts: list) -> dict:
    current().run.log_metric("total", t)
    return {"total": t, "parts": parts}


@pipeline
def sales(raw=dataset("sales"), n: int = 2):
    summary(total(clean(raw)), part.map(list(range(n))))
"""


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    """A project holding dataset `sales`, and the folder of pipeline.py and helpers.py."""
    root = tmp_path_factory.mktemp("pipelines")
    project = shipyard.init_project(root / "proj", actor="alice")
    project.datasets.add("sales", pl.DataFrame({"amount": [1.0, 2.0, 3.0]}))
    code = root / "proj" / "flows"
    code.mkdir()
    (code / "pipeline.py").write_text(PIPELINE)
    (code / "helpers.py").write_text("RATE = 2\n")
    try:
        yield project, code / "pipeline.py"
    finally:
        project.close()


def by_name(run: shipyard.PipelineRun) -> dict[str, tuple[str, str]]:
    return {s.name: (s.status, s.cache) for s in run.steps}


def test_a_second_run_reuses_every_step_and_lineage_reads_dataset_step_dataset(
    sales: tuple[Project, Path],
) -> None:
    """The first run computes every step (a table registered as a dataset, values stored by
    digest); the second reuses them all; each step is a tracked run with its params, code
    and inputs, so lineage goes from `sales` through the step to `sales.clean`."""
    project, file = sales
    first = project.pipelines.run(str(file))
    assert first.status == "succeeded"
    assert {s.cache for s in first.steps} == {"miss"}
    clean = first.step("clean")
    assert clean.outputs is not None and clean.outputs["ref"] == "sales.clean@1"
    assert project.datasets.get("sales.clean@1").to_polars()["amount"].to_list() == [2, 4, 6]

    step_run = project.runs.get(clean.run_id or "")
    assert step_run.inputs[0]["dataset"] == "sales@1" and step_run.inputs[0]["context"] == "raw"
    assert "def clean(raw)" in step_run.code["step"]["source"]
    assert step_run.code["step"]["modules"]["helpers"]["file"] == "flows/helpers.py"
    stored = {a["path"] for a in project.runs.get(first.id).artifacts}
    assert {"code/flows/pipeline.py", "code/flows/helpers.py"} <= stored
    assert project.runs.get(first.step("part[1]").run_id or "").params == {"i": "1"}
    assert project.runs.get(first.step("summary").run_id or "").metrics == {"total": 12.0}
    assert project.runs.get(first.id).tags["shipyard.cache_hits"] == "0"
    upstream = project.datasets.lineage("sales.clean@1")
    edges = {(e["parent"], e["child"]) for e in upstream["upstream"]}
    assert (f"run:{clean.run_id}", "dataset:sales.clean@1") in edges
    assert ("dataset:sales@1", f"run:{clean.run_id}") in edges

    second = project.pipelines.run(str(file))
    assert {s.cache for s in second.steps} == {"hit"}
    assert [s.outputs for s in second.steps] == [s.outputs for s in first.steps]
    assert project.pipelines.list(pipeline="sales")[0].id == second.id


def test_an_edited_helper_module_misses_and_explain_shows_it_but_a_touch_does_not(
    sales: tuple[Project, Path],
) -> None:
    """Changing helpers.py re-runs the steps that use it (and those downstream whose inputs
    changed), `explain` names the module with its digests before and after; changing only
    the file's timestamp re-runs nothing."""
    project, file = sales
    project.pipelines.run(str(file))
    helpers = file.parent / "helpers.py"
    helpers.write_text("RATE = 3\n")
    edited = project.pipelines.run(str(file))
    assert by_name(edited) == {
        "clean": ("succeeded", "miss"),
        "total": ("succeeded", "miss"),
        "part[0]": ("succeeded", "hit"),
        "part[1]": ("succeeded", "hit"),
        "summary": ("succeeded", "miss"),
    }
    [why] = project.pipelines.explain(edited.id, "clean")
    assert "modules changed" in why.reason
    [change] = why.changes
    assert change.component == "modules" and change.item == "helpers"
    assert change.before != change.after and str(change.after).startswith("blake3:")
    [total] = project.pipelines.explain(edited.id, "total")
    assert [c.component for c in total.changes] == ["inputs"]

    later = helpers.stat().st_mtime + 100
    os.utime(helpers, (later, later))
    touched = project.pipelines.run(str(file))
    assert {s.cache for s in touched.steps} == {"hit"}


FLAKY = """
import os
import time

from shipyard import pipeline, step


@step
def source(n: int) -> int:
    return n


@step(retries=1)
def flaky(x: int) -> int:
    if os.environ.get("FLAKY_FAIL") == "1":
        raise ValueError("the service is down")
    return x + 1


@step(timeout=0.2)
def slow(x: int) -> int:
    time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
    return x


@step
def combine(a: int, b: int) -> int:
    return a + b


@pipeline
def flaky_flow(n: int = 1):
    x = source(n)
    combine(flaky(x), slow(x))
"""


def test_a_failing_step_stops_its_dependents_and_resume_reruns_only_those(
    cli: Cli, cli_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails after its retry, and one that overruns its timeout, fail; the step
    that needs them is skipped and named; exit code 1. Resume reuses what succeeded and runs
    the rest."""
    (cli_project / "flaky.py").write_text(FLAKY)
    monkeypatch.setenv("FLAKY_FAIL", "1")
    monkeypatch.setenv("SLOW_SECONDS", "1")
    res = cli("pipeline", "run", "flaky.py", "--json")
    assert res.code == 1
    doc = res.json()
    steps = {s["name"]: s for s in doc["steps"]}
    assert doc["status"] == "failed"
    assert steps["flaky"]["status"] == "failed" and steps["flaky"]["attempts"] == 2
    assert "the service is down" in steps["flaky"]["error"]
    assert steps["slow"]["status"] == "failed" and "timeout" in steps["slow"]["error"]
    assert steps["combine"]["status"] == "skipped" and "flaky" in steps["combine"]["error"]
    assert "step flaky failed" in res.stderr and "combine" in res.stderr

    monkeypatch.setenv("FLAKY_FAIL", "0")
    monkeypatch.setenv("SLOW_SECONDS", "0")
    res = cli("pipeline", "resume", doc["id"][:10], "--json")
    assert res.code == 0, res.stderr
    after = {s["name"]: (s["status"], s["cache"]) for s in res.json()["steps"]}
    assert after == {
        "source": ("succeeded", "resumed"),
        "flaky": ("succeeded", "miss"),
        "slow": ("succeeded", "miss"),
        "combine": ("succeeded", "miss"),
    }
    assert res.json()["resumed_from"] == doc["id"]


STEPS = """
def scale(raw, factor: float):
    return raw.to_polars().with_columns(amount=raw.to_polars()["amount"] * factor)


def count(table) -> int:
    return table.height
"""

YAML = """
pipeline: yaml-sales
params: {factor: 1.0}
steps:
  scale:
    call: steps.py:scale
    inputs: {raw: "dataset:sales"}
    params: {factor: "${factor}"}
  count:
    call: steps.py:count
    inputs: {table: scale}
    volatile: true
"""


def test_a_yaml_pipeline_runs_with_params_and_shows_as_a_graph(cli: Cli, cli_project: Path) -> None:
    """A DVC-style YAML pipeline takes params from --param and --params-file; `show` prints
    its graph as Mermaid, `runs` lists it, `explain` says a volatile step always runs."""
    with shipyard.open_project(cli_project) as project:
        project.datasets.add("sales", pl.DataFrame({"amount": [1.0, 2.0]}))
    (cli_project / "steps.py").write_text(STEPS)
    (cli_project / "dvc.yaml").write_text(textwrap.dedent(YAML))
    (cli_project / "params.yaml").write_text("factor: 3\n")
    res = cli("pipeline", "run", "dvc.yaml", "--params-file", "params.yaml", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["pipeline"] == "yaml-sales" and doc["params"] == {"factor": 3.0}
    again = cli("pipeline", "run", "dvc.yaml", "--param", "factor=3", "--json").json()
    assert [(s["name"], s["cache"]) for s in again["steps"]] == [
        ("scale", "hit"),
        ("count", "volatile"),
    ]
    mermaid = cli("pipeline", "show", again["id"], "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR") and "s0 --> s1" in mermaid
    listed = cli("pipeline", "runs", "--json").json()
    assert [r["id"] for r in listed] == [again["id"], doc["id"]]
    explained = cli("pipeline", "explain", again["id"], "count").stdout
    assert "volatile: the step always runs" in explained
    bad = cli("pipeline", "run", "dvc.yaml", "--param", "factor=many")
    assert bad.code == 2 and "factor" in bad.stderr  # a usage error: nothing ran


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_dask_gives_the_same_outputs_digests_and_lineage_as_local_in_team_mode(
    tmp_path: Path, pg_schema_url: str, s3_uri: str
) -> None:
    """A team project (PostgreSQL and S3): the same pipeline run without the cache on a
    Dask LocalCluster (steps on worker processes that open the project from its settings)
    and locally gives identical outputs, digests and lineage."""
    project = shipyard.init_project(tmp_path / "team", db_url=pg_schema_url, artifacts_uri=s3_uri)
    try:
        project.datasets.add("sales", pl.DataFrame({"amount": [1.0, 2.0, 3.0]}))
        (tmp_path / "team" / "pipeline.py").write_text(PIPELINE)
        (tmp_path / "team" / "helpers.py").write_text("RATE = 2\n")
        file = str(tmp_path / "team" / "pipeline.py")
        local = project.pipelines.run(file, use_cache=False)
        remote = project.pipelines.run(file, executor="dask", use_cache=False)
        assert remote.status == "succeeded", remote.error
        assert remote.executor == "dask"
        assert [s.outputs for s in remote.steps] == [s.outputs for s in local.steps]

        def lineage(run: shipyard.PipelineRun) -> list[tuple[str, list[tuple[str, str]]]]:
            out = []
            for s in run.steps:
                info = project.runs.get(s.run_id or "")
                assert info.tags["shipyard.pipeline_run"] == run.id
                out.append((s.name, [(i["dataset"], i["context"]) for i in info.inputs]))
            return out

        assert lineage(remote) == lineage(local)
        clean = remote.step("clean").run_id
        edges = project.datasets.lineage("sales.clean@1")["upstream"]
        assert (f"run:{clean}", "dataset:sales.clean@1") in {
            (e["parent"], e["child"]) for e in edges
        }
    finally:
        project.close()


TTL = """
from shipyard import pipeline, step


@step(ttl=0.05)
def fresh(n: int) -> int:
    return n


@pipeline
def fresh_flow(n: int = 1):
    fresh(n)
"""


def test_a_result_older_than_its_ttl_is_computed_again(sales: tuple[Project, Path]) -> None:
    """A step with a TTL reuses a cached result only while it is younger than the TTL;
    `explain` says so."""
    project, file = sales
    path = file.parent / "ttl.py"
    path.write_text(TTL)
    project.pipelines.run(str(path))
    time.sleep(0.1)
    again = project.pipelines.run(str(path))
    assert by_name(again) == {"fresh": ("succeeded", "expired")}
    [why] = project.pipelines.explain(again.id)
    assert "older than the step's ttl" in why.reason
