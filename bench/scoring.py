"""Benchmark: shipyard's compiled scoring against ONNX Runtime and plain scikit-learn, one row
at a time, in process and behind a web server.

Should the model server keep its hand-written compilation of fitted pipelines
(``shipyard.registry.compiled``) or call a maintained library? This measures, in one run, three
models fitted on the demo's synthetic credit data (``credit_applicants``, seed 7: ``--rows``
training rows, 20,000 by default, and 5,000 held out), each behind the demo's preprocessing
(``spec_from_contract(infer_contract(train), target="default").to_column_transformer()``, which
drops ``applicant_id`` as unique and ``application_date`` as a date):

- ``logistic``: LogisticRegression(max_iter=1000), the demo's linear candidate;
- ``hist-gbm``: HistGradientBoostingClassifier(max_iter=150, max_depth=4, random_state=0),
  the demo's boosted candidate; past 10,000 rows its early stopping is on, and it stops well
  before 150 trees (``--full-boosting`` turns early stopping off to grow all 150);
- ``forest``: RandomForestClassifier(n_estimators=100, random_state=0), depth not capped
  (scikit-learn's default; about 875,000 nodes, 34 MB of ONNX, memory is no problem) unless
  ``--forest-depth`` says so.

Each is scored four ways, every one answering like the server does (``{"prediction": ...,
"probabilities": {...}}`` per row) from rows as the server passes them (the signature's pydantic
model applied to JSON records: Python values, datetimes for dates, None for missing):

- ``compiled``: ``compile_predictor(CheckedPredictor(model, signature))``, then
  ``compiled.score([row])``;
- ``onnx``: the pipeline converted by skl2onnx and run by an onnxruntime InferenceSession
  (one thread), with one ONNX input per column the preprocessing uses; building the input feed
  from the row counts. Adaptations, all forced by the converter or the runtime: numbers go in
  as float32 (ONNX Runtime has no double Imputer, and ai.onnx.ml's TreeEnsembleClassifier
  answers float only), the two dropped columns are not inputs, the text imputers are converted
  from a copy whose ``missing_values`` is ``""`` (skl2onnx refuses NaN for strings; a missing
  category is sent as ``""``), class probabilities come as a tensor (``zipmap`` off), and
  protobuf stays below 7 (skl2onnx 1.20 writes a Python bool into an integer attribute for
  HistGradientBoosting, which protobuf 7 refuses);
- ``numpy``: scikit-learn on NumPy arrays under ``config_context(assume_finite=True,
  skip_parameter_validation=True)``: a copy of the pipeline whose ColumnTransformer selects
  columns by position, fitted on the same training rows as an object array, scoring
  ``np.array([row_values], dtype=object)``;
- ``pandas``: scikit-learn on a one-row DataFrame, today's fallback
  (``CheckedPredictor.answer(predictor.frame_from_records(rows))``).

Figures per model and path: one-off preparation (compiling, or converting and opening the
session), single-row latency (median and p99 over ``--calls`` calls on distinct held-out rows
after a warm-up), rows/s in 100-row batches (median batch time), both timed in five slices that
take the paths in turn so that the machine's speed drifting touches all of them, correctness on
the first 1,000 of those held-out rows (labels equal to the pipeline's ``predict()`` and the
largest absolute difference from its ``predict_proba``), and server throughput: for each path a
minimal FastAPI app on uvicorn (uvloop, httptools, one worker) that reads the body with orjson,
validates the row with the signature's pydantic model, scores it inline and answers JSON,
beside a bare endpoint that answers a constant. bench/serving.py's raw-socket load generator
drives each at concurrency 8 with single-row requests for ``--seconds`` after a one-second
warm-up, in ``--repeat`` rounds that take the servers in a rotating order; requests/s and p99
are medians over the rounds, with their spread. Every server listens on 127.0.0.1 and runs
throughout; NumPy's and OpenMP's thread pools are held to one thread everywhere, as
onnxruntime's is (single rows gain nothing from them, and the two-core machine also runs the
load generator).

    python bench/scoring.py                     # about 10-15 minutes
    python bench/scoring.py --rows 5000 --calls 300 --seconds 1 --repeat 1   # a quick look

skl2onnx and onnxruntime are not shipyard dependencies: the script makes its own virtual
environment in bench/.work/scoring-venv (shipyard installed editable from this checkout with
constraints.txt, plus skl2onnx, onnxruntime and uvicorn[standard]; done again only when
pyproject.toml, constraints.txt or the list below change) and re-runs itself inside it.
Servers and temporary folders are removed on exit. Never a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import os
import pickle
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from _venv import BenchVenv, digest, workspace

REPO = Path(__file__).resolve().parents[1]
#: Installed beside shipyard in the benchmark's own environment (bump to re-evaluate).
EXTRA_REQUIREMENTS = ("skl2onnx==1.20.0", "onnxruntime==1.32.0", "protobuf<7", "uvicorn[standard]")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

LABEL = "default"
HELD_OUT = 5_000
CHECKED_ROWS = 1_000
WARMUP_CALLS = 200
BATCH_ROWS = 100
CALL_SECONDS_CAP = 180.0  # per model and path, whatever --calls says
IN_PROCESS_SLICES = 5
CONCURRENCY = 8
MODELS = ("logistic", "hist-gbm", "forest")
PATHS = ("compiled", "onnx", "numpy", "pandas")
LIBRARY_PATHS = ("onnx", "numpy", "pandas")
BARE = "bare"

Answer = dict[str, Any]
Scorer = Callable[[Sequence[dict[str, Any]]], list[Answer]]


# -- its own environment ------------------------------------------------------------------------


def bench_venv() -> BenchVenv:
    """bench/.work/scoring-venv: shipyard editable with constraints.txt, plus
    EXTRA_REQUIREMENTS; made again when pyproject.toml, constraints.txt or the list change."""
    key = digest(
        (REPO / "pyproject.toml").read_bytes(),
        (REPO / "constraints.txt").read_bytes(),
        "\n".join(EXTRA_REQUIREMENTS),
    )
    return BenchVenv("scoring-venv", key)


def enter_bench_venv(venv: BenchVenv) -> None:
    """Make the benchmark's venv if it is missing or stale, then re-run this script in it
    (with one-thread pools); never returns."""
    if not venv.ready():
        venv.create()
        # The test suite's pins, less protobuf's: the mlflow test client's pin (7.x) is one
        # skl2onnx cannot use (see the module's notes).
        pins = [
            line
            for line in (REPO / "constraints.txt").read_text().splitlines()
            if not line.lower().startswith("protobuf==")
        ]
        constraints = REPO / "bench" / ".work" / "scoring-constraints.txt"
        constraints.parent.mkdir(parents=True, exist_ok=True)
        constraints.write_text("\n".join(pins) + "\n")
        venv.pip(
            "installing shipyard, " + ", ".join(EXTRA_REQUIREMENTS),
            *("-c", str(constraints), "-e", str(REPO), *EXTRA_REQUIREMENTS),
        )
        venv.mark_ready()
    env = {**os.environ, **{v: os.environ.get(v, "1") for v in THREAD_VARIABLES}}
    env["SHIPYARD_BENCH_SCORING"] = "1"
    venv.exec(Path(__file__).resolve(), sys.argv[1:], env)


# -- the models -----------------------------------------------------------------------------------


@dataclass
class Bundle:
    """One fitted model and everything each path needs to score it (pickled for the servers)."""

    name: str
    pipeline: Any  # the demo's Pipeline: the ColumnTransformer selects columns by name
    array_pipeline: Any  # the same, selecting by position, fitted on an object array
    signature: dict[str, Any]
    onnx: bytes
    onnx_inputs: list[tuple[str, bool]]  # (column, is text), in the ONNX graph's order
    prep_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def estimator(name: str, args: argparse.Namespace) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if name == "logistic":
        return LogisticRegression(max_iter=1000)
    if name == "hist-gbm":
        stopping = False if args.full_boosting else "auto"
        return HistGradientBoostingClassifier(
            max_iter=150, max_depth=4, random_state=0, early_stopping=stopping
        )
    return RandomForestClassifier(n_estimators=100, max_depth=args.forest_depth, random_state=0)


def positional(pipeline: Any, columns: list[str]) -> Any:
    """An unfitted copy of ``pipeline`` whose ColumnTransformer selects by column position
    (in ``columns`` order) and returns arrays: it can be fitted on, and score, NumPy arrays."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    prep = clone(pipeline.steps[0][1])
    where = {c: i for i, c in enumerate(columns)}
    prep.transformers = [(name, t, [where[c] for c in cols]) for name, t, cols in prep.transformers]
    prep.set_output(transform="default")
    return Pipeline([("prep", prep), ("model", clone(pipeline.steps[-1][1]))])


