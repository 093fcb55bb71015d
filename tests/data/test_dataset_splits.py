"""Splits registered as datasets: ``NAME.<part>`` children with lineage and the recorded spec,
identical digests whenever the same spec meets the same data, stable key splits, class shares
kept by stratification, and replay. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import shipyard
from shipyard.data.splits import SplitSpec
from shipyard.errors import InvalidInputError, PermissionDeniedError
from shipyard.project import Project

StateOf = Callable[[Project], Any]

# Pure computation over the stored parent: the metadata backend plays no part, so once is enough.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

THREE_WAY = SplitSpec({"train": 0.7, "valid": 0.15, "test": 0.15}, seed=3)


def _credit(n: int, *, first_id: int = 0) -> pl.DataFrame:
    """``n`` applicants with ids from ``first_id``; ``y`` is 60% / 30% / 10% of classes a/b/c."""
    ids = range(first_id, first_id + n)
    return pl.DataFrame(
        {
            "id": list(ids),
            "age": [18 + (i * 7) % 70 for i in ids],
            "income": [1000.0 + (i * 37) % 5000 for i in ids],
            "y": ["a" if i % 10 < 6 else "b" if i % 10 < 9 else "c" for i in ids],
        }
    )


def _ids(frame: pl.DataFrame) -> set[int]:
    return set(frame["id"].to_list())


def test_split_registers_each_part_as_a_child_dataset(project: Project) -> None:
    """``split`` creates ``credit.train@1``, ``credit.valid@1`` and ``credit.test@1`` whose
    rows partition the parent, with lineage to ``credit@1`` and the spec recorded."""
    parent = project.datasets.add("credit", _credit(1000))
    parts = project.datasets.split("credit@1", THREE_WAY)
    assert list(parts) == ["train", "valid", "test"]
    assert [v.ref for v in parts.values()] == ["credit.train@1", "credit.valid@1", "credit.test@1"]
    assert [v.rows for v in parts.values()] == [700, 150, 150]
    assert sum(v.rows or 0 for v in parts.values()) == parent.rows
    frames = {name: v.to_polars() for name, v in parts.items()}
    assert set().union(*map(_ids, frames.values())) == _ids(parent.to_polars())
    assert sum(len(_ids(f)) for f in frames.values()) == 1000  # no row in two parts
    for name, v in parts.items():
        assert v.created and v.columns == parent.columns
        assert v.parents == ["credit@1"]
        assert v.source == {
            "format": "split",
            "split": THREE_WAY.to_dict(),
            "part": name,
            "parent": "credit@1",
            "parent_digest": parent.digest,
        }
        assert SplitSpec.from_dict(v.source["split"]) == THREE_WAY
    assert project.datasets.lineage("credit@1")["downstream"] == [
        {"parent": "dataset:credit@1", "child": f"dataset:{v.ref}", "relation": "split"}
        for v in parts.values()
    ]


def test_split_again_returns_the_same_versions(project: Project) -> None:
    """Running the same split twice returns the existing versions with created=False and adds
    no dataset version."""
    project.datasets.add("credit", _credit(1000))
    first = project.datasets.split("credit@1", THREE_WAY)
    adds = len(project.audit.list(action="dataset.add"))
    again = project.datasets.split("credit@1", THREE_WAY)
    assert [(v.ref, v.digest) for v in again.values()] == [
        (v.ref, v.digest) for v in first.values()
    ]
    assert not any(v.created for v in again.values())
    assert len(project.audit.list(action="dataset.add")) == adds
    assert [v.version for v in project.datasets.versions("credit.train")] == [1]


@SQLITE_ONLY
def test_another_seed_makes_new_versions(project: Project) -> None:
    """A different seed is a different split: the parts get version 2."""
    project.datasets.add("credit", _credit(1000))
    project.datasets.split("credit@1", THREE_WAY)
    other = project.datasets.split(
        "credit@1", SplitSpec({"train": 0.7, "valid": 0.15, "test": 0.15}, seed=4)
    )
    assert [v.ref for v in other.values()] == ["credit.train@2", "credit.valid@2", "credit.test@2"]
    assert all(v.created for v in other.values())


def test_same_spec_in_another_project_gives_identical_digests(
    project: Project, tmp_path: Path
) -> None:
    """The same spec on the same data in a different project produces byte-identical parts."""
    here = project.datasets.add("credit", _credit(1000))
    ours = project.datasets.split("credit@1", THREE_WAY)
    with shipyard.init_project(tmp_path / "elsewhere") as other:
        there = other.datasets.add("credit", _credit(1000))
        theirs = other.datasets.split("credit@1", THREE_WAY)
        assert there.digest == here.digest
        assert {k: v.digest for k, v in theirs.items()} == {k: v.digest for k, v in ours.items()}


@SQLITE_ONLY
def test_key_split_keeps_every_row_in_its_part_when_rows_are_appended(project: Project) -> None:
    """With ``key`` a row's part never changes: every row of v1's parts is in the same part
    of v2, which appends rows, and the new rows are spread over the parts too."""
    spec = SplitSpec({"train": 0.8, "test": 0.2}, key="id", seed=11)
    project.datasets.add("credit", _credit(1000))
    project.datasets.add("credit", _credit(1500))  # the first 1000 rows plus 500 new ones
    v1 = {k: _ids(v.to_polars()) for k, v in project.datasets.split("credit@1", spec).items()}
    parts = project.datasets.split("credit@2", spec)
    assert [v.ref for v in parts.values()] == ["credit.train@2", "credit.test@2"]
    v2 = {k: _ids(v.to_polars()) for k, v in parts.items()}
    assert v1["train"] <= v2["train"] and v1["test"] <= v2["test"]
    new = set(range(1000, 1500))
    assert new <= v2["train"] | v2["test"]
    assert 0.7 < len(new & v2["train"]) / len(new) < 0.9
    assert 0.75 < len(v1["train"]) / 1000 < 0.85


@SQLITE_ONLY
def test_stratified_split_keeps_the_class_shares(project: Project) -> None:
    """A stratified split keeps each class's share of the rows within one percentage point in
    every part."""
    project.datasets.add("credit", _credit(2000))
    spec = SplitSpec({"train": 0.7, "valid": 0.2, "test": 0.1}, stratify="y", seed=5)
    parts = project.datasets.split("credit@1", spec)
    overall = {"a": 0.6, "b": 0.3, "c": 0.1}
    for name, v in parts.items():
        frame = v.to_polars()
        assert frame.height == round(2000 * spec.fractions[name])
        shares = {
            row["y"]: row["len"] / frame.height
            for row in frame.group_by("y").len().iter_rows(named=True)
        }
        for cls, share in overall.items():
            assert abs(shares[cls] - share) <= 0.01, (name, cls, shares)


def test_replay_split_reproduces_the_same_digests(project: Project) -> None:
    """Replaying from any child re-creates the recorded split of the recorded parent version,
    even after the parent has a newer version: same digests, nothing new created."""
    project.datasets.add("credit", _credit(1000))
    first = project.datasets.split("credit@1", THREE_WAY)
    project.datasets.add("credit", _credit(1200))
    for child in ("credit.train@1", "credit.test@1"):
        replayed = project.datasets.replay_split(child)
        assert {k: (v.ref, v.digest) for k, v in replayed.items()} == {
            k: (v.ref, v.digest) for k, v in first.items()
        }
        assert not any(v.created for v in replayed.values())


@SQLITE_ONLY
def test_replay_of_a_key_split_in_another_project(project: Project, tmp_path: Path) -> None:
    """The spec recorded with a key split replays to identical digests in another project."""
    spec = SplitSpec({"train": 0.8, "test": 0.2}, key="id", seed=2)
    project.datasets.add("credit", _credit(800))
    ours = project.datasets.split("credit@1", spec)
    recorded = project.datasets.get("credit.train@1").source["split"]
    with shipyard.init_project(tmp_path / "elsewhere") as other:
        other.datasets.add("credit", _credit(800))
        theirs = other.datasets.split("credit@1", SplitSpec.from_dict(recorded))
        assert {k: v.digest for k, v in theirs.items()} == {k: v.digest for k, v in ours.items()}


def test_replaying_a_dataset_not_made_by_a_split_is_invalid_input(project: Project) -> None:
    """Only split children can be replayed; anything else is InvalidInputError."""
    project.datasets.add("credit", _credit(100))
    with pytest.raises(InvalidInputError, match="'credit@1' was not made by `shipyard data split`"):
        project.datasets.replay_split("credit@1")


@SQLITE_ONLY
def test_splitting_a_file_tree_is_invalid_input(project: Project, tmp_path: Path) -> None:
    """A file tree has no rows to split."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("hello", encoding="utf-8")
    project.datasets.add("docs", tmp_path / "tree")
    with pytest.raises(InvalidInputError, match="is a file tree; only tables split"):
        project.datasets.split("docs@1", THREE_WAY)


def test_a_viewer_cannot_split(project: Project, project_state: StateOf) -> None:
    """A viewer's split raises PermissionDeniedError and writes nothing."""
    project.datasets.add("credit", _credit(100))
    before = project_state(project)
    with pytest.raises(PermissionDeniedError, match="cannot split data"):
        project.as_actor("mallory").datasets.split("credit@1", THREE_WAY)
    assert project_state(project) == before


def test_split_children_of_a_long_name_are_reachable_or_refused(
    project: Project, project_state: StateOf
) -> None:
    """Every dataset a split creates can be read back by its reference; if the child names
    would be too long the split is refused up front and nothing is written."""
    name = "x" * 125  # a valid dataset name; "<name>.train" is 131 characters
    project.datasets.add(name, _credit(100))
    before = project_state(project)
    try:
        parts = project.datasets.split(f"{name}@1", THREE_WAY)
    except InvalidInputError:
        assert project_state(project) == before
    else:
        for v in parts.values():
            assert project.datasets.get(v.ref).digest == v.digest
