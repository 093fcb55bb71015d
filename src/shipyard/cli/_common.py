"""What every command shares: options, opening the project, JSON and table output, progress.

Heavy modules (the services, SQLAlchemy, polars) are imported inside functions so that
``shipyard --help`` starts fast.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from shipyard.cli._coerce import install

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard._internal.progress import Progress
    from shipyard.client.project import RemoteProject
    from shipyard.project import Project

# Plain option values are converted without building pydantic adapters (see _coerce).
install()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace the output file if it already exists.")
]


class HelpGroup(TyperGroup):
    """A command group whose help lists every command with its whole one-line summary (the
    first sentence of its docstring, wrapped, never cut short with "...")."""

    # Typer bundles its own copy of click, whose types are private: hence Any.
    def list_commands(self, ctx: Any) -> list[str]:
        # The names alone: a group's commands may be built on first use (cli/main.py).
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def summary(command: Any) -> str:
    """A command's one-line summary: its ``short_help``, else the first sentence of its help."""
    return str(command.get_short_help_str(limit=10_000))


@dataclass
class State:
    """Options given before the command (``shipyard --project DIR data list``)."""

    project: str | None = None
    debug: bool = False


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def open_project(ctx: typer.Context) -> Project | RemoteProject:
    """The project a command works on: ``--project DIR`` if given, else the team server when
    one is configured (``SHIPYARD_SERVER`` or ``shipyard login``), else the local project
    (see :func:`shipyard.project.open_project`)."""
    from shipyard.cli.entry import start_up_done
    from shipyard.project import open_project as _open

    folder = state(ctx).project
    project = _open(folder) if folder is not None else _open()
    start_up_done()
    return project


def open_local_project(ctx: typer.Context, *, refuse_remote: bool = True) -> Project:
    """The local project, for commands that need its stores themselves: what the server's
    API does not offer yet (refused when a team server is configured) and, with
    ``refuse_remote=False``, what only ever runs beside the stores (the server, serving).

    Raises:
        NotAvailableRemotelyError: a team server is configured, no ``--project`` was given
            and ``refuse_remote`` is true.
    """
    from shipyard.cli.entry import start_up_done
    from shipyard.config import find_project_root
    from shipyard.project import Project
    from shipyard.project import open_project as _open

    folder = state(ctx).project
    if folder is not None or not refuse_remote:
        local = _open(find_project_root(folder))
        start_up_done()
        return local
    project = _open()
    start_up_done()
    if not isinstance(project, Project):
        from shipyard.client.unsupported import not_available

        url = project.url
        project.close()
        raise not_available(ctx.command_path, url)
    return project


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def emit_json(doc: Any) -> None:
    """Print one JSON document on stdout; NaN and infinities, which JSON lacks, are written
    as the strings ``"NaN"``, ``"inf"`` and ``"-inf"``."""
    try:
        text = json.dumps(doc, indent=2, default=_default, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(doc), indent=2, default=_default, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json_line(doc: Any) -> None:
    """Print ``doc`` as one line of JSON on stdout, flushed: what a server prints once it
    answers under ``--json``, for a script that waits for it (its logs stay on stderr)."""
    sys.stdout.write(json.dumps(_finite(doc), default=_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "to_dict"):
        return _finite(value.to_dict())
    return value


def console() -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Rich exits 1 when the reader goes away; the entry point decides instead (a
            # reader that stops reading, as `head` does, is not an error).
            self.quiet = True
            raise BrokenPipeError

    # On a terminal Rich uses its width; piped output gets room instead of 80 columns.
    width = None if sys.stdout.isatty() else 160
    return _Console(highlight=False, soft_wrap=False, width=width)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    err: bool = False,
) -> None:
    """Print a table on stdout (or, with ``err``, stderr): the title, a header, a rule, then
    one line per row, columns aligned and two spaces apart; a cell with line breaks spans
    lines. Nothing is cut or folded, so piped output keeps whole values for ``grep`` and
    ``cut``. (Rich drew these before; importing it took longer than the queries of the
    commands that list things.)"""
    texts = [[_cell(v) for v in row] for row in rows]
    head = [str(c) for c in columns]
    widths = [_width(h) for h in head]
    for row in texts:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], *map(_width, cell.split("\n")))
    out = [title] if title else []
    out.append(_line(head, widths))
    out.append(_line(["-" * w for w in widths], widths))
    for row in texts:
        parts = [cell.split("\n") for cell in row[: len(widths)]]
        parts += [[""]] * (len(widths) - len(parts))
        for k in range(max(len(p) for p in parts)):
            out.append(_line([p[k] if k < len(p) else "" for p in parts], widths))
    stream = sys.stderr if err else sys.stdout
    stream.write("\n".join(out) + "\n")  # a reader gone (``| head``): see main.run
    stream.flush()


