"""Benchmark: run search over 10,000 runs (5 metrics and 5 params each) on SQLite.

Builds the database in a temporary folder through ``Database`` (which applies the migrations),
fills it with bulk inserts, then times each query 20 times and prints the median. The target
for the first query is under 100 ms.

    python bench/search.py [--runs 10000] [--explain]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.stores.db.engine import Database
from shipyard.stores.db.tables import (
    experiments,
    run_latest_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.tracking.search_sql import search_runs_stmt

METRICS = ("auc", "accuracy", "f1", "loss", "latency")
PARAMS = ("model", "lr", "depth", "seed", "features")
REPEATS = 20
TARGET_MS = 100.0

QUERIES: list[tuple[str, str | None, str]] = [
    ("metrics.auc > 0.8", "metrics.auc DESC", "metrics.auc > 0.8 order by metrics.auc desc"),
    (
        "params.model = 'gbm' and metrics.loss < 0.5",
        "metrics.f1 DESC",
        "params.model = 'gbm' and metrics.loss < 0.5 order by metrics.f1 desc",
    ),
    (
        "(tags.team = 'risk' or tags.team = 'growth') and attributes.status = 'FINISHED'",
        "attributes.start_time DESC",
        "tags.team in 2 of 4 teams and status order by start_time desc",
    ),
]


def build(db: Database, n_runs: int) -> None:
    """Insert ``n_runs`` runs spread over 5 experiments, with 5 metrics and 5 params each."""
    rng = random.Random(0)
    now = datetime.now(UTC)
    with db.write() as conn:
        conn.execute(
            experiments.insert(),
            [
                {"id": i, "name": f"exp-{i}", "created_at": now, "created_by": "bench"}
                for i in range(1, 6)
            ],
        )
        run_rows: list[dict[str, Any]] = []
        metric_rows: list[dict[str, Any]] = []
        param_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        for i in range(n_runs):
            run_id = uuid.UUID(int=rng.getrandbits(128)).hex
            start = 1_700_000_000_000 + i * 60_000
            run_rows.append(
                {
                    "id": run_id,
                    "experiment_id": 1 + i % 5,
                    "name": f"run-{i}",
                    "status": rng.choice(("FINISHED", "FINISHED", "FAILED", "RUNNING")),
                    "lifecycle": "deleted" if i % 50 == 0 else "active",
                    "start_time": start,
                    "end_time": start + 30_000,
                    "created_by": "bench",
                    "code": {},
                    "environment": {},
                }
            )
            for key in METRICS:
                value = rng.random()
                point = {"step": 10, "timestamp": start, "value": value}
                metric_rows.append(
                    {"run_id": run_id, "key": key, "min_value": value, "max_value": value, **point}
                )
            for key in PARAMS:
                value = rng.choice(("gbm", "rf", "lr")) if key == "model" else str(rng.random())
                param_rows.append({"run_id": run_id, "key": key, "value": value})
            team = rng.choice(("risk", "growth", "core", "ops"))
            tag_rows.append({"run_id": run_id, "key": "team", "value": team})
        conn.execute(runs.insert(), run_rows)
        conn.execute(run_latest_metrics.insert(), metric_rows)
        conn.execute(run_params.insert(), param_rows)
        conn.execute(run_tags.insert(), tag_rows)


def time_query(db: Database, filter_text: str, order_by: str | None) -> tuple[float, int]:
    """Median milliseconds over REPEATS runs of the query (after one warm-up), and row count."""
    stmt = search_runs_stmt(filter_text, order_by, limit=100)
    timings: list[float] = []
    rows = 0
    with db.read() as conn:
        conn.execute(stmt).all()
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            rows = len(conn.execute(stmt).all())
            timings.append((time.perf_counter() - t0) * 1000)
    return statistics.median(timings), rows


def explain(db: Database, filter_text: str, order_by: str | None) -> None:
    stmt = search_runs_stmt(filter_text, order_by, limit=100)
    compiled = stmt.compile(db.engine, compile_kwargs={"render_postcompile": True})
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    with db.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all()
    for row in plan:
        print("    ", row[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--explain", action="store_true", help="print SQLite's query plans")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            t0 = time.perf_counter()
            build(db, args.runs)
            print(f"built {args.runs:,} runs in {time.perf_counter() - t0:.1f} s")
            for i, (filter_text, order_by, label) in enumerate(QUERIES):
                median, rows = time_query(db, filter_text, order_by)
                target = f" (target < {TARGET_MS:.0f} ms)" if i == 0 else ""
                print(
                    f"search: {args.runs:,} runs, {label} limit 100: "
                    f"{median:.1f} ms median, {rows} rows{target}"
                )
                if args.explain:
                    explain(db, filter_text, order_by)
        finally:
            db.dispose()


if __name__ == "__main__":
    main()
