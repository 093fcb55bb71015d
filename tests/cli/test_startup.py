"""What a command that reads the store loads: only its own command group, and not the team
server's client (the start-up time of such commands is measured by bench/cli.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import shipyard
from tests.cli.conftest import Cli

PROBE = """
import json, sys
from shipyard.cli.main import run
sys.argv = ["shipyard", "--project", *sys.argv[1:]]
try:
    run()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _probe(code: str, project: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run ``code`` in a new Python as user ann with ``project`` and ``args`` as its
    arguments; the JSON document it printed last, and its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_USER"] = "ann"
    done = subprocess.run(
        [sys.executable, "-c", code, str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "group"),
    [
        (["users", "whoami", "--json"], "users"),
        # options given and left out; a repeated argument (``list[str]``)
        (["runs", "list", "--filter", "params.C = '1'", "--limit", "5", "--json"], "runs"),
        (["runs", "compare", "{run0}", "{run1}", "--json"], "runs"),
    ],
)
def test_a_store_reading_command_loads_only_its_own_group(
    tmp_path: Path, command: list[str], group: str
) -> None:
    """A store-reading command in a new process answers without importing the other
    command groups' modules, the remote client, httpx or pydantic (its options are converted
    without Typer's pydantic adapters; see cli/_coerce.py)."""
    with shipyard.init_project(tmp_path / "p", actor="ann") as project:
        runs = {}
        for i in range(2):
            with project.start_run("e") as run:
                run.log_params({"C": i})
            runs[f"run{i}"] = run.id
    command = [c.format(**runs) for c in command]
    last, stderr = _probe(PROBE, tmp_path / "p", *command)
    assert last["code"] == 0, stderr
    loaded = set(last["modules"])
    assert f"shipyard.cli.{group}" in loaded
    others = {"shipyard.cli.data", "shipyard.cli.models", "shipyard.cli.monitor"}
    assert not others & loaded
    assert not {"httpx", "shipyard.client.project", "shipyard.client.connection"} & loaded
    assert "pydantic" not in loaded


def test_help_lists_every_command_and_group(cli: Cli) -> None:
    """The top-level help lists the commands of this module and every lazily built group."""
    from shipyard.cli.main import LAZY_COMMANDS, LAZY_GROUPS

    out = cli("--help").stdout
    rows = out.split("Commands:")[1].splitlines()
    # A command's name starts its row; its summary's further lines are indented past it.
    listed = {line.split()[0] for line in rows if line.startswith("  ") and line[2] != " "}
    expected = {name for name, _, _ in LAZY_COMMANDS + LAZY_GROUPS}
    assert expected | {"init", "verify", "gc", "demo"} == listed


def test_a_lazily_built_group_has_the_commands_other_modules_add(cli: Cli) -> None:
    """``models`` is built on first use, with the governance commands cli/governance.py adds
    to it (card, promote, approve…), as when every module was imported at start."""
    out = cli("models", "--help").stdout
    for command in ("card", "promote", "approve", "evaluate", "rollback"):
        assert f"  {command} " in out


FREEZE_PROBE = """
import gc, json, sys
from shipyard.cli import entry
sys.argv = ["shipyard", "--project", sys.argv[1], "users", "whoami", "--json"]
try:
    getattr(entry, ENTRY)()
except SystemExit:
    pass
print(json.dumps({"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()[0]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["main", "run"])
def test_only_a_process_of_its_own_freezes_what_start_up_made(tmp_path: Path, entry: str) -> None:
    """The console script (``main``) keeps what start-up loaded out of the collector's sight
    once the project is open, and collects at the usual pace again; a command run inside
    another program (``run``, as the tests do) leaves that program's collector as it was,
    so the projects it closed are still collected (their database files do not stay open)."""
    shipyard.init_project(tmp_path / "p", actor="ann").close()
    last, _ = _probe(FREEZE_PROBE.replace("ENTRY", repr(entry)), tmp_path / "p")
    assert last["threshold"] == 700, "the collector's usual pace is back"
    assert (last["frozen"] > 0) is (entry == "main")