#: Control characters other than the line break, shown escaped (``\x1b``) so that a value
#: cannot move the cursor or clear the terminal; tabs become spaces, which keep the columns.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(9), *range(11, 32), 127)}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value).replace("\r\n", "\n")
    return text.expandtabs(4).translate(_CONTROL)


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide East Asian characters take two, combining
    marks none."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)]
    return "  ".join(padded).rstrip()


def short_digest(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]


def when(dt: datetime | None) -> str:
    return "" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def check_output(path: Path, *, force: bool, suffixes: Sequence[str] = ()) -> Path:
    """The one rule for a file a command writes (``-o FILE``): its folder must exist, its
    extension must be one the command writes (``suffixes``; any when empty), and an existing
    file is replaced only with ``--force``. Returns the path with ``~`` expanded.

    Raises:
        typer.BadParameter: an extension the command cannot write (a usage error, exit 2).
        InvalidInputError: the folder does not exist, or the path is a folder.
        ConflictError: the file exists and ``force`` is false.
    """
    from shipyard._internal.files import require_folder
    from shipyard.errors import ConflictError, InvalidInputError

    path = path.expanduser()
    if suffixes and path.suffix.lower() not in suffixes:
        given = f"a {path.suffix} file" if path.suffix else "a file without an extension"
        raise typer.BadParameter(
            f"{path}: cannot write {given}; this command writes {', '.join(suffixes)}",
            param_hint="--output",
        )
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; give a file name")
    require_folder(path)
    if path.exists() and not force:
        raise ConflictError(
            f"{path} already exists; pass --force to replace it, or choose another file",
            details={"existing": str(path)},
        )
    return path


def write_output(path: Path, content: str | bytes, *, force: bool) -> Path:
    """Write a command's output file under :func:`check_output`'s rule, atomically (a
    temporary name in the same folder, then a rename; without ``force`` the rename never
    replaces a file that appeared meanwhile).

    Raises:
        ConflictError: the file exists (or appeared) and ``force`` is false.
        InvalidInputError: its folder does not exist (it is never created).
    """
    from shipyard._internal.files import require_folder, write_bytes_atomic
    from shipyard.errors import ConflictError

    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        return write_bytes_atomic(path, data, overwrite=force, parents=False)
    except FileExistsError:
        raise ConflictError(
            f"{path} already exists; pass --force to replace it, or choose another file"
        ) from None
    except FileNotFoundError:
        require_folder(path)  # the folder went away meanwhile: say so
        raise


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    """``["k=v", ...]`` → dict; a missing ``=`` is a usage error (exit 2)."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {p!r}", param_hint=what)
        out[key.strip()] = value
    return out


class _RichProgress:
    """Draws the stages a service reports as Rich progress bars on stderr."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console(),
            transient=True,
        )
        self._task: Any = None

    def stage(self, description: str, total: float | None = None) -> None:
        if self._task is not None:
            done = self._bars.tasks[-1].total
            self._bars.update(self._task, completed=done or 0, visible=False)
        self._task = self._bars.add_task(description, total=total)

    def advance(self, amount: float = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def __enter__(self) -> _RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()


@contextmanager
def progress(as_json: bool) -> Iterator[Progress]:
    """Progress bars on a terminal; nothing under ``--json`` or when stderr is not a TTY."""
    from shipyard._internal.progress import NO_PROGRESS

    if as_json or not sys.stderr.isatty():
        yield NO_PROGRESS
        return
    with _RichProgress() as bars:
        yield bars
