"""The model server in-process: ``create_app(ServeConfig(...))`` behind Starlette's TestClient
(used as a context manager, so the lifespan loads the models, follows the aliases and flushes
the prediction log on exit).

The credit project every test serves is built once per worker process (a dataset with a bound
contract, a split whose train part is checked against it, two logistic regressions trained on
that part: ``credit-risk@1`` in production, ``credit-risk@2`` as challenger) and copied for
each test, so no test sees another's traffic or alias moves. The other serving test modules
build their projects with :func:`credit_copy` too.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from starlette.exceptions import StarletteDeprecationWarning

import shipyard
from shipyard.data.inference import infer_contract, spec_from_contract
from shipyard.data.splits import SplitSpec
from shipyard.demo.data import credit_applicants
from shipyard.errors import NotFoundError
from shipyard.project import Project
from shipyard.serving.app import ServeConfig, create_app
from shipyard.serving.inputs import MAX_ROWS

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; the test client works the same on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

MODEL = "credit-risk"
LABEL = "default"
REPO = Path(__file__).resolve().parents[2]


# -- the credit project -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditProject:
    """A copy of the credit project: where it is, its two versions, and held-out applicants
    as a client would send them (JSON records without the label) with their true labels."""

    root: Path
    production: str
    challenger: str
    records: list[dict[str, Any]]
    labels: list[int]

    def open(self) -> Project:
        return shipyard.open_project(self.root, actor="alice")

    def frame(self, n: int | None = None) -> pd.DataFrame:
        """The first ``n`` records as the model takes them (what the client sent, parsed)."""
        frame = pd.DataFrame(self.records[:n])
        return frame.assign(application_date=pd.to_datetime(frame["application_date"]))


def build_credit_project(root: Path, *, rows: int = 800) -> CreditProject:
    """Build the credit project at ``root`` as alice (admin): credit@1 checked against the
    inferred and bound contract applicants@1, split 80/20 into credit.train@1 (checked
    against the contract too: the server refuses requests outside it) and credit.test@1;
    both versions approved by bob (an approver), credit-risk@1 (C=1) promoted to production
    under a project policy that requires nothing, credit-risk@2 (C=0.01) to challenger."""
    with shipyard.init_project(root, actor="alice") as project:
        frame = credit_applicants(rows)
        contract = project.contracts.add("applicants", infer_contract(frame))
        project.contracts.bind("credit", "applicants")
        credit = project.datasets.add("credit", frame, message=f"{rows} synthetic applicants")
        parts = project.datasets.split(credit.ref, SplitSpec({"train": 0.8, "test": 0.2}, seed=1))
        project.datasets.validate(parts["train"].ref, contract=contract.ref)
        train = parts["train"].to_pandas()
        x, y = train.drop(columns=[LABEL]), train[LABEL]
        prep = spec_from_contract(contract.contract, target=LABEL)
        refs = []
        for c in (1.0, 0.01):
            steps = [
                ("prep", prep.to_column_transformer()),
                ("model", LogisticRegression(C=c, max_iter=1000)),
            ]
            pipeline = Pipeline(steps).fit(x, y)
            with project.start_run(MODEL, name=f"logistic-regression-c{c}") as run:
                run.log_input(parts["train"].ref, "train")
                refs.append(run.log_model(pipeline, MODEL, input_example=x.head(20)).ref)
        project.policies.set("*", {})
        project.users.add("bob", "approver")
        bob = project.as_actor("bob")
        for ref in refs:
            bob.approvals.approve(ref, comment="reviewed")
        bob.promotions.promote(refs[0], to="production")
        bob.promotions.promote(refs[1], to="challenger")
        test = parts["test"].to_pandas()
        records = json.loads(
            test.drop(columns=[LABEL]).to_json(orient="records", date_format="iso")
        )
        return CreditProject(root, refs[0], refs[1], records, test[LABEL].tolist())


_TEMPLATE: list[CreditProject] = []


def credit_copy(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> CreditProject:
    """A private copy at ``dest`` of the credit project (built once per process)."""
    if not _TEMPLATE:
        root = tmp_path_factory.mktemp("credit-template") / "proj"
        _TEMPLATE.append(build_credit_project(root))
    template = _TEMPLATE[0]
    shutil.copytree(template.root, dest)
    return CreditProject(
        dest, template.production, template.challenger, template.records, template.labels
    )


@pytest.fixture
def credit(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> CreditProject:
    """This test's own copy of the credit project."""
    return credit_copy(tmp_path_factory, tmp_path / "proj")


@pytest.fixture
def project(credit: CreditProject) -> Iterator[Project]:
    """The credit project opened as alice, next to the server, as an operator would."""
    with credit.open() as proj:
        yield proj