def to_onnx(pipeline: Any, text: set[str]) -> tuple[bytes, list[tuple[str, bool]]]:
    """The pipeline as ONNX, one input per column the preprocessing uses (see the module
    docstring for the adaptations)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.impute import SimpleImputer

    ready = copy.deepcopy(pipeline)
    inputs: list[tuple[str, bool]] = []
    for _, transformer, columns in ready.steps[0][1].transformers_:
        if isinstance(transformer, str):  # "drop" (the remainder): not an input
            continue
        inputs += [(c, c in text) for c in columns]
        if all(c in text for c in columns):
            for _, stage in getattr(transformer, "steps", [("", transformer)]):
                if isinstance(stage, SimpleImputer):
                    stage.missing_values = ""  # NaN cannot stand for a missing string in ONNX
    types = [
        (c, StringTensorType([None, 1]) if t else FloatTensorType([None, 1])) for c, t in inputs
    ]
    model = convert_sklearn(
        ready, initial_types=types, options={id(ready.steps[-1][1]): {"zipmap": False}}
    )
    return model.SerializeToString(), inputs


def build(args: argparse.Namespace) -> tuple[dict[str, Bundle], list[dict[str, Any]], Any]:
    """The three bundles, the held-out records (JSON, as clients send them) and the held-out
    frame (as the pipelines were fitted on)."""
    from sklearn.pipeline import Pipeline

    from shipyard.data.inference import infer_contract, spec_from_contract
    from shipyard.demo.data import credit_applicants
    from shipyard.registry.signatures import infer_signature

    started = time.perf_counter()
    data = credit_applicants(args.rows + HELD_OUT, seed=7)
    train_pl, held_pl = data.head(args.rows), data.tail(HELD_OUT)
    spec = spec_from_contract(infer_contract(train_pl), target=LABEL)
    dropped = sorted(c for c, s in spec.to_dict()["columns"].items() if s.get("drop"))
    train, held = train_pl.to_pandas(), held_pl.to_pandas()
    x, y = train.drop(columns=[LABEL]), train[LABEL]
    held_x = held.drop(columns=[LABEL])
    records = json.loads(held_x.to_json(orient="records", date_format="iso"))
    print(
        f"data: {len(x):,} training rows, {len(held_x):,} held out, {x.shape[1]} columns; "
        f"the preprocessing drops {', '.join(dropped)} ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    bundles = {}
    for name in MODELS:
        t = time.perf_counter()
        prep = spec.to_column_transformer()
        pipeline = Pipeline([("prep", prep), ("model", estimator(name, args))])
        pipeline.fit(x, y)
        fit_seconds = time.perf_counter() - t
        signature = infer_signature(pipeline, x.head(20))
        columns = signature.columns
        t = time.perf_counter()
        array_pipeline = positional(pipeline, columns).fit(x[columns].to_numpy(dtype=object), y)
        array_seconds = time.perf_counter() - t
        text = {c for c, s in signature.inputs.columns.items() if s.type in ("string", "category")}
        t = time.perf_counter()
        onnx, inputs = to_onnx(pipeline, text)
        convert_seconds = time.perf_counter() - t
        bundle = Bundle(name, pipeline, array_pipeline, signature.to_dict(), onnx, inputs)
        bundle.prep_seconds["onnx convert"] = convert_seconds
        model = pipeline.steps[-1][1]
        if name == "hist-gbm":
            stopping = "off" if args.full_boosting else "on past 10,000 rows"
            bundle.notes.append(f"{model.n_iter_} boosting iterations (early stopping {stopping})")
        if name == "forest":
            nodes = sum(t.tree_.node_count for t in model.estimators_)
            depth = max(t.tree_.max_depth for t in model.estimators_)
            bundle.notes.append(f"{nodes:,} nodes, deepest tree {depth}")
        bundle.notes.append(
            f"fitted in {fit_seconds:.1f} s (on an object array: {array_seconds:.1f} s); "
            f"ONNX {len(onnx) / 1e6:.1f} MB, {len(inputs)} inputs"
        )
        print(f"model {name}: " + "; ".join(bundle.notes), flush=True)
        bundles[name] = bundle
    return bundles, records, held_x


# -- the paths ------------------------------------------------------------------------------------


def answers_from(proba: Any, labels: list[Any], names: list[str]) -> list[Answer]:
    """Answers from a probability matrix, as CheckedPredictor.answer gives them."""
    out = []
    for p in proba.tolist():
        best = max(range(len(p)), key=p.__getitem__)
        out.append({"prediction": labels[best], "probabilities": dict(zip(names, p, strict=True))})
    return out


def onnx_feed(inputs: list[tuple[str, bool]]) -> Callable[[Sequence[dict[str, Any]]], Any]:
    """The function that turns rows into the session's input feed: one (n, 1) array per
    column, float32 for numbers (None becomes NaN), objects for text (None becomes "")."""
    import numpy as np

    as_float = np.float32

    def feed(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for name, text in inputs:
            if text:
                values = [("" if r[name] is None else r[name]) for r in rows]
                out[name] = np.array(values, dtype=object).reshape(-1, 1)
            else:
                out[name] = np.array([r[name] for r in rows], dtype=as_float).reshape(-1, 1)
        return out

    return feed


def make_scorer(path: str, bundle: Bundle) -> tuple[Scorer | None, float, str]:
    """The scoring function of ``path`` for ``bundle``, its preparation time in seconds and a
    note (why not, for a pipeline that does not compile)."""
    import numpy as np

    from shipyard.registry.signatures import CheckedPredictor, Signature

    signature = Signature.from_dict(bundle.signature)
    labels = list(signature.outputs["classes"])
    names = [str(c) for c in labels]
    started = time.perf_counter()
    if path == "compiled":
        from shipyard.registry.compiled import compile_predictor

        compiled, why = compile_predictor(CheckedPredictor(bundle.pipeline, signature))
        return (compiled.score if compiled else None), time.perf_counter() - started, why
    if path == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(bundle.onnx, options, providers=["CPUExecutionProvider"])
        run = session.run
        feed = onnx_feed(bundle.onnx_inputs)
        outputs = [o.name for o in session.get_outputs()]  # label, probabilities

        def onnx_score(rows: Sequence[dict[str, Any]]) -> list[Answer]:
            label, proba = run(outputs, feed(rows))
            return [
                {"prediction": lab, "probabilities": dict(zip(names, p, strict=True))}
                for lab, p in zip(label.tolist(), proba.tolist(), strict=True)
            ]

        return onnx_score, time.perf_counter() - started, "float32 inputs"
    if path == "numpy":
        import sklearn

        model = bundle.array_pipeline
        columns = signature.columns
        nan = math.nan

        def numpy_score(rows: Sequence[dict[str, Any]]) -> list[Answer]:
            x = np.array(
                [[nan if r[c] is None else r[c] for c in columns] for r in rows], dtype=object
            )
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                proba = model.predict_proba(x)
            return answers_from(proba, labels, names)

        return numpy_score, 0.0, ""
    predictor = CheckedPredictor(bundle.pipeline, signature)

    def pandas_score(rows: Sequence[dict[str, Any]]) -> list[Answer]:
        return predictor.answer(predictor.frame_from_records(list(rows)))

    return pandas_score, 0.0, ""


# -- in process -----------------------------------------------------------------------------------


@dataclass
class InProcess:
    model: str
    path: str
    prep: str
    calls: int
    p50_us: float
    p99_us: float
    batch_rows_per_s: float
    checked: int
    labels_equal: int
    max_dp: float
    feed_p50_us: float = math.nan  # onnx: building the input feed alone


def timed_calls(
    score: Scorer, rows: list[dict[str, Any]], indexes: range, deadline: float
) -> tuple[list[int], list[Answer]]:
    """Nanoseconds of one single-row call per row index (cycling over ``rows``), and the
    answers; stops early past ``deadline`` (``time.perf_counter``)."""
    clock = time.perf_counter_ns
    times: list[int] = []
    answers: list[Answer] = []
    for i in indexes:
        row = [rows[i % len(rows)]]
        start = clock()
        answer = score(row)
        times.append(clock() - start)
        answers.append(answer[0])
        if time.perf_counter() > deadline:
            break
    return times, answers


def timed_batches(
    score: Scorer, batches: list[list[dict[str, Any]]], seconds: float
) -> list[float]:
    """Seconds per call on BATCH_ROWS-row batches: at least one, for about ``seconds``."""
    times: list[float] = []
    started = time.perf_counter()
    while not times or (time.perf_counter() - started < seconds and len(times) < 200):
        batch = batches[len(times) % len(batches)]
        t = time.perf_counter()
        score(batch)
        times.append(time.perf_counter() - t)
    return times


def in_process(
    bundles: dict[str, Bundle], records: list[dict[str, Any]], held_x: Any, calls: int
) -> list[InProcess]:
    """Per model: prepare every path, then time them in IN_PROCESS_SLICES slices taken in turn
    (a slice of the single-row calls, then about a fifth of a second of 100-row batches), so
    that the machine's speed drifting touches every path alike."""
    from shipyard.registry.signatures import Signature

    results = []
    for name, bundle in bundles.items():
        signature = Signature.from_dict(bundle.signature)
        validator = signature.inputs.to_pydantic()
        rows = [validator.model_validate(r).model_dump(by_alias=True) for r in records]
        batches = [
            rows[i : i + BATCH_ROWS] for i in range(0, len(rows) - BATCH_ROWS + 1, BATCH_ROWS)
        ]
        scorers: dict[str, Scorer] = {}
        preps: dict[str, str] = {}
        for path in PATHS:
            score, seconds, note = make_scorer(path, bundle)
            if path == "compiled":
                preps[path] = f"{seconds:.2f} s"
            elif path == "onnx":
                convert = bundle.prep_seconds["onnx convert"]
                preps[path] = f"{convert + seconds:.2f} s ({convert:.2f} + session {seconds:.2f})"
            else:
                preps[path] = "-"
            if score is None:
                print(f"  {name:<9} {path:<9} {note}", flush=True)
                continue
            for i in range(WARMUP_CALLS):  # on rows the timed calls do not use
                score([rows[-1 - i % len(rows)]])
            score(batches[0])
            scorers[path] = score
        times: dict[str, list[int]] = {p: [] for p in scorers}
        answers: dict[str, list[Answer]] = {p: [] for p in scorers}
        batch_times: dict[str, list[float]] = {p: [] for p in scorers}
        deadline = {p: time.perf_counter() + CALL_SECONDS_CAP for p in scorers}
        per_slice = math.ceil(calls / IN_PROCESS_SLICES)
        order = list(scorers)
        for k in range(IN_PROCESS_SLICES):
            for path in order[k % len(order) :] + order[: k % len(order)]:
                indexes = range(k * per_slice, min(calls, (k + 1) * per_slice))
                if len(times[path]) == k * per_slice:  # not cut short by the deadline
                    t, a = timed_calls(scorers[path], rows, indexes, deadline[path])
                    times[path] += t
                    answers[path] += a
                batch_times[path] += timed_batches(scorers[path], batches, 0.2)
        n = min(CHECKED_ROWS, calls, len(rows))
        want_labels = bundle.pipeline.predict(held_x.iloc[:n]).tolist()
        want_proba = bundle.pipeline.predict_proba(held_x.iloc[:n]).tolist()
        names = [str(c) for c in signature.outputs["classes"]]
        for path in scorers:
            p50, p99 = (v / 1000 for v in _percentiles(times[path], (50, 99)))
            rate = BATCH_ROWS / statistics.median(batch_times[path])
            got = answers[path][:n]
            equal = sum(a["prediction"] == w for a, w in zip(got, want_labels, strict=False))
            diffs = [
                abs(a["probabilities"][c] - p[k])
                for a, p in zip(got, want_proba, strict=False)
                for k, c in enumerate(names)
            ]
            dp = max(diffs, default=math.nan)
            result = InProcess(
                name, path, preps[path], len(times[path]), p50, p99, rate, len(got), equal, dp
            )
            if path == "onnx":
                result.feed_p50_us = feed_cost(bundle, rows, calls)
            results.append(result)
            print(
                f"  {name:<9} {path:<9} p50 {p50:9.1f} us  p99 {p99:9.1f} us  "
                f"{rate:11,.0f} rows/s in batches  labels {equal}/{len(got)}  max|dp| {dp:.1e}",
                flush=True,
            )
    return results


