"""The ``shipyard`` console script and ``python -m shipyard``: an up-to-date ``pipeline run``
is answered before the command line's framework is even imported (see
:mod:`shipyard.cli.uptodate`); everything else goes to :func:`shipyard.cli.main.run`."""

from __future__ import annotations

import os
import sys


def run() -> None:
    """Console-script entry point."""
    from shipyard.cli.uptodate import answer

    code = answer(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from shipyard.cli.main import run as full

    full()


def reader_gone() -> int:
    """Output cut short by its reader (``shipyard runs list | head``) is not an error: point
    stdout at the void, so that flushing it at exit does not fail again; the exit code (0)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
