"""Benchmark: single-row serving of a 200-tree XGBoost and a 200-tree LightGBM model behind
the demo's preprocessing, by `shipyard serve` and by `mlflow models serve` of the same
fitted pipelines, in the same run; and how long each takes to load the model.

Run with ``python bench/flavors.py`` (``--seconds`` per measurement, default 5; ``--repeat``
rounds, default 3). It fits, on 5,000 synthetic applicants (the demo's table and
preprocessing spec: imputers, scaler, one-hot encoder), one ``Pipeline(prep,
XGBClassifier(n_estimators=200))`` and one with ``LGBMClassifier(n_estimators=200)``. Each
is registered in a temporary shipyard project (the xgboost and lightgbm flavors: skops for
the preprocessing, the booster in its native format), approved, promoted and deployed, and
saved with ``mlflow.sklearn.save_model`` as MLflow saves a pipeline of them (cloudpickle).
For each model, ``shipyard serve`` and ``mlflow models serve --env-manager local`` (the full
``mlflow`` 3.18 in bench/.work/mlflow-venv, made by bench/server.py's helper, with xgboost
and lightgbm) run side by side on loopback ports, and the load generator of
bench/serving.py drives each in turn at concurrency 8 with one-row requests (MLflow's
``dataframe_records`` body at ``/invocations``, shipyard's ``records`` at ``/predict``).
Both answer the predicted probabilities.

It prints first, for each model in process, whether it compiles for serving (and how long
compiling and checking take) and the cost of one row through the compiled form and through
the pipeline and its booster; then requests/s and p99 for each server, model and round, the
median ratio of shipyard's requests/s to MLflow's (target: at least 10×), and the median
in-process load time of each model (``project.models.load``, digest verified, against
``mlflow.pyfunc.load_model``; imports excluded). On a shared, loaded machine the absolute
figures move a lot; the ratios are from measurements taken one right after the other.
Servers and temporary folders are removed on exit. Never a test: figures depend on the
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from _venv import REPO, workspace
from server import MLFLOW_ENV, mlflow_venv, prepare_mlflow_venv
from serving import drive, free_port, server

TREES = 200
ROWS = 5_000
CONCURRENCY = 8
TARGET_RATIO = 10.0
LOADS = 5
BOOSTERS = ("xgboost", "lightgbm")
LABEL = "default"
LOAD_SCRIPT = """
import sys, time, warnings
warnings.simplefilter("ignore")
import mlflow.pyfunc
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    mlflow.pyfunc.load_model(sys.argv[1])
    times.append(time.perf_counter() - t)
