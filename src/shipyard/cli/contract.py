"""``shipyard contract``: data contracts, versioned and bound to datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard._internal.words import count
from shipyard.cli._common import (
    ForceOpt,
    JsonOpt,
    check_output,
    console,
    emit_json,
    open_local_project,
    open_project,
    short_digest,
    table,
    when,
    write_output,
)

app = typer.Typer(
    help="Data contracts: what a table must look like, checked whenever data is added.",
)


@app.command("infer")
def infer(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file to learn from.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the YAML here (else stdout).")
    ] = None,
    force: ForceOpt = False,
    max_categories: Annotated[
        int, typer.Option(help="Text columns with at most this many values become categories.")
    ] = 20,
    description: Annotated[str, typer.Option(help="Contract description.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Write a starting contract from data: types, nullability, ranges, allowed sets, keys."""
    from shipyard.data.inference import infer_contract

    if output is not None:
        output = check_output(output, force=force, suffixes=(".yaml", ".yml"))
    contract = infer_contract(path, max_categories=max_categories, description=description)
    if output is not None:
        write_output(output, contract.to_yaml(), force=force)
    if json_:
        emit_json({"output": str(output) if output else None, "contract": contract.to_dict()})
    elif output is not None:
        typer.echo(f"wrote a contract for {count(len(contract.columns), 'column')} to {output}")
    else:
        typer.echo(contract.to_yaml(), nl=False)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Contract name.")],
    file: Annotated[Path, typer.Argument(help="The contract YAML file.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What changed.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Register a new version of a contract (identical content: no new version)."""
    v = open_project(ctx).contracts.add(name, file, message=message)
    if json_:
        emit_json(v.to_dict())
    elif v.created:
        typer.echo(f"added contract {v.ref} ({count(len(v.spec.get('columns', {})), 'column')})")
    else:
        typer.echo(f"unchanged: identical content is already contract {v.ref}")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME@N.")],
    json_: JsonOpt = False,
) -> None:
    """Show a contract version as YAML, with the datasets bound to it."""
    v = open_project(ctx).contracts.get(ref)
    if json_:
        emit_json(v.to_dict())
        return
    out = console()
    out.print(f"[bold]{v.ref}[/bold]  {v.digest}")
    out.print(
        f"created {when(v.created_at)} by {v.created_by}" + (f": {v.message}" if v.message else "")
    )
    out.print(f"bound to: {', '.join(v.bound_to) or 'no dataset'}")
    typer.echo(v.contract.to_yaml(), nl=False)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List contracts."""
    items = open_project(ctx).contracts.list()
    if json_:
        emit_json([c.to_dict() for c in items])
        return
    if not items:
        typer.echo("no contracts yet; write one with `shipyard contract infer FILE -o c.yaml`")
        return
    table(
        None,
        ["name", "latest", "columns", "bound to", "updated", "by"],
        [
            [c.name, c.latest, c.columns, ", ".join(c.bound_to), when(c.updated_at), c.updated_by]
            for c in items
        ],
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Contract name.")],
    json_: JsonOpt = False,
) -> None:
    """List every version of a contract."""
    items = open_local_project(ctx).contracts.versions(name)
    if json_:
        emit_json([v.to_dict() for v in items])
        return
    table(
        name,
        ["version", "digest", "columns", "message", "by", "created"],
        [
            [
                v.version,
                short_digest(v.digest),
                len(v.spec.get("columns", {})),
                v.message,
                v.created_by,
                when(v.created_at),
            ]
            for v in items
        ],
    )


@app.command("bind")
def bind(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    contract: Annotated[str, typer.Argument(help="NAME (follows its latest) or NAME@N.")],
    new: Annotated[
        bool,
        typer.Option("--new", help="DATASET has no version yet: bind it before its first add."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Validate every later `data add` of DATASET against CONTRACT."""
    binding = open_local_project(ctx).contracts.bind(dataset, contract, new=new)
    if json_:
        emit_json({"dataset": dataset, "contract": binding})
    else:
        typer.echo(f"dataset {dataset} is now validated against contract {binding} on every add")


@app.command("unbind")
def unbind(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    json_: JsonOpt = False,
) -> None:
    """Stop validating new versions of DATASET."""
    open_local_project(ctx).contracts.unbind(dataset)
    if json_:
        emit_json({"dataset": dataset, "contract": None})
    else:
        typer.echo(f"dataset {dataset} has no contract any more")


@app.command("delete")
def delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N, or NAME for every version.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    json_: JsonOpt = False,
) -> None:
    """Delete contract versions (restorable)."""
    gone = open_local_project(ctx).contracts.delete(ref, reason=reason)
    if json_:
        emit_json({"deleted": gone, "reason": reason})
    else:
        typer.echo(f"deleted {', '.join(gone)}" + (f" ({reason})" if reason else ""))


@app.command("restore")
def restore(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N, or NAME for every deleted version.")],
    json_: JsonOpt = False,
) -> None:
    """Bring back deleted contract versions."""
    back = open_local_project(ctx).contracts.restore(ref)
    emit_json({"restored": back}) if json_ else typer.echo(f"restored {', '.join(back)}")
