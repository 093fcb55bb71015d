"""The `shipyard data`, `users`, `audit`, `verify` and `init` commands as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.cli.conftest import Cli


def _csv(path: Path, rows: int = 50, offset: int = 0) -> Path:
    pl.DataFrame(
        {
            "id": list(range(offset, offset + rows)),
            "age": [20 + (i % 50) for i in range(rows)],
            "city": [["a", "b", "c"][i % 3] for i in range(rows)],
        }
    ).write_csv(path)
    return path


def test_add_json_has_the_documented_fields(cli: Cli, cli_project: Path) -> None:
    """`data add --json` prints one document with name, version, digest, rows, columns, created."""
    res = cli("data", "add", "credit", _csv(cli_project / "a.csv"), "-m", "first", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["name"] == "credit" and doc["version"] == 1
    assert doc["digest"].startswith("blake3:") and len(doc["digest"]) == 71
    assert doc["rows"] == 50 and doc["columns"] == ["id", "age", "city"]
    assert doc["created"] is True and doc["message"] == "first"


def test_re_adding_identical_content_creates_nothing(cli: Cli, cli_project: Path) -> None:
    """Adding the same file twice answers created=false with the first version."""
    f = _csv(cli_project / "a.csv")
    first = cli("data", "add", "credit", f, "--json").json()
    again = cli("data", "add", "credit", f, "--json").json()
    assert again["created"] is False
    assert again["version"] == first["version"] and again["digest"] == first["digest"]
    versions = cli("data", "versions", "credit", "--json").json()
    assert len(versions) == 1


def test_list_versions_show_get_diff_tag_lineage(cli: Cli, cli_project: Path) -> None:
    """The read commands show what was added, in tables and in JSON."""
    cli("data", "add", "credit", _csv(cli_project / "a.csv"), "-t", "team=risk")
    res = cli("data", "add", "credit", _csv(cli_project / "b.csv", 80), "--parent", "credit@1")
    assert res.code == 0, res.stderr
    listed = cli("data", "list", "--json").json()
    assert listed[0]["name"] == "credit" and listed[0]["latest"] == 2
    assert "credit" in cli("data", "list").stdout

    show = cli("data", "show", "credit@1", "--json").json()
    assert show["tags"] == {"team": "risk"}
    assert show["profile"]["columns"]["age"]["min"] == 20
    assert show["profile"]["columns"]["city"]["distinct"] == 3
    text = cli("data", "show", "credit").stdout
    assert "credit@2" in text and "parents: credit@1" in text

    out = cli_project / "out.csv"
    assert cli("data", "get", "credit@1", "-o", out).code == 0
    assert pl.read_csv(out).height == 50

    diff = cli("data", "diff", "credit@1", "credit@2", "--json").json()
    assert diff["rows"] == {"from": 50, "to": 80, "change": 30}

    tagged = cli("data", "tag", "credit@2", "stage=gold", "--json").json()
    assert tagged["tags"] == {"stage": "gold"}

    lineage = cli("data", "lineage", "credit@1", "--json").json()
    assert lineage["downstream"][0]["child"] == "dataset:credit@2"


def test_bad_input_exits_1_with_the_file_named(cli: Cli, cli_project: Path) -> None:
    """A malformed CSV gives exit 1, a message naming the file, and writes nothing."""
    bad = cli_project / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    before = cli("audit", "log", "--json").json()
    res = cli("data", "add", "credit", bad)
    assert res.code == 1
    assert "bad.csv" in res.stderr and "Traceback" not in res.stderr
    assert cli("audit", "log", "--json").json() == before
    assert cli("data", "list", "--json").json() == []


def test_json_errors_are_one_document(cli: Cli, cli_project: Path) -> None:
    """Under --json an error still prints exactly one JSON document on stdout."""
    res = cli("data", "show", "credit@7", "--json")
    assert res.code == 1
    assert res.json()["error"] == "not_found"


def test_usage_errors_exit_2(cli: Cli, cli_project: Path) -> None:
    """A malformed tag or an unknown command is a usage error (exit 2)."""
    f = _csv(cli_project / "a.csv")
    assert cli("data", "add", "credit", f, "--tag", "novalue").code == 2
    assert cli("data", "frobnicate").code == 2


def test_viewer_cannot_add_data(cli: Cli, cli_project: Path) -> None:
    """An unknown user is a viewer: adding data fails with exit 1 and writes nothing."""
    f = _csv(cli_project / "a.csv")
    res = cli("data", "add", "credit", f, user="mallory")
    assert res.code == 1
    assert "viewer" in res.stderr and "contributor" in res.stderr
    assert cli("data", "list", "--json", user="alice").json() == []


def test_users_add_and_list(cli: Cli, cli_project: Path) -> None:
    """An admin adds a contributor, who can then add data; users list shows both."""
    assert cli("users", "add", "bob", "--role", "contributor").code == 0
    f = _csv(cli_project / "a.csv")
    assert cli("data", "add", "credit", f, user="bob").code == 0
    users = {u["name"]: u["role"] for u in cli("users", "list", "--json").json()}
    assert users == {"alice": "admin", "bob": "contributor"}
    denied = cli("users", "add", "carol", "--role", "admin", user="bob")
    assert denied.code == 1 and "admin" in denied.stderr


def test_audit_verify_detects_tampering(cli: Cli, cli_project: Path) -> None:
    """`audit verify --json` is ok until an event is edited, then names the first bad seq."""
    cli("data", "add", "credit", _csv(cli_project / "a.csv"))
    ok = cli("audit", "verify", "--json")
    assert ok.code == 0 and ok.json()["ok"] is True and ok.json()["events"] >= 3
    import sqlite3

    con = sqlite3.connect(cli_project / ".shipyard" / "shipyard.db")
    con.execute("UPDATE audit_events SET actor = 'eve' WHERE seq = 2")
    con.commit()
    con.close()
    bad = cli("audit", "verify", "--json")
    assert bad.code == 3
    assert bad.json() == {**bad.json(), "ok": False, "first_bad_seq": 2}


def test_verify_exits_3_on_a_corrupted_blob(cli: Cli, cli_project: Path) -> None:
    """`shipyard verify` names the dataset that owns a corrupted blob and exits 3."""
    doc = cli("data", "add", "credit", _csv(cli_project / "a.csv"), "--json").json()
    assert cli("verify", "--json").json()["ok"] is True
    hx = doc["digest"].split(":")[1]
    blob = cli_project / ".shipyard" / "artifacts" / "blobs" / hx[:2] / hx[2:]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    res = cli("verify", "--json")
    assert res.code == 3
    corrupt = res.json()["corrupt"]
    assert corrupt[0]["digest"] == doc["digest"]
    assert "credit@1" in corrupt[0]["owners"][0]
    read = cli("data", "get", "credit@1", "-o", cli_project / "x.parquet")
    assert read.code == 3 and "credit@1" in read.stderr and hx in read.stderr


def test_file_tree_round_trip(cli: Cli, cli_project: Path) -> None:
    """A folder is stored as a file tree and restored byte-identical."""
    src = cli_project / "images"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(os.urandom(5000))
    (src / "sub" / "b.txt").write_text("hello\n")
    doc = cli("data", "add", "imgs", src, "--json").json()
    assert doc["kind"] == "files" and doc["created"] is True
    dest = cli_project / "restored"
    assert cli("data", "get", "imgs@1", "-o", dest).code == 0
    assert (dest / "a.bin").read_bytes() == (src / "a.bin").read_bytes()
    assert (dest / "sub" / "b.txt").read_text() == "hello\n"


def test_project_discovery_and_override(
    cli: Cli, cli_project: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Commands find the project from a subfolder; --project works from anywhere."""
    sub = cli_project / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert cli("data", "list", "--json").code == 0
    monkeypatch.chdir(tmp_path)
    res = cli("data", "list")
    assert res.code == 1 and "shipyard init" in res.stderr
    assert cli("--project", cli_project, "data", "list", "--json").code == 0


def test_cli_start_does_not_import_heavy_libraries(cli_project: Path) -> None:
    """`shipyard --help` imports no heavy library and `data list` only SQLAlchemy
    (start-up stays fast)."""
    code = (
        "import sys; from shipyard.cli.main import run\n"
        "sys.argv=['shipyard', *sys.argv[1:]]\n"
        "try:\n    run()\nexcept SystemExit: pass\n"
        "heavy = [m for m in ('polars', 'pandas', 'pyarrow', 'alembic', 'sklearn', 'sqlalchemy',"
        " 'pandera', 'fsspec') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    env = dict(os.environ, SHIPYARD_USER="alice")
    expected = {"--help": "HEAVY []", "data list": "HEAVY ['sqlalchemy']"}
    for args, want in expected.items():
        out = subprocess.run(
            [sys.executable, "-c", code, *args.split()],
            capture_output=True,
            text=True,
            env=env,
            cwd=cli_project,
        )
        assert want in out.stderr, out.stderr
