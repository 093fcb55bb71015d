"""``shipyard pipeline``: run pipelines with content-addressed caching, and read their runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli._common import (
    JsonOpt,
    emit_json,
    open_local_project,
    parse_pairs,
    progress,
    short_digest,
    state,
    table,
    when,
)

if TYPE_CHECKING:
    from shipyard.pipelines.records import PipelineRun

app = typer.Typer(
    help="Pipelines: run (cached by content), list runs, show, explain the cache, resume.",
    no_args_is_help=True,
)

ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="local, dask (a LocalCluster of 2 workers) or dask://HOST:PORT (a running scheduler).",
    ),
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers", min=1, max=64, help="Local executor: run independent steps on N processes."
    ),
]


@app.command("run")
def run(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(metavar="FILE[:NAME]", help="pipeline.py:NAME or a YAML file.")
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A pipeline param, KEY=VALUE (repeatable).")
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params-file", help="YAML or JSON file of params.")
    ] = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 1,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, reusing nothing.")
    ] = False,
    no_lock: Annotated[
        bool,
        typer.Option(
            "--no-lock",
            help="Resolve the inputs afresh; neither read nor change shipyard.lock.",
        ),
    ] = False,
    always_record: Annotated[
        bool,
        typer.Option(
            "--always-record",
            help="Run and record a pipeline run even when nothing changed since the last "
            "identical command (which otherwise answers `up to date` and records nothing).",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Run a pipeline; steps whose key (code, local modules, params, inputs, versions) was
    computed before reuse their outputs; inputs are read at the versions shipyard.lock pins
    (those it lacks are added to it). When nothing it depends on changed since the same
    command last succeeded (files, packages, environment, the store), it answers `up to date`
    at once and records nothing (--always-record records a run anyway). Exit 1 when a step
    fails, 2 for an unknown executor or a param the pipeline does not take or cannot
    convert."""
    import os

    from shipyard._internal.discovery import CONFIG_FILE, project_root
    from shipyard._internal.fingerprints import file_digest, invocation

    # This path always runs and records: --always-record only keeps the command from being
    # answered "up to date" before it gets here (shipyard.cli.uptodate does not know it).
    del always_record
    _executor(executor)
    # The digests of the files read before the run starts, taken before they are read: the
    # fingerprint must stand for the bytes the run used, not for an edit made meanwhile.
    found = project_root(state(ctx).project)
    config = None if found is None else file_digest(os.path.join(found, CONFIG_FILE))
    given = None if params_file is None else os.path.realpath(params_file)
    params_digest = None if given is None else file_digest(given)
    params = _params(param or [], params_file)
    project = open_local_project(ctx, refuse_remote=False)
    fingerprint = invocation(str(project.root), target, param or [], params_file, no_lock)
    if found != os.path.realpath(project.root):
        fingerprint = None  # not the project found: no fingerprint rather than a wrong one
    seen = {str(project.root / CONFIG_FILE): config}
    if given is not None:
        seen[given] = params_digest
    with progress(json_) as bars:
        result = project.pipelines.run(
            target,
            params=params,
            executor=executor,
            workers=workers,
            use_cache=not no_cache,
            lock=not no_lock,
            progress=bars,
            fingerprint=fingerprint,
            seen=seen,
        )
    _report(result, json_, up_to_date=False)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 1,
    json_: JsonOpt = False,
) -> None:
    """Run a pipeline run again (same params, same input versions), re-running only the
    steps that did not succeed."""
    _executor(executor)
    project = open_local_project(ctx, refuse_remote=False)
    with progress(json_) as bars:
        result = project.pipelines.resume(run_id, executor=executor, workers=workers, progress=bars)
    _report(result, json_)


