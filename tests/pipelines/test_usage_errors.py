"""What a user who mistypes sees: a param the pipeline does not take, an unknown executor or
export format, `--json` with `--format mermaid`, and a schedule that is missing or does not
parse are usage errors (exit 2, nothing runs, a JSON error under --json); a YAML step that
calls a missing file is refused naming the file and the step."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli

FLOW = """
from shipyard import pipeline, step


@step
def double(x: int) -> int:
    return 2 * x


@pipeline
def flow(n: int = 1):
    double(n)
"""

STEPS = """
def count(n: int) -> int:
    return n
"""


def test_pipeline_usage_errors_exit_2_and_run_nothing(cli: Cli, cli_project: Path) -> None:
    (cli_project / "flow.py").write_text(FLOW)
    unknown = cli("pipeline", "run", "flow.py", "--param", "nope=1", "--json")
    assert unknown.code == 2, unknown.stderr
    assert "unknown param 'nope' (known: n)" in unknown.json()["message"]
    assert "unknown param 'nope'" in unknown.stderr
    typo = cli("pipeline", "run", "flow.py", "--param", "n=two")
    assert typo.code == 2 and "param 'n': 'two' is not an int" in typo.stderr
    spark = cli("pipeline", "run", "flow.py", "--executor", "spark", "--json")
    assert spark.code == 2
    assert spark.json()["error"] == "usage" and "unknown executor 'spark'" in spark.stderr
    assert cli("pipeline", "runs", "--json").json() == []  # none of them started a run

    ran = cli("pipeline", "run", "flow.py", "--param", "n=3", "--json")
    assert ran.code == 0, ran.stderr
    both = cli("pipeline", "show", ran.json()["id"], "--format", "mermaid", "--json")
    assert both.code == 2 and both.json()["error"] == "usage"
    assert "--json" in both.json()["message"] and "mermaid" in both.json()["message"]
    alone = cli("pipeline", "show", ran.json()["id"], "--format", "mermaid")
    assert alone.code == 0 and alone.stdout.startswith("flowchart LR")


def test_a_yaml_step_calling_a_missing_file_names_the_file_and_the_step(
    cli: Cli, cli_project: Path
) -> None:
    (cli_project / "steps.py").write_text(STEPS)
    (cli_project / "dvc.yaml").write_text(
        "params: {n: 1}\n"
        "steps:\n"
        "  first:\n    call: nope.py:f\n"
        "  second:\n    call: steps.py:count\n    params: {n: '${n}'}\n"
        "  third:\n    call: nomodule:f\n"
    )
    res = cli("pipeline", "run", "dvc.yaml")
    assert res.code == 1
    assert "unexpected" not in res.stderr
    assert "step first: no file nope.py" in res.stderr
    assert "step third: no module nomodule" in res.stderr
    assert "second" not in res.stderr
    assert cli("pipeline", "runs", "--json").json() == []


def test_export_format_and_schedule_usage_errors_exit_2(cli: Cli, cli_project: Path) -> None:
    pmml = cli("models", "export", "m@1", "-o", "m.pmml", "--format", "pmml", "--json")
    assert pmml.code == 2 and pmml.json()["error"] == "usage"
    assert "the formats are onnx" in pmml.json()["message"]
    missing = cli("scheduler", "--once")
    assert missing.code == 2 and "no schedule file" in missing.stderr
    given = cli("scheduler", "--once", "--file", "nope.yaml", "--json")
    assert given.code == 2 and "no schedule file nope.yaml" in given.json()["message"]
    (cli_project / "bad.yaml").write_text(
        'triggers:\n  nightly:\n    pipeline: flow.py\n    cron: "at three"\n'
    )
    bad = cli("scheduler", "--once", "--file", "bad.yaml", "--json")
    assert bad.code == 2, bad.stderr
    assert "triggers.nightly.cron: 'at three' is not a cron expression" in bad.json()["message"]
