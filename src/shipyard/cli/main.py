"""``shipyard``: the command line entry point.

Exit codes (DESIGN.md): 0 success, 1 error, 2 usage error, 3 a check that ran and did not pass.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Typer bundles its own copy of click: its usage errors and stream helpers live there.
from typer._click import exceptions as click_exceptions
from typer._click import utils as click_utils

from shipyard._internal.words import count
from shipyard.cli._common import (
    HelpGroup,
    JsonOpt,
    State,
    emit_json,
    open_local_project,
    progress,
)
from shipyard.cli.entry import reader_gone
from shipyard.demo import MIN_ROWS
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from typer import _click as click  # the click that Typer vendors

#: The commands and groups of other modules, in the order help lists them: (name, module under
#: shipyard.cli, attribute: a Typer group or a command function). A module is imported, and
#: its commands built, only when the command runs or help lists it: building every group's
#: click commands from type hints took longer than the commands that read the store.
LAZY_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("check", "governance", "check"),
    ("serve", "serve", "serve"),
    ("server", "server", "server"),
    ("ui", "ui", "ui"),
    ("login", "login", "login"),
    ("logout", "login", "logout"),
    ("digest", "digest", "digest"),
    ("lock", "lock", "lock"),
    ("checkout", "lock", "checkout"),
    ("status", "lock", "status"),
    ("scheduler", "scheduler", "scheduler"),
    ("reproduce", "scheduler", "reproduce"),
)
LAZY_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("data", "data", "app"),
    ("contract", "contract", "app"),
    ("features", "features", "app"),
    ("runs", "runs", "app"),
    ("experiments", "runs", "experiments_app"),
    ("models", "models", "app"),
    ("policy", "governance", "policy_app"),
    ("users", "users", "app"),
    ("deployments", "deployments", "app"),
    ("audit", "audit", "app"),
    ("db", "db", "app"),
    ("docs", "docs", "app"),
    ("comments", "comments", "app"),
    ("webhooks", "webhooks", "app"),
    ("monitor", "monitor", "app"),
    ("alerts", "alerts", "app"),
    ("report", "report", "app"),
    ("pipeline", "pipeline", "app"),
)

#: Modules that add commands to another module's group (``models evaluate``, ``card``,
#: ``promote``… live in cli/governance.py): imported before that group is built.
GROUP_EXTENSIONS: dict[str, tuple[str, ...]] = {"models": ("governance",)}


def _build(name: str, module: str, attr: str) -> click.Command:
    """The click command for one lazy entry, built as ``add_typer``/``command`` would; a
    group's own commands are built when first used too (see :func:`_group`)."""
    from importlib import import_module

    from typer.main import get_command_from_info
    from typer.models import CommandInfo

    target = getattr(import_module(f"shipyard.cli.{module}"), attr)
    for extra in GROUP_EXTENSIONS.get(name, ()):
        import_module(f"shipyard.cli.{extra}")  # adds its commands to the group
    if isinstance(target, typer.Typer):
        _list_commands_in_full(target)
        return _group(name, target)
    return get_command_from_info(
        CommandInfo(name=name, callback=target),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=None,
    )


def _group(name: str, target: typer.Typer) -> click.Command:
    """The click group of ``target`` as ``get_group_from_info`` builds it, except that each
    of its commands is built from its type hints when it runs or help lists it, not before
    one of them runs (a group has up to twenty)."""
    import copy
    from functools import partial

    from typer.main import get_command_from_info, get_command_name, get_group_from_info
    from typer.models import TyperInfo

    bare = copy.copy(target)
    bare.registered_commands = []  # the nested groups are built at once, as before
    group = get_group_from_info(
        TyperInfo(bare, name=name),
        pretty_exceptions_short=app.pretty_exceptions_short,
        suggest_commands=True,
        rich_markup_mode=None,
    )
    lazy: dict[str, Callable[[], click.Command]] = {}
    for info in target.registered_commands:
        assert info.callback is not None
        lazy[info.name or get_command_name(info.callback.__name__)] = partial(
            get_command_from_info,
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=None,
        )
    nested = dict(group.commands)
    if isinstance(group, HelpGroup):  # lists its commands by name (see _common.HelpGroup)
        group.commands = _LazyCommands(nested, lazy, [*lazy, *nested])
    else:
        group.commands = {**{n: build() for n, build in lazy.items()}, **nested}
    return group


