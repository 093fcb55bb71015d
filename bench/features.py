"""Benchmark: point-in-time training data with shipyard and with Feast 0.67's
``get_historical_features`` on its DuckDB offline store, measured in the same run; then
shipyard's online store (lookups on SQLite and Redis, materialization into SQLite).

Data (seeded): 10,000 entities x 100 feature timestamps = 1,000,000 events (an int and two
float features, one event a day per entity, in random order) in a Parquet file, and
1,000,000 entity rows (each entity at 100 distinct request times spread over the same
period and 30 days past it) to enrich, with a 30-day TTL.

- shipyard, two timed sections: (1) the join alone, ``pl.read_parquet`` of the events then
  ``point_in_time_join`` (what ``project.features.historical`` computes); (2) end to end,
  ``project.features.historical("requests", [...], output="training")`` in a project whose
  datasets hold the events and the entity rows: the dataset reads (digests verified, reads
  logged), the join, and the result registered as a dataset version with its lineage
  (Parquet written, profiled, hashed, stored, audited), each stage timed (wall and CPU).
  SHIPYARD_BENCH_PROFILE=1 adds a cProfile (CPU time) of the second end-to-end call.
- Feast: a ``FeatureStore`` on a ``RepoConfig`` with the DuckDB offline store, the events as a
  ``FileSource``, one ``FeatureView`` with ``ttl=30 days``;
  ``get_historical_features(entity_df, features).to_df()``.

Each tool runs in a fresh subprocess per round (rounds alternate which goes first): the
entity rows are loaded first (not timed), then the call is made twice (``cold`` and
``warm``). The results are checked: rows returned against rows given (dropped rows), and the
values of the two tools compared row for row (joined on entity and request time).

Online (shipyard, in-process, after a warm-up): p50/p99 of ``project.features.online`` for
one entity x 10 features on SQLite and on Redis (``--redis-url``, default
redis://127.0.0.1:6379/0; skipped when unreachable), and the rate of materializing
1,000,000 entities into SQLite (the store's write, and the whole ``materialize``).

Feast is never a shipyard dependency: the script makes bench/.work/feast-venv
(FEAST_REQUIREMENTS) and runs Feast's rounds with that interpreter.

    python bench/features.py                     # 10-20 minutes once Feast is installed
    python bench/features.py --skip-online       # the point-in-time comparison alone
    python bench/features.py --rounds 1 --skip-feast      # shipyard alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from _venv import BenchVenv, digest, workspace

REPO = Path(__file__).resolve().parents[1]
FEAST_REQUIREMENTS = ("feast[duckdb]==0.67.0",)
ENTITIES = 10_000
STAMPS = 100
TTL_DAYS = 30
START = datetime(2026, 1, 1)
TARGETS = (
    "historical <= 0.5 s and >= 10x faster than Feast 0.67 (DuckDB), 0 dropped rows; "
    "online p99 < 1 ms (SQLite), < 2 ms (Redis); materialize >= 200,000 rows/s (SQLite)"
)


# -- data -----------------------------------------------------------------------------------------


def make_data(workdir: Path, seed: int) -> None:
    """events.parquet (the feature source) and entities.parquet (the rows to enrich)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    n = ENTITIES * STAMPS
    ids = np.repeat(np.arange(ENTITIES, dtype=np.int64), STAMPS)
    day = np.tile(np.arange(STAMPS), ENTITIES)
    seconds = day * 86400 + rng.integers(0, 86400, n)
    events = pl.DataFrame(
        {
            "entity_id": ids,
            "event_timestamp": pl.Series(
                np.datetime64(START, "us") + seconds.astype("timedelta64[s]")
            ).dt.replace_time_zone("UTC"),
            "f_int": rng.integers(0, 1000, n),
            "f_a": rng.normal(0, 1, n),
            "f_b": rng.normal(10, 3, n),
        }
    )
    events = events.sample(fraction=1.0, shuffle=True, seed=seed)  # stored out of time order
    events.write_parquet(workdir / "events.parquet")
    # 100 distinct request times per entity over the events' period and 30 days past it.
    span = (STAMPS + TTL_DAYS) * 86400
    when = np.sort(rng.choice(span, size=(ENTITIES, STAMPS), replace=False), axis=1).ravel()
    entities = pl.DataFrame(
        {
            "entity_id": ids,
            "event_timestamp": pl.Series(
                np.datetime64(START, "us") + when.astype("timedelta64[s]")
            ).dt.replace_time_zone("UTC"),
        }
    ).sample(fraction=1.0, shuffle=True, seed=seed + 1)
    entities.write_parquet(workdir / "entities.parquet")


