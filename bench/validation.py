"""Benchmark: validate 1,000,000 rows x 20 columns against a 20-column contract.

Run with ``python bench/validation.py``. Prints the best of 3 timed runs after one warm-up run;
the target from the issue is under 3 seconds. Never a test: figures depend on the machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from shipyard.data.contracts import Contract
from shipyard.data.validation import row_failures, validate

ROWS = 1_000_000
TARGET_SECONDS = 3.0
CONTRACT = """
description: Synthetic loan applications (benchmark)
columns:
  id:          {type: int, unique: true, nullable: false}
  age:         {type: int, min: 18, max: 100, nullable: false}
  tenure:      {type: int, min: 0, max: 600}
  dependants:  {type: int, min: 0, max: 12, allowed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
  loans:       {type: int, min: 0}
  score_raw:   {type: float}
  income:      {type: float, min: 0, max: 1000000, nullable: false}
  debt_ratio:  {type: float, min: 0, max: 5}
  rate:        {type: float, min: 0.0, max: 0.4}
  balance:     {type: float, min: -100000, max: 100000}
  score:       {type: float, min: 0, max: 1}
  city:        {type: category, allowed: [amsterdam, berlin, lisbon, madrid, paris, rome]}
  segment:     {type: category, allowed: [retail, premium, private], nullable: false}
  email:       {type: string, regex: '^[^@]+@[^@]+$'}
  postcode:    {type: string, regex: '^[0-9]{4} ?[A-Z]{2}$'}
  channel:     {type: string, allowed: [web, branch, phone, partner]}
  active:      {type: bool, nullable: false}
  defaulted:   {type: bool}
  applied_at:  {type: datetime, min: 2015-01-01, max: 2030-01-01, nullable: false}
  birth_date:  {type: datetime, min: 1900-01-01}
checks:
  row_count: {min: 100000}
  unique: [[email, applied_at]]
  max_null_share: {income: 0.05, tenure: 0.2}
  mean: {age: {min: 30, max: 60}}
  quantile: {income: {q: 0.5, min: 10000, max: 200000}}
"""


def make_frame(rows: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2016-01-01T00:00:00", "us")
    seconds = rng.integers(0, 13 * 365 * 86400, rows).astype("timedelta64[s]")
    frame = pl.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "age": rng.integers(18, 90, rows),
            "tenure": rng.integers(0, 600, rows).astype(np.int32),
            "dependants": rng.integers(0, 6, rows).astype(np.int16),
            "loans": rng.poisson(1.5, rows),
            "score_raw": rng.normal(0, 1, rows),
            "income": rng.lognormal(10.5, 0.6, rows).clip(0, 999_999),
            "debt_ratio": rng.gamma(2.0, 0.3, rows).clip(0, 5),
            "rate": rng.uniform(0.01, 0.3, rows),
            "balance": rng.normal(0, 20_000, rows).clip(-100_000, 100_000),
            "score": rng.beta(2, 5, rows),
            "city": rng.choice(["amsterdam", "berlin", "lisbon", "madrid", "paris"], rows),
            "segment": rng.choice(["retail", "premium", "private"], rows, p=[0.8, 0.15, 0.05]),
            "channel": rng.choice(["web", "branch", "phone", "partner"], rows),
            "active": rng.random(rows) < 0.9,
            "defaulted": rng.random(rows) < 0.05,
            "applied_at": start + seconds,
            "birth_date": np.datetime64("1940-01-01", "D")
            + rng.integers(0, 60 * 365, rows).astype("timedelta64[D]"),
            "pc_digits": rng.integers(1000, 9999, rows),
            "pc_letters": rng.choice(["AB", "CD", "EF", "XY"], rows),
        }
    )
    return frame.select(
        pl.exclude("pc_digits", "pc_letters", "city", "segment"),
        pl.col("city").cast(pl.Categorical),
        pl.col("segment").cast(pl.Enum(["retail", "premium", "private"])),
        pl.format("user{}@example.com", pl.col("id")).alias("email"),
        pl.format("{} {}", pl.col("pc_digits"), pl.col("pc_letters")).alias("postcode"),
    )


def best_of(runs: int, fn: Callable[[], object]) -> float:
    fn()  # warm-up: imports, pandera backend registration, polars thread pool
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    contract = Contract.from_yaml(CONTRACT)
    frame = make_frame(ROWS)
    assert frame.width == len(contract.columns) == 20, frame.columns
    report = validate(contract, frame)
    if not report.passed:
        print("the benchmark data should pass:", report.summary(), file=sys.stderr)
        return 1
    seconds = best_of(3, lambda: validate(contract, frame))
    verdict = "ok" if seconds < TARGET_SECONDS else "SLOWER THAN TARGET"
    print(
        f"validation: {frame.height:,} rows x {frame.width} columns in {seconds:.2f} s "
        f"(target < {TARGET_SECONDS:.0f} s) {verdict}"
    )

    # The same frame with 1% of rows broken in several ways: the failure path must stay fast.
    def every_100th(offset: int, value: object, column: str) -> pl.Expr:
        hit = pl.col("id") % 100 == offset
        return pl.when(hit).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)

    broken = frame.with_columns(
        every_100th(0, 150, "age"),
        every_100th(1, "nope", "email"),
        every_100th(2, None, "income"),
        every_100th(3, 0, "id"),
    )
    failing = best_of(3, lambda: validate(contract, broken))
    print(
        f"validation with failures: {broken.height:,} rows x {broken.width} columns "
        f"in {failing:.2f} s ({len(validate(contract, broken).failures)} failures)"
    )
    quarantine = best_of(3, lambda: row_failures(contract, broken))
    print(f"row_failures: {broken.height:,} rows in {quarantine:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
