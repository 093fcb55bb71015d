"""The dataset registry: immutable, content-addressed, numbered versions of tables and file
trees, with profiles, diffs, tags and lineage. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from shipyard._internal.hashing import digest_file, is_digest
from shipyard.errors import IntegrityError, InvalidInputError, NotFoundError
from shipyard.project import Project

CsvFactory = Callable[..., Path]
StateOf = Callable[[Project], Any]

EXPECTED_SAMPLE = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [10.5, None, 7.25, 3.0],
        "city": ["Oslo", "Lima", "Oslo", "Pune"],
    }
)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- adding -----------------------------------------------------------------------------------


def test_add_csv_creates_version_one(project: Project, sample_csv: CsvFactory) -> None:
    """Adding a CSV stores it as table version 1 with its schema, size and author."""
    v = project.datasets.add("credit", sample_csv(), message="May batch", tags={"src": "crm"})
    assert (v.name, v.version, v.ref, v.kind, v.created) == ("credit", 1, "credit@1", "table", True)
    assert is_digest(v.digest)
    assert v.rows == 4
    assert v.columns == ["id", "amount", "city"]
    assert v.schema == {"id": "Int64", "amount": "Float64", "city": "String"}
    assert (v.message, v.tags, v.created_by) == ("May batch", {"src": "crm"}, "alice")
    assert v.source["format"] == "csv"
    assert v.size_bytes > 0
    assert v.created_at.tzinfo is not None
    assert v.to_polars().equals(EXPECTED_SAMPLE)


def test_version_document_has_the_json_fields(project: Project, sample_csv: CsvFactory) -> None:
    """``to_dict`` is a JSON-ready document with the fields the CLI and API show."""
    v = project.datasets.add("credit", sample_csv())
    doc = json.loads(json.dumps(v.to_dict()))
    assert {"name", "version", "ref", "digest", "rows", "columns", "created"} <= set(doc)
    assert (doc["name"], doc["version"], doc["digest"], doc["rows"]) == (
        "credit",
        1,
        v.digest,
        4,
    )
    assert doc["columns"] == ["id", "amount", "city"]
    assert doc["created"] is True
    assert doc["created_at"] == v.created_at.isoformat()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "tsv"])
def test_add_other_file_formats(project: Project, tmp_path: Path, fmt: str) -> None:
    """Parquet, JSON Lines and TSV files become tables with the same content."""
    frame = pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]})
    path = tmp_path / f"input.{fmt}"
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_csv(path, separator="\t")
    v = project.datasets.add("people", path)
    assert (v.rows, v.columns, v.source["format"]) == (3, ["id", "name"], fmt)
    assert v.to_polars().equals(frame)


def test_add_polars_and_pandas_frames(project: Project) -> None:
    """In-memory polars (eager or lazy) and pandas frames are stored as tables."""
    frame = pl.DataFrame({"x": [1.5, 2.5], "label": ["u", "v"]})
    from_polars = project.datasets.add("f-polars", frame)
    from_lazy = project.datasets.add("f-lazy", frame.lazy())
    from_pandas = project.datasets.add("f-pandas", frame.to_pandas())
    for v in (from_polars, from_lazy, from_pandas):
        assert (v.rows, v.columns, v.source) == (2, ["x", "label"], {"format": "dataframe"})
        assert v.to_polars().equals(frame)
    back = from_pandas.to_pandas()
    assert isinstance(back, pd.DataFrame)
    assert back.to_dict("list") == {"x": [1.5, 2.5], "label": ["u", "v"]}


def test_identical_file_returns_the_existing_version(
    project: Project, sample_csv: CsvFactory, tmp_path: Path
) -> None:
    """Re-adding identical bytes (even from another path) returns the same version, unchanged,
    with created False and no event."""
    first = project.datasets.add("credit", sample_csv())
    events = len(project.audit.list())
    copy = tmp_path / "copy.csv"
    copy.write_bytes(sample_csv().read_bytes())
    for source in (sample_csv(), copy):
        again = project.datasets.add("credit", source)
        assert (again.version, again.digest, again.created) == (1, first.digest, False)
    assert [v.version for v in project.datasets.versions("credit")] == [1]
    assert len(project.audit.list()) == events


def test_identical_frame_returns_the_existing_version(project: Project) -> None:
    """Re-adding an equal DataFrame returns the existing version instead of a new one."""
    frame = pl.DataFrame({"a": [1, 2, 3]})
    first = project.datasets.add("nums", frame)
    project.datasets.add("nums", pl.DataFrame({"a": [4]}))
    events = len(project.audit.list())
    again = project.datasets.add("nums", frame.clone())
    assert (again.version, again.digest, again.created) == (1, first.digest, False)
    assert len(project.audit.list()) == events
    assert [v.version for v in project.datasets.versions("nums")] == [1, 2]


def test_versions_are_numbered_in_order(project: Project) -> None:
    """Each new content gets the next number: 1, 2, 3."""
    made = [project.datasets.add("nums", pl.DataFrame({"a": [i]})) for i in range(3)]
    assert [v.version for v in made] == [1, 2, 3]
    assert len({v.digest for v in made}) == 3
    assert [v.ref for v in project.datasets.versions("nums")] == ["nums@1", "nums@2", "nums@3"]


def test_list_summarises_each_dataset(project: Project, sample_csv: CsvFactory) -> None:
    """``list`` shows every dataset with its version count and latest version's shape."""
    project.datasets.add("credit", sample_csv())
    project.datasets.add("credit", pl.DataFrame({"a": [1, 2]}))
    project.datasets.add("alpha", pl.DataFrame({"z": [0]}))
    summaries = project.datasets.list()
    assert [(s.name, s.versions, s.latest, s.rows, s.columns) for s in summaries] == [
        ("alpha", 1, 1, 1, 1),
        ("credit", 2, 2, 2, 1),
    ]
    assert summaries[1].to_dict()["updated_by"] == "alice"


