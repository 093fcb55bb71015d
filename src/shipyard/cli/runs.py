"""``shipyard runs`` and ``shipyard experiments``: tracked training runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard._internal.words import count
from shipyard.cli._common import (
    JsonOpt,
    console,
    emit_json,
    open_local_project,
    open_project,
    table,
    when,
)

if TYPE_CHECKING:
    from shipyard.tracking.runs import RunInfo

app = typer.Typer(
    help="Tracked runs: their parameters, metrics and artifacts, compared side by side.",
)
experiments_app = typer.Typer(help="Experiments: named groups of runs.")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        from shipyard.tracking.metric_values import metric_text

        return metric_text(value)
    return "" if value is None else str(value)


def _when(ms: int | None) -> str:
    """A time stored as epoch milliseconds, as every command prints times."""
    from datetime import UTC, datetime

    return when(None if ms is None else datetime.fromtimestamp(ms / 1000, UTC))


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option(help="Only runs of this experiment.")] = None,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="MLflow-style filter, e.g. \"metrics.auc > 0.8 and params.model = 'gbm'\".",
        ),
    ] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help='e.g. "metrics.auc DESC".')
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many runs.", min=1)] = None,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted runs.")] = False,
    json_: JsonOpt = False,
) -> None:
    """List runs, newest first unless --order-by."""
    items = open_project(ctx).runs.list(
        experiment=experiment,
        filter=filter_,
        order_by=order_by,
        limit=limit,
        include_deleted=deleted,
    )
    if json_:
        emit_json([r.to_dict(exclude=r.DETAILS) for r in items])
        return
    if not items:
        typer.echo("no runs match")
        return
    metric_keys = sorted({k for r in items for k in r.metrics if not k.startswith("system.")})[:6]
    table(
        None,
        ["run", "name", "experiment", "status", "started", *metric_keys],
        [
            [
                r.id[:12],
                r.name,
                r.experiment,
                r.status,
                _when(r.start_time),
                *[_fmt(r.metrics.get(k)) for k in metric_keys],
            ]
            for r in items
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    json_: JsonOpt = False,
) -> None:
    """Show a run: params, latest metrics, tags, inputs, artifacts, code and environment."""
    r = open_project(ctx).runs.get(run_id)
    if json_:
        emit_json(r.to_dict())
        return
    _print_run(r)


def _print_run(r: RunInfo) -> None:
    out = console()
    out.print(f"[bold]run {r.id}[/bold]  {r.name}  ({r.experiment})  {r.status}")
    out.print(f"by {r.created_by}, {_when(r.start_time)} -> {_when(r.end_time)}")
    git = r.code.get("git") or {}
    if git:
        dirty = " (dirty)" if git.get("dirty") else ""
        out.print(f"code: {git.get('commit', '')[:12]}{dirty} on {git.get('branch')}")
    notebook = r.code.get("notebook")
    if isinstance(notebook, dict):
        if notebook.get("digest"):
            out.print(
                f"notebook: {notebook.get('path')} ({str(notebook['digest'])[:19]}, "
                f"stored as {notebook.get('artifact')})"
            )
        else:
            out.print(f"notebook: {notebook.get('path') or '?'}: {notebook.get('error')}")
    if r.error:
        out.print("[red]error:[/red] " + r.error.strip().splitlines()[-1])
    rows = [["param", k, v] for k, v in r.params.items()]
    rows += [["metric", k, _fmt(v)] for k, v in r.metrics.items()]
    rows += [["tag", k, v] for k, v in r.tags.items()]
    rows += [["input", i["context"], i["dataset"]] for i in r.inputs]
    rows += [["artifact", a["path"], count(a["size"], "byte")] for a in r.artifacts]
    table(None, ["kind", "key", "value"], rows)


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    json_: JsonOpt = False,
) -> None:
    """Params and metrics side by side; differences are marked with *."""
    doc = open_project(ctx).runs.compare(run_ids)
    if json_:
        emit_json(doc)
        return
    heads = [f"{r['name']} ({r['id'][:8]})" for r in doc["runs"]]
    rows = []
    for section in ("params", "metrics"):
        for row in doc[section]:
            mark = "*" if row["differs"] else ""
            rows.append([f"{section[:-1]} {row['key']}{mark}", *map(_fmt, row["values"])])
    table(None, ["", *heads], rows)


@app.command("delete")
def delete(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    json_: JsonOpt = False,
) -> None:
    """Hide a run from searches (its history stays; `runs restore` brings it back)."""
    r = open_project(ctx).runs.delete(run_id)
    emit_json(r.to_dict(exclude=r.DETAILS)) if json_ else typer.echo(f"deleted run {r.id}")


@app.command("restore")
def restore(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    json_: JsonOpt = False,
) -> None:
    """Bring back a deleted run."""
    r = open_project(ctx).runs.restore(run_id)
    emit_json(r.to_dict(exclude=r.DETAILS)) if json_ else typer.echo(f"restored run {r.id}")


@experiments_app.command("list")
def experiments_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List experiments and how many runs each has."""
    items = open_project(ctx).runs.experiments()
    if json_:
        emit_json([e.to_dict() for e in items])
        return
    if not items:
        typer.echo(
            'no experiments yet; start a run with project.start_run(experiment="NAME") '
            "or `shipyard.autolog()`"
        )
        return
    table(
        None,
        ["experiment", "runs", "last run", "created by"],
        [[e.name, e.runs, _when(e.last_run), e.created_by] for e in items],
    )


@experiments_app.command("delete")
def experiments_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    json_: JsonOpt = False,
) -> None:
    """Delete an experiment and hide its runs (restorable)."""
    hidden = open_local_project(ctx).runs.delete_experiment(name, reason=reason)
    if json_:
        emit_json({"experiment": name, "runs": hidden, "reason": reason})
    else:
        typer.echo(f"deleted experiment {name} and hid its {count(len(hidden), 'run')}")


@experiments_app.command("restore")
def experiments_restore(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    json_: JsonOpt = False,
) -> None:
    """Restore an experiment and its hidden runs."""
    back = open_local_project(ctx).runs.restore_experiment(name)
    if json_:
        emit_json({"experiment": name, "runs": back})
    else:
        typer.echo(f"restored experiment {name} and its {count(len(back), 'run')}")