def feed_cost(bundle: Bundle, rows: list[dict[str, Any]], calls: int) -> float:
    """Median microseconds to build the ONNX input feed from one row (at most 10 s)."""
    feed = onnx_feed(bundle.onnx_inputs)
    clock = time.perf_counter_ns
    times = []
    deadline = time.perf_counter() + 10
    for i in range(calls):
        row = [rows[i % len(rows)]]
        start = clock()
        feed(row)
        times.append(clock() - start)
        if time.perf_counter() > deadline:
            break
    return statistics.median(times) / 1000


def _percentiles(values: Any, qs: tuple[float, ...]) -> list[float]:
    import numpy as np

    return [float(v) for v in np.percentile(values, qs)] if len(values) else [math.nan] * len(qs)


# -- servers --------------------------------------------------------------------------------------


def serve(state: str, target: str, port: str) -> int:
    """A minimal scoring server for ``target`` (``model/path``, or ``bare``) on 127.0.0.1."""
    import orjson
    import uvicorn

    from shipyard.registry.signatures import Signature

    app = FastAPI()
    if target == BARE:
        constant = orjson.dumps({"predictions": [{"prediction": 0}]})

        @app.post("/predict")
        async def bare(request: Request) -> Response:
            await request.body()
            return Response(constant, media_type="application/json")

    else:
        model, path = target.split("/")
        with open(Path(state) / f"{model}.pkl", "rb") as f:
            bundle = pickle.load(f)
        score, _, note = make_scorer(path, bundle)
        if score is None:
            sys.exit(f"{target}: {note}")
        validator = Signature.from_dict(bundle.signature).inputs.to_pydantic()
        loads, dumps = orjson.loads, orjson.dumps

        @app.post("/predict")
        async def predict(request: Request) -> Response:
            doc = loads(await request.body())
            rows = [validator.model_validate(r).model_dump(by_alias=True) for r in doc["records"]]
            return Response(dumps({"predictions": score(rows)}), media_type="application/json")

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b"{}", media_type="application/json")

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(port),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    return 0


