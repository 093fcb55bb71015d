"""Running the team server: uvicorn on a socket bound beforehand, one worker or several."""

from __future__ import annotations

import contextlib
import os
import socket

__all__ = ["run"]


def run(project_root: str, sock: socket.socket, workers: int) -> None:
    """Serve the project at ``project_root`` on ``sock`` until a signal stops it."""
    import uvicorn

    from shipyard.server.app import PROJECT_ENV

    host, port = sock.getsockname()[:2]
    # Uvicorn's access log names method, path and status: never a header, so never a token.
    settings = {"host": host, "port": port, "log_level": "info", "timeout_graceful_shutdown": 30}
    if workers == 1:
        from shipyard.project import open_project
        from shipyard.server.app import create_app

        app = create_app(open_project(project_root))
        server = uvicorn.Server(uvicorn.Config(app, **settings))  # type: ignore[arg-type]
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[PROJECT_ENV] = project_root
    config = uvicorn.Config(
        "shipyard.server.app:app_from_env",
        factory=True,
        workers=workers,
        **settings,  # type: ignore[arg-type]
    )
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()
