"""The Open Inference Protocol v2 in-process: health, model metadata with the datatypes of
the inputs and outputs as their values are, inference with shapes checked against the data,
and the protocol's ``{"error": ...}`` body for a request that breaks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.data.inference import spec_from_contract
from shipyard.project import Project
from tests.serving.test_app import (
    LABEL,
    MODEL,
    CreditProject,
    TestClient,
    deploy,
    predict,
    serving,
    train,
)
from tests.serving.test_app import client as client
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project

INFER = f"/v2/models/{MODEL}/infer"
# The v2 datatype of each credit column, from the signature's types.
DATATYPES = {
    "age": "INT64",
    "years_employed": "FP64",
    "income": "FP64",
    "gender": "BYTES",
}


def tensors(records: list[dict[str, Any]], types: dict[str, str]) -> list[dict[str, Any]]:
    """One tensor per column of ``records`` that ``types`` names (the model reads it),
    shaped [rows], with its datatype from ``types``."""
    return [
        {"name": c, "shape": [len(records)], "datatype": types[c], "data": [r[c] for r in records]}
        for c in records[0]
        if c in types
    ]


@pytest.fixture
def types(client: TestClient) -> dict[str, str]:
    """The datatype of every input, as the server's model metadata declares it."""
    return {i["name"]: i["datatype"] for i in client.get(f"/v2/models/{MODEL}").json()["inputs"]}


def test_v2_health_and_model_metadata(client: TestClient, project: Project) -> None:
    """Live and ready answer 200; the model metadata lists every signature input with the
    datatype of its type, the prediction output as INT64 (the classes are integers) and the
    probabilities as FP64 with the class names; another model name is a 404."""
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    meta = client.get(f"/v2/models/{MODEL}").json()
    signature = project.models.get(f"{MODEL}@production").signature
    columns = signature["inputs"]["columns"]
    assert meta["name"] == MODEL
    assert meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == list(columns)
    declared = {i["name"]: i["datatype"] for i in meta["inputs"]}
    for column, datatype in DATATYPES.items():
        assert declared[column] == datatype, column
    assert meta["outputs"] == [
        {"name": "prediction", "datatype": "INT64", "shape": [-1]},
        {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [-1, 2],
            "parameters": {"classes": ["0", "1"]},
        },
    ]
    # The demo's pipeline is answered by compiled arithmetic, checked against scikit-learn.
    assert meta["parameters"]["scoring"] == {
        "production": "compiled (arithmetic), checked on 256 reference rows (256 distinct "
        "answers) and 174 edge rows"
    }
    assert client.get("/v2/models/churn").status_code == 404


def test_v2_infer_gives_the_same_predictions_as_predict(
    credit: CreditProject, client: TestClient, types: dict[str, str]
) -> None:
    """/v2/models/credit-risk/infer with one tensor per column returns the predictions and
    probabilities of /predict for the same rows (INT64 and FP64 shaped [rows, classes]),
    the version, the request's id echoed and a request id per row."""
    records = credit.records[:12]
    doc = {"id": "batch-7", "inputs": tensors(records, types)}
    response = client.post(INFER, json=doc)
    assert response.status_code == 200, response.text
    body = response.json()
    prediction, probabilities = body["outputs"]
    expected = predict(client, records)
    assert prediction == {
        "name": "prediction",
        "shape": [12],
        "datatype": "INT64",
        "data": expected["predictions"],
    }
    assert probabilities["name"] == "probabilities"
    assert (probabilities["shape"], probabilities["datatype"]) == ([12, 2], "FP64")
    assert probabilities["parameters"] == {"classes": ["0", "1"]}
    rows = [probabilities["data"][i : i + 2] for i in range(0, 24, 2)]
    assert rows == [[p["0"], p["1"]] for p in expected["probabilities"]]
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL, "1", "batch-7")
    assert len(set(body["parameters"]["request_ids"])) == 12
    wrong = client.post("/v2/models/churn/infer", json=doc)
    assert wrong.status_code == 404


def test_v2_data_nested_one_list_per_row_reads_like_flat_data(
    credit: CreditProject, client: TestClient, types: dict[str, str]
) -> None:
    """Tensors shaped [rows, 1] with data as one list per row give the predictions of the
    same tensors sent flat."""
    records = credit.records[:5]
    flat = tensors(records, types)
    nested = [{**t, "shape": [5, 1], "data": [[v] for v in t["data"]]} for t in flat]
    answers = [client.post(INFER, json={"inputs": ts}) for ts in (flat, nested)]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    assert answers[0].json()["outputs"] == answers[1].json()["outputs"]


def _tensor(column: str, **change: Any) -> Callable[[list[dict[str, Any]]], list[Any]]:
    """Make the tensor of ``column`` take ``change`` (None removes the key)."""

    def make(ts: list[dict[str, Any]]) -> list[Any]:
        out = []
        for t in ts:
            if t["name"] == column:
                t = {**t, **change}
                t = {k: v for k, v in t.items() if v is not None}
            out.append(t)
        return out

    return make


