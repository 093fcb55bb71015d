"""``shipyard db``: the metadata database schema."""

from __future__ import annotations

import typer

from shipyard.cli._common import JsonOpt, emit_json, state

app = typer.Typer(help="Metadata database maintenance.")


@app.command("upgrade")
def upgrade(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Apply pending schema migrations (they are also applied whenever a project opens)."""
    from shipyard.config import Settings, find_project_root
    from shipyard.stores.db.engine import Database

    settings = Settings.load(find_project_root(state(ctx).project))
    db = Database(settings.db_url, migrate=False)
    try:
        before, after = db.upgrade()
    finally:
        db.dispose()
    doc = {"database": db.safe_url, "from": before, "to": after, "changed": before != after}
    if json_:
        emit_json(doc)
    elif doc["changed"]:
        typer.echo(f"upgraded {doc['database']} from {before or 'empty'} to {after}")
    else:
        typer.echo(f"{doc['database']} is up to date (revision {after})")
