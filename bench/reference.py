"""Benchmark: what storing a drift reference with every table version costs `data add`.

A 100,000-row x 25-column table (20 numeric, 5 categorical) as Parquet: the column profile
alone against the profile and the reference from the same read (what `data add` does now),
`data add` itself, the stored reference's size, building a reference for a version added
before references were stored (first use), and reading a stored one back.

    python bench/reference.py [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def make_table(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"n{i}": rng.normal(i, 1 + i, rows) for i in range(20)}
    cats = np.array(["amsterdam", "berlin", "lisbon", "madrid", "oslo", "paris", "rome"])
    for i in range(5):
        cols[f"c{i}"] = cats[rng.integers(0, len(cats), rows)]
    pl.DataFrame(cols).write_parquet(path)


def best(fn: Any, repeat: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import shipyard
    from shipyard.data.profiles import profile_parquet, profile_with_reference, reference_parquet

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    tables = [work / f"t{i}.parquet" for i in range(args.repeat)]
    for i, t in enumerate(tables):
        make_table(t, args.rows, seed=i)
    profile_parquet(tables[0])  # imports and first-call costs out of the figures

    plain = best(lambda: profile_parquet(tables[0]), args.repeat)
    both = best(lambda: profile_with_reference(tables[0]), args.repeat)
    backfill = best(lambda: reference_parquet(tables[0]), args.repeat)
    print(f"table:                  {args.rows:,} rows x 25 columns (20 numeric, 5 categorical)")
    print(f"profile alone:          {plain[0] * 1000:7.0f} ms (median {plain[1] * 1000:.0f})")
    print(f"profile + reference:    {both[0] * 1000:7.0f} ms (median {both[1] * 1000:.0f})")
    print(f"  reference adds:       {(both[0] - plain[0]) * 1000:7.0f} ms (best against best)")

    os.environ["SHIPYARD_USER"] = "bench"
    with shipyard.init_project(work / "proj") as project:
        adds = []
        for i, t in enumerate(tables):
            start = time.perf_counter()
            project.datasets.add(f"t{i}", t)
            adds.append(time.perf_counter() - start)
        doc = project.drift.reference("t0@1").to_json()
        read = best(lambda: project.drift.reference("t0@1"), args.repeat)
    size = len(json.dumps(doc).encode())
    median = statistics.median(adds)
    print(f"data add (Parquet):     {min(adds) * 1000:7.0f} ms (median {median * 1000:.0f})")
    print(f"stored reference:       {size / 1024:7.0f} KiB of JSON")
    print(f"reference on first use: {backfill[0] * 1000:7.0f} ms (a version from before)")
    print(f"stored reference read:  {read[0] * 1000:7.0f} ms (with its access-log event)")


if __name__ == "__main__":
    main()
