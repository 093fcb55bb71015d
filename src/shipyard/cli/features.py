"""``shipyard features``: feature definitions, point-in-time training data, the online store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli._common import (
    JsonOpt,
    emit_json,
    open_local_project,
    open_project,
    parse_pairs,
    progress,
    table,
    when,
)
from shipyard.features.definitions import format_ttl

app = typer.Typer(
    help="The feature store: definitions, point-in-time training data, online values.",
    no_args_is_help=True,
)


@app.command("apply")
def apply(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Definitions: a YAML or Python file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; record nothing.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Record a new version of every entity and feature view whose definition changed, and
    show the differences."""
    changes = open_local_project(ctx).features.apply(path, dry_run=dry_run)
    if json_:
        emit_json([c.to_dict() for c in changes])
        return
    for c in changes:
        kind = "entity" if c.kind == "feature_entity" else "feature view"
        verb = {"created": "created", "updated": "new version", "unchanged": "unchanged"}[c.action]
        note = " (dry run)" if dry_run and c.action != "unchanged" else ""
        typer.echo(f"{kind} {c.name}@{c.version}: {verb}{note}")
        for line in c.changes:
            typer.echo(f"    {line}")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Entities and the latest version of every feature view."""
    features = open_local_project(ctx).features
    views, entities = features.list(), features.entities()
    if json_:
        emit_json(
            {
                "entities": [e.to_dict() for e in entities],
                "feature_views": [v.to_dict() for v in views],
            }
        )
        return
    table(
        "entities",
        ["entity", "version", "join keys", "owner", "description"],
        [(e.name, e.version, ", ".join(e.join_keys), e.owner, e.description) for e in entities],
    )
    table(
        "feature views",
        ["view", "version", "entity", "source", "ttl", "features", "owner", "updated"],
        [
            (
                v.name,
                v.version,
                v.entity,
                v.source,
                format_ttl(v.ttl_seconds),
                ", ".join(f.name for f in v.features),
                v.owner,
                when(v.created_at),
            )
            for v in views
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="VIEW[@V]", help="A feature view version.")],
    json_: JsonOpt = False,
) -> None:
    """One feature view version: source, entity, TTL and its features."""
    v = open_local_project(ctx).features.get(ref)
    if json_:
        emit_json(v.to_dict())
        return
    typer.echo(f"feature view {v.ref}  {v.description}".rstrip())
    typer.echo(f"  entity    {v.entity}@{v.entity_version} (join keys {', '.join(v.join_keys)})")
    typer.echo(
        f"  source    {v.source}, event time {v.timestamp!r}, ttl {format_ttl(v.ttl_seconds)}"
    )
    if v.contract:
        typer.echo(f"  contract  {v.contract}")
    typer.echo(f"  owner     {v.owner or '-'}; applied {when(v.created_at)} by {v.created_by}")
    table(
        None,
        ["feature", "type", "owner", "description"],
        [(f.name, f.type, f.owner, f.description) for f in v.features],
    )


@app.command("glossary")
def glossary(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Every feature with what it means and who owns it."""
    entries = open_local_project(ctx).features.glossary()
    if json_:
        emit_json([e.to_dict() for e in entries])
        return
    table(
        None,
        ["feature", "type", "entity", "owner", "ttl", "description"],
        [(e.feature, e.type, e.entity, e.owner, e.ttl, e.description) for e in entries],
    )


@app.command("historical")
def historical(
    ctx: typer.Context,
    entities: Annotated[
        str, typer.Option("--entities", help="The entity rows: a table dataset, NAME@N.")
    ],
    features: Annotated[
        str,
        typer.Option("--features", help="VIEW:FEATURE,... (VIEW@V pins a version; VIEW:* all)."),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Register the result as this dataset.")
    ],
    timestamp: Annotated[
        str | None,
        typer.Option(help="The entity rows' event-time column (default: the only one)."),
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="The version's message.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag (repeatable).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Point-in-time training data: each entity row with the latest feature values at or
    before its event time and within the TTL, registered as a dataset version."""
    from shipyard.errors import CheckFailedError

    tags = parse_pairs(tag or [], "--tag")
    project = open_local_project(ctx)
    try:
        with progress(json_) as bar:
            result = project.features.historical(
                entities,
                features,
                timestamp=timestamp,
                output=output,
                message=message,
                tags=tags,
                progress=bar,
            )
    except CheckFailedError as exc:
        if not json_ and "report" in exc.details:
            from shipyard.cli.data import render_report

            render_report(exc.details["report"], exc.details.get("contract", ""), err=True)
        raise
    if json_:
        emit_json(result.to_dict())
        return
    assert result.dataset is not None
    from shipyard._internal.words import count

    typer.echo(
        f"{result.dataset.ref}: {count(result.rows, 'row')} from {result.entities} with "
        f"{', '.join(result.views)} ({'new version' if result.dataset.created else 'unchanged'})"
    )


@app.command("materialize")
def materialize(
    ctx: typer.Context,
    view: Annotated[str | None, typer.Argument(help="One feature view (default: all).")] = None,
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="Only events after the last materialized one."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Write the latest value per entity to the online store (SQLite, or Redis when
    redis_url is configured)."""
    project = open_local_project(ctx)
    with progress(json_) as bar:
        done = project.features.materialize(view, incremental=incremental, progress=bar)
    if json_:
        emit_json([m.to_dict() for m in done])
        return
    table(
        None,
        ["view", "source", "rows", "store", "latest event", "seconds"],
        [
            (m.view, m.source, f"{m.rows:,}", m.store, when(m.watermark), f"{m.seconds:.2f}")
            for m in done
        ],
    )


@app.command("online")
def online(
    ctx: typer.Context,
    entity: Annotated[
        list[str],
        typer.Option(
            "--entity",
            help="One entity row, KEY=VALUE (KEY=VALUE,KEY2=VALUE2 for several keys); repeatable. "
            "A whole number is a number, as in JSON.",
        ),
    ],
    features: Annotated[str, typer.Option("--features", help="VIEW:FEATURE,...")],
    json_: JsonOpt = False,
) -> None:
    """The online values of features for entities, with event times and a status per value
    (present, missing, outside_ttl)."""
    rows = [_entity_row(e) for e in entity]
    project = open_project(ctx)
    try:
        found = project.features.online(rows, features)
    finally:
        project.close()
    if json_:
        emit_json(found.to_dict())
        return
    table(
        None,
        ["entity", "feature", "value", "status", "event time"],
        [
            (
                ", ".join(f"{k}={v}" for k, v in r.entity.items()),
                name,
                r.values[name],
                r.status[name],
                when(r.event_time[name]),
            )
            for r in found.rows
            for name in found.features
        ],
    )


@app.command("reads")
def reads(
    ctx: typer.Context,
    view: Annotated[str | None, typer.Argument(help="One feature view (default: all).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Online reads per feature view and client (the online access log)."""
    counts = open_local_project(ctx).features.online_reads(view)
    if json_:
        emit_json([c.to_dict() for c in counts])
        return
    table(
        None,
        ["view", "client", "requests", "rows", "first", "last"],
        [
            (c.view, c.client, f"{c.requests:,}", f"{c.rows:,}", when(c.first_at), when(c.last_at))
            for c in counts
        ],
    )


def _entity_row(text: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--entity")
        row[key.strip()] = _key_value(value.strip())
    return row


def _key_value(text: str) -> int | str:
    """A join-key value as typed: a whole number (``17``, not ``017``) is a number, as in a
    JSON request to the server; anything else is text."""
    return int(text) if re.fullmatch(r"-?(0|[1-9][0-9]*)", text) else text
