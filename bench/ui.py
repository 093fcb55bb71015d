"""Benchmark: what the runs pages of the web UI read, at 10,000 runs, through the team server's
routes, beside MLflow's UI API over the same runs, in one run.

The store: ``--runs`` runs (10,000) × 20 metrics (``m0`` … ``m19``) × ``--steps`` steps (100),
params model, lr and depth, a team tag; the same runs, points included, on both sides, written
before the servers start (not timed) by bulk inserts, as bench/server.py does. shipyard's side
also holds 5 runs of ``--long`` steps (100,000) of one metric, ``loss``, for the comparison.

Three measurements, each in ``--rounds`` rounds (the two servers in alternating order), a
round's figure the median of ``--calls`` calls after one warm-up call:

1. **table**: ``GET /api/v1/runs/table`` on ``shipyard server``: filter
   ``params.model = 'gbm' and metrics.m1 > 0.5`` (about a sixth of the runs), sorted on
   ``metrics.m3 DESC``, 100 rows with 6 columns; on the last value and on the minimum.
   Target: under 300 ms.
2. **mlflow**: the same first screen through MLflow's UI API, ``POST
   /ajax-api/2.0/mlflow/runs/search`` on ``mlflow server`` (same filter and order, on the last
   value as MLflow keeps only that, ``max_results`` 100). Reported: shipyard/mlflow ratio per
   round. Both sides must give the same runs in the same order.
3. **compare**: ``GET /api/v1/runs/comparison`` of the 5 long runs, metric ``loss``, grouped by
   model, 2,000 points a series at most. Target: under 200 ms.

    .venv/bin/python bench/ui.py              # 10,000 runs x 20 metrics x 100 steps
    .venv/bin/python bench/ui.py --quick      # 1,000 runs x 20 x 10 steps, 20,000-step runs
    .venv/bin/python bench/ui.py --in-process # the comparison alone, no server (5 x 100,000)
    .venv/bin/python bench/ui.py --in-process --db-url 'postgresql+psycopg://...'  # on PostgreSQL

Like bench/server.py it makes (or reuses) bench/.work/mlflow-venv and re-runs itself there;
shipyard's server and the populating of its project use the Python that started it. Never a
test: figures depend on the machine (check ``uptime``; the load is printed).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from server import (
    LAUNCHER,
    SERVER_START_TIMEOUT,
    enter_mlflow_venv,
    mlflow_venv,
    shipyard_bin,
    spread,
    versions,
)

EXPERIMENT = "ui-bench"
COMPARE_EXPERIMENT = "ui-compare"
METRICS = 20
FILTER = "params.model = 'gbm' and metrics.m1 > 0.5"
ORDER = "metrics.m3 DESC"
COLUMNS = ["params.model", "params.lr", "metrics.m1", "metrics.m3", "metrics.m7", "tags.team"]
PAGE = 100
TARGETS_MS = {"table": 300.0, "compare": 200.0}


def synthetic(n: int, steps: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` finished runs, one at a time (20 million points do not fit in memory as Python
    floats), each with METRICS metrics of ``steps`` points (a noisy decay)."""
    rng = random.Random(seed)
    for i in range(n):
        start = 1_700_000_000_000 + i * 60_000
        series = {}
        for k in range(METRICS):
            level = rng.random()
            series[f"m{k}"] = [level + 0.2 * rng.random() / (s + 1) for s in range(steps)]
        yield {
            "id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "name": f"run-{i:05d}",
            "start": start,
            "series": series,
            "params": {
                "model": rng.choice(("gbm", "rf", "lr")),
                "lr": f"{rng.uniform(0.001, 0.3):.4f}",
                "depth": str(rng.randint(2, 12)),
            },
            "tags": {"team": rng.choice(("risk", "growth", "core", "ops"))},
        }


