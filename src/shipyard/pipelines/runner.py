"""Running a pipeline's graph: pin its inputs, key each step when its inputs are known, reuse
a cached result or send the step to the executor, record every step as it ends, and stop the
dependents of a step that fails.

The steps' tracked runs are written by the task function wherever it runs; this module
writes the pipeline run and one row per step (state, cache result, key and components,
outputs), each step in one transaction with its audit event and its lineage edge from the
pipeline run.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.pipelines import records
from shipyard.pipelines.cache import CodeScanner, cache_key, environment_components
from shipyard.pipelines.dag import Dag, Input, Node, Output
from shipyard.pipelines.executors import open_executor
from shipyard.pipelines.values import output_exists
from shipyard.pipelines.worker import run_task
from shipyard.stores.lineage import add_edge

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.governance.reports import Evaluations
    from shipyard.pipelines.sources import PipelineSource
    from shipyard.registry.models import Models
    from shipyard.stores.artifacts import ArtifactStore
    from shipyard.tracking.active import ActiveRun
    from shipyard.tracking.runs import Runs

__all__ = ["RunOptions", "execute"]

KIND = "pipeline_run"


@dataclass(frozen=True)
class StepServices:
    """What a step task reads and writes through, when it runs in this process (the same
    attributes a :class:`~shipyard.Project` opened on a worker has)."""

    runs: Runs
    datasets: Datasets
    models: Models
    artifacts: ArtifactStore
    evaluations: Evaluations


@dataclass(frozen=True)
class RunOptions:
    executor: str = "local"
    workers: int = 1
    use_cache: bool = True
    resume_from: str | None = None
    #: Exact versions to read instead of resolving the graph's references again (resume).
    pins: dict[str, dict[str, str]] | None = None
    #: Tags of the pipeline's tracked run, such as ``shipyard.trigger`` (what started it).
    tags: dict[str, str] | None = None
    #: What the run did with the project's ``shipyard.lock`` (``LockedInputs.to_dict()``).
    lock: dict[str, Any] | None = None


def execute(
    ctx: ServiceContext,
    services: StepServices,
    source: PipelineSource,
    dag: Dag,
    options: RunOptions,
    progress: Progress = NO_PROGRESS,
    scanner: CodeScanner | None = None,
) -> str:
    """Run ``dag`` and return the pipeline run's id (the run is recorded even when a step
    fails; read it back for the outcome). ``scanner`` reads the steps' code (a new one by
    default); the caller can then ask it which files and packages the keys depended on."""
    root = ctx.settings.root
    pins = _pin(services, dag, options.pins)
    if scanner is None:
        scanner = CodeScanner([root, source.path.parent])
    codes = {name: scanner.step_code(node.step) for name, node in dag.nodes.items()}
    env = environment_components()
    run = services.runs.start(
        dag.pipeline,
        name=dag.pipeline,
        tags={
            **(options.tags or {}),
            "shipyard.pipeline": dag.pipeline,
            "shipyard.kind": "pipeline",
        },
        capture_code_in=source.path.parent,
        params=dag.params,
    )
    # Steps (in other processes too) link to the pipeline's run: it is stored now, not when
    # it ends.
    run.flush()
    git = _git_of(services.runs, run.id)
    for pin in pins.values():
        if pin["kind"] == "dataset":
            run.log_input(pin["ref"], context="pipeline")
    graph = dag.to_dict()
    graph["inputs"] = pins
    if options.lock is not None:
        graph["lock"] = options.lock
    started = _now_ms()
    with ctx.audited() as tx:
        records.insert_run(
            tx.conn,
            {
                "id": run.id,
                "pipeline": dag.pipeline,
                "source": _source_text(source, root),
                "status": "running",
                "executor": options.executor,
                "params": dag.params,
                "dag": graph,
                "resumed_from": options.resume_from,
                "started_at": started,
                "created_by": ctx.actor,
            },
            [{"name": n} for n in dag.nodes],
        )
        tx.record(
            "pipeline.start",
            KIND,
            run.id,
            {
                "pipeline": dag.pipeline,
                "executor": options.executor,
                "params": dag.params,
                **({"tags": options.tags} if options.tags else {}),
            },
        )
    state = _State(dag)
    base_task = {
        "root": str(root),
        "actor": ctx.actor,
        "pipeline": dag.pipeline,
        "pipeline_run": run.id,
        "experiment": dag.pipeline,
        "pipeline_file": str(source.path),
    }
    try:
        with open_executor(options.executor, workers=options.workers) as ex:
            store_code = _Once(lambda: _store_code(run, root, source, codes))
            _schedule(
                ctx, services, dag, options, state, codes, env, pins, git, base_task, ex, store_code
            )
    except BaseException as exc:
        _finish(ctx, run.id, state, f"interrupted: {type(exc).__name__}: {exc}")
        run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", str(exc))
        raise
    error = _finish(ctx, run.id, state, None)
    # Tags rather than metrics: a metric write loads numpy, a third of a cached run's time.
    run.set_tags(
        {
            "shipyard.steps": len(dag.nodes),
            "shipyard.cache_hits": state.hits,
            "shipyard.failed_steps": sum(1 for s in state.status.values() if s == "failed"),
        }
    )
    run.end("FINISHED" if error is None else "FAILED", error)
    progress.stage(f"pipeline {dag.pipeline}: {'failed' if error else 'succeeded'}")
    return run.id


class _Once:
    """Calls a function the first time it is called, and never again."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self._done = False

    def __call__(self) -> None:
        if not self._done:
            self._done = True
            self._fn()


