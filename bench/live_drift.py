"""Benchmark: the cost of live drift in `shipyard serve`.

Run with ``python bench/live_drift.py`` (``--seconds`` per measurement, default 5;
``--repeat`` rounds, default 3). Two parts:

1. The counting path alone, in this process: :class:`shipyard.serving.live_drift.LiveCounts`
   given the rows as the prediction log's writer has them (dicts read from the request
   bodies), one ``observe`` per request and one ``flush`` per frame of 5,000 rows, as the
   writer does. Two shapes: the credit applicants the serving tests use (16 features of the
   model's signature) and 25 columns (20 numeric, 5 categorical, as in ``bench/drift.py``),
   with requests of 1 and of 100 rows. It prints rows per CPU second and CPU microseconds
   per row (CPU time of this process, so that other work on the machine does not count; best
   of the rounds, and the spread); the target is under 10 µs per row.
2. Serving throughput with and without live drift, in the same run: the credit project of
   ``bench/serving.py`` served twice at once, by ``shipyard serve`` and by ``shipyard serve
   --drift-window 0``, driven by the same load generator (single-row requests and 100-row
   batches at concurrency 8), each setting measuring one server right after the other, in
   alternating order. It prints requests/s and rows/s (medians over the rounds, with the
   lowest and highest round), the ratio, and whether the drift window of the first server
   counted every row it predicted (it must keep up).

Never a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from serving import build_project, free_port, measure, server
from shipyard.monitoring.reference import build_reference
from shipyard.serving.live_drift import LiveCounts, Window

TARGET_US = 10.0
FRAME_ROWS = 5_000
CONCURRENCY = 8


# -- the counting path ------------------------------------------------------------------------


def wide_frame(n: int, seed: int) -> pl.DataFrame:
    """20 numeric and 5 categorical columns."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {f"x{i}": rng.normal(i, 1 + i / 10, n) for i in range(20)}
    for i in range(5):
        columns[f"c{i}"] = rng.choice([f"v{j}" for j in range(8 + i)], n).tolist()
    return pl.DataFrame(columns)


def count_rate(
    train: pl.DataFrame, rows: list[dict[str, Any]], per_request: int, folder: Path
) -> float:
    """CPU seconds per row (of this process: what the writer process spends, whatever else
    runs on the machine) to observe ``rows`` in requests of ``per_request`` rows and flush
    every :data:`FRAME_ROWS` rows."""
    reference = build_reference(train)
    columns = list(train.columns)
    live = LiveCounts(Window(str(folder)), lambda ref: (reference, columns), writer="bench")
    now = int(time.time() * 1000)
    live.observe("m@1", now, rows[:per_request])  # the reference is read once, outside
    live.flush(now)
    start = time.process_time()
    seen = 0
    for i in range(0, len(rows), per_request):
        live.observe("m@1", now, rows[i : i + per_request])
        seen += per_request
        if seen >= FRAME_ROWS:
            live.flush(now)
            seen = 0
    live.flush(now)
    return (time.process_time() - start) / len(rows)


def counting(repeat: int) -> None:
    from shipyard.demo.data import credit_applicants

    workdir = Path(tempfile.mkdtemp(prefix="shipyard-bench-drift-"))
    try:
        credit = credit_applicants(25_000).drop("default")
        credit_train = credit.head(5_000).drop("application_date")
        credit_rows = json.loads(credit.tail(20_000).write_json())  # as the request sent them
        wide = wide_frame(25_000, 1)
        shapes = {
            "credit (16 features)": (credit_train, credit_rows),
            "wide (20 numeric + 5 categorical)": (wide.head(5_000), wide.tail(20_000).to_dicts()),
        }
        print("counting path alone (observe per request, flush per 5,000 rows):")
        for name, (train, rows) in shapes.items():
            for per_request in (1, 100):
                runs = [count_rate(train, rows, per_request, workdir) for _ in range(repeat)]
                best = min(runs)
                print(
                    f"  {name:<34} {per_request:>3} row(s)/request: {1 / best:>11,.0f} rows/CPU s  "
                    f"{best * 1e6:5.2f} CPU µs/row (rounds {min(runs) * 1e6:.2f}-"
                    f"{max(runs) * 1e6:.2f}; target < {TARGET_US:g} µs: "
                    f"{'met' if best * 1e6 < TARGET_US else 'MISSED'})",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- serving with and without ----------------------------------------------------------------


def scrape_sum(url: str, name: str) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def serving(seconds: float, repeat: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="shipyard-bench-live-drift-"))
    try:
        records = build_project(workdir / "proj", 5000)
        bodies = {n: json.dumps({"records": records[:n]}).encode() for n in (1, 100)}
        base = [sys.executable, "-m", "shipyard", "--project", str(workdir / "proj"), "serve"]
        ports = {"with drift": free_port(), "without": free_port()}
        commands = {
            "with drift": [*base, "credit-risk", "--port", str(ports["with drift"])],
            "without": [
                *base,
                "credit-risk",
                "--port",
                str(ports["without"]),
                "--drift-window",
                "0",
            ],
        }
        with ExitStack() as stack:
            urls = {
                name: stack.enter_context(
                    server(commands[name], ports[name], "/v2/health/ready", workdir / f"{i}.log")
                )
                for i, name in enumerate(commands)
            }
            print(
                f"\nserving throughput, concurrency {CONCURRENCY}, {seconds:g} s per "
                f"measurement, {repeat} round(s):",
                flush=True,
            )
            figures: dict[tuple[str, int], list[float]] = {}
            for r in range(repeat):
                for rows, body in bodies.items():
                    order = list(urls) if r % 2 == 0 else list(urls)[::-1]
                    for name in order:
                        f = measure(name, urls[name], body, rows, CONCURRENCY, seconds)
                        figures.setdefault((name, rows), []).append(f.rps)
                        print(
                            f"  round {r + 1}  {name:<10} rows {rows:>3}: {f.rps:8.1f} req/s "
                            f"p99 {f.p99_ms:6.2f} ms",
                            flush=True,
                        )
            time.sleep(3)  # the writers hand over and count what is buffered
            predicted = scrape_sum(urls["with drift"], "shipyard_predictions_total")
            counted = scrape_sum(urls["with drift"], "shipyard_drift_window_rows")
        print(f"\nmedians over {repeat} round(s), with the lowest and highest round")
        for rows in bodies:
            on, off = figures[("with drift", rows)], figures[("without", rows)]
            ratios = [a / b for a, b in zip(on, off, strict=True)]
            print(
                f"  rows {rows:>3}/request: with drift {statistics.median(on):8.1f} req/s "
                f"({min(on):.0f}-{max(on):.0f}), without {statistics.median(off):8.1f} req/s "
                f"({min(off):.0f}-{max(off):.0f}); with/without {statistics.median(ratios):.1%} "
                f"(rounds {', '.join(f'{x:.1%}' for x in ratios)}); "
                f"{statistics.median(on) * rows:,.0f} rows/s with drift"
            )
        print(
            f"  the drift window counted {counted:,.0f} of the {predicted:,.0f} rows predicted "
            f"({'kept up' if counted == predicted else 'BEHIND or rows left the window'})"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of a measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds")
    parser.add_argument(
        "--only", choices=("counting", "serving"), help="run one part of the benchmark"
    )
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPU(s)")
    if args.only in (None, "counting"):
        counting(args.repeat)
    if args.only in (None, "serving"):
        serving(args.seconds, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
