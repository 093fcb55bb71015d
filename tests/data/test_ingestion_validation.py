"""Contracts checked at ingestion: a failing batch is rejected whole, quarantined row by row or
stored marked invalid, and nothing is lost or half-written on the way; ``validate`` checks a
stored version later. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.errors import CheckFailedError, InvalidInputError, NotFoundError
from shipyard.project import Project

StateOf = Callable[[Project], Any]

CONTRACT = {
    "description": "Loan applicants",
    "columns": {
        "id": {"type": "int", "unique": True, "nullable": False},
        "age": {"type": "int", "min": 18, "max": 100},
        "city": {"type": "category", "allowed": ["Oslo", "Lima", "Pune"]},
        "income": {"type": "float", "min": 0},
    },
    "checks": {"row_count": {"min": 100}},
}
CITIES = ["Oslo", "Lima", "Pune"]


def _batch(
    n: int, *, old: AbstractSet[int] = frozenset(), elsewhere: AbstractSet[int] = frozenset()
) -> pl.DataFrame:
    """``n`` applicants; rows in ``old`` are 150 years old, rows in ``elsewhere`` live in
    Atlantis. Every other value passes CONTRACT."""
    return pl.DataFrame(
        {
            "id": list(range(1, n + 1)),
            "age": [150 if i in old else 18 + i % 70 for i in range(n)],
            "city": ["Atlantis" if i in elsewhere else CITIES[i % 3] for i in range(n)],
            "income": [1000.0 + 7.5 * i for i in range(n)],
        }
    )


# The quarantine batch: 25 rows too old, 21 in Atlantis, row 200 both: 45 failing rows.
OLD = {i for i in range(1000) if i % 40 == 0}
ELSEWHERE = {i for i in range(1000) if i % 50 == 7} | {200}
FAILING = sorted(OLD | ELSEWHERE)


def _as_input(frame: pl.DataFrame, kind: str, tmp_path: Path) -> Any:
    """The frame as the user hands it over: in memory, or as a CSV or Parquet file."""
    if kind == "frame":
        return frame
    path = tmp_path / "inputs" / f"batch.{kind}"
    path.parent.mkdir(exist_ok=True)
    if kind == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


@pytest.fixture
def contract(project: Project) -> str:
    """CONTRACT registered as ``applicants@1``."""
    return project.contracts.add("applicants", CONTRACT).ref


def _staged(project: Project) -> list[Path]:
    return list(project.artifacts.staging_dir().iterdir())


# -- reject -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["frame", "csv", "parquet"])
def test_reject_reports_every_failure_and_writes_nothing(
    project: Project,
    contract: str,
    project_state: StateOf,
    tmp_path: Path,
    kind: str,
) -> None:
    """A failing batch raises CheckFailedError (exit code 3) whose report lists every failing
    column check and the dataset check, and leaves versions, events, blobs and the staging
    folder exactly as they were."""
    project.datasets.add("credit", _batch(200), contract=contract)
    # 60 rows (row_count wants 100), three too old, two in Atlantis, one without an id.
    bad = _batch(60, old={3, 9, 27}, elsewhere={4, 8}).with_columns(
        pl.when(pl.col("id") == 31).then(None).otherwise(pl.col("id")).alias("id")
    )
    data = _as_input(bad, kind, tmp_path)
    before = project_state(project)
    blobs = set(project.artifacts.iter_digests())
    with pytest.raises(CheckFailedError) as info:
        project.datasets.add("credit", data, contract=contract)
    err = info.value
    assert err.exit_code == 3
    assert "nothing was stored" in err.message
    assert err.details["contract"] == "applicants@1"
    report = err.details["report"]
    assert (report["passed"], report["rows"]) == (False, 60)
    found = {(f["column"], f["check"]): f for f in report["failures"]}
    assert set(found) == {
        ("id", "nullable"),
        ("age", "max"),
        ("city", "allowed"),
        (None, "row_count"),
    }
    assert found[("age", "max")]["failed_rows"] == 3
    assert found[("age", "max")]["examples"] == [150]
    assert found[("city", "allowed")]["failed_rows"] == 2
    assert found[("city", "allowed")]["examples"] == ["Atlantis"]
    assert found[("id", "nullable")]["failed_rows"] == 1
    assert found[(None, "row_count")]["examples"] == [60]
    assert project_state(project) == before
    assert [v.ref for v in project.datasets.versions("credit")] == ["credit@1"]
    assert set(project.artifacts.iter_digests()) == blobs
    assert _staged(project) == []
    if kind != "frame":
        assert Path(data).exists()  # the user's file is never consumed


def test_reject_is_the_default(project: Project, contract: str, project_state: StateOf) -> None:
    """Without ``on_invalid`` a failing batch for a new dataset is refused and the dataset does
    not appear."""
    before = project_state(project)
    with pytest.raises(CheckFailedError, match="rejected: the batch for dataset 'credit'"):
        project.datasets.add("credit", _batch(500, old={1}), contract=contract)
    assert project_state(project) == before
    assert project.datasets.list() == []
    with pytest.raises(NotFoundError):
        project.datasets.versions("credit")


def test_unknown_contract_at_add_is_not_found_and_writes_nothing(
    project: Project, project_state: StateOf
) -> None:
    """Naming a contract that does not exist stores nothing and leaves no staging file."""
    before = project_state(project)
    with pytest.raises(NotFoundError, match="no contract 'applicants'"):
        project.datasets.add("credit", _batch(200), contract="applicants")
    assert project_state(project) == before
    assert _staged(project) == []


# -- quarantine -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["frame", "csv", "parquet"])
def test_quarantine_keeps_valid_rows_and_sets_failing_rows_aside(
    project: Project, contract: str, tmp_path: Path, kind: str
) -> None:
    """With quarantine the valid rows become the new version and the failing rows become
    ``NAME.quarantine`` with their position and the checks they failed; together they hold
    exactly the input rows."""
    batch = _batch(1000, old=OLD, elsewhere=ELSEWHERE)
    v = project.datasets.add(
        "credit", _as_input(batch, kind, tmp_path), contract=contract, on_invalid="quarantine"
    )
    assert (v.ref, v.created, v.status, v.contract) == ("credit@1", True, "valid", "applicants@1")
    assert v.rows == 1000 - len(FAILING) == 955
    kept = v.to_polars()
    assert kept.columns == ["id", "age", "city", "income"]
    assert kept["age"].max() <= 100
    assert "Atlantis" not in kept["city"].to_list()
    # The valid rows, in their original order.
    assert kept.equals(batch.with_row_index("i").filter(~pl.col("i").is_in(FAILING)).drop("i"))

    q = project.datasets.get("credit.quarantine")
    assert (q.ref, q.rows, q.status, q.contract) == (
        "credit.quarantine@1",
        45,
        "invalid",
        v.contract,
    )
    assert q.parents == ["credit@1"]
    aside = q.to_polars()
    assert set(aside.columns) == {"source_row", "id", "age", "city", "income", "quarantine_reason"}
    assert sorted(aside["source_row"].to_list()) == FAILING
    reasons = dict(zip(aside["source_row"].to_list(), aside["quarantine_reason"], strict=True))
    assert reasons[0] == "age: max 100"
    assert reasons[7] == "city: allowed"
    assert reasons[200] == "age: max 100; city: allowed"
    # Each quarantined row is the input row at its source position.
    expected = batch.with_row_index("source_row").filter(pl.col("source_row").is_in(FAILING))
    assert aside.sort("source_row").select(expected.columns).equals(expected)
    # Nothing lost: valid rows and quarantined rows are the input, row for row.
    union = pl.concat([kept, aside.select(kept.columns)]).sort("id")
    assert union.equals(batch.sort("id"))


def test_quarantine_report_and_lineage(project: Project, contract: str) -> None:
    """The new version carries its own passing report plus a quarantine summary with the full
    report of the batch; lineage links the quarantine to it as ``quarantined_from``."""
    v = project.datasets.add(
        "credit",
        _batch(1000, old=OLD, elsewhere=ELSEWHERE),
        contract=contract,
        on_invalid="quarantine",
    )
    assert v.validation is not None
    assert (v.validation["passed"], v.validation["rows"], v.validation["failures"]) == (
        True,
        955,
        [],
    )
    q = v.validation["quarantine"]
    assert (q["dataset"], q["rows"]) == ("credit.quarantine", 45)
    assert (q["report"]["passed"], q["report"]["rows"]) == (False, 1000)
    counts = {(f["column"], f["check"]): f["failed_rows"] for f in q["report"]["failures"]}
    assert counts == {("age", "max"): 25, ("city", "allowed"): 21}
    side = project.datasets.get("credit.quarantine@1")
    assert side.validation == q["report"]
    assert project.datasets.lineage("credit@1")["downstream"] == [
        {
            "parent": "dataset:credit@1",
            "child": "dataset:credit.quarantine@1",
            "relation": "quarantined_from",
        }
    ]


def test_quarantine_writes_both_versions_in_one_step(project: Project, contract: str) -> None:
    """The batch and its quarantine are committed together: their ``dataset.add`` events are
    consecutive and both datasets are listed."""
    project.datasets.add(
        "credit", _batch(1000, old=OLD), contract=contract, on_invalid="quarantine"
    )
    added = project.audit.list()[-4:]  # the last four events of the whole log
    assert [(e.action, e.entity) for e in added] == [
        ("dataset.create", "credit"),
        ("dataset.add", "credit@1"),
        ("dataset.create", "credit.quarantine"),
        ("dataset.add", "credit.quarantine@1"),
    ]
    assert added[-1].payload["parents"] == ["credit@1"]
    assert added[-1].payload["relation"] == "quarantined_from"
    listed = {d.name: (d.rows, d.status) for d in project.datasets.list()}
    assert listed == {"credit": (975, "valid"), "credit.quarantine": (25, "invalid")}


def test_quarantine_of_the_same_batch_again_creates_nothing(
    project: Project, contract: str, project_state: StateOf
) -> None:
    """Quarantining an identical batch a second time returns the existing version and adds no
    quarantine version (the split into good and bad rows is deterministic)."""
    batch = _batch(1000, old=OLD, elsewhere=ELSEWHERE)
    first = project.datasets.add("credit", batch, contract=contract, on_invalid="quarantine")
    versions = project_state(project).versions
    again = project.datasets.add("credit", batch, contract=contract, on_invalid="quarantine")
    assert (again.ref, again.created, again.digest) == (first.ref, False, first.digest)
    assert project_state(project).versions == versions
    assert _staged(project) == []


def test_quarantine_rejects_the_batch_when_the_rest_still_fails(
    project: Project, contract: str, project_state: StateOf
) -> None:
    """When the rows left after quarantine still fail a dataset check (too few rows), the whole
    batch is rejected and neither version is written."""
    project.datasets.add("credit", _batch(300), contract=contract)
    before = project_state(project)
    # 120 rows, 30 of them too old: 90 would remain, below row_count min 100.
    bad = _batch(120, old=set(range(0, 120, 4)))
    with pytest.raises(CheckFailedError) as info:
        project.datasets.add("credit", bad, contract=contract, on_invalid="quarantine")
    message = info.value.message
    assert "even without its 30 failing rows" in message and "90 rows" in message
    # The attached report describes the whole batch, so every failing row is accounted for.
    report = info.value.details["report"]
    assert report["rows"] == 120
    assert max(f["failed_rows"] for f in report["failures"]) == 30
    assert project_state(project) == before
    assert _staged(project) == []
    with pytest.raises(NotFoundError):
        project.datasets.get("credit.quarantine")


# -- allow ------------------------------------------------------------------------------------


def test_allow_stores_the_batch_marked_invalid_with_its_report(
    project: Project, contract: str
) -> None:
    """With ``allow`` every row is stored, the version is ``invalid`` and its report says why;
    no quarantine dataset is made."""
    batch = _batch(500, old={1, 2, 3})
    v = project.datasets.add("credit", batch, contract=contract, on_invalid="allow")
    assert (v.created, v.status, v.contract, v.rows) == (True, "invalid", "applicants@1", 500)
    assert v.to_polars().equals(batch)
    stored = project.datasets.get("credit@1").validation
    assert stored is not None and stored == v.validation
    assert (stored["passed"], stored["rows"]) == (False, 500)
    assert [(f["column"], f["check"], f["failed_rows"]) for f in stored["failures"]] == [
        ("age", "max", 3)
    ]
    assert [d.name for d in project.datasets.list()] == ["credit"]


def test_a_file_once_allowed_as_invalid_is_still_rejected_when_added_again(
    project: Project, contract: str, tmp_path: Path, project_state: StateOf
) -> None:
    """Adding identical bytes again does not skip the contract: a batch stored as invalid
    with ``allow`` is refused when it comes back in reject mode, and nothing is written."""
    path = _as_input(_batch(500, old={1, 2, 3}), "csv", tmp_path)
    first = project.datasets.add("credit", path, contract=contract, on_invalid="allow")
    assert first.status == "invalid"
    before = project_state(project)
    with pytest.raises(CheckFailedError):
        project.datasets.add("credit", path, contract=contract)
    assert project_state(project) == before
    again = project.datasets.add("credit", path, contract=contract, on_invalid="allow")
    assert (again.ref, again.created) == (first.ref, False)


@pytest.mark.parametrize("on_invalid", ["reject", "quarantine", "allow"])
def test_passing_data_is_valid_whatever_the_mode(
    project: Project, contract: str, on_invalid: Any
) -> None:
    """Data that passes is stored whole with status ``valid`` and the exact contract version."""
    v = project.datasets.add("credit", _batch(200), contract=contract, on_invalid=on_invalid)
    assert (v.status, v.contract, v.rows) == ("valid", "applicants@1", 200)
    assert v.validation == {"passed": True, "rows": 200, "failures": []}
    assert [d.name for d in project.datasets.list()] == ["credit"]


def test_unknown_on_invalid_is_refused(project: Project, contract: str) -> None:
    """A mode other than reject, quarantine or allow is InvalidInputError naming the three."""
    with pytest.raises(InvalidInputError, match="reject, quarantine or allow"):
        project.datasets.add("credit", _batch(200), contract=contract, on_invalid="drop")  # type: ignore[arg-type]


# -- bound contracts --------------------------------------------------------------------------


def test_a_bound_contract_applies_without_naming_it(project: Project, contract: str) -> None:
    """Once bound, a contract checks every add: passing data is ``valid`` against ``name@N``,
    failing data is rejected."""
    project.contracts.bind("credit", "applicants", new=True)
    v = project.datasets.add("credit", _batch(200))
    assert (v.status, v.contract) == ("valid", "applicants@1")
    with pytest.raises(CheckFailedError, match="fails contract applicants@1"):
        project.datasets.add("credit", _batch(200, elsewhere={5}))
    q = project.datasets.add("credit", _batch(200, elsewhere={5}), on_invalid="quarantine")
    assert (q.ref, q.rows) == ("credit@2", 199)
    assert project.datasets.get("credit.quarantine").rows == 1


def test_an_explicit_contract_overrides_the_bound_one(project: Project, contract: str) -> None:
    """``contract=`` takes precedence over the dataset's binding."""
    project.contracts.add("loose", {"columns": {"id": "int"}})
    project.contracts.bind("credit", "applicants", new=True)
    v = project.datasets.add("credit", _batch(50, old={1}), contract="loose")
    assert (v.status, v.contract) == ("valid", "loose@1")


