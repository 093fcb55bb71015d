"""What a run records without being asked: the code version, the environment, and system
metrics while it runs.

>>> capture_code(Path("/tmp"))  # doctest: +SKIP
{'git': None}
>>> capture_environment()["python_version"]  # doctest: +SKIP
'3.11.7'

Capturing never fails a run: without git or outside a repository the code is ``{"git":
None}``, and a git command that fails or times out leaves its field ``None``.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

from shipyard._internal.hashing import Hasher
from shipyard.errors import InvalidInputError

__all__ = [
    "SystemMetricsSampler",
    "capture_code",
    "capture_environment",
    "code_of_process",
    "environment_of_process",
]

log = logging.getLogger(__name__)

GIT_TIMEOUT = 10.0  # seconds per git command
_CHUNK = 1 << 20

# Repository configuration can name programs that git runs (an fsmonitor hook, an external
# diff driver, text conversion filters); capturing a run must not execute them, and its
# output must not depend on the user's colour or pager settings.
_GIT = (
    "git",
    "-c", "core.fsmonitor=false",
    "-c", "color.ui=false",
    "--no-pager",
)  # fmt: skip
_GIT_ENV = {
    "GIT_OPTIONAL_LOCKS": "0",  # do not write the index: a concurrent git command may hold it
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


# --------------------------------------------------------------------------- code


def capture_code(path: Path | None = None, *, timeout: float = GIT_TIMEOUT) -> dict[str, Any]:
    """The git state of the folder ``path`` (default: the current directory).

    ``{"git": {"commit": <full sha>, "branch": <name or None when detached>, "dirty": bool,
    "diff_digest": <blake3 or None>}}``. ``dirty`` is true when tracked files changed or
    untracked (not ignored) files exist; ``diff_digest`` is the BLAKE3 digest of
    ``git diff HEAD`` (binary patches included) followed by the names of untracked files, so
    it changes when the uncommitted change changes; it is None when the tree is clean.
    Untracked files count by name only: their content may be large data.

    Outside a repository, without git, or in a repository without commits, returns
    ``{"git": None}``. Never raises.
    """
    cwd = Path(path) if path is not None else Path.cwd()
    commit = _git_text(cwd, timeout, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if not commit:
        return {"git": None}
    status = _git_bytes(cwd, timeout, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    untracked = _git_bytes(
        cwd, timeout, "ls-files", "-z", "--others", "--exclude-standard", "--full-name"
    )
    digest: str | None = None
    if status:
        diff = _git_digest(
            cwd,
            timeout,
            ["diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--no-color"],
            suffix=b"\0untracked\0" + (untracked or b""),
        )
        digest = diff
    return {
        "git": {
            "commit": commit,
            "branch": _git_text(cwd, timeout, "symbolic-ref", "--quiet", "--short", "HEAD"),
            "dirty": None if status is None else bool(status),
            "diff_digest": digest,
        }
    }


def _run(cwd: Path, timeout: float, args: list[str]) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(
            [*_GIT, *args],
            cwd=cwd,
            env={**os.environ, **_GIT_ENV},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, no such folder, timed out
        return None


def _git_bytes(cwd: Path, timeout: float, *args: str) -> bytes | None:
    done = _run(cwd, timeout, list(args))
    return done.stdout if done is not None and done.returncode == 0 else None


def _git_text(cwd: Path, timeout: float, *args: str) -> str | None:
    out = _git_bytes(cwd, timeout, *args)
    text = out.decode("utf-8", "replace").strip() if out is not None else ""
    return text or None


def _git_digest(cwd: Path, timeout: float, args: list[str], suffix: bytes) -> str | None:
    """Digest of a git command's output, streamed: a diff can be far larger than memory."""
    try:
        proc = subprocess.Popen(
            [*_GIT, *args],
            cwd=cwd,
            env={**os.environ, **_GIT_ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    hasher = Hasher()
    try:
        assert proc.stdout is not None
        with proc.stdout:
            while chunk := proc.stdout.read(_CHUNK):
                hasher.update(chunk)
        returncode = proc.wait()
    finally:
        killer.cancel()
    if returncode != 0:  # failed, or killed at the timeout
        return None
    hasher.update(suffix)
    return hasher.hexdigest()


# The captures of this process, by folder (code) and once (environment). The code a process
# runs is what it loaded when it started, and a sweep of many short runs must not pay for
# four git commands per run (they cost more than the rest of a run's bookkeeping).
_CODE_OF_PROCESS: dict[Path, dict[str, Any]] = {}
_ENVIRONMENT_OF_PROCESS: list[dict[str, Any]] = []
_CAPTURE_LOCK = threading.Lock()


def code_of_process(path: Path | None = None) -> dict[str, Any]:
    """:func:`capture_code` of ``path`` (default: the current directory), taken the first time
    this process asks for that folder and reused after (a copy each time).

    >>> code_of_process(Path("/tmp")) is not code_of_process(Path("/tmp"))  # doctest: +SKIP
    True
    """
    folder = (Path(path) if path is not None else Path.cwd()).resolve()
    with _CAPTURE_LOCK:
        found = _CODE_OF_PROCESS.get(folder)
    if found is None:
        found = capture_code(folder)
        with _CAPTURE_LOCK:
            found = _CODE_OF_PROCESS.setdefault(folder, found)
    git = found.get("git")
    return {**found, "git": dict(git) if isinstance(git, dict) else git}


def environment_of_process() -> dict[str, Any]:
    """:func:`capture_environment`, taken once per process and reused (a copy each time)."""
    with _CAPTURE_LOCK:
        if not _ENVIRONMENT_OF_PROCESS:
            _ENVIRONMENT_OF_PROCESS.append(capture_environment())
        env = _ENVIRONMENT_OF_PROCESS[0]
    return {**env, "command": list(env["command"]), "packages": dict(env["packages"])}


def forget_captures() -> None:
    """Capture code and environment again at the next run (what a new process would do)."""
    with _CAPTURE_LOCK:
        _CODE_OF_PROCESS.clear()
        _ENVIRONMENT_OF_PROCESS.clear()


# --------------------------------------------------------------------------- environment


def capture_environment() -> dict[str, Any]:
    """The Python environment of this process.

    ``{"python_version", "python_implementation", "platform", "hostname", "command",
    "packages"}``; ``command`` is ``sys.argv`` with the values of options that look like
    secrets (``--password``, ``--token=…``, credentials in URLs) replaced by ``***``;
    ``packages`` maps each installed distribution's normalised name to its version. The
    package list is read once per process.
    """
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "command": redact_command(sys.argv),
        "packages": dict(_installed_packages()),
    }


_SECRET_OPTION = re.compile(
    r"^-{1,2}[\w-]*(password|passwd|secret|token|api[-_]?key|credential|auth)[\w-]*$",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.I)


def redact_command(argv: list[str]) -> list[str]:
    """``argv`` with secret-looking option values and URL passwords replaced by ``***``.

    >>> redact_command(["train.py", "--token", "abc", "--db=postgresql://u:pw@h/db"])
    ['train.py', '--token', '***', '--db=postgresql://u:***@h/db']
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        option, eq, _value = arg.partition("=")
        if _SECRET_OPTION.match(option):
            if eq:
                out.append(f"{option}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(_URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", arg))
    return out


@cache
def _installed_packages() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name, version = _name_version(dist)
        if name and version:
            # The first distribution on sys.path is the one that imports.
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)
    return tuple(sorted(found.items()))


def _name_version(dist: Any) -> tuple[str | None, str | None]:
    """Name and version from the metadata headers.

    Reading the two headers directly is ten times faster than ``dist.metadata``, which
    parses the whole file as an e-mail message.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:  # the headers end at the first blank line
            break
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    if name is None or version is None:
        try:
            return dist.metadata["Name"], dist.version
        except Exception:  # a broken installation must not fail the run
            return None, None
    return name, version


# --------------------------------------------------------------------------- system metrics

MetricsCallback = Callable[[dict[str, float], int], None]


class SystemMetricsSampler:
    """Samples the resource use of this process every ``interval`` seconds, on a daemon
    thread, and hands each sample to ``callback(metrics, step)``; steps count from 0.

    Metrics: ``system.cpu_percent`` (since the previous sample; above 100 when several
    cores are busy), ``system.memory_rss_mb`` (resident memory, 10^6 bytes) and
    ``system.memory_percent`` (of the machine's memory). An exception in the callback is
    logged once and sampling goes on.

    >>> with SystemMetricsSampler(5.0, lambda m, step: print(step, m)):  # doctest: +SKIP
    ...     train()

    Raises:
        InvalidInputError: ``interval`` is not a positive number.
    """

    def __init__(self, interval: float, callback: MetricsCallback) -> None:
        if not isinstance(interval, int | float) or not interval > 0:
            raise InvalidInputError(
                f"interval must be a positive number of seconds, not {interval!r}"
            )
        self.interval = float(interval)
        self.callback = callback
        self.step = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._callback_failed = False

    def start(self) -> SystemMetricsSampler:
        """Start sampling; does nothing when already sampling. After :meth:`stop`, starts
        again and steps go on from where they stopped."""
        import psutil

        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            process = psutil.Process()
            process.cpu_percent(None)  # the first reading only sets the baseline
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(process, self._stop),
                name="shipyard-system-metrics",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling and wait for the thread to end; safe to call more than once."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> SystemMetricsSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, process: Any, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with process.oneshot():
                memory = process.memory_info()
                sample = {
                    "system.cpu_percent": float(process.cpu_percent(None)),
                    "system.memory_rss_mb": memory.rss / 1e6,
                    "system.memory_percent": float(process.memory_percent()),
                }
            if stop.is_set():  # stopped while sampling: report nothing after stop()
                return
            try:
                self.callback(sample, self.step)
            except Exception:
                if not self._callback_failed:
                    self._callback_failed = True
                    log.exception("system metrics callback failed; later failures are not logged")
            self.step += 1