# -- getting ----------------------------------------------------------------------------------


def test_get_by_every_kind_of_reference(project: Project) -> None:
    """A version is found by number, 'latest', bare name, and digest prefix."""
    one = project.datasets.add("nums", pl.DataFrame({"a": [1]}))
    two = project.datasets.add("nums", pl.DataFrame({"a": [2]}))
    hx = one.digest.split(":", 1)[1]
    assert project.datasets.get("nums@1").digest == one.digest
    assert project.datasets.get("nums@latest").version == 2
    assert project.datasets.get("nums").version == 2
    assert project.datasets.get(f"nums@blake3:{hx[:10]}").version == 1
    assert project.datasets.get(f"nums@{hx[:16]}").version == 1
    fetched = project.datasets.get("nums@2")
    assert (fetched.digest, fetched.created) == (two.digest, False)


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        (
            "nums@7",
            NotFoundError,
            "dataset 'nums' has no version 7 (latest is 2); see `shipyard data versions nums`",
        ),
        ("ghost", NotFoundError, "no dataset 'ghost'; see `shipyard data list`"),
        ("ghost@1", NotFoundError, "no dataset 'ghost'"),
        ("nums@production", NotFoundError, "dataset 'nums' has no alias 'production'"),
        ("nums@blake3:000000", NotFoundError, "has no version with digest 000000"),
        ("nums@0", InvalidInputError, "versions start at 1"),
    ],
    ids=["no-version-7", "no-dataset", "no-dataset-at-1", "alias", "digest", "version-0"],
)
def test_missing_versions_are_explained(
    project: Project, ref: str, error: type[Exception], message: str
) -> None:
    """A reference to nothing raises an error that names what exists and where to look."""
    project.datasets.add("nums", pl.DataFrame({"a": [1]}))
    project.datasets.add("nums", pl.DataFrame({"a": [2]}))
    with pytest.raises(error) as info:
        project.datasets.get(ref)
    assert message in str(info.value)


def test_versions_of_unknown_dataset_is_not_found(project: Project) -> None:
    """Listing the versions of a dataset that does not exist raises NotFoundError."""
    with pytest.raises(NotFoundError, match="no dataset 'ghost'"):
        project.datasets.versions("ghost")


# -- profiles ---------------------------------------------------------------------------------


def test_profile_of_numbers_strings_dates_and_booleans(project: Project, tmp_path: Path) -> None:
    """Every column gets count, nulls and distinct; numbers get min, max, mean, std and
    quantiles; strings and booleans their top values; dates their range."""
    path = tmp_path / "mixed.csv"
    path.write_text(
        "id,amount,city,day,ok\n"
        "1,10.5,Oslo,2024-01-05,true\n"
        "2,,Lima,2024-03-01,false\n"
        "3,7.25,Oslo,2024-02-10,true\n"
        "4,3.0,Pune,,true\n",
        encoding="utf-8",
    )
    profile = project.datasets.add("mixed", path).profile
    assert profile["rows"] == 4
    cols = profile["columns"]

    ids = cols["id"]
    assert (ids["kind"], ids["count"], ids["nulls"], ids["distinct"]) == ("number", 4, 0, 4)
    assert (ids["min"], ids["max"], ids["mean"]) == (1, 4, 2.5)
    assert ids["std"] == pytest.approx(statistics.stdev([1, 2, 3, 4]))
    assert ids["quantiles"]["0.5"] == pytest.approx(2.5)
    assert ids["quantiles"]["0.25"] == pytest.approx(1.75)
    assert ids["quantiles"]["0.01"] == pytest.approx(1.03)
    assert set(ids["quantiles"]) == {"0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"}

    amount = cols["amount"]
    assert (amount["count"], amount["nulls"], amount["distinct"]) == (3, 1, 3)
    assert (amount["min"], amount["max"]) == (3.0, 10.5)
    assert amount["mean"] == pytest.approx(statistics.mean([10.5, 7.25, 3.0]))
    assert amount["std"] == pytest.approx(statistics.stdev([10.5, 7.25, 3.0]))

    city = cols["city"]
    assert (city["kind"], city["count"], city["nulls"], city["distinct"]) == ("string", 4, 0, 3)
    assert city["top"] == [
        {"value": "Oslo", "count": 2},
        {"value": "Lima", "count": 1},
        {"value": "Pune", "count": 1},
    ]
    assert "mean" not in city

    day = cols["day"]
    assert (day["kind"], day["nulls"], day["min"], day["max"]) == (
        "time",
        1,
        "2024-01-05",
        "2024-03-01",
    )
    ok = cols["ok"]
    assert (ok["kind"], ok["distinct"]) == ("bool", 2)
    assert ok["top"] == [{"value": "true", "count": 3}, {"value": "false", "count": 1}]


