"""Benchmark: `shipyard data add` against `dvc add` on the same CSV and the same folder of files.

Two inputs, generated once: a credit-like CSV of ``--csv-mb`` MB (8 columns) and a folder of
``--files`` small files (1 to 8 KiB of random bytes, 20 sub-folders). Each round, each tool
adds each input in a fresh project (``shipyard init`` / ``dvc init --no-scm``) as a user runs
it: a new process per command, start-up included, rounds alternating which tool goes first.
Both commit the bytes to their own store: DVC hashes (MD5) and copies into .dvc/cache;
shipyard hashes (BLAKE3) and copies into its artifact store, and for the CSV also parses it,
writes Parquet, profiles every column and validates it (``--contract`` adds a contract).
Printed per tool: median wall time [min–max over rounds], files/s or MB/s, CPU time (user +
system) and peak memory; the ratio is taken round by round (the same round, the same load).
The shipyard time without process start-up (``project.datasets.add`` in a process that has
imported shipyard) is printed too.

Targets: the folder at least 2x DVC's files/s; the CSV at least as fast as DVC.

Each round also times two floors for the CSV, as new processes: polars only parsing it, and
polars parsing it and writing Parquet with shipyard's codec (no hashing, profiling, validation
or registry). Where DVC's ``dvc add`` takes less than the second, no tool that converts the
file to Parquet in Python can match it on this machine.

DVC is never a shipyard dependency: it is installed in bench/.work/dvc-venv (the environment
bench/pipelines.py makes) and run from there.

    python bench/datasets.py                          # ~300 MB CSV, 10,000 files, 3 rounds
    python bench/datasets.py --csv-mb 50 --files 2000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _venv import workspace
from pipelines import dvc_venv, prepare_dvc

TARGETS = "folder >= 2x dvc add's files/s; CSV >= dvc add's MB/s (parsed, Parquet, profiled)"
CONTRACT = {
    "columns": {
        "id": {"type": "int", "unique": True, "nullable": False},
        "age": {"type": "int", "min": 18, "max": 120},
        "income": {"type": "float", "min": 0},
        "city": {
            "type": "string",
            "allowed": ["amsterdam", "berlin", "lisbon", "madrid", "oslo", "paris", "rome"],
        },
        "label": {"type": "int", "allowed": [0, 1]},
    }
}


def make_csv(path: Path, size_mb: int) -> int:
    """Write a credit-like CSV of about ``size_mb`` MB; returns its size in bytes."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    target = size_mb * 1_000_000
    cities = np.array(["amsterdam", "berlin", "lisbon", "madrid", "oslo", "paris", "rome"])
    start = 0
    with open(path, "wb") as f:
        first = True
        while f.tell() < target:
            n = min(500_000, max(1_000, (target - f.tell()) // 40))
            frame = pl.DataFrame(
                {
                    "id": np.arange(start, start + n),
                    "age": rng.integers(18, 90, n),
                    "income": rng.lognormal(10.8, 0.5, n).round(2),
                    "score": rng.normal(680, 70, n).round(1),
                    "city": cities[rng.integers(0, len(cities), n)],
                    "ratio": rng.random(n).round(6),
                    "accounts": rng.poisson(4, n),
                    "label": rng.integers(0, 2, n),
                }
            )
            frame.write_csv(f, include_header=first)
            first = False
            start += n
    return path.stat().st_size


def make_files(root: Path, count: int) -> int:
    """Write ``count`` files of 1 to 8 KiB of random bytes in 20 sub-folders; their bytes."""
    import numpy as np

    rng = np.random.default_rng(1)
    total = 0
    for i in range(count):
        folder = root / f"part{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.bytes(int(rng.integers(1024, 8192)))
        (folder / f"file{i:06d}.bin").write_bytes(data)
        total += len(data)
    return total


def timed(command: list[str], cwd: Path) -> tuple[dict[str, float], str]:
    """Wall-clock seconds, CPU seconds (user + system) and peak memory (MiB) of a command,
    and what it printed."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{out[-2000:]}{err[-2000:]}")
    # A child's peak starts at this process's size when it is forked: below that it is unknown.
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024,
        "peak_floor": floor,
    }
    return figures, out


_IN_PROCESS = r"""
import json, sys, time
import shipyard
with shipyard.open_project(sys.argv[1]) as project:
    started = time.perf_counter()
    project.datasets.add("bench", sys.argv[2], contract=sys.argv[3] or None)
    print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def shipyard_add(work: Path, data: Path, contract: bool, in_process: bool) -> dict[str, float]:
    """``shipyard data add bench DATA`` in a fresh project (and, with ``in_process``, the
    same add timed inside a process that has imported shipyard, in another fresh project)."""
    import shipyard

    out: dict[str, float] = {}
    for mode in ("cli", "in-process") if in_process else ("cli",):
        project = work / f"shipyard-{mode}"
        with shipyard.init_project(project) as p:
            if contract:
                p.contracts.add("bench", CONTRACT)
        name = "bench@1" if contract else ""
        if mode == "cli":
            command = [sys.executable, "-m", "shipyard", "data", "add", "bench", str(data)]
            figures, _ = timed(command + (["--contract", name] if contract else []), project)
            out.update(figures)
        else:
            _, printed = timed(
                [sys.executable, "-c", _IN_PROCESS, str(project), str(data), name], work
            )
            out["in_process"] = json.loads(printed.strip().splitlines()[-1])["seconds"]
        shutil.rmtree(project)
    return out


def dvc_add(dvc: Path, work: Path, data: Path, expect_files: int | None) -> dict[str, float]:
    """``dvc add DATA`` in a fresh DVC project (no Git): the input is moved into the project
    for the command (a rename, the bytes stay where they are) and back afterwards."""
    repo = work / "dvc"
    repo.mkdir()
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=repo, check=True)
    inside = repo / data.name
    os.rename(data, inside)
    try:
        figures, _ = timed([str(dvc), "add", "-q", data.name], repo)
    finally:
        os.rename(inside, data)
    recorded = (repo / f"{data.name}.dvc").read_text()
    if expect_files is not None and f"nfiles: {expect_files}" not in recorded:
        sys.exit(f"dvc add recorded something unexpected:\n{recorded}")
    shutil.rmtree(repo)
    return figures


#: The least any tool can do to turn the CSV into Parquet in Python: polars (which shipyard
#: uses, parsing on every core) reading it and writing it with shipyard's codec, nothing else:
#: no hashing, profiling, validation or registry. Parse only, and parse + write.
_FLOORS = {
    "parse": "import polars as pl, sys; pl.read_csv(sys.argv[1])",
    "parse + write": (
        "import polars as pl, sys; "
        "pl.read_csv(sys.argv[1]).write_parquet("
        "sys.argv[2], compression=sys.argv[3], compression_level=int(sys.argv[4]))"
    ),
}


def floors(work: Path, data: Path) -> dict[str, float]:
    """Wall seconds of each of :data:`_FLOORS` on ``data``, as a new process."""
    from shipyard.data.ingest import PARQUET_COMPRESSION, PARQUET_COMPRESSION_LEVEL

    out = work / "floor.parquet"
    codec = [PARQUET_COMPRESSION, str(PARQUET_COMPRESSION_LEVEL)]
    found = {}
    for label, code in _FLOORS.items():
        figures, _ = timed([sys.executable, "-c", code, str(data), str(out), *codec], work)
        found[label] = figures["seconds"]
        out.unlink(missing_ok=True)
    return found


def spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"[{min(values):.{digits}f}–{max(values):.{digits}f}]"
    )