class _State:
    def __init__(self, dag: Dag) -> None:
        self.status: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.hits = 0
        self.order = list(dag.nodes)


def _schedule(
    ctx: ServiceContext,
    services: StepServices,
    dag: Dag,
    options: RunOptions,
    state: _State,
    codes: dict[str, dict[str, Any]],
    env: dict[str, str],
    pins: dict[str, dict[str, str]],
    git: Any,
    base_task: dict[str, Any],
    ex: Any,
    store_code: _Once,
) -> None:
    run_id = base_task["pipeline_run"]
    resumed = _resumable(ctx, options.resume_from)
    pending = list(dag.nodes)
    running: dict[cf.Future[dict[str, Any]], tuple[str, str, str, dict[str, Any]]] = {}
    while pending or running:
        # The steps reused in one pass are recorded together: an all-hit run is one write.
        reused: list[tuple[str, str, str, dict[str, Any], _Reuse]] = []
        for name in list(pending):
            node = dag.nodes[name]
            blocked = [u for u in node.upstream if state.status.get(u) in ("failed", "skipped")]
            if blocked:
                pending.remove(name)
                _skip(ctx, run_id, name, blocked, state)
                continue
            if not all(state.status.get(u) == "succeeded" for u in node.upstream):
                continue
            pending.remove(name)
            args = _task_args(node, state.outputs, pins)
            components = _components(node, codes[name], env, args)
            key = cache_key(components)
            cache, reuse = _decide(ctx, services, node, key, options.use_cache, resumed)
            if reuse is not None:
                reused.append((name, cache, key, components, reuse))
                state.status[name] = "succeeded"
                state.outputs[name] = reuse.outputs
                state.hits += 1
                continue
            store_code()  # once, before the first step this run computes
            task = {
                **base_task,
                "node": name,
                "step_file": codes[name]["path"],
                "code": {"step": _code_doc(codes[name]), "git": git},
                "key": key,
                "args": args,
                "retries": node.step.retries,
                "timeout": node.step.timeout,
                "dataset": node.step.dataset,
                "model": node.step.model,
                "tags": node.step.tags,
            }
            if ex.in_process:
                future = ex.pool.submit(run_task, task, services, node.step.fn)
            else:
                future = ex.pool.submit(run_task, task)
            running[future] = (name, cache, key, components)
        if reused:
            _record_reuse(ctx, run_id, reused)
        if not running:
            continue
        done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
        for future in done:
            name, cache, key, components = running.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the executor lost the task (a worker died)
                result = {
                    "status": "failed",
                    "run_id": None,
                    "outputs": None,
                    "attempts": 1,
                    "started_at": None,
                    "ended_at": _now_ms(),
                    "error": f"the executor lost the step: {type(exc).__name__}: {exc}",
                }
            _record_result(ctx, run_id, name, cache, key, components, result)
            state.status[name] = result["status"]
            if result["status"] == "succeeded":
                state.outputs[name] = result["outputs"]
            else:
                state.errors[name] = result["error"] or "failed"