def test_a_dataframe_is_profiled_as_the_same_data_read_from_a_file(
    project: Project, tmp_path: Path
) -> None:
    """A DataFrame added gets the profile and drift reference that the same data added as a
    Parquet file gets; distinct counts are those polars counts (NaN one value, -0.0 equal to
    0.0, infinities values, nulls not counted), for numbers, dates and durations."""
    rng = np.random.default_rng(3)
    n = 3000
    frame = pl.DataFrame(
        {
            "i": pl.Series(rng.integers(0, 300, n)).set(pl.Series(rng.random(n) < 0.1), None),
            "small": rng.integers(0, 200, n).astype(np.uint8),
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n).round(1)),
            "edge": np.tile([0.0, -0.0, np.inf, -np.inf, 1.5, np.nan], n // 6),
            "f32": rng.normal(0, 1, n).astype(np.float32),
            "day": pl.date_range(date(2026, 1, 1), date(2026, 3, 1), eager=True).sample(
                n, with_replacement=True, seed=1
            ),
            "took": pl.Series(rng.integers(0, 50, n).astype("timedelta64[ms]")),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        }
    )
    path = tmp_path / "same.parquet"
    frame.write_parquet(path)
    from_frame = project.datasets.add("from_frame", frame)
    from_file = project.datasets.add("from_file", path)
    assert from_frame.profile == from_file.profile
    ours, theirs = project.drift.reference(from_frame.ref), project.drift.reference(from_file.ref)
    assert (ours.rows, ours.columns) == (theirs.rows, theirs.columns)
    for name, col in from_frame.profile["columns"].items():
        s = frame.get_column(name)
        assert col["distinct"] == s.n_unique() - (1 if s.null_count() else 0), name


def test_profile_of_an_empty_table(project: Project, sample_csv: CsvFactory) -> None:
    """A header-only CSV is a table with no rows, and its profile says so."""
    v = project.datasets.add("empty", sample_csv("header.csv", text="a,b\n"))
    assert v.rows == 0
    assert v.profile["columns"]["a"]["count"] == 0


# -- export -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_export_round_trips_the_table(
    project: Project, sample_csv: CsvFactory, tmp_path: Path, suffix: str
) -> None:
    """Exporting to CSV, Parquet or JSON Lines and reading it back gives the same table."""
    v = project.datasets.add("credit", sample_csv())
    dest = project.datasets.export("credit@1", tmp_path / "out" / f"credit{suffix}")
    assert dest == tmp_path / "out" / f"credit{suffix}"
    if suffix == ".csv":
        back = pl.read_csv(dest)
    elif suffix == ".parquet":
        back = pl.read_parquet(dest)
        assert digest_file(dest)[0] == v.digest  # the stored bytes themselves
    else:
        back = pl.read_ndjson(dest)
    assert back.equals(EXPECTED_SAMPLE)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


@pytest.mark.parametrize("name", ["out.tsv", "out.txt", "out"])
def test_export_to_unsupported_extension_is_refused(
    project: Project, sample_csv: CsvFactory, tmp_path: Path, name: str
) -> None:
    """A table export needs a .csv, .parquet or .jsonl destination."""
    project.datasets.add("credit", sample_csv())
    with pytest.raises(InvalidInputError, match=r"choose an output ending in \.csv"):
        project.datasets.export("credit", tmp_path / name)
    assert not (tmp_path / name).exists()


@pytest.fixture
def file_tree(tmp_path: Path) -> Path:
    """A folder with nested folders, binary and empty files, duplicates and a script."""
    root = tmp_path / "images"
    (root / "train" / "cats").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "README.md").write_text("# images\n", encoding="utf-8")
    (root / "train" / "cats" / "1.bin").write_bytes(os.urandom(70_000))
    (root / "train" / "cats" / "2.bin").write_bytes(bytes(range(256)) * 3)
    (root / "test" / "copy-of-2.bin").write_bytes(bytes(range(256)) * 3)
    (root / "test" / "empty.txt").write_bytes(b"")
    script = root / "make.sh"
    script.write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
    script.chmod(0o755)
    return root