def populate_shipyard(project_dir: str, n: int, steps: int, long: int) -> None:
    """The synthetic runs and the 5 long runs into the project (in shipyard's Python)."""
    import shipyard
    from shipyard.stores.db.tables import run_latest_metrics, run_params, run_tags, runs

    project = shipyard.open_project(project_dir)
    with project.start_run(EXPERIMENT, name="creates-the-experiment") as seed:
        pass
    project.runs.delete(seed.id)
    (exp_id,) = [e.id for e in project.runs.experiments() if e.name == EXPERIMENT]
    run_rows, latest, param_rows, tag_rows = [], [], [], []
    with project.db.write() as conn:
        for r in synthetic(n, steps):
            end = r["start"] + 30_000
            run_rows.append(
                {
                    "id": r["id"],
                    "experiment_id": exp_id,
                    "name": r["name"],
                    "status": "FINISHED",
                    "lifecycle": "active",
                    "start_time": r["start"],
                    "end_time": end,
                    "created_by": project.actor,
                    "code": {},
                    "environment": {},
                }
            )
            points = []
            for key, values in r["series"].items():
                points += [(r["id"], key, s, end, v) for s, v in enumerate(values)]
                latest.append(
                    {
                        "run_id": r["id"],
                        "key": key,
                        "step": steps - 1,
                        "timestamp": end,
                        "value": values[-1],
                        "min_value": min(values),
                        "max_value": max(values),
                    }
                )
            conn.exec_driver_sql(
                "INSERT INTO run_metrics (run_id, key, step, timestamp, value) "
                "VALUES (?, ?, ?, ?, ?)",
                points,  # type: ignore[arg-type]
            )
            param_rows += [
                {"run_id": r["id"], "key": k, "value": v} for k, v in r["params"].items()
            ]
            tag_rows += [{"run_id": r["id"], "key": k, "value": v} for k, v in r["tags"].items()]
        conn.execute(runs.insert(), run_rows)
        conn.execute(run_latest_metrics.insert(), latest)
        conn.execute(run_params.insert(), param_rows)
        conn.execute(run_tags.insert(), tag_rows)
    for run_id in populate_long(project, long):
        print(run_id)
    project.close()


def populate_long(project: Any, long: int) -> list[str]:
    """The 5 runs of ``long`` steps of ``loss`` that the comparison reads; their ids."""
    rng = random.Random(1)
    ids = []
    for i in range(5):
        with project.start_run(COMPARE_EXPERIMENT, name=f"long-{i}") as run:
            run.log_params({"model": ("gbm", "lr")[i % 2], "seed": i})
            run.log_points(
                ("loss", 1.0 / (s + 1) + 0.01 * rng.random(), s, None) for s in range(long)
            )
        ids.append(run.id)
    return ids


def in_process(long: int, rounds: int, calls: int, db_url: str | None = None) -> None:
    """``project.runs.comparison`` of the 5 long runs, called in this process (no server, no
    HTTP): as it is (long series read from their stored blocks), and with every point read
    into Python and reduced by numpy, in alternating order each round; then the blocks' way
    with its JSON body written as the route writes it (``to_dict`` and orjson)."""
    import tempfile

    import orjson

    import shipyard
    from shipyard.tracking import series

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-ui-") as tmp:
        project = shipyard.init_project(Path(tmp) / "project", db_url=db_url)
        started = time.perf_counter()
        ids = populate_long(project, long)
        print(f"populated 5 runs x {long:,} steps in {time.perf_counter() - started:.0f} s")

        def compare() -> Any:
            return project.runs.comparison(ids, metrics=["loss"], group_by="model")

        def body() -> Any:
            return orjson.dumps(compare().to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)

        default = series.BLOCKS_FROM_LEVEL
        figures: dict[str, list[float]] = {"blocks": [], "python": [], "json": []}
        answers = {}
        for n in range(rounds):
            for way in ("blocks", "python") if n % 2 == 0 else ("python", "blocks"):
                series.BLOCKS_FROM_LEVEL = default if way == "blocks" else 65
                ms, answers[way] = timed(compare, calls)
                figures[way].append(ms)
            series.BLOCKS_FROM_LEVEL = default
            figures["json"].append(timed(body, calls)[0])
            print(
                f"  round {n + 1}: from blocks {figures['blocks'][-1]:.1f} ms "
                f"(with its JSON body {figures['json'][-1]:.1f} ms), "
                f"every point read {figures['python'][-1]:.1f} ms",
                flush=True,
            )
        points = sum(len(s.steps) for s in answers["blocks"].series)
        same = answers["blocks"] == answers["python"]
        project.close()
    print(f"\n== comparison of 5 runs x {long:,} steps in process; {rounds} rounds ==")
    print(
        f"from stored blocks:     {spread(figures['blocks'], '.1f')} ms "
        f"(target < {TARGETS_MS['compare']:.0f} ms); {points} points"
    )
    print(f"  with its JSON body:   {spread(figures['json'], '.1f')} ms")
    print(f"every point read:       {spread(figures['python'], '.1f')} ms")
    print(f"same answer: {'yes' if same else 'NO'}; load average {os.getloadavg()[0]:.1f}")


