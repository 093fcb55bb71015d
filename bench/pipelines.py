"""Benchmark: pipelines with content-addressed caching, against ``dvc repro``, and on Dask.

1. **All cache hits.** A 20-step chain (step 1 reads a registered dataset of ``--rows`` rows,
   each later step adds a column to the previous step's table) run again with nothing
   changed, against ``dvc repro`` of the equivalent 20-stage ``dvc.yaml`` (each stage
   ``python stage.py I`` with the script and the previous table as deps and its table as
   out), both as a user runs them (a fresh process each time, start-up included), in the same
   workspace, rounds rotating which goes first. Two shipyard figures:

   - ``shipyard pipeline run chain.py --json``: the command finds the fingerprint its last
     run left and answers "up to date" before importing Typer, SQLAlchemy or the pipeline
     (every file, package, variable and the store's audit head re-checked; nothing
     recorded), as ``dvc repro`` answers from its lock file. The script checks that each
     timed run did answer so;
   - ``... --always-record``: the recorded all-hit run (the pipeline imported, every step's
     key computed and looked up, a pipeline run with 20 reused steps written).

   The shipyard figure without process start-up (``project.pipelines.run``, which always
   records, in a warm process) is printed too, with DVC's own Python API
   (``Repo.reproduce()``) timed the same way in a warm process of its environment. Targets:
   under 1 s and at least 5x faster than ``dvc repro``.
2. **Dask.** 16 independent steps that each sleep 0.5 s (``nap.map(range(16))``, volatile so
   they always run) on a Dask LocalCluster of 2 single-threaded worker processes: once with
   ``--executor dask`` (the cluster started for the run, its workers importing shipyard), and
   then on a cluster already running (``dask://HOST:PORT``, workers warmed by one run). Target:
   under 5 s on the running cluster (8 s of sleeping over 2 workers is 4 s at best).

DVC is never a shipyard dependency: the script makes bench/.work/dvc-venv (DVC_REQUIREMENTS)
and runs ``dvc`` from there; the stages run this interpreter.

    python bench/pipelines.py                  # about 2 minutes once DVC is installed
    python bench/pipelines.py --rounds 1 --rows 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _venv import BenchVenv, digest, workspace

DVC_REQUIREMENTS = ("dvc==3.67.1",)
STEPS = 20
NAPS = 16
TARGETS = "all hits < 1 s and >= 5x faster than dvc repro; 16 x 0.5 s on 2 Dask workers < 5 s"

CHAIN = """
import polars as pl

from shipyard import pipeline, step
from shipyard.pipelines import dataset


@step
def first(data) -> pl.DataFrame:
    return data.to_polars().with_columns(c0=pl.col("x0") * 2)


@step
def stage(table: pl.DataFrame, i: int) -> pl.DataFrame:
    return table.with_columns((pl.col(f"c{i - 1}") + i).alias(f"c{i}"))


@pipeline
def chain(n: int = STEPS):
    t = first(dataset("bench"))
    for i in range(1, n):
        t = stage(t, i)
"""

STAGE = """
import sys

import polars as pl

i = int(sys.argv[1])
if i == 0:
    t = pl.read_parquet("data.parquet").with_columns(c0=pl.col("x0") * 2)
else:
    t = pl.read_parquet(f"out/{i - 1}.parquet")
    t = t.with_columns((pl.col(f"c{i - 1}") + i).alias(f"c{i}"))
t.write_parquet(f"out/{i}.parquet")
"""

NAPPING = """
import time

from shipyard import pipeline, step


@step(volatile=True)
def nap(i: int) -> int:
    time.sleep(0.5)
    return i


@pipeline
def naps(n: int = 16):
    nap.map(list(range(n)))
