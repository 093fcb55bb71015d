"""The MLflow model registry protocol, driven by the real ``mlflow`` client against a live
server: registered models, versions, tags and aliases map onto shipyard's registry with its
governance intact, and MLflow 3's ``log_model`` registers a skops model as a shipyard version
while a pickled one is stored but never loaded."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from shipyard.project import Project
from tests.server.conftest import Team

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

with warnings.catch_warnings():
    # mlflow.pyfunc warns about type hints of its own modules when first imported.
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc  # noqa: F401

MLFLOW = "/api/2.0/mlflow"

# The end-to-end model-logging tests below take 5-13 s each (the mlflow client saves, uploads
# and loads models); they run on one backend each, as the registry services they end in run
# on both in tests/registry. The skops registration runs on PostgreSQL, a team's setup.
ON_POSTGRES = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
ON_SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def client(live_server: str, team: Team, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    """The ``mlflow`` client pointed at the live server with the contributor's token."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", team.tokens["contributor"])
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    yield MlflowClient(tracking_uri=live_server, registry_uri=live_server)


def _register_skops(project: Project, name: str = "credit") -> None:
    """A shipyard-registered version of ``name`` (trained here, saved with skops)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    project.models.register_model(name, model)


def test_registered_models_are_created_found_updated_and_searched(client: MlflowClient) -> None:
    """Create with tags and a description, get, update, search by name pattern and by tag,
    in pages; a second create of the same name is MLflow's RESOURCE_ALREADY_EXISTS."""
    created = client.create_registered_model("credit", tags={"team": "risk"}, description="v0")
    assert created.name == "credit"
    assert created.tags == {"team": "risk"}
    client.create_registered_model("churn", tags={"team": "growth"})
    client.create_registered_model("credit-eu")

    got = client.get_registered_model("credit")
    assert got.description == "v0" and got.latest_versions == []
    assert isinstance(got.creation_timestamp, int) and got.creation_timestamp > 0

    client.update_registered_model("credit", description="scores applicants")
    assert client.get_registered_model("credit").description == "scores applicants"

    names = [m.name for m in client.search_registered_models(filter_string="name LIKE 'credit%'")]
    assert names == ["credit", "credit-eu"]
    assert [m.name for m in client.search_registered_models("tags.team = 'growth'")] == ["churn"]
    first = client.search_registered_models(max_results=2)
    assert [m.name for m in first] == ["churn", "credit"] and first.token
    rest = client.search_registered_models(max_results=2, page_token=first.token)
    assert [m.name for m in rest] == ["credit-eu"] and not rest.token
    ordered = client.search_registered_models(order_by=["name DESC"])
    assert [m.name for m in ordered] == ["credit-eu", "credit", "churn"]

    with pytest.raises(MlflowException) as err:
        client.create_registered_model("credit")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_registered_model_tags_are_set_and_deleted(client: MlflowClient) -> None:
    """Tags on a registered model come and go; a missing model is RESOURCE_DOES_NOT_EXIST."""
    client.create_registered_model("credit")
    client.set_registered_model_tag("credit", "owner", "risk-team")
    assert client.get_registered_model("credit").tags == {"owner": "risk-team"}
    client.delete_registered_model_tag("credit", "owner")
    assert client.get_registered_model("credit").tags == {}
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("nope")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "nope" in err.value.message


def test_versions_registered_by_shipyard_are_seen_tagged_described_and_searched(
    client: MlflowClient, project: Project
) -> None:
    """shipyard's own versions are MLflow versions with the same numbers; tags, descriptions
    and searches work on them, and get-download-uri says how to load one instead."""
    _register_skops(project)
    _register_skops(project)
    v = client.get_model_version("credit", "2")
    assert v.version == "2" and v.status == "READY" and v.current_stage == "None"
    assert v.user_id == project.actor

    client.set_model_version_tag("credit", "1", "validated", "yes")
    client.update_model_version("credit", "1", description="baseline")
    v1 = client.get_model_version("credit", "1")
    assert v1.tags == {"validated": "yes"} and v1.description == "baseline"
    assert project.models.get("credit@1").description == "baseline"
    client.delete_model_version_tag("credit", "1", "validated")
    assert client.get_model_version("credit", "1").tags == {}

    found = client.search_model_versions("name = 'credit'")
    assert [m.version for m in found] == ["2", "1"]
    assert client.get_registered_model("credit").latest_versions[0].version == "2"
    with pytest.warns(FutureWarning, match="deprecated"):
        latest = client.get_latest_versions("credit", stages=["None"])
    assert [m.version for m in latest] == ["2"]

    with pytest.raises(MlflowException) as err:
        client.get_model_version_download_uri("credit", "1")
    assert "shipyard models load credit@1" in err.value.message