# -- validate ---------------------------------------------------------------------------------


def test_validate_stores_the_report_and_sets_the_status(project: Project, contract: str) -> None:
    """``validate`` records its report and status on the version and logs the check and the
    read of the data."""
    v = project.datasets.add("credit", _batch(500, old={4, 5}))
    assert (v.status, v.contract, v.validation) == ("unvalidated", None, None)
    report = project.datasets.validate("credit@1", contract="applicants")
    assert not report.passed
    assert [(f.column, f.check, f.failed_rows) for f in report.failures] == [("age", "max", 2)]
    stored = project.datasets.get("credit@1")
    assert (stored.status, stored.contract) == ("invalid", "applicants@1")
    assert stored.validation == report.to_dict()
    checked, read = project.audit.list(entity="credit@1", newest_first=True, limit=2)[::-1]
    assert (checked.action, checked.actor) == ("dataset.validate", "alice")
    assert checked.payload == {"contract": "applicants@1", "passed": False, "failures": 1}
    assert read.action == "dataset.read"
    assert read.payload == {"digest": v.digest, "via": "validate"}


def test_validate_uses_the_bound_contract_and_can_turn_a_version_valid(
    project: Project, contract: str
) -> None:
    """Without ``contract=`` the bound contract is used; a later, looser contract version can
    make a version ``valid``."""
    project.datasets.add("credit", _batch(500, old={4}))
    project.contracts.bind("credit", "applicants", new=True)
    assert not project.datasets.validate("credit@1").passed
    assert project.datasets.get("credit@1").status == "invalid"
    looser = {**CONTRACT, "columns": {**CONTRACT["columns"], "age": {"type": "int", "min": 18}}}
    project.contracts.add("applicants", looser)
    report = project.datasets.validate("credit@1")
    assert report.passed
    stored = project.datasets.get("credit@1")
    assert (stored.status, stored.contract) == ("valid", "applicants@2")
    assert stored.validation == {"passed": True, "rows": 500, "failures": []}