@dataclass
class Round:
    target: str
    rps: float
    p99_ms: float
    errors: int


def load(url: str, body: bytes, seconds: float) -> tuple[float, float, int]:
    """Requests/s, p99 (ms) and failures of one measurement with bench/serving.py's load
    generator, bounded in time whatever the server does."""
    from serving import WARMUP_SECONDS, drive

    try:
        latencies, errors, elapsed = asyncio.run(
            asyncio.wait_for(
                drive(url, body, CONCURRENCY, seconds), timeout=WARMUP_SECONDS + seconds + 60
            )
        )
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
        print(f"    measurement failed: {type(exc).__name__}: {exc}", flush=True)
        return math.nan, math.nan, 1
    (p99,) = _percentiles(latencies, (99,))
    return len(latencies) / elapsed, p99 * 1000, errors


def servers(
    args: argparse.Namespace,
    bundles: dict[str, Bundle],
    paths: dict[str, list[str]],
    record: dict[str, Any],
    workdir: Path,
) -> list[Round]:
    from serving import free_port, server

    for name, bundle in bundles.items():
        with open(workdir / f"{name}.pkl", "wb") as f:
            pickle.dump(bundle, f, protocol=pickle.HIGHEST_PROTOCOL)
    targets = [BARE] + [f"{m}/{p}" for m in bundles for p in paths[m]]
    body = json.dumps({"records": [record]}).encode()
    rounds: list[Round] = []
    with ExitStack() as stack:
        urls = {}
        started = time.perf_counter()
        for target in targets:
            port = free_port()
            command = [sys.executable, str(Path(__file__).resolve())]
            command += ["serve", str(workdir), target, str(port)]
            log = workdir / f"{target.replace('/', '-')}.log"
            urls[target] = stack.enter_context(server(command, port, "/ready", log, timeout=300))
        print(
            f"{len(targets)} servers ready in {time.perf_counter() - started:.0f} s; "
            f"concurrency {CONCURRENCY}, single-row requests, {args.seconds:g} s per "
            f"measurement after 1 s warm-up, {args.repeat} round(s)",
            flush=True,
        )
        for r in range(args.repeat):
            shift = r % len(targets)
            for target in targets[shift:] + targets[:shift]:
                rps, p99, errors = load(urls[target], body, args.seconds)
                rounds.append(Round(target, rps, p99, errors))
                print(
                    f"  round {r + 1}  {target:<18} {rps:8.1f} req/s  p99 {p99:7.2f} ms"
                    + (f"  {errors} errors" if errors else ""),
                    flush=True,
                )
    return rounds


