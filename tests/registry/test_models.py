"""The model registry on SQLite and PostgreSQL: versions logged from runs, signatures and
lineage, loading and batch scoring, aliases and their history, and who may do what."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from shipyard.data.preprocessing import PreprocessingSpec
from shipyard.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from shipyard.project import Project
from shipyard.registry.compiled import compile_predictor
from shipyard.registry.flavors import UntrustedModelError, save_model
from shipyard.stores.artifacts import ArtifactStore
from tests.conftest import ProjectState

NAME = "credit-risk"

SPEC = PreprocessingSpec.from_dict(
    {
        "columns": {
            "age": {"impute": "median", "scale": "standard"},
            "income": {"impute": "median", "scale": "standard"},
            "city": {"impute": "most_frequent", "encode": {"method": "onehot"}},
            "id": {"drop": True},
        }
    }
)


def applicants(n: int = 240, seed: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    """A small credit frame (id, age, income with gaps, city) and a default flag."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, size=n)
    income = rng.normal(3000.0, 900.0, size=n)
    city = rng.choice(["Oslo", "Lima", "Pune"], size=n)
    score = (income - 3000.0) / 900.0 - (age - 50) / 20.0 + (city == "Lima") * 0.5
    target = pd.Series((score + rng.normal(0, 0.5, size=n) > 0).astype(int), name="default")
    income[::17] = np.nan
    frame = pd.DataFrame(
        {"id": np.arange(n), "age": age, "income": income, "city": pd.Series(city, dtype="str")}
    )
    return frame, target


def fit_pipeline(c: float = 1.0) -> Pipeline:
    """Our preprocessing ColumnTransformer followed by a logistic regression, fitted."""
    frame, target = applicants()
    pipeline = Pipeline(
        [("prep", SPEC.to_column_transformer()), ("model", LogisticRegression(C=c))]
    )
    return pipeline.fit(frame, target)