"""


def dvc_venv() -> BenchVenv:
    return BenchVenv("dvc-venv", digest("\n".join(DVC_REQUIREMENTS)))


def prepare_dvc(venv: BenchVenv) -> Path:
    if not venv.ready():
        venv.create()
        venv.pip("installing " + ", ".join(DVC_REQUIREMENTS), *DVC_REQUIREMENTS)
        venv.mark_ready()
    return venv.path / "bin" / "dvc"


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system, the process and its children) of a command,
    and its output: on a shared machine the CPU figure is the one that does not depend on
    the neighbours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, done.stdout


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}–{max(values):.3f}]"


def versus_dvc(hits: dict[str, list[float]], figure: str) -> str:
    """How many times less than DVC's the figure (``shipyard``, ``recorded cpu``…) is: the
    median of the rounds' ratios, and their range."""
    base = "dvc cpu" if figure.endswith(" cpu") else "dvc"
    ratios = [d / s for s, d in zip(hits[figure], hits[base], strict=True)]
    what = "less CPU" if base == "dvc cpu" else "faster"
    return f"{statistics.median(ratios):.1f}x {what} (rounds {min(ratios):.1f}–{max(ratios):.1f}x)"


def write_workspace(root: Path, rows: int) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    frame = pl.DataFrame({f"x{j}": rng.normal(size=rows) for j in range(8)})
    frame.write_parquet(root / "data.parquet")
    (root / "chain.py").write_text(CHAIN.replace("STEPS", str(STEPS)))
    (root / "stage.py").write_text(STAGE)
    (root / "naps.py").write_text(NAPPING)
    (root / "out").mkdir()
    stages = {}
    for i in range(STEPS):
        deps = ["stage.py", "data.parquet" if i == 0 else f"out/{i - 1}.parquet"]
        stages[f"s{i:02d}"] = {
            "cmd": f"{sys.executable} stage.py {i}",
            "deps": deps,
            "outs": [f"out/{i}.parquet"],
        }
    (root / "dvc.yaml").write_text(json.dumps({"stages": stages}, indent=2))


def bench_cache_hits(root: Path, dvc: Path, rounds: int) -> dict[str, list[float]]:
    import shipyard

    shipyard_cli = [sys.executable, "-m", "shipyard", "pipeline", "run", "chain.py", "--json"]
    commands = {
        "shipyard": shipyard_cli,
        "recorded": [*shipyard_cli, "--always-record"],
        "dvc": [str(dvc), "repro", "-q"],
    }
    print("[setup] first runs (every step computed)", flush=True)
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=root, check=True)
    first_dvc, _, _ = timed(commands["dvc"], root)
    first_shipyard, _, _ = timed(shipyard_cli, root)
    print(f"[setup]   dvc repro {first_dvc:.1f} s, shipyard {first_shipyard:.1f} s", flush=True)
    times: dict[str, list[float]] = {
        k: []
        for k in (
            *commands,
            *(f"{tool} cpu" for tool in commands),
            "in-process",
            "dvc in-process",
        )
    }
    tools = list(commands)
    for r in range(rounds):
        for tool in tools[r % 3 :] + tools[: r % 3]:
            wall, cpu, out = timed(commands[tool], root)
            if tool != "dvc":
                doc = json.loads(out)
                assert doc["up_to_date"] is (tool == "shipyard"), (tool, doc["up_to_date"])
                assert doc["cache_hits"] == STEPS, doc
            times[tool].append(wall)
            times[f"{tool} cpu"].append(cpu)
        print(
            f"  round {r + 1}: shipyard {times['shipyard'][-1]:.3f} s "
            f"(cpu {times['shipyard cpu'][-1]:.3f} s), --always-record "
            f"{times['recorded'][-1]:.3f} s (cpu {times['recorded cpu'][-1]:.3f} s), dvc repro "
            f"{times['dvc'][-1]:.3f} s (cpu {times['dvc cpu'][-1]:.3f} s)",
            flush=True,
        )
    with shipyard.open_project(root) as project:
        project.pipelines.run(str(root / "chain.py"))  # imports and connections warm
        for _ in range(rounds):
            started = time.perf_counter()
            result = project.pipelines.run(str(root / "chain.py"))
            times["in-process"].append(time.perf_counter() - started)
            assert result.cache_hits == STEPS, result.to_dict()
    times["dvc in-process"] = dvc_in_process(root, dvc, rounds)
    return times


