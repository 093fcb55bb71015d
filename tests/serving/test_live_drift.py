"""Live drift in the model server: rows counted in the bins of the served version's training
data (by the prediction log's writer), merged across writers, kept for a sliding window, and
exported as gauges when /metrics is scraped; refused values counted per column and check.

The server under two workers is tested with the other multi-worker metrics in
test_server_process.py.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from shipyard.monitoring.reference import build_reference
from shipyard.serving.live_drift import (
    SUB_WINDOWS,
    LiveCounts,
    LiveDriftCollector,
    Window,
    merged_windows,
)
from tests.serving.test_app import MODEL, CreditProject, TestClient, metric_samples, serving
from tests.serving.test_app import credit as credit

WINDOW_SECONDS = 60.0
T0 = 1_700_000_000_000  # ms, at the start of a bucket of the 60 s window
RNG = np.random.default_rng(3)
TRAIN = pl.DataFrame(
    {
        "x": RNG.normal(0, 1, 4000),
        "c": RNG.choice(["a", "b", "c"], 4000, p=[0.5, 0.3, 0.2]).tolist(),
    }
)
REFERENCE = build_reference(TRAIN, source="train@1")


def rows(n: int, *, seed: int, shift: float = 0.0, only_a: bool = False) -> list[dict[str, Any]]:
    """``n`` request rows like the training data (``x`` moved by ``shift``; every ``c`` "a"
    with ``only_a``)."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(shift, 1, n).tolist()
    cs = ["a"] * n if only_a else rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).tolist()
    return [{"x": x, "c": c} for x, c in zip(xs, cs, strict=True)]


def counter(folder: Path, writer: str) -> LiveCounts:
    window = Window(str(folder), WINDOW_SECONDS)
    return LiveCounts(window, lambda ref: (REFERENCE, ["x", "c"]), writer=writer)


def gauges(folder: Path, now_ms: int, min_rows: int = 200) -> dict[str, dict[str, float]]:
    """The live drift gauges a scrape at ``now_ms`` exports: per sample name, per feature
    (or "" for a version's own gauges), the value."""
    window = Window(str(folder), WINDOW_SECONDS, min_rows)
    registry = CollectorRegistry()
    registry.register(LiveDriftCollector("churn", window, clock=lambda: now_ms / 1000))
    text = generate_latest(registry).decode()
    out: dict[str, dict[str, float]] = {}
    for name in (
        "shipyard_feature_drift",
        "shipyard_dataset_drift_share",
        "shipyard_feature_null_share",
        "shipyard_drift_window_rows",
    ):
        for labels, value in metric_samples(text, name):
            assert (labels["model"], labels["version"]) == ("churn", "1")
            out.setdefault(name, {})[labels.get("feature", "")] = value
    return out


def test_shifted_rows_drift_and_rows_like_the_reference_do_not(tmp_path: Path) -> None:
    """1,000 rows drawn like the training data give PSI and Jensen–Shannon under 0.1 and a
    dataset drift share of 0; 1,000 rows with x moved by two standard deviations and every
    c "a" drift on both features (share 1)."""
    calm, shifted = tmp_path / "calm", tmp_path / "shifted"
    calm.mkdir()
    shifted.mkdir()
    live = counter(calm, "1")
    live.observe("churn@1", T0, rows(1000, seed=1))
    live.flush(T0)
    live = counter(shifted, "1")
    live.observe("churn@1", T0, rows(1000, seed=1, shift=2.0, only_a=True))
    live.flush(T0)
    quiet, moved = gauges(calm, T0), gauges(shifted, T0)
    assert quiet["shipyard_feature_drift"]["x"] < 0.1
    assert quiet["shipyard_feature_drift"]["c"] < 0.1
    assert quiet["shipyard_dataset_drift_share"][""] == 0.0
    assert moved["shipyard_feature_drift"]["x"] > 1.0
    assert moved["shipyard_feature_drift"]["c"] > 0.3
    assert moved["shipyard_dataset_drift_share"][""] == 1.0
    assert moved["shipyard_drift_window_rows"][""] == 1000