def test_folder_becomes_a_file_tree_and_exports_identically(
    project: Project, file_tree: Path, tmp_path: Path
) -> None:
    """A folder is stored as a file tree and exported back byte-identical, executables
    included."""
    v = project.datasets.add("images", file_tree)
    files = _tree(file_tree)
    assert (v.kind, v.rows, v.columns, v.schema) == ("files", None, [], {})
    assert v.profile == {"files": len(files), "bytes": sum(len(b) for b in files.values())}
    assert v.source["format"] == "tree"
    out = project.datasets.export("images@1", tmp_path / "restored")
    assert _tree(out) == files
    assert os.access(out / "make.sh", os.X_OK)
    assert not os.access(out / "README.md", os.X_OK)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".restored")] == []


def test_same_folder_again_is_the_same_version(project: Project, file_tree: Path) -> None:
    """Re-adding an unchanged folder returns the existing version; a change makes version 2."""
    first = project.datasets.add("images", file_tree)
    again = project.datasets.add("images", file_tree)
    assert (again.version, again.digest, again.created) == (1, first.digest, False)
    (file_tree / "test" / "new.txt").write_text("more", encoding="utf-8")
    assert project.datasets.add("images", file_tree).version == 2


_OPENED: list[str] | None = None  # paths opened while a test is recording, else None
_HOOKED: list[bool] = []


def _record_opens(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], str | Path):
        _OPENED.append(str(args[0]))


def test_every_file_is_read_once_when_a_folder_is_added(project: Project, file_tree: Path) -> None:
    """A new version of a folder reads every file once: a new file is hashed and copied to
    the store in the same pass, an unchanged one is only hashed."""
    global _OPENED
    project.datasets.add("images", file_tree)
    (file_tree / "test" / "new.txt").write_text("more", encoding="utf-8")
    if not _HOOKED:  # audit hooks cannot be removed: install once, record only when asked
        sys.addaudithook(_record_opens)
        _HOOKED.append(True)
    _OPENED = []
    try:
        v = project.datasets.add("images", file_tree)
        opened = list(_OPENED)
    finally:
        _OPENED = None
    assert v.version == 2
    reads = {str(f): opened.count(str(f)) for f in file_tree.rglob("*") if f.is_file()}
    assert str(file_tree / "test" / "new.txt") in reads
    assert reads == dict.fromkeys(reads, 1)


def test_file_tree_export_into_a_non_empty_folder_is_refused(
    project: Project, file_tree: Path, tmp_path: Path
) -> None:
    """Restoring a file tree never overwrites an existing folder with content."""
    project.datasets.add("images", file_tree)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="exists and is not an empty folder"):
        project.datasets.export("images", busy)
    assert _tree(busy) == {"keep.txt": b"mine"}
    assert project.datasets.export("images", tmp_path / "fresh").is_dir()


def test_file_tree_is_not_a_table(project: Project, file_tree: Path) -> None:
    """Loading a file tree as a DataFrame explains how to get the files instead."""
    v = project.datasets.add("images", file_tree)
    with pytest.raises(InvalidInputError, match="is a file tree; use `shipyard data get"):
        v.to_polars()


# -- diff, tags, lineage ----------------------------------------------------------------------


def test_diff_reports_schema_rows_and_statistics(project: Project, sample_csv: CsvFactory) -> None:
    """``diff`` lists added, removed and retyped columns, the row change and changed stats."""
    project.datasets.add("credit", sample_csv())
    project.datasets.add(
        "credit",
        pl.DataFrame(
            {
                "id": ["1", "2", "3", "4", "5"],
                "amount": [10.5, 20.0, 7.25, 3.0, 1.0],
                "score": [0.1, 0.2, 0.3, 0.4, 0.5],
            }
        ),
    )
    d = project.datasets.diff("credit@1", "credit@2")
    assert (d["from"], d["to"], d["identical"]) == ("credit@1", "credit@2", False)
    assert d["schema"] == {
        "added": ["score"],
        "removed": ["city"],
        "retyped": [{"column": "id", "from": "Int64", "to": "String"}],
    }
    assert d["rows"] == {"from": 4, "to": 5, "change": 1}
    changes = {(c["column"], c["stat"]): c for c in d["columns"]}
    assert changes[("amount", "nulls")]["to"] == 0
    assert changes[("amount", "count")]["change"] == 2
    assert changes[("amount", "max")] == {
        "column": "amount",
        "stat": "max",
        "from": 10.5,
        "to": 20.0,
        "change": 9.5,
        "relative": pytest.approx(9.5 / 10.5),
    }
    assert not [c for c in d["columns"] if c["column"] in ("city", "score")]


def test_diff_of_a_version_with_itself_is_empty(project: Project, sample_csv: CsvFactory) -> None:
    """Comparing a version with itself reports identical content and no change."""
    project.datasets.add("credit", sample_csv())
    d = project.datasets.diff("credit@1", "credit")
    assert d["identical"]
    assert d["schema"] == {"added": [], "removed": [], "retyped": []}
    assert d["columns"] == []
    assert d["rows"]["change"] == 0


