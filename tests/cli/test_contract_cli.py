"""The `shipyard contract` commands and contract checks in `shipyard data add / validate /
split`, as a user runs them: exit codes, JSON documents and what ends up stored."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from tests.cli.conftest import Cli

CONTRACT_YAML = """\
description: Loan applicants
columns:
  id: {type: int, unique: true, nullable: false}
  age: {type: int, min: 18, max: 100}
  city: {type: category, allowed: [Oslo, Lima, Pune]}
checks:
  row_count: {min: 100}
"""


def _csv(path: Path, rows: int = 300, *, old: int = 0, elsewhere: int = 0) -> Path:
    """``rows`` applicants; the first ``old`` are 150 years old, the last ``elsewhere`` live
    in Atlantis."""
    pl.DataFrame(
        {
            "id": list(range(1, rows + 1)),
            "age": [150 if i < old else 20 + i % 60 for i in range(rows)],
            "city": [
                "Atlantis" if i >= rows - elsewhere else ["Oslo", "Lima", "Pune"][i % 3]
                for i in range(rows)
            ],
        }
    ).write_csv(path)
    return path


def _contract(cli: Cli, root: Path, name: str = "applicants", text: str = CONTRACT_YAML) -> None:
    path = root / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    res = cli("contract", "add", name, path)
    assert res.code == 0, res.stderr


def _artifacts(root: Path) -> tuple[list[str], list[str]]:
    """The blob files and staging files of a CLI project."""
    store = root / ".shipyard" / "artifacts"
    blobs = sorted(p.name for p in (store / "blobs").rglob("*") if p.is_file())
    return blobs, sorted(p.name for p in (store / "tmp").iterdir())


# -- infer and add ----------------------------------------------------------------------------


def test_inferred_contract_is_accepted_and_its_data_passes(cli: Cli, cli_project: Path) -> None:
    """`contract infer FILE -o c.yaml` writes YAML that `contract add` accepts and that the
    same data passes, in `data add` and in `data validate --json` (exit 0)."""
    data = _csv(cli_project / "batch.csv")
    res = cli("contract", "infer", data, "-o", cli_project / "c.yaml")
    assert res.code == 0, res.stderr
    assert "wrote a contract for 3 columns" in res.stdout
    spec = yaml.safe_load((cli_project / "c.yaml").read_text(encoding="utf-8"))
    assert set(spec["columns"]) == {"id", "age", "city"}
    added = cli("contract", "add", "applicants", cli_project / "c.yaml", "--json")
    assert added.code == 0, added.stderr
    doc = added.json()
    assert (doc["ref"], doc["version"], doc["created"]) == ("applicants@1", 1, True)
    assert doc["spec"]["columns"]["id"]["unique"] is True
    stored = cli("data", "add", "credit", data, "--contract", "applicants", "--json")
    assert stored.code == 0, stored.stderr
    assert (stored.json()["status"], stored.json()["contract"]) == ("valid", "applicants@1")
    checked = cli("data", "validate", "credit@1", "--contract", "applicants", "--json")
    assert checked.code == 0, checked.stderr
    assert checked.json() == {"passed": True, "rows": 300, "failures": []}


def test_contract_add_of_identical_content_makes_no_version(cli: Cli, cli_project: Path) -> None:
    """Adding the same contract file twice reports it unchanged and keeps one version."""
    _contract(cli, cli_project)
    res = cli("contract", "add", "applicants", cli_project / "applicants.yaml")
    assert res.code == 0
    assert "unchanged: identical content is already contract applicants@1" in res.stdout
    assert len(cli("contract", "versions", "applicants", "--json").json()) == 1


def test_contract_add_of_an_older_versions_content_makes_it_the_latest(
    cli: Cli, cli_project: Path
) -> None:
    """Going back to earlier content: a file identical to @1 while @2 is the latest is a new
    version, @3, the one in force; only content identical to the latest is "unchanged"."""
    _contract(cli, cli_project)
    _contract(cli, cli_project, text=CONTRACT_YAML.replace("min: 100", "min: 200"))
    (cli_project / "first.yaml").write_text(CONTRACT_YAML, encoding="utf-8")
    back = cli("contract", "add", "applicants", cli_project / "first.yaml", "--json")
    assert back.code == 0, back.stderr
    assert (back.json()["ref"], back.json()["created"]) == ("applicants@3", True)
    shown = cli("contract", "show", "applicants", "--json").json()
    assert (shown["ref"], shown["spec"]["checks"]["row_count"]) == ("applicants@3", {"min": 100})
    again = cli("contract", "add", "applicants", cli_project / "first.yaml")
    assert "unchanged: identical content is already contract applicants@3" in again.stdout
    # @1 and @3 hold one content: its digest names the latest of them, not "several versions".
    digest = back.json()["digest"].split(":", 1)[1]
    for given in (digest, digest[:12]):
        by_digest = cli("contract", "show", f"applicants@{given}", "--json")
        assert by_digest.code == 0, by_digest.stderr
        assert by_digest.json()["ref"] == "applicants@3"


def test_invalid_contract_file_exits_1_listing_every_problem(cli: Cli, cli_project: Path) -> None:
    """A broken contract file exits 1 with every problem on stderr and registers nothing."""
    bad = cli_project / "bad.yaml"
    bad.write_text("columns:\n  id: {type: integer}\n  age: {type: int, min: 9, max: 1}\n")
    res = cli("contract", "add", "applicants", bad)
    assert res.code == 1
    assert "2 problems in contract" in res.stderr
    assert "did you mean 'int'" in res.stderr and "min 9 is greater than max 1" in res.stderr
    assert cli("contract", "list", "--json").json() == []


def test_viewer_cannot_add_or_bind_contracts(cli: Cli, cli_project: Path) -> None:
    """An unregistered user is a viewer: `contract add` and `contract bind` exit 1, store
    nothing and say which role is needed."""
    _contract(cli, cli_project)
    other = cli_project / "other.yaml"
    other.write_text(CONTRACT_YAML.replace("max: 100", "max: 60"), encoding="utf-8")
    res = cli("contract", "add", "applicants", other, user="mallory")
    assert res.code == 1 and "viewer" in res.stderr and "contributor" in res.stderr
    res = cli("contract", "bind", "--new", "credit", "applicants", user="mallory")
    assert res.code == 1 and "viewer" in res.stderr
    # The user stays mallory until changed; alice sees nothing new.
    listed = cli("contract", "list", "--json", user="alice").json()
    assert [(c["name"], c["latest"], c["bound_to"]) for c in listed] == [("applicants", 1, [])]


# -- validate ---------------------------------------------------------------------------------


def test_validate_json_is_the_report_and_exits_3_on_failure(cli: Cli, cli_project: Path) -> None:
    """`data validate --json` prints exactly {passed, rows, failures} with per-check fields and
    exits 3 when the data fails."""
    _contract(cli, cli_project)
    assert cli("data", "add", "credit", _csv(cli_project / "b.csv", old=4, elsewhere=2)).code == 0
    res = cli("data", "validate", "credit@1", "--contract", "applicants@1", "--json")
    assert res.code == 3
    doc = res.json()
    assert set(doc) == {"passed", "rows", "failures"}
    assert (doc["passed"], doc["rows"]) == (False, 300)
    for failure in doc["failures"]:
        assert set(failure) == {"column", "check", "failed_rows", "examples", "message"}
    got = {(f["column"], f["check"]): (f["failed_rows"], f["examples"]) for f in doc["failures"]}
    assert got == {("age", "max"): (4, [150]), ("city", "allowed"): (2, ["Atlantis"])}
    shown = cli("data", "show", "credit@1", "--json").json()
    assert (shown["status"], shown["contract"]) == ("invalid", "applicants@1")
    assert shown["validation"] == doc


def test_validate_without_a_contract_points_at_contract_bind(cli: Cli, cli_project: Path) -> None:
    """`data validate` of a dataset with no bound contract exits 1 and says how to bind one."""
    assert cli("data", "add", "credit", _csv(cli_project / "b.csv")).code == 0
    res = cli("data", "validate", "credit@1")
    assert res.code == 1
    assert "shipyard contract bind credit CONTRACT" in res.stderr


# -- add with a contract ----------------------------------------------------------------------


def test_add_of_a_failing_batch_exits_3_shows_the_report_and_stores_nothing(
    cli: Cli, cli_project: Path
) -> None:
    """`data add --contract` of a bad batch exits 3, prints the report table on stderr and
    stores no version, blob or staging file."""
    _contract(cli, cli_project)
    before = _artifacts(cli_project)
    res = cli(
        "data", "add", "credit", _csv(cli_project / "b.csv", 60, old=3), "--contract", "applicants"
    )
    assert res.code == 3
    assert res.stdout == ""
    assert "validation against applicants@1: FAILED on 60 rows" in res.stderr
    for text in ("age", "max", "row_count", "(dataset)", "150", "nothing was stored"):
        assert text in res.stderr
    assert cli("data", "list", "--json").json() == []
    assert _artifacts(cli_project) == before


def test_add_of_a_failing_batch_with_json_prints_one_error_document(
    cli: Cli, cli_project: Path
) -> None:
    """With --json a rejected batch exits 3 and stdout is one JSON error carrying the report."""
    _contract(cli, cli_project)
    data = _csv(cli_project / "b.csv", 300, elsewhere=4)
    res = cli("data", "add", "credit", data, "--contract", "applicants", "--json")
    assert res.code == 3
    doc = res.json()
    assert doc["error"] == "check_failed"
    assert doc["details"]["contract"] == "applicants@1"
    report = doc["details"]["report"]
    assert (report["passed"], report["rows"]) == (False, 300)
    assert [(f["column"], f["check"], f["failed_rows"]) for f in report["failures"]] == [
        ("city", "allowed", 4)
    ]


def test_quarantine_exits_0_and_lists_the_quarantine_dataset(cli: Cli, cli_project: Path) -> None:
    """`--quarantine` stores the valid rows, reports how many were set aside, and `data list`
    shows NAME.quarantine with the failing rows."""
    _contract(cli, cli_project)
    data = _csv(cli_project / "b.csv", 300, old=5, elsewhere=3)
    res = cli("data", "add", "credit", data, "--contract", "applicants", "--quarantine")
    assert res.code == 0, res.stderr
    assert "added credit@1: 292 rows" in res.stdout
    assert "quarantined 8 failing rows to credit.quarantine@1" in res.stdout
    listed = {d["name"]: d for d in cli("data", "list", "--json").json()}
    assert set(listed) == {"credit", "credit.quarantine"}
    assert (listed["credit"]["rows"], listed["credit"]["status"]) == (292, "valid")
    assert (listed["credit.quarantine"]["rows"], listed["credit.quarantine"]["status"]) == (
        8,
        "invalid",
    )
    aside = cli("data", "show", "credit.quarantine@1", "--json").json()
    assert aside["parents"] == ["credit@1"]
    assert "quarantine_reason" in aside["columns"] and "source_row" in aside["columns"]


def test_quarantine_is_reported_even_when_the_valid_rows_are_not_new(
    cli: Cli, cli_project: Path
) -> None:
    """If the valid rows of a batch are already stored, `data add --quarantine` still says how
    many rows it set aside and where."""
    _contract(cli, cli_project)
    good = _csv(cli_project / "good.csv", 300)
    assert cli("data", "add", "credit", good, "--contract", "applicants").code == 0
    mixed = pl.concat(
        [
            pl.read_csv(good),
            pl.DataFrame({"id": [301, 302], "age": [150, 150], "city": ["Oslo", "Lima"]}),
        ]
    )
    mixed.write_csv(cli_project / "mixed.csv")
    res = cli(
        "data",
        "add",
        "credit",
        cli_project / "mixed.csv",
        "--contract",
        "applicants",
        "--quarantine",
    )
    assert res.code == 0, res.stderr
    assert cli("data", "show", "credit.quarantine@1", "--json").json()["rows"] == 2
    assert "quarantined 2 failing rows to credit.quarantine@1" in res.stdout


def test_allow_invalid_stores_the_batch_marked_invalid(cli: Cli, cli_project: Path) -> None:
    """`--allow-invalid` exits 0 with status invalid, and `data show` names the failing check."""
    _contract(cli, cli_project)
    data = _csv(cli_project / "b.csv", 300, old=7)
    res = cli(
        "data", "add", "credit", data, "--contract", "applicants", "--allow-invalid", "--json"
    )
    assert res.code == 0, res.stderr
    doc = res.json()
    assert (doc["status"], doc["rows"], doc["contract"]) == ("invalid", 300, "applicants@1")
    assert doc["validation"]["failures"][0]["check"] == "max"
    shown = cli("data", "show", "credit@1")
    assert shown.code == 0
    assert "status: invalid (contract applicants@1)" in shown.stdout
    assert "validation against applicants@1: FAILED on 300 rows" in shown.stdout
    assert "7 rows above max 100" in shown.stdout


def test_quarantine_and_allow_invalid_together_is_a_usage_error(
    cli: Cli, cli_project: Path
) -> None:
    """Asking for both --quarantine and --allow-invalid exits 2 and stores nothing."""
    _contract(cli, cli_project)
    data = _csv(cli_project / "b.csv", old=1)
    res = cli(
        "data", "add", "credit", data, "--contract", "applicants", "--quarantine", "--allow-invalid"
    )
    assert res.code == 2
    assert "--quarantine" in res.stderr and "--allow-invalid" in res.stderr
    assert cli("data", "list", "--json").json() == []


def test_bound_contract_checks_data_add_without_naming_it(cli: Cli, cli_project: Path) -> None:
    """After `contract bind`, `data add` validates against it: bad data exits 3, good data is
    valid against the exact version."""
    _contract(cli, cli_project)
    assert cli("contract", "bind", "--new", "credit", "applicants").code == 0
    assert cli("data", "add", "credit", _csv(cli_project / "bad.csv", old=2)).code == 3
    res = cli("data", "add", "credit", _csv(cli_project / "good.csv"))
    assert res.code == 0, res.stderr
    assert "validated against applicants@1: valid" in res.stdout


# -- split ------------------------------------------------------------------------------------


def test_split_json_prints_every_part(cli: Cli, cli_project: Path) -> None:
    """`data split --fractions train=0.8,test=0.2 --seed 3 --json` prints both parts, new,
    with the spec recorded."""
    assert cli("data", "add", "credit", _csv(cli_project / "b.csv", 500)).code == 0
    res = cli(
        "data", "split", "credit@1", "--fractions", "train=0.8,test=0.2", "--seed", "3", "--json"
    )
    assert res.code == 0, res.stderr
    doc = res.json()
    assert list(doc) == ["train", "test"]
    assert (doc["train"]["ref"], doc["test"]["ref"]) == ("credit.train@1", "credit.test@1")
    assert (doc["train"]["rows"], doc["test"]["rows"]) == (400, 100)
    assert doc["train"]["created"] is True and doc["test"]["created"] is True
    assert doc["train"]["parents"] == ["credit@1"]
    assert doc["train"]["source"]["split"]["seed"] == 3
    assert doc["train"]["source"]["split"]["fractions"] == {"train": 0.8, "test": 0.2}


def test_split_replay_json_creates_nothing(cli: Cli, cli_project: Path) -> None:
    """`data split --replay NAME.train@1 --json` gives the same digests with created false."""
    assert cli("data", "add", "credit", _csv(cli_project / "b.csv", 500)).code == 0
    first = cli(
        "data", "split", "credit@1", "--fractions", "train=0.8,test=0.2", "--seed", "3", "--json"
    ).json()
    res = cli("data", "split", "--replay", "credit.train@1", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert list(doc) == ["train", "test"]
    for part in ("train", "test"):
        assert doc[part]["created"] is False
        assert (doc[part]["ref"], doc[part]["digest"]) == (
            first[part]["ref"],
            first[part]["digest"],
        )


def test_split_replay_of_a_plain_dataset_exits_1(cli: Cli, cli_project: Path) -> None:
    """Replaying a dataset that was not made by a split is an error (exit 1) saying so."""
    assert cli("data", "add", "credit", _csv(cli_project / "b.csv")).code == 0
    res = cli("data", "split", "--replay", "credit@1")
    assert res.code == 1
    assert "was not made by `shipyard data split`" in res.stderr


# -- list, show, versions, bind, unbind -------------------------------------------------------


def test_contract_list_show_versions_bind_unbind_json(cli: Cli, cli_project: Path) -> None:
    """The contract commands print one JSON document each, with versions, specs and
    bindings."""
    _contract(cli, cli_project)
    _contract(cli, cli_project, text=CONTRACT_YAML.replace("max: 100", "max: 60"))

    versions = cli("contract", "versions", "applicants", "--json")
    assert versions.code == 0
    assert [v["ref"] for v in versions.json()] == ["applicants@1", "applicants@2"]
    assert versions.json()[1]["spec"]["columns"]["age"]["max"] == 60

    bound = cli("contract", "bind", "--new", "credit", "applicants@1", "--json")
    assert bound.code == 0
    assert bound.json() == {"dataset": "credit", "contract": "applicants@1"}

    shown = cli("contract", "show", "applicants@1", "--json").json()
    assert (shown["ref"], shown["bound_to"]) == ("applicants@1", ["credit"])
    assert shown["spec"]["columns"]["age"] == {
        "type": "int",
        "nullable": True,
        "min": 18,
        "max": 100,
    }
    latest = cli("contract", "show", "applicants", "--json").json()
    assert (latest["ref"], latest["bound_to"]) == ("applicants@2", [])

    listed = cli("contract", "list", "--json").json()
    assert [(c["name"], c["latest"], c["columns"]) for c in listed] == [("applicants", 2, 3)]

    unbound = cli("contract", "unbind", "credit", "--json")
    assert unbound.code == 0
    assert unbound.json() == {"dataset": "credit", "contract": None}
    assert cli("contract", "show", "applicants@1", "--json").json()["bound_to"] == []
    again = cli("contract", "unbind", "credit", "--json")
    assert again.code == 1
    assert again.json()["error"] == "not_found"


def test_contract_show_text_has_the_yaml_and_the_bindings(cli: Cli, cli_project: Path) -> None:
    """`contract show` prints the version, its bindings and the contract as YAML that parses
    back to the same rules."""
    _contract(cli, cli_project)
    cli("contract", "bind", "--new", "credit", "applicants")
    res = cli("contract", "show", "applicants")
    assert res.code == 0
    assert "applicants@1" in res.stdout and "bound to: credit" in res.stdout
    body = res.stdout[res.stdout.index("description:") :]
    assert yaml.safe_load(body) == yaml.safe_load(CONTRACT_YAML) | {
        "columns": {
            "id": {"type": "int", "nullable": False, "unique": True},
            "age": {"type": "int", "nullable": True, "min": 18, "max": 100},
            "city": {"type": "category", "nullable": True, "allowed": ["Oslo", "Lima", "Pune"]},
        }
    }


def test_unknown_contract_is_exit_1_with_a_hint(cli: Cli, cli_project: Path) -> None:
    """Showing or binding a contract that does not exist exits 1 pointing at `contract list`."""
    for args in (("contract", "show", "nope"), ("contract", "bind", "credit", "nope")):
        res = cli(*args)
        assert res.code == 1
        assert "no contract 'nope'; see `shipyard contract list`" in res.stderr


def _late_float_csv(path: Path, rows: int = 12_500) -> Path:
    """An ``amount`` column of whole numbers, except row 12,001, which holds 1.5: past the
    first 10,000 rows that polars guesses column types from."""
    lines = ["id,amount"] + [f"{i},{1.5 if i == 12_001 else i % 97}" for i in range(1, rows + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_contract_infer_reads_every_file_data_add_accepts(cli: Cli, cli_project: Path) -> None:
    """A CSV whose int-looking column holds 1.5 at row 12,001 is stored by `data add`, and
    `contract infer` on it works too: the column is a float column, and the data passes the
    inferred contract."""
    data = _late_float_csv(cli_project / "late.csv")
    stored = cli("data", "add", "ledger", data, "--json")
    assert stored.code == 0, stored.stderr
    res = cli("contract", "infer", data, "-o", cli_project / "c.yaml", "--json")
    assert res.code == 0, res.stderr
    columns = res.json()["contract"]["columns"]
    assert columns["amount"]["type"] == "float"
    assert (columns["amount"]["min"], columns["amount"]["max"]) == (0, 96)
    assert columns["id"]["type"] == "int"
    assert cli("contract", "add", "ledger", cli_project / "c.yaml").code == 0
    checked = cli("data", "validate", "ledger@1", "--contract", "ledger", "--json")
    assert checked.code == 0, checked.stderr
    assert checked.json()["passed"] is True


def test_contract_infer_on_a_broken_file_says_so_in_one_line(cli: Cli, cli_project: Path) -> None:
    """A file that is not what its extension says is reported as `data add` reports it: one
    line naming the file, exit 1."""
    broken = cli_project / "broken.jsonl"
    broken.write_text('{"id": 1}\n{"id": \n', encoding="utf-8")
    added = cli("data", "add", "events", broken)
    res = cli("contract", "infer", broken)
    assert res.code == added.code == 1
    assert f"{broken}: not a valid JSON Lines file" in res.stderr
    assert f"{broken}: not a valid JSON Lines file" in added.stderr
    message = res.stderr.strip()
    assert "\n" not in message, message
