"""``shipyard digest``: what changed in the project since a time, for the team's sync-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import (
    ForceOpt,
    JsonOpt,
    check_output,
    emit_json,
    open_local_project,
    write_output,
)


def digest(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option(
            "--since", help="Start of the window: 30m, 12h, 7d, 2w, or a date (2026-05-01)."
        ),
    ] = "7d",
    fmt: Annotated[
        str, typer.Option("--format", help="md (Markdown) or html.", case_sensitive=False)
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the digest to this file.", dir_okay=False),
    ] = None,
    post: Annotated[
        str | None,
        typer.Option("--post", metavar="WEBHOOK_ID", help="Post the digest to this webhook."),
    ] = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Summarise what changed since --since: new dataset versions and failed validations,
    runs with each experiment's best metric, models registered, approvals waiting,
    promotions and rollbacks, alerts and mentions."""
    from shipyard.collaboration.digest_render import FORMATS, render_digest

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    webhook_id: int | None = None
    if post is not None:
        if not post.isdigit():
            raise typer.BadParameter("a webhook id is a number (see `shipyard webhooks list`)")
        webhook_id = int(post)
    if output is not None:
        suffixes = (".html", ".htm") if fmt == "html" else (".md", ".markdown")
        output = check_output(output, force=force, suffixes=suffixes)
    project = open_local_project(ctx)
    result = project.digests.get(since)
    text = render_digest(result, fmt)
    if output is not None:
        write_output(output, text, force=force)
    if webhook_id is not None:
        from shipyard.collaboration.digest_render import webhook_message

        delivery = project.webhooks.post(webhook_id, "digest", webhook_message(result))
        if json_:
            emit_json({"digest": result.to_dict(), "delivery": delivery.to_dict()})
            return
        typer.echo(
            f"digest posted to webhook {webhook_id}: delivery {delivery.id} {delivery.status}"
        )
    if json_:
        emit_json(result.to_dict())
    elif output is not None:
        typer.echo(f"digest written to {output}")
    elif webhook_id is None:
        typer.echo(text, nl=False)