def test_validate_without_a_contract_says_how_to_bind_one(
    project: Project, project_state: StateOf
) -> None:
    """Validating a dataset that has no bound contract is InvalidInputError pointing at
    ``contract bind``, and records nothing."""
    project.datasets.add("credit", _batch(200))
    before = project_state(project)
    with pytest.raises(InvalidInputError, match=r"`shipyard contract bind credit CONTRACT`"):
        project.datasets.validate("credit@1")
    assert project_state(project) == before
    assert project.datasets.get("credit@1").status == "unvalidated"


# -- column names the quarantine itself uses --------------------------------------------------


def test_quarantine_keeps_a_user_column_named_reason(project: Project, contract: str) -> None:
    """A data column called ``reason`` survives quarantine unchanged, next to
    ``quarantine_reason``."""
    batch = _batch(300, old={0, 10}).with_columns(
        pl.Series("reason", ["car", "house", "boat"] * 100)
    )
    project.datasets.add("credit", batch, contract=contract, on_invalid="quarantine")
    aside = project.datasets.get("credit.quarantine").to_polars().sort("source_row")
    assert aside["reason"].to_list() == ["car", "house"]
    assert aside["quarantine_reason"].to_list() == ["age: max 100", "age: max 100"]


def test_quarantine_keeps_a_user_column_named_like_an_internal_one(
    project: Project, contract: str
) -> None:
    """A user column called ``__row`` survives quarantine untouched on both sides."""
    batch = _batch(300, old={0, 10}).with_columns(pl.Series("__row", [f"r{i}" for i in range(300)]))
    v = project.datasets.add("credit", batch, contract=contract, on_invalid="quarantine")
    assert "__row" in v.columns
    aside = project.datasets.get("credit.quarantine").to_polars()
    assert sorted(aside["__row"].to_list()) == ["r0", "r10"]


