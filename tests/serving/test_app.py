"""The model server in-process: ``create_app(ServeConfig(...))`` behind Starlette's TestClient
(used as a context manager, so the lifespan loads the models, follows the deployment and
flushes the prediction log on exit): predictions, refused input, /metrics, feedback, KPIs and
the prediction log. Following deployments is in test_following.py, failures in
test_failures.py, scoring and the training contract in test_scoring.py, /docs in
test_openapi.py, the v2 protocol in test_v2.py, fuzzing in test_fuzz.py.

The credit project every test serves is built once per worker process (a dataset with a bound
contract, a split whose train part is checked against it, two logistic regressions trained on
that part: ``credit-risk@1`` in production, ``credit-risk@2`` as challenger) and copied for
each test, so no test sees another's traffic or alias moves. The other serving test modules
build their projects with :func:`credit_copy` too.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
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
        project.contracts.bind("credit", "applicants", new=True)
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
    """A running server for the deployment ``credit-risk`` (production alone until the
    project stores another deployment), followed every 0.2 s; ``options`` go to
    :class:`ServeConfig`. 5xx come back as responses, not exceptions."""
    config = ServeConfig(
        project=str(credit.root),
        deployment=options.pop("deployment", MODEL),
        reload_seconds=options.pop("reload_seconds", 0.2),
        **options,
    )
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client


def train(
    project: Project,
    steps: list[tuple[str, Any]] | None = None,
    *,
    target: Callable[[pd.Series], pd.Series] | None = None,
    trained_on: str | None = "credit.train@1",
    complete_rows: bool = False,
    name: str = "another-version",
) -> str:
    """Register a new version of credit-risk (not approved) fitted on credit.train@1 (only
    its rows without a missing value with ``complete_rows``): the contract's preprocessing
    and a logistic regression unless ``steps`` says otherwise, on the label or
    ``target(label)``. Its run logs ``trained_on`` as training data (whose contract then
    governs its requests); None logs none. Returns its reference."""
    frame = project.datasets.get("credit.train@1").to_pandas()
    if complete_rows:
        frame = frame.dropna()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    if target is not None:
        y = target(y)
    if steps is None:
        prep = spec_from_contract(project.contracts.get("applicants@1").contract, target=LABEL)
        steps = [
            ("prep", prep.to_column_transformer()),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    with project.start_run(MODEL, name=name) as run:
        if trained_on is not None:
            run.log_input(trained_on, "train")
        mv = run.log_model(Pipeline(steps).fit(x, y), MODEL, input_example=x.head(5))
    return mv.ref


def deploy(project: Project, ref: str, alias: str) -> None:
    """Make ``ref`` serve all of credit-risk's traffic as governance requires: bob (an
    approver, not its author) approves it, alice points ``alias`` at it, and the
    deployment routes to that alias alone."""
    project.as_actor("bob").approvals.approve(ref, comment="reviewed")
    project.models.set_alias(ref, alias)
    project.deployments.set(MODEL, {alias: 100})


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


def test_columns_the_pipeline_drops_are_ignored_left_out_or_null(
    credit: CreditProject, client: TestClient, project: Project
) -> None:
    """The signature holds only the columns the model reads and names those its pipeline
    drops (the id and the date); a record may leave them out or send null, and is answered
    as if it had sent them."""
    signature = project.models.get(credit.production).signature
    assert signature is not None
    assert signature["ignored"] == ["applicant_id", "application_date"]
    assert "applicant_id" not in signature["inputs"]["columns"]
    records = credit.records[:5]
    expected = predict(client, records)["predictions"]
    left_out = [without(without(r, "applicant_id"), "application_date") for r in records]
    nulls = [{**r, "applicant_id": None, "application_date": None} for r in records]
    assert predict(client, left_out)["predictions"] == expected
    assert predict(client, nulls)["predictions"] == expected


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


# Bugs the fuzz tests (test_fuzz.py) found: bad input that got a 500.


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


# -- /metrics -----------------------------------------------------------------------------------


def readme_metrics() -> list[str]:
    """The metric names in the table of deploy/README.md."""
    text = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    table = text.split("## Metrics exported by `shipyard serve`", 1)[1]
    return [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]


def test_metrics_expose_every_metric_the_deploy_readme_lists(
    credit: CreditProject, project: Project
) -> None:
    """After predictions, refusals, feedback and KPIs, /metrics has a sample of every metric
    in deploy/README.md: requests by code, latency buckets from 0.5 ms, predictions, errors
    by reason, in-flight requests, accuracy, feedback, KPIs, CPU, memory, log and shadow
    drops, refresh errors, contract violations, live drift (with a minimum of one row, once
    the log writer has counted the rows); refused versions and feature lookups (none here)
    are declared without a sample."""
    with serving(credit, drift_min_rows=1) as client:
        check_every_readme_metric(client, credit, project)


def check_every_readme_metric(client: TestClient, credit: CreditProject, project: Project) -> None:
    body = predict(client, credit.records[:4])
    client.post("/predict", json={"records": [without(credit.records[0], "age")]})
    logged(project, 4)
    feedback = [{"request_id": r, "label": 0} for r in body["request_ids"]]
    assert client.post("/feedback", json=feedback).status_code == 200
    assert client.post("/kpi", json={"name": "revenue", "value": 12.5}).status_code == 200
    deadline = time.monotonic() + 30
    while metric(client, "shipyard_drift_window_rows") != 4:  # counted after the log's write
        assert time.monotonic() < deadline, "the live drift window never held the 4 rows"
        time.sleep(0.1)
    names = readme_metrics()
    assert len(names) >= 13
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    present = {s.name for f in families for s in f.samples}
    # A counter labelled by what it counts has no sample before the first one.
    declared = {"shipyard_refused_versions", "shipyard_feature_lookups"}
    present |= {f"{f.name}_total" for f in families if f.name in declared}
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
    assert metric(client, "shipyard_kpi_value_count", name="revenue") == 1
    assert metric(client, "process_resident_memory_bytes") > 10_000_000
    assert metric(client, "shipyard_prediction_log_dropped_total") == 0
    assert metric(client, "shipyard_shadow_dropped_total", model=MODEL) == 0
    assert metric(client, "shipyard_refused_versions_total") == 0
    assert metric(client, "shipyard_contract_violations_total", column="age", check="missing") == 1
    assert metric(client, "shipyard_feature_null_share", feature="age") == 0


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