DVC_IN_PROCESS = """
import json, sys, time
from dvc.repo import Repo

repo = Repo(sys.argv[1])
repo.reproduce()  # imports and state warm
times = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    repo.reproduce()
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def dvc_in_process(root: Path, dvc: Path, rounds: int) -> list[float]:
    """``Repo(root).reproduce()`` timed in a warm process of the DVC environment."""
    done = subprocess.run(
        [str(dvc.parent / "python"), "-c", DVC_IN_PROCESS, str(root), str(rounds)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"dvc in-process failed:\n{done.stderr[-2000:]}")
    times: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def bench_dask(root: Path) -> dict[str, float]:
    from distributed import Client, LocalCluster

    import shipyard

    out: dict[str, float] = {}
    with shipyard.open_project(root) as project:
        started = time.perf_counter()
        result = project.pipelines.run(str(root / "naps.py"), executor="dask")
        out["cold"] = time.perf_counter() - started
        assert result.status == "succeeded", result.error
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        try:
            with Client(cluster) as client:
                address = "dask://" + client.scheduler.address.removeprefix("tcp://")
                project.pipelines.run(str(root / "naps.py"), executor=address)  # warm workers
                started = time.perf_counter()
                result = project.pipelines.run(str(root / "naps.py"), executor=address)
                out["warm"] = time.perf_counter() - started
                assert result.status == "succeeded", result.error
                steps = [s.duration_seconds or 0.0 for s in result.steps]
                out["step"] = statistics.median(steps)
        finally:
            cluster.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the input table")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dvc = prepare_dvc(dvc_venv())
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPU(s), load average "
        f"{os.getloadavg()[0]:.1f}; {STEPS}-step chain over "
        f"{args.rows:,} rows x 8 columns; {args.rounds} rounds",
        flush=True,
    )
    started = time.perf_counter()
    with workspace("shipyard-bench-pipelines-") as root:
        import shipyard

        write_workspace(root, args.rows)
        with shipyard.init_project(root, name="bench") as project:
            project.datasets.add("bench", root / "data.parquet")
        hits = bench_cache_hits(root, dvc, args.rounds)
        naps = bench_dask(root)
    inproc = statistics.median(hits["dvc in-process"]) / statistics.median(hits["in-process"])
    print(f"\nTargets: {TARGETS}.")
    print(
        textwrap.dedent(
            f"""\
            all hits   : shipyard pipeline run (up to date, nothing recorded) \
{spread(hits["shipyard"])}, dvc repro {spread(hits["dvc"])}: {versus_dvc(hits, "shipyard")}
              cpu time : shipyard {spread(hits["shipyard cpu"])}, dvc repro \
{spread(hits["dvc cpu"])}: {versus_dvc(hits, "shipyard cpu")}
            recorded   : shipyard pipeline run --always-record (20 steps reused, a run \
recorded) {spread(hits["recorded"])}: {versus_dvc(hits, "recorded")}
              cpu time : {spread(hits["recorded cpu"])}: {versus_dvc(hits, "recorded cpu")}
            in-process : project.pipelines.run {spread(hits["in-process"])}, DVC's \
Repo.reproduce() {spread(hits["dvc in-process"])}: {inproc:.1f}x faster (warm processes, no \
start-up)
            dask       : {NAPS} x 0.5 s steps on a running 2-worker LocalCluster \
{naps["warm"]:.2f} s (median step {naps["step"]:.2f} s); with --executor dask (cluster \
started for the run) {naps["cold"]:.2f} s"""
        )
    )
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
