"""Writing user-visible files safely: a temporary name in the same folder, then a rename."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["require_folder", "write_bytes_atomic", "write_text_atomic"]


def require_folder(path: str | os.PathLike[str]) -> None:
    """Refuse a file a user named whose folder does not exist: it is never created for them
    (a mistyped ``-o`` would otherwise make folders anywhere, up from ``/``).

    Raises:
        InvalidInputError: the folder of ``path`` does not exist.
    """
    from shipyard.errors import InvalidInputError

    parent = Path(path).parent
    if not parent.is_dir():
        raise InvalidInputError(
            f"{path}: the folder {parent} does not exist; create it first (mkdir -p {parent})"
        )


def write_bytes_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    overwrite: bool = True,
    mode: int = 0o666,
    parents: bool = True,
) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The temporary file is created with ``mode`` (less the umask) from the start, so a secret
    written with ``mode=0o600`` is never readable by others, not even for a moment. With
    ``overwrite=False`` an existing ``path`` is left alone and ``FileExistsError`` is raised;
    the check and the rename are one step (a hard link), so two writers cannot both win.
    Missing parent folders are created, unless ``parents`` is false (a file a user named,
    whose folder must already exist).

    Raises:
        FileExistsError: ``overwrite`` is false and ``path`` exists.
        FileNotFoundError: ``parents`` is false and the folder of ``path`` does not exist.
    """
    dest = Path(path)
    if parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if not overwrite:
                # A file that must not be replaced is worth a sync before it becomes visible.
                f.flush()
                os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, dest)
        else:
            _link_exclusive(tmp, dest, data, mode)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _link_exclusive(tmp: Path, dest: Path, data: bytes, mode: int) -> None:
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links (FAT, some network shares): create the final name
        # exclusively instead. Still never overwrites, but a reader could see it half written.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
