"""``shipyard alerts``: what monitors found, open or resolved."""

from __future__ import annotations

import typer

app = typer.Typer(help="Alerts opened by monitors, and when they resolved.", no_args_is_help=True)
