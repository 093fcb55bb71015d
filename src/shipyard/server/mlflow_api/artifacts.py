"""The MLflow artifact proxy (``/api/2.0/mlflow-artifacts/artifacts``): what the ``mlflow``
client calls for a run whose ``artifact_uri`` is ``mlflow-artifacts:/<exp>/<run>/artifacts``.

``PUT .../artifacts/<path>`` stores the request body, ``GET .../artifacts/<path>`` streams it
back, ``GET .../artifacts?path=<folder>`` lists a folder. The files live in the project's
content-addressed artifact store (:class:`shipyard.tracking.artifact_tree.ArtifactTree`), so a
run's files are the same ones ``shipyard runs show`` lists, on local disk or S3.
"""

from __future__ import annotations

import mimetypes
import tempfile
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard.project import Project
from shipyard.server.auth import acting_project
from shipyard.server.mlflow_api import MlflowRouter

__all__ = ["router"]

router = MlflowRouter()
Acting = Annotated[Project, Depends(acting_project)]

#: Upload bodies above this size are spooled to disk instead of memory.
_SPOOL_BYTES = 8 << 20


@router.get("/artifacts")
def list_artifacts(
    project: Acting, path: Annotated[str, Query(description="a folder")] = ""
) -> Any:
    """``{"files": [{"path", "is_dir", "file_size"}]}`` with names relative to ``path``."""
    files = project.artifact_tree.list(path)
    return {
        "files": [
            {"path": f.path, "is_dir": True}
            if f.is_dir
            else {"path": f.path, "is_dir": False, "file_size": f.size}
            for f in files
        ]
    }


@router.get("/artifacts/{path:path}")
def download_artifact(project: Acting, path: str) -> StreamingResponse:
    """The file's bytes, verified against its digest while they are read."""
    tree = project.artifact_tree
    file = tree.get(path)
    media_type = mimetypes.guess_type(file.path)[0] or "application/octet-stream"
    name = file.path.rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(
        tree.read(file),
        media_type=media_type,
        headers={
            "Content-Length": str(file.size),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@router.put("/artifacts/{path:path}")
async def upload_artifact(project: Acting, path: str, request: Request) -> Any:
    """Store the request body at ``path``; answers ``{}`` as MLflow's server does."""
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        await run_in_threadpool(project.artifact_tree.put, path, spool)  # type: ignore[arg-type]
    return {}
