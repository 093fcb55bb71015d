"""The README's tour runs as written on the demo project: every command of the shell blocks
after ``shipyard demo --dir demo``, in order, in a fresh demo project, through the installed
``shipyard`` command, exits with the code the README gives it.

The convention the README follows: a comment ``# exit N: why`` after a command is the code it
exits with on the demo project; without one, the command succeeds (0). ``exit 3 when ...`` and
the like describe what the command does elsewhere and set no expectation.

Only the commands in ``SKIPPED`` are left out, each with its reason; the run ids a reader
copies from a listing (``RUN``, ``RUN_A``, ``RUN_B``) are filled in from the same listings."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import shipyard

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("readme-tour")]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SRC = Path(shipyard.__file__).resolve().parents[1]
# The demo's first batch of applicants: as small as the demo's own test (the whole story holds:
# at 5,000 the canary's challenger fails the fairness gate and the demo stops with exit 3).
DEMO_ROWS = 20_000

# Tour lines that are not run, by how they start, each with why.
SKIPPED = {
    "source .venv/bin/activate": "the test runs the shipyard of this checkout",
    "shipyard demo --dir demo": "built once by the demo_checkout fixture (with --rows)",
    "shipyard serve ": "a long-lived server",
    "curl ": "requests to the server `shipyard serve` would start",
    "shipyard server ": "a long-lived server",
    "export SHIPYARD_SERVER=": "needs the server and the token printed by `users token "
    "create` (a placeholder here); the commands after it run on the local stores",
    "unset SHIPYARD_SERVER": "pairs with the export above",
    "shipyard ui ": "a long-lived server",
    "shipyard models import-mlflow ./mlflow-model": "needs an MLflow model folder of the "
    "reader's (the demo makes none)",
}
# Run ids a reader copies from a listing: the newest pipeline run, the two newest tracked runs.
RUN_IDS = {
    "RUN": ("pipeline runs --json", 0),
    "RUN_A": ("runs list --json", 0),
    "RUN_B": ("runs list --json", 1),
}


@dataclass(frozen=True)
class TourLine:
    line: str  # the command as the README writes it (continued lines joined)
    expected: int  # the exit code the README gives it

    @property
    def skipped(self) -> str | None:
        return next((why for start, why in SKIPPED.items() if self.line.startswith(start)), None)


def tour_lines() -> list[TourLine]:
    """The commands of the README's shell blocks from its tour on, in order."""
    tour = README.read_text().split("\n## A tour\n", 1)[1]
    lines = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", tour, flags=re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            code, _, comment = raw.partition(" #")
            code = " ".join(code.split())
            if not code or code.startswith("#"):
                continue
            declared = re.search(r"\bexit (\d+):", comment)
            lines.append(TourLine(code, int(declared.group(1)) if declared else 0))
    return lines


@pytest.fixture(scope="module")
def tour_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a reader who activated the venv: `shipyard` on the PATH (running
    this checkout's code), no shipyard variables set, a private config folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(SRC)
    env["SHIPYARD_USER"] = "alice"
    env["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    env["COLUMNS"] = "120"
    return env


@pytest.fixture(scope="module")
def demo_checkout(tmp_path_factory: pytest.TempPathFactory, tour_env: dict[str, str]) -> Path:
    """A folder laid out as the tour expects: the demo project in ``demo/`` beside the
    checkout's ``docs/`` (the tour reads ``../docs/examples``)."""
    checkout = tmp_path_factory.mktemp("checkout")
    (checkout / "docs").symlink_to(REPO / "docs")
    done = subprocess.run(
        ["shipyard", "demo", "--dir", "demo", "--rows", str(DEMO_ROWS)],
        cwd=checkout,
        env=tour_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return checkout


def _with_run_ids(line: str, cwd: Path, env: dict[str, str]) -> str:
    """``line`` with ``RUN``, ``RUN_A`` and ``RUN_B`` replaced as a reader would: by ids the
    project lists at that point of the tour."""

    def run_id(match: re.Match[str]) -> str:
        command, index = RUN_IDS[match.group(0)]
        listed = subprocess.run(
            ["shipyard", *command.split()], cwd=cwd, env=env, capture_output=True, check=True
        )
        return str(json.loads(listed.stdout)[index]["id"])

    return re.sub(r"\bRUN(?:_A|_B)?\b", run_id, line)


def _run(line: TourLine, cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Run ``line`` with bash as a reader would type it; yields what went wrong, if anything."""
    command = _with_run_ids(line.line, cwd, env)
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != line.expected:
        said = (done.stderr.strip() or done.stdout.strip())[-600:]
        yield f"{line.line!r} exited {done.returncode}, README says {line.expected}: {said}"


def test_tour_lines_are_found_with_their_exit_codes() -> None:
    """The parser sees the whole tour, and the README's `# exit N:` comments."""
    lines = tour_lines()
    assert lines[0].line == "source .venv/bin/activate" and len(lines) > 100
    assert {line.expected for line in lines} >= {0, 3}
    assert any(line.line.startswith("shipyard report pr") and line.expected == 3 for line in lines)
    # Every skip names a line the tour still has: the list cannot rot into skipping nothing.
    for start in SKIPPED:
        assert any(line.line.startswith(start) for line in lines), start


def test_readme_tour_runs_as_written(demo_checkout: Path, tour_env: dict[str, str]) -> None:
    cwd = demo_checkout
    problems: list[str] = []
    ran = 0
    for line in tour_lines():
        if line.skipped:
            continue
        if line.line.startswith("cd "):
            cwd = (cwd / shlex.split(line.line)[1]).resolve()
            continue
        problems.extend(_run(line, cwd, tour_env))
        ran += 1
    assert problems == [], "\n".join(problems)
    assert ran >= 90