@contextmanager
def serving(credit: CreditProject, **options: Any) -> Iterator[TestClient]:
    """A running server for ``credit-risk`` (production only unless ``routes`` says
    otherwise, aliases checked every 0.2 s); 5xx come back as responses, not exceptions."""
    config = ServeConfig(
        project=str(credit.root),
        model=MODEL,
        routes=options.pop("routes", {"production": 100}),
        reload_seconds=options.pop("reload_seconds", 0.2),
        **options,
    )
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(credit: CreditProject) -> Iterator[TestClient]:
    """A server for the production alias of this test's credit project."""
    with serving(credit) as c:
        yield c


# -- reading /metrics and the prediction log ----------------------------------------------------


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples named ``name`` (e.g. ``shipyard_requests_total``) in a Prometheus text
    exposition, with their labels."""
    return [
        (dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def samples(client: TestClient, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples named ``name`` in the server's ``GET /metrics``."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return metric_samples(response.text, name)


def metric(client: TestClient, name: str, /, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(
        v for got, v in samples(client, name) if all(got.get(k) == w for k, w in labels.items())
    )


def logged(
    project: Project, rows: int, *, include_shadow: bool = False, timeout: float = 10.0
) -> pd.DataFrame:
    """The prediction log once it holds at least ``rows`` rows (it is written in batches
    about every second); fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        log = project.predictions.list(MODEL, include_shadow=include_shadow)
        if len(log) >= rows or time.monotonic() > deadline:
            assert len(log) >= rows, f"the prediction log has {len(log)} of {rows} rows"
            return log
        time.sleep(0.1)