@pytest.mark.parametrize("column", ["source_row", "quarantine_reason"])
def test_quarantine_of_data_with_a_clashing_column_name_is_explained(
    project: Project, contract: str, project_state: StateOf, column: str
) -> None:
    """Data that already has a column the quarantine adds is refused with InvalidInputError
    naming the column, and nothing is written."""
    batch = _batch(300, old={0, 10}).with_columns(pl.Series(column, [str(i) for i in range(300)]))
    before = project_state(project)
    with pytest.raises(InvalidInputError, match=column):
        project.datasets.add("credit", batch, contract=contract, on_invalid="quarantine")
    assert project_state(project) == before


def test_quarantine_of_a_long_dataset_name_is_reachable_or_refused(
    project: Project, contract: str, project_state: StateOf
) -> None:
    """The quarantine dataset can be read back by its reference; if its name would be too
    long the batch is refused up front and nothing is written."""
    name = "x" * 120  # a valid dataset name; "<name>.quarantine" is 131 characters
    before = project_state(project)
    try:
        v = project.datasets.add(
            name, _batch(300, old={1}), contract=contract, on_invalid="quarantine"
        )
    except InvalidInputError:
        assert project_state(project) == before
    else:
        side = v.validation["quarantine"]["dataset"] if v.validation else ""
        assert project.datasets.get(f"{side}@1").rows == 1


