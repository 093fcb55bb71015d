"""``shipyard scheduler`` (run pipelines on triggers) and ``shipyard reproduce`` (rebuild a
model from its lineage)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_local_project, short_digest, table

if TYPE_CHECKING:
    from shipyard.pipelines.reproduce import Reproduction
    from shipyard.pipelines.scheduler import Firing


def scheduler(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over the triggers, then exit (for cron).")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="The schedule file (default: schedule.yaml in the project)."),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between passes.")
    ] = 30.0,
    json_: JsonOpt = False,
) -> None:
    """Run pipelines when a cron schedule is due, a watched dataset gets a new version, or a
    monitor's alert opens (triggers in schedule.yaml). Runs in the foreground until SIGTERM or
    Ctrl-C; the pass under way finishes first. Exit 1 when a triggered run failed (--once),
    2 when there is no schedule file or it cannot be used."""
    from shipyard.errors import InvalidArgumentError, InvalidInputError, NotFoundError

    if file is not None and not file.is_file():
        raise typer.BadParameter(f"no schedule file {file}", param_hint="--file")
    project = open_local_project(ctx)
    service = project.scheduler
    try:
        triggers = service.load(file)
    except (NotFoundError, InvalidInputError) as exc:
        # The schedule is what this command is told to do: without it, a usage error.
        raise InvalidArgumentError(exc.message, details=exc.details) from None
    fired: list[Firing] = []
    passes = 0

    def report(firings: list[Firing]) -> None:
        nonlocal passes
        passes += 1
        fired.extend(f for f in firings if f.fired or once)
        if not json_:
            for f in firings:
                if f.fired or once:
                    _print_firing(f)
            sys.stdout.flush()

    if once:
        report(service.run_once(triggers))
    else:
        stop = threading.Event()
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in _STOP_SIGNALS}
        if not json_:
            typer.echo(
                f"scheduler: {len(triggers)} trigger(s), a pass every {interval:g} s; "
                "stop with Ctrl-C or SIGTERM"
            )
            sys.stdout.flush()
        try:
            service.serve(triggers, interval=interval, stop=stop, report=report)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if not json_:
            typer.echo(f"scheduler: stopped after {passes} pass(es)")
    if json_:
        emit_json({"passes": passes, "firings": [f.to_dict() for f in fired]})
    if once and any(f.fired and (f.error or f.status == "failed") for f in fired):
        raise typer.Exit(1)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _print_firing(f: Firing) -> None:
    if not f.fired:
        typer.echo(f"{f.trigger} ({f.kind}): {f.reason}")
        return
    run = f.pipeline_run[:12] if f.pipeline_run else "-"
    typer.echo(f"{f.trigger} ({f.kind}): {f.reason}")
    hits = "" if f.cache_hits is None else f", {f.cache_hits} step(s) from cache"
    typer.echo(f"    pipeline run {run}: {f.status or 'not started'}{hits}")
    if f.error:
        typer.echo(f"    error: {f.error}")
    for p in f.promoted:
        verdict = "promoted" if p["promoted"] else "not promoted"
        typer.echo(f"    {p['model']} -> {p['alias']}: {verdict} ({p['detail']})")
    for m in f.models:
        if not any(p["model"] == m for p in f.promoted):
            typer.echo(f"    registered {m}")


def reproduce(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="MODEL@V", help="The model version to rebuild.")],
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0.0, help="Largest difference of a metric still equal."),
    ] = 1e-6,
    json_: JsonOpt = False,
) -> None:
    """Rebuild a model from its lineage (stored code, params, exact input versions), run its
    evaluation on the same data, and compare: exit 0 when the artifact digest is identical or
    every metric agrees within --tolerance, 3 when it does not reproduce (what differs is
    listed), 1 when the model was not made by a pipeline."""
    result = open_local_project(ctx).reproductions.reproduce(ref, tolerance=tolerance)
    if json_:
        emit_json(result.to_dict())
    else:
        _print_reproduction(result)
    if not result.reproduced:
        raise typer.Exit(3)


def _print_reproduction(r: Reproduction) -> None:
    verdict = {
        "identical": "reproduced: identical artifact digest",
        "equivalent": f"reproduced: same metrics within {r.tolerance:g} (another digest)",
        "differs": "does NOT reproduce",
    }[r.outcome]
    typer.echo(f"{r.model}: {verdict}")
    typer.echo(
        f"  recorded {short_digest(r.digest)} (pipeline run {r.pipeline_run[:12]}); rebuilt "
        f"{short_digest(r.rebuilt_digest) if r.rebuilt_digest else '-'} as "
        f"{r.rebuilt_model or '-'} (pipeline run {r.rebuild_run[:12]})"
    )
    if r.error:
        typer.echo(f"  rebuild error: {r.error}")
    if r.metrics:
        table(
            "metrics",
            ["step", "metric", "recorded", "rebuilt", "same"],
            [
                (
                    m.step,
                    m.metric,
                    _num(m.recorded),
                    _num(m.rebuilt),
                    "yes" if m.within_tolerance else "NO",
                )
                for m in r.metrics
            ],
        )
    if r.differences:
        table(
            "what differs",
            ["what", "step", "item", "recorded", "rebuilt"],
            [
                (d.what, d.step, d.item, _short(d.recorded), _short(d.rebuilt))
                for d in r.differences
            ],
        )


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def _short(v: Any) -> str:
    text = "-" if v is None else str(v)
    return short_digest(text) if text.startswith("blake3:") else text
