"""The ``shipyard`` console script and ``python -m shipyard``: an up-to-date ``pipeline run``
is answered before the command line's framework is even imported (see
:mod:`shipyard.cli.uptodate`); everything else goes to :func:`shipyard.cli.main.run`.

:func:`main` is the process's entry: it also collects garbage rarely while the command
starts (:func:`defer_gc`). :func:`run` is the same command line without that, for a
process that runs other things too (the tests run commands in their own process).
"""

from __future__ import annotations

import gc
import os
import sys

#: The collector's thresholds before :func:`defer_gc` raised them; None when not raised.
_gc_thresholds: tuple[int, int, int] | None = None


def main() -> None:
    """Console-script entry point: one command, in a process of its own."""
    defer_gc()
    run()


def run() -> None:
    """Run the command in ``sys.argv`` and exit with its code."""
    from shipyard.cli.uptodate import answer

    code = answer(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from shipyard.cli.main import run as full

    full()


def defer_gc() -> None:
    """Collect cyclic garbage rarely while a command starts.

    Importing SQLAlchemy and Typer creates some 90,000 long-lived objects, and at the
    default thresholds the collector walked them over and over: 30-60 ms of a 0.3 s
    command. :func:`start_up_done` puts the defaults back once the project is open.
    """
    global _gc_thresholds
    if _gc_thresholds is None:
        _gc_thresholds = gc.get_threshold()
        gc.set_threshold(100_000, *_gc_thresholds[1:])


def start_up_done() -> None:
    """The project is open: move what start-up made out of the collector's sight
    (``gc.freeze``; it lives as long as the process) and collect at the usual pace again.
    Nothing happens unless :func:`defer_gc` ran: freezing in a process that runs other
    things would keep their garbage (a test session's closed projects) for good.

    Start-up leaves a few hundred objects of cyclic garbage (573 after ``runs list``'s
    imports), frozen with the rest: a full collection to free them first took 25 ms, and
    leaving the start-up objects to the collector 70 ms (bench/cli.py).
    """
    global _gc_thresholds
    if _gc_thresholds is not None:
        gc.freeze()
        gc.set_threshold(*_gc_thresholds)
        _gc_thresholds = None


def reader_gone() -> int:
    """Output cut short by its reader (``shipyard runs list | head``) is not an error: point
    stdout at the void, so that flushing it at exit does not fail again; the exit code (0)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