class HandRolled(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A user-defined estimator: a type no model file may bring in unreviewed."""

    def fit(self, X: Any, y: Any) -> HandRolled:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.zeros(len(X), dtype=int)


@dataclass(frozen=True)
class Logged:
    """Two versions of credit-risk logged from one run that read applicants@1."""

    run_id: str
    frame: pd.DataFrame
    v1: Pipeline
    v2: Pipeline


@pytest.fixture(scope="module")
def pipelines() -> tuple[Pipeline, Pipeline]:
    """Two differently regularised pipelines (fitted once for the module)."""
    return fit_pipeline(1.0), fit_pipeline(0.05)


@pytest.fixture
def logged(project: Project, pipelines: tuple[Pipeline, Pipeline]) -> Logged:
    """credit-risk versions 1 and 2, logged by a run with auc 0.83 and input applicants@1."""
    frame, target = applicants()
    project.datasets.add("applicants", frame.assign(default=target))
    with project.start_run(experiment="credit", name="lr") as run:
        run.log_input("applicants@1", context="train")
        run.log_metric("auc", 0.83)
        run.log_model(pipelines[0], NAME, input_example=frame.head())
        run.log_model(pipelines[1], NAME, input_example=frame.head(), description="C=0.05")
    return Logged(run.id, frame, *pipelines)


class RecordingProgress:
    """A progress reporter that remembers each amount it was advanced by."""

    def __init__(self) -> None:
        self.advances: list[float] = []

    def stage(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1) -> None:
        self.advances.append(amount)


# -- logging versions ---------------------------------------------------------------------------


def test_log_model_numbers_versions_and_latest_is_the_newest(
    project: Project, logged: Logged
) -> None:
    """Logging twice under one name gives versions 1 and 2, each audited; the bare name means
    the latest."""
    versions = project.models.versions(NAME)
    assert [v.version for v in versions] == [1, 2]
    assert [v.ref for v in versions] == [f"{NAME}@1", f"{NAME}@2"]
    assert project.models.get(NAME).version == 2
    assert project.models.get(f"{NAME}@latest").version == 2
    assert versions[0].digest != versions[1].digest
    assert versions[1].description == "C=0.05"
    assert all(v.status == "candidate" and v.created_by == "alice" for v in versions)
    [summary] = project.models.list()
    assert (summary.name, summary.latest, summary.versions) == (NAME, 2, 2)
    events = project.audit.list(action="model.register")
    assert [e.entity for e in events] == [f"{NAME}@1", f"{NAME}@2"]
    assert events[0].payload == {
        "digest": versions[0].digest,
        "flavor": "sklearn",
        "run_id": logged.run_id,
        "format": "skops",
        "versions": events[0].payload["versions"],
    }


def test_references_resolve_by_number_alias_digest_or_fail_naming_the_latest(
    project: Project, logged: Logged
) -> None:
    """``NAME@<digest prefix>`` finds its version; an unknown name or version raises
    NotFoundError, the latter naming the latest version."""
    v1 = project.models.get(f"{NAME}@1")
    prefix = v1.digest.split(":", 1)[1][:12]
    assert project.models.get(f"{NAME}@{prefix}").version == 1
    with pytest.raises(NotFoundError, match="latest is 2"):
        project.models.get(f"{NAME}@7")
    with pytest.raises(NotFoundError, match="no model 'nope'"):
        project.models.get("nope")
    with pytest.raises(NotFoundError):
        project.models.versions("nope")


def test_signature_lists_the_input_columns_and_classes(project: Project, logged: Logged) -> None:
    """The signature names every column the pipeline reads, with its type, the columns it
    was fitted on but drops (the id), and the classes it predicts."""
    sig = project.models.get(f"{NAME}@1").signature
    assert sig is not None
    columns = sig["inputs"]["columns"]
    assert list(columns) == ["age", "income", "city"]
    assert sig["ignored"] == ["id"]
    assert {c: s["type"] for c, s in columns.items()} == {
        "age": "int",
        "income": "float",
        "city": "string",
    }
    assert sig["outputs"] == {"kind": "classification", "classes": [0, 1], "dtype": "int"}


def test_lineage_reaches_the_run_and_its_input_datasets(project: Project, logged: Logged) -> None:
    """A version's lineage names the run that logged it and, through it, the dataset it was
    trained on."""
    v = project.models.get(f"{NAME}@1")
    assert v.run_id == logged.run_id
    dataset = project.datasets.get("applicants@1")
    assert v.lineage == [
        {"kind": "run", "ref": logged.run_id, "name": "lr", "by": "alice"},
        {"kind": "dataset", "ref": "applicants@1", "context": "train", "digest": dataset.digest},
    ]
    upstream = project.models.lineage(f"{NAME}@1")["upstream"]
    assert {
        "parent": f"run:{logged.run_id}",
        "child": f"model:{NAME}@1",
        "relation": "produced",
    } in upstream
    assert {
        "parent": "dataset:applicants@1",
        "child": f"run:{logged.run_id}",
        "relation": "input:train",
    } in upstream


def test_metrics_are_a_snapshot_of_the_run_at_registration(
    project: Project, pipelines: tuple[Pipeline, Pipeline]
) -> None:
    """A version keeps the run's metrics as they were when it was logged, including points
    still buffered, and later points do not change it."""
    frame, _ = applicants()
    with project.start_run(experiment="credit") as run:
        run.log_metric("auc", 0.80)
        first = run.log_model(pipelines[0], NAME, input_example=frame.head())
        run.log_metric("auc", 0.85)
    assert first.metrics == {"auc": 0.80}
    assert project.models.get(f"{NAME}@1").metrics == {"auc": 0.80}
    assert project.runs.get(run.id).metrics == {"auc": 0.85}


def test_register_model_refuses_an_unknown_run(
    project: Project, pipelines: tuple[Pipeline, Pipeline], project_state: Any
) -> None:
    """Registering with a run id that matches no run raises NotFoundError and writes nothing."""
    frame, _ = applicants()
    before = project_state(project).events
    with pytest.raises(NotFoundError):
        project.models.register_model(
            NAME, pipelines[0], run_id="ffffffff", input_example=frame.head()
        )
    assert project_state(project).events == before
    assert project.models.list() == []


# -- loading and predicting ---------------------------------------------------------------------


def test_loaded_version_predicts_like_the_pipeline(project: Project, logged: Logged) -> None:
    """``load(NAME@N)`` gives the predictions and probabilities of the pipeline logged as N."""
    one = project.models.load(f"{NAME}@1")
    two = project.models.load(f"{NAME}@2")
    np.testing.assert_array_equal(one.predict(logged.frame), logged.v1.predict(logged.frame))
    np.testing.assert_array_equal(two.predict(logged.frame), logged.v2.predict(logged.frame))
    proba = one.predict_proba(logged.frame)
    assert proba.shape == (len(logged.frame), 2)
    np.testing.assert_allclose(proba, logged.v1.predict_proba(logged.frame))
    assert one.classes is not None and one.classes.tolist() == [0, 1]
    assert project.audit.list(action="model.load")[-1].entity == f"{NAME}@2"


def test_a_version_compiles_when_checked_on_its_own_training_rows(
    project: Project, logged: Logged
) -> None:
    """``reference_rows`` samples the training data its lineage names, shaped like request
    rows; checked on them, the loaded version compiles and the note says what it was
    checked on."""
    rows = project.models.reference_rows(f"{NAME}@1")
    assert len(rows) == len(logged.frame)
    predictor = project.models.load(f"{NAME}@1")
    compiled, note = compile_predictor(predictor, rows=rows)
    assert compiled is not None, note
    assert note.startswith(f"compiled (arithmetic), checked on {len(rows)} reference rows ("), note


def test_unreadable_training_data_gives_no_reference_rows_and_a_warning(
    project: Project,
    logged: Logged,
    corrupt_blob: Callable[[ArtifactStore, str], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reference rows are a sample for a check: a training dataset whose bytes were damaged
    is left out with a warning naming it, and the version is then checked on generated
    rows, saying so."""
    corrupt_blob(project.artifacts, project.datasets.get("applicants@1").digest)
    with caplog.at_level(logging.WARNING, logger="shipyard.registry.models"):
        rows = project.models.reference_rows(f"{NAME}@1")
    assert rows == []
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"model {NAME}@1: cannot read its training data applicants@1: ")
    compiled, note = compile_predictor(project.models.load(f"{NAME}@1"), rows=rows)
    assert compiled is not None, note
    assert "checked on 256 generated rows, for want of reference rows" in note


