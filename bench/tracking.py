"""Benchmark: metric logging throughput on SQLite, beside the floor measured in the same run.

The floor is a raw ``sqlite3`` insert of the same rows in one transaction, with the same table
and index: the fastest SQLite can store them. shipyard's figure is 100,000 points sent through
``run.log_metrics`` and flushed (buffering, batch insert, latest-value upsert, audit event).

    python bench/tracking.py [--points 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path


def floor(rows: list[tuple[str, str, int, int, float]], path: Path) -> float:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, run_id TEXT, key TEXT, step INTEGER, "
        "timestamp INTEGER, value REAL)"
    )
    con.execute("CREATE INDEX ix ON m (run_id, key, step)")
    t = time.perf_counter()
    with con:
        con.executemany(
            "INSERT INTO m (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?)", rows
        )
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def shipyard_logging(project_dir: Path, points: int) -> float:
    import shipyard

    project = shipyard.open_project(project_dir)
    keys = [f"m{i}" for i in range(10)]
    steps = points // len(keys)
    with project.start_run("bench", name="log-metrics") as run:
        t = time.perf_counter()
        for step in range(steps):
            run.log_metrics({k: step * 0.001 + i for i, k in enumerate(keys)}, step=step)
        run.flush()
        elapsed = time.perf_counter() - t
    assert len(project.runs.metric_history(run.id, "m0")) == steps
    project.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import shipyard

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    try:
        os.environ["SHIPYARD_USER"] = "bench"
        shipyard.init_project(work / "proj").close()
        rows = [
            ("0" * 32, f"m{i % 10}", i // 10, 1_700_000_000_000 + i, i * 0.5)
            for i in range(args.points)
        ]
        floors = [floor(rows, work / f"floor{i}.db") for i in range(args.repeat)]
        ours = [shipyard_logging(work / "proj", args.points) for _ in range(args.repeat)]
        f, o = statistics.median(floors), statistics.median(ours)
        print(
            f"floor:        {args.points:,} rows raw sqlite3 in one transaction: {f:.3f} s "
            f"= {args.points / f:,.0f} rows/s (median of {args.repeat})"
        )
        print(
            f"log_metrics:  {args.points:,} points logged and flushed: {o:.3f} s "
            f"= {args.points / o:,.0f} points/s (median of {args.repeat}; target < 0.4 s, "
            ">= 250,000 points/s)"
        )
        print(f"ratio:        {f / o:.0%} of the raw-insert floor")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