# -- workers --------------------------------------------------------------------------------------


def worker_shipyard(workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    import polars as pl

    from shipyard.features.offline import ViewFrame, point_in_time_join

    imported = time.perf_counter() - started
    entities = pl.read_parquet(workdir / "entities.parquet")
    names = ["f_int", "f_a", "f_b"]

    def run() -> tuple[Any, float, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        events = pl.read_parquet(workdir / "events.parquet")
        t1 = time.perf_counter()
        view = ViewFrame(
            "fv", events, ["entity_id"], "event_timestamp", names, names, TTL_DAYS * 86400
        )
        out = point_in_time_join(entities, "event_timestamp", [view])
        done = time.perf_counter()
        return out, done - t0, done - t1, time.process_time() - c0

    out, cold, cold_join, _ = run()
    out, warm, warm_join, cpu = run()
    out.write_parquet(workdir / "shipyard-result.parquet")
    registered = worker_shipyard_registered(workdir, names)
    return {
        "cold": cold,
        "warm": warm,
        "join": min(cold_join, warm_join),
        "cpu": cpu,
        "import": imported,
        "rows": out.height,
        "given": entities.height,
        "nulls": out.get_column("f_a").null_count(),
        **registered,
    }


class Spans:
    """A Progress that times each stage: wall and CPU time (all threads) per description."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self._open: tuple[str, float, float] | None = None

    def stage(self, description: str, total: float | None = None) -> None:
        self.close()
        self._open = (description, time.perf_counter(), time.process_time())

    def advance(self, amount: float = 1) -> None:
        pass

    def close(self) -> None:
        if self._open is not None:
            what, t0, c0 = self._open
            self.spans.append((what, time.perf_counter() - t0, time.process_time() - c0))
            self._open = None


def worker_shipyard_registered(workdir: Path, names: list[str]) -> dict[str, Any]:
    """``project.features.historical`` end to end, as a user calls it: the entity rows and the
    events are dataset versions of a project (added before the clock starts), the result is
    registered as a dataset version with its lineage (read digests verified, Parquet written,
    profiled, hashed, stored, the reads and the registration audited). Timed twice; the
    stages of the second call are timed one by one (``Spans``). With SHIPYARD_BENCH_PROFILE
    set, the second call also runs under cProfile (CPU time) and its top functions go to
    stderr."""
    import shipyard
    from shipyard.features import EntityDefinition, Feature, FeatureViewDefinition

    root = workdir / f"shipyard-project-{os.getpid()}"
    with shipyard.init_project(root) as project:
        project.datasets.add("events", str(workdir / "events.parquet"))
        project.datasets.add("requests", str(workdir / "entities.parquet"))
        project.features.apply(
            [
                EntityDefinition("thing", ["entity_id"]),
                FeatureViewDefinition(
                    "fv",
                    source="events",
                    entity="thing",
                    timestamp="event_timestamp",
                    ttl=f"{TTL_DAYS}d",
                    features=[Feature(n, "int" if n == "f_int" else "float") for n in names],
                ),
            ]
        )
        refs = [f"fv:{n}" for n in names]
        took: list[tuple[float, float]] = []
        spans = Spans()
        for i in range(2):
            profiler = None
            if i == 1 and os.environ.get("SHIPYARD_BENCH_PROFILE"):
                import cProfile

                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
            t0, c0 = time.perf_counter(), time.process_time()
            got = project.features.historical(
                "requests", refs, output="training", progress=spans if i == 1 else Spans()
            )
            took.append((time.perf_counter() - t0, time.process_time() - c0))
            spans.close()
            if profiler is not None:
                import io
                import pstats

                profiler.disable()
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
                print(text.getvalue(), file=sys.stderr)
        assert got.dataset is not None and got.rows == 1_000_000
        return {
            "reg_cold": took[0][0],
            "reg_warm": took[1][0],
            "reg_cpu": took[1][1],
            "reg_rows": got.rows,
            "reg_spans": spans.spans,
        }


def worker_feast(workdir: Path) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64

    imported = time.perf_counter() - started
    repo = workdir / f"feast-repo-{os.getpid()}"
    repo.mkdir()
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store=DuckDBOfflineStoreConfig(),
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
        repo_path=str(repo),
    )
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity_id"])
    source = FileSource(path=str(workdir / "events.parquet"), timestamp_field="event_timestamp")
    view = FeatureView(
        name="fv",
        entities=[entity],
        ttl=timedelta(days=TTL_DAYS),
        schema=[
            Field(name="f_int", dtype=Int64),
            Field(name="f_a", dtype=Float64),
            Field(name="f_b", dtype=Float64),
        ],
        source=source,
    )
    store.apply([entity, view])
    entities = pd.read_parquet(workdir / "entities.parquet")
    features = ["fv:f_int", "fv:f_a", "fv:f_b"]

    def run() -> tuple[Any, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        out = store.get_historical_features(entity_df=entities, features=features).to_df()
        return out, time.perf_counter() - t0, time.process_time() - c0

    out, cold, _ = run()
    out, warm, cpu = run()
    out[["entity_id", "event_timestamp", "f_int", "f_a", "f_b"]].to_parquet(
        workdir / "feast-result.parquet"
    )
    return {
        "cold": cold,
        "warm": warm,
        "cpu": cpu,
        "import": imported,
        "rows": len(out),
        "given": len(entities),
        "nulls": int(out["f_a"].isna().sum()),
    }


def compare_results(workdir: Path) -> dict[str, Any]:
    """The two results joined on entity and request time: rows whose three values agree."""
    import polars as pl

    ours = pl.read_parquet(workdir / "shipyard-result.parquet")
    theirs = pl.read_parquet(workdir / "feast-result.parquet").with_columns(
        pl.col("event_timestamp").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    )
    keys = ["entity_id", "event_timestamp"]
    joined = ours.join(theirs, on=keys, how="inner", suffix="_feast")
    same = pl.lit(True)
    for f in ("f_int", "f_a", "f_b"):
        a, b = pl.col(f), pl.col(f"{f}_feast")
        same = same & ((a.is_null() & b.is_null()) | (a == b).fill_null(False))
    agree = joined.select(same.sum()).item()
    return {"matched_rows": joined.height, "agree": int(agree), "ours": ours.height}


def run_worker(python: Path | str, tool: str, workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--worker", tool, str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(REPO / "bench")}
        if tool == "feast"
        else {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO / 'bench'}"},
    )
    if done.returncode != 0:
        sys.exit(f"{tool} worker failed:\n{done.stderr[-3000:]}")
    if os.environ.get("SHIPYARD_BENCH_PROFILE") and tool == "shipyard":
        print(done.stderr, flush=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- online -------------------------------------------------------------------------------------


def online_figures(workdir: Path, redis_url: str | None, lookups: int) -> dict[str, Any]:
    """p50/p99 of one-entity lookups of 10 features on SQLite (and Redis), and the rate of
    materializing 1,000,000 entities into SQLite."""
    import polars as pl

    import shipyard
    from shipyard.features import EntityDefinition, Feature, FeatureViewDefinition
    from shipyard.features.online.sqlite import SqliteOnlineStore

    rng = np.random.default_rng(5)
    n = 10_000
    now = datetime.now().replace(microsecond=0)
    wide = pl.DataFrame(
        {
            "entity_id": np.arange(n, dtype=np.int64),
            "ts": [now - timedelta(hours=int(h)) for h in rng.integers(0, 240, n)],
            **{f"x{i}": rng.normal(0, 1, n) for i in range(10)},
        }
    )
    out: dict[str, Any] = {}
    definitions = [
        EntityDefinition("thing", ["entity_id"]),
        FeatureViewDefinition(
            "wide",
            source="wide",
            entity="thing",
            timestamp="ts",
            ttl="30d",
            features=[Feature(f"x{i}", "float") for i in range(10)],
        ),
    ]
    for kind in ("sqlite", "redis"):
        if kind == "redis":
            if redis_url is None or not _redis_up(redis_url):
                out["redis"] = None
                continue
            os.environ["SHIPYARD_REDIS_URL"] = redis_url
        root = workdir / f"online-{kind}"
        with shipyard.init_project(root) as project:
            project.datasets.add("wide", wide)
            project.features.apply(definitions)
            project.features.materialize()
            keys = rng.integers(0, n, lookups)
            features = ["wide:*"]
            for k in keys[:200]:  # warm-up
                project.features.online([{"entity_id": int(k)}], features)
            times, cpu = [], []
            for k in keys:
                t0, c0 = time.perf_counter(), time.thread_time()
                found = project.features.online([{"entity_id": int(k)}], features)
                times.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
            assert found.rows[0].status["x0"] == "present"
            project.feature_runtime.store.clear("wide")
        times.sort()
        cpu.sort()
        out[kind] = {
            "p50_ms": 1000 * times[len(times) // 2],
            "p99_ms": 1000 * times[int(len(times) * 0.99)],
            "cpu_p50_ms": 1000 * cpu[len(cpu) // 2],
            "cpu_p99_ms": 1000 * cpu[int(len(cpu) * 0.99)],
            "lookups": len(times),
        }
        os.environ.pop("SHIPYARD_REDIS_URL", None)

    # Materialization: 1,000,000 entities, one event each, 3 features.
    m = 1_000_000
    big = pl.DataFrame(
        {
            "entity_id": np.arange(m, dtype=np.int64),
            "ts": pl.Series(
                np.datetime64(START, "us") + rng.integers(0, 86400 * 90, m).astype("timedelta64[s]")
            ),
            "f_int": rng.integers(0, 1000, m),
            "f_a": rng.normal(0, 1, m),
            "f_b": rng.normal(10, 3, m),
        }
    )
    store = SqliteOnlineStore(workdir / "materialize.db")
    latest = big.rename({"ts": "event_time"}).with_columns(
        pl.col("event_time").dt.replace_time_zone("UTC")
    )
    t0, c0 = time.perf_counter(), time.process_time()
    written = store.write("big", ["entity_id"], latest)
    write_s, write_cpu = time.perf_counter() - t0, time.process_time() - c0
    store.close()
    root = workdir / "materialize-project"
    with shipyard.init_project(root) as project:
        project.datasets.add("big", big)
        project.features.apply(
            [
                definitions[0],
                FeatureViewDefinition(
                    "big",
                    source="big",
                    entity="thing",
                    timestamp="ts",
                    features=[
                        Feature("f_int", "int"),
                        Feature("f_a", "float"),
                        Feature("f_b", "float"),
                    ],
                ),
            ]
        )
        t0, c0 = time.perf_counter(), time.process_time()
        [done] = project.features.materialize("big")
        full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    out["materialize"] = {
        "rows": written,
        "write_s": write_s,
        "write_rate": written / write_s,
        "write_cpu": write_cpu,
        "full_s": full_s,
        "full_cpu": full_cpu,
        "full_rate": done.rows / full_s,
    }
    return out


def _redis_up(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


# -- main ---------------------------------------------------------------------------------------


def feast_venv() -> BenchVenv:
    return BenchVenv("feast-venv", digest("\n".join(FEAST_REQUIREMENTS)))


def prepare_feast(venv: BenchVenv) -> None:
    if venv.ready():
        return
    venv.create()
    venv.pip("installing " + ", ".join(FEAST_REQUIREMENTS), *FEAST_REQUIREMENTS)
    venv.mark_ready()


def spread(values: list[float], unit: str = "s", digits: int = 3) -> str:
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"[{min(values):.{digits}f}–{max(values):.{digits}f}]"
    )


def load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, workdir = args.worker[0], Path(args.worker[1])
        result = (worker_shipyard if tool == "shipyard" else worker_feast)(workdir)
        print(json.dumps(result))
        return 0

    venv = feast_venv()
    if not args.skip_feast:
        prepare_feast(venv)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPU(s); "
        f"{ENTITIES * STAMPS:,} events ({ENTITIES:,} entities x {STAMPS} timestamps, 3 "
        f"features), {ENTITIES * STAMPS:,} entity rows, TTL {TTL_DAYS} days; "
        f"{args.rounds} rounds; {load()}",
        flush=True,
    )
    tools = ["shipyard"] if args.skip_feast else ["shipyard", "feast"]
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    with workspace("shipyard-bench-features-") as workdir:
        make_data(workdir, args.seed)
        for r in range(args.rounds):
            order = tools if r % 2 == 0 else tools[::-1]
            for tool in order:
                python = venv.python if tool == "feast" else sys.executable
                got = run_worker(python, tool, workdir)
                runs[tool].append(got)
                print(
                    f"  round {r + 1} {tool:8s}: cold {got['cold']:.3f} s, warm "
                    f"{got['warm']:.3f} s, rows {got['rows']:,} of {got['given']:,}, "
                    f"null values {got['nulls']:,}, import {got['import']:.2f} s",
                    flush=True,
                )
        agreement = None if args.skip_feast else compare_results(workdir)
        online = None if args.skip_online else online_figures(workdir, args.redis_url, args.lookups)
    report(runs, agreement, online)
    print(f"{load()} at the end")
    return 0


def report(
    runs: dict[str, list[dict[str, Any]]],
    agreement: dict[str, Any] | None,
    online: dict[str, Any] | None,
) -> None:
    print(f"\nTargets: {TARGETS}.")
    ship = runs["shipyard"]
    print(
        f"historical shipyard, read the events + point_in_time_join: cold "
        f"{spread([s['cold'] for s in ship])}, warm {spread([s['warm'] for s in ship])} (join "
        f"alone {spread([s['join'] for s in ship])}; CPU time of the warm call, both threads "
        f"{spread([s['cpu'] for s in ship])}); dropped rows {ship[0]['given'] - ship[0]['rows']:,}"
    )
    print(
        f"historical shipyard, project.features.historical(..., output=...) end to end "
        f"(dataset versions read and verified, result registered): cold "
        f"{spread([s['reg_cold'] for s in ship])}, warm {spread([s['reg_warm'] for s in ship])}"
        f" (CPU time of the warm call {spread([s['reg_cpu'] for s in ship])}); rows "
        f"{ship[0]['reg_rows']:,}"
    )
    print("  its stages, second call (median over rounds of wall s / CPU s):")
    for i, (what, _, _) in enumerate(ship[0]["reg_spans"]):
        walls = [s["reg_spans"][i][1] for s in ship]
        cpus = [s["reg_spans"][i][2] for s in ship]
        print(f"    {what:60s} {statistics.median(walls):6.3f} / {statistics.median(cpus):6.3f}")
    if "feast" in runs:
        feast = runs["feast"]
        print(
            f"historical Feast   : cold {spread([f['cold'] for f in feast])}, warm "
            f"{spread([f['warm'] for f in feast])} (CPU time of the warm call "
            f"{spread([f['cpu'] for f in feast])}); dropped rows "
            f"{feast[0]['given'] - feast[0]['rows']:,}"
        )
        for key, label in (
            ("cold", "first call"),
            ("warm", "second call"),
            ("cpu", "CPU time, second call"),
            ("reg_cold", "first call, end to end with registration"),
            ("reg_warm", "second call, end to end with registration"),
            ("reg_cpu", "CPU time, second call, end to end with registration"),
        ):
            mine = {"reg_cold": "cold", "reg_warm": "warm", "reg_cpu": "cpu"}.get(key, key)
            ratios = [f[mine] / s[key] for s, f in zip(ship, feast, strict=True)]
            print(
                f"  {label}: shipyard {statistics.median(ratios):.1f}x faster "
                f"(rounds {min(ratios):.1f}–{max(ratios):.1f}x)"
            )
    if agreement is not None:
        print(
            f"agreement: {agreement['agree']:,} of {agreement['matched_rows']:,} rows found in "
            f"both results have the same three values (shipyard returned {agreement['ours']:,})"
        )
    if online is not None:
        for kind in ("sqlite", "redis"):
            got = online.get(kind)
            if got is None:
                print(f"online {kind}: not measured (no server)")
                continue
            print(
                f"online {kind:6s}: one entity x 10 features, {got['lookups']:,} lookups: "
                f"p50 {got['p50_ms']:.3f} ms, p99 {got['p99_ms']:.3f} ms (CPU time of the "
                f"calling thread: p50 {got['cpu_p50_ms']:.3f} ms, p99 {got['cpu_p99_ms']:.3f} ms)"
            )
        m = online["materialize"]
        print(
            f"materialize: {m['rows']:,} entities written to SQLite in {m['write_s']:.2f} s "
            f"({m['write_rate']:,.0f} rows/s; {m['write_cpu']:.2f} CPU s); the whole "
            f"`materialize` (read the dataset, latest per entity, write) {m['full_s']:.2f} s "
            f"({m['full_rate']:,.0f} rows/s; {m['full_cpu']:.2f} CPU s)"
        )


if __name__ == "__main__":
    sys.exit(main())
