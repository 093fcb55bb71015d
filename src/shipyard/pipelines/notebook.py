"""Notebooks as pipeline steps, executed with parameters through papermill.

In a Python pipeline, :func:`notebook_step` adds a step that runs a notebook::

    @pipeline
    def churn(C: float = 1.0) -> None:
        table = prepare(dataset("credit@latest"))
        notebook_step("train.ipynb", inputs={"table": table}, params={"C": C})

and in a YAML pipeline a step names ``notebook: train.ipynb`` where others name ``call:``.

The contract:

- **Parameters.** Each input and param becomes a papermill parameter, injected after the
  notebook's cell tagged ``parameters`` (a notebook that has one must declare there every
  name it is given). JSON values go in as they are; a table (an upstream DataFrame or a table
  dataset) as the path of a Parquet file; a numpy array as the path of a ``.npy`` file; a
  file as its path; a model version as its reference (``name@N``).
- **Outputs.** The parameter ``shipyard_outputs`` is the path of an empty folder. What the
  notebook writes there as ``result.json``, ``result.parquet`` (a table) or ``result.npy``
  is the step's return value (none: the step returns None); every other file written there
  is stored as an artifact of the step's run (``notebook-outputs/…``).
- **Records.** The executed notebook, with its outputs, is an artifact of the step's run
  (``notebook/NAME.ipynb``), failing or not. ``PAPERMILL_INPUT_PATH`` is the notebook's
  path, so a run started inside it records the notebook as its code.
- **Cache key.** The step's code is the stripped notebook (see
  :mod:`shipyard.tracking.notebook`): running it or clearing its outputs is no change, an
  edited cell is a code change (``pipeline explain`` shows its digest before and after). The
  project-local modules its code cells import are part of the key too.

The notebook runs in its own folder, on the kernel its metadata names (``python3`` when it
names none; ``kernel=`` picks another). Needs the ``notebooks`` extra
(``pip install 'shipyard[notebooks]'``).
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, MissingDependencyError, NotFoundError, ShipyardError
from shipyard.pipelines.dag import _BUILDER, Output, Step
from shipyard.refs import validate_name
from shipyard.tracking.notebook import code_cells, strip_notebook

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shipyard.pipelines.cache import CodeScanner

__all__ = ["NotebookFailed", "NotebookStep", "notebook_step"]

#: The parameter that names the folder a notebook writes its outputs to.
OUTPUTS_PARAM = "shipyard_outputs"
_RESULTS = ("result.json", "result.parquet", "result.npy")
_RESERVED = (OUTPUTS_PARAM, "PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH")


class NotebookFailed(ShipyardError):
    """A notebook step's notebook raised in one of its cells."""

    code = "notebook_failed"


class _ReservedParameters(logging.Filter):
    """Drops papermill's warning that a notebook does not declare the parameters shipyard
    always passes (the others it warns about are the user's to see)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.getMessage() == f"Passed unknown parameter: {n}" for n in _RESERVED)


_FILTER = _ReservedParameters()


def _papermill() -> Any:
    try:
        import papermill
    except ImportError:
        raise MissingDependencyError.for_extra(
            "papermill", "notebooks", "a notebook step"
        ) from None
    logger = logging.getLogger("papermill")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return papermill


class NotebookRunner:
    """The function of a notebook step: runs the notebook with its arguments as papermill
    parameters and returns its result (see the module docstring).

    The notebook is read (and stripped) once: what runs is what the key was computed from."""

    def __init__(
        self, path: Path, *, kernel: str | None = None, timeout: float | None = None
    ) -> None:
        self.path = path
        self.kernel = kernel
        self.timeout = timeout
        self.__name__ = _step_name(path)
        self.__qualname__ = f"notebook:{path.name}"
        self.__module__ = __name__
        self.__doc__ = f"The notebook {path.name}, run through papermill."
        self._stripped: tuple[str, str] | None = None

    def stripped(self) -> tuple[str, str]:
        """The stripped notebook and its digest, read the first time they are asked for.

        Raises:
            NotFoundError: no such notebook.
            InvalidInputError: the file is not a notebook.
        """
        if self._stripped is None:
            try:
                content = self.path.read_bytes()
            except FileNotFoundError:
                raise NotFoundError(f"no notebook {self.path}") from None
            self._stripped = strip_notebook(content)
        return self._stripped

    def parameters(self) -> list[str] | None:
        """The names the notebook's ``parameters`` cell assigns, or None without one."""
        doc = json.loads(self.stripped()[0])
        for cell in doc["cells"]:
            if cell["cell_type"] == "code" and "parameters" in cell["metadata"].get("tags", []):
                try:
                    tree = ast.parse(cell["source"])
                except SyntaxError:
                    return None
                names: list[str] = []
                for node in tree.body:
                    targets = (
                        node.targets
                        if isinstance(node, ast.Assign)
                        else [node.target]
                        if isinstance(node, ast.AnnAssign)
                        else []
                    )
                    names.extend(t.id for t in targets if isinstance(t, ast.Name))
                return names
        return None

    def __call__(self, **kwargs: Any) -> Any:
        from shipyard.pipelines.worker import _CURRENT

        pm = _papermill()
        ctx = _CURRENT.get()
        text, _ = self.stripped()
        with tempfile.TemporaryDirectory(prefix="shipyard-notebook-") as tmp:
            folder = Path(tmp)
            source = folder / self.path.name
            source.write_text(text, encoding="utf-8")
            executed = folder / "executed" / self.path.name
            executed.parent.mkdir()
            inputs = folder / "inputs"
            inputs.mkdir()
            outputs = folder / OUTPUTS_PARAM
            outputs.mkdir()
            parameters = {k: _as_parameter(v, k, inputs) for k, v in kwargs.items()}
            parameters.update(
                {
                    OUTPUTS_PARAM: str(outputs),
                    "PAPERMILL_INPUT_PATH": str(self.path),
                    "PAPERMILL_OUTPUT_PATH": str(executed),
                }
            )
            try:
                pm.execute_notebook(
                    str(source),
                    str(executed),
                    parameters=parameters,
                    kernel_name=self.kernel or _kernel_of(text),
                    # The kernel starts in the notebook's folder. Not papermill's `cwd`,
                    # which changes this whole process's folder while the notebook runs.
                    resources={"metadata": {"path": str(self.path.parent)}},
                    progress_bar=False,
                    request_save_on_cell_execute=False,
                    execution_timeout=self.timeout,
                )
            except pm.PapermillExecutionError as exc:
                raise NotebookFailed(
                    f"notebook {self.path.name} failed in cell {exc.exec_count or '?'}: "
                    f"{exc.ename}: {exc.evalue}"
                ) from None
            finally:
                if ctx is not None and executed.is_file():
                    ctx.run.log_artifact(executed, f"notebook/{self.path.name}")
            result = _read_result(outputs, self.path.name)
            extra = [p for p in sorted(outputs.rglob("*")) if p.is_file()]
            if ctx is not None:
                for p in extra:
                    if p.parent != outputs or p.name not in _RESULTS:
                        ctx.run.log_artifact(p, f"notebook-outputs/{p.relative_to(outputs)}")
            return result


