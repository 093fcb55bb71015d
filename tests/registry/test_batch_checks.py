"""`models predict` checks every row as the model server checks a request: the signature and
the contract of the data the model was trained on. By default a refused row stops the run
and nothing is written; `skip` leaves refused rows out and `null` keeps them with empty
predictions, both writing them with their reasons to `<stem>.rejected.csv`.

Runs on copies of the serving tests' credit project (a contract bound to the training data;
credit-risk@1 in production).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import InvalidInputError
from tests.cli import conftest as cli_fixtures
from tests.cli.conftest import Cli
from tests.serving.test_app import MODEL, CreditProject, credit_copy

cli = cli_fixtures.cli


@pytest.fixture
def credit(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> CreditProject:
    """This test's own copy of the credit project."""
    return credit_copy(tmp_path_factory, tmp_path / "proj")


def _batch(credit: CreditProject, folder: Path) -> Path:
    """20 held-out applicants as a CSV, row 3 aged 150 and row 8 of an unknown gender."""
    frame = credit.frame(20)
    frame.loc[2, "age"] = 150
    frame.loc[7, "gender"] = "unknown"
    path = folder / "batch.csv"
    frame.to_csv(path, index=False)
    return path


def test_rows_outside_the_training_contract_are_refused_by_default(
    credit: CreditProject, tmp_path: Path
) -> None:
    """An age of 150 and an unknown category, which `/predict` refuses, stop a batch run: the
    error names both rows (1-based) and their reasons, and no output is left behind."""
    source = _batch(credit, tmp_path)
    dest = tmp_path / "scored.parquet"
    with credit.open() as project, pytest.raises(InvalidInputError) as info:
        project.models.predict_file(f"{MODEL}@production", source, dest, chunk_size=7)
    message = info.value.message
    assert "row 3: age" in message and "row 8: gender" in message
    assert "nothing was written" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv", "proj"]


@pytest.mark.parametrize("mode", ["skip", "null"])
def test_refused_rows_are_set_aside_with_their_reasons(
    credit: CreditProject, tmp_path: Path, mode: str
) -> None:
    """With `skip` the two refused rows are left out of the output, with `null` they stay
    with empty predictions; either way `scored.rejected.csv` holds them as read, with their
    input row number and why, and the other rows are scored as in memory."""
    source = _batch(credit, tmp_path)
    dest = tmp_path / "scored.csv"
    with credit.open() as project:
        doc = project.models.predict_file(
            f"{MODEL}@production", source, dest, chunk_size=7, on_invalid=mode
        )
        predictor = project.models.load(f"{MODEL}@production")
    assert (doc["rows"], doc["scored"], doc["refused"]) == (20, 18, 2)
    rejected = pd.read_csv(doc["rejected"])
    assert doc["rejected"] == str(tmp_path / "scored.rejected.csv")
    assert rejected["source_row"].tolist() == [3, 8]
    assert "age" in rejected["reason"][0] and "gender" in rejected["reason"][1]
    assert rejected["age"][0] == 150 and rejected["gender"][1] == "unknown"
    scored = pd.read_csv(dest)
    kept = [i for i in range(20) if i not in (2, 7)]
    expected = predictor.predict(credit.frame(20).iloc[kept])
    if mode == "skip":
        assert len(scored) == 18
        assert scored["prediction"].tolist() == expected.tolist()
    else:
        assert len(scored) == 20
        assert scored["prediction"].isna().tolist() == [i in (2, 7) for i in range(20)]
        assert scored["prediction"].iloc[kept].astype(int).tolist() == expected.tolist()


def test_the_cli_names_the_rejected_file(credit: CreditProject, tmp_path: Path, cli: Cli) -> None:
    """`shipyard models predict ... --on-invalid skip` says how many rows were refused and
    where they went; without it, it exits 1 naming the refused rows."""
    source = _batch(credit, tmp_path)
    base = ["-P", str(credit.root), "models", "predict", f"{MODEL}@production", str(source)]
    refused = cli(*base, "-o", tmp_path / "a.csv")
    assert refused.code == 1 and "row 3: age" in refused.stderr
    done = cli(*base, "-o", tmp_path / "b.csv", "--on-invalid", "skip")
    assert done.code == 0, done.stderr
    assert "scored 18 of 20 rows" in done.stdout
    assert f"2 refused rows, with their reasons, in {tmp_path / 'b.rejected.csv'}" in done.stdout


def test_an_existing_output_is_replaced_only_with_force(
    credit: CreditProject, tmp_path: Path
) -> None:
    """Scoring into a file that exists is refused (ConflictError naming it) and leaves it as
    it was; with force it is replaced, and the rejected rows of an earlier run go too when
    no row is refused now."""
    from shipyard.errors import ConflictError

    source = _batch(credit, tmp_path)
    dest = tmp_path / "scored.csv"
    with credit.open() as project:
        project.models.predict_file(f"{MODEL}@production", source, dest, on_invalid="skip")
        before = dest.read_bytes()
        with pytest.raises(ConflictError, match="already exists; pass --force"):
            project.models.predict_file(f"{MODEL}@production", source, dest, on_invalid="skip")
        assert dest.read_bytes() == before
        clean = tmp_path / "clean.csv"
        credit.frame(20).to_csv(clean, index=False)
        doc = project.models.predict_file(f"{MODEL}@production", clean, dest, force=True)
    assert (doc["scored"], doc["refused"], doc["rejected"]) == (20, 0, None)
    assert not (tmp_path / "scored.rejected.csv").exists()


def test_times_in_a_scored_csv_are_written_as_data_get_writes_them(
    credit: CreditProject, tmp_path: Path, cli: Cli
) -> None:
    """A time `models predict -o scored.csv` passes through is written exactly as `data get`
    writes the same time (ISO 8601 with a T), and the columns the model drops (the id and
    the date) may be left out of the input."""
    import csv
    from datetime import datetime

    seen = pd.Series([datetime(2026, 1, 1, 6, 53), datetime(2026, 2, 3, 4, 5, 6, 789)])
    got = tmp_path / "times.csv"
    with credit.open() as project:
        project.datasets.add("times", pd.DataFrame({"seen_at": seen}))
    assert cli("-P", str(credit.root), "data", "get", "times@1", "-o", got).code == 0
    with got.open() as fh:
        expected = [r["seen_at"] for r in csv.DictReader(fh)]
    source = tmp_path / "batch.parquet"
    frame = credit.frame(2).drop(columns=["applicant_id", "application_date"])
    frame.assign(seen_at=seen).to_parquet(source)
    dest = tmp_path / "scored.csv"
    with credit.open() as project:
        project.models.predict_file(f"{MODEL}@production", source, dest)
    with dest.open() as fh:
        written = [r["seen_at"] for r in csv.DictReader(fh)]
    assert written == expected
    assert expected[0].startswith("2026-01-01T06:53:00")