# -- report ---------------------------------------------------------------------------------------


def spread(values: list[float], fmt: str) -> str:
    ok = [v for v in values if not math.isnan(v)]
    if not ok:
        return "n/a"
    return f"{statistics.median(ok):{fmt}} [{min(ok):{fmt}}-{max(ok):{fmt}}]"


def report(results: list[InProcess], rounds: list[Round], args: argparse.Namespace) -> None:
    print()
    print(f"== in process: {args.calls:,} single-row calls per path on held-out rows ==")
    header = (
        f"{'model':<9} {'path':<9} {'prep (one-off)':<30} {'p50 us':>9} {'p99 us':>9} "
        f"{'rows/s (100-row)':>17} {'labels equal':>13} {'max |dp|':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.calls < args.calls:
            print(f"({r.model}/{r.path}: {r.calls} calls, cut at {CALL_SECONDS_CAP:g} s)")
        print(
            f"{r.model:<9} {r.path:<9} {r.prep:<30} {r.p50_us:>9.1f} {r.p99_us:>9.1f} "
            f"{r.batch_rows_per_s:>17,.0f} {f'{r.labels_equal}/{r.checked}':>13} {r.max_dp:>9.1e}"
        )
    by_target: dict[str, list[Round]] = {}
    for x in rounds:
        by_target.setdefault(x.target, []).append(x)
    if by_target:
        server_table(by_target, args)
    reading(results, by_target)


def server_table(by_target: dict[str, list[Round]], args: argparse.Namespace) -> None:
    print()
    print(
        f"== server: concurrency {CONCURRENCY}, single-row requests, medians over "
        f"{args.repeat} round(s) of {args.seconds:g} s [min-max] =="
    )
    header = f"{'target':<18} {'requests/s':>26} {'p99 ms':>24} {'errors':>7} {'of bare':>8}"
    print(header)
    print("-" * len(header))
    bare = {i: x.rps for i, x in enumerate(by_target.get(BARE, []))}
    for target, runs in by_target.items():
        ratios = [x.rps / bare[i] for i, x in enumerate(runs) if bare.get(i)]
        share = f"{statistics.median(ratios):.0%}" if ratios else "-"
        print(
            f"{target:<18} {spread([x.rps for x in runs], ',.0f'):>26} "
            f"{spread([x.p99_ms for x in runs], '.2f'):>24} {sum(x.errors for x in runs):>7} "
            f"{share:>8}"
        )


def reading(results: list[InProcess], by_target: dict[str, list[Round]]) -> None:
    print()
    print("== reading: compiled against the best library path (onnx, numpy, pandas) ==")
    for model in MODELS:
        mine = {r.path: r for r in results if r.model == model}
        if "compiled" not in mine:
            print(f"{model}: not compiled")
            continue
        fastest = min(mine.values(), key=lambda r: r.p50_us)
        library = [mine[p] for p in LIBRARY_PATHS if p in mine]
        best = min(library, key=lambda r: r.p50_us)
        print(
            f"{model}: single row fastest {fastest.path} ({fastest.p50_us:.1f} us); compiled "
            f"{mine['compiled'].p50_us:.1f} us vs {best.path} {best.p50_us:.1f} us: "
            f"compiled {times_faster(best.p50_us / mine['compiled'].p50_us)}"
        )
        if "onnx" in mine:
            print(
                f"{' ' * len(model)}  (onnx {mine['onnx'].p50_us:.1f} us, of which "
                f"{mine['onnx'].feed_p50_us:.1f} us build its input feed from the row)"
            )
        served = {
            t.split("/")[1]: (median_ok([x.rps for x in runs]), median_ok([x.p99_ms for x in runs]))
            for t, runs in by_target.items()
            if t.startswith(model + "/")
        }
        served = {p: v for p, v in served.items() if not math.isnan(v[0])}
        if "compiled" in served and any(p in served for p in LIBRARY_PATHS):
            top = max(served, key=lambda p: served[p][0])
            lib = max((p for p in LIBRARY_PATHS if p in served), key=lambda p: served[p][0])
            (ours, our_p99), (theirs, their_p99) = served["compiled"], served[lib]
            pairs = zip(by_target[f"{model}/compiled"], by_target[f"{model}/{lib}"], strict=True)
            ratios = [a.rps / b.rps for a, b in pairs if a.rps > 0 and b.rps > 0]
            print(
                f"{' ' * len(model)}  under load fastest {top} ({served[top][0]:,.0f} req/s); "
                f"compiled {ours:,.0f} req/s, p99 {our_p99:.1f} ms vs {lib} {theirs:,.0f} req/s, "
                f"p99 {their_p99:.1f} ms; compiled/{lib} requests/s in the same round: "
                f"{spread(ratios, '.2f')}"
            )


def median_ok(values: list[float]) -> float:
    """The median of the values that are not NaN (a failed measurement), or NaN."""
    ok = [v for v in values if not math.isnan(v)]
    return statistics.median(ok) if ok else math.nan


def times_faster(ratio: float) -> str:
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def versions() -> str:
    names = ("scikit-learn", "skl2onnx", "onnxruntime", "onnx", "protobuf", "numpy", "pandas")
    names += ("fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "orjson")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (missing)")
    return ", ".join(found)


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        return serve(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    parser.add_argument("--calls", type=int, default=2_000, help="single-row calls per path")
    parser.add_argument("--seconds", type=float, default=4.0, help="per server measurement")
    parser.add_argument("--repeat", type=int, default=5, help="rounds over every server")
    parser.add_argument(
        "--forest-depth", type=int, default=None, help="cap the random forest's max_depth"
    )
    parser.add_argument(
        "--full-boosting",
        action="store_true",
        help="no early stopping: HistGradientBoosting grows all 150 trees",
    )
    parser.add_argument("--no-servers", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    venv = bench_venv()
    if not venv.active():
        if os.environ.get("SHIPYARD_BENCH_SCORING"):
            sys.exit(f"expected to run in {venv.path}, running in {sys.prefix}")
        enter_bench_venv(venv)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPU(s); {versions()}; "
        + ", ".join(f"{v}={os.environ.get(v, '')}" for v in THREAD_VARIABLES),
        flush=True,
    )
    started = time.perf_counter()
    with workspace("shipyard-bench-scoring-") as workdir:
        bundles, records, held_x = build(args)
        print("in process:", flush=True)
        results = in_process(bundles, records, held_x, args.calls)
        paths = {m: [r.path for r in results if r.model == m] for m in bundles}
        rounds = [] if args.no_servers else servers(args, bundles, paths, records[0], workdir)
        report(results, rounds, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
