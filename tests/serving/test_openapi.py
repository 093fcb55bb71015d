"""The server's OpenAPI document (``/openapi.json``, behind ``/docs``): the prediction
endpoints' request and answer bodies described from the version served, exactly as the
server checks them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shipyard.project import Project
from tests.serving.test_app import MODEL, CreditProject, TestClient, without
from tests.serving.test_app import client as client
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project


def test_docs_describe_the_request_body_from_the_signature_and_contract(
    client: TestClient, project: Project
) -> None:
    """/openapi.json (behind /docs) gives /predict a request body whose record lists every
    signature column with the contract's limits, and every $ref in it resolves."""
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    record = schemas["Record"]
    signature = project.models.get(f"{MODEL}@production").signature
    assert list(record["properties"]) == list(signature["inputs"]["columns"])
    contract = project.contracts.get("applicants@1").contract
    age, gender = record["properties"]["age"], record["properties"]["gender"]
    assert (age["type"], age["minimum"], age["maximum"]) == (
        "integer",
        contract.columns["age"].min,
        contract.columns["age"].max,
    )
    assert gender["enum"] == list(contract.columns["gender"].allowed or ())
    predict_op = doc["paths"]["/predict"]["post"]
    body = predict_op["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PredictRequest"}
    answer = predict_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert "probabilities" in schemas[answer["$ref"].rsplit("/", 1)[1]]["properties"]
    infer_op = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text


def test_docs_say_every_column_must_be_sent_as_the_server_checks(
    credit: CreditProject, client: TestClient
) -> None:
    """The Record schema behind /docs requires every column, including those that allow
    null, and does not say they may be left out; the server refuses a record that leaves
    out a column allowing null, and answers it when the column is sent as null."""
    record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert record["required"] == list(record["properties"])
    assert "left out" not in record["description"]
    nullable = [
        name
        for name, prop in record["properties"].items()
        if {"type": "null"} in prop.get("anyOf", [])
    ]
    assert nullable, "the credit signature has columns that allow null"
    column = nullable[0]
    response = client.post("/predict", json={"records": [without(credit.records[0], column)]})
    assert response.status_code == 422
    assert response.json()["details"]["errors"] == [
        {
            "record": 0,
            "field": column,
            "reason": "missing (send null for an unknown value)",
            "check": "missing",
        }
    ]
    sent_as_null = {**credit.records[0], column: None}
    assert client.post("/predict", json={"records": [sent_as_null]}).status_code == 200
