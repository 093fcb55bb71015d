"""``shipyard docs``: the project as a static HTML catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard._internal.words import count
from shipyard.cli._common import JsonOpt, emit_json, open_local_project

app = typer.Typer(help="Generate the project's documentation site.")


@app.command("build")
def build(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Folder to write the site to.", file_okay=False),
    ],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the folder if it holds a previous docs build."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Write a static HTML catalog (datasets, contracts, models with their cards,
    deployments, a glossary and a search box) that opens from disk without a server.
    The same project always gives the same files."""
    result = open_local_project(ctx).docs.build(output, force=force)
    if json_:
        emit_json(result.to_dict())
        return
    counts = result.counts
    typer.echo(
        f"{'rebuilt' if result.replaced else 'built'} the docs in {result.output}: "
        f"{count(result.pages, 'page')} ({count(result.bytes, 'byte')}) for "
        f"{count(counts['datasets'], 'dataset')}, {count(counts['contracts'], 'contract')}, "
        f"{count(counts['models'], 'model')}, {count(counts['deployments'], 'deployment')} and "
        f"{count(counts['glossary_terms'], 'glossary term')}"
    )
    typer.echo(f"open {Path(result.output) / 'index.html'}")
