"""Benchmark: the ``mlflow`` client against ``shipyard server`` and against ``mlflow server``,
side by side in one run, both on SQLite.

Two measurements, each in ``--rounds`` rounds that take the two servers in alternating order
(so that the machine's speed drifting touches both), with the ratio computed per round and
reported as its median and spread (lowest and highest round):

1. **log_batch**: ``MlflowClient().log_batch`` sends ``--points`` metric points (100,000) to a
   new run in batches of 1,000 metrics (MLflow's limit per request): 10 metric keys by 100 steps
   a batch. Figure: points/s over the whole loop; target: shipyard at least 3x mlflow. After
   the loop (not timed) ``get_metric_history`` must give every point back on both sides.
2. **search_runs**: ``MlflowClient().search_runs`` over an experiment of ``--runs`` runs
   (10,000) with ``metrics.auc > 0.9`` (about a tenth of the runs), ordered by
   ``metrics.auc DESC``, with ``max_results`` 100 and 1,000. Figure: the median time of a call
   over ``--calls`` calls after one warm-up call; target: shipyard at least 5x faster. Both
   sides must answer the same runs in the same order.

The servers: ``shipyard --project DIR server --host 127.0.0.1 --port P`` (one worker) over a
fresh project (``shipyard init``, then ``shipyard users token create --json`` for the client's
``MLFLOW_TRACKING_TOKEN``), and ``mlflow server --backend-store-uri sqlite:///... \
--default-artifact-root DIR --host 127.0.0.1 --port Q --workers 1`` with telemetry and its job
executor off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: otherwise it starts huey
consumer processes that share the two cores). Both run throughout; the client sends the same
token to both (mlflow server ignores it).

The 10,000 runs are the same on both sides (one seeded generator: 4 metrics, 3 params and a
tag per run; the metric series has one point per metric) and are written before the servers
start, not timed, by bulk inserts: on mlflow's side through its own ``SqlAlchemyStore`` (which
creates the schema and the experiment) and its table models, on shipyard's through its Python
API (``open_project``; the experiment is created by a run that is then deleted) and its table
definitions, in one transaction each. Neither writes an audit event or a tag the clients would
add (``mlflow.user``, ``mlflow.source.*``).

    .venv/bin/python bench/server.py           # about 11 minutes after the first setup
    .venv/bin/python bench/server.py --quick   # 10,000 points, 1,000 runs, 2 rounds

The full ``mlflow`` (with its server) is never a shipyard dependency: the script makes its own
virtual environment in bench/.work/mlflow-venv (``mlflow==3.18.0`` and httpx, made again when
that list changes) and re-runs itself inside it, where the client runs; shipyard's server and
the populating of its project run with the Python that started the script (its ``shipyard``
command beside it; else the checkout's .venv). Servers and temporary folders are removed on
exit. Never a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from _venv import REPO, BenchVenv, digest, workspace

MLFLOW_VERSION = "3.18.0"
#: Installed beside mlflow: httpx for bench/serving.py's server helper (bump to re-evaluate).
EXTRA_REQUIREMENTS = ("httpx",)
#: Set inside the benchmark's venv: the Python that started the script (shipyard's).
LAUNCHER = "SHIPYARD_BENCH_SERVER_PYTHON"
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    # A failed request fails the measurement at once instead of being retried for minutes.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}

BATCH = 1_000  # MLflow's limit of metrics per log_batch request
KEYS = 10  # metric keys per batch; BATCH // KEYS steps per batch
SEARCH_EXPERIMENT = "search-bench"
SEARCH_FILTER = "metrics.auc > 0.9"
SEARCH_ORDER = "metrics.auc DESC"
SEARCH_LIMITS = (100, 1_000)
TARGETS = {"log_batch": 3.0, "search": 5.0}
SERVER_START_TIMEOUT = 180.0


# -- its own environment ------------------------------------------------------------------------


def mlflow_venv() -> BenchVenv:
    return BenchVenv("mlflow-venv", digest(f"mlflow=={MLFLOW_VERSION}", *EXTRA_REQUIREMENTS))


def enter_mlflow_venv(venv: BenchVenv, script: str = __file__) -> NoReturn:
    """Make bench/.work/mlflow-venv if it is missing or stale, then re-run ``script`` (this
    one by default) in it."""
    prepare_mlflow_venv(venv)
    env = {**os.environ, **MLFLOW_ENV, LAUNCHER: sys.executable}
    venv.exec(Path(script).resolve(), sys.argv[1:], env)


def prepare_mlflow_venv(venv: BenchVenv) -> None:
    """Make bench/.work/mlflow-venv if it is missing or stale."""
    if not venv.ready():
        venv.create()
        wanted = f"mlflow=={MLFLOW_VERSION}"
        if not venv.pip(
            f"installing {wanted}, " + ", ".join(EXTRA_REQUIREMENTS),
            wanted,
            *EXTRA_REQUIREMENTS,
            check=False,
        ):
            # mlflow 3.18.0 pins mlflow-tracing==3.18.0, which not every package index serves
            # (this project's did not). The full mlflow wheel carries every module of
            # mlflow-tracing (and of mlflow-skinny) itself, so install it without its pins and
            # then the rest of what it requires.
            venv.pip(
                f"installing {wanted} and mlflow-skinny=={MLFLOW_VERSION} without dependencies",
                *("--no-deps", wanted, f"mlflow-skinny=={MLFLOW_VERSION}"),
            )
            venv.pip(
                "installing their other requirements",
                *requirements_of_mlflow(venv),
                *EXTRA_REQUIREMENTS,
            )
        venv.mark_ready()


def requirements_of_mlflow(venv: BenchVenv) -> list[str]:
    """What mlflow and mlflow-skinny, installed in ``venv``, require (markers kept for pip to
    judge), other than extras and each other and mlflow-tracing."""
    code = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps([r for d in ('mlflow', 'mlflow-skinny') for r in m.requires(d) or []]))"
    )
    found = json.loads(
        subprocess.run(
            [str(venv.python), "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    out = []
    for req in found:
        name = req.split(";")[0].strip()
        for stop in " <>=!~[(":
            name = name.split(stop)[0]
        if "extra ==" in req or name.lower() in {"mlflow", "mlflow-skinny", "mlflow-tracing"}:
            continue
        out.append(req)
    return sorted(set(out))


def shipyard_bin() -> Path:
    """The folder of the Python that started the script, if it has ``shipyard``, else the
    checkout's .venv/bin."""
    launcher = Path(os.environ.get(LAUNCHER, sys.executable)).parent
    return launcher if (launcher / "shipyard").exists() else REPO / ".venv" / "bin"


