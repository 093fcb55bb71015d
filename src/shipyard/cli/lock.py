"""``shipyard lock``, ``checkout`` and ``status``: data pinned by the commit, as DVC users
expect (see docs/lock.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_local_project, short_digest, table


def lock(
    ctx: typer.Context,
    refs: Annotated[
        list[str] | None,
        typer.Argument(
            help="What to pin: DATASET, CONTRACT or MODEL, with @VERSION/@ALIAS if wanted "
            "(prefix dataset:, contract: or model: when names collide), or a pipeline "
            "FILE.py[:NAME] / FILE.yaml, whose dataset() and model() inputs are pinned. "
            "None: re-resolve every pin already in shipyard.lock.",
            show_default=False,
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path", help="Where `shipyard checkout` writes the one dataset named (relative)."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Write shipyard.lock: the exact version and digest of every dataset, contract and model
    named or read by a pipeline named (added to those already pinned, which are resolved
    again). Commit it with the code."""
    lf = open_local_project(ctx).locks.lock(refs or [], path=path)
    if json_:
        emit_json(lf.to_dict())
        return
    for p in lf.pins:
        where = f" -> {p.path}" if p.path else ""
        typer.echo(f"{p.kind:<9} {p.ref:<32} = {p.exact:<28} {short_digest(p.digest)}{where}")
    for label in lf.added:
        typer.echo(f"added   {label}")
    for label, (was, now) in lf.changed.items():
        typer.echo(f"changed {label}: {was} -> {now}")
    typer.echo(
        f"wrote {lf.path} ({len(lf.pins)} pins, {len(lf.added)} added, "
        f"{len(lf.changed)} changed, {lf.digest})"
    )


def checkout(
    ctx: typer.Context,
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="Write the datasets into this folder instead of their paths in the project.",
            file_okay=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files whose content differs from the pin.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Write every dataset version pinned in shipyard.lock to its path (digests verified);
    files that already hold the pinned bytes are left alone, others only with --force."""
    done = open_local_project(ctx).locks.checkout(to=to, force=force)
    if json_:
        emit_json({"datasets": [d.to_dict() for d in done]})
        return
    for d in done:
        typer.echo(f"{d.action:<9} {d.ref:<28} {d.path}")
    written = sum(d.action == "written" for d in done)
    typer.echo(f"{written} written, {len(done) - written} unchanged")


def status(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Compare shipyard.lock with the registry and the working tree; exit 3 when a pinned
    reference now means another version (or nothing): `shipyard lock` would change the file."""
    statuses = open_local_project(ctx).locks.status()
    differs = [s for s in statuses if s.differs]
    if json_:
        emit_json(
            {"up_to_date": not differs, "pins": [s.to_dict() for s in statuses]},
        )
    else:
        table(
            None,
            ["kind", "ref", "pinned", "now", "latest", "state", "working tree"],
            [
                [
                    s.pin.kind,
                    s.pin.ref,
                    s.pin.version,
                    "" if s.resolves_to is None else s.resolves_to,
                    "" if s.latest is None else s.latest,
                    s.state,
                    s.workspace or "",
                ]
                for s in statuses
            ],
        )
        if differs:
            typer.echo(
                f"{len(differs)} pin(s) differ from the registry; `shipyard lock` updates them"
            )
        else:
            typer.echo("shipyard.lock is up to date with the registry")
    if differs:
        raise typer.Exit(3)