def test_unprotected_aliases_move_and_protected_ones_are_refused(
    client: MlflowClient, project: Project
) -> None:
    """An alias such as champion is set, read and deleted through MLflow and recorded in
    shipyard's alias history; production is refused with PERMISSION_DENIED naming the
    governed commands."""
    _register_skops(project)
    _register_skops(project)
    client.set_registered_model_alias("credit", "champion", "1")
    assert client.get_model_version_by_alias("credit", "champion").version == "1"
    assert client.get_registered_model("credit").aliases == {"champion": "1"}
    assert project.models.get("credit@champion").version == 1
    client.set_registered_model_alias("credit", "champion", "2")
    client.delete_registered_model_alias("credit", "champion")
    moves = [(e.from_version, e.to_version) for e in project.models.alias_history("credit")]
    assert moves == [(None, 1), (1, 2), (2, None)]

    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("credit", "production", "1")
    assert err.value.error_code == "PERMISSION_DENIED"
    assert "shipyard models promote credit@1 --to production" in err.value.message
    with pytest.raises(MlflowException) as err:
        client.delete_registered_model_alias("credit", "production")
    assert err.value.error_code == "PERMISSION_DENIED"
    assert "shipyard models rollback" in err.value.message
    assert "production" not in project.models.get("credit@1").aliases


