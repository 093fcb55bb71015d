"""``shipyard pipeline run`` answered at once when nothing changed, as ``make`` or ``dvc repro``
would: before Typer, SQLAlchemy or the pipeline's own imports are loaded.

:func:`answer` recognises exactly ``shipyard [-P/--project DIR] pipeline run TARGET
[--param K=V]... [--params-file F] [--executor E] [--workers N] [--no-lock] [--json]``, finds
the project as every command does, and looks for the fingerprint the last identical command
line left (:mod:`shipyard._internal.fingerprints`). When every item it records is unchanged,
it prints the answer, as the normal path would print an all-hit run, and records nothing.
Anything else (another command or option, ``--always-record``, ``--no-cache``, ``--help``, no
fingerprint, any change or error) returns None, and the full command line runs untouched.

This module imports the standard library, blake3 and sqlite3 only.
"""

from __future__ import annotations

import json
import sys

from shipyard._internal.discovery import project_root
from shipyard._internal.fingerprints import check, invocation

TYPE_CHECKING = False  # typing's, without importing typing (see shipyard/__init__.py)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["answer"]

#: Options of ``pipeline run`` that take a value (all others but the flags below are refused).
_VALUED = ("--param", "--params-file", "--executor", "--workers")
_FLAGS = ("--json", "--no-lock")
#: ``--workers``' range, as ``shipyard.cli.pipeline.WorkersOpt`` declares it.
_WORKERS = range(1, 65)


class _Command:
    def __init__(self) -> None:
        self.project: str | None = None
        self.target: str | None = None
        self.params: list[str] = []
        self.single: dict[str, str] = {}  # --params-file, --executor, --workers
        self.flags: set[str] = set()


def answer(argv: Sequence[str]) -> int | None:
    """Print the answer to an up-to-date ``pipeline run`` and return its exit code (0); None
    when the full command line must run (any doubt means None: never a stale answer).

    >>> answer(["pipeline", "run", "chain.py", "--no-cache"]) is None
    True
    """
    try:
        found = _up_to_date(argv)
    except Exception:  # any doubt: the normal path decides
        return None
    if found is None:
        return None
    out, warnings = found
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except BrokenPipeError:
        from shipyard.cli.entry import reader_gone

        return reader_gone()
    if warnings:
        try:
            sys.stderr.write(warnings)
            sys.stderr.flush()
        except OSError:  # warnings nobody can read: the answer stands
            pass
    return 0


def _up_to_date(argv: Sequence[str]) -> tuple[str, str] | None:
    """The text to print on stdout and stderr, or None when it is not known to be up to date."""
    command = _parse(argv)
    if command is None or command.target is None:
        return None
    root = project_root(command.project)
    if root is None:
        return None
    inv = invocation(
        root,
        command.target,
        command.params,
        command.single.get("--params-file"),
        "--no-lock" in command.flags,
    )
    if inv is None:
        return None
    run = check(root, inv)
    if run is None:
        return None
    doc = up_to_date_doc(run)
    if "--json" in command.flags:
        out = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    else:
        started = str(doc["started_at"])  # ISO 8601 in UTC
        out = (
            f"pipeline {doc['pipeline']}: up to date, nothing ran (every step's key matches run "
            f"{doc['id'][:12]} of {started[:10]} {started[11:16]} UTC); --always-record to "
            "record a run anyway\n"
        )
    warnings = "".join(
        f"warning: step {s['name']}: {s['outputs']['warning']}\n"
        for s in doc["steps"]
        if isinstance(s.get("outputs"), dict) and s["outputs"].get("warning")
    )
    for text, stream in ((out, sys.stdout), (warnings, sys.stderr)):
        text.encode(stream.encoding or "utf-8")  # what cannot be printed goes the normal way
    return out, warnings


def up_to_date_doc(run: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` answer: the recorded run's document with every step a cache hit that
    ran nothing now, the lock read as it stands, and ``"up_to_date": true``."""
    doc = dict(run)
    doc["steps"] = [
        {
            **s,
            "cache": "hit",
            "attempts": 0,
            "started_at": None,
            "ended_at": None,
            "duration_seconds": None,
        }
        for s in run["steps"]
    ]
    doc["cache_hits"] = len(doc["steps"])
    lock = run.get("lock")
    if isinstance(lock, dict):
        read = {**(lock.get("read") or {}), **(lock.get("added") or {})}
        read.update(lock.get("replaced") or {})
        doc["lock"] = {**lock, "read": read, "added": {}, "replaced": {}}
    doc["up_to_date"] = True
    return doc


def _parse(argv: Sequence[str]) -> _Command | None:
    """The parts of ``[-P DIR] pipeline run ...``; None for anything else, and for anything
    the full command line would refuse or read otherwise (a repeated single option, an
    option value that looks like an option)."""
    command = _Command()
    args = list(argv)
    i = 0
    while i < len(args) and args[i] != "pipeline":
        name, eq, value = args[i].partition("=")
        if name not in ("-P", "--project") or command.project is not None or (eq and name == "-P"):
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value, i = args[i + 1], i + 1
        command.project = value
        i += 1
    if args[i : i + 2] != ["pipeline", "run"]:
        return None
    rest = args[i + 2 :]
    j = 0
    while j < len(rest):
        arg = rest[j]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _VALUED:
            if not eq:
                if j + 1 >= len(rest):
                    return None
                value, j = rest[j + 1], j + 1
            if value.startswith("-") or not _valid(name, value):
                return None
            if name == "--param":
                command.params.append(value)
            elif name in command.single:
                return None
            else:
                command.single[name] = value
        elif arg in _FLAGS:
            command.flags.add(arg)
        elif arg.startswith("-") or command.target is not None:
            return None
        else:
            command.target = arg
        j += 1
    return command


def _valid(option: str, value: str) -> bool:
    """Whether the full command line accepts ``value`` for ``option`` (where it checks one
    before the fingerprint's own checks would notice: the executor and the worker count)."""
    if option == "--workers":
        return value.isascii() and value.isdigit() and int(value) in _WORKERS
    if option == "--executor":
        # shipyard.pipelines.executors.parse_executor's rule (a test holds them together).
        return value in ("local", "dask") or (value.startswith("dask://") and len(value) > 7)
    return True
