"""``shipyard monitor``: drift reports, and monitors that watch a deployment's windows."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Drift and data-quality reports, and monitors that check a deployment every window.",
    no_args_is_help=True,
)
