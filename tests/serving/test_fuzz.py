"""Fuzzing /predict and v2 infer in-process: whatever a careless or hostile client sends
(random JSON, records around the signature with nulls, huge numbers and text in any column,
dataframe_split of any shape, v2 tensors with wrong shapes and datatypes), the answer is
never a 5xx and no model error is counted.

Two versions are fuzzed: production, whose requests the training contract bounds, and one
with no contract and no imputer (trained with no dataset on record), where only the
signature's types and the model itself stand between a request and scikit-learn.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.project import Project
from shipyard.serving.v2 import DATATYPES
from tests.serving.test_app import MODEL, CreditProject, TestClient, deploy, metric, serving
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project
from tests.serving.test_failures import train_without_imputer

EXAMPLES = 80

_numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, -1, 2**63, -(2**63) - 1, 2**64, 10**18])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324, 1.7976931348623157e308, -0.0])
)
_scalars = (
    st.none()
    | st.booleans()
    | _numbers
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


def _bodies(record: dict[str, Any], types: dict[str, str]) -> st.SearchStrategy[Any]:
    """Bodies for /predict and v2 infer built around ``record`` (a valid row) and the
    declared datatype of each column."""
    columns = list(record)
    keys = st.sampled_from(columns) | st.text(max_size=10)
    # Every column present, each value kept or replaced by null, a number or text.
    around = st.fixed_dictionaries(
        {c: st.just(v) | st.none() | _numbers | st.text(max_size=6) for c, v in record.items()}
    )
    random_records = st.lists(st.dictionaries(keys, _json, max_size=8), max_size=4)
    split = st.builds(
        lambda cols, data: {"dataframe_split": {"columns": cols, "data": data}},
        st.lists(st.sampled_from(columns) | st.text(max_size=6), max_size=5),
        st.lists(st.lists(_json, max_size=5), max_size=3),
    )
    datatype = st.sampled_from(sorted(DATATYPES)) | st.sampled_from(["FLOAT", "", "int64"]) | _json
    shape = st.lists(st.integers(-2, 5) | _json, max_size=3) | _json
    random_tensors = st.lists(
        st.fixed_dictionaries(
            {"name": keys, "data": st.lists(_json, max_size=3)},
            optional={"shape": shape, "datatype": datatype},
        ),
        max_size=4,
    )

    def as_tensors(rows: list[dict[str, Any]], column: str, how: Any) -> dict[str, Any]:
        """Valid tensors of ``rows``, with the tensor of ``column`` given ``how``."""
        tensors = [
            {"name": c, "shape": [len(rows)], "datatype": types[c], "data": [r[c] for r in rows]}
            for c in columns
            if c in types  # the columns the model drops have no declared datatype
        ]
        for t in tensors:
            if t["name"] == column:
                t.update(how)
        return {"inputs": tensors}

    tensors_around = st.builds(
        as_tensors,
        st.lists(around, min_size=1, max_size=3),
        st.sampled_from(columns),
        st.fixed_dictionaries({}, optional={"shape": shape, "datatype": datatype}),
    )
    return st.one_of(
        _json,
        st.builds(lambda rs: {"records": rs}, random_records),
        st.builds(lambda rs: {"records": rs}, st.lists(around, min_size=1, max_size=3)),
        split,
        st.builds(lambda ts: {"inputs": ts}, random_tensors),
        tensors_around,
    )


@pytest.fixture(params=["contract", "no-contract-no-imputer"])
def fuzzed(
    request: pytest.FixtureRequest, credit: CreditProject, project: Project
) -> Iterator[TestClient]:
    """A server for production, or for a version with no contract and no imputer."""
    if request.param != "contract":
        deploy(project, train_without_imputer(project, trained_on=None), "plain")
    with serving(credit) as client:
        yield client


def test_fuzzed_bodies_never_get_a_5xx(credit: CreditProject, fuzzed: TestClient) -> None:
    """Random JSON, records around the signature (nulls, huge numbers, text), random
    dataframe_split, and v2 tensors with random shapes and datatypes, sent to /predict or
    v2 infer: every answer has a status below 500, and no model error is counted."""
    types = {i["name"]: i["datatype"] for i in fuzzed.get(f"/v2/models/{MODEL}").json()["inputs"]}
    seen: Counter[int] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=_bodies(credit.records[0], types), v2=st.booleans())
    def check(body: Any, v2: bool) -> None:
        path = f"/v2/models/{MODEL}/infer" if v2 else "/predict"
        response = fuzzed.post(
            path, content=json.dumps(body), headers={"content-type": "application/json"}
        )
        seen[response.status_code] += 1
        assert response.status_code < 500, (body, response.text)

    check()
    assert sum(seen.values()) >= EXAMPLES // 2
    assert metric(fuzzed, "shipyard_prediction_errors_total", reason="model_error") == 0