def _kernel_of(stripped: str) -> str:
    """The kernel a notebook names, or Python's (a notebook written by a tool may name none)."""
    spec = json.loads(stripped)["metadata"].get("kernelspec") or {}
    return str(spec.get("name") or "python3")


def _read_result(outputs: Path, notebook: str) -> Any:
    found = [outputs / n for n in _RESULTS if (outputs / n).is_file()]
    if len(found) > 1:
        raise InvalidInputError(
            f"notebook {notebook} wrote {' and '.join(p.name for p in found)}; write one result"
        )
    if not found:
        return None
    path = found[0]
    if path.suffix == ".json":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InvalidInputError(
                f"notebook {notebook}: result.json is not JSON: {exc}"
            ) from None
    if path.suffix == ".parquet":
        import polars as pl

        return pl.read_parquet(path)
    import numpy as np

    return np.load(path, allow_pickle=False)


def _as_parameter(value: Any, name: str, folder: Path) -> Any:
    """A step argument as a papermill parameter (JSON, or the path of a file)."""
    if isinstance(value, list):
        return [_as_parameter(v, f"{name}_{i}", folder) for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    module = type(value).__module__.split(".")[0]
    kind = type(value).__name__
    if module in ("polars", "pandas") and kind == "DataFrame":
        import polars as pl

        frame = value if module == "polars" else pl.from_pandas(value)
        path = folder / f"{name}.parquet"
        frame.write_parquet(path)
        return str(path)
    if module == "numpy" and kind == "ndarray":
        import numpy as np

        path = folder / f"{name}.npy"
        np.save(path, value, allow_pickle=False)
        return str(path)
    if kind == "DatasetVersion" and getattr(value, "kind", None) == "table":
        path = folder / f"{name}.parquet"
        value.to_polars().write_parquet(path)
        return str(path)
    if kind in ("DatasetVersion", "ModelVersion"):
        return str(value.ref)
    return value


def _step_name(path: Path) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "notebook"
    return name if name[0].isalpha() else f"nb_{name}"


class NotebookStep(Step[..., Any]):
    """A step that runs a notebook (see the module docstring); its arguments are the names
    it is given, each a papermill parameter."""

    def __init__(
        self,
        path: str | Path,
        names: list[str],
        *,
        kernel: str | None = None,
        volatile: bool = False,
        ttl: float | None = None,
        retries: int = 0,
        timeout: float | None = None,
        dataset: str | None = None,
        model: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        notebook = Path(path).expanduser().resolve()
        if notebook.suffix != ".ipynb":
            raise InvalidInputError(f"{notebook.name}: a notebook step needs a .ipynb file")
        runner = NotebookRunner(notebook, kernel=kernel, timeout=timeout)
        super().__init__(
            runner,
            volatile=volatile,
            ttl=ttl,
            retries=retries,
            timeout=timeout,
            dataset=dataset,
            model=model,
            tags=tags,
        )
        self.runner = runner
        self.path = notebook
        self.kernel = kernel
        for n in names:
            if n in _RESERVED:
                raise InvalidInputError(f"notebook {notebook.name}: {n!r} is a reserved name")
        self.signature = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
        )
        declared = runner.parameters()
        unknown = [n for n in names if declared is not None and n not in declared]
        if unknown:
            raise InvalidInputError(
                f"notebook {notebook.name} declares no parameter {', '.join(map(repr, unknown))} "
                f"in its `parameters` cell (declared: {', '.join(declared or []) or 'none'})"
            )

    def __repr__(self) -> str:
        return f"NotebookStep({self.path.name})"

    def options(self) -> dict[str, Any]:
        return {**super().options(), "notebook": str(self.path), "kernel": self.kernel}


def notebook_step(
    path: str | Path,
    *,
    name: str | None = None,
    inputs: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    kernel: str | None = None,
    volatile: bool = False,
    ttl: float | None = None,
    retries: int = 0,
    timeout: float | None = None,
    dataset: str | None = None,
    model: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Output:
    """A step of the pipeline being built that runs the notebook ``path`` (relative to the
    file that calls this) with ``inputs`` (outputs of other steps, or ``dataset(...)`` /
    ``model(...)``) and ``params`` (JSON values) as papermill parameters; returns its output.

    >>> notebook_step("train.ipynb", inputs={"t": table}, params={"C": C})  # doctest: +SKIP

    Raises:
        InvalidInputError: outside a ``@pipeline``, not a notebook, a name given twice or not
            declared in the notebook's ``parameters`` cell.
    """
    builder = _BUILDER.get()
    if builder is None:
        raise InvalidInputError("notebook_step(...) is for use inside a @pipeline")
    inputs = dict(inputs or {})
    params = dict(params or {})
    both = sorted(set(inputs) & set(params))
    if both:
        raise InvalidInputError(f"notebook step: {', '.join(both)} given as input and as param")
    notebook = Path(path).expanduser()
    if not notebook.is_absolute():
        caller = sys._getframe(1).f_globals.get("__file__")
        notebook = (Path(caller).parent if caller else Path.cwd()) / notebook
    if not notebook.is_file():
        raise NotFoundError(f"no notebook {notebook}")
    s = NotebookStep(
        notebook,
        [*inputs, *params],
        kernel=kernel,
        volatile=volatile,
        ttl=ttl,
        retries=retries,
        timeout=timeout,
        dataset=dataset,
        model=model,
        tags=tags,
    )
    node = validate_name(name, "step name") if name else s.name
    return builder.add(s, (), {**inputs, **params}, name=builder.unique(node))


# --------------------------------------------------------------------------- cache and workers


def notebook_code(s: NotebookStep, scanner: CodeScanner) -> dict[str, Any]:
    """The code record of a notebook step (the shape of :meth:`CodeScanner.step_code`'s):
    the stripped notebook as its source and digest, the local modules its code cells import,
    and the versions of the packages they import and of the ones that run it."""
    from shipyard.pipelines.cache import _module_name, _versions

    text, digest = s.runner.stripped()
    local: list[Path] = []
    third: set[str] = {"papermill", "nbclient", "ipykernel"}
    for top in _imports_of(code_cells(text)):
        path = _local_module(top, s.path.parent)
        if path is not None and scanner.is_local(path):
            for p in scanner.module_closure(path, third):
                if p not in local:
                    local.append(p)
        elif top != "shipyard" and top not in sys.stdlib_module_names:
            third.add(top)
    return {
        "module": __name__,
        "qualname": f"notebook:{s.path.name}",
        "file": scanner.relative(s.path),
        "path": str(s.path),
        "file_digest": scanner.file_digest(s.path),
        "source": text,
        "digest": digest,
        "helpers": [],
        "modules": {
            _module_name(p, [s.path.parent]): {
                "file": scanner.relative(p),
                "digest": scanner.file_digest(p),
            }
            for p in local
        },
        "packages": _versions(third),
        "notebook": {"kernel": s.kernel, "timeout": s.timeout},
    }


def _imports_of(code: str) -> list[str]:
    """Top-level module names the code imports (absolute imports only)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython syntax the magics filter missed: no modules found
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module.split(".")[0])
    return sorted(set(names))


def _local_module(top: str, folder: Path) -> Path | None:
    """The file of module ``top`` beside the notebook (where its kernel finds it first)."""
    for candidate in (folder / f"{top}.py", folder / top / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    from shipyard.pipelines.cache import _find_module_file

    return _find_module_file(top)


def load_notebook(step_file: Path, code: dict[str, Any]) -> NotebookRunner:
    """The runner of a notebook step on a worker, after checking that the notebook there is
    the one the key was computed from.

    Raises:
        InvalidInputError: the notebook differs.
    """
    options = code.get("notebook") or {}
    runner = NotebookRunner(step_file, kernel=options.get("kernel"), timeout=options.get("timeout"))
    _, digest = runner.stripped()
    if digest != code["digest"]:
        raise InvalidInputError(
            f"the notebook {step_file.name} on this worker differs from the one the run "
            "started with; give workers the same project files"
        )
    return runner