def populate_mlflow(db_uri: str, artifact_root: str, n: int, steps: int) -> None:
    """The same synthetic runs into mlflow's schema (in the benchmark's venv)."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, artifact_root)
    exp_id = store.create_experiment(EXPERIMENT)
    location = store.get_experiment(exp_id).artifact_location
    with store.engine.begin() as conn:
        latest, param_rows, tag_rows = [], [], []
        for r in synthetic(n, steps):
            end = r["start"] + 30_000
            conn.execute(
                SqlRun.__table__.insert(),
                {
                    "run_uuid": r["id"],
                    "name": r["name"],
                    "source_type": "UNKNOWN",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": r["start"],
                    "end_time": end,
                    "deleted_time": None,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{location}/{r['id']}/artifacts",
                    "experiment_id": int(exp_id),
                },
            )
            points = []
            for key, values in r["series"].items():
                points += [
                    {
                        "run_uuid": r["id"],
                        "key": key,
                        "value": v,
                        "timestamp": end,
                        "step": s,
                        "is_nan": False,
                    }
                    for s, v in enumerate(values)
                ]
                latest.append({**points[-1]})
            conn.execute(SqlMetric.__table__.insert(), points)
            param_rows += [
                {"run_uuid": r["id"], "key": k, "value": v} for k, v in r["params"].items()
            ]
            tags = {"mlflow.runName": r["name"], **r["tags"]}
            tag_rows += [{"run_uuid": r["id"], "key": k, "value": v} for k, v in tags.items()]
        conn.execute(SqlLatestMetric.__table__.insert(), latest)
        conn.execute(SqlParam.__table__.insert(), param_rows)
        conn.execute(SqlTag.__table__.insert(), tag_rows)
    store.engine.dispose()


def timed(call: Any, calls: int) -> tuple[float, Any]:
    """One warm-up call, then the median wall time of ``calls`` calls (ms) and the last answer."""
    answer = call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), answer


def main() -> int:
    if sys.argv[1:2] == ["populate-shipyard"]:
        populate_shipyard(sys.argv[2], *(int(a) for a in sys.argv[3:6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100, help="points per metric per run")
    parser.add_argument("--long", type=int, default=100_000, help="steps of the compared runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="timed calls a round")
    parser.add_argument("--quick", action="store_true", help="1,000 runs x 10 steps, 2 rounds")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="only the comparison, called in this process, from stored blocks and not",
    )
    parser.add_argument(
        "--db-url",
        help="with --in-process: the project's metadata database (an empty PostgreSQL "
        "schema, say); default a SQLite file",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.steps, args.long, args.rounds, args.calls = 1_000, 10, 20_000, 2, 3
    if args.in_process:
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        in_process(args.long, args.rounds, args.calls, args.db_url)
        return 0
    venv = mlflow_venv()
    if not venv.active():
        if os.environ.get(LAUNCHER):
            sys.exit(f"expected to run in {venv.path}, running in {sys.prefix}")
        enter_mlflow_venv(venv, __file__)

    import json

    import httpx

    from _venv import workspace
    from serving import free_port, server

    print(versions(), flush=True)
    begun = time.perf_counter()
    with workspace("shipyard-bench-ui-") as workdir, ExitStack() as stack:
        bin_dir = shipyard_bin()
        shipyard = str(bin_dir / "shipyard")
        project = workdir / "shipyard-project"
        env = {**os.environ, "SHIPYARD_USER": "alice"}
        subprocess.run([shipyard, "init", str(project)], env=env, check=True, capture_output=True)
        token = json.loads(
            subprocess.run(
                [shipyard, "--project", str(project), "users", "token", "create", "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )["token"]
        started = time.perf_counter()
        made = subprocess.run(
            [
                str(bin_dir / "python"),
                __file__,
                "populate-shipyard",
                str(project),
                str(args.runs),
                str(args.steps),
                str(args.long),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        long_ids = made.stdout.split()
        print(f"populated shipyard in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        db_uri = f"sqlite:///{workdir / 'mlflow.db'}"
        (workdir / "mlflow-artifacts").mkdir()
        populate_mlflow(db_uri, str(workdir / "mlflow-artifacts"), args.runs, args.steps)
        print(f"populated mlflow in {time.perf_counter() - started:.0f} s", flush=True)
        urls = {}
        for name, command in (
            ("shipyard", [shipyard, "--project", str(project), "server", "--host", "127.0.0.1"]),
            (
                "mlflow",
                [
                    str(Path(sys.executable).parent / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    db_uri,
                    "--default-artifact-root",
                    str(workdir / "mlflow-artifacts"),
                    "--host",
                    "127.0.0.1",
                    "--workers",
                    "1",
                ],
            ),
        ):
            port = free_port()
            urls[name] = stack.enter_context(
                server(
                    [*command, "--port", str(port)],
                    port,
                    "/health",
                    workdir / f"{name}.log",
                    timeout=SERVER_START_TIMEOUT,
                )
            )
        ship = stack.enter_context(
            httpx.Client(
                base_url=urls["shipyard"], timeout=120, headers={"Authorization": f"Bearer {token}"}
            )
        )
        mlf = stack.enter_context(httpx.Client(base_url=urls["mlflow"], timeout=120))
        exp_id = mlf.get(
            "/ajax-api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": EXPERIMENT}
        ).json()["experiment"]["experiment_id"]

        def table(stat: str) -> Any:
            r = ship.get(
                "/api/v1/runs/table",
                params={
                    "experiment": EXPERIMENT,
                    "filter": FILTER,
                    "order_by": ORDER,
                    "stat": stat,
                    "column": COLUMNS,
                    "limit": PAGE,
                },
            )
            r.raise_for_status()
            return r.json()

        def mlflow_search() -> Any:
            r = mlf.post(
                "/ajax-api/2.0/mlflow/runs/search",
                json={
                    "experiment_ids": [exp_id],
                    "filter": FILTER,
                    "order_by": [ORDER],
                    "max_results": PAGE,
                },
            )
            r.raise_for_status()
            return r.json()

        def compare() -> Any:
            r = ship.get(
                "/api/v1/runs/comparison",
                params={"run": long_ids, "metric": "loss", "group_by": "model"},
            )
            r.raise_for_status()
            return r.json()

        figures: dict[str, list[float]] = {"last": [], "min": [], "mlflow": [], "compare": []}
        same = True
        for n in range(args.rounds):
            order = ["ship", "mlflow"] if n % 2 == 0 else ["mlflow", "ship"]
            for side in order:
                if side == "ship":
                    ms, page = timed(lambda: table("last"), args.calls)
                    figures["last"].append(ms)
                    ours = [row["name"] for row in page["rows"]]
                    figures["min"].append(timed(lambda: table("min"), args.calls)[0])
                    ms, doc = timed(compare, args.calls)
                    figures["compare"].append(ms)
                    points = sum(len(s["steps"]) for s in doc["series"])
                else:
                    ms, found = timed(mlflow_search, args.calls)
                    figures["mlflow"].append(ms)
                    theirs = [
                        next(t["value"] for t in r["data"]["tags"] if t["key"] == "mlflow.runName")
                        for r in found.get("runs", [])
                    ]
            same = same and ours == theirs
            print(
                f"  round {n + 1}: table {figures['last'][-1]:.1f} ms (min: "
                f"{figures['min'][-1]:.1f}), mlflow {figures['mlflow'][-1]:.1f} ms, "
                f"compare {figures['compare'][-1]:.1f} ms ({points} points)",
                flush=True,
            )
        ratios = [m / s for m, s in zip(figures["mlflow"], figures["last"], strict=True)]
        rounds = f"{args.rounds} rounds, median [lowest-highest round] of per-round medians"
        print(f"\n== {args.runs:,} runs x {METRICS} metrics x {args.steps} steps; {rounds} ==")
        print(f"filter: {FILTER}; order: {ORDER}; {PAGE} rows, {len(COLUMNS)} columns")
        print(
            f"shipyard table, last:  {spread(figures['last'], '.1f')} ms "
            f"(target < {TARGETS_MS['table']:.0f} ms)"
        )
        print(f"shipyard table, min:   {spread(figures['min'], '.1f')} ms")
        print(f"mlflow runs/search:    {spread(figures['mlflow'], '.1f')} ms")
        print(
            f"mlflow/shipyard:       {spread(ratios, '.1f')}x; same runs in the same order: "
            f"{'yes' if same else 'NO'}"
        )
        print(
            f"shipyard comparison of 5 runs x {args.long:,} steps: "
            f"{spread(figures['compare'], '.1f')} ms (target < {TARGETS_MS['compare']:.0f} ms)"
        )
    print(
        f"\ntotal {time.perf_counter() - begun:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
