"""Benchmark: metric logging throughput on SQLite, beside the floor measured in the same run,
and the bookkeeping of one short run beside MLflow's fluent API.

1. **Throughput.** The floor is a raw ``sqlite3`` insert of the same rows in one transaction,
   with the same table and index: the fastest SQLite can store them. shipyard's figure is
   100,000 points sent through ``run.log_metrics`` and flushed (buffering, batch insert,
   latest-value upsert, blocks, audit event).
2. **Per run** (a sweep of many short runs): ``--runs`` runs (200), each started, given 2
   params and 20 metrics (one ``log_params``, one ``log_metrics`` call) and ended, through
   ``project.start_run`` and through ``mlflow.start_run`` / ``mlflow.log_params`` /
   ``mlflow.log_metrics`` on a SQLite tracking store, each after 5 warm-up runs (which also
   create the experiment and capture code and environment). Figures: CPU milliseconds per run
   (user + system of the process and of the children it waited for, such as ``git``) and wall
   milliseconds per run, best of ``--repeat`` rounds, with the load average. MLflow runs in a
   child process of the same Python (``mlflow-skinny``, which the ``dev`` extra installs; never
   a shipyard dependency); without it that side is skipped. Target (issue 16): at most 3 ms
   per run.

    python bench/tracking.py [--points 100000] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
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


# One short run, the same on both sides: 2 params, 20 metrics.
PARAMS = {"lr": 0.1, "depth": 3}
METRICS = {f"m{i}": i / 10 for i in range(20)}
WARM_UP = 5

MLFLOW_SIDE = """
import json, resource, sys, time
import mlflow

def cpu():
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

folder, runs, repeat, params, metrics, warm = sys.argv[1:7]
runs, repeat, warm = int(runs), int(repeat), int(warm)
params, metrics = json.loads(params), json.loads(metrics)
mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
mlflow.set_experiment("sweep")

def one():
    with mlflow.start_run():
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)

for _ in range(warm):
    one()
rounds = []
for _ in range(repeat):
    c, t = cpu(), time.perf_counter()
    for _ in range(runs):
        one()
    rounds.append(((cpu() - c) / runs, (time.perf_counter() - t) / runs))
print(json.dumps(rounds))
"""


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (``git``)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def shipyard_runs(project_dir: Path, runs: int, repeat: int) -> list[tuple[float, float]]:
    """(CPU s, wall s) per run, for each round."""
    import shipyard

    project = shipyard.open_project(project_dir)

    def one() -> None:
        with project.start_run("sweep") as run:
            run.log_params(PARAMS)
            run.log_metrics(METRICS)

    for _ in range(WARM_UP):
        one()
    rounds = []
    for _ in range(repeat):
        c, t = cpu_seconds(), time.perf_counter()
        for _ in range(runs):
            one()
        rounds.append(((cpu_seconds() - c) / runs, (time.perf_counter() - t) / runs))
    assert len(project.runs.list(experiment="sweep")) == WARM_UP + runs * repeat
    project.close()
    return rounds


def mlflow_runs(folder: Path, runs: int, repeat: int) -> list[tuple[float, float]] | None:
    """(CPU s, wall s) per run of MLflow's fluent API, for each round; None without mlflow."""
    from server import MLFLOW_ENV

    env = {**os.environ, **MLFLOW_ENV, "MLFLOW_TRACKING_URI": ""}
    argv = [str(folder), str(runs), str(repeat), json.dumps(PARAMS), json.dumps(METRICS)]
    done = subprocess.run(
        [sys.executable, "-c", MLFLOW_SIDE, *argv, str(WARM_UP)],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        check=False,
    )
    if done.returncode != 0:
        if "No module named 'mlflow'" in done.stderr:
            return None
        sys.exit(f"the MLflow side failed:\n{done.stderr[-3000:]}")
    return [(c, w) for c, w in json.loads(done.stdout.strip().splitlines()[-1])]


def per_run(work: Path, runs: int, repeat: int) -> None:
    import shipyard

    shipyard.init_project(work / "runs").close()
    (work / "mlflow").mkdir()
    load = os.getloadavg()[0]
    ours = shipyard_runs(work / "runs", runs, repeat)
    theirs = mlflow_runs(work / "mlflow", runs, repeat)
    best = min(ours)
    print(
        f"per run:      {runs} runs x {repeat} rounds, 2 params + 20 metrics each "
        f"(load average {load:.1f} -> {os.getloadavg()[0]:.1f}; best round)"
    )
    print(
        f"  shipyard    {best[0] * 1000:6.2f} ms CPU, {best[1] * 1000:6.2f} ms wall per run "
        f"(rounds: {', '.join(f'{c * 1000:.2f}' for c, _ in ours)} ms CPU; target <= 3 ms)"
    )
    if theirs is None:
        print("  mlflow      skipped: mlflow is not installed in this Python")
        return
    other = min(theirs)
    print(
        f"  mlflow      {other[0] * 1000:6.2f} ms CPU, {other[1] * 1000:6.2f} ms wall per run "
        f"(rounds: {', '.join(f'{c * 1000:.2f}' for c, _ in theirs)} ms CPU)"
    )
    print(
        f"  ratio       mlflow / shipyard: {other[0] / best[0]:.1f}x CPU, "
        f"{other[1] / best[1]:.1f}x wall"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200, help="Short runs per round (0: skip).")
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
        if args.runs:
            per_run(work, args.runs, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