def test_tags_are_set_changed_and_removed(project: Project, sample_csv: CsvFactory) -> None:
    """``tag`` sets, overwrites and removes tags on one version, logging each change."""
    project.datasets.add("credit", sample_csv(), tags={"src": "crm"})
    project.datasets.add("credit", pl.DataFrame({"a": [1]}))
    tagged = project.datasets.tag("credit@1", {"stage": "raw", "owner": "risk"})
    assert tagged.tags == {"src": "crm", "stage": "raw", "owner": "risk"}
    changed = project.datasets.tag("credit@1", {"stage": "clean"}, remove=["owner"])
    assert changed.tags == {"src": "crm", "stage": "clean"}
    assert project.datasets.get("credit@1").tags == {"src": "crm", "stage": "clean"}
    assert project.datasets.get("credit@2").tags == {}
    (last,) = project.audit.list(action="dataset.tag", newest_first=True, limit=1)
    assert last.payload == {
        "set": {"stage": "clean"},
        "removed": ["owner"],
        "tags": {"src": "crm", "stage": "clean"},
    }


def test_removing_an_unknown_tag_is_not_found(project: Project, sample_csv: CsvFactory) -> None:
    """Removing a tag the version does not have names the tags it does have."""
    project.datasets.add("credit", sample_csv(), tags={"src": "crm"})
    events = len(project.audit.list())
    with pytest.raises(NotFoundError, match="has no tag 'nope'; its tags are: src"):
        project.datasets.tag("credit@1", remove=["nope"])
    assert len(project.audit.list()) == events


def test_bad_tag_keys_are_invalid_input(project: Project, sample_csv: CsvFactory) -> None:
    """An empty tag key is refused before anything is stored."""
    with pytest.raises(InvalidInputError, match="invalid tag key"):
        project.datasets.add("credit", sample_csv(), tags={" ": "x"})
    assert project.datasets.list() == []


def test_parents_create_lineage(project: Project, sample_csv: CsvFactory) -> None:
    """Versions made from other versions record their parents; lineage walks both ways."""
    project.datasets.add("raw", sample_csv())
    clean = project.datasets.add("clean", pl.DataFrame({"a": [1]}), parents=["raw@1"])
    features = project.datasets.add("features", pl.DataFrame({"f": [1.0]}), parents=["clean"])
    assert clean.parents == ["raw@1"]
    assert features.parents == ["clean@1"]  # a bare name is pinned to the version it meant
    assert project.datasets.get("clean@1").parents == ["raw@1"]
    raw_to_clean = {
        "parent": "dataset:raw@1",
        "child": "dataset:clean@1",
        "relation": "derived_from",
    }
    clean_to_features = {
        "parent": "dataset:clean@1",
        "child": "dataset:features@1",
        "relation": "derived_from",
    }
    middle = project.datasets.lineage("clean")
    assert (middle["ref"], middle["digest"]) == ("clean@1", clean.digest)
    assert middle["upstream"] == [raw_to_clean]
    assert middle["downstream"] == [clean_to_features]
    assert project.datasets.lineage("features@1")["upstream"] == [clean_to_features, raw_to_clean]
    assert project.datasets.lineage("raw@1")["downstream"] == [raw_to_clean, clean_to_features]
    assert project.datasets.lineage("raw@1")["upstream"] == []


def test_unknown_parent_is_refused_and_nothing_is_written(
    project: Project, sample_csv: CsvFactory, project_state: StateOf
) -> None:
    """A parent that does not exist raises NotFoundError before anything is stored."""
    project.datasets.add("raw", sample_csv())
    before = project_state(project)
    with pytest.raises(NotFoundError, match="has no version 9"):
        project.datasets.add("clean", pl.DataFrame({"a": [1]}), parents=["raw@9"])
    assert project_state(project) == before


# -- bad input --------------------------------------------------------------------------------

# file name, content (None: the file does not exist), the problem the message must name
BAD_FILES = [
    ("ragged.csv", "a,b\n1,2\n3,4,5\n", "line 3 has 3 fields (the header has 2)"),
    ("quotes.csv", 'a,b\n"1,2\n3,4\n', "not a valid CSV file"),
    ("empty.csv", "", "the file is empty"),
    ("blank-header.csv", "\n1,2\n", "the header line is blank"),
    ("dups.csv", "a,b,a\n1,2,3\n", "duplicate column names: 'a'"),
    ("unnamed.csv", "a,,c\n1,2,3\n", "column 2 has an empty name"),
    ("sheet.xlsx", "PK\x03\x04", "unknown file type '.xlsx'"),
    ("no-extension", "a,b\n1,2\n", "unknown file type '(no extension)'"),
    ("missing.csv", None, "no such file or folder"),
    ("broken.parquet", "not parquet", "not a valid Parquet file"),
    ("broken.jsonl", '{"a": 1}\n{oops\n', "not a valid JSON Lines file"),
]


