"""Running the server: the listening socket bound first (a busy port is an error before any
model loads, with no window for another process to take it), then uvicorn on that socket,
with one worker or several sharing a metrics folder of this server's own."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConflictError, InvalidInputError, PermissionDeniedError, ShipyardError

if TYPE_CHECKING:
    from shipyard.serving.app import ServeConfig

__all__ = ["bind", "notifying_server", "run"]


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, not yet listening (uvicorn listens on it).

    Raises:
        ConflictError: the port is in use.
        PermissionDeniedError: the port needs privileges this user lacks.
        InvalidInputError: ``host`` is not an address of this machine.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port left in TIME_WAIT by a server that just stopped is free,
        # while one that another socket listens on is still refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _bind_error(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def _bind_error(host: str, port: int, exc: OSError) -> ShipyardError:
    where = f"port {port} on {host}"
    if exc.errno == errno.EADDRINUSE:
        return ConflictError(
            f"{where} is in use (another server, or one still stopping): stop it, or serve "
            f"on another port with --port"
        )
    if exc.errno == errno.EACCES:
        return PermissionDeniedError(
            f"{where} needs privileges this user lacks (ports below 1024 usually do): "
            "choose a port above 1024 with --port"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return InvalidInputError(
            f"cannot listen on {host}: it is not an address of this machine; use 127.0.0.1 "
            f"(this machine only) or the address of one of its interfaces with --host"
        )
    return InvalidInputError(f"cannot listen on {where}: {exc.strerror or exc}")


def run(
    config: ServeConfig,
    sock: socket.socket,
    workers: int,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve ``config`` on ``sock`` until a signal stops it. With several workers their
    metrics go to a new folder of this server's own (:func:`metrics_folder`), removed when
    the server exits. ``on_started`` is called once the server accepts requests: with one
    worker when its app has started, with several when the socket listens (each worker then
    answers once its app has started).

    Raises:
        ShipyardError: the app did not start (a version that may not serve or does not load).
    """
    import uvicorn

    host, port = sock.getsockname()[:2]
    settings = {"host": host, "port": port, "log_level": "warning", "timeout_graceful_shutdown": 30}
    if workers == 1:
        from shipyard.serving.app import create_app

        app = create_app(config)
        server = notifying_server(uvicorn.Config(app, **settings), on_started)  # type: ignore[arg-type]
        # uvicorn re-raises SIGINT once it has shut down cleanly, as uvicorn.run swallows it.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        if not server.started:
            error = getattr(app.state, "startup_error", None)
            if isinstance(error, ShipyardError):
                raise error
            sys.exit(1)  # uvicorn has printed why
        return

    from uvicorn.supervisors import Multiprocess

    from shipyard.serving.metrics import metrics_folder

    folder = metrics_folder()
    print(
        f"shipyard serve: the {workers} workers share their metrics through {folder} "
        "(removed on exit)",
        file=sys.stderr,
    )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    os.environ["SHIPYARD_SERVE_CONFIG"] = config.to_json()
    try:
        uconfig = uvicorn.Config(
            "shipyard.serving.app:app_from_env",
            factory=True,
            workers=workers,
            **settings,  # type: ignore[arg-type]
        )
        sock.listen(uconfig.backlog)  # connections wait in the queue until a worker is up
        if on_started is not None:
            on_started()
        Multiprocess(uconfig, sockets=[sock]).run()
    except KeyboardInterrupt:  # as uvicorn.run: the workers were stopped
        pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def notifying_server(config: Any, on_started: Callable[[], None] | None) -> Any:
    """A uvicorn server that calls ``on_started`` once its app has started."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_started is not None:
                on_started()

    return Server(config)
