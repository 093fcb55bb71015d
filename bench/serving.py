"""Benchmark: `shipyard serve` against a bare FastAPI endpoint that returns a constant.

Run with ``python bench/serving.py`` (``--seconds`` per measurement, default 5; ``--repeat``
rounds, default 3). It builds a temporary project like the serving tests' fixture
(tests/serving/test_app.py, with 5,000 applicants) and stores the deployment
``credit-risk`` (production takes all traffic), then starts, on free loopback ports,
``shipyard serve credit-risk`` and a bare FastAPI app (it reads the body and answers a
constant), both on uvicorn with ``--loop uvloop --http httptools``, the fastest bare stack
(shipyard's ``uvicorn[standard]`` dependency gives ``shipyard serve`` both). A bounded load
generator (N concurrent workers, each with one keep-alive connection, sending for a fixed
time after a warm-up) drives them at concurrency 1, 8 and 64, with single-row requests and
100-row batches (the bare endpoint gets the same bodies). Both servers run throughout, and
each setting measures one right after the other, so that the machine's speed drifting during
the run touches both.

The load generator writes prepared request bytes on raw asyncio streams and reads only the
status line, headers and body length: an HTTP client library spends more CPU per request
than the servers measured, and here it shares the machine with them.

It prints requests/s, rows/s and p50/p99 latency for each setting (medians over the rounds,
with the spread: lowest and highest round), how many rows the prediction log dropped (the
figures count only if it kept up), then the two targets: shipyard's single-row
throughput at concurrency 8 at least 70% of the bare endpoint's (the median of the per-round
ratios), and its p99 at concurrency 8 at most 5 ms. Servers and temporary folders are
removed on exit. Never a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 64)
BATCHES = (1, 100)
WARMUP_SECONDS = 1.0
MAX_REQUESTS = 200_000  # per measurement, whatever the duration
TARGET_RATIO = 0.70
TARGET_P99_MS = 5.0
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


uvicorn.run(
    app,
    host="127.0.0.1",
    port=int(sys.argv[1]),
    log_level="warning",
    loop="uvloop",
    http="httptools",
)
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
    log_dropped: float = 0.0  # prediction-log rows shipyard dropped during the measurement

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
        stop_group(proc.pid)


def stop_group(pgid: int) -> None:
    """Stop what a server left in its process group when it exited (``mlflow server`` runs
    uvicorn as a child and does not stop it): SIGTERM, then SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.1)
            os.killpg(pgid, 0)  # ProcessLookupError once the group is empty
        os.killpg(pgid, signal.SIGKILL)


# -- load ---------------------------------------------------------------------------------------


async def drive(
    url: str, body: bytes, concurrency: int, seconds: float, path: str = "/predict"
) -> tuple[list[float], int, float]:
    """``concurrency`` workers, each with its own keep-alive connection, post ``body`` back
    to back for a warm-up and then ``seconds``; returns the latencies of the 200 answers
    started after the warm-up, the count of failures, and the measured time.

    The client is raw asyncio streams with the request bytes prepared once: it only reads
    the status line, the headers and ``content-length`` bytes of body. An HTTP client
    library costs several times more CPU per request than the servers measured here, and on
    a small machine the load generator shares the cores with the server."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    measure_from = time.perf_counter() + WARMUP_SECONDS
    measure_until = measure_from + seconds
    finished = measure_from

    async def worker() -> None:
        nonlocal errors, finished
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while len(latencies) + errors < MAX_REQUESTS:
                start = time.perf_counter()
                if start >= measure_until:
                    return
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                ok = head.startswith(b"HTTP/1.1 200")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                end = time.perf_counter()
                if start < measure_from:
                    continue
                finished = max(finished, end)
                if ok:
                    latencies.append(end - start)
                else:
                    errors += 1
        finally:
            writer.close()

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
    """The serving tests' credit project with ``rows`` applicants and the deployment
    credit-risk stored (production=100, set by bob, an approver); returns held-out
    records."""
    sys.path.insert(0, str(REPO))
    from tests.serving.test_app import MODEL, build_credit_project

    import shipyard

    records = build_credit_project(root, rows=rows).records
    with shipyard.open_project(root, actor="bob") as project:
        project.deployments.set(MODEL, {"production": 100}, comment="benchmark")
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of a measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every setting")
    parser.add_argument("--rows", type=int, default=5000, help="applicants in the project")
    parser.add_argument(
        "--only", choices=("shipyard", "bare"), help="measure one server (no target check)"
    )
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
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPU(s); "
            f"{args.seconds:g} s per measurement after {WARMUP_SECONDS:g} s warm-up, "
            f"{args.repeat} round(s); load generator in this process; both servers on "
            "uvicorn --loop uvloop --http httptools"
        )
        shipyard_port, bare_port = free_port(), free_port()
        shipyard_cmd = [sys.executable, "-m", "shipyard", "--project", str(workdir / "proj")]
        shipyard_cmd += ["serve", "credit-risk", "--port", str(shipyard_port)]
        bare_cmd = [sys.executable, "-c", BARE_APP, str(bare_port)]
        names = [n for n in ("shipyard", "bare") if args.only in (None, n)]
        with ExitStack() as stack:
            urls = {}
            if "shipyard" in names:
                log = workdir / "shipyard.log"
                urls["shipyard"] = stack.enter_context(
                    server(shipyard_cmd, shipyard_port, "/v2/health/ready", log)
                )
            if "bare" in names:
                log = workdir / "bare.log"
                urls["bare"] = stack.enter_context(
                    server(bare_cmd, bare_port, "/openapi.json", log)
                )
            # Both servers run throughout; each setting measures one and then the other, so
            # that a change in the machine's speed during the run touches both alike.
            rounds: list[list[Figures]] = []
            for r in range(args.repeat):
                figures_of_round = []
                for rows in BATCHES:
                    for concurrency in CONCURRENCY:
                        order = names if r % 2 == 0 else names[::-1]
                        for name in order:
                            before = log_figures(urls[name])[1] if name == "shipyard" else 0.0
                            f = measure(
                                name, urls[name], bodies[rows], rows, concurrency, args.seconds
                            )
                            if name == "shipyard":
                                dropped = log_figures(urls[name])[1] - before
                                f = dataclasses.replace(f, log_dropped=dropped)
                            figures_of_round.append(f)
                            print(
                                f"  round {r + 1}  {name:<9} rows {rows:>3}  "
                                f"concurrency {concurrency:>2}: {f.rps:8.1f} req/s  "
                                f"p99 {f.p99_ms:6.2f} ms"
                                + (f"  log drops {f.log_dropped:,.0f}" if f.log_dropped else ""),
                                flush=True,
                            )
                rounds.append(figures_of_round)
            if "shipyard" in urls:
                logged = log_figures(urls["shipyard"])
        report(rounds, check=not args.only)
        if "shipyard" in urls:
            print(
                f"shipyard's prediction log: {logged[0]:,.0f} rows predicted, "
                f"{logged[1]:,.0f} dropped (its buffer full or its writer behind; by setting "
                "in the table's last column)"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def log_figures(url: str) -> tuple[float, float]:
    """Rows the server predicted and prediction-log rows it dropped, from its /metrics: the
    figures hold only if the log kept up."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    totals = dict.fromkeys(
        ("shipyard_predictions_total", "shipyard_prediction_log_dropped_total"), 0.0
    )
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["shipyard_predictions_total"], totals["shipyard_prediction_log_dropped_total"]


