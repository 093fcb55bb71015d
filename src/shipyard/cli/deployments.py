"""``shipyard deployments``: what serves behind a name (set, list, show, history) and what it
answered (metrics from the prediction log)."""

from __future__ import annotations

import math
import re
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
    from shipyard.governance.deployments import Deployment
    from shipyard.monitoring.uplift import UpliftReport

app = typer.Typer(
    help="Deployments: which aliases of a model take traffic (governed), and what they answered."
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([smhd])")


def parse_window(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` → seconds (ASCII digits only: ``²h`` is refused)."""
    text = text.strip().lower()
    match = _WINDOW.fullmatch(text)
    if match:
        seconds = float(match[1]) * _UNITS[match[2]]
        if math.isfinite(seconds) and seconds < 1e12:
            return seconds
    raise typer.BadParameter(f"expected a window like 30m, 1h or 7d, got {text!r}")


def parse_routes(text: str) -> dict[str, int]:
    """``production=90,challenger=10`` → ``{"production": 90, "challenger": 10}``: whole
    weights in ASCII digits, at least one above 0."""
    routes: dict[str, int] = {}
    for part in text.split(","):
        alias, sep, weight = part.strip().partition("=")
        weight = weight.strip()
        # isdigit() would let "²" through, which int() then refuses.
        if (
            not sep
            or not alias.strip()
            or not (weight.isascii() and weight.isdecimal() and len(weight) <= 9)
        ):
            raise typer.BadParameter(
                f"expected ALIAS=WEIGHT pairs like production=90,challenger=10, with whole "
                f"weights of 0 or more, got {part!r}"
            )
        routes[alias.strip()] = int(weight)
    if not any(routes.values()):
        raise typer.BadParameter("at least one route needs a weight above 0")
    return routes


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name (by default the model's name).")],
    route: Annotated[
        str,
        typer.Option(
            help="Aliases and traffic weights, e.g. production=90,challenger=10. Every alias "
            "must be held by an approved version that passes the policy for that alias."
        ),
    ],
    shadow: Annotated[
        str | None,
        typer.Option(help="Also score every request with this alias, without answering with it."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="The model it serves (default: the deployment's name).")
    ] = None,
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Create or change a deployment (approver). Every alias it routes to or shadows becomes
    protected: it then moves only through `models promote` and `models rollback`. Exit 3 with
    every failed check when a holder is not approved or fails its policy."""
    from shipyard.errors import CheckFailedError

    routes = parse_routes(route)
    project = open_project(ctx)
    try:
        d = project.deployments.set(name, routes, shadow=shadow, model=model, comment=comment)
    except CheckFailedError as exc:
        if not json_:
            _render_refusal(exc.details)
        raise
    if json_:
        emit_json(d.to_dict())
        return
    typer.echo(f"deployment {d.name} is version {d.version}: {_routes(d)}")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List stored deployments (a model without one serves production alone)."""
    items = open_project(ctx).deployments.list()
    if json_:
        emit_json([d.to_dict() for d in items])
        return
    if not items:
        typer.echo(
            "no deployments yet; a model's production serves alone until an approver runs "
            "`shipyard deployments set NAME --route production=90,challenger=10`"
        )
        return
    table(
        None,
        ["deployment", "model", "routes", "version", "updated", "by"],
        [[d.name, d.model, _routes(d), d.version, when(d.updated_at), d.updated_by] for d in items],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name, or a model's name.")],
    json_: JsonOpt = False,
) -> None:
    """Show a deployment: its routes and shadow, the version each alias holds now, and
    whether that version may take traffic. Without a stored deployment, the model's default
    (production alone)."""
    status = open_project(ctx).deployments.show(name)
    d = status.deployment
    if json_:
        emit_json(status.to_dict())
        return
    out = console()
    stored = (
        f"version {d.version}, by {d.updated_by} {when(d.updated_at)}"
        if d.stored
        else ("not stored: the model's default")
    )
    out.print(f"[bold]{d.name}[/bold] serves {d.model} ({stored})")
    for h in status.serving:
        role = "shadow" if h.alias == d.shadow else f"weight {d.routes[h.alias]}"
        state = "ok" if h.servable else "REFUSED: " + "; ".join(h.reasons)
        out.print(f"  {h.alias:<12} {role:<10} {h.ref or '-':<20} {state}")


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    json_: JsonOpt = False,
) -> None:
    """Every change of a deployment: version, routes and shadow from and to, who, when, why."""
    changes = open_project(ctx).deployments.history(name)
    if json_:
        emit_json([c.to_dict() for c in changes])
        return
    table(
        name,
        ["version", "when", "from", "to", "by", "comment"],
        [
            [
                c.version,
                when(c.time),
                _route_text(c.from_routes, c.from_shadow) if c.from_routes else "",
                _route_text(c.to_routes, c.to_shadow),
                c.actor,
                c.comment,
            ]
            for c in changes
        ],
    )


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    window: Annotated[str, typer.Option(help="How far back: 30m, 1h, 7d.")] = "1h",
    json_: JsonOpt = False,
) -> None:
    """Throughput, latency percentiles, accuracy and KPIs from the prediction log."""
    doc = open_local_project(ctx).predictions.metrics(name, window_seconds=parse_window(window))
    if json_:
        emit_json(doc)
        return
    out = console()
    lat = doc["latency_ms"]
    out.print(
        f"[bold]{name}[/bold], last {window}: {count(doc['predictions'], 'prediction')}, "
        f"{doc['throughput_per_second']:.1f}/s, {count(doc['feedback'], 'label')}"
    )
    if lat["p50"] is not None:
        out.print(f"latency ms: p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f}")
    table(
        None,
        ["model", "predictions", "p50 ms", "p99 ms", "accuracy"],
        [
            [
                m,
                v["predictions"],
                f"{v['latency_ms']['p50']:.2f}",
                f"{v['latency_ms']['p99']:.2f}",
                "" if v["accuracy"] is None else f"{v['accuracy']:.3f}",
            ]
            for m, v in doc["by_model"].items()
        ],
    )
    for k, v in doc["kpis"].items():
        out.print(f"kpi {k}: {count(v['events'], 'event')}, sum {v['sum']:,.2f}")


@app.command("uplift")
def uplift(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name, or a model's name.")],
    kpi: Annotated[str, typer.Option(help="The KPI, as clients record it (e.g. revenue).")],
    by_route: Annotated[
        bool,
        typer.Option(
            "--by-route",
            help="Compare the routes of the deployment as it is now, since its latest "
            "promotion (the default).",
        ),
    ] = False,
    around_promotion: Annotated[
        int | None,
        typer.Option(
            help="Compare the windows before and after promotion N (1 the oldest, -1 the "
            "latest): an alias move of a route, or a change of the routes.",
        ),
    ] = None,
    window: Annotated[str, typer.Option(help="How far back (or each side): 1d, 7d.")] = "7d",
    method: Annotated[
        str, typer.Option(help="welch (t interval) or bootstrap (seeded, for skewed KPIs).")
    ] = "welch",
    missing: Annotated[
        str,
        typer.Option(
            help="A prediction without a KPI event: zero (counts as 0) or skip (left out)."
        ),
    ] = "zero",
    min_samples: Annotated[
        int, typer.Option(help="Values each side needs, else 'not enough data'.", min=2)
    ] = 30,
    json_: JsonOpt = False,
) -> None:
    """Compare a business KPI per prediction between the routes of a canary, or before and
    after a promotion: the means, the difference with its 95% confidence interval and the
    sample sizes, or "not enough data". Read-only; exit 0 whatever the verdict."""
    from shipyard.monitoring.uplift import METHODS, MISSING

    if by_route and around_promotion is not None:
        raise typer.BadParameter("give --by-route or --around-promotion N, not both")
    if method not in METHODS:
        raise typer.BadParameter(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if missing not in MISSING:
        raise typer.BadParameter(f"--missing must be one of {', '.join(MISSING)}, got {missing!r}")
    report = open_local_project(ctx).predictions.uplift(
        name,
        kpi,
        around_promotion=around_promotion,
        window_seconds=parse_window(window),
        method=method,  # type: ignore[arg-type]  # checked above
        missing=missing,  # type: ignore[arg-type]
        min_samples=min_samples,
    )
    if json_:
        emit_json(report.to_dict())
        return
    _render_uplift(report)


def _render_uplift(report: UpliftReport) -> None:
    out = console()
    what = (
        f"promotion {report.promotion.number} ({when(report.promotion.time)}: "
        f"{report.promotion.description})"
        if report.promotion
        else "routes"
    )
    out.print(
        f"[bold]{report.deployment}[/bold]: {report.kpi} per prediction by {what}; "
        f"missing events count as {'0' if report.missing == 'zero' else 'nothing (skipped)'}"
    )
    table(
        None,
        ["arm", "versions", "from", "to", "predictions", "with kpi", "n", "mean", "std"],
        [
            [
                a.name,
                ", ".join(a.models),
                when(a.since),
                when(a.until),
                a.predictions,
                a.with_kpi,
                a.n,
                "" if a.mean is None else f"{a.mean:.4g}",
                "" if a.std is None else f"{a.std:.4g}",
            ]
            for a in report.arms
        ],
    )
    level = f"{report.confidence:.0%}"
    for c in report.comparisons:
        if c.difference is None:
            out.print(f"{c.arm} vs {c.baseline}: [yellow]not enough data[/yellow]: {c.reason}")
            continue
        relative = "" if c.relative is None else f" ({c.relative:+.1%})"
        out.print(
            f"{c.arm} vs {c.baseline}: {c.difference:+.4g}{relative}, {level} CI "
            f"[{c.ci_low:.4g}, {c.ci_high:.4g}] ({report.method}): [bold]{c.verdict}[/bold]"
        )
    if report.unassigned:
        out.print(
            f"{count(report.unassigned, 'prediction')} answered by a version holding none of these "
            "routes were left out"
        )


def _routes(d: Deployment) -> str:
    return _route_text(d.routes, d.shadow)


def _route_text(routes: dict[str, int], shadow: str | None) -> str:
    text = ",".join(f"{a}={w}" for a, w in routes.items())
    return text + (f" (shadow {shadow})" if shadow else "")


def _render_refusal(details: dict[str, Any]) -> None:
    out = console()
    out.print(f"deployment {details.get('deployment')}: [red]REFUSED[/red]")
    for item in details.get("aliases", []):
        mark = "[green]ok  [/green]" if item["passed"] else "[red]FAIL[/red]"
        out.print(f"  {mark} {item['alias']} ({item['model']})")
        for c in item["checks"]:
            if not c["passed"]:
                out.print(f"       {c['name']}: {c['detail']}")
