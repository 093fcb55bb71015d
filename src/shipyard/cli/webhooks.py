"""``shipyard webhooks``: tell other tools (any receiver, Slack, Jira, Trello) what changed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_local_project, table, when

if TYPE_CHECKING:
    from shipyard.collaboration.webhooks import Delivery

app = typer.Typer(
    help="Webhooks for entity events, sent through a durable queue with retries (admin)."
)

_MAX_WATCH_INTERVAL = 3600.0


def _attempt_line(d: Delivery) -> str:
    if not d.attempts:
        return f"delivery {d.id} ({d.event}): {d.status}, not tried yet"
    a = d.attempts[-1]
    answer = f"HTTP {a.status_code}" if a.status_code is not None else "no answer"
    error = f", {a.error}" if a.error else ""
    retry = f"; next try {when(d.next_attempt_at)}" if d.status == "pending" else ""
    return (
        f"delivery {d.id} ({d.event}): {d.status} after {len(d.attempts)} attempt(s); last: "
        f"{answer} in {a.latency_ms:.0f} ms{error}{retry}"
    )


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(help="Where to send (Jira and Trello: the site's base URL).")
    ],
    events: Annotated[
        str,
        typer.Option(
            help="Comma-separated events, e.g. model.promoted,approval.requested (* for all)."
        ),
    ],
    format_: Annotated[
        str, typer.Option("--format", help="generic (signed JSON), slack, jira or trello.")
    ] = "generic",
    secret_file: Annotated[
        str | None, typer.Option(help="File holding the secret (read at each send).")
    ] = None,
    secret_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the secret.")
    ] = None,
    jira_project: Annotated[str | None, typer.Option(help="Jira project key.")] = None,
    jira_issue_type: Annotated[str, typer.Option(help="Jira issue type.")] = "Task",
    trello_list: Annotated[str | None, typer.Option(help="Trello list id.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Subscribe a URL to events (admin). Secrets: generic whsec_<base64>, jira
    EMAIL:API_TOKEN, trello KEY:TOKEN; see `shipyard webhooks new-secret`."""
    options = {"jira_project": jira_project, "jira_issue_type": jira_issue_type}
    if trello_list:
        options["trello_list"] = trello_list
    hook = open_local_project(ctx).webhooks.add(
        url,
        events.split(","),
        format=format_,
        secret_file=secret_file,
        secret_env=secret_env,
        options=options,
    )
    if json_:
        emit_json(hook.to_dict())
    else:
        typer.echo(f"webhook {hook.id}: {hook.format} to {hook.url} on {', '.join(hook.events)}")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List webhooks, whether each is enabled and, if not, why (never a secret)."""
    hooks = open_local_project(ctx).webhooks.list()
    if json_:
        emit_json([h.to_dict() for h in hooks])
        return
    table(
        None,
        ["id", "url", "format", "events", "secret", "state"],
        [
            [
                h.id,
                h.url,
                h.format,
                ", ".join(h.events),
                h.secret or "",
                "enabled" if h.enabled else f"DISABLED: {h.disabled_reason or 'removed'}",
            ]
            for h in hooks
        ],
    )


@app.command("test")
def test(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(metavar="ID")],
    json_: JsonOpt = False,
) -> None:
    """Send a webhook.test event now and show the attempt."""
    delivery = open_local_project(ctx).webhooks.test(webhook_id)
    emit_json(delivery.to_dict()) if json_ else typer.echo(_attempt_line(delivery))


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(metavar="ID")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    json_: JsonOpt = False,
) -> None:
    """A webhook's latest deliveries and their attempts."""
    items = open_local_project(ctx).webhooks.deliveries(webhook_id, limit=limit)
    if json_:
        emit_json([d.to_dict() for d in items])
        return
    rows = []
    for d in items:
        last = d.attempts[-1] if d.attempts else None
        rows.append(
            [
                d.id,
                d.event,
                d.status,
                len(d.attempts),
                "" if last is None or last.status_code is None else last.status_code,
                "" if last is None else f"{last.latency_ms:.0f} ms",
                "" if last is None else (last.error or ""),
                when(d.next_attempt_at),
            ]
        )
    table(None, ["id", "event", "status", "tries", "http", "latency", "error", "next"], rows)


@app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY")],
    json_: JsonOpt = False,
) -> None:
    """Queue a delivery's event again and try it now."""
    delivery = open_local_project(ctx).webhooks.redeliver(delivery_id)
    emit_json(delivery.to_dict()) if json_ else typer.echo(_attempt_line(delivery))


@app.command("enable")
def enable(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(metavar="ID")],
    json_: JsonOpt = False,
) -> None:
    """Enable a webhook again (e.g. one disabled for failing); it hears of events from now."""
    hook = open_local_project(ctx).webhooks.enable(webhook_id)
    emit_json(hook.to_dict()) if json_ else typer.echo(f"webhook {hook.id} is enabled")


@app.command("remove")
def remove(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(metavar="ID")],
    json_: JsonOpt = False,
) -> None:
    """Remove a webhook; its queued deliveries are cancelled."""
    hook = open_local_project(ctx).webhooks.remove(webhook_id)
    emit_json(hook.to_dict()) if json_ else typer.echo(f"webhook {hook.id} is removed")


@app.command("deliver")
def deliver(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option(help="Keep going until interrupted.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=_MAX_WATCH_INTERVAL, help="Seconds between rounds.")
    ] = 2.0,
    json_: JsonOpt = False,
) -> None:
    """Queue deliveries for new events and send those due (the team server does this by
    itself; an embedded project runs this, e.g. from cron or with --watch)."""
    from shipyard.collaboration.webhook_delivery import RunSummary

    project = open_local_project(ctx)
    total = RunSummary()
    try:
        while True:
            summary = project.webhooks.deliver()
            total = total.plus(summary)
            if not json_ and (not watch or summary != RunSummary()):
                typer.echo(
                    f"queued {summary.queued}, delivered {summary.delivered}, "
                    f"retrying {summary.retrying}, failed {summary.failed}"
                )
            if not watch:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    if json_:
        emit_json(total.to_dict())


@app.command("new-secret")
def new_secret(json_: JsonOpt = False) -> None:
    """Print a new signing secret (whsec_<base64>) for a generic webhook; store it in a file
    only the server's user can read and pass it with --secret-file."""
    from shipyard.collaboration.webhooks import new_secret as make

    secret = make()
    if json_:
        emit_json({"secret": secret})
    else:
        typer.echo(secret)
