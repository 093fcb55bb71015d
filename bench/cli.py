"""Benchmark: how long commands that read the store take, beside ``shipyard --help`` and
``python -c pass`` measured in the same run.

A temporary project gets two datasets, three runs and a registered model (not timed). Each
command then runs ``--repeat`` times (after one warm-up run that also writes the bytecode
cache) as a new process, ``python -m shipyard ...`` in the project folder. Figures per
command: the median CPU time of the process (user + system, from the kernel's accounting of
children) and the median wall time, with the ratio of CPU to ``python -c pass``; the load
average is printed, because on a shared machine wall times measure the neighbours. A floor
is measured too: a Python that only imports SQLAlchemy and Typer (collecting garbage as
rarely as the entry point does while it starts), which every store-reading command needs
(Typer's pydantic adapters are not: shipyard converts plain option values itself, see
cli/_coerce.py).

    python bench/cli.py [--repeat 7]

Target (issue 16): commands that read the store under 0.35 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.35


def make_project(folder: Path) -> None:
    """A project with what the commands list: datasets, runs and a model's version."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import shipyard

    project = shipyard.init_project(folder)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.integers(0, 2, size=200)})
    project.datasets.add("credit", frame)
    project.datasets.add("credit.test", frame.head(50))
    for i in range(3):
        with project.start_run("bench", name=f"run-{i}") as run:
            run.log_params({"C": 1.0 + i})
            run.log_metrics({"auc": 0.8 + i / 100})
            if i == 2:
                model = LogisticRegression().fit(frame[["x"]], frame["y"])
                run.log_model(model, "credit-risk", input_example=frame[["x"]].head(5))
    project.close()


def measure(command: list[str], cwd: Path, env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of ``command`` over ``repeat`` runs after a warm-up."""
    cpus, walls = [], []
    for i in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')}")
        if i:  # the first run warms the caches (bytecode, page cache)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            walls.append(wall)
    return statistics.median(cpus), statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    import shipyard

    py = sys.executable
    # The commands run the shipyard this script imports, with a bytecode cache as installed
    # packages have one.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(SHIPYARD_USER="bench", PYTHONPATH=str(Path(shipyard.__file__).parents[1]))
    env.pop("SHIPYARD_SERVER", None)
    env.pop("SHIPYARD_PROJECT", None)
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-cli-"))
    try:
        os.environ["SHIPYARD_USER"] = "bench"
        make_project(work / "proj")
        cases = [
            ("python -c pass", [py, "-c", "pass"]),
            (
                "floor: import sqlalchemy, typer",
                # with the collector deferred, as the entry point does (cli/entry.defer_gc)
                [py, "-c", "import gc; gc.set_threshold(100_000); import sqlalchemy, typer"],
            ),
            ("shipyard --help", [py, "-m", "shipyard", "--help"]),
            ("shipyard data list", [py, "-m", "shipyard", "data", "list"]),
            (
                "shipyard models versions",
                [py, "-m", "shipyard", "models", "versions", "credit-risk"],
            ),
            ("shipyard runs list", [py, "-m", "shipyard", "runs", "list"]),
            ("shipyard users whoami", [py, "-m", "shipyard", "users", "whoami"]),
        ]
        load = os.getloadavg()
        results = []
        for label, command in cases:
            cpu, wall = measure(command, work / "proj", env, args.repeat)
            results.append((label, cpu, wall))
        base = results[0][1] or 0.001
        print(
            f"median of {args.repeat} runs each; load average {load[0]:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end; target for store-reading commands: "
            f"< {TARGET} s"
        )
        print(f"{'command':34} {'CPU s':>7} {'wall s':>7} {'CPU / python':>13}")
        for label, cpu, wall in results:
            print(f"{label:34} {cpu:7.3f} {wall:7.3f} {cpu / base:12.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
