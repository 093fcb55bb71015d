"""``shipyard``: the command line entry point.

Exit codes (DESIGN.md): 0 success, 1 error, 2 usage error, 3 a check that ran and did not pass.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import alerts as alerts_cmds
from shipyard.cli import audit as audit_cmds
from shipyard.cli import comments as comments_cmds
from shipyard.cli import contract as contract_cmds
from shipyard.cli import data as data_cmds
from shipyard.cli import db as db_cmds
from shipyard.cli import deployments as deployments_cmds
from shipyard.cli import digest as digest_cmds
from shipyard.cli import docs as docs_cmds
from shipyard.cli import governance as governance_cmds
from shipyard.cli import lock as lock_cmds
from shipyard.cli import login as login_cmds
from shipyard.cli import models as models_cmds
from shipyard.cli import monitor as monitor_cmds
from shipyard.cli import pipeline as pipeline_cmds
from shipyard.cli import report as report_cmds
from shipyard.cli import runs as runs_cmds
from shipyard.cli import scheduler as scheduler_cmds
from shipyard.cli import serve as serve_cmds
from shipyard.cli import server as server_cmds
from shipyard.cli import ui as ui_cmds
from shipyard.cli import users as users_cmds
from shipyard.cli import webhooks as webhooks_cmds
from shipyard.cli._common import JsonOpt, State, emit_json, open_local_project, progress
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="shipyard: versioned data, governed models and monitored endpoints for small teams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_cmds.app, name="data")
app.add_typer(contract_cmds.app, name="contract")
app.add_typer(runs_cmds.app, name="runs")
app.add_typer(runs_cmds.experiments_app, name="experiments")
app.add_typer(models_cmds.app, name="models")
app.add_typer(governance_cmds.policy_app, name="policy")
app.add_typer(users_cmds.app, name="users")
app.command("check")(governance_cmds.check)
app.command("serve")(serve_cmds.serve)
app.command("server")(server_cmds.server)
app.command("ui")(ui_cmds.ui)
app.command("login")(login_cmds.login)
app.command("logout")(login_cmds.logout)
app.add_typer(deployments_cmds.app, name="deployments")
app.add_typer(audit_cmds.app, name="audit")
app.add_typer(db_cmds.app, name="db")
app.add_typer(docs_cmds.app, name="docs")
app.command("digest")(digest_cmds.digest)
app.add_typer(comments_cmds.app, name="comments")
app.add_typer(webhooks_cmds.app, name="webhooks")
app.add_typer(monitor_cmds.app, name="monitor")
app.add_typer(alerts_cmds.app, name="alerts")
app.add_typer(report_cmds.app, name="report")
app.command("lock")(lock_cmds.lock)
app.command("checkout")(lock_cmds.checkout)
app.command("status")(lock_cmds.status)
app.add_typer(pipeline_cmds.app, name="pipeline")
app.command("scheduler")(scheduler_cmds.scheduler)
app.command("reproduce")(scheduler_cmds.reproduce)


def _version(value: bool) -> None:
    if value:
        from shipyard import __version__

        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-P",
            help="Project folder (default: SHIPYARD_PROJECT, else the nearest folder with "
            "shipyard.toml at or above the current directory).",
            file_okay=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = State(project=str(project) if project else None, debug=debug)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to turn into a project.")] = Path("."),
    name: Annotated[
        str | None, typer.Option(help="Project name (default: the folder name).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a project: shipyard.toml and .shipyard/ (SQLite database + artifact folder).

    You become its first admin.
    """
    from shipyard.project import init_project

    project = init_project(directory, name=name)
    doc = {
        "root": str(project.root),
        "name": project.settings.name,
        "db_url": project.db.safe_url,
        "artifacts_uri": project.artifacts.uri,
        "admin": project.actor,
    }
    if json_:
        emit_json(doc)
        return
    typer.echo(f"Initialised shipyard project '{doc['name']}' in {doc['root']}")
    typer.echo(f"  metadata:  {doc['db_url']}")
    typer.echo(f"  artifacts: {doc['artifacts_uri']}")
    typer.echo(f"  admin:     {doc['admin']}")
    typer.echo("Next: shipyard data add NAME FILE")


@app.command()
def verify(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Re-hash every stored blob; exit 3 if any is corrupted or missing."""
    project = open_local_project(ctx)
    with progress(json_) as bar:
        report = project.verify(bar)
    if json_:
        emit_json(report.to_dict())
    else:
        for item in report.corrupt:
            owners = ", ".join(item["owners"]) or "no owner"
            typer.echo(f"CORRUPT  {item['digest']}  ({owners})", err=True)
        for item in report.missing:
            owners = ", ".join(item["owners"]) or "no owner"
            typer.echo(f"MISSING  {item['digest']}  ({owners})", err=True)
        status = "ok" if report.ok else "FAILED"
        typer.echo(
            f"verify {status}: {report.checked} blobs checked, {len(report.corrupt)} corrupt, "
            f"{len(report.missing)} missing, {report.unreferenced} unreferenced"
        )
    if not report.ok:
        raise typer.Exit(3)


@app.command()
def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    grace: Annotated[
        float, typer.Option(help="Keep anything younger than this many seconds.", min=0)
    ] = 3600.0,
    json_: JsonOpt = False,
) -> None:
    """Remove blobs nothing refers to (left by interrupted writes) and stale temporary files
    (admin)."""
    report = open_local_project(ctx).gc(grace_seconds=grace, dry_run=dry_run)
    if json_:
        emit_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {len(report.blobs)} unreferenced blobs ({report.bytes:,} bytes)"
        + ("" if dry_run else f" and {report.staging_files} temporary files")
    )


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to create the demo project (default: a temp folder)."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Applicants in the first batch.", min=100)] = 50_000,
) -> None:
    """Run the end-to-end demo on synthetic credit-risk data."""
    from shipyard.demo.scenario import run_demo

    run_demo(directory, rows=rows)


def run() -> None:
    """Console-script entry point: maps errors to messages and exit codes.

    Usage errors (exit 2) and ``typer.Exit`` are handled by Typer itself, which exits.
    """
    argv = sys.argv[1:]
    debug = "--debug" in argv
    as_json = "--json" in argv
    try:
        app(args=argv, prog_name="shipyard")
        code = 0
    except ShipyardError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        if as_json:
            emit_json(exc.to_dict())
        typer.echo(f"error: {exc.message}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        code = 130
    except Exception as exc:
        if debug:
            raise
        if as_json:
            emit_json({"error": "internal", "message": f"{type(exc).__name__}: {exc}"})
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            err=True,
        )
        code = 1
    sys.exit(code)
