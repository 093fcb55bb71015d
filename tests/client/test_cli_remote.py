"""The CLI through a team server: with SHIPYARD_SERVER and SHIPYARD_TOKEN set (or after
`shipyard login`), commands print the same JSON and end with the same exit codes as on the
local project; what the API cannot do yet is refused by name; the token is never printed."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.cli.main import run as cli_run
from shipyard.client.login import login_path
from shipyard.project import Project
from tests.server.conftest import Team


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def doc(self) -> Any:
        return json.loads(self.out)


Shipyard = Callable[..., Result]


@pytest.fixture
def shipyard(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Shipyard:
    """Run ``shipyard ARGS`` in this process as the console script does (error mapping and
    exit codes included), with ``env`` set for the call only."""

    def call(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        capsys.readouterr()
        with monkeypatch.context() as m:
            for key, value in (env or {}).items():
                m.setenv(key, value)
            m.setattr(sys, "argv", ["shipyard", *args])
            if stdin is not None:
                import io

                m.setattr(sys, "stdin", io.StringIO(stdin))
            with pytest.raises(SystemExit) as done:
                cli_run()
        captured = capsys.readouterr()
        return Result(int(done.value.code or 0), captured.out, captured.err)

    return call


def _remote(url: str, team: Team, role: str = "admin") -> dict[str, str]:
    return {"SHIPYARD_SERVER": url, "SHIPYARD_TOKEN": team.tokens[role]}


def test_commands_print_the_same_json_locally_and_through_the_server(
    shipyard: Shipyard, project: Project, team: Team, live_server: str
) -> None:
    """users list, users whoami and models versions give the same JSON document with
    --project (local) and with SHIPYARD_SERVER (remote)."""
    from tests.governance.test_governance_service import MODEL, populate

    populate(project, evaluate=False)
    local = ["--project", str(project.root)]
    for args in (["users", "list", "--json"], ["models", "versions", MODEL, "--json"]):
        here = shipyard(*local, *args)
        there = shipyard(*args, env=_remote(live_server, team))
        assert (here.code, there.code) == (0, 0), there.err
        assert there.doc == here.doc
    me = shipyard("users", "whoami", "--json", env=_remote(live_server, team, "contributor"))
    assert (me.doc["name"], me.doc["role"]) == ("carol", "contributor")


def test_nan_and_infinite_metrics_show_the_same_through_the_server(
    shipyard: Shipyard, project: Project, team: Team, live_server: str
) -> None:
    """runs list, runs show and runs compare print NaN, inf and -inf through the server as on
    the local project (not empty cells), and their --json is the same document."""
    nan, inf = float("nan"), float("inf")
    with project.start_run("sweep", name="diverged") as run:
        run.log_metrics({"loss": nan, "up": inf, "down": -inf})
    with project.start_run("sweep", name="fine") as other:
        other.log_metrics({"loss": 0.25, "up": 1.0, "down": -1.0})
    local = ["--project", str(project.root)]
    remote = _remote(live_server, team)
    for args in (
        ["runs", "list", "--experiment", "sweep"],
        ["runs", "show", run.id],
        ["runs", "compare", run.id, other.id],
    ):
        here, there = shipyard(*local, *args), shipyard(*args, env=remote)
        assert (here.code, there.code) == (0, 0), there.err
        assert there.out == here.out
        assert "NaN" in there.out and "-inf" in there.out
        here, there = shipyard(*local, *args, "--json"), shipyard(*args, "--json", env=remote)
        assert there.doc == here.doc
    shown = shipyard("runs", "show", run.id, "--json", env=remote).doc["metrics"]
    assert shown == {"loss": "NaN", "up": "inf", "down": "-inf"}


def test_a_check_that_fails_exits_3_with_the_same_report(
    shipyard: Shipyard, project: Project, team: Team, live_server: str
) -> None:
    """shipyard check of an unapproved version exits 3 in both modes, with the same checks."""
    from tests.governance.test_governance_service import V1, populate

    populate(project, evaluate=False)
    here = shipyard("--project", str(project.root), "check", V1, "--json")
    there = shipyard("check", V1, "--json", env=_remote(live_server, team))
    assert (here.code, there.code) == (3, 3)
    assert there.doc == here.doc
    assert there.doc["passed"] is False


def test_errors_keep_their_code_message_and_exit_code(
    shipyard: Shipyard, project: Project, team: Team, live_server: str
) -> None:
    """A missing model and a role refusal end with exit 1 and the service's own message and
    JSON error code, as locally."""
    missing = ["models", "show", "nope@1", "--json"]
    here = shipyard("--project", str(project.root), *missing)
    there = shipyard(*missing, env=_remote(live_server, team))
    assert (here.code, there.code) == (1, 1)
    assert there.doc == here.doc
    assert there.doc["error"] == "not_found"
    denied = shipyard(
        "users", "add", "eve", "--role", "admin", "--json", env=_remote(live_server, team, "viewer")
    )
    assert denied.code == 1
    assert denied.doc["error"] == "permission"
    assert "vic" in denied.err


def test_a_command_the_server_cannot_run_is_refused_by_name(
    shipyard: Shipyard, team: Team, live_server: str
) -> None:
    """A command that needs the project's stores says which command and how to run it,
    instead of a traceback."""
    result = shipyard("data", "split", "credit@1", env=_remote(live_server, team))
    assert result.code == 1
    assert "`shipyard data split` is not available through the shipyard server" in result.err
    assert "Traceback" not in result.err


def test_an_unreachable_server_is_named_and_the_token_never_shown(
    shipyard: Shipyard, team: Team
) -> None:
    """With nothing listening at SHIPYARD_SERVER the command fails with exit 1, naming the URL
    and the variable to check; the token appears nowhere."""
    env = {"SHIPYARD_SERVER": "http://127.0.0.1:9", "SHIPYARD_TOKEN": team.tokens["admin"]}
    result = shipyard("models", "list", "--json", env=env)
    assert result.code == 1
    assert "cannot reach the shipyard server at http://127.0.0.1:9" in result.err
    assert "check SHIPYARD_SERVER" in result.err
    assert team.tokens["admin"] not in result.out + result.err


def test_a_bad_token_is_unauthenticated_and_not_echoed(
    shipyard: Shipyard, live_server: str
) -> None:
    """A wrong token ends with exit 1 and the unauthenticated code; it is not printed."""
    secret = "shp_0000000000000000_notarealsecret"
    env = {"SHIPYARD_SERVER": live_server, "SHIPYARD_TOKEN": secret}
    result = shipyard("models", "list", "--json", env=env)
    assert result.code == 1
    assert result.doc["error"] == "unauthenticated"
    assert secret not in result.out + result.err


def test_server_without_a_token_says_how_to_get_one(shipyard: Shipyard, live_server: str) -> None:
    """SHIPYARD_SERVER alone (no token, no login) is refused with the two ways to give one."""
    result = shipyard("models", "list", env={"SHIPYARD_SERVER": live_server})
    assert result.code == 1
    assert "set SHIPYARD_TOKEN or run `shipyard login" in result.err


# -- login --------------------------------------------------------------------------------------


def test_login_stores_the_server_and_token_privately_and_logout_forgets_them(
    shipyard: Shipyard, team: Team, live_server: str
) -> None:
    """shipyard login checks the token, writes the login file with mode 0600 and prints the
    user, never the token; later commands go to the server without any variable; logout
    removes the file and commands are local again."""
    token = team.tokens["approver"]
    result = shipyard("login", live_server, "--token", token, "--json")
    assert result.code == 0, result.err
    assert token not in result.out + result.err
    assert (result.doc["user"], result.doc["server"]) == ("abe", live_server)
    path = login_path()
    assert Path(result.doc["config"]) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"server": live_server, "token": token}
    me = shipyard("users", "whoami", "--json")
    assert me.doc["name"] == "abe"
    assert shipyard("logout").code == 0
    assert not path.exists()
    assert shipyard("users", "whoami", "--json").doc["error"] == "no_project"


def test_login_reads_the_token_from_stdin(shipyard: Shipyard, team: Team, live_server: str) -> None:
    """Without --token the token is read from stdin (for scripts), and not printed."""
    token = team.tokens["viewer"]
    result = shipyard("login", live_server, stdin=token + "\n")
    assert result.code == 0, result.err
    assert "as vic (viewer)" in result.out
    assert token not in result.out + result.err


def test_login_with_a_bad_token_stores_nothing(shipyard: Shipyard, live_server: str) -> None:
    """A token the server refuses is not stored: exit 1, no login file."""
    result = shipyard("login", live_server, "--token", "shp_0000000000000000_nope")
    assert result.code == 1
    assert not login_path().exists()
