"""Running the team server: uvicorn on a socket bound beforehand, one worker or several."""

from __future__ import annotations

import contextlib
import copy
import os
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["run"]


def run(
    project_root: str,
    sock: socket.socket,
    workers: int,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve the project at ``project_root`` on ``sock`` until a signal stops it.

    ``on_started`` is called once the server accepts requests (with one worker when its app
    has started, with several when the socket listens); stdout is then left to it, so the
    access log goes to stderr like every other log.
    """
    import uvicorn

    from shipyard.server.app import PROJECT_ENV

    host, port = sock.getsockname()[:2]
    # Uvicorn's access log names method, path and status: never a header, so never a token.
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "timeout_graceful_shutdown": 30,
    }
    if on_started is not None:
        settings["log_config"] = _logs_on_stderr()
    if workers == 1:
        from shipyard.project import open_project
        from shipyard.server.app import create_app
        from shipyard.serving.listen import notifying_server

        app = create_app(open_project(project_root))
        server = notifying_server(uvicorn.Config(app, **settings), on_started)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[PROJECT_ENV] = project_root
    config = uvicorn.Config(
        "shipyard.server.app:app_from_env",
        factory=True,
        workers=workers,
        **settings,
    )
    with contextlib.suppress(KeyboardInterrupt):
        if on_started is not None:
            sock.listen(config.backlog)  # connections wait in the queue until a worker is up
            on_started()
        Multiprocess(config, sockets=[sock]).run()


def _logs_on_stderr() -> dict[str, Any]:
    """Uvicorn's logging configuration with the access log on stderr instead of stdout."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config