def median_figures(runs: list[Figures]) -> Figures:
    """One row for a setting measured in several rounds: the medians."""
    first = runs[0]
    return Figures(
        first.target,
        first.rows,
        first.concurrency,
        int(statistics.median(f.requests for f in runs)),
        sum(f.errors for f in runs),
        statistics.median(f.seconds for f in runs),
        statistics.median(f.p50_ms for f in runs),
        statistics.median(f.p99_ms for f in runs),
        sum(f.log_dropped for f in runs),
    )


def report(rounds: list[list[Figures]], *, check: bool = True) -> None:
    by_setting: dict[tuple[str, int, int], list[Figures]] = {}
    for figures_of_round in rounds:
        for f in figures_of_round:
            by_setting.setdefault((f.target, f.rows, f.concurrency), []).append(f)
    settings = sorted(by_setting, key=lambda k: (k[0] != "shipyard", k[1], k[2]))
    print()
    print(f"medians over {len(rounds)} round(s), with the lowest and highest round")
    header = (
        f"{'target':<9} {'rows/req':>8} {'conc':>5} {'requests/s':>11} {'(low-high)':>17} "
        f"{'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'(low-high)':>13} {'errors':>7} "
        f"{'log drops':>10}"
    )
    print(header)
    print("-" * len(header))
    for key in settings:
        runs = by_setting[key]
        f = median_figures(runs)
        rps = [r.rps for r in runs]
        p99 = [r.p99_ms for r in runs]
        print(
            f"{f.target:<9} {f.rows:>8} {f.concurrency:>5} {f.rps:>11.1f} "
            f"{f'({min(rps):.0f}-{max(rps):.0f})':>17} "
            f"{f.rows_per_second:>10.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} "
            f"{f'({min(p99):.2f}-{max(p99):.2f})':>13} {f.errors:>7} "
            f"{f'{f.log_dropped:,.0f}' if f.target == 'shipyard' else '':>10}"
        )
    if not check:
        return
    ratios = []
    for figures_of_round in rounds:
        pair = {f.target: f for f in figures_of_round if f.rows == 1 and f.concurrency == 8}
        ratios.append(pair["shipyard"].rps / pair["bare"].rps)
    ratio = statistics.median(ratios)
    ours = median_figures(by_setting[("shipyard", 1, 8)])
    print()
    print(
        f"shipyard single-row throughput at concurrency 8 / bare endpoint: {ratio:.1%} "
        f"(median of rounds: {', '.join(f'{r:.1%}' for r in ratios)}; "
        f"target >= {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"
    )
    rounds_p99 = ", ".join(f"{f.p99_ms:.2f}" for f in by_setting[("shipyard", 1, 8)])
    print(
        f"shipyard single-row p99 at concurrency 8: {ours.p99_ms:.2f} ms (median of rounds: "
        f"{rounds_p99}; target <= {TARGET_P99_MS:g} ms: "
        f"{'met' if ours.p99_ms <= TARGET_P99_MS else 'MISSED'})"
    )


if __name__ == "__main__":
    sys.exit(main())