# -- cells that do not parse ------------------------------------------------------------------


def _csv_with_bad_cell(tmp_path: Path, n: int = 2000, row: int = 1234) -> Path:
    """A CSV of ``n`` applicants in which the age of row ``row`` is ``abc``."""
    frame = _batch(n).with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit("abc"))
        .otherwise(pl.col("age").cast(pl.String))
        .alias("age")
    )
    path = tmp_path / "bad_cell.csv"
    frame.write_csv(path)
    return path


def test_one_bad_cell_quarantines_only_its_row(
    project: Project, contract: str, tmp_path: Path
) -> None:
    """One ``abc`` in the int column ``age`` of a 2,000-row CSV sets aside that row alone, with
    the reason, and stores the other 1,999 with ``age`` as integers."""
    path = _csv_with_bad_cell(tmp_path)
    v = project.datasets.add("credit", path, contract=contract, on_invalid="quarantine")
    assert (v.rows, v.status, v.schema["age"]) == (1999, "valid", "Int64")
    assert v.to_polars()["age"].dtype == pl.Int64
    aside = project.datasets.get("credit.quarantine").to_polars()
    assert aside.select("source_row", "age", "quarantine_reason").rows() == [
        (1234, "abc", "age: 'abc' is not an int")
    ]


def test_a_bad_cell_is_named_when_the_batch_is_rejected(
    project: Project, contract: str, tmp_path: Path
) -> None:
    """Rejected, the batch's report counts the one cell that is not an int and shows it; the
    other rows pass every check."""
    with pytest.raises(CheckFailedError) as info:
        project.datasets.add("credit", _csv_with_bad_cell(tmp_path), contract=contract)
    assert "age: 1 value is not an int, e.g. 'abc' (1 row)" in info.value.message
    [failure] = info.value.details["report"]["failures"]
    assert (failure["check"], failure["failed_rows"], failure["examples"]) == ("type", 1, ["abc"])