def test_counts_of_two_writers_add_up_to_counting_all_rows_in_one(tmp_path: Path) -> None:
    """Two writers (two workers' log writers) counting half the rows each, in different
    buckets of the window, give the merged counts one writer gives for all the rows."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    first, second = rows(300, seed=5), rows(200, seed=6, shift=1.0)
    bucket = int(WINDOW_SECONDS * 1000 / SUB_WINDOWS)
    a, b = counter(two, "a"), counter(two, "b")
    a.observe("churn@1", T0, first)
    a.flush(T0)
    b.observe("churn@1", T0 + 3 * bucket, second)
    b.flush(T0 + 3 * bucket)
    alone = counter(one, "solo")
    alone.observe("churn@1", T0, first + second)
    alone.flush(T0)
    merged = merged_windows(two, T0 + 3 * bucket)["churn@1"]
    single = merged_windows(one, T0 + 3 * bucket)["churn@1"]
    assert merged.rows == 500
    assert merged.counts.tolist() == single.counts.tolist()
    assert gauges(two, T0 + 3 * bucket) == gauges(one, T0 + 3 * bucket)


def test_the_window_slides_and_needs_its_minimum_rows(tmp_path: Path) -> None:
    """Shifted rows drift while in the window; once the window has slid past them only the
    rows since count (no drift); below the minimum rows the drift gauges are absent, never
    drift, while the row count and null shares are exported."""
    live = counter(tmp_path, "1")
    live.observe("churn@1", T0, rows(400, seed=1, shift=3.0))
    live.flush(T0)
    assert gauges(tmp_path, T0)["shipyard_feature_drift"]["x"] > 1.0
    later = T0 + int(WINDOW_SECONDS * 1000)  # the first bucket has left the window
    live.observe("churn@1", later, rows(400, seed=2))
    live.flush(later)
    now = gauges(tmp_path, later)
    assert now["shipyard_drift_window_rows"][""] == 400
    assert now["shipyard_feature_drift"]["x"] < 0.1
    assert now["shipyard_dataset_drift_share"][""] == 0.0
    few = gauges(tmp_path, later, min_rows=401)
    assert "shipyard_feature_drift" not in few
    assert "shipyard_dataset_drift_share" not in few
    assert few["shipyard_drift_window_rows"][""] == 400
    assert few["shipyard_feature_null_share"] == {"x": 0.0, "c": 0.0}
    assert gauges(tmp_path, later + int(WINDOW_SECONDS * 1000))["shipyard_drift_window_rows"] == {
        "": 0
    }


def test_null_share_counts_missing_values_of_every_kind(tmp_path: Path) -> None:
    """Missing values (null, NaN, an absent key) count in a feature's null share; a value
    the reference never saw, even one that cannot be a category (a list), counts as "other",
    and text in a numeric feature as missing, without losing the other rows."""
    sent = rows(200, seed=4)
    for i in range(0, 200, 4):  # a quarter of the rows: x missing in three ways
        sent[i]["x"] = [None, math.nan, "n/a"][i % 3]
    sent[1]["c"], sent[2]["c"], sent[3]["c"] = None, ["a"], "z"
    del sent[5]["c"]
    live = counter(tmp_path, "1")
    live.observe("churn@1", T0, sent)
    live.flush(T0)
    found = gauges(tmp_path, T0)
    assert found["shipyard_feature_null_share"] == {"x": 0.25, "c": 2 / 200}
    assert found["shipyard_drift_window_rows"][""] == 200
    window = merged_windows(tmp_path, T0)["churn@1"]
    assert int(window.counts.sum()) == 200 * 3  # x's bins and nulls, c's, and the rows


# -- the server -----------------------------------------------------------------------------------


def scrape(client: TestClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def wait_for_window(client: TestClient, rows: int, timeout: float = 30.0) -> str:
    """The /metrics page once the drift window holds ``rows`` rows (the writer counts after
    each hand-over of the log, about every second); fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(client)
        found = sum(v for _, v in metric_samples(text, "shipyard_drift_window_rows"))
        if found == rows:
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"the drift window holds {found} rows, not {rows}, after {timeout} s")
        time.sleep(0.1)


