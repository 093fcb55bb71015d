"""``shipyard data``: the dataset registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli._common import (
    JsonOpt,
    console,
    emit_json,
    open_project,
    parse_pairs,
    progress,
    short_digest,
    table,
    when,
)

if TYPE_CHECKING:
    from shipyard.data.datasets import DatasetVersion

app = typer.Typer(help="Versioned datasets: add, list, show, get, diff, tag, lineage.")


def _fmt_int(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def _summary_dict(v: DatasetVersion) -> dict[str, Any]:
    doc = v.to_dict()
    doc.pop("profile", None)
    return doc


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. credit.")],
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file, or a folder.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What this version is.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag (repeatable).")
    ] = None,
    parent: Annotated[
        list[str] | None,
        typer.Option("--parent", help="Dataset this one derives from, NAME@N (repeatable)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Add a new version of a dataset (identical content returns the existing version)."""
    tags = parse_pairs(tag or [], "--tag")
    project = open_project(ctx)
    with progress(json_) as bar:
        v = project.datasets.add(
            name, path, message=message, tags=tags, parents=parent or [], progress=bar
        )
    if json_:
        emit_json(_summary_dict(v))
    elif v.created:
        shape = (
            f"{_fmt_int(v.rows)} rows x {len(v.columns)} columns"
            if v.kind == "table"
            else f"{v.profile.get('files', 0)} files"
        )
        typer.echo(f"added {v.ref}: {shape}, {v.digest}")
    else:
        typer.echo(f"unchanged: identical content is already {v.ref} ({v.digest})")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List datasets with their latest version."""
    items = open_project(ctx).datasets.list()
    if json_:
        emit_json([d.to_dict() for d in items])
        return
    if not items:
        typer.echo("no datasets yet; add one with `shipyard data add NAME FILE`")
        return
    table(
        None,
        ["name", "latest", "versions", "kind", "rows", "columns", "updated", "by"],
        [
            [
                d.name,
                d.latest,
                d.versions,
                d.kind,
                _fmt_int(d.rows),
                d.columns,
                when(d.updated_at),
                d.updated_by,
            ]
            for d in items
        ],
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    json_: JsonOpt = False,
) -> None:
    """List every version of a dataset."""
    items = open_project(ctx).datasets.versions(name)
    if json_:
        emit_json([_summary_dict(v) for v in items])
        return
    table(
        name,
        ["version", "digest", "rows", "columns", "message", "tags", "by", "created"],
        [
            [
                v.version,
                short_digest(v.digest),
                _fmt_int(v.rows),
                len(v.columns),
                v.message,
                ", ".join(f"{k}={x}" for k, x in v.tags.items()),
                v.created_by,
                when(v.created_at),
            ]
            for v in items
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N, NAME@latest or NAME@<digest>.")],
    json_: JsonOpt = False,
) -> None:
    """Show a version: schema, column profile, lineage, message, tags, author, time."""
    v = open_project(ctx).datasets.get(ref)
    if json_:
        emit_json(v.to_dict())
        return
    out = console()
    out.print(f"[bold]{v.ref}[/bold]  {v.kind}  {v.digest}")
    out.print(f"created {when(v.created_at)} by {v.created_by}")
    if v.message:
        out.print(f"message: {v.message}")
    if v.tags:
        out.print("tags: " + ", ".join(f"{k}={x}" for k, x in v.tags.items()))
    out.print(f"parents: {', '.join(v.parents) or 'none'}")
    src = v.source
    if src.get("path"):
        out.print(f"source: {src['path']} ({src.get('format')})")
    if v.kind == "files":
        out.print(f"{v.profile.get('files', 0)} files, {v.size_bytes:,} bytes")
        return
    out.print(f"{_fmt_int(v.rows)} rows, {len(v.columns)} columns, {v.size_bytes:,} bytes stored")
    cols = v.profile.get("columns", {})
    rows = []
    for c in v.columns:
        p = cols.get(c, {})
        if p.get("kind") == "number":
            q = p.get("quantiles", {})
            detail = (
                f"min {_num(p.get('min'))}  p50 {_num(q.get('0.5'))}  max {_num(p.get('max'))}"
                f"  mean {_num(p.get('mean'))}  std {_num(p.get('std'))}"
            )
        elif p.get("top"):
            detail = ", ".join(f"{t['value']} ({t['count']:,})" for t in p["top"][:4])
        elif p.get("kind") == "time":
            detail = f"{p.get('min')} .. {p.get('max')}"
        else:
            detail = ""
        rows.append(
            [c, v.schema.get(c, ""), _fmt_int(p.get("nulls")), _fmt_int(p.get("distinct")), detail]
        )
    table(None, ["column", "type", "nulls", "distinct", "profile"], rows)


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


@app.command("get")
def get(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF to fetch.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="File (.csv, .parquet, .jsonl) or folder (file tree)."),
    ],
    json_: JsonOpt = False,
) -> None:
    """Write a version to a file (format by extension) or restore a file tree to a folder."""
    project = open_project(ctx)
    with progress(json_) as bar:
        dest = project.datasets.export(ref, output, progress=bar)
    v = project.datasets.get(ref)
    if json_:
        emit_json({"ref": v.ref, "digest": v.digest, "output": str(dest)})
    else:
        typer.echo(f"wrote {v.ref} to {dest}")


@app.command("diff")
def diff(
    ctx: typer.Context,
    ref_a: Annotated[str, typer.Argument(help="From, e.g. credit@1.")],
    ref_b: Annotated[str, typer.Argument(help="To, e.g. credit@2.")],
    json_: JsonOpt = False,
) -> None:
    """Compare two versions: schema changes, row count, per-column statistics."""
    d = open_project(ctx).datasets.diff(ref_a, ref_b)
    if json_:
        emit_json(d)
        return
    out = console()
    out.print(
        f"[bold]{d['from']} -> {d['to']}[/bold]" + ("  (identical)" if d["identical"] else "")
    )
    s = d["schema"]
    for c in s["added"]:
        out.print(f"  + column {c}")
    for c in s["removed"]:
        out.print(f"  - column {c}")
    for r in s["retyped"]:
        out.print(f"  ~ column {r['column']}: {r['from']} -> {r['to']}")
    rows = d["rows"]
    if rows["change"] is not None:
        out.print(
            f"  rows: {_fmt_int(rows['from'])} -> {_fmt_int(rows['to'])} ({rows['change']:+,})"
        )
    if d["columns"]:
        table(
            None,
            ["column", "statistic", "from", "to", "change"],
            [
                [
                    c["column"],
                    c["stat"],
                    _num(c["from"])
                    if not isinstance(c["from"], list)
                    else ", ".join(map(str, c["from"])),
                    _num(c["to"])
                    if not isinstance(c["to"], list)
                    else ", ".join(map(str, c["to"])),
                    f"{c['relative']:+.1%}" if "relative" in c else "",
                ]
                for c in d["columns"]
            ],
        )


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N to tag.")],
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE tags to set.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", "-r", help="Tag key to remove (repeatable).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Set or remove tags on a version."""
    tags = parse_pairs(pairs or [], "KEY=VALUE")
    if not tags and not remove:
        raise typer.BadParameter("give KEY=VALUE tags to set or --remove KEY")
    v = open_project(ctx).datasets.tag(ref, tags, remove or [])
    if json_:
        emit_json({"ref": v.ref, "tags": v.tags})
    else:
        typer.echo(f"{v.ref} tags: " + (", ".join(f"{k}={x}" for k, x in v.tags.items()) or "none"))


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N.")],
    json_: JsonOpt = False,
) -> None:
    """Show where a version came from and what was made from it."""
    g = open_project(ctx).datasets.lineage(ref)
    if json_:
        emit_json(g)
        return
    out = console()
    out.print(f"[bold]{g['ref']}[/bold]  {g['digest']}")
    out.print("upstream:" if g["upstream"] else "upstream: none")
    for e in g["upstream"]:
        out.print(f"  {e['child']}  <-{e['relation']}-  {e['parent']}")
    out.print("downstream:" if g["downstream"] else "downstream: none")
    for e in g["downstream"]:
        out.print(f"  {e['parent']}  -{e['relation']}->  {e['child']}")