BROKEN = [
    # id, how the tensors are broken, words in the error
    ("shape-longer-than-data", _tensor("age", shape=[4]), ["age", "shape [4]", "3"]),
    ("shape-shorter-than-data", _tensor("age", shape=[2]), ["age", "shape [2]"]),
    ("shape-two-columns", _tensor("age", shape=[3, 2]), ["age", "[rows, 1]"]),
    ("shape-missing", _tensor("age", shape=None), ["age", "shape"]),
    ("shape-not-a-list", _tensor("age", shape="3"), ["age", "shape"]),
    ("shape-negative", _tensor("age", shape=[-3]), ["age", "shape"]),
    ("datatype-missing", _tensor("age", datatype=None), ["age", "datatype"]),
    ("datatype-unknown", _tensor("age", datatype="FLOAT"), ["FLOAT", "FP64"]),
    ("datatype-not-text", _tensor("age", datatype=[]), ["age", "datatype"]),  # was a 500
    ("datatype-of-another-kind", _tensor("gender", datatype="INT64"), ["gender", "BYTES"]),
    ("bool-for-an-int", _tensor("age", datatype="BOOL"), ["age", "INT64"]),
    ("data-missing", _tensor("age", data=None), ["age", "data"]),
    ("data-nested-too-deep", _tensor("age", data=[[[30]], [[40]], [[50]]], shape=[3, 1]),
     ["age", "deeper"]),
    ("lengths-differ", _tensor("age", data=[30, 40], shape=[2]), ["same number of rows"]),
    ("name-twice", lambda ts: [*ts, ts[2]], ["sent twice"]),
    ("no-tensors", lambda ts: [], ["non-empty"]),
]  # fmt: skip


@pytest.mark.parametrize(("breaks", "words"), [pytest.param(b, w, id=i) for i, b, w in BROKEN])
def test_a_request_that_breaks_the_protocol_is_a_400_with_its_error_body(
    credit: CreditProject,
    client: TestClient,
    types: dict[str, str],
    breaks: Callable[[list[dict[str, Any]]], list[Any]],
    words: list[str],
) -> None:
    """A tensor whose shape does not match its data or is not one value per row, a
    datatype that is missing, unknown or not of its column's kind, missing or too deeply
    nested data, tensors of different lengths or sent twice: a 400 whose body is the
    protocol's ``{"error": ...}`` naming the problem, counted as invalid input."""
    body = {"inputs": breaks(tensors(credit.records[:3], types))}
    response = client.post(INFER, json=body)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert list(doc) == ["error"]
    for word in words:
        assert word in doc["error"]


def test_rows_that_fail_their_checks_are_a_422_naming_the_field(
    credit: CreditProject, client: TestClient, types: dict[str, str]
) -> None:
    """Tensors that follow the protocol but hold a value outside the contract are refused
    like /predict's records: a 422 naming the row and the field."""
    ts = _tensor("age", data=[30, 250, 40])(tensors(credit.records[:3], types))
    response = client.post(INFER, json={"inputs": ts})
    assert response.status_code == 422, response.text
    assert response.json()["details"]["errors"][0]["field"] == "age"
    assert response.json()["details"]["errors"][0]["record"] == 1


@pytest.mark.parametrize(
    ("target", "estimator", "datatype", "kind"),
    [
        pytest.param(lambda y: y.map({0: "repaid", 1: "defaulted"}), None, "BYTES", str,
                     id="text-classes"),
        pytest.param(lambda y: y.astype(bool), None, "BOOL", bool, id="bool-classes"),
        pytest.param(lambda y: y.astype(float) * 1000.0, LinearRegression(), "FP64", float,
                     id="regression"),
    ],
)  # fmt: skip
def test_the_prediction_datatype_is_the_type_of_the_predictions(
    credit: CreditProject,
    project: Project,
    target: Callable[[pd.Series], pd.Series],
    estimator: Any,
    datatype: str,
    kind: type,
) -> None:
    """A classifier of text classes answers BYTES, of booleans BOOL, a regressor FP64, in
    the metadata and in each answer, with values of that type."""
    prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
    steps = [
        ("prep", prep.to_column_transformer()),
        ("model", estimator or LogisticRegression(max_iter=1000)),
    ]
    deploy(project, train(project, steps, target=target), "typed")
    with serving(credit) as client:
        meta = client.get(f"/v2/models/{MODEL}").json()
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        response = client.post(INFER, json={"inputs": tensors(credit.records[:4], types)})
    assert meta["outputs"][0] == {"name": "prediction", "datatype": datatype, "shape": [-1]}
    assert response.status_code == 200, response.text
    prediction = response.json()["outputs"][0]
    assert prediction["datatype"] == datatype
    assert all(type(v) is kind for v in prediction["data"]), prediction["data"]
    names = [o["name"] for o in response.json()["outputs"]]
    assert names == (["prediction"] if kind is float else ["prediction", "probabilities"])
