"""``shipyard monitor drift`` and ``monitor reference`` on the served project of conftest.py
(SQLite, then PostgreSQL): one JSON document or a table per column, exit 3 on dataset drift,
the HTML report refusing to replace a file without --force, and errors that name the fix."""

from __future__ import annotations

from pathlib import Path

from shipyard.project import Project
from tests.cli.conftest import Cli, Result, cli

__all__ = ["cli"]  # the fixture, imported for this module's tests


def drift(cli: Cli, served: Project, *args: str | Path) -> Result:
    return cli("--project", served.root, "monitor", "drift", *args)


def test_json_of_a_drifting_window_and_exit_3(cli: Cli, served: Project) -> None:
    """A drifting deployment window prints one JSON document, the report with its columns
    and dataset verdict, and exits 3."""
    res = drift(cli, served, "m@production", "--window", "1h", "--json")
    assert res.code == 3, res.stderr
    doc = res.json()
    assert (doc["verdict"], doc["reference"], doc["drifted_columns"]) == (
        "drift",
        "train@1",
        ["x1"],
    )
    assert [c["column"] for c in doc["columns"]] == ["x1", "x2"]
    assert {"method", "statistic", "threshold", "verdict"} <= set(doc["columns"][0])


def test_a_table_per_column_and_exit_0_without_drift(cli: Cli, served: Project) -> None:
    """Without drift the command prints a table (column, method, statistic, threshold,
    verdict) and the dataset verdict, and exits 0; too few rows read "insufficient data"."""
    res = drift(cli, served, "train@1", "--current", "train@1")
    assert res.code == 0, res.stderr
    assert "statistic" in res.stdout and "threshold" in res.stdout
    assert "dataset: no drift (0 of 4 columns drifted" in res.stdout
    small = drift(cli, served, "train@1", "--current", "small@1")
    assert small.code == 0, small.stderr
    assert "insufficient data (50 rows)" in small.stdout
    assert "dataset: insufficient data (50 current rows" in small.stdout


def test_html_report_is_written_and_replaced_only_with_force(
    cli: Cli, served: Project, tmp_path: Path
) -> None:
    """--html writes a standalone report naming the drifted column; a second run refuses
    to replace it (exit 1, file unchanged) until --force."""
    out = tmp_path / "report.html"
    res = drift(cli, served, "train@1", "--current", "shifted@1", "--html", out)
    assert res.code == 0, res.stderr  # one column of four drifted: the dataset does not
    assert f"report written to {out}" in res.stdout
    first = out.read_text(encoding="utf-8")
    assert first.startswith("<!doctype html>") and "x1" in first and "<script" not in first

    again = drift(cli, served, "m@production", "--window", "1h", "--html", out)
    assert again.code == 1 and "--force" in again.stderr
    assert out.read_text(encoding="utf-8") == first
    forced = drift(cli, served, "m@production", "--window", "1h", "--html", out, "--force")
    assert forced.code == 3, forced.stderr
    assert out.read_text(encoding="utf-8") != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_errors_name_the_fix(cli: Cli, served: Project) -> None:
    """An unknown model, a model without training data, a window no deployment serves and
    a missing current are errors (exit 1, or 2 for usage) whose message says what to do."""
    unknown = drift(cli, served, "nothing@production", "--window", "1h")
    assert unknown.code == 1 and "no model or dataset named 'nothing'" in unknown.stderr
    bare = drift(cli, served, "model:bare@1", "--current", "train@1", "--json")
    assert bare.code == 1 and "--reference" in bare.json()["message"]
    nowhere = drift(cli, served, "model:bare@1", "--window", "1h", "--reference", "train@1")
    assert nowhere.code == 1 and "no deployment serves bare@1" in nowhere.stderr
    neither = drift(cli, served, "train@1")
    assert neither.code == 2 and "--current" in neither.stderr
    bad_window = drift(cli, served, "m@production", "--window", "soon")
    assert bad_window.code == 2


def test_reference_shows_the_stored_reference(cli: Cli, served: Project) -> None:
    """`monitor reference` shows each column of the stored reference, and --json gives the
    stored document."""
    res = cli("--project", served.root, "monitor", "reference", "train@1")
    assert res.code == 0, res.stderr
    assert "drift reference of train@1 (400 rows)" in res.stdout
    assert "numeric" in res.stdout and "categorical" in res.stdout
    doc = cli("--project", served.root, "monitor", "reference", "train@1", "--json").json()
    assert doc["source"] == "train@1" and set(doc["columns"]) == {"x1", "x2", "c", "y"}
