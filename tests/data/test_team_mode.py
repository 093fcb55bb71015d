"""Team mode: the same registry on PostgreSQL and an S3 bucket, by configuration alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import shipyard
from shipyard import IntegrityError
from shipyard.project import Project

pytestmark = [pytest.mark.s3, pytest.mark.postgres]


@pytest.fixture
def team_project(
    tmp_path: Path, pg_schema_url: str, s3_uri: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """A project whose stores come from SHIPYARD_DB_URL and SHIPYARD_ARTIFACTS_URI."""
    monkeypatch.setenv("SHIPYARD_DB_URL", pg_schema_url)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS_URI", s3_uri)
    project = shipyard.init_project(tmp_path / "team")
    yield project
    project.close()


def test_tables_and_file_trees_round_trip_through_s3(team_project: Project, tmp_path: Path) -> None:
    """A CSV and a folder added in team mode read back identical from the bucket."""
    assert team_project.db.dialect == "postgresql" and not team_project.artifacts.is_local
    csv = tmp_path / "a.csv"
    frame = pl.DataFrame({"id": [1, 2, 3], "city": ["x", "y", "x"]})
    frame.write_csv(csv)
    v = team_project.datasets.add("cities", csv)
    assert v.created and team_project.datasets.add("cities", csv).created is False
    assert team_project.datasets.get("cities@1").to_polars().equals(frame)

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    team_project.datasets.add("files", tree)
    out = team_project.datasets.export("files@1", tmp_path / "restored")
    assert (out / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    assert team_project.verify().ok and team_project.audit.verify().ok


def test_a_corrupted_object_is_refused_naming_its_dataset(
    team_project: Project, tmp_path: Path, s3_client: Any, s3_uri: str
) -> None:
    """An object changed in the bucket fails the digest check on read and in verify."""
    csv = tmp_path / "a.csv"
    pl.DataFrame({"id": list(range(100))}).write_csv(csv)
    v = team_project.datasets.add("ids", csv)
    bucket, prefix = s3_uri[len("s3://") :].split("/", 1)
    hx = v.digest.split(":")[1]
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/blobs/{hx[:2]}/{hx[2:]}", Body=b"nope")
    with pytest.raises(IntegrityError) as err:
        team_project.datasets.get("ids@1").to_polars()
    assert "ids@1" in str(err.value) and v.digest in str(err.value)
    report = team_project.verify()
    assert not report.ok and report.corrupt[0]["digest"] == v.digest