def _csv_with_age(tmp_path: Path, value: str, n: int = 2000, row: int = 1234) -> Path:
    """A CSV of ``n`` applicants whose ages are written as floats (``30.0``), that of row
    ``row`` being ``value``: polars reads the column as Float64."""
    frame = _batch(n).with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(value))
        .otherwise(pl.col("age").cast(pl.Float64).cast(pl.String))
        .alias("age")
    )
    path = tmp_path / "float_ages.csv"
    frame.write_csv(path)
    assert pl.read_csv(path).schema["age"] == pl.Float64
    return path


@pytest.mark.parametrize("value", ["1.5", "NaN", "inf"])
def test_a_number_that_is_not_whole_quarantines_only_its_row(
    project: Project, contract: str, tmp_path: Path, value: str
) -> None:
    """A CSV whose int column ``age`` the reader types as floats (``30.0``), one of its 2,000
    cells ``1.5`` (or NaN, or inf): that row alone is set aside, and the whole floats of the
    other 1,999 are stored as ints."""
    path = _csv_with_age(tmp_path, value)
    v = project.datasets.add("credit", path, contract=contract, on_invalid="quarantine")
    assert (v.rows, v.status, v.schema["age"]) == (1999, "valid", "Int64")
    assert v.to_polars()["age"].to_list()[:3] == [18, 19, 20]
    aside = project.datasets.get("credit.quarantine").to_polars()
    assert aside.select("source_row", "quarantine_reason").rows() == [
        (1234, f"age: {value} is not an int")
    ]