class _LazyCommands(MutableMapping[str, "click.Command"]):
    """A group's commands: those built at once, and the others, built on first access
    (``commands["data"]``); iterating gives the names, in ``order``, without building any."""

    def __init__(
        self,
        built: Mapping[str, click.Command],
        lazy: Mapping[str, Callable[[], click.Command]],
        order: Sequence[str],
    ) -> None:
        self._built: dict[str, click.Command] = dict(built)
        self._lazy = dict(lazy)
        self._order = list(dict.fromkeys(order))

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            if name not in self._lazy:
                raise KeyError(name)
            self._built[name] = self._lazy[name]()
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command
        if name not in self._order:
            self._order.append(name)

    def __delitem__(self, name: str) -> None:
        found = self._built.pop(name, None) is not None
        found = self._lazy.pop(name, None) is not None or found
        if not found:
            raise KeyError(name)
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._built or name in self._lazy


class _RootGroup(HelpGroup):
    """The ``shipyard`` group, whose subcommands are built when used (see LAZY_COMMANDS)."""

    def __init__(self, *, commands: Mapping[str, click.Command] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        own = dict(commands or {})
        lazy = {
            name: partial(_build, name, module, attr)
            for name, module, attr in LAZY_COMMANDS + LAZY_GROUPS
        }
        first = [n for n, _, _ in LAZY_COMMANDS]
        self.commands = _LazyCommands(own, lazy, [*first, *own, *(n for n, _, _ in LAZY_GROUPS)])


app = typer.Typer(
    name="shipyard",
    help="shipyard: versioned data, governed models and monitored endpoints for small teams.",
    cls=_RootGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _list_commands_in_full(typer_app: typer.Typer) -> None:
    """Make every group, nested ones too, list all its commands with whole summaries."""
    typer_app.info.cls = HelpGroup
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _list_commands_in_full(group.typer_instance)


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
            f"verify {status}: {count(report.checked, 'blob')} checked, "
            f"{len(report.corrupt)} corrupt, "
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
        f"{verb} {count(len(report.blobs), 'unreferenced blob')} "
        f"({count(report.bytes, 'byte')})"
        + ("" if dry_run else f" and {count(report.staging_files, 'temporary file')}")
    )


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to create the demo project (default: a temp folder)."),
    ] = None,
    rows: Annotated[
        int,
        typer.Option(
            help=f"Applicants in the first batch (at least {MIN_ROWS:,}: on fewer, the test "
            "set is too small for the policy's fairness and no-regression checks to pass).",
            min=MIN_ROWS,
        ),
    ] = 50_000,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Narrate on stderr; print one JSON summary (project, datasets, models, "
            "runs, deployments) on stdout at the end.",
        ),
    ] = False,
) -> None:
    """Run the end-to-end demo on synthetic credit-risk data."""
    import contextlib

    from shipyard.cli.entry import start_up_done
    from shipyard.demo.scenario import run_demo

    start_up_done()  # a long command: collect at the usual pace from here on

    if not json_:
        run_demo(directory, rows=rows)
        return
    with contextlib.redirect_stdout(sys.stderr):
        root = run_demo(directory, rows=rows)
    emit_json(_demo_summary(root))


def _demo_summary(root: Path) -> dict[str, Any]:
    """What the demo left in the project at ``root``, for ``demo --json``."""
    from shipyard.project import open_project

    with open_project(root) as project:
        return {
            "outcome": "completed",
            "project": str(root.resolve()),
            "datasets": [
                {"name": d.name, "versions": d.versions, "latest": f"{d.name}@{d.latest}"}
                for d in project.datasets.list()
            ],
            "models": [
                {"name": m.name, "versions": m.versions, "aliases": m.aliases}
                for m in project.models.list()
            ],
            "experiments": [{"name": e.name, "runs": e.runs} for e in project.runs.experiments()],
            "deployments": [d.to_dict() for d in project.deployments.list()],
        }


def run() -> None:
    """Console-script entry point: maps errors to messages and exit codes.

    A usage error exits 2 (under ``--json`` with an error document on stdout too); output
    cut short by its reader (``shipyard runs list | head``) is not an error.
    """
    argv = sys.argv[1:]
    debug = "--debug" in argv
    as_json = "--json" in argv
    try:
        result = app(args=argv, prog_name="shipyard", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except BrokenPipeError:
        code = reader_gone()
    except SystemExit:
        # Typer turns a broken pipe into exit 1, after wrapping stdout to silence it.
        if not isinstance(sys.stdout, click_utils.PacifyFlushWrapper):
            raise
        code = reader_gone()
    except click_exceptions.UsageError as exc:
        if as_json:
            emit_json({"error": "usage", "message": exc.format_message()})
        exc.show()
        code = exc.exit_code
    except click_exceptions.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        code = 1
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