def report(label: str, amount: float, unit: str, runs: dict[str, list[dict[str, float]]]) -> None:
    sy, dv = runs["shipyard"], runs["dvc"]
    ratios = [d["seconds"] / s["seconds"] for s, d in zip(sy, dv, strict=True)]
    cpu = [d["cpu"] / s["cpu"] for s, d in zip(sy, dv, strict=True)]
    for tool, rows in (("shipyard data add", sy), ("dvc add", dv)):
        seconds = [r["seconds"] for r in rows]
        rates = [amount / s for s in seconds]
        peak = max(r["peak_mib"] for r in rows)
        floor = max(r["peak_floor"] for r in rows)
        memory = f"{peak:,.0f} MiB" if peak > floor + 1 else f"<= {floor:,.0f} MiB"
        print(
            f"  {tool:18} {spread(seconds)}  {statistics.median(rates):,.0f} {unit}/s "
            f"[{min(rates):,.0f}–{max(rates):,.0f}]  cpu {spread([r['cpu'] for r in rows])}  "
            f"peak {memory}"
        )
    inner = [r["in_process"] for r in sy if "in_process" in r]
    if inner:
        rates = [amount / s for s in inner]
        print(
            f"  {'  in process':18} {spread(inner)}  {statistics.median(rates):,.0f} {unit}/s "
            "(project.datasets.add, no start-up)"
        )
    print(
        f"  {label}: shipyard {statistics.median(ratios):.2f}x dvc's speed (rounds "
        f"{min(ratios):.2f}–{max(ratios):.2f}x); cpu {statistics.median(cpu):.2f}x "
        "(dvc cpu / shipyard cpu)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv-mb", type=int, default=300, help="size of the CSV in MB")
    ap.add_argument("--files", type=int, default=10_000, help="files in the folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--contract", action="store_true", help="validate the CSV against one")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="also time shipyard's add inside a warm process (one more add per round)",
    )
    args = ap.parse_args()
    dvc = prepare_dvc(dvc_venv())
    os.environ["SHIPYARD_USER"] = "bench"
    started = time.perf_counter()
    with workspace("shipyard-bench-datasets-") as work:
        csv, folder = work / "table.csv", work / "files"
        csv_mb = make_csv(csv, args.csv_mb) / 1e6
        folder_mb = make_files(folder, args.files) / 1e6
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPU(s), load average "
            f"{os.getloadavg()[0]:.1f}; CSV {csv_mb:,.0f} MB; folder {args.files:,} files "
            f"({folder_mb:,.0f} MB); {args.rounds} rounds",
            flush=True,
        )
        table: dict[str, list[dict[str, float]]] = {"shipyard": [], "dvc": []}
        files: dict[str, list[dict[str, float]]] = {"shipyard": [], "dvc": []}
        bare: list[dict[str, float]] = []
        for r in range(args.rounds):
            order = ["shipyard", "dvc"] if r % 2 == 0 else ["dvc", "shipyard"]
            for tool in order:
                for data, runs, nfiles in ((csv, table, None), (folder, files, args.files)):
                    round_dir = work / f"round-{tool}"
                    round_dir.mkdir()
                    if tool == "shipyard":
                        is_csv = data == csv
                        result = shipyard_add(
                            round_dir, data, args.contract and is_csv, args.in_process
                        )
                    else:
                        result = dvc_add(dvc, round_dir, data, nfiles)
                    runs[tool].append(result)
                    shutil.rmtree(round_dir)
            bare.append(floors(work, csv))
            print(
                f"[round {r + 1}] csv: shipyard {table['shipyard'][-1]['seconds']:.2f} s, dvc "
                f"{table['dvc'][-1]['seconds']:.2f} s; folder: shipyard "
                f"{files['shipyard'][-1]['seconds']:.2f} s, dvc {files['dvc'][-1]['seconds']:.2f}"
                f" s (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    print(f"\nTargets: {TARGETS}.")
    what = "parse + Parquet + profile" + (" + contract" if args.contract else "")
    print(f"CSV, {csv_mb:,.0f} MB ({what} for shipyard):")
    report("CSV", csv_mb, "MB", table)
    for label in _FLOORS:
        seconds = [b[label] for b in bare]
        ratios = [d["seconds"] / b[label] for b, d in zip(bare, table["dvc"], strict=True)]
        print(
            f"  floor: polars {label:13} {spread(seconds)}  (no hashing, profile or registry; "
            f"dvc add takes {statistics.median(ratios):.2f}x this, rounds "
            f"{min(ratios):.2f}–{max(ratios):.2f}x)"
        )
    print(f"folder, {args.files:,} files, {folder_mb:,.0f} MB:")
    report("folder", args.files, "files", files)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
