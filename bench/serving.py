"""Benchmark: `shipyard serve` against a bare FastAPI endpoint that returns a constant.

Run with ``python bench/serving.py`` (``--seconds`` per measurement, default 5). It builds a
temporary project like the serving tests' fixture (tests/serving/test_app.py, with 5,000
applicants), then starts, on free loopback ports, ``shipyard serve credit-risk@production``
and a bare FastAPI app under the same uvicorn settings (it reads the body and answers a
constant), and drives each with a bounded async load generator (N concurrent workers, each
an httpx.AsyncClient with one keep-alive connection, a fixed duration after a warm-up) at
concurrency 1, 8 and 64, with single-row requests and 100-row batches (the bare endpoint
gets the same bodies).

It prints requests/s, rows/s and p50/p99 latency for each, then the two targets: shipyard's
single-row throughput at concurrency 8 at least 60% of the bare endpoint's, and its p99 at
concurrency 8 at most 10 ms. The load generator runs on the same machine, so on a small box
it competes with the server for CPU. Servers and temporary folders are removed on exit.
Never a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 64)
BATCHES = (1, 100)
WARMUP_SECONDS = 1.0
MAX_REQUESTS = 200_000  # per measurement, whatever the duration
TARGET_RATIO = 0.60
TARGET_P99_MS = 10.0
HEADERS = {"content-type": "application/json"}

BARE_APP = """
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
ANSWER = {"predictions": [0], "model": "constant", "version": 1}


@app.post("/predict")
async def predict(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(ANSWER)


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass(frozen=True)
class Figures:
    target: str
    rows: int
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rps * self.rows


# -- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    command: list[str], port: int, ready_path: str, log: Path, *, timeout: float = 90.0
) -> Iterator[str]:
    """Start ``command`` (listening on 127.0.0.1:``port``) in its own process group; yield
    its base URL once ``GET ready_path`` answers 200; stop it on the way out."""
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "SHIPYARD_USER": "alice"},  # the project's admin
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{command[:4]} exited with {proc.returncode}:\n{log.read_text()}"
                )
            try:
                if httpx.get(base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} not ready after {timeout:.0f} s")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the group started here
                proc.wait(15)


# -- load ---------------------------------------------------------------------------------------


async def drive(
    url: str, body: bytes, concurrency: int, seconds: float
) -> tuple[list[float], int, float]:
    """``concurrency`` workers, each with its own keep-alive connection (one shared pool of
    64 connections slows httpx itself down several times), post ``body`` back to back for
    a warm-up and then ``seconds``; returns the latencies of the 200 answers started after
    the warm-up, the count of failures, and the measured time."""
    latencies: list[float] = []
    errors = 0
    measure_from = time.perf_counter() + WARMUP_SECONDS
    measure_until = measure_from + seconds
    finished = measure_from

    async def worker() -> None:
        nonlocal errors, finished
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            while len(latencies) + errors < MAX_REQUESTS:
                start = time.perf_counter()
                if start >= measure_until:
                    return
                try:
                    response = await client.post("/predict", content=body, headers=HEADERS)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                end = time.perf_counter()
                if start < measure_from:
                    continue
                finished = max(finished, end)
                if ok:
                    latencies.append(end - start)
                else:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, finished - measure_from


def measure(
    target: str, url: str, body: bytes, rows: int, concurrency: int, seconds: float
) -> Figures:
    latencies, errors, elapsed = asyncio.run(drive(url, body, concurrency, seconds))
    p50, p99 = (np.percentile(latencies, [50, 99]) * 1000) if latencies else (float("nan"),) * 2
    return Figures(target, rows, concurrency, len(latencies), errors, elapsed, p50, p99)


# -- main ---------------------------------------------------------------------------------------


def build_project(root: Path, rows: int) -> list[dict[str, object]]:
    """The serving tests' credit project with ``rows`` applicants; returns held-out records."""
    sys.path.insert(0, str(REPO))
    from tests.serving.test_app import build_credit_project

    return build_credit_project(root, rows=rows).records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of a measurement")
    parser.add_argument("--rows", type=int, default=5000, help="applicants in the project")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    try:
        started = time.perf_counter()
        records = build_project(workdir / "proj", args.rows)
        print(
            f"project with {args.rows:,} applicants built in "
            f"{time.perf_counter() - started:.1f} s ({len(records)} held-out records)"
        )
        bodies = {n: json.dumps({"records": records[:n]}).encode() for n in BATCHES}
        env_note = (
            f"python {platform.python_version()}, {os.cpu_count()} CPU(s); "
            f"{args.seconds:g} s per measurement after {WARMUP_SECONDS:g} s warm-up; "
            "load generator in this process"
        )
        print(env_note)
        results: list[Figures] = []
        shipyard_port, bare_port = free_port(), free_port()
        shipyard_cmd = [sys.executable, "-m", "shipyard", "--project", str(workdir / "proj")]
        shipyard_cmd += ["serve", "credit-risk@production", "--port", str(shipyard_port)]
        bare_cmd = [sys.executable, "-c", BARE_APP, str(bare_port)]
        targets = [
            ("shipyard", shipyard_cmd, shipyard_port, "/v2/health/ready"),
            ("bare", bare_cmd, bare_port, "/openapi.json"),
        ]
        for name, command, port, ready_path in targets:
            with server(command, port, ready_path, workdir / f"{name}.log") as url:
                for rows in BATCHES:
                    for concurrency in CONCURRENCY:
                        figures = measure(name, url, bodies[rows], rows, concurrency, args.seconds)
                        results.append(figures)
                        print(
                            f"  {name:<9} rows {rows:>3}  concurrency {concurrency:>2}: "
                            f"{figures.rps:8.1f} req/s",
                            flush=True,
                        )
        report(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(results: list[Figures]) -> None:
    print()
    header = (
        f"{'target':<9} {'rows/req':>8} {'conc':>5} {'requests/s':>11} {'rows/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        print(
            f"{f.target:<9} {f.rows:>8} {f.concurrency:>5} {f.rps:>11.1f} "
            f"{f.rows_per_second:>10.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} {f.errors:>7}"
        )
    by_key = {(f.target, f.rows, f.concurrency): f for f in results}
    ours, bare = by_key[("shipyard", 1, 8)], by_key[("bare", 1, 8)]
    ratio = ours.rps / bare.rps if bare.rps else float("nan")
    print()
    print(
        f"shipyard single-row throughput at concurrency 8 / bare endpoint: {ratio:.1%} "
        f"(target >= {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"
    )
    print(
        f"shipyard single-row p99 at concurrency 8: {ours.p99_ms:.2f} ms "
        f"(target <= {TARGET_P99_MS:g} ms: {'met' if ours.p99_ms <= TARGET_P99_MS else 'MISSED'})"
    )


if __name__ == "__main__":
    sys.exit(main())