def test_deleting_archives_and_hides_but_shipyard_keeps_the_history(
    client: MlflowClient, project: Project
) -> None:
    """Deleting a version archives it; deleting the model archives the rest and hides it
    from MLflow, while shipyard still lists every version; creating it again brings it back
    and numbering continues."""
    _register_skops(project)
    _register_skops(project)
    client.delete_model_version("credit", "1")
    assert project.models.get("credit@1").status == "archived"
    with pytest.raises(MlflowException) as err:
        client.get_model_version("credit", "1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert [m.version for m in client.search_model_versions("name = 'credit'")] == ["2"]

    client.delete_registered_model("credit")
    with pytest.raises(MlflowException):
        client.get_registered_model("credit")
    assert [m.name for m in client.search_registered_models()] == []
    assert [v.status for v in project.models.versions("credit")] == ["archived", "archived"]

    client.create_registered_model("credit")
    _register_skops(project)
    assert [m.version for m in client.search_model_versions("name = 'credit'")] == ["3"]


def test_stages_and_renames_are_refused_with_the_way_forward(
    client: MlflowClient, project: Project
) -> None:
    """MLflow 3 deprecates stages and shipyard names are history: both are refused with a
    message that says what to do instead."""
    _register_skops(project)
    with (
        pytest.raises(MlflowException) as err,
        pytest.warns(FutureWarning, match="deprecated"),
    ):
        client.transition_model_version_stage("credit", "1", "Production")
    assert "set_registered_model_alias" in err.value.message
    assert "shipyard models promote credit@1 --to production" in err.value.message
    with pytest.raises(MlflowException) as err:
        client.rename_registered_model("credit", "credit-v2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_bad_filters_and_versions_are_invalid_parameter_values(
    client: MlflowClient, project: Project
) -> None:
    """A filter on something registries do not have, or a version that is not a number, is
    INVALID_PARAMETER_VALUE with a message naming it."""
    _register_skops(project)
    with pytest.raises(MlflowException) as err:
        client.search_model_versions("metrics.auc > 0.5")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and "metrics.auc" in err.value.message
    with pytest.raises(MlflowException) as err:
        client.get_model_version("credit", "one")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_viewer_reads_the_registry_but_cannot_change_it(
    live_server: str, team: Team, project: Project
) -> None:
    """Every write of the registry protocol answers a viewer's token with PERMISSION_DENIED
    and changes nothing; reads work."""
    _register_skops(project)
    headers = team.headers("viewer")
    writes = [
        ("POST", "/registered-models/create", {"name": "other"}),
        ("PATCH", "/registered-models/update", {"name": "credit", "description": "x"}),
        ("DELETE", "/registered-models/delete", {"name": "credit"}),
        ("POST", "/registered-models/set-tag", {"name": "credit", "key": "k", "value": "v"}),
        ("POST", "/registered-models/alias", {"name": "credit", "alias": "a", "version": "1"}),
        ("POST", "/model-versions/create", {"name": "credit", "source": "runs:/" + "0" * 32}),
        ("PATCH", "/model-versions/update", {"name": "credit", "version": "1"}),
        ("DELETE", "/model-versions/delete", {"name": "credit", "version": "1"}),
        (
            "POST",
            "/model-versions/set-tag",
            {"name": "credit", "version": "1", "key": "k", "value": "v"},
        ),
    ]
    with httpx.Client(base_url=live_server + MLFLOW, headers=headers, timeout=30) as http:
        for method, path, body in writes:
            r = http.request(method, path, json=body)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED", path
        r = http.get("/registered-models/get", params={"name": "credit"})
        assert r.status_code == 200
        assert r.json()["registered_model"]["latest_versions"][0]["version"] == "1"
        assert isinstance(r.json()["registered_model"]["creation_timestamp"], int)
    assert project.models.get("credit@1").status == "candidate"
    assert [m.name for m in project.models.list()] == ["credit"]


# -- mlflow.sklearn.log_model end to end ----------------------------------------------------------


def _training_data() -> tuple[object, object]:
    import pandas as pd

    x = pd.DataFrame(
        {
            "age": [22.0, 35.0, 47.0, 51.0, 62.0, 29.0, 41.0, 58.0],
            "income": [18.0, 42.0, 55.0, 61.0, 30.0, 25.0, 48.0, 70.0],
        }
    )
    y = [0, 0, 1, 1, 1, 0, 1, 1]
    return x, y


@pytest.fixture
def tracking(client: MlflowClient, live_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fluent ``mlflow`` API on the live server; loading a model back is allowed."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true")
    mlflow.set_tracking_uri(live_server)
    mlflow.set_registry_uri(live_server)
    return live_server


# mlflow 3.18 compares a frame's columns with a range when it saves an input example, which
# pandas 3 deprecates; the warning is mlflow's, not shipyard's.
@pytest.mark.filterwarnings("ignore:Operation with range is deprecated")
@ON_POSTGRES
def test_a_skops_model_logged_with_registration_becomes_a_shipyard_version(
    tracking: str, project: Project
) -> None:
    """``mlflow.sklearn.log_model(..., registered_model_name=...)`` with skops registers a
    shipyard version (sklearn flavor, signature from the input example, lineage to the run)
    that shipyard loads with its trusted-type rules, and the ``mlflow`` client loads
    ``models:/credit/1`` back with the same predictions."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _training_data()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("auc", 0.9)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="credit",
            serialization_format="skops",
            input_example=x.head(3),
        )
    assert str(info.registered_model_version) == "1"

    version = project.models.get("credit@1")
    assert version.flavor == "sklearn"
    assert version.run_id == run.info.run_id
    assert version.lineage[0] == {
        "kind": "run",
        "ref": run.info.run_id,
        "name": run.info.run_name,
        "by": "carol",
    }
    assert version.signature is not None
    assert list(version.signature["inputs"]["columns"]) == ["age", "income"]
    expected = model.predict(x)
    assert list(project.models.load("credit@1").predict(x)) == list(expected)

    loaded = mlflow.pyfunc.load_model("models:/credit/1")
    assert np.array_equal(np.asarray(loaded.predict(x)), expected)
    mv = MlflowClient().get_model_version("credit", "1")
    assert mv.run_id == run.info.run_id and mv.source == f"models:/{info.model_id}"
    assert project.mlflow_registry.get_version("credit", 1).logged_model_id == info.model_id


class Tripwire:
    """Counts how often an object of this class is unpickled (``__setstate__``)."""

    unpickled = 0

    def __init__(self) -> None:
        self.armed = True

    def __setstate__(self, state: dict[str, object]) -> None:
        Tripwire.unpickled += 1
        self.__dict__.update(state)


@ON_SQLITE
def test_a_pickled_model_is_stored_but_never_loaded_or_registered(
    tracking: str, project: Project
) -> None:
    """A cloudpickle model uploads (its files stay with the logged model) but registering it
    is refused with a message naming skops, nothing is registered, and nothing was
    unpickled on the way."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    x, y = _training_data()
    model = LogisticRegression().fit(x, y)
    model.tripwire = Tripwire()  # type: ignore[attr-defined]
    Tripwire.unpickled = 0
    with mlflow.start_run(), pytest.raises(MlflowException) as err:
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name="credit", serialization_format="cloudpickle"
        )
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "never loads a pickle" in err.value.message
    assert 'serialization_format="skops"' in err.value.message
    assert Tripwire.unpickled == 0
    assert project.models.list()[0].versions == 0

    stored = project.logged_models.search(None, "name = 'model'").items
    assert len(stored) == 1
    files = [f.path for f in project.artifact_tree.list(stored[0].artifact_path)]
    assert "model.pkl" in files and "MLmodel" in files


@ON_SQLITE
def test_runs_uri_of_a_logged_model_resolves_through_the_logged_model(tracking: str) -> None:
    """``runs:/<run>/model`` of an MLflow 3 logged model loads (the client finds the logged
    model by name through the logged-models search)."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x, y = _training_data()
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="skops")
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(np.asarray(loaded.predict(x)), model.predict(x))
