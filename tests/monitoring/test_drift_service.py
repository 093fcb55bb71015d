"""The drift service on SQLite and PostgreSQL: references stored with table versions (and
made on first use for older ones), a model's reference found through its lineage, and drift
of a dataset version or a deployment's window against it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import delete, select

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.monitoring.reference import ReferenceProfile, build_reference
from shipyard.project import Project
from shipyard.stores.db.tables import dataset_versions, datasets, drift_references
from tests.monitoring.conftest import WINDOW_ROWS, training_frame


def stored_rows(project: Project, name: str) -> list[dict[str, object]]:
    with project.db.read() as conn:
        return [
            json.loads(r.reference)
            for r in conn.execute(
                select(drift_references.c.reference)
                .join(
                    dataset_versions, dataset_versions.c.id == drift_references.c.dataset_version_id
                )
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(datasets.c.name == name)
            )
        ]


def test_a_table_version_stores_its_reference_when_added_equal_to_a_fresh_build(
    served: Project,
) -> None:
    """Adding a table stores its drift reference with the version; it is the reference a
    fresh build of the same data gives, with the version as its source."""
    [doc] = stored_rows(served, "train")
    fresh = build_reference(training_frame(), source="train@1")
    assert ReferenceProfile.from_json(doc) == fresh
    assert served.drift.reference("train@1") == fresh
    assert served.drift.reference("train").source == "train@1"


def test_a_version_from_before_references_gets_one_on_first_use_once(served: Project) -> None:
    """A version stored without a reference (as versions added before references were)
    gets one on first use, equal to a fresh build; four concurrent first uses all succeed,
    agree, and leave exactly one stored reference."""
    frame = training_frame().with_columns(pl.col("x2") * 2)
    v = served.datasets.add("older", frame)
    with served.db.write() as conn:  # as a version added before references were stored
        ids = select(dataset_versions.c.id).join(datasets).where(datasets.c.name == "older")
        conn.execute(delete(drift_references).where(drift_references.c.dataset_version_id.in_(ids)))
    assert stored_rows(served, "older") == []

    results: list[ReferenceProfile] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            results.append(served.drift.reference(v.ref))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert results == [build_reference(frame, source="older@1")] * 4
    assert len(stored_rows(served, "older")) == 1


def test_reading_a_reference_is_logged_as_a_read_of_the_dataset(served: Project) -> None:
    """Reading a reference shows in the access log as a read of that dataset version."""
    served.datasets.add("logged", training_frame().head(20))
    assert served.audit.list(action="dataset.read", entity="logged@1") == []
    served.drift.reference("logged@1")
    [event] = served.audit.list(action="dataset.read", entity="logged@1")
    assert event.actor == "alice" and event.payload["via"] == "drift reference"


def test_a_file_tree_has_no_reference(served: Project, tmp_path: Path) -> None:
    """A file-tree version has no drift reference: the error says references are for
    tables."""
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    served.datasets.add("tree", folder)
    with pytest.raises(InvalidInputError, match="file tree"):
        served.drift.reference("tree@1")


def test_a_model_reference_is_its_training_data_found_through_lineage(served: Project) -> None:
    """A model version's reference is the dataset version its run trained on; a model
    registered without a run has none, and the error says to pass --reference."""
    assert served.drift.reference_of_model("m@production") == "train@1"
    with pytest.raises(NotFoundError, match=r"no training data.*--reference"):
        served.drift.reference_of_model("bare@1")


def test_a_shifted_dataset_drifts_in_the_shifted_column_only(served: Project) -> None:
    """Comparing a dataset version with a copy whose x1 moved flags x1 and nothing else;
    with itself (stored, or as a pandas frame), nothing drifts; fewer than 200 rows is
    insufficient data, not drift."""
    report = served.drift.compare("train@1", current="shifted@1")
    assert (report.reference, report.current) == ("train@1", "shifted@1")
    assert report.drifted_columns == ["x1"]
    assert {c.column for c in report.columns} == {"x1", "x2", "c", "y"}
    same = served.drift.compare("train@1", current="train@1")
    assert same.verdict == "no drift" and same.drifted_columns == []
    small = served.drift.compare("train@1", current="small@1")
    assert small.verdict == "insufficient data"
    frame = served.drift.compare("train@1", current=training_frame().to_pandas())
    assert (frame.current, frame.verdict) == ("frame", "no drift")


def test_a_model_window_is_its_deployment_inputs_weighted_by_importance(served: Project) -> None:
    """``m@production`` over the last hour reads what m-live answered, compares the
    model's inputs only (x1, x2) with its training data, weights them by permutation
    importance (x1 carries it), and the dataset drifts although one column of two did."""
    report = served.drift.compare("m@production", window_seconds=3600)
    assert report.reference == "train@1"
    assert report.current == "m-live over the last 1h"
    assert report.current_rows == WINDOW_ROWS
    assert {c.column: c.verdict for c in report.columns} == {"x1": "drift", "x2": "no drift"}
    weights = {c.column: c.weight for c in report.columns}
    assert weights["x1"] > 100 * weights["x2"]
    assert report.verdict == "drift" and report.share > 0.99
    # the same window named by deployment, against another reference: x1 (shifted) agrees
    other = served.drift.compare(
        "m@1", window_seconds=3600, deployment="m-live", reference="shifted@1"
    )
    assert "x1" not in other.drifted_columns


def test_a_window_needs_exactly_one_deployment(served: Project) -> None:
    """A window of an alias served by two deployments names both; a version no deployment
    serves says so; a dataset subject needs --deployment; a deployment of another model is
    refused."""
    with pytest.raises(InvalidInputError, match="2 deployments: s1, s2"):
        served.drift.compare("m@staging", window_seconds=60)
    with pytest.raises(NotFoundError, match="no deployment serves bare@1"):
        served.drift.compare("model:bare@1", window_seconds=60, reference="train@1")
    with pytest.raises(InvalidInputError, match="--deployment"):
        served.drift.compare("dataset:bare@1", window_seconds=60)
    with pytest.raises(InvalidInputError, match="serves model 'm', not 'bare'"):
        served.drift.compare(
            "model:bare@1", window_seconds=60, deployment="m-live", reference="train@1"
        )


def test_a_subject_is_a_model_or_a_dataset(served: Project) -> None:
    """A name held by a model and a dataset must be prefixed; an unknown name is not found;
    the current data is a dataset or a window, exactly one of them."""
    with pytest.raises(InvalidInputError, match="both a model and a dataset"):
        served.drift.compare("bare@1", current="train@1")
    with pytest.raises(NotFoundError, match="no model or dataset named 'nothing'"):
        served.drift.compare("nothing@1", current="train@1")
    with pytest.raises(InvalidInputError, match="not both"):
        served.drift.compare("train@1", current="train@1", window_seconds=60)
    with pytest.raises(InvalidInputError, match="give the current data"):
        served.drift.compare("train@1")
