"""The progress interface services report long work through.

Services never import Rich: the CLI passes a reporter that draws bars, the Python API and
``--json`` pass none.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_PROGRESS", "Progress"]


class Progress(Protocol):
    """Receives the stages of a long task and how far each has got."""

    def stage(self, description: str, total: float | None = None) -> None:
        """Start a new stage; ``total`` None means the amount of work is unknown."""

    def advance(self, amount: float = 1) -> None:
        """Report ``amount`` more units of the current stage done."""


class _NoProgress:
    def stage(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