def by_feature(text: str, name: str) -> dict[str, float]:
    out = {}
    for labels, value in metric_samples(text, name):
        assert (labels["model"], labels["version"]) == (MODEL, "1")
        out[labels.get("feature", "")] = value
    return out


def test_the_server_exports_the_drift_of_what_it_scored(credit: CreditProject) -> None:
    """Scoring held-out applicants like the training data, then as many with one income and
    one purpose for all: the income's PSI and the purpose's Jensen–Shannon distance rise past
    their thresholds (0.1), the other features' drift stays as it was, the dataset drift share
    grows by those two features; the null share of years_employed counts the applicants sent
    without one."""
    held_out = credit.records
    n = len(held_out)
    with serving(credit, drift_min_rows=100) as client:
        assert client.post("/predict", json={"records": held_out}).status_code == 200
        before = wait_for_window(client, n)
        top = max(r["income"] for r in held_out)
        shifted = [
            {**r, "income": top, "purpose": held_out[0]["purpose"], "years_employed": None}
            for r in held_out
        ]
        assert client.post("/predict", json={"records": shifted}).status_code == 200
        after = wait_for_window(client, 2 * n)
    drift_before = by_feature(before, "shipyard_feature_drift")
    drift_after = by_feature(after, "shipyard_feature_drift")
    assert {s[0]["method"] for s in metric_samples(after, "shipyard_feature_drift")} == {
        "psi",
        "jensenshannon",
    }
    assert drift_before["income"] < 0.1 < 1.0 < drift_after["income"]
    assert drift_before["purpose"] < 0.1 < drift_after["purpose"]
    # The other features are sent as before: only income and purpose cross their threshold.
    assert {f: v for f, v in drift_after.items() if f not in ("income", "purpose")} == {
        f: v for f, v in drift_before.items() if f not in ("income", "purpose")
    }
    share_before = by_feature(before, "shipyard_dataset_drift_share")[""]
    share_after = by_feature(after, "shipyard_dataset_drift_share")[""]
    assert share_after == pytest.approx(share_before + 2 / len(drift_after))
    missing = sum(r["years_employed"] is None for r in held_out)
    nulls = by_feature(after, "shipyard_feature_null_share")
    assert nulls["years_employed"] == pytest.approx((missing + n) / (2 * n))
    assert nulls["income"] == 0.0


def test_refused_values_are_counted_per_column_and_check(credit: CreditProject) -> None:
    """A request with an age over the contract's maximum, an age that is not a number and a
    row without income is refused, and each problem is counted in
    shipyard_contract_violations_total by column and check; none reaches the drift window."""
    record = credit.records[0]
    without_income = {k: v for k, v in record.items() if k != "income"}
    bad = [{**record, "age": 250}, {**record, "age": "x"}, without_income]
    with serving(credit, drift_min_rows=1) as client:
        response = client.post("/predict", json={"records": bad})
        assert response.status_code == 422
        checks = [e["check"] for e in response.json()["details"]["errors"]]
        assert checks == ["max", "type", "missing"]
        counted = {
            (labels["column"], labels["check"]): value
            for labels, value in metric_samples(
                scrape(client), "shipyard_contract_violations_total"
            )
            if labels["model"] == MODEL and labels["version"] == "1"
        }
        assert counted == {("age", "max"): 1, ("age", "type"): 1, ("income", "missing"): 1}
        assert client.post("/predict", json={"records": [record]}).status_code == 200
        wait_for_window(client, 1)