@pytest.mark.parametrize(
    ("name", "content", "problem"), BAD_FILES, ids=[row[0] for row in BAD_FILES]
)
def test_bad_files_are_refused_and_nothing_is_written(
    project: Project,
    tmp_path: Path,
    project_state: StateOf,
    name: str,
    content: str | None,
    problem: str,
) -> None:
    """A bad input file raises InvalidInputError naming the file and the problem, and leaves
    no version, blob, event or staging file behind."""
    project.datasets.add("credit", pl.DataFrame({"a": [1]}))
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    before = project_state(project)
    with pytest.raises(InvalidInputError) as info:
        project.datasets.add("credit", path)
    assert info.value.message.startswith(f"{path}: ")
    assert problem in info.value.message
    assert project_state(project) == before


def test_empty_folder_is_refused(project: Project, tmp_path: Path, project_state: StateOf) -> None:
    """A folder without files is not a dataset; nothing is written."""
    (tmp_path / "nothing" / "inside").mkdir(parents=True)
    before = project_state(project)
    with pytest.raises(InvalidInputError, match="the folder holds no files"):
        project.datasets.add("empty", tmp_path / "nothing")
    assert project_state(project) == before


def test_broken_symlink_in_a_folder_is_refused(
    project: Project, file_tree: Path, project_state: StateOf
) -> None:
    """A file tree with an unreadable entry is refused before any of its files is stored."""
    (file_tree / "dangling").symlink_to(file_tree / "nowhere")
    before = project_state(project)
    with pytest.raises(InvalidInputError, match="dangling: cannot read"):
        project.datasets.add("images", file_tree)
    assert project_state(project) == before


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column names"),
        (pl.DataFrame(), "has no columns"),
        ([1, 2, 3], "cannot add list"),
    ],
    ids=["pandas-duplicate-columns", "no-columns", "not-a-frame"],
)
def test_bad_frames_are_refused(
    project: Project, project_state: StateOf, data: Any, problem: str
) -> None:
    """In-memory data that is not a usable table raises InvalidInputError and writes nothing."""
    before = project_state(project)
    with pytest.raises(InvalidInputError, match=problem):
        project.datasets.add("frame", data)
    assert project_state(project) == before


@pytest.mark.parametrize("name", ["", "bad name", "a/b", "-x"])
def test_bad_dataset_names_are_refused(
    project: Project, sample_csv: CsvFactory, project_state: StateOf, name: str
) -> None:
    """Invalid dataset names are rejected with the rule for names, before anything is read."""
    before = project_state(project)
    with pytest.raises(InvalidInputError, match="invalid dataset name"):
        project.datasets.add(name, sample_csv())
    assert project_state(project) == before


def test_failed_conversions_leave_no_staging_files(tmp_path: Path, sample_csv: CsvFactory) -> None:
    """Many failed CSV conversions in a row leave the staging folder empty, even once polars'
    background writers have finished (they used to recreate the file after the error)."""
    import shipyard

    bad = sample_csv("quotes.csv", text='a,b\n"1,2\n3,4\n')
    with shipyard.init_project(tmp_path / "p") as project:
        for _ in range(100):
            with pytest.raises(InvalidInputError):
                project.datasets.add("credit", bad)
        time.sleep(0.2)
        assert list(project.artifacts.staging_dir().iterdir()) == []


# -- integrity --------------------------------------------------------------------------------