def _pin(
    services: StepServices, dag: Dag, given: dict[str, dict[str, str]] | None
) -> dict[str, dict[str, str]]:
    """Each dataset and model reference of the graph, resolved once to an exact version."""
    pins: dict[str, dict[str, str]] = {}
    for item in dag.inputs():
        label = f"{item.kind}:{item.ref}"
        if given and label in given:
            pins[label] = given[label]
            continue
        if item.kind == "dataset":
            v = services.datasets.get(item.ref)
            pins[label] = {"kind": "dataset", "ref": v.ref, "digest": v.digest}
        else:
            mv = services.models.get(item.ref)
            pins[label] = {"kind": "model", "ref": mv.ref, "digest": mv.digest}
    return pins


def _task_args(
    node: Node, outputs: dict[str, dict[str, Any]], pins: dict[str, dict[str, str]]
) -> dict[str, dict[str, Any]]:
    args: dict[str, dict[str, Any]] = {}
    for name, value in node.args.items():
        if isinstance(value, Output):
            args[name] = {"output": outputs[value.node]}
        elif isinstance(value, Input):
            args[name] = {"input": pins[f"{value.kind}:{value.ref}"]}
        elif isinstance(value, list | tuple) and value and isinstance(value[0], Output):
            args[name] = {"outputs": [outputs[v.node] for v in value]}
        elif isinstance(value, list | tuple) and value and isinstance(value[0], Input):
            args[name] = {"inputs": [pins[f"{v.kind}:{v.ref}"] for v in value]}
        else:
            args[name] = {"value": value}
    return args