def test_a_version_saved_with_another_scikit_learn_minor_loads_with_a_warning(
    project: Project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A version saved under scikit-learn 1.4.2 still loads and predicts; its predictor says
    why the compiled path is refused, the load logs that as a warning, and
    ``compile_predictor`` gives that reason."""
    frame, _ = applicants()
    pipeline = fit_pipeline()
    with monkeypatch.context() as patch:  # the version another machine saved it with
        patch.setattr(sklearn, "__version__", "1.4.2")
        v = project.models.register_model(NAME, pipeline, input_example=frame.head())
    assert v.environment["sklearn"] == "1.4.2"
    with caplog.at_level(logging.WARNING, logger="shipyard.registry.models"):
        predictor = project.models.load(v.ref)
    problem = predictor.version_problem
    assert problem is not None
    assert problem.startswith(
        f"the model was saved with scikit-learn 1.4.2 and runs on {sklearn.__version__}; "
    )
    assert [r.getMessage() for r in caplog.records] == [f"model {v.ref}: {problem}"]
    np.testing.assert_array_equal(predictor.predict(frame), pipeline.predict(frame))
    assert compile_predictor(predictor) == (None, f"not compiled: {problem}")


def test_missing_and_mistyped_columns_are_named(project: Project, logged: Logged) -> None:
    """A frame without a signature column, or with a column of another type, raises
    InvalidInputError naming the column, the expected type and the model."""
    model = project.models.load(f"{NAME}@1")
    with pytest.raises(InvalidInputError, match=r"missing columns: income") as info:
        model.predict(logged.frame.drop(columns=["income"]))
    assert f"{NAME}@1" in info.value.message
    assert info.value.details["missing"] == ["income"]
    bad = logged.frame.assign(age=logged.frame["age"].astype(str))
    with pytest.raises(InvalidInputError, match=r"wrong types: age is .*expected int"):
        model.predict_proba(bad)


def test_a_corrupted_model_blob_is_refused_naming_the_model(
    project: Project, logged: Logged, corrupt_blob: Callable[[ArtifactStore, str], Path]
) -> None:
    """Loading a version whose stored bytes were damaged raises IntegrityError naming it;
    the other version still loads."""
    corrupt_blob(project.artifacts, project.models.get(f"{NAME}@1").digest)
    with pytest.raises(IntegrityError, match=f"model '{NAME}@1'"):
        project.models.load(f"{NAME}@1")
    assert len(project.models.load(f"{NAME}@2").predict(logged.frame)) == len(logged.frame)


# -- registering a logged file ------------------------------------------------------------------


def test_register_a_skops_file_the_run_logged(
    project: Project, pipelines: tuple[Pipeline, Pipeline], tmp_path: Path
) -> None:
    """A model file logged as an artifact becomes a version with the file's digest, the run
    as its source, the run's metrics and the signature of the input example logged beside it,
    and predicts like the saved pipeline; an example given explicitly wins; a path the run
    did not log raises NotFoundError listing those it did."""
    frame, _ = applicants()
    save_model(pipelines[0], tmp_path / "model.skops")
    frame.head(5).to_parquet(tmp_path / "input_example.parquet")
    with project.start_run(experiment="credit") as run:
        run.log_metric("auc", 0.8)
        [path] = run.log_artifact(tmp_path / "model.skops", name="models/model.skops")
        run.log_artifact(tmp_path / "input_example.parquet", name="models/input_example.parquet")
    artifact = next(a for a in project.runs.get(run.id).artifacts if a["path"] == path)

    v = project.models.register("credit-file", run_id=run.id[:12], artifact=path)
    assert (v.ref, v.created, v.run_id) == ("credit-file@1", True, run.id)
    assert v.digest == artifact["digest"]
    assert v.metrics == {"auc": 0.8} and v.flavor == "sklearn"
    assert v.signature is not None
    assert list(v.signature["inputs"]["columns"]) == ["age", "income", "city"]
    np.testing.assert_array_equal(
        project.models.load("credit-file").predict(frame), pipelines[0].predict(frame)
    )
    with pytest.raises(InvalidInputError, match="lacks columns the model was fitted on: city"):
        project.models.register(
            "credit-file", run_id=run.id, artifact=path, input_example=frame.drop(columns="city")
        )
    with pytest.raises(NotFoundError, match=r"its artifacts are: models/input_example"):
        project.models.register("credit-file", run_id=run.id, artifact="model.skops")


def test_a_file_with_an_untrusted_type_is_refused_and_nothing_registered(
    project: Project,
    tmp_path: Path,
    project_state: Callable[[Project], ProjectState],
) -> None:
    """A skops file holding a class defined outside scikit-learn raises UntrustedModelError
    naming it; no model, version or event is written."""
    frame, target = applicants(40)
    save_model(HandRolled().fit(frame, target), tmp_path / "custom.skops")
    with project.start_run(experiment="credit") as run:
        run.log_artifact(tmp_path / "custom.skops")
    before = project_state(project)
    with pytest.raises(UntrustedModelError, match="HandRolled") as info:
        project.models.register("custom", run_id=run.id, artifact="custom.skops")
    assert info.value.details["untrusted_types"] == [f"{__name__}.HandRolled"]
    assert project_state(project) == before
    assert project.models.list() == []


def _double(x: Any) -> Any:
    """A function of our own: a FunctionTransformer over it is not a trusted type."""
    return x * 2


def test_a_model_with_an_untrusted_type_is_refused_at_registration_by_every_path(
    project: Project,
    tmp_path: Path,
    project_state: Callable[[Project], ProjectState],
) -> None:
    """A pipeline with a FunctionTransformer over a user function is refused when it is
    registered, whether logged from a run, passed to register_model or registered from a run
    artifact: UntrustedModelError naming the model and the function, with the same types
    listed by each path, and no model, version, blob, blob reference or event is written."""
    from sklearn.preprocessing import FunctionTransformer
    from sqlalchemy import func, select

    from shipyard.stores.db.tables import blob_refs

    frame, target = applicants(40)
    numeric = frame[["age", "income"]].fillna(0.0)
    model = Pipeline(
        [("double", FunctionTransformer(_double)), ("model", LogisticRegression())]
    ).fit(numeric, target)
    save_model(model, tmp_path / "doubled.skops")
    with project.start_run(experiment="credit") as run:
        run.log_artifact(tmp_path / "doubled.skops")
        before = project_state(project)
        with project.db.read() as conn:
            refs_before = conn.execute(select(func.count()).select_from(blob_refs)).scalar()
        refusals = []
        with pytest.raises(UntrustedModelError) as info:
            run.log_model(model, "doubled", input_example=numeric.head())
        refusals.append(info.value)
        with pytest.raises(UntrustedModelError) as info:
            project.models.register_model("doubled", model)
        refusals.append(info.value)
        with pytest.raises(UntrustedModelError) as info:
            project.models.register("doubled", run_id=run.id, artifact="doubled.skops")
        refusals.append(info.value)
        assert project_state(project) == before
        with project.db.read() as conn:
            refs_after = conn.execute(select(func.count()).select_from(blob_refs)).scalar()
        assert refs_after == refs_before

    function = f"{__name__}._double"
    for error in refusals:
        assert "model 'doubled'" in error.message and function in error.message
        assert error.details["untrusted_types"] == [function]
    assert project.models.list() == []


# -- aliases ------------------------------------------------------------------------------------


def test_alias_moves_are_recorded_and_answer_what_held_it_when(
    project: Project, logged: Logged
) -> None:
    """Each move of staging is an event with from, to, actor, time and reason (setting it where
    it already points is none), and ``alias_at`` answers which version held it when."""
    before_any = datetime.now(UTC) - timedelta(seconds=1)
    assert project.models.set_alias(f"{NAME}@1", "staging").version == 1
    between = datetime.now(UTC)
    moved = project.models.set_alias(f"{NAME}@2", "staging", comment="better recall")
    assert moved.version == 2 and moved.aliases == ["staging"]
    assert project.models.get(f"{NAME}@staging").version == 2
    assert project.models.get(f"{NAME}@1").aliases == []

    history = project.models.alias_history(NAME)
    assert [(e.alias, e.from_version, e.to_version) for e in history] == [
        ("staging", None, 1),
        ("staging", 1, 2),
    ]
    assert all(e.actor == "alice" and e.reason == "set" for e in history)
    assert history[1].comment == "better recall"
    assert history[0].time <= between <= history[1].time
    assert history[1].time.tzinfo is not None

    assert project.models.alias_at(NAME, "staging", before_any) is None
    assert project.models.alias_at(NAME, "staging", between) == 1
    assert project.models.alias_at(NAME, "staging", datetime.now(UTC)) == 2
    assert [s.aliases for s in project.models.list()] == [{"staging": 2}]

    project.models.set_alias(f"{NAME}@2", "staging")  # already there: not a move
    assert len(project.models.alias_history(NAME)) == 2


def test_protected_and_malformed_aliases_are_refused_writing_nothing(
    project: Project, logged: Logged, project_state: Callable[[Project], ProjectState]
) -> None:
    """``set_alias(..., "production")`` raises PermissionDeniedError pointing at promotion, an
    alias that is not a word raises InvalidInputError; no alias, event or history is written."""
    before = project_state(project)
    with pytest.raises(PermissionDeniedError, match="promotion"):
        project.models.set_alias(f"{NAME}@1", "production")
    with pytest.raises(PermissionDeniedError, match="protected"):
        project.models.remove_alias(NAME, "production")
    for word in ("3", "latest", "bad alias"):
        with pytest.raises(InvalidInputError, match=f"invalid alias '{word}': an alias is a word"):
            project.models.set_alias(f"{NAME}@1", word)
    assert project_state(project) == before
    assert project.models.alias_history(NAME) == []
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        project.models.get(f"{NAME}@production")


def test_remove_alias_records_the_removal(project: Project, logged: Logged) -> None:
    """Removing an alias frees the name and is kept in its history as a move to nothing."""
    project.models.set_alias(f"{NAME}@2", "staging")
    project.models.remove_alias(NAME, "staging")
    last = project.models.alias_history(NAME, "staging")[-1]
    assert (last.from_version, last.to_version, last.reason) == (2, None, "remove")
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        project.models.get(f"{NAME}@staging")
    assert project.models.alias_at(NAME, "staging", datetime.now(UTC)) is None
    with pytest.raises(NotFoundError):
        project.models.remove_alias(NAME, "staging")


def test_archive_refuses_an_aliased_version_and_archives_others(
    project: Project, logged: Logged
) -> None:
    """A version an alias points at cannot be archived (ConflictError naming the alias); an
    unaliased one is archived and no alias may point at it afterwards."""
    project.models.set_alias(f"{NAME}@2", "staging")
    with pytest.raises(ConflictError, match="staging"):
        project.models.archive(f"{NAME}@2")
    assert project.models.get(f"{NAME}@2").status == "candidate"

    assert project.models.archive(f"{NAME}@1").status == "archived"
    assert [v.status for v in project.models.versions(NAME)] == ["archived", "candidate"]
    with pytest.raises(ConflictError, match="archived"):
        project.models.set_alias(f"{NAME}@1", "champion")


# -- batch scoring ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_suffix", "dest_suffix"), [(".csv", ".parquet"), (".parquet", ".csv")]
)
def test_predict_file_scores_every_row_in_chunks(
    project: Project, logged: Logged, tmp_path: Path, source_suffix: str, dest_suffix: str
) -> None:
    """A file scored 7 rows at a time gets every input row with ``prediction`` and
    ``proba_<class>`` equal to scoring the whole frame in memory."""
    source = tmp_path / f"batch{source_suffix}"
    frame = logged.frame.head(60)
    if source_suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False)
    dest = tmp_path / f"scored{dest_suffix}"
    progress = RecordingProgress()
    doc = project.models.predict_file(f"{NAME}@1", source, dest, chunk_size=7, progress=progress)
    assert doc == {
        "input": str(source),
        "output": str(dest),
        "rows": 60,
        "scored": 60,
        "refused": 0,
        "rejected": None,
    }
    assert max(progress.advances) <= 7 and sum(progress.advances) == 60

    scored = pd.read_parquet(dest) if dest_suffix == ".parquet" else pd.read_csv(dest)
    assert list(scored.columns) == [*frame.columns, "prediction", "proba_0", "proba_1"]
    assert scored["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(scored["prediction"], logged.v1.predict(frame))
    proba = logged.v1.predict_proba(frame)
    np.testing.assert_allclose(scored[["proba_0", "proba_1"]].to_numpy(), proba)


@pytest.mark.parametrize("dest_suffix", [".parquet", ".csv"])
def test_predict_file_keeps_an_int_column_whose_nulls_come_in_a_later_chunk(
    project: Project, logged: Logged, tmp_path: Path, dest_suffix: str
) -> None:
    """A CSV whose int column has a gap only after the first chunk is scored 5 rows at a
    time: every row comes out, the column keeps its whole numbers with the gap empty, and
    the predictions equal scoring the whole frame in memory."""
    frame = logged.frame.head(20).astype({"age": "Int64"})
    frame.loc[12, "age"] = pd.NA
    source = tmp_path / "batch.csv"
    frame.to_csv(source, index=False)
    dest = tmp_path / f"scored{dest_suffix}"
    doc = project.models.predict_file(f"{NAME}@1", source, dest, chunk_size=5)
    assert doc["rows"] == 20

    scored = pd.read_parquet(dest) if dest_suffix == ".parquet" else pd.read_csv(dest)
    expected_age = frame["age"].astype("float64")
    assert scored["age"].isna().tolist() == expected_age.isna().tolist()
    assert scored["age"].dropna().tolist() == expected_age.dropna().tolist()
    if dest_suffix == ".csv":  # written as whole numbers, not as 59.0
        ages = [line.split(",")[1] for line in dest.read_text().splitlines()[1:]]
        assert all(a == "" or a.isdecimal() for a in ages), ages
    in_memory = frame.astype({"age": "float64"})
    np.testing.assert_array_equal(scored["prediction"], logged.v1.predict(in_memory))


def test_predict_file_refuses_rows_that_do_not_fit_the_signature(
    project: Project, logged: Logged, tmp_path: Path
) -> None:
    """A file lacking a signature column raises InvalidInputError naming it, and no output
    file is left behind."""
    folder = tmp_path / "batch"
    folder.mkdir()
    source = folder / "batch.csv"
    logged.frame.drop(columns=["city"]).to_csv(source, index=False)
    with pytest.raises(InvalidInputError, match="missing columns: city"):
        project.models.predict_file(f"{NAME}@1", source, folder / "scored.parquet", chunk_size=7)
    assert [p.name for p in folder.iterdir()] == ["batch.csv"]


def test_an_unwritable_output_is_blamed_on_the_output(
    project: Project, logged: Logged, tmp_path: Path
) -> None:
    """Scoring into a folder that does not exist raises InvalidInputError naming the output,
    not the input."""
    source = tmp_path / "batch.csv"
    logged.frame.head(10).to_csv(source, index=False)
    dest = tmp_path / "missing" / "scored.parquet"
    with pytest.raises(InvalidInputError) as info:
        project.models.predict_file(f"{NAME}@1", source, dest)
    assert str(dest) in info.value.message
    assert "cannot read" not in info.value.message


# -- roles --------------------------------------------------------------------------------------


def test_a_viewer_can_load_and_score_but_not_register_or_move_aliases(
    project: Project,
    logged: Logged,
    tmp_path: Path,
    project_state: Callable[[Project], ProjectState],
) -> None:
    """A viewer is refused registering and alias moves (PermissionDeniedError, nothing
    written) but may load a version, predict and score a file."""
    project.users.add("victor", "viewer")
    viewer = project.as_actor("victor")
    before = project_state(project)
    with pytest.raises(PermissionDeniedError):
        viewer.models.register_model(NAME, logged.v1, input_example=logged.frame.head())
    with pytest.raises(PermissionDeniedError):
        viewer.models.register(NAME, run_id=logged.run_id, artifact="model.skops")
    with pytest.raises(PermissionDeniedError):
        viewer.models.set_alias(f"{NAME}@1", "staging")
    with pytest.raises(PermissionDeniedError):
        viewer.models.archive(f"{NAME}@1")
    assert project_state(project) == before
    assert [v.version for v in project.models.versions(NAME)] == [1, 2]

    predictions = viewer.models.load(f"{NAME}@1").predict(logged.frame)
    np.testing.assert_array_equal(predictions, logged.v1.predict(logged.frame))
    source = tmp_path / "batch.parquet"
    logged.frame.to_parquet(source, index=False)
    doc = viewer.models.predict_file(f"{NAME}@1", source, tmp_path / "out.csv", chunk_size=50)
    assert doc["rows"] == len(logged.frame)