@app.command("runs")
def runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    json_: JsonOpt = False,
) -> None:
    """List pipeline runs, newest first."""
    found = open_local_project(ctx, refuse_remote=False).pipelines.list(
        pipeline=pipeline, limit=limit
    )
    if json_:
        emit_json([r.to_dict(exclude=("steps",)) for r in found])
        return
    table(
        None,
        ["run", "pipeline", "status", "started", "seconds", "steps", "cache hits", "executor"],
        [
            (
                r.id[:12],
                r.pipeline,
                r.status,
                _when(r.started_at),
                "" if r.duration_seconds is None else f"{r.duration_seconds:.2f}",
                len(r.steps),
                r.cache_hits,
                r.executor,
            )
            for r in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    format_: Annotated[
        str, typer.Option("--format", help="table or mermaid (a flowchart for docs).")
    ] = "table",
    json_: JsonOpt = False,
) -> None:
    """A pipeline run: its graph with each step's state, time and cache result (--json: the
    run as JSON; --format mermaid: a flowchart; not both)."""
    if format_ not in ("table", "mermaid"):
        raise typer.BadParameter("use table or mermaid", param_hint="--format")
    if json_ and format_ == "mermaid":
        raise typer.BadParameter(
            "--json prints the run as JSON and --format mermaid prints a flowchart; give one",
            param_hint="--format",
        )
    result = open_local_project(ctx, refuse_remote=False).pipelines.get(run_id)
    if json_:
        emit_json(result.to_dict())
        return
    if format_ == "mermaid":
        typer.echo(result.to_mermaid(), nl=False)
        return
    _print_run(result)


@app.command("explain")
def explain(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    step: Annotated[str | None, typer.Argument(metavar="[STEP]")] = None,
    json_: JsonOpt = False,
) -> None:
    """Why each step hit or missed the cache; for a miss, what changed (before → after)."""
    found = open_local_project(ctx, refuse_remote=False).pipelines.explain(run_id, step)
    if json_:
        emit_json([e.to_dict() for e in found])
        return
    for e in found:
        typer.echo(f"{e.name}: {e.reason}")
        for c in e.changes:
            item = f"{c.component}.{c.item}" if c.item else c.component
            typer.echo(f"    {item}: {_value(c.before)} -> {_value(c.after)}")


def _executor(spec: str) -> None:
    """An unknown executor is a usage error (exit 2), found before the project is opened."""
    from shipyard.errors import InvalidInputError
    from shipyard.pipelines.executors import parse_executor

    try:
        parse_executor(spec)
    except InvalidInputError as exc:
        raise typer.BadParameter(exc.message, param_hint="--executor") from None


def _params(pairs: list[str], params_file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if params_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(params_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--params-file") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("expected a mapping of params", param_hint="--params-file")
        params.update(loaded)
    params.update(parse_pairs(pairs, "--param"))
    return params


def _report(result: PipelineRun, as_json: bool, *, up_to_date: bool | None = None) -> None:
    if as_json:
        doc = result.to_dict()
        if up_to_date is not None:  # `pipeline run`, which may also answer `up to date`
            doc["up_to_date"] = up_to_date
        emit_json(doc)
    else:
        _print_run(result)
    if result.status != "succeeded":
        typer.echo(f"error: pipeline {result.pipeline} failed: {result.error}", err=True)
        raise typer.Exit(1)


def _print_run(r: PipelineRun) -> None:
    took = "" if r.duration_seconds is None else f" in {r.duration_seconds:.2f}s"
    typer.echo(
        f"pipeline run {r.id[:12]} ({r.pipeline}, {r.executor}): {r.status}{took}, "
        f"{r.cache_hits}/{len(r.steps)} steps from cache"
    )
    table(
        None,
        ["step", "status", "cache", "seconds", "run", "output", "after"],
        [
            (
                s.name,
                s.status,
                s.cache,
                "" if s.duration_seconds is None else f"{s.duration_seconds:.2f}",
                (s.run_id or "")[:12],
                _output(s.outputs),
                ", ".join(s.upstream),
            )
            for s in r.steps
        ],
    )
    if r.lock is not None:
        said = [
            f"{len(r.lock.read)} read at their pinned versions",
            *(f"{len(found)} {what}" for what, found in _lock_changes(r) if found),
        ]
        typer.echo(f"shipyard.lock: {', '.join(said)}")
        for what, found in _lock_changes(r):
            for label, exact in found.items():
                typer.echo(f"    {what:<9} {label} = {exact}")
    for s in r.steps:
        if s.error and s.status == "failed":
            typer.echo(f"{s.name} failed: {s.error}", err=True)
        if s.outputs and s.outputs.get("warning"):
            typer.echo(f"warning: step {s.name}: {s.outputs['warning']}", err=True)


def _lock_changes(r: PipelineRun) -> list[tuple[str, dict[str, str]]]:
    assert r.lock is not None
    return [
        ("added", r.lock.added),
        ("replaced", r.lock.replaced),
        ("unpinned", r.lock.unpinned),
    ]


def _output(rec: dict[str, Any] | None) -> str:
    if not rec:
        return ""
    if rec.get("ref"):
        return f"{rec['kind']} {rec['ref']}"
    return f"{rec['kind']} {short_digest(rec['digest'])}"


def _value(v: Any) -> str:
    if isinstance(v, str) and v.startswith("blake3:"):
        return short_digest(v)
    if v is None:
        return "(none)"
    return json.dumps(v, default=str)[:120]


def _when(ms: int | None) -> str:
    from datetime import UTC, datetime

    return when(None if ms is None else datetime.fromtimestamp(ms / 1000, UTC))