def test_whole_floats_in_an_int_column_pass_as_ints(
    project: Project, contract: str, tmp_path: Path
) -> None:
    """Ages written ``30.0`` satisfy ``type: int``: the batch is valid and stored as ints."""
    v = project.datasets.add("credit", _csv_with_age(tmp_path, "40.0"), contract=contract)
    assert (v.rows, v.status, v.schema["age"]) == (2000, "valid", "Int64")
    assert v.to_polars()["age"][1234] == 40


def test_a_fraction_in_an_int_column_is_named_when_the_batch_is_rejected(
    project: Project, contract: str, tmp_path: Path
) -> None:
    with pytest.raises(CheckFailedError) as info:
        project.datasets.add("credit", _csv_with_age(tmp_path, "1.5"), contract=contract)
    assert "age: 1 value is not an int, e.g. 1.5 (1 row)" in info.value.message


BIG = "12345678901234567890"  # beyond 64 bits: polars reads the column as Int128


def _csv_with_big_id(tmp_path: Path, n: int = 2000, row: int = 7) -> Path:
    frame = _batch(n).with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(BIG))
        .otherwise(pl.col("id").cast(pl.String))
        .alias("id")
    )
    path = tmp_path / "big_id.csv"
    frame.write_csv(path)
    return path


def test_a_number_beyond_64_bits_in_an_int_column_quarantines_its_row(
    project: Project, contract: str, tmp_path: Path
) -> None:
    v = project.datasets.add(
        "credit", _csv_with_big_id(tmp_path), contract=contract, on_invalid="quarantine"
    )
    assert (v.rows, v.status, v.schema["id"]) == (1999, "valid", "Int64")
    aside = project.datasets.get("credit.quarantine").to_polars()
    assert aside.select("source_row", "id", "quarantine_reason").rows() == [
        (7, BIG, f"id: '{BIG}' does not fit a 64-bit int")
    ]


@pytest.mark.parametrize("big", [BIG, "1234567890123456789012345678901234567890123"])
def test_numbers_beyond_64_bits_without_a_contract_are_stored_as_written(
    project: Project, tmp_path: Path, big: str
) -> None:
    """Without a contract, a column holding a whole number beyond 64 bits (which Parquet
    readers other than polars cannot hold, and a float would round) is stored as its text,
    exactly as written, and profiled."""
    path = tmp_path / "ids.csv"
    path.write_text(f"id,x\n1,2\n{big},3\n")
    v = project.datasets.add("ids", path)
    assert v.schema == {"id": "String", "x": "Int64"}
    assert v.to_pandas()["id"].tolist() == ["1", big]
    assert v.profile["columns"]["id"]["distinct"] == 2


def test_a_rejected_quarantine_names_each_failure_once(project: Project, contract: str) -> None:
    """A batch whose rest still fails is rejected with each failure named once; a batch in
    which every row fails (a column is missing) says so rather than setting all rows aside."""
    bad = _batch(120, old=set(range(0, 120, 4)))
    with pytest.raises(CheckFailedError) as info:
        project.datasets.add("credit", bad, contract=contract, on_invalid="quarantine")
    assert info.value.message.count("expected at least 100") == 1
    with pytest.raises(CheckFailedError) as info:
        project.datasets.add(
            "credit", _batch(200).drop("age"), contract=contract, on_invalid="quarantine"
        )
    message = info.value.message
    assert "every row fails, so none can be kept: age: column 'age' is missing" in message
    assert message.count("is missing") == 1 and "even without" not in message
