"""A benchmark's own virtual environment under the git-ignored bench/.work/, for tools that are
never shipyard dependencies (skl2onnx and onnxruntime for bench/scoring.py, the full ``mlflow``
with its server for bench/server.py).

A benchmark builds one with :class:`BenchVenv`: ``ready()`` says whether it exists with the
same inputs (``key``, a digest of whatever decides its contents), ``pip(...)`` installs into it
with the output in a log beside it, ``mark_ready()`` records the key, and ``exec(...)``
re-runs the benchmark inside it. Nothing here runs when the file is executed on its own
(``make bench`` runs every bench/*.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work"
INSTALL_TIMEOUT = 900.0


@contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed on exit, also when the run is stopped with SIGTERM."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def digest(*parts: bytes | str) -> str:
    """A key for :class:`BenchVenv` from file contents and requirement strings."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()


class BenchVenv:
    """The virtual environment ``bench/.work/<name>``, rebuilt when ``key`` changes."""

    def __init__(self, name: str, key: str) -> None:
        self.path = WORK / name
        self.python = self.path / "bin" / "python"
        self.key = key
        self.log = WORK / f"{name}-install.log"
        self._stamp = self.path / ".bench-stamp"

    def active(self) -> bool:
        """Whether this interpreter runs inside the environment."""
        return Path(sys.prefix).resolve() == self.path.resolve()

    def ready(self) -> bool:
        return self.python.exists() and self._stamp.exists() and self._stamp.read_text() == self.key

    def run(self, what: str, command: list[str], *, check: bool = True) -> bool:
        """Run one setup step with its output appended to the log; exit with the log's tail
        when it fails and ``check`` is set, else return whether it succeeded."""
        WORK.mkdir(parents=True, exist_ok=True)
        print(f"[setup] {what} in {self.path.relative_to(REPO)} (log: {self.log.name})", flush=True)
        started = time.perf_counter()
        with open(self.log, "ab") as out:
            try:
                subprocess.run(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=INSTALL_TIMEOUT,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                if check:
                    tail = self.log.read_text(errors="replace").splitlines()[-30:]
                    sys.exit(f"[setup] failed: {exc}\n" + "\n".join(tail))
                print(f"[setup]   did not succeed ({exc})", flush=True)
                return False
        print(f"[setup]   done in {time.perf_counter() - started:.0f} s", flush=True)
        return True

    def create(self) -> None:
        """Create the environment if it is missing (an existing one is installed into again)."""
        if self.log.exists():
            self.log.unlink()
        if not self.python.exists():
            self.run("creating the venv", [sys.executable, "-m", "venv", str(self.path)])

    def pip(self, what: str, *args: str, check: bool = True) -> bool:
        """``pip install --quiet ARGS`` in the environment."""
        command = [str(self.python), "-m", "pip", "install", "--quiet"]
        return self.run(what, [*command, "--disable-pip-version-check", *args], check=check)

    def mark_ready(self) -> None:
        self._stamp.write_text(self.key)

    def exec(self, script: Path, argv: Iterable[str], env: Mapping[str, str]) -> NoReturn:
        """Re-run ``script`` with ``argv`` inside the environment; never returns."""
        print(f"[setup] running inside {self.path.relative_to(REPO)}", flush=True)
        os.execve(self.python, [str(self.python), str(script), *argv], dict(env))
