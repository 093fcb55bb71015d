"""Running one step, wherever it runs: in the process that started the pipeline, in a local
process pool, or on a Dask worker on another machine.

A task is a JSON document (no pickled values: the step is found by module and name, its
inputs are output records read from the project's stores). The worker opens the project from
its settings (so a team project on PostgreSQL and S3 works from any machine), checks that the
code it loaded is the code the key was computed from, runs the step as a tracked run (with
retries and a timeout), stores what it returns, and answers with a JSON result.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, ShipyardError

if TYPE_CHECKING:
    from shipyard.pipelines.values import StepProject
    from shipyard.project import Project
    from shipyard.tracking.active import ActiveRun

__all__ = ["StepContext", "current", "run_task"]

_CURRENT: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "shipyard_step", default=None
)
_PROJECTS: dict[tuple[str, str], Project] = {}
#: Per pipeline file, the digests of the files this process imported for it.
_LOADED: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class StepContext:
    """What a running step may use: the project's datasets, models, runs, artifacts and
    evaluations (to read or register more), its tracked run (to log metrics), and the names
    of its pipeline run and node."""

    project: StepProject
    run: ActiveRun
    pipeline_run: str
    node: str


def current() -> StepContext:
    """The step running in this thread.

    >>> current().run.log_metric("auc", 0.91)        # doctest: +SKIP

    Raises:
        InvalidInputError: no step is running here.
    """
    ctx = _CURRENT.get()
    if ctx is None:
        raise InvalidInputError("no pipeline step is running here")
    return ctx


class StepTimeout(ShipyardError):
    """A step ran longer than its timeout."""

    code = "timeout"


def run_task(
    task: dict[str, Any], project: StepProject | None = None, fn: Any = None
) -> dict[str, Any]:
    """Run one step task and return its result (``status``, ``run_id``, ``outputs``,
    ``attempts``, ``started_at``, ``ended_at``, ``error``). Never raises for a failure of
    the step itself; the failure is the result.

    In the process that started the run, ``project`` (its services) and ``fn`` (the step's
    function, already loaded) are given; a worker opens the project and loads the step."""
    started = _now_ms()
    try:
        if project is None:
            project = _open(task["root"], task["actor"])
        if fn is None:
            fn = _load_step(task)
    except Exception as exc:  # the worker could not even start the step
        return _result("failed", None, None, 0, started, f"{type(exc).__name__}: {exc}")
    return _execute(project, fn, task, started)


def _execute(project: StepProject, fn: Any, task: dict[str, Any], started: int) -> dict[str, Any]:
    from shipyard.pipelines.values import store_output

    node = task["node"]
    run = project.runs.start(
        task["experiment"],
        name=f"{task['pipeline']}.{node}",
        tags={
            "shipyard.pipeline": task["pipeline"],
            "shipyard.pipeline_run": task["pipeline_run"],
            "shipyard.step": node,
            "shipyard.cache_key": task["key"],
        },
        code=task["code"],
        params={k: s["value"] for k, s in task["args"].items() if "value" in s},
    )
    attempts = 0
    error: str | None = None
    try:
        _record_inputs(project, run, task)
        with tempfile.TemporaryDirectory(prefix="shipyard-step-") as scratch:
            args = _arguments(project, task, Path(scratch))
            ctx = StepContext(project, run, task["pipeline_run"], node)
            for attempts in range(1, int(task["retries"]) + 2):
                try:
                    value = _call(fn, args, ctx, task.get("timeout"))
                except Exception as exc:
                    error = _describe(exc)
                    if attempts <= int(task["retries"]):
                        run.set_tag("shipyard.retried", str(attempts))
                    continue
                error = None
                break
            if error is not None:
                run.end("FAILED", error)
                return _result("failed", run.id, None, attempts, started, _summary(error))
            outputs = store_output(
                project,
                value,
                step=node,
                run=run,
                dataset=task.get("dataset"),
                model=task.get("model"),
                tags=task.get("tags") or {},
                message=f"pipeline {task['pipeline']}, step {node}, run {task['pipeline_run']}",
                arguments=args,
            )
    except Exception as exc:  # storing inputs or outputs failed: the step failed
        error = _describe(exc)
        run.end("FAILED", error)
        return _result("failed", run.id, None, max(attempts, 1), started, _summary(error))
    run.end("FINISHED")
    return _result("succeeded", run.id, outputs, attempts, started, None)


def _call(fn: Any, args: dict[str, Any], ctx: StepContext, timeout: float | None) -> Any:
    context = contextvars.copy_context()
    context.run(_CURRENT.set, ctx)
    if timeout is None:
        return context.run(fn, **args)
    # The step runs in a thread of its own so that the wait can stop; a step that overruns
    # is abandoned (its result, if any, is thrown away) and the attempt fails.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = context.run(fn, **args)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"shipyard-step-{ctx.node}", daemon=True)
    thread.start()
    thread.join(float(timeout))
    if thread.is_alive():
        raise StepTimeout(f"step {ctx.node} ran longer than its timeout of {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _arguments(project: StepProject, task: dict[str, Any], scratch: Path) -> dict[str, Any]:
    from shipyard.pipelines.values import load_output

    args: dict[str, Any] = {}
    for name, spec in task["args"].items():
        if "value" in spec:
            args[name] = spec["value"]
        elif "output" in spec:
            args[name] = load_output(project, spec["output"], scratch)
        elif "outputs" in spec:
            args[name] = [load_output(project, o, scratch) for o in spec["outputs"]]
        elif "input" in spec:
            args[name] = _pinned(project, spec["input"])
        elif "inputs" in spec:
            args[name] = [_pinned(project, i) for i in spec["inputs"]]
    return args


def _pinned(project: StepProject, spec: dict[str, Any]) -> Any:
    if spec["kind"] == "dataset":
        return project.datasets.get(spec["ref"])
    return project.models.get(spec["ref"])


def _record_inputs(project: StepProject, run: ActiveRun, task: dict[str, Any]) -> None:
    """The dataset inputs of the step's run: upstream tables registered as datasets, and
    pinned versions."""
    for name, spec in task["args"].items():
        for item in (
            spec.get("outputs")
            or spec.get("inputs")
            or [spec.get("output") or spec.get("input") or {}]
        ):
            if item.get("kind") == "dataset":
                run.log_input(item["ref"], context=name)


def _load_step(task: dict[str, Any]) -> Any:
    """The step's function, loaded in this process, after checking that its code (and the
    project-local modules it uses) are the code the driver computed the key from.

    A worker keeps what it imported between tasks; when a task's files differ from what this
    process loaded for that pipeline before (an edited helper), they are imported afresh."""
    from shipyard._internal.hashing import digest_file
    from shipyard.pipelines.cache import CodeScanner
    from shipyard.pipelines.dag import Step
    from shipyard.pipelines.sources import (
        find_step,
        load_module,
        module_name,
        put_first_on_path,
    )

    code = task["code"]["step"]
    pipeline_file = Path(task["pipeline_file"])
    step_file = Path(task["step_file"])
    if "notebook" in code:
        from shipyard.pipelines.notebook import load_notebook

        return load_notebook(step_file, code)
    wanted = {m: v["digest"] for m, v in code["modules"].items()}
    wanted[str(step_file)] = digest_file(step_file)[0]
    loaded = _LOADED.setdefault(str(pipeline_file), {})
    if code["module"] in sys.modules and all(loaded.get(k) == v for k, v in wanted.items()):
        # The same files as a task this process already checked: no need to scan them again.
        return find_step(code["module"], code["qualname"]).fn
    fresh = not loaded or any(loaded.get(k, v) != v for k, v in wanted.items())
    if fresh:
        loaded.clear()
    if pipeline_file.suffix == ".py":
        load_module(pipeline_file, fresh=fresh)
    else:
        put_first_on_path(pipeline_file.parent)
    if code["module"] == module_name(step_file):
        load_module(step_file, fresh=fresh and step_file != pipeline_file)
    elif code["module"] not in sys.modules:
        importlib.import_module(code["module"])
    fn = find_step(code["module"], code["qualname"]).fn
    here = CodeScanner([Path(task["root"]), pipeline_file.parent]).step_code(Step(fn))
    if here["digest"] != code["digest"] or here["modules"] != code["modules"]:
        raise InvalidInputError(
            f"the code of step {task['node']} on this worker differs from the code the run "
            "started with; give workers the same project files"
        )
    loaded.update(wanted)
    return fn


def _open(root: str, actor: str) -> Project:
    from shipyard.project import open_project

    key = (root, actor)
    project = _PROJECTS.get(key)
    if project is None:
        project = _PROJECTS[key] = open_project(root, actor=actor)
    return project


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-4000:]


def _summary(error: str) -> str:
    lines = [ln for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else error


def _result(
    status: str,
    run_id: str | None,
    outputs: dict[str, Any] | None,
    attempts: int,
    started: int,
    error: str | None,
) -> dict[str, Any]:
    return {
        "status": status,
        "run_id": run_id,
        "outputs": outputs,
        "attempts": attempts,
        "started_at": started,
        "ended_at": _now_ms(),
        "error": error,
    }


def _now_ms() -> int:
    return int(time.time() * 1000)
