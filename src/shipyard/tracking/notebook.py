"""Jupyter notebooks as code: a notebook stripped of what changes when it runs or is saved,
its content hash, and where the notebook of the running kernel is.

A stripped notebook keeps what decides what it does: each cell's type, source, tags (a
papermill ``parameters`` cell is a tag) and attachments, and the kernel's name and language
(``kernelspec``). It drops outputs, execution counts, cell ids and every other piece of
metadata (widget state, ``language_info`` with the kernel's Python version, editor
settings), and is written as nbformat 4.4 JSON with sorted keys. Its digest is the BLAKE3
digest of that text: running a notebook, clearing its outputs or saving it again does not
change the digest; editing a cell does.

>>> text, digest = strip_notebook(Path("train.ipynb").read_bytes())  # doctest: +SKIP

A run started inside a Jupyter kernel records its notebook (see :func:`capture_notebook`).
The notebook is found the way Jupyter tools find it: the ``JPY_SESSION_NAME`` variable that
Jupyter Server 2 sets for each kernel, VS Code's ``__vsc_ipynb_file__``, or papermill's
``PAPERMILL_INPUT_PATH`` parameter. What is read is the notebook as last saved.

Needs the ``notebooks`` extra (``pip install 'shipyard[notebooks]'``) for nbformat.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from shipyard._internal.hashing import digest_bytes
from shipyard.errors import InvalidInputError, MissingDependencyError

__all__ = ["NotebookCapture", "capture_notebook", "locate_notebook", "strip_notebook"]

#: Cell metadata that changes what a notebook does (papermill reads ``tags``).
_CELL_METADATA = ("tags",)


def _nbformat() -> Any:
    try:
        import nbformat
    except ImportError:
        raise MissingDependencyError.for_extra(
            "nbformat", "notebooks", "reading notebooks"
        ) from None
    return nbformat


def strip_notebook(content: bytes | str) -> tuple[str, str]:
    """The stripped notebook (JSON text) and its digest (see the module docstring).

    Raises:
        InvalidInputError: the content is not a notebook.
        MissingDependencyError: nbformat is not installed.
    """
    nbformat = _nbformat()
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for a bad file
        raise InvalidInputError(f"not a Jupyter notebook: {exc}") from None
    cells = []
    for cell in nb.cells:
        out: dict[str, Any] = {
            "cell_type": cell.cell_type,
            "metadata": {k: cell.metadata[k] for k in _CELL_METADATA if k in cell.metadata},
            "source": cell.source,
        }
        if cell.cell_type == "code":
            out["execution_count"] = None
            out["outputs"] = []
        if cell.get("attachments"):
            out["attachments"] = cell.attachments
        cells.append(out)
    metadata: dict[str, Any] = {}
    spec = nb.metadata.get("kernelspec")
    if isinstance(spec, dict):
        metadata["kernelspec"] = {k: spec[k] for k in ("name", "language") if k in spec}
    doc = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 4}
    stripped = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return stripped, digest_bytes(stripped.encode("utf-8"))


def code_cells(stripped: str) -> str:
    """The source of a stripped notebook's code cells, one after the other, with IPython's
    magics and shell escapes (``%``, ``!``) left out: the Python a notebook runs."""
    doc = json.loads(stripped)
    parts: list[str] = []
    for cell in doc["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = [ln for ln in cell["source"].splitlines() if not ln.lstrip().startswith(("%", "!"))]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- the kernel's own


def _kernel_shell() -> Any:
    """The IPython shell of the Jupyter kernel this code runs in, or None (a plain Python
    process, or terminal IPython, which has no notebook)."""
    module = sys.modules.get("IPython")  # never import IPython: a script does not need it
    if module is None:
        return None
    try:
        shell = module.get_ipython()
    except Exception:
        return None
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return shell


def locate_notebook(shell: Any = None) -> tuple[Path | None, str | None]:
    """The notebook of the running kernel and how it was found (``JPY_SESSION_NAME``,
    ``__vsc_ipynb_file__`` or ``PAPERMILL_INPUT_PATH``), or ``(None, None)``."""
    shell = shell if shell is not None else _kernel_shell()
    names: dict[str, Any] = dict(getattr(shell, "user_ns", None) or {})
    candidates = [
        ("JPY_SESSION_NAME", os.environ.get("JPY_SESSION_NAME")),
        ("__vsc_ipynb_file__", names.get("__vsc_ipynb_file__")),
        ("PAPERMILL_INPUT_PATH", names.get("PAPERMILL_INPUT_PATH")),
    ]
    for how, value in candidates:
        if not isinstance(value, str) or not value.strip():
            continue
        path = Path(value).expanduser()
        # Jupyter Server may give the path from its root folder; the kernel runs in the
        # notebook's folder.
        for p in (path, Path.cwd() / path, Path.cwd() / path.name):
            try:
                if p.suffix == ".ipynb" and p.is_file():
                    return p.resolve(), how
            except OSError:
                continue
    return None, None


class NotebookCapture:
    """What a run records of its notebook: ``record`` (in the run's code document, under
    ``notebook``) and the stripped text, stored as the run's artifact ``record["artifact"]``
    (None when the notebook could not be read)."""

    def __init__(self, record: dict[str, Any], stripped: str | None) -> None:
        self.record = record
        self.stripped = stripped


def capture_notebook() -> NotebookCapture | None:
    """The notebook of the running Jupyter kernel, or None outside one. Never raises: a
    notebook that cannot be found or read is recorded as such::

        {"path": "/abs/train.ipynb", "located_by": "JPY_SESSION_NAME",
         "digest": "blake3:…", "artifact": "code/train.ipynb"}
        {"path": None, "error": "the notebook could not be located (…)"}
    """
    shell = _kernel_shell()
    if shell is None:
        return None
    try:
        path, how = locate_notebook(shell)
    except Exception as exc:  # capturing never fails a run
        return NotebookCapture(
            {"path": None, "error": f"locating the notebook failed: {exc}"}, None
        )
    if path is None:
        return NotebookCapture(
            {
                "path": None,
                "error": "the notebook could not be located (no JPY_SESSION_NAME, "
                "__vsc_ipynb_file__ or PAPERMILL_INPUT_PATH)",
            },
            None,
        )
    record: dict[str, Any] = {"path": str(path), "located_by": how}
    try:
        stripped, digest = _stripped_file(path)
    except (OSError, InvalidInputError, MissingDependencyError) as exc:
        return NotebookCapture({**record, "error": str(exc)}, None)
    return NotebookCapture({**record, "digest": digest, "artifact": f"code/{path.name}"}, stripped)


#: The last notebook stripped, by path, size and modification time: a sweep of many runs in
#: one kernel reads a notebook that has not changed since the previous run.
_LAST: dict[tuple[str, int, int], tuple[str, str]] = {}


def _stripped_file(path: Path) -> tuple[str, str]:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    found = _LAST.get(key)
    if found is None:
        found = strip_notebook(path.read_bytes())
        _LAST.clear()
        _LAST[key] = found
    return found