print(sorted(times)[len(times) // 2])
"""


def booster(kind: str) -> Any:
    if kind == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=TREES, max_depth=4, n_jobs=1, random_state=0)
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=TREES, num_leaves=15, n_jobs=1, random_state=0, verbose=-1)


def build(root: Path) -> tuple[list[dict[str, Any]], dict[str, Path], dict[str, float]]:
    """The project at ``root / 'proj'`` with a deployment per booster, the MLflow model
    directories of the same fitted pipelines, one held-out record, and shipyard's load
    times."""
    import mlflow.sklearn
    from sklearn.pipeline import Pipeline

    import shipyard
    from shipyard.data.inference import infer_contract, spec_from_contract
    from shipyard.demo.data import credit_applicants

    table = credit_applicants(ROWS)
    frame = table.to_pandas()
    x, y = frame.drop(columns=[LABEL]), frame[LABEL]
    record = json.loads(x.head(1).to_json(orient="records", date_format="iso"))
    contract = infer_contract(table)
    prep = spec_from_contract(contract, target=LABEL)
    dirs: dict[str, Path] = {}
    loads: dict[str, float] = {}
    with shipyard.init_project(root / "proj", actor="alice") as project:
        project.policies.set("*", {})
        project.users.add("bob", "approver")
        bob = project.as_actor("bob")
        for kind in BOOSTERS:
            pipeline = Pipeline([("prep", prep.to_column_transformer()), ("model", booster(kind))])
            pipeline.fit(x, y)
            with project.start_run("flavors", name=kind) as run:
                ref = run.log_model(pipeline, f"credit-{kind}", input_example=x.head(20)).ref
            bob.approvals.approve(ref, comment="benchmark")
            bob.promotions.promote(ref, to="production")
            bob.deployments.set(f"credit-{kind}", {"production": 100}, comment="benchmark")
            times = []
            for _ in range(LOADS):
                started = time.perf_counter()
                project.models.load(ref)
                times.append(time.perf_counter() - started)
            loads[kind] = statistics.median(times)
            dirs[kind] = root / f"mlflow-{kind}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.sklearn.save_model(
                    pipeline,
                    dirs[kind],
                    serialization_format="cloudpickle",
                    pip_requirements=["scikit-learn", kind],
                )
    return record, dirs, loads


def in_process(root: Path, record: list[dict[str, Any]]) -> None:
    """Print, per booster, what the server's loading does to the version (compiled or not,
    and how long compiling and checking took) and the cost of one row in process: through
    the compiled form and through the pipeline and its booster (5 and 3 rounds)."""
    import math

    import pandas as pd

    import shipyard
    from shipyard.registry.compiled import compile_predictor

    frame = pd.DataFrame(record)
    rows = [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in frame.astype(object).to_dict(orient="records")
    ]

    def per_call(call: Any, calls: int, rounds: int) -> tuple[float, float, float]:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(calls):
                call()
            times.append((time.perf_counter() - started) / calls)
        return statistics.median(times), min(times), max(times)

    with shipyard.open_project(root / "proj", actor="alice") as project:
        for kind in BOOSTERS:
            ref = f"credit-{kind}@1"
            predictor = project.models.load(ref)
            started = time.perf_counter()
            compiled, note = compile_predictor(
                predictor, rows=project.models.reference_rows(ref) or None
            )
            took = time.perf_counter() - started
            print(f"  {kind:<8} {note} ({took:.2f} s)", flush=True)
            original = per_call(lambda p=predictor: p.answer(p.frame_from_records(rows)), 20, 3)
            line = f"  {kind:<8} one row in process: pipeline {original[0] * 1e3:.2f} ms "
            line += f"[{original[1] * 1e3:.2f}-{original[2] * 1e3:.2f}]"
            if compiled is not None:
                fast = per_call(lambda c=compiled: c.score(rows), 2000, 5)
                line += (
                    f", compiled {fast[0] * 1e6:.1f} us [{fast[1] * 1e6:.1f}-{fast[2] * 1e6:.1f}]"
                    f": {original[0] / fast[0]:.0f}x"
                )
            print(line, flush=True)


def mlflow_load_time(python: Path, folder: Path) -> float:
    out = subprocess.run(
        [str(python), "-c", LOAD_SCRIPT, str(folder), str(LOADS)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **MLFLOW_ENV},
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(url: str, body: bytes, seconds: float, path: str) -> tuple[float, float]:
    latencies, errors, elapsed = asyncio.run(drive(url, body, CONCURRENCY, seconds, path))
    if errors or not latencies:
        raise RuntimeError(f"{url}{path}: {errors} failed requests, {len(latencies)} answered")
    return len(latencies) / elapsed, float(np.percentile(latencies, 99) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of a measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over both servers")
    args = parser.parse_args()
    os.environ.update(MLFLOW_ENV)  # the servers started here inherit it
    # `shipyard serve` runs this checkout's code, whatever the interpreter has installed.
    import_paths = [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(import_paths)
    venv = mlflow_venv()
    prepare_mlflow_venv(venv)
    check = subprocess.run([str(venv.python), "-c", "import xgboost, lightgbm"], check=False)
    if check.returncode != 0:
        venv.pip("installing xgboost, lightgbm", "xgboost==3.2.0", "lightgbm==4.7.0")
    mlflow_bin = venv.path / "bin" / "mlflow"
    # `mlflow models serve` starts `uvicorn` from PATH: the venv's own.
    os.environ["PATH"] = f"{venv.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    with workspace("shipyard-bench-flavors-") as root:
        started = time.perf_counter()
        record, dirs, loads = build(root)
        print(
            f"two {TREES}-tree pipelines fitted on {ROWS:,} rows, registered and saved with "
            f"MLflow in {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPU(s); "
            f"concurrency {CONCURRENCY}, one row per request, {args.seconds:g} s per "
            f"measurement, {args.repeat} round(s)",
            flush=True,
        )
        in_process(root, record)
        bodies = {
            "shipyard": json.dumps({"records": record}).encode(),
            "mlflow": json.dumps({"dataframe_records": record}).encode(),
        }
        paths = {"shipyard": "/predict", "mlflow": "/invocations"}
        summary = []
        for kind in BOOSTERS:
            mlflow_load = mlflow_load_time(venv.python, dirs[kind])
            ports = {"shipyard": free_port(), "mlflow": free_port()}
            commands = {
                "shipyard": [
                    sys.executable,
                    "-m",
                    "shipyard",
                    "--project",
                    str(root / "proj"),
                    "serve",
                    f"credit-{kind}",
                    "--port",
                    str(ports["shipyard"]),
                ],
                "mlflow": [
                    str(mlflow_bin),
                    "models",
                    "serve",
                    "-m",
                    str(dirs[kind]),
                    "--env-manager",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["mlflow"]),
                ],
            }
            ready = {"shipyard": "/v2/health/ready", "mlflow": "/ping"}
            with ExitStack() as stack:
                urls = {}
                for name in ("shipyard", "mlflow"):
                    log = root / f"{name}-{kind}.log"
                    urls[name] = stack.enter_context(
                        server(commands[name], ports[name], ready[name], log, timeout=240)
                    )
                ratios, figures = [], {"shipyard": [], "mlflow": []}
                for r in range(args.repeat):
                    order = ("shipyard", "mlflow") if r % 2 == 0 else ("mlflow", "shipyard")
                    got = {}
                    for name in order:
                        got[name] = measure(urls[name], bodies[name], args.seconds, paths[name])
                        figures[name].append(got[name])
                        print(
                            f"  {kind:<8} round {r + 1}  {name:<8} {got[name][0]:8.1f} req/s  "
                            f"p99 {got[name][1]:7.2f} ms",
                            flush=True,
                        )
                    ratios.append(got["shipyard"][0] / got["mlflow"][0])
            med = {
                n: (statistics.median(f[0] for f in v), statistics.median(f[1] for f in v))
                for n, v in figures.items()
            }
            summary.append((kind, med, statistics.median(ratios), loads[kind], mlflow_load))
        print()
        print(
            "model     shipyard req/s  p99 ms   mlflow req/s  p99 ms   ratio   "
            "load: shipyard  mlflow"
        )
        ok = True
        for kind, med, ratio, load, mlflow_load in summary:
            ok &= ratio >= TARGET_RATIO
            print(
                f"{kind:<9} {med['shipyard'][0]:14.1f} {med['shipyard'][1]:7.2f} "
                f"{med['mlflow'][0]:14.1f} {med['mlflow'][1]:7.2f} {ratio:6.1f}x "
                f"{load * 1000:11.0f} ms {mlflow_load * 1000:6.0f} ms"
            )
        print(
            f"target: shipyard at least {TARGET_RATIO:g}x MLflow's requests/s: "
            + ("met" if ok else "NOT met")
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
