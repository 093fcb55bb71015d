"""``shipyard pipeline run`` with nothing changed answers "up to date" without running or
recording anything, in a fresh process as a user runs it; any change that could make the
normal path do something else (a file's content, a param, the lock, the store, a volatile
step, a damaged fingerprint) sends it through the normal path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.cli.uptodate import _parse, answer, up_to_date_doc
from shipyard.errors import InvalidInputError
from shipyard.pipelines.executors import parse_executor

FLOW = """
import helpers

from shipyard import pipeline, step
from shipyard.pipelines import dataset


@step
def count(data) -> int:
    return helpers.scale(data.rows)


@step
def total(n: int, extra: int) -> int:
    return n + extra


@pipeline
def flow(extra: int = 1):
    total(count(dataset("numbers")), extra)
"""

HELPERS = "def scale(x):\n    return x * 2\n"

MOODY = """
import time

from shipyard import pipeline, step


@step
def steady() -> int:
    return 1


@step(volatile=True)
def clock(x: int) -> float:
    return time.time() + x


@pipeline
def moody():
    clock(steady())
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a dataset `numbers` and the pipeline flow.py beside its helper module."""
    root = tmp_path / "proj"
    (tmp_path / "numbers.csv").write_text("x\n1\n2\n3\n")
    with shipyard.init_project(root) as p:
        p.datasets.add("numbers", tmp_path / "numbers.csv")
    (root / "flow.py").write_text(FLOW)
    (root / "helpers.py").write_text(HELPERS)
    return root


def shipyard_cli(
    root: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m shipyard ARGS`` in a new process, in ``cwd`` (default: the project)."""
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=cwd or root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_json(root: Path, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    done = shipyard_cli(root, "pipeline", "run", *args, "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def recorded_runs(root: Path) -> int:
    with shipyard.open_project(root) as p:
        return len(p.pipelines.list())


def fingerprints(root: Path) -> list[Path]:
    return sorted((root / ".shipyard" / "pipelines" / "up-to-date").glob("*.json"))


def test_a_second_identical_run_is_up_to_date_and_records_nothing(
    project: Path, tmp_path: Path
) -> None:
    """The second run says it is up to date, names the run it matched, reports every step as
    a hit with the same outputs, and adds no pipeline run; the same holds for another
    executor, and from another folder with --project once a run from there has recorded
    (the current folder decides where ``python -m`` finds modules, so it is part of the
    command line's fingerprint)."""
    first = run_json(project, "flow.py")
    assert first["up_to_date"] is False and first["cache_hits"] == 0
    again = run_json(project, "flow.py")
    assert again["up_to_date"] is True
    assert again["id"] == first["id"] and again["pipeline"] == "flow"
    assert [(s["name"], s["cache"]) for s in again["steps"]] == [
        ("count", "hit"),
        ("total", "hit"),
    ]
    assert [s["outputs"] for s in again["steps"]] == [s["outputs"] for s in first["steps"]]
    assert again["cache_hits"] == 2
    other = run_json(project, "--workers", "2", "--executor", "local", "flow.py")
    assert other["up_to_date"] is True
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    there = shipyard_cli(project, "-P", str(project), "pipeline", "run", "flow.py", cwd=elsewhere)
    assert there.returncode == 0, there.stderr
    assert there.stdout.startswith("pipeline run ") and "2/2 steps from cache" in there.stdout
    assert recorded_runs(project) == 2
    done = shipyard_cli(project, "-P", str(project), "pipeline", "run", "flow.py", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pipeline flow: up to date, nothing ran (every step's key")
    assert "--always-record" in done.stdout
    assert recorded_runs(project) == 2


def test_a_helper_module_counts_by_content_not_by_timestamp(project: Path) -> None:
    """Touching the helper a step imports changes nothing; editing it runs the step again
    (a miss, a new recorded run), after which the pipeline is up to date again."""
    first = run_json(project, "flow.py")
    helper = project / "helpers.py"
    os.utime(helper, (helper.stat().st_atime + 60, helper.stat().st_mtime + 60))
    assert run_json(project, "flow.py")["up_to_date"] is True
    helper.write_text("def scale(x):\n    return x * 3\n")
    edited = run_json(project, "flow.py")
    assert edited["up_to_date"] is False and edited["id"] != first["id"]
    assert [s["cache"] for s in edited["steps"]] == ["miss", "miss"]
    assert run_json(project, "flow.py")["id"] == edited["id"]
    assert recorded_runs(project) == 2


def test_any_change_to_the_store_takes_the_normal_path(project: Path, tmp_path: Path) -> None:
    """A run logged elsewhere is a change to the store: the next run is recorded (all hits);
    a new version of the input dataset makes its step miss."""
    run_json(project, "flow.py")
    with shipyard.open_project(project) as p, p.runs.start("elsewhere") as run:
        run.log_param("lr", 0.1)
    hits = run_json(project, "flow.py")
    assert hits["up_to_date"] is False and hits["cache_hits"] == 2
    (tmp_path / "more.csv").write_text("x\n1\n2\n3\n4\n")
    with shipyard.open_project(project) as p:
        p.datasets.add("numbers", tmp_path / "more.csv")
    fresh = run_json(project, "flow.py")
    assert fresh["up_to_date"] is False
    assert [s["cache"] for s in fresh["steps"]] == ["miss", "miss"]
    assert recorded_runs(project) == 3


def test_params_and_the_lock_are_part_of_the_answer(project: Path) -> None:
    """Another --param is another command line; so is the same one again only once it ran.
    An edited shipyard.lock takes the normal path."""
    assert run_json(project, "flow.py", "--param", "extra=5")["up_to_date"] is False
    assert run_json(project, "flow.py", "--param", "extra=5")["up_to_date"] is True
    changed = run_json(project, "flow.py", "--param", "extra=6")
    assert changed["up_to_date"] is False and changed["steps"][1]["cache"] == "miss"
    assert shipyard_cli(project, "lock", "flow.py").returncode == 0
    assert run_json(project, "flow.py", "--param", "extra=6")["up_to_date"] is False
    assert run_json(project, "flow.py", "--param", "extra=6")["up_to_date"] is True
    lock = project / "shipyard.lock"
    lock.write_text(lock.read_text() + "# reviewed\n")
    assert run_json(project, "flow.py", "--param", "extra=6")["up_to_date"] is False

    (project / "params.yaml").write_text("extra: 7\n")
    assert run_json(project, "flow.py", "--params-file", "params.yaml")["up_to_date"] is False
    assert run_json(project, "flow.py", "--params-file", "params.yaml")["up_to_date"] is True
    (project / "params.yaml").write_text("extra: 8\n")
    assert run_json(project, "flow.py", "--params-file", "params.yaml")["up_to_date"] is False


def test_volatile_steps_and_the_forcing_options_always_run(project: Path) -> None:
    """A pipeline with a volatile step is never up to date (and leaves no fingerprint);
    --no-cache and --always-record take the normal path and record a run."""
    (project / "moody.py").write_text(MOODY)
    run_json(project, "moody.py")
    again = run_json(project, "moody.py")
    assert again["up_to_date"] is False
    assert [s["cache"] for s in again["steps"]] == ["hit", "volatile"]
    assert fingerprints(project) == []

    run_json(project, "flow.py")
    recorded = run_json(project, "flow.py", "--always-record")
    assert recorded["up_to_date"] is False and recorded["cache_hits"] == 2
    uncached = run_json(project, "flow.py", "--no-cache")
    assert uncached["up_to_date"] is False and uncached["cache_hits"] == 0
    assert recorded_runs(project) == 5


def test_a_damaged_or_stale_fingerprint_is_never_trusted(project: Path) -> None:
    """A truncated or nonsensical fingerprint takes the normal path without an error; a run
    that fails removes the fingerprint of its command line."""
    run_json(project, "flow.py")
    (found,) = fingerprints(project)
    found.write_text(found.read_text()[:100])
    assert run_json(project, "flow.py")["up_to_date"] is False
    (found,) = fingerprints(project)
    found.write_text(json.dumps({"format": 1, "files": 3, "run": {}}))
    assert run_json(project, "flow.py")["up_to_date"] is False

    (project / "helpers.py").write_text("def scale(x):\n    raise RuntimeError('broken')\n")
    failed = shipyard_cli(project, "pipeline", "run", "flow.py", "--json")
    assert failed.returncode == 1 and "broken" in failed.stdout
    assert fingerprints(project) == []


def test_a_configured_team_server_is_never_answered_early(
    project: Path,
    audit_key_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a stored login (or SHIPYARD_SERVER) the full command line decides."""
    run_json(project, "flow.py")
    monkeypatch.chdir(project)
    argv = ["pipeline", "run", "flow.py"]
    assert answer(argv) == 0 and "up to date" in capsys.readouterr().out
    monkeypatch.setenv("SHIPYARD_SERVER", "http://127.0.0.1:9")
    assert answer(argv) is None
    monkeypatch.delenv("SHIPYARD_SERVER")
    (audit_key_home / "shipyard").mkdir(exist_ok=True)
    (audit_key_home / "shipyard" / "login.json").write_text("{}")
    assert answer(argv) is None


def test_only_the_plain_command_line_is_answered_early(project: Path) -> None:
    """Other commands, options that change the run or its output (--no-cache, --debug,
    --help, an unknown option) and values the full command line refuses go to it."""
    for argv in (
        ["pipeline", "run", "flow.py", "--no-cache"],
        ["pipeline", "run", "flow.py", "--always-record"],
        ["--debug", "pipeline", "run", "flow.py"],
        ["pipeline", "run", "flow.py", "--help"],
        ["pipeline", "run", "flow.py", "--verbose"],
        ["pipeline", "run", "flow.py", "other.py"],
        ["pipeline", "run", "flow.py", "--workers", "0"],
        ["pipeline", "run", "flow.py", "--executor", "spark"],
        ["pipeline", "run", "flow.py", "--params-file", "a.yaml", "--params-file", "b.yaml"],
        ["pipeline", "runs"],
        ["-P", str(project), "-P", str(project), "pipeline", "run", "flow.py"],
        ["pipeline", "run"],
    ):
        assert _parse(argv) is None or _parse(argv).target is None, argv  # type: ignore[union-attr]
        assert answer(argv) is None
    parsed = _parse(
        ["--project=p", "pipeline", "run", "f.py:x", "--param=a=1", "--param", "b=2", "--json"]
    )
    assert parsed is not None
    assert (parsed.project, parsed.target, parsed.params) == ("p", "f.py:x", ["a=1", "b=2"])


@pytest.mark.parametrize("spec", ["local", "dask", "dask://10.0.0.1:8786", "dask://", "spark", ""])
def test_the_early_answer_accepts_the_executors_the_command_line_accepts(spec: str) -> None:
    """The executor rule of the early answer is the pipelines service's."""
    try:
        parse_executor(spec)
        accepted = True
    except InvalidInputError:
        accepted = False
    parsed = _parse(["pipeline", "run", "f.py", "--executor", spec])
    assert (parsed is not None) == accepted


def test_the_python_api_always_records(project: Path) -> None:
    """``project.pipelines.run`` records every run and writes no fingerprint."""
    with shipyard.open_project(project) as p:
        first = p.pipelines.run("flow.py")
        again = p.pipelines.run("flow.py")
    assert again.id != first.id and again.cache_hits == 2
    assert fingerprints(project) == []


def test_the_answer_reports_the_lock_as_read() -> None:
    """Inputs the recorded run added to the lock are, in the answer, read from it."""
    doc = up_to_date_doc(
        {
            "id": "r",
            "steps": [{"name": "a", "cache": "miss", "attempts": 1, "started_at": "t"}],
            "lock": {"digest": "d", "read": {}, "added": {"dataset:x": "x@1"}, "replaced": {}},
        }
    )
    assert doc["lock"]["read"] == {"dataset:x": "x@1"} and doc["lock"]["added"] == {}
    assert doc["steps"][0]["cache"] == "hit" and doc["steps"][0]["started_at"] is None
    assert doc["up_to_date"] is True and doc["cache_hits"] == 1


PROBE = """
import json, sys
from shipyard.cli.entry import run
sys.argv = ["shipyard", "pipeline", "run", "flow.py", "--json"]
try:
    run()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_the_answer_imports_neither_the_cli_framework_nor_the_store_nor_the_pipeline(
    project: Path,
) -> None:
    """Answering "up to date" loads no Typer, SQLAlchemy, pipeline file or its imports."""
    run_json(project, "flow.py")
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    answered, probe = done.stdout.rsplit("\n{", 1)
    assert json.loads(answered)["up_to_date"] is True
    last = json.loads("{" + probe)
    assert last["code"] == 0, done.stderr
    loaded = set(last["modules"])
    heavy = {"typer", "sqlalchemy", "polars", "helpers", "shipyard.cli.main", "shipyard.errors"}
    assert not heavy & loaded


CONSTANTS = """
import os

from shipyard import pipeline, step

FACTOR = 2
SCALE = int(os.environ.get("SCALE", "1"))


@step
def scaled() -> int:
    return FACTOR * SCALE


@pipeline
def constants():
    scaled()
"""


def test_a_constant_computed_at_import_is_never_answered_from_the_fingerprint(
    project: Path,
) -> None:
    """A step reading a module constant whose value comes from the environment (not written
    in the file) always takes the normal path, which sees the value change; one reading only
    literal constants is answered up to date."""
    (project / "constants.py").write_text(CONSTANTS)

    def run(scale: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "shipyard", "pipeline", "run", "constants.py", "--json"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "SCALE": scale},
        )
        assert done.returncode == 0, done.stderr
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc

    first = run("1")
    again = run("1")
    assert again["up_to_date"] is False and again["id"] != first["id"]  # recorded, all hits
    assert [s["cache"] for s in again["steps"]] == ["hit"]
    changed = run("5")
    assert changed["up_to_date"] is False
    assert [s["cache"] for s in changed["steps"]] == ["miss"]

    (project / "constants.py").write_text(
        CONSTANTS.replace('int(os.environ.get("SCALE", "1"))', "3")
    )
    run("1")
    assert run("1")["up_to_date"] is True


def test_a_new_module_that_shadows_a_used_one_sends_the_run_the_normal_way(
    project: Path,
) -> None:
    """A pipeline in a sub-folder imports a module found in the project folder; a module of
    the same name created beside the pipeline (found first) is a change, though no file the
    last run read changed."""
    (project / "sub").mkdir()
    (project / "sub" / "flow.py").write_text(FLOW)
    run_json(project, "sub/flow.py")
    assert run_json(project, "sub/flow.py")["up_to_date"] is True
    (project / "sub" / "helpers.py").write_text("def scale(x):\n    return x * 3\n")
    shadowed = run_json(project, "sub/flow.py")
    assert shadowed["up_to_date"] is False
    assert shadowed["steps"][0]["cache"] == "miss"


def test_a_local_module_that_does_not_parse_costs_only_the_fingerprint(project: Path) -> None:
    """A pipeline file that guards the import of a local module which does not parse runs as
    it always did (the fingerprint, which would read that module, is left out)."""
    (project / "scratch.py").write_text("def broken(:\n")
    guarded = "try:\n    import scratch\nexcept SyntaxError:\n    scratch = None\n" + FLOW
    (project / "flow.py").write_text(guarded)
    first = run_json(project, "flow.py")
    assert first["status"] == "succeeded"
    assert run_json(project, "flow.py")["up_to_date"] is False  # nothing to answer from
    assert fingerprints(project) == []