def test_verify_names_the_owner_of_a_corrupted_blob(
    project: Project,
    sample_csv: CsvFactory,
    file_tree: Path,
    tmp_path: Path,
    corrupt_blob: Callable[..., Path],
) -> None:
    """``verify`` passes on a healthy store; after disk rot it names the damaged dataset, and
    reading that dataset fails instead of returning wrong data."""
    v = project.datasets.add("credit", sample_csv())
    project.datasets.add("images", file_tree)
    report = project.verify()
    assert report.ok
    assert report.checked == len(list(project.artifacts.iter_digests()))
    assert (report.corrupt, report.missing, report.unreferenced) == ([], [], 0)

    corrupt_blob(project.artifacts, v.digest)
    report = project.verify()
    assert not report.ok
    assert [(c["digest"], c["owners"]) for c in report.corrupt] == [
        (v.digest, ["dataset 'credit@1' (data)"])
    ]
    assert report.to_dict()["ok"] is False
    events = len(project.audit.list())
    with pytest.raises(IntegrityError) as info:
        project.datasets.get("credit@1").to_polars()
    assert v.digest in info.value.message
    assert "dataset 'credit@1'" in info.value.message
    with pytest.raises(IntegrityError, match="dataset 'credit@1'"):
        project.datasets.export("credit@1", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    assert len(project.audit.list()) == events  # a failed read is not logged as a read


def test_verify_names_every_owner_of_a_shared_blob(
    project: Project, file_tree: Path, tmp_path: Path, corrupt_blob: Callable[..., Path]
) -> None:
    """A corrupted file shared by two file trees is reported with both owners, and restoring
    the tree fails naming the file."""
    project.datasets.add("images", file_tree)
    other = tmp_path / "other"
    other.mkdir()
    shared = file_tree / "train" / "cats" / "1.bin"
    (other / "same.bin").write_bytes(shared.read_bytes())
    project.datasets.add("more", other)
    digest = digest_file(shared)[0]
    corrupt_blob(project.artifacts, digest)
    (entry,) = project.verify().corrupt
    assert entry["digest"] == digest
    assert entry["owners"] == ["dataset 'images@1' (file)", "dataset 'more@1' (file)"]
    with pytest.raises(IntegrityError, match=r"dataset 'images@1' \(file train/cats/1.bin\)"):
        project.datasets.export("images", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_verify_reports_missing_blobs(project: Project, sample_csv: CsvFactory) -> None:
    """A blob deleted from the store is reported missing, with its owner."""
    v = project.datasets.add("credit", sample_csv())
    project.artifacts.delete(v.digest)
    report = project.verify()
    assert not report.ok
    assert report.missing == [{"digest": v.digest, "owners": ["dataset 'credit@1' (data)"]}]


@pytest.mark.postgres
def test_failed_add_keeps_a_blob_a_concurrent_add_reuses(
    pg_schema_url: str, tmp_path: Path
) -> None:
    """When one writer's add fails after storing a blob, a concurrent writer that stored the
    same content still finds its data intact."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    import shipyard

    app = f"race-{uuid.uuid4().hex[:12]}"
    url = make_url(pg_schema_url).update_query_dict({"application_name": app})
    project = shipyard.init_project(tmp_path / "proj", db_url=url.render_as_string(False))
    holder = create_engine(pg_schema_url)
    try:
        project.users.add("carl", "contributor")
        project.users.add("dana", "contributor")
        frame = pl.DataFrame({"x": list(range(100))})
        results: dict[str, Any] = {}

        def add(who: str, name: str) -> None:
            try:
                results[who] = project.as_actor(who).datasets.add(name, frame)
            except Exception as exc:
                results[who] = exc

        def wait_for_blocked(n: int) -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with holder.connect() as c:
                    blocked = c.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE application_name = :app AND wait_event_type = 'Lock'"
                        ),
                        {"app": app},
                    ).scalar_one()
                if blocked >= n:
                    return
                time.sleep(0.02)
            pytest.fail(f"{n} writers never queued on the audit lock")

        # Hold the audit lock while revoking carl's role: carl passes the early role check,
        # uploads the blob, then waits; dana reuses that blob and waits behind carl.
        with holder.connect() as lock:
            tx = lock.begin()
            lock.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
            lock.execute(text("UPDATE users SET role = 'viewer' WHERE name = 'carl'"))
            carl = threading.Thread(target=add, args=("carl", "a"))
            carl.start()
            wait_for_blocked(1)
            dana = threading.Thread(target=add, args=("dana", "b"))
            dana.start()
            wait_for_blocked(2)
            tx.commit()
        carl.join(30)
        dana.join(30)
        assert isinstance(results["carl"], shipyard.PermissionDeniedError)
        assert results["dana"].ref == "b@1"
        assert project.datasets.get("b@1").to_polars().equals(frame)
        assert project.verify().ok
    finally:
        project.close()
        holder.dispose()


@pytest.mark.parametrize(
    "frame",
    [
        pl.DataFrame({"a": [Decimal("1.50"), Decimal("2.25")]}, schema={"a": pl.Decimal(10, 2)}),
        pl.DataFrame({"a": [timedelta(seconds=5), timedelta(minutes=1)]}),
        pl.DataFrame({"a": [2**64 - 1, 1, 1]}, schema={"a": pl.UInt64}),
        pl.DataFrame({"a": [2**100, -(2**100), 3]}, schema={"a": pl.Int128}),
        pl.DataFrame({"a": [2**120, 1, 3]}, schema={"a": pl.UInt128}),
    ],
    ids=["decimal", "duration", "uint64", "int128", "uint128"],
)
def test_unusual_number_and_duration_columns_are_profiled(
    project: Project, frame: pl.DataFrame
) -> None:
    """Decimal, duration, unsigned 64-bit and 128-bit integer columns (which numpy cannot
    hold) are stored, with a profile that gives their range and that JSON readers take."""
    import orjson

    v = project.datasets.add("amounts", frame)
    column = v.profile["columns"]["a"]
    assert column["min"] is not None and column["max"] is not None
    assert column.get("distinct") in (None, frame["a"].n_unique())
    orjson.dumps(v.profile)  # refuses integers beyond 64 bits
    assert v.to_polars().equals(frame)


def test_unconvertible_pandas_frame_is_invalid_input(
    project: Project, project_state: StateOf
) -> None:
    """A pandas frame polars cannot convert raises InvalidInputError and writes nothing."""
    before = project_state(project)
    with pytest.raises(InvalidInputError, match="cannot be stored as a table"):
        project.datasets.add("mixed", pd.DataFrame({"a": [1, "x"]}))
    assert project_state(project) == before


# -- one pass in memory, or streamed ----------------------------------------------------------


def _mixed_table(path: Path, sep: str = ",") -> Path:
    """A few thousand rows of integers, floats, text, dates and nulls, with one short line."""
    lines = [sep.join(["id", "amount", "city", "day", "note"])]
    for i in range(3_000):
        amount = "" if i % 7 == 0 else f"{i * 1.25:.2f}"
        note = "" if i % 5 == 0 else f"n{i % 11}"
        lines.append(
            sep.join(
                [
                    str(i),
                    amount,
                    ["Oslo", "Lima", "Pune"][i % 3],
                    "2024-05-0" + str(1 + i % 9),
                    note,
                ]
            )
        )
    lines.insert(40, sep.join(["9999", "1.5", "Oslo"]))  # short: its last fields are null
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("sep", [",", "\t"], ids=["csv", "tsv"])
def test_a_table_is_the_same_parsed_in_memory_or_streamed(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sep: str
) -> None:
    """A file small enough is parsed in memory in one pass, a larger one is streamed: both
    give the same stored bytes, schema, profile and report of short lines."""
    from shipyard.data import ingest

    path = _mixed_table(tmp_path / ("t.csv" if sep == "," else "t.tsv"), sep)
    in_memory = project.datasets.add("memory", path, allow_ragged=True)
    monkeypatch.setattr(ingest, "IN_MEMORY_BYTES", 0)
    streamed = project.datasets.add("streamed", path, allow_ragged=True)
    assert in_memory.schema["day"] == "Date"
    assert in_memory.source["ragged"]["lines"] == [{"line": 41, "fields": 3}]
    assert (in_memory.digest, in_memory.schema, in_memory.profile, in_memory.source) == (
        streamed.digest,
        streamed.schema,
        streamed.profile,
        streamed.source,
    )


@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "streamed"])
def test_short_lines_are_refused_alike_in_memory_or_streamed(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project_state: StateOf,
    in_memory: bool,
) -> None:
    """Without --allow-ragged a short line is refused by both ways of reading, naming it, and
    nothing is written."""
    from shipyard.data import ingest

    if not in_memory:
        monkeypatch.setattr(ingest, "IN_MEMORY_BYTES", 0)
    path = _mixed_table(tmp_path / "t.csv")
    before = project_state(project)
    with pytest.raises(InvalidInputError, match="line 41 has 3 fields \\(the header has 5\\)"):
        project.datasets.add("credit", path)
    assert project_state(project) == before


def test_a_folder_leaves_no_staging_files_and_its_blobs_read_only(
    project: Project, file_tree: Path
) -> None:
    """Adding a folder stores every file as a read-only blob and leaves nothing in staging;
    the files come back byte for byte."""
    v = project.datasets.add("images", file_tree)
    assert list(project.artifacts.staging_dir().iterdir()) == []
    manifest = json.loads(project.artifacts.read_bytes(v.digest))
    for f in manifest["files"]:
        with project.artifacts.local_copy(f["digest"]) as blob:
            assert blob.stat().st_mode & 0o777 == 0o444
    out = file_tree.parent / "out"
    project.datasets.export("images@1", out)
    assert _tree(out) == _tree(file_tree)


@pytest.mark.parametrize(
    ("count", "size", "threads"),
    [(600, 100, "one"), (200, 70_000, "several")],
    ids=["small-files-one-thread", "large-files-thread-pool"],
)
def test_a_folder_with_a_file_that_fails_to_read_stores_nothing(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project_state: StateOf,
    count: int,
    size: int,
    threads: str,
) -> None:
    """When one file of a large folder cannot be read while the others are being staged
    (by one thread for many small files, in parallel for larger ones), the error names it,
    nothing is stored and no staging file is left behind."""
    from shipyard.data.versions import _tree_threads

    assert (_tree_threads(True, count, count * (size + count)) > 1) is (threads == "several")
    root = tmp_path / "many"
    for i in range(count):
        (root / f"d{i % 6}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 6}" / f"{i:04d}.bin").write_bytes(os.urandom(size + i))
    bad = f"{count // 2 + 33:04d}.bin"  # in a batch after the first
    store = project.artifacts
    real = store.stage_file

    def failing(path: str | Path) -> Any:
        if str(path).endswith(bad):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(store, "stage_file", failing)
    before = project_state(project)
    with pytest.raises(
        InvalidInputError, match=rf"{re.escape(bad)}: cannot read: Permission denied"
    ):
        project.datasets.add("many", root)
    assert project_state(project) == before
    assert list(store.staging_dir().iterdir()) == []
