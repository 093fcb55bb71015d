"""``shipyard report pr``: the Markdown report of a candidate model for a pull request (see
docs/ci.md)."""

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

app = typer.Typer(help="Reports for reviews: `report pr` for a pull request.")


@app.command("pr")
def pr(
    ctx: typer.Context,
    candidate: Annotated[
        str, typer.Option("--candidate", help="The candidate version, MODEL@REF.")
    ],
    against: Annotated[
        str, typer.Option("--against", help="The alias whose holder it is compared with.")
    ] = "production",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the Markdown here (else stdout).", dir_okay=False
        ),
    ] = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Metric and fairness deltas against the alias holder on the same holdout, the gate's
    verdict with every check, the training data's contract and its drift against the
    champion's training data. Exit 3 when the gate fails (the report is written anyway)."""
    from shipyard.governance.pr_report import render_markdown

    if output is not None:
        output = check_output(output, force=force, suffixes=(".md", ".markdown"))
    report = open_local_project(ctx).pr_reports.build(candidate, against=against)
    text = render_markdown(report)
    if output is not None:
        write_output(output, text, force=force)
    if json_:
        emit_json(
            {
                **report.to_dict(),
                "output": str(output) if output is not None else None,
                "markdown": text if output is None else None,
            }
        )
    elif output is not None:
        verdict = "passed" if report.passed else "FAILED"
        typer.echo(f"wrote the report of {report.candidate} to {output} (gate {verdict})")
    else:
        typer.echo(text, nl=False)
    if not report.passed:
        raise typer.Exit(3)