def _components(
    node: Node, code: dict[str, Any], env: dict[str, str], args: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, spec in args.items():
        if "value" in spec:
            params[name] = spec["value"]
        elif "output" in spec or "input" in spec:
            inputs[name] = (spec.get("output") or spec["input"])["digest"]
        else:
            inputs[name] = [o["digest"] for o in spec.get("outputs") or spec["inputs"]]
    outputs: dict[str, Any] = {
        k: v for k, v in (("dataset", node.step.dataset), ("model", node.step.model)) if v
    }
    if node.step.tags:  # only when given, so that the keys of steps without tags stay as they were
        outputs["tags"] = dict(node.step.tags)
    return {
        "code": code["digest"],
        "modules": {m: v["digest"] for m, v in code["modules"].items()},
        "params": params,
        "inputs": inputs,
        "outputs": outputs,
        "shipyard": env["shipyard"],
        "packages": {**code["packages"], "python": env["python"]},
    }


@dataclass(frozen=True)
class _Reuse:
    run_id: str
    outputs: dict[str, Any]
    source: str  # the pipeline run it came from


def _decide(
    ctx: ServiceContext,
    services: StepServices,
    node: Node,
    key: str,
    use_cache: bool,
    resumed: dict[str, Any],
) -> tuple[str, _Reuse | None]:
    """The cache result of a step about to run, and what to reuse instead of running it."""
    prior = resumed.get(node.name)
    if prior is not None and prior.cache_key == key and output_exists(services, prior.outputs):
        return "resumed", _Reuse(prior.run_id, prior.outputs, prior.pipeline_run_id)
    if not use_cache:
        return "disabled", None
    if node.step.volatile:
        return "volatile", None
    with ctx.db.read() as conn:
        row = records.find_cached(conn, key)
    if row is None or not output_exists(services, row.outputs):
        return "miss", None
    if node.step.ttl is not None and row.ended_at < _now_ms() - node.step.ttl * 1000:
        return "expired", None
    return "hit", _Reuse(row.run_id, row.outputs, row.pipeline_run_id)


def _resumable(ctx: ServiceContext, resume_from: str | None) -> dict[str, Any]:
    """The succeeded steps of the run being resumed, by name."""
    if resume_from is None:
        return {}
    from sqlalchemy import select

    from shipyard.stores.db.tables import pipeline_steps

    with ctx.db.read() as conn:
        rows = conn.execute(
            select(pipeline_steps)
            .where(pipeline_steps.c.pipeline_run_id == resume_from)
            .where(pipeline_steps.c.status == "succeeded")
        ).all()
    return {r.name: r for r in rows}


def _record_reuse(
    ctx: ServiceContext,
    run_id: str,
    reused: list[tuple[str, str, str, dict[str, Any], _Reuse]],
) -> None:
    now = _now_ms()
    with ctx.audited() as tx:
        for name, cache, key, components, reuse in reused:
            records.update_step(
                tx.conn,
                run_id,
                name,
                {
                    "status": "succeeded",
                    "cache": cache,
                    "cache_key": key,
                    "components": components,
                    "run_id": reuse.run_id,
                    "outputs": reuse.outputs,
                    "started_at": now,
                    "ended_at": now,
                },
            )
            add_edge(tx.conn, ("run", run_id), ("run", reuse.run_id), f"reused:{name}")
        tx.record(
            "pipeline.steps",
            KIND,
            run_id,
            {
                "status": "succeeded",
                "reused": [
                    {"step": name, "cache": cache, "key": key, "from": reuse.source}
                    for name, cache, key, _, reuse in reused
                ],
            },
        )


def _record_result(
    ctx: ServiceContext,
    run_id: str,
    name: str,
    cache: str,
    key: str,
    components: dict[str, Any],
    result: dict[str, Any],
) -> None:
    with ctx.audited() as tx:
        records.update_step(
            tx.conn,
            run_id,
            name,
            {
                "status": result["status"],
                "cache": cache,
                "cache_key": key,
                "components": components,
                "run_id": result["run_id"],
                "outputs": result["outputs"],
                "attempts": result["attempts"],
                "started_at": result["started_at"],
                "ended_at": result["ended_at"],
                "error": result["error"],
            },
        )
        if result["run_id"] is not None:
            add_edge(tx.conn, ("run", run_id), ("run", result["run_id"]), f"step:{name}")
        tx.record(
            "pipeline.step",
            KIND,
            run_id,
            {
                "step": name,
                "status": result["status"],
                "cache": cache,
                "key": key,
                "run_id": result["run_id"],
                "error": result["error"],
            },
        )


def _skip(ctx: ServiceContext, run_id: str, name: str, blocked: list[str], state: _State) -> None:
    failed = [b for b in blocked if state.status.get(b) == "failed"] or blocked
    why = f"not run: upstream step {', '.join(failed)} did not succeed"
    state.status[name] = "skipped"
    state.errors[name] = why
    with ctx.audited() as tx:
        records.update_step(tx.conn, run_id, name, {"status": "skipped", "error": why})
        tx.record("pipeline.step", KIND, run_id, {"step": name, "status": "skipped"})


def _finish(ctx: ServiceContext, run_id: str, state: _State, crash: str | None) -> str | None:
    failed = [n for n in state.order if state.status.get(n) == "failed"]
    skipped = [n for n in state.order if state.status.get(n) == "skipped"]
    error = crash
    if error is None and failed:
        parts = [f"step {n} failed: {state.errors.get(n, '')}" for n in failed]
        if skipped:
            parts.append(f"not run because of it: {', '.join(skipped)}")
        error = "; ".join(parts)
    status = "succeeded" if error is None else "failed"
    with ctx.audited() as tx:
        records.finish_run(tx.conn, run_id, status, _now_ms(), error)
        tx.record("pipeline.end", KIND, run_id, {"status": status, "error": error})
    return error


def _store_code(
    run: ActiveRun, root: Path, source: PipelineSource, codes: dict[str, dict[str, Any]]
) -> None:
    """The pipeline file and every code file its steps depend on, as artifacts of the
    pipeline run (``code/<path from the project root>``): the steps' records name them by
    path and digest, and a rebuild reads them from here."""
    files = {source.path.resolve()}
    for code in codes.values():
        if "notebook" in code:  # the notebook as the step ran it: stripped
            path = Path(code["path"])
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
            run.put_artifact(f"code/{rel}", io.BytesIO(code["source"].encode("utf-8")))
        else:
            files.add(Path(code["path"]))
        files.update(
            Path(m["file"]) if Path(m["file"]).is_absolute() else root / m["file"]
            for m in code["modules"].values()
        )
    for path in sorted(files):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        if path.is_file():
            run.log_artifact(path, f"code/{rel}")


def _code_doc(code: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in code.items() if k != "path"}


def _git_of(runs: Runs, run_id: str) -> Any:
    return runs.get(run_id).code.get("git")


def _source_text(source: PipelineSource, root: Path) -> str:
    path = source.path
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return f"{shown}:{source.name}" if source.kind == "python" else shown


def _now_ms() -> int:
    return int(time.time() * 1000)