def predict(client: TestClient, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def without(record: dict[str, Any], column: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != column}


# -- predictions --------------------------------------------------------------------------------


def test_records_get_predictions_probabilities_and_one_request_id_per_row(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """POST /predict with records answers with the production version's predictions, the
    class probabilities and a distinct request id per row, as the registry's model would."""
    body = predict(client, credit.records[:25])
    expected = project.models.load(credit.production).predict(credit.frame(25))
    assert body["model"] == MODEL
    assert body["version"] == 1
    assert body["alias"] == "production"
    assert body["predictions"] == expected.tolist()
    assert len(body["request_ids"]) == len(set(body["request_ids"])) == 25
    assert len(body["probabilities"]) == 25
    for probs, predicted in zip(body["probabilities"], body["predictions"], strict=True):
        assert set(probs) == {"0", "1"}
        assert sum(probs.values()) == pytest.approx(1.0)
        assert max(probs, key=probs.get) == str(predicted)


def test_mlflow_dataframe_split_gives_the_same_predictions(
    credit: CreditProject, client: TestClient
) -> None:
    """MLflow's ``dataframe_split`` body is answered exactly like the same rows as records."""
    records = credit.records[:10]
    columns = list(records[0])
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
    response = client.post("/predict", json={"dataframe_split": split})
    assert response.status_code == 200, response.text
    as_records = predict(client, records)
    assert response.json()["predictions"] == as_records["predictions"]
    assert response.json()["probabilities"] == as_records["probabilities"]


# -- refused input ------------------------------------------------------------------------------


def _with(column: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda r: {"records": [r, {**r, column: value}]}


BAD_BODIES = [
    # id, body from a valid record (a str is sent as is), status, reason, words in the error
    ("missing-column", lambda r: {"records": [without(r, "income")]}, 422, "invalid_input",
     ["record 0", "income", "missing"]),
    ("wrong-type", _with("age", "forty"), 422, "invalid_input",
     ["record 1", "age", "valid integer"]),
    ("outside-contract-range", _with("age", 250), 422, "invalid_input",
     ["record 1", "age", "less than or equal to"]),
    ("unknown-category", _with("gender", "femal"), 422, "invalid_input",
     ["record 1", "gender", "must be one of"]),
    ("null-in-required-column", _with("credit_score", None), 422, "invalid_input",
     ["record 1", "credit_score"]),
    ("malformed-json", lambda r: '{"records": [', 400, "malformed_json", ["not valid JSON"]),
    ("empty-body", lambda r: "", 400, "malformed_json", ["not valid JSON"]),
    ("empty-records", lambda r: {"records": []}, 422, "invalid_input", ["no rows"]),
    ("top-level-list", lambda r: [r], 422, "invalid_input", ["records"]),
    ("top-level-number", lambda r: 7, 422, "invalid_input", ["records"]),
    ("unknown-key", lambda r: {"rows": [r]}, 422, "invalid_input", ["records", "dataframe_split"]),
    ("records-not-objects", lambda r: {"records": [[1, 2]]}, 422, "invalid_input",
     ["list of objects"]),
    ("records-not-a-list", lambda r: {"records": r}, 422, "invalid_input", ["list of objects"]),
    ("split-without-columns", lambda r: {"dataframe_split": {"data": [[1]]}}, 422,
     "invalid_input", ["columns"]),
    ("split-short-row", lambda r: {"dataframe_split": {"columns": list(r), "data": [[1, 2]]}},
     422, "invalid_input", ["row 0", "2 values"]),
    ("too-many-rows", lambda r: {"records": [{}] * (MAX_ROWS + 1)}, 413, "body_too_large",
     ["at most 10,000 rows"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make_body", "status", "reason", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES],
)
def test_bad_input_is_a_4xx_that_names_the_problem_and_is_counted(
    credit: CreditProject,
    client: TestClient,
    make_body: Callable[[dict[str, Any]], Any],
    status: int,
    reason: str,
    words: list[str],
) -> None:
    """Each kind of bad /predict body gets its 4xx with an error naming the field and the
    reason, and one more count in shipyard_prediction_errors_total for that reason."""
    body = make_body(credit.records[0])
    before = metric(client, "shipyard_prediction_errors_total", reason=reason)
    if isinstance(body, str):
        response = client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error
    assert metric(client, "shipyard_prediction_errors_total", reason=reason) == before + 1
    assert metric(client, "shipyard_requests_total", code=str(status)) >= 1


def test_validation_details_list_every_field_and_reason(
    credit: CreditProject, client: TestClient
) -> None:
    """A refused record lists each bad field with its reason in ``details.errors``."""
    record = {**credit.records[0], "age": 250, "gender": "femal"}
    response = client.post("/predict", json={"records": [credit.records[1], record]})
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.json()["details"]["errors"]}
    assert set(errors) == {"age", "gender"}
    assert all(e["record"] == 1 and e["reason"] for e in errors.values())
    assert errors["gender"]["reason"].startswith("must be one of")


def test_a_body_over_the_limit_is_refused_with_413_declared_or_streamed(
    credit: CreditProject,
) -> None:
    """With ``max_body_bytes`` at 4 kB, a larger body is refused with 413 whether it declares
    its length or arrives in chunks; a small one is still answered."""
    with serving(credit, max_body_bytes=4096) as client:
        big = json.dumps({"records": credit.records[:40]}).encode()
        assert len(big) > 4096
        declared = client.post(
            "/predict", content=big, headers={"content-type": "application/json"}
        )
        chunks = (big[i : i + 1000] for i in range(0, len(big), 1000))
        streamed = client.post(
            "/predict", content=chunks, headers={"content-type": "application/json"}
        )
        small = client.post("/predict", json={"records": credit.records[:2]})
        assert declared.status_code == streamed.status_code == 413
        assert "4,096 bytes" in declared.json()["error"]
        assert small.status_code == 200
        assert metric(client, "shipyard_prediction_errors_total", reason="body_too_large") == 2


# Hypothesis: bodies a careless or hostile client could send. Names and values are drawn so
# that records often reach the signature and contract checks, not only the shape checks.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["2026-02-01", "2026-02-01T00:00:00+05:00", "female", "car", "nan", ""])
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _bodies(record: dict[str, Any]) -> st.SearchStrategy[Any]:
    columns = list(record)
    keys = st.sampled_from(columns) | st.text(max_size=10)
    random_records = st.lists(st.dictionaries(keys, _json, max_size=8), max_size=4)
    one_bad_value = st.builds(lambda c, v: {**record, c: v}, st.sampled_from(columns), _json)
    split = st.builds(
        lambda cols, data: {"dataframe_split": {"columns": cols, "data": data}},
        st.lists(st.sampled_from(columns) | st.text(max_size=6), max_size=5),
        st.lists(st.lists(_json, max_size=5), max_size=3),
    )
    tensors = st.lists(
        st.fixed_dictionaries({"name": keys, "data": st.lists(_json, max_size=3)}), max_size=4
    )
    return st.one_of(
        _json,
        st.builds(lambda rs: {"records": rs}, random_records),
        st.builds(lambda rs: {"records": rs}, st.lists(one_bad_value, min_size=1, max_size=3)),
        split,
        st.builds(lambda ts: {"inputs": ts}, tensors),
    )


def test_fuzzed_bodies_never_get_a_5xx(credit: CreditProject, client: TestClient) -> None:
    """Random JSON documents, random records with random keys and values, valid records with
    one random value, random dataframe_split and v2 tensors: /predict and /v2 infer answer
    each with a status below 500. (Non-text column names in dataframe_split are a known 500,
    pinned by its own test below.)"""
    seen: Counter[int] = Counter()

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=_bodies(credit.records[0]), v2=st.booleans())
    def check(body: Any, v2: bool) -> None:
        path = f"/v2/models/{MODEL}/infer" if v2 else "/predict"
        response = client.post(
            path, content=json.dumps(body), headers={"content-type": "application/json"}
        )
        seen[response.status_code] += 1
        assert response.status_code < 500, (body, response.text)

    check()
    assert sum(seen.values()) >= 30
    assert metric(client, "shipyard_prediction_errors_total", reason="model_error") == 0


# Bugs found by these tests (see the reason of each): bad input that gets a 500.


def test_non_text_column_names_in_dataframe_split_are_refused_with_422(
    client: TestClient,
) -> None:
    """A dataframe_split whose column names are not strings is refused with a 422."""
    response = client.post(
        "/predict", json={"dataframe_split": {"columns": [["a"]], "data": [[1]]}}
    )
    assert response.status_code == 422, response.text
    assert metric(client, "shipyard_prediction_errors_total", reason="model_error") == 0


@pytest.mark.parametrize("path", ["/predict", "/feedback", "/kpi"])
def test_a_deeply_nested_body_is_refused_as_malformed(client: TestClient, path: str) -> None:
    """A 200 kB body of nested brackets (deeper than the JSON parser recurses) is a 4xx."""
    response = client.post(
        path, content="[" * 100_000 + "]" * 100_000, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text


# -- Open Inference Protocol v2 -----------------------------------------------------------------


def test_v2_health_and_model_metadata(client: TestClient, project: Project) -> None:
    """Live and ready answer 200; the model metadata lists every signature input with its
    v2 datatype, and another model name is a 404."""
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    meta = client.get(f"/v2/models/{MODEL}").json()
    signature = project.models.get(f"{MODEL}@production").signature
    columns = signature["inputs"]["columns"]
    assert meta["name"] == MODEL
    assert meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == list(columns)
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert (types["age"], types["income"], types["gender"]) == ("INT64", "FP64", "BYTES")
    # The demo's pipeline is answered by compiled arithmetic, checked against scikit-learn.
    assert meta["parameters"]["scoring"] == {
        "production": "compiled (arithmetic), checked on 256 rows"
    }
    assert client.get("/v2/models/churn").status_code == 404


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
        {"record": 0, "field": column, "reason": "missing (send null for an unknown value)"}
    ]
    sent_as_null = {**credit.records[0], column: None}
    assert client.post("/predict", json={"records": [sent_as_null]}).status_code == 200


def test_v2_infer_gives_the_same_predictions_as_predict(
    credit: CreditProject, client: TestClient
) -> None:
    """/v2/models/credit-risk/infer with one tensor per column returns the predictions of
    /predict for the same rows, with the version and a request id per row."""
    records = credit.records[:12]
    tensors = [
        {"name": c, "shape": [12], "datatype": "BYTES", "data": [r[c] for r in records]}
        for c in records[0]
    ]
    response = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": tensors})
    assert response.status_code == 200, response.text
    body = response.json()
    [output] = body["outputs"]
    assert output["name"] == "prediction"
    assert output["shape"] == [12]
    assert output["data"] == predict(client, records)["predictions"]
    assert (body["model_name"], body["model_version"]) == (MODEL, "1")
    assert len(set(body["parameters"]["request_ids"])) == 12
    wrong = client.post("/v2/models/churn/infer", json={"inputs": tensors})
    assert wrong.status_code == 404


# -- /metrics -----------------------------------------------------------------------------------


def readme_metrics() -> list[str]:
    """The metric names in the table of deploy/README.md."""
    text = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    table = text.split("## Metrics exported by `shipyard serve`", 1)[1]
    return [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]


def test_metrics_expose_every_metric_the_deploy_readme_lists(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """After predictions, refusals, feedback and KPIs, /metrics has a sample of every metric
    in deploy/README.md: requests by code, latency buckets from 0.5 ms, predictions, errors
    by reason, in-flight requests, accuracy, feedback, KPIs, CPU, memory and log drops."""
    body = predict(client, credit.records[:4])
    client.post("/predict", json={"records": [without(credit.records[0], "age")]})
    logged(project, 4)
    feedback = [{"request_id": r, "label": 0} for r in body["request_ids"]]
    assert client.post("/feedback", json=feedback).status_code == 200
    assert client.post("/kpi", json={"name": "revenue", "value": 12.5}).status_code == 200
    names = readme_metrics()
    assert len(names) >= 13
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    present = {s.name for f in text_string_to_metric_families(response.text) for s in f.samples}
    for name in names:
        wanted = f"{name}_bucket" if name.endswith("_duration_seconds") else name
        assert wanted in present, f"{name} is in deploy/README.md but not in /metrics"
    codes = {labels["code"] for labels, _ in samples(client, "shipyard_requests_total")}
    assert {"200", "422"} <= codes
    buckets = [
        float(labels["le"])
        for labels, _ in samples(client, "shipyard_request_duration_seconds_bucket")
        if labels["endpoint"] == "/predict" and labels["version"] == "1"
    ]
    assert min(buckets) == 0.0005
    assert metric(client, "shipyard_predictions_total", version="1") == 4
    assert metric(client, "shipyard_inflight_requests") == 0
    assert metric(client, "shipyard_feedback_total", version="1") == 4
    assert metric(client, "shipyard_kpi_total", name="revenue") == 1
    assert metric(client, "shipyard_kpi_value_sum", name="revenue") == 12.5
    assert metric(client, "process_resident_memory_bytes") > 10_000_000
    assert metric(client, "shipyard_prediction_log_dropped_total") == 0


# -- feedback and KPIs --------------------------------------------------------------------------


def test_feedback_on_logged_predictions_sets_the_accuracy_gauge(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """Labels sent to /feedback (as a list) for logged request ids are judged against the
    logged answers, and shipyard_model_accuracy shows the share that was right: here the
    first six labels agree with the answers and the last two do not (6 / 8)."""
    body = predict(client, credit.records[:8])
    logged(project, 8)
    labels = [*body["predictions"][:6], *(1 - p for p in body["predictions"][6:])]
    items = [
        {"request_id": r, "label": y} for r, y in zip(body["request_ids"], labels, strict=True)
    ]
    response = client.post("/feedback", json=items)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 8
    assert [r["correct"] for r in result["results"]] == [True] * 6 + [False] * 2
    assert {r["model"] for r in result["results"]} == {credit.production}
    assert metric(client, "shipyard_model_accuracy", version="1") == pytest.approx(0.75)
    assert metric(client, "shipyard_feedback_total", version="1") == 8
    assert project.predictions.accuracy(MODEL) == {credit.production: pytest.approx(0.75)}


def test_single_feedback_is_accepted_like_a_list_of_one(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """One feedback object is accepted like a list of one, judged against the logged answer
    and joined to the prediction log by its request id. (Unknown request ids, repeated and
    replaced labels: tests/serving/test_ingest.py.)"""
    body = predict(client, credit.records[:1])
    logged(project, 1)
    [rid], [answer] = body["request_ids"], body["predictions"]
    one = client.post("/feedback", json={"request_id": rid, "label": answer}).json()
    assert one["accepted"] == one["stored"] == 1
    [result] = one["results"]
    assert (result["request_id"], result["model"]) == (rid, credit.production)
    assert (result["status"], result["label"], result["correct"]) == ("stored", answer, True)
    assert metric(client, "shipyard_model_accuracy", version="1") == 1.0
    log = project.predictions.list(MODEL)
    assert log.set_index("request_id").loc[rid, "label"] == answer


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"request_id": "abc"}, id="no-label"),
        pytest.param({"label": 1}, id="no-request-id"),
        pytest.param([{"request_id": "abc", "label": 1}, 5], id="list-with-a-number"),
        pytest.param("yes", id="a-string"),
    ],
)
def test_bad_feedback_is_refused_with_422_and_counted(client: TestClient, body: Any) -> None:
    """Feedback without a request id and a label is a 422 naming the expected shape, counted
    before any request id is looked up."""
    response = client.post("/feedback", json=body)
    assert response.status_code == 422, response.text
    assert "request_id" in response.json()["error"]
    assert metric(client, "shipyard_requests_total", endpoint="/feedback", code="422") == 1
    assert metric(client, "shipyard_prediction_errors_total", reason="invalid_input") == 1
    assert metric(client, "shipyard_feedback_total") == 0


def test_an_empty_feedback_list_is_refused_with_422(client: TestClient) -> None:
    """``[]`` posted to /feedback is a 422, not a server error."""
    response = client.post("/feedback", json=[])
    assert response.status_code == 422, response.text


def test_feedback_is_accepted_once_even_when_the_accuracy_refresh_fails(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """When the accuracy gauge cannot be recomputed (here a damaged prediction row in the
    window), /feedback still answers 200 for the labels it stored, counts them, and counts
    the failed refresh in shipyard_refresh_errors_total; the labels are stored once."""
    from sqlalchemy import update

    from shipyard.stores.db.tables import predictions

    body = predict(client, credit.records[:2])
    logged(project, 2)
    first, second = body["request_ids"]
    assert client.post("/feedback", json={"request_id": first, "label": 1}).status_code == 200
    with project.db.write() as conn:  # a row no longer readable as JSON
        conn.execute(
            update(predictions).where(predictions.c.request_id == first).values(prediction="{")
        )
    response = client.post("/feedback", json={"request_id": second, "label": 0})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert metric(client, "shipyard_feedback_total", version="1") == 2
    assert metric(client, "shipyard_refresh_errors_total", refresh="accuracy") >= 1
    log = project.predictions.list(MODEL).set_index("request_id")
    assert log.loc[second, "label"] == 0


def test_kpi_events_single_and_list_are_summed_by_name(
    client: TestClient, project: Project
) -> None:
    """/kpi takes one event or a list; shipyard_kpi_total counts events by name and
    shipyard_kpi_value_sum{name="revenue"} adds their values; the events are stored."""
    assert client.post("/kpi", json={"name": "revenue", "value": 120.5}).json() == {"accepted": 1}
    events = [
        {"name": "revenue", "value": 80, "request_id": "a" * 32},
        {"name": "revenue", "value": -0.5},
        {"name": "clicks", "value": 1},
    ]
    assert client.post("/kpi", json=events).json() == {"accepted": 3}
    assert metric(client, "shipyard_kpi_total", name="revenue") == 3
    assert metric(client, "shipyard_kpi_value_sum", name="revenue") == pytest.approx(200.0)
    assert metric(client, "shipyard_kpi_value_sum", name="clicks") == 1
    kpis = project.predictions.metrics(MODEL)["kpis"]
    assert kpis == {
        "revenue": {"events": 3, "sum": pytest.approx(200.0)},
        "clicks": {"events": 1, "sum": 1.0},
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"name": "revenue"}, 422, id="no-value"),
        pytest.param({"name": "revenue", "value": "12"}, 422, id="text-value"),
        pytest.param({"name": "revenue", "value": True}, 422, id="bool-value"),
        pytest.param({"name": 5, "value": 1}, 422, id="name-not-text"),
        pytest.param({"name": "", "value": 1}, 422, id="empty-name"),
        pytest.param({"name": "x" * 65, "value": 1}, 422, id="name-too-long"),
        pytest.param([{"name": "revenue", "value": 1}, "clicks"], 422, id="list-with-text"),
        # JSON has no infinity: these are malformed bodies, not bad values.
        pytest.param('{"name": "revenue", "value": Infinity}', 400, id="infinity-literal"),
        pytest.param('{"name": "revenue", "value": 1e999}', 400, id="overflowing-number"),
        pytest.param('{"name": "revenue", "value": NaN}', 400, id="nan-literal"),
    ],
)
def test_a_bad_kpi_is_refused_and_nothing_is_counted(
    client: TestClient, project: Project, body: Any, status: int
) -> None:
    """A KPI event needs a name (1 to 64 letters, digits or underscores) and a finite number:
    anything else is a 422 naming the problem (a body that is not JSON, a 400), and no KPI
    is counted or stored."""
    if isinstance(body, str):
        response = client.post("/kpi", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/kpi", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert metric(client, "shipyard_requests_total", endpoint="/kpi", code=str(status)) == 1
    assert metric(client, "shipyard_kpi_total") == 0
    with pytest.raises(NotFoundError, match="has logged anything"):
        project.predictions.metrics(MODEL)  # nothing stored, so nothing to summarise


def test_a_kpi_list_with_one_bad_event_stores_none_of_them(
    client: TestClient, project: Project
) -> None:
    """A refused KPI list stores nothing: validation comes before any write."""
    events = [{"name": "revenue", "value": 10}, {"name": "x" * 200, "value": 1}]
    assert client.post("/kpi", json=events).status_code == 422
    with pytest.raises(NotFoundError, match="has logged anything"):
        project.predictions.metrics(MODEL)  # nothing stored, so nothing to summarise


def test_a_kpi_request_id_that_is_not_text_is_refused_with_422(client: TestClient) -> None:
    """A KPI whose request_id is not a text (here an object) is a 422."""
    response = client.post("/kpi", json={"name": "revenue", "value": 1, "request_id": {"a": 1}})
    assert response.status_code == 422, response.text


# -- aliases: hot reload, canary, shadow --------------------------------------------------------


def test_a_promotion_is_picked_up_while_requests_keep_succeeding(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """While a client keeps sending requests, moving production to version 2 (promotion) and
    back (rollback) fails no request, and within seconds the answers come from the new
    holder; no answer comes from the old one after the switch."""
    answers: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            r = client.post("/predict", json={"records": [credit.records[i % 50]]})
            answers.append((r.status_code, r.json().get("version")))
            i += 1

    def wait_for(version: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if answers and answers[-1][1] == version:
                return
            time.sleep(0.05)
        pytest.fail(f"the server still answers with version {answers[-1][1]}, not {version}")

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        time.sleep(0.3)
        project.promotions.promote(credit.challenger, to="production", comment="hot reload")
        wait_for(2)
        time.sleep(0.3)
        project.promotions.rollback(MODEL, alias="production", comment="back")
        wait_for(1)
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert len(answers) > 20
    assert {code for code, _ in answers} == {200}
    versions = [v for _, v in answers]
    switches = [b for a, b in pairwise(versions) if a != b]
    assert switches == [2, 1], "an old version answered after the alias moved"


def test_the_server_follows_its_alias_again_after_the_database_fails_for_a_while(
    credit: CreditProject, client: TestClient, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """While the table of aliases cannot be read (renamed away in the project's database,
    so the server's reads fail with the database's own error), the server keeps answering
    with the loaded version, logs and counts each failed round; once the table is back, a
    promotion is still picked up."""

    def answering_version() -> int:
        return int(predict(client, credit.records[:1])["version"])

    def wait_until(check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 10
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"still not {what} after 10 s")
            time.sleep(0.05)

    assert answering_version() == 1
    with project.db.write() as conn:
        conn.exec_driver_sql("ALTER TABLE model_aliases RENAME TO model_aliases_away")
    try:
        wait_until(
            lambda: metric(client, "shipyard_refresh_errors_total", refresh="aliases") >= 2,
            "counting failed rounds",
        )
        assert answering_version() == 1
    finally:
        with project.db.write() as conn:
            conn.exec_driver_sql("ALTER TABLE model_aliases_away RENAME TO model_aliases")
    assert "cannot follow alias 'production'" in caplog.text
    assert "model_aliases" in caplog.text

    project.promotions.promote(credit.challenger, to="production", comment="after the outage")
    wait_until(lambda: answering_version() == 2, "answering with version 2")


def test_a_canary_split_answers_from_both_versions(credit: CreditProject, tmp_path: Path) -> None:
    """With routes production=50, challenger=50, each version answers between a quarter and
    three quarters of 200 requests, with its own alias, and /metrics labels both."""
    with serving(credit, routes={"production": 50, "challenger": 50}) as client:
        bodies = [predict(client, [credit.records[i % 50]]) for i in range(200)]
        by_version = Counter(b["version"] for b in bodies)
        assert set(by_version) == {1, 2}
        assert all(50 <= n <= 150 for n in by_version.values()), by_version
        assert {(b["version"], b["alias"]) for b in bodies} == {
            (1, "production"),
            (2, "challenger"),
        }
        for version, n in by_version.items():
            labels = {"version": str(version), "endpoint": "/predict", "code": "200"}
            assert metric(client, "shipyard_requests_total", **labels) == n
            assert metric(client, "shipyard_predictions_total", version=str(version)) == n
        meta = client.get(f"/v2/models/{MODEL}").json()
        assert meta["aliases"] == {"production": 1, "challenger": 2}


def test_shadow_scores_every_request_with_the_challenger_without_answering_with_it(
    credit: CreditProject, project: Project
) -> None:
    """With shadow=challenger every answer comes from production, and the prediction log
    (with shadow rows) holds a challenger score for each request id, while the log of
    answers holds production rows only."""
    with serving(credit, shadow="challenger") as client:
        bodies = [predict(client, credit.records[i : i + 3]) for i in range(0, 30, 3)]
        assert {b["version"] for b in bodies} == {1}
        ids = {rid for b in bodies for rid in b["request_ids"]}
        log = logged(project, 60, include_shadow=True)
    shadow = log[log["shadow"]]
    assert set(shadow["model"]) == {credit.challenger}
    assert set(shadow["request_id"]) == ids
    answered = project.predictions.list(MODEL)
    assert set(answered["model"]) == {credit.production}
    assert set(answered["request_id"]) == ids
    expected = project.models.load(credit.challenger).predict(credit.frame(30))
    by_id = shadow.set_index("request_id")["output"]
    ordered = [rid for b in bodies for rid in b["request_ids"]]
    assert [by_id[rid] for rid in ordered] == expected.tolist()


# -- the prediction log -------------------------------------------------------------------------


def test_the_prediction_log_holds_every_answered_row(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """Every row answered (and only those: refusals are not logged) is in the prediction log
    with its request id, inputs, output, latency and the model version that answered."""
    sent = [credit.records[:1], credit.records[1:6], credit.records[6:16]]
    bodies = [predict(client, rows) for rows in sent]
    client.post("/predict", json={"records": [without(credit.records[0], "age")]})
    log = logged(project, 16).set_index("request_id")
    assert len(log) == 16
    for rows, body in zip(sent, bodies, strict=True):
        for record, rid, answer in zip(rows, body["request_ids"], body["predictions"], strict=True):
            row = log.loc[rid]
            assert row["inputs"] == record
            assert row["output"] == answer
            assert row["model"] == credit.production
            assert not row["shadow"]
            assert row["latency_ms"] > 0
            assert row["time_ms"] <= time.time() * 1000


def test_a_full_log_queue_drops_and_counts_instead_of_blocking(
    credit: CreditProject, project: Project
) -> None:
    """With a log queue of one record, a burst of 50-row requests is answered in full while
    the log drops what does not fit, counted in shipyard_prediction_log_dropped_total; every
    answered row is either logged or counted as dropped."""
    with serving(credit, log_queue=1) as client:
        statuses = [
            client.post("/predict", json={"records": credit.records[:50]}).status_code
            for _ in range(20)
        ]
        dropped = metric(client, "shipyard_prediction_log_dropped_total")
    assert statuses == [200] * 20
    assert dropped > 0
    kept = len(project.predictions.list(MODEL))
    assert kept + dropped == 20 * 50


# -- the training contract ----------------------------------------------------------------------


def test_a_model_trained_on_a_split_of_checked_data_refuses_values_outside_the_contract(
    credit: CreditProject, project: Project
) -> None:
    """A version trained on a split part of contract-checked data (the part itself not
    validated again) still refuses an age of 250."""
    test = project.datasets.get("credit.test@1")
    assert test.status == "unvalidated" and test.contract is None
    frame = test.to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
    pipeline = Pipeline(
        [("prep", prep.to_column_transformer()), ("model", LogisticRegression(max_iter=1000))]
    )
    with project.start_run(MODEL, name="trained-on-the-test-part") as run:
        run.log_input(test.ref, "train")
        mv = run.log_model(pipeline.fit(x, y), MODEL, input_example=x.head(5))
    project.models.set_alias(mv.ref, "unchecked")
    with serving(credit, routes={"unchecked": 100}) as client:
        response = client.post("/predict", json={"records": [{**credit.records[0], "age": 250}]})
    assert response.status_code == 422, response.text


def test_a_pipeline_that_does_not_compile_is_answered_by_scikit_learn(
    credit: CreditProject, project: Project
) -> None:
    """A step the compiler does not know (PolynomialFeatures) leaves the version to
    scikit-learn: the server says so, and answers exactly like the registry's model."""
    from sklearn.preprocessing import PolynomialFeatures

    frame = project.datasets.get("credit.train@1").to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
    pipeline = Pipeline(
        [
            ("prep", prep.to_column_transformer()),
            ("poly", PolynomialFeatures(degree=1)),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )
    with project.start_run(MODEL, name="with-polynomial-features") as run:
        run.log_input("credit.train@1", "train")
        mv = run.log_model(pipeline.fit(x, y), MODEL, input_example=x.head(5))
    project.models.set_alias(mv.ref, "uncompiled")
    with serving(credit, routes={"uncompiled": 100}) as client:
        scoring = client.get(f"/v2/models/{MODEL}").json()["parameters"]["scoring"]
        body = predict(client, credit.records[:30])
    assert scoring == {"uncompiled": "not compiled: PolynomialFeatures is not compiled"}
    expected = project.models.load(mv.ref).predict(credit.frame(30))
    assert body["predictions"] == expected.tolist()


def test_a_row_the_compiled_model_does_not_cover_is_answered_by_scikit_learn(
    credit: CreditProject, project: Project
) -> None:
    """A null in a one-hot column with no imputer is outside the compiled arithmetic;
    scikit-learn takes that request (its encoder ignores the unknown value) and the answer
    is the registry model's."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = project.datasets.get("credit.train@1").to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["income", "credit_score"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["housing"]),
        ]
    )
    pipeline = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))])
    with project.start_run(MODEL, name="no-imputer") as run:  # no input logged: no contract
        mv = run.log_model(pipeline.fit(x, y), MODEL, input_example=x.head(5))
    project.models.set_alias(mv.ref, "plain")
    rows = [credit.records[0], {**credit.records[1], "housing": None}]
    with serving(credit, routes={"plain": 100}) as client:
        scoring = client.get(f"/v2/models/{MODEL}").json()["parameters"]["scoring"]
        covered = predict(client, rows[:1])
        uncovered = predict(client, rows)
    assert scoring["plain"].startswith("compiled (arithmetic)")
    model = project.models.load(mv.ref)
    expected = model.predict_proba(model.validate_records(rows))
    assert covered["probabilities"][0]["1"] == pytest.approx(expected[0][1], rel=1e-9)
    assert [p["1"] for p in uncovered["probabilities"]] == pytest.approx(
        [e[1] for e in expected], rel=1e-9
    )