# -- the runs to search, the same on both sides -------------------------------------------------


def synthetic_runs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` finished runs: metrics auc, accuracy, f1, loss (one point each, step 10), params
    model, lr, depth, and a team tag."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = 1_700_000_000_000 + i * 60_000
        out.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "name": f"run-{i:05d}",
                "start": start,
                "end": start + 30_000,
                "metrics": {k: rng.random() for k in ("auc", "accuracy", "f1", "loss")},
                "params": {
                    "model": rng.choice(("gbm", "rf", "lr")),
                    "lr": f"{rng.uniform(0.001, 0.3):.4f}",
                    "depth": str(rng.randint(2, 12)),
                },
                "tags": {"team": rng.choice(("risk", "growth", "core", "ops"))},
            }
        )
    return out


def populate_shipyard(project_dir: str, n: int) -> None:
    """Write the synthetic runs into the project (runs in shipyard's Python)."""
    import shipyard
    from shipyard.stores.db.tables import (
        run_latest_metrics,
        run_metrics,
        run_params,
        run_tags,
        runs,
    )

    project = shipyard.open_project(project_dir)
    with project.start_run(SEARCH_EXPERIMENT, name="creates-the-experiment") as seed:
        pass
    project.runs.delete(seed.id)
    (exp_id,) = [e.id for e in project.runs.experiments() if e.name == SEARCH_EXPERIMENT]
    run_rows, metric_rows, param_rows, tag_rows = [], [], [], []
    for r in synthetic_runs(n):
        run_rows.append(
            {
                "id": r["id"],
                "experiment_id": exp_id,
                "name": r["name"],
                "status": "FINISHED",
                "lifecycle": "active",
                "start_time": r["start"],
                "end_time": r["end"],
                "created_by": project.actor,
                "code": {},
                "environment": {},
            }
        )
        for key, value in r["metrics"].items():
            metric_rows.append(
                {"run_id": r["id"], "key": key, "step": 10, "timestamp": r["end"], "value": value}
            )
        param_rows += [{"run_id": r["id"], "key": k, "value": v} for k, v in r["params"].items()]
        tag_rows += [{"run_id": r["id"], "key": k, "value": v} for k, v in r["tags"].items()]
    latest_rows = [{**m, "min_value": m["value"], "max_value": m["value"]} for m in metric_rows]
    with project.db.write() as conn:
        conn.execute(runs.insert(), run_rows)
        conn.execute(run_metrics.insert(), metric_rows)
        conn.execute(run_latest_metrics.insert(), latest_rows)
        conn.execute(run_params.insert(), param_rows)
        conn.execute(run_tags.insert(), tag_rows)
    project.close()


def populate_mlflow(db_uri: str, artifact_root: str, n: int) -> None:
    """Create mlflow's schema and write the synthetic runs (runs in the benchmark's venv)."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, artifact_root)
    exp_id = store.create_experiment(SEARCH_EXPERIMENT)
    location = store.get_experiment(exp_id).artifact_location
    run_rows, metric_rows, param_rows, tag_rows = [], [], [], []
    for r in synthetic_runs(n):
        run_rows.append(
            {
                "run_uuid": r["id"],
                "name": r["name"],
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": r["start"],
                "end_time": r["end"],
                "deleted_time": None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"{location}/{r['id']}/artifacts",
                "experiment_id": int(exp_id),
            }
        )
        for key, value in r["metrics"].items():
            metric_rows.append(
                {
                    "run_uuid": r["id"],
                    "key": key,
                    "value": value,
                    "timestamp": r["end"],
                    "step": 10,
                    "is_nan": False,
                }
            )
        param_rows += [{"run_uuid": r["id"], "key": k, "value": v} for k, v in r["params"].items()]
        tags = {"mlflow.runName": r["name"], **r["tags"]}
        tag_rows += [{"run_uuid": r["id"], "key": k, "value": v} for k, v in tags.items()]
    with store.engine.begin() as conn:
        conn.execute(SqlRun.__table__.insert(), run_rows)
        conn.execute(SqlMetric.__table__.insert(), metric_rows)
        conn.execute(SqlLatestMetric.__table__.insert(), metric_rows)
        conn.execute(SqlParam.__table__.insert(), param_rows)
        conn.execute(SqlTag.__table__.insert(), tag_rows)
    store.engine.dispose()


# -- the servers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measurement: wall time, and the CPU time the server (every process it started) and
    the client spent meanwhile, in seconds (per call for searches)."""

    wall: float
    server_cpu: float
    client_cpu: float


@dataclass
class Side:
    """One server under test, its client and what was measured on it."""

    name: str
    url: str
    client: Any
    session: int | None  # the server's session id, for its CPU time
    populated: str = ""
    log_batch: list[Sample] = field(default_factory=list)
    search: dict[int, list[Sample]] = field(default_factory=dict)
    answers: dict[int, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def server_cpu(self) -> float:
        return session_cpu(self.session) if self.session is not None else math.nan


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the fields after "(comm)": state, ppid, pgrp, session, ..., utime (12), stime (13)
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def server_session(port: int) -> int | None:
    """The session id of the server started with ``--port PORT`` (its processes are started
    in a session of their own), or None where /proc cannot tell."""
    wanted = f"--port\0{port}\0".encode()
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if wanted not in f.read():
                    continue
        except OSError:
            continue
        fields = _stat(pid)
        if fields:
            return int(fields[3])
    return None


def session_cpu(session: int) -> float:
    """User and system CPU seconds of the live processes of ``session``."""
    ticks = 0
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        fields = _stat(pid)
        if fields and int(fields[3]) == session:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def prepare_shipyard(workdir: Path, n_runs: int) -> tuple[list[str], str, str]:
    """A fresh project with the synthetic runs; the server's command, a token and how the
    runs were written."""
    bin_dir = shipyard_bin()
    shipyard = str(bin_dir / "shipyard")
    project = workdir / "shipyard-project"
    env = {**os.environ, "SHIPYARD_USER": "bench"}  # the project's admin
    subprocess.run([shipyard, "init", str(project)], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [shipyard, "--project", str(project), "users", "token", "create", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = str(json.loads(made.stdout)["token"])
    started = time.perf_counter()
    subprocess.run(
        [str(bin_dir / "python"), __file__, "populate-shipyard", str(project), str(n_runs)],
        env=env,
        check=True,
    )
    how = (
        f"{n_runs:,} runs in {time.perf_counter() - started:.1f} s, bulk insert through "
        "open_project() and shipyard's table definitions (one transaction)"
    )
    command = [shipyard, "--project", str(project), "server", "--host", "127.0.0.1"]
    return command, token, how


def prepare_mlflow(workdir: Path, n_runs: int) -> tuple[list[str], str]:
    """mlflow's SQLite database with the synthetic runs; the server's command (less the port)
    and how the runs were written."""
    db_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    artifacts = workdir / "mlflow-artifacts"
    artifacts.mkdir()
    started = time.perf_counter()
    populate_mlflow(db_uri, str(artifacts), n_runs)
    how = (
        f"{n_runs:,} runs in {time.perf_counter() - started:.1f} s, bulk insert through "
        "mlflow's SqlAlchemyStore (schema, experiment) and its table models (one transaction)"
    )
    command = [str(Path(sys.executable).parent / "mlflow"), "server"]
    command += ["--backend-store-uri", db_uri, "--default-artifact-root", str(artifacts)]
    command += ["--host", "127.0.0.1", "--workers", "1"]
    return command, how


# -- the measurements -----------------------------------------------------------------------------


def batches(points: int) -> list[list[Any]]:
    """The metric points, ``BATCH`` a request: KEYS keys by BATCH // KEYS steps."""
    from mlflow.entities import Metric

    steps_per_batch = BATCH // KEYS
    stamp = int(time.time() * 1000)
    return [
        [
            Metric(key=f"m{k}", value=step * 0.001 + k, timestamp=stamp + step, step=step)
            for step in range(b * steps_per_batch, (b + 1) * steps_per_batch)
            for k in range(KEYS)
        ]
        for b in range(points // BATCH)
    ]


def log_batch_round(side: Side, experiment_id: str, prepared: list[list[Any]], r: int) -> None:
    """One timed loop of log_batch calls into a new run; then every point read back."""
    client = side.client
    run_id = client.create_run(experiment_id, run_name=f"log-batch-{r + 1}").info.run_id
    server, mine, started = side.server_cpu(), time.process_time(), time.perf_counter()
    for metrics in prepared:
        client.log_batch(run_id, metrics=metrics)
    sample = Sample(
        time.perf_counter() - started, side.server_cpu() - server, time.process_time() - mine
    )
    client.set_terminated(run_id)
    expected = len(prepared) * BATCH // KEYS
    got = len(client.get_metric_history(run_id, "m0"))
    if got != expected:
        raise RuntimeError(f"get_metric_history gave {got} points of m0, {expected} were logged")
    side.log_batch.append(sample)


def search_round(side: Side, experiment_id: str, limit: int, calls: int) -> None:
    """One warm-up call, then ``calls`` timed calls: the median call, the mean CPU times."""
    client = side.client

    def call() -> list[Any]:
        return list(
            client.search_runs(
                [experiment_id],
                filter_string=SEARCH_FILTER,
                order_by=[SEARCH_ORDER],
                max_results=limit,
            )
        )

    side.answers[limit] = [run.info.run_name for run in call()]
    timings = []
    server, mine = side.server_cpu(), time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    server, mine = side.server_cpu() - server, time.process_time() - mine
    sample = Sample(statistics.median(timings), server / calls, mine / calls)
    side.search.setdefault(limit, []).append(sample)


def attempt(side: Side, what: str, fn: Callable[[], None]) -> None:
    """Run one measurement; a failure is reported and the benchmark goes on."""
    try:
        fn()
    except Exception as exc:  # the other side's figures are still worth printing
        message = f"{what}: {type(exc).__name__}: {str(exc)[:300]}"
        side.errors.append(message)
        print(f"    {side.name}: FAILED {message}", flush=True)


def measure(sides: dict[str, Side], args: argparse.Namespace) -> None:
    prepared = batches(args.points)
    experiments = {}
    for side in sides.values():
        try:
            batch_exp = side.client.create_experiment("log-batch-bench")
            search_exp = side.client.get_experiment_by_name(SEARCH_EXPERIMENT).experiment_id
            experiments[side.name] = (batch_exp, search_exp)
        except Exception as exc:
            side.errors.append(f"experiments: {type(exc).__name__}: {str(exc)[:300]}")
            print(f"  {side.name}: FAILED to set up experiments: {side.errors[-1]}", flush=True)
    for r in range(args.rounds):
        order = list(sides.values()) if r % 2 == 0 else list(sides.values())[::-1]
        for side in order:
            if side.name not in experiments:
                continue
            batch_exp, _ = experiments[side.name]
            attempt(side, "log_batch", partial(log_batch_round, side, batch_exp, prepared, r))
            if len(side.log_batch) > r:
                x = side.log_batch[r]
                print(
                    f"  round {r + 1}  log_batch  {side.name:<9} {x.wall:7.2f} s  "
                    f"{args.points / x.wall:10,.0f} points/s  (server CPU {x.server_cpu:.2f} s, "
                    f"client CPU {x.client_cpu:.2f} s)",
                    flush=True,
                )
        for limit in SEARCH_LIMITS:
            for side in order:
                if side.name not in experiments:
                    continue
                _, search_exp = experiments[side.name]
                attempt(
                    side,
                    f"search max_results={limit}",
                    partial(search_round, side, search_exp, limit, args.calls),
                )
                done = side.search.get(limit, [])
                if len(done) > r:
                    x = done[r]
                    print(
                        f"  round {r + 1}  search {limit:>5}  {side.name:<9} "
                        f"{x.wall * 1000:9.1f} ms  (median of {args.calls}, "
                        f"{len(side.answers[limit])} runs; a call: server CPU "
                        f"{x.server_cpu * 1000:.0f} ms, client CPU {x.client_cpu * 1000:.0f} ms)",
                        flush=True,
                    )


# -- report ---------------------------------------------------------------------------------------


def spread(values: list[float], fmt: str) -> str:
    ok = [v for v in values if not math.isnan(v)]
    if not ok:
        return "n/a"
    return f"{statistics.median(ok):{fmt}} [{min(ok):{fmt}}-{max(ok):{fmt}}]"


def verdict(ratios: list[float], target: float) -> str:
    if not ratios:
        return "not measured"
    return "met" if statistics.median(ratios) >= target else "NOT met"


def report(sides: dict[str, Side], args: argparse.Namespace) -> None:
    mlflow, ours = sides["mlflow"], sides["shipyard"]
    rounds = f"{args.rounds} round(s), median [lowest-highest round]"
    print()
    print(
        f"== log_batch: {args.points:,} points a round, {BATCH:,} a request "
        f"({KEYS} keys x {BATCH // KEYS} steps); {rounds} =="
    )
    print(
        f"{'server':<10} {'points/s':>26} {'seconds':>24} {'server CPU s':>24} {'client CPU s':>22}"
    )
    for side in (mlflow, ours):
        xs = side.log_batch
        print(
            f"{side.name:<10} {spread([args.points / x.wall for x in xs], ',.0f'):>26} "
            f"{spread([x.wall for x in xs], '.2f'):>24} "
            f"{spread([x.server_cpu for x in xs], '.2f'):>24} "
            f"{spread([x.client_cpu for x in xs], '.2f'):>22}"
        )
    pairs = list(zip(mlflow.log_batch, ours.log_batch, strict=False))
    walls = [m.wall / s.wall for m, s in pairs]
    cpus = [m.server_cpu / s.server_cpu for m, s in pairs if s.server_cpu > 0]
    print(
        f"shipyard/mlflow points/s, per round: {spread(walls, '.1f')}x "
        f"(target >= {TARGETS['log_batch']:g}x: {verdict(walls, TARGETS['log_batch'])}); "
        f"server CPU per point, mlflow/shipyard: {spread(cpus, '.1f')}x"
    )
    print()
    print(
        f"== search_runs over {args.runs:,} runs: {SEARCH_FILTER}, order by {SEARCH_ORDER}; "
        f"a call: median of {args.calls} per round (ms), CPU: mean per call; {rounds} =="
    )
    print(
        f"{'max_results':>11} {'server':<9} {'ms a call':>26} {'server CPU ms':>24} "
        f"{'client CPU ms':>22}"
    )
    for limit in SEARCH_LIMITS:
        for side in (mlflow, ours):
            xs = side.search.get(limit, [])
            print(
                f"{limit:>11,} {side.name:<9} {spread([x.wall * 1000 for x in xs], ',.1f'):>26} "
                f"{spread([x.server_cpu * 1000 for x in xs], ',.0f'):>24} "
                f"{spread([x.client_cpu * 1000 for x in xs], ',.0f'):>22}"
            )
        pairs = list(zip(mlflow.search.get(limit, []), ours.search.get(limit, []), strict=False))
        walls = [m.wall / s.wall for m, s in pairs]
        cpus = [m.server_cpu / s.server_cpu for m, s in pairs if s.server_cpu > 0]
        same = mlflow.answers.get(limit) and mlflow.answers.get(limit) == ours.answers.get(limit)
        print(
            f"{'':>11} mlflow/shipyard time a call: {spread(walls, '.1f')}x (target >= "
            f"{TARGETS['search']:g}x: {verdict(walls, TARGETS['search'])}); server CPU: "
            f"{spread(cpus, '.1f')}x; same runs in the same order: {'yes' if same else 'NO'}"
        )
    if args.points < 100_000 or args.runs < 10_000:
        print("(the targets are set for 100,000 points and 10,000 runs; these sizes are smaller)")
    print()
    for side in (mlflow, ours):
        print(f"populated {side.name}: {side.populated}")
    for side in (mlflow, ours):
        for error in side.errors:
            print(f"error on {side.name}: {error}")


def versions() -> str:
    from importlib import metadata

    shipyard = subprocess.run(
        [str(shipyard_bin() / "shipyard"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"python {platform.python_version()}, {os.cpu_count()} CPU(s); "
        f"mlflow {metadata.version('mlflow')} (client and server); {shipyard or 'shipyard ?'}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    if sys.argv[1:2] == ["populate-shipyard"]:
        populate_shipyard(sys.argv[2], int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000, help="metric points a round")
    parser.add_argument("--runs", type=int, default=10_000, help="runs to search")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="timed search calls a round")
    parser.add_argument(
        "--quick", action="store_true", help="10,000 points, 1,000 runs, 2 rounds, 3 calls"
    )
    args = parser.parse_args()
    if args.quick:
        args.points, args.runs, args.rounds, args.calls = 10_000, 1_000, 2, 3
    venv = mlflow_venv()
    if not venv.active():
        if os.environ.get(LAUNCHER):
            sys.exit(f"expected to run in {venv.path}, running in {sys.prefix}")
        enter_mlflow_venv(venv)

    from mlflow import MlflowClient

    from serving import free_port, server

    print(versions(), flush=True)
    started = time.perf_counter()
    with workspace("shipyard-bench-server-") as workdir, ExitStack() as stack:
        ship_command, token, ship_how = prepare_shipyard(workdir, args.runs)
        mlflow_command, mlflow_how = prepare_mlflow(workdir, args.runs)
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
        sides = {}
        for name, command, how in (
            ("mlflow", mlflow_command, mlflow_how),
            ("shipyard", ship_command, ship_how),
        ):
            port = free_port()
            log = workdir / f"{name}-server.log"
            url = stack.enter_context(
                server(
                    [*command, "--port", str(port)],
                    port,
                    "/health",
                    log,
                    timeout=SERVER_START_TIMEOUT,
                )
            )
            client = MlflowClient(tracking_uri=url)
            sides[name] = Side(name, url, client, server_session(port), populated=how)
        print(
            f"servers ready; {args.rounds} round(s): log_batch of {args.points:,} points, "
            f"search_runs over {args.runs:,} runs ({args.calls} calls per max_results)",
            flush=True,
        )
        measure(sides, args)
        report(sides, args)
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows both servers; the CPU "
        "times are less sensitive to it than the wall times)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
