"""Where pipelines come from: ``FILE.py[:NAME]`` (a ``@pipeline`` function) or ``FILE.yaml``
(DVC-style: steps, their inputs and params), loaded the same way on the machine that starts a
run and on every worker.

A YAML pipeline::

    pipeline: churn
    params: {rows: 200, C: 1.0}
    steps:
      prepare:
        call: steps.py:prepare          # FILE:FUNCTION (or module:function)
        inputs: {raw: dataset:credit@latest}
        params: {rows: ${rows}}
      train:
        call: steps.py:train
        inputs: {table: prepare}        # the output of step `prepare`
        params: {C: ${C}}
        model: churn                    # options: volatile, ttl, retries, timeout, dataset
      report:
        notebook: report.ipynb          # a notebook run through papermill (kernel: NAME)
        inputs: {table: prepare}        # inputs and params are its papermill parameters
        params: {title: churn}
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard._internal.hashing import digest_bytes
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.pipelines.dag import Dag, Input, Node, Output, Pipeline, Step, convert_params

__all__ = ["PipelineSource", "find_step", "load_module", "load_source"]

_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STEP_OPTIONS = ("volatile", "ttl", "retries", "timeout", "dataset", "model")


@dataclass
class PipelineSource:
    """A loaded pipeline: the file it came from (``path``), its name, and how to build its
    graph for some params."""

    path: Path
    name: str
    kind: str  # "python" | "yaml"
    pipeline: Pipeline | None = None
    document: dict[str, Any] | None = None

    @property
    def spec(self) -> str:
        return f"{self.path}:{self.name}" if self.kind == "python" else str(self.path)

    def build(self, params: Mapping[str, Any]) -> Dag:
        if self.pipeline is not None:
            return self.pipeline.build(params)
        assert self.document is not None
        return _build_yaml(self.path, self.name, self.document, params)


def load_source(target: str, *, fresh: bool = True) -> PipelineSource:
    """The pipeline ``FILE[:NAME]`` names (NAME may be left out when the file holds one).

    Raises:
        NotFoundError: no such file, or no such pipeline in it.
        InvalidInputError: the file is not Python or YAML, or is not a valid pipeline.
    """
    file, _, name = target.partition(":") if not Path(target).exists() else (target, "", "")
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise NotFoundError(f"no pipeline file {file}")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{path.name} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), dict):
            raise InvalidInputError(f"{path.name}: a YAML pipeline needs a `steps:` mapping")
        return PipelineSource(path, str(doc.get("pipeline") or path.stem), "yaml", document=doc)
    if path.suffix != ".py":
        raise InvalidInputError(f"{path.name}: give a Python (.py) or YAML (.yaml) pipeline file")
    module = load_module(path, fresh=fresh)
    found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if name:
        chosen = found.get(name) or next((p for p in found.values() if p.name == name), None)
        if chosen is None:
            raise NotFoundError(
                f"no @pipeline {name!r} in {path.name} (found: {', '.join(found) or 'none'})"
            )
    elif len(found) == 1:
        chosen = next(iter(found.values()))
    else:
        raise InvalidInputError(
            f"{path.name} holds {len(found)} pipelines; name one: {path.name}:NAME "
            f"({', '.join(found) or 'none found'})"
        )
    return PipelineSource(path, chosen.name, "python", pipeline=chosen)


def module_name(path: Path) -> str:
    """The name a pipeline file is imported under: the same on every machine for the same
    file name and content, and unlike any installed module."""
    stem = re.sub(r"\W", "_", path.stem)
    return f"shipyard_pipeline_{stem}"


def load_module(path: Path, *, fresh: bool) -> types.ModuleType:
    """Import a pipeline (or step) file by path, its folder first on ``sys.path`` so its own
    imports (``import helpers``) find the files beside it. ``fresh`` forgets the modules
    loaded from that folder before, so an edited helper is read again."""
    path = path.resolve()
    put_first_on_path(path.parent)
    name = module_name(path)
    current = sys.modules.get(name)
    if current is not None and not fresh:
        if getattr(current, "__shipyard_digest__", None) == digest_bytes(path.read_bytes()):
            return current
        fresh = True
    if fresh:
        _forget_modules_of(path.parent)
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    module.__shipyard_digest__ = digest_bytes(path.read_bytes())  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def put_first_on_path(folder: Path) -> None:
    entry = str(folder)
    if sys.path[:1] != [entry]:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def _forget_modules_of(folder: Path) -> None:
    """Drop from ``sys.modules`` the modules imported from ``folder`` (not those found
    through a deeper ``sys.path`` entry, such as an installed ``src/`` package)."""
    prefix = str(folder) + os.sep
    deeper = []
    for entry in sys.path:
        try:
            base = str(Path(entry or ".").resolve())
        except OSError:
            continue
        if base.startswith(prefix):
            deeper.append(base + os.sep)
    # Modules of the same name loaded from another folder would shadow this folder's.
    here = {p.stem for p in folder.glob("*.py")} | {
        p.parent.name for p in folder.glob("*/__init__.py")
    }
    environment = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    for key, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if not f or key.split(".")[0] == "shipyard" or f.startswith(environment):
            continue  # built-in, shipyard itself, the standard library, installed packages
        if key.split(".")[0] in here or (
            f.startswith(prefix) and not any(f.startswith(d) for d in deeper)
        ):
            del sys.modules[key]


def find_step(module_name_: str, qualname: str) -> Step[Any, Any]:
    """The step (or plain function, for YAML pipelines) ``module:qualname``, once its file
    has been loaded."""
    module = sys.modules.get(module_name_)
    if module is None:
        module = importlib.import_module(module_name_)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, Step):
        return obj
    if callable(obj):
        return Step(obj)
    raise NotFoundError(f"no step {qualname} in module {module_name_}")


def _build_yaml(path: Path, name: str, doc: dict[str, Any], params: Mapping[str, Any]) -> Dag:
    import inspect

    from shipyard.refs import validate_name

    validate_name(name, "pipeline name")
    defaults = doc.get("params") or {}
    if not isinstance(defaults, dict):
        raise InvalidInputError(f"{path.name}: `params:` must be a mapping")
    sig = inspect.Signature(
        [
            inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
            for k, v in defaults.items()
        ]
    )
    values = convert_params(sig, params, f"pipeline {name}")
    nodes: dict[str, Node] = {}
    problems: list[str] = []
    for step_name, spec in doc["steps"].items():
        where = f"step {step_name}"
        if isinstance(spec, dict) and "call" in spec and "notebook" in spec:
            problems.append(f"{where}: give `call:` or `notebook:`, not both")
            continue
        if isinstance(spec, dict) and isinstance(spec.get("notebook"), str):
            try:
                s = _notebook_step(path, spec)
            except (TypeError, InvalidInputError, NotFoundError) as exc:
                problems.append(f"{where}: {exc}")
                continue
        elif not isinstance(spec, dict) or not isinstance(spec.get("call"), str):
            problems.append(f"{where}: needs `call: FILE.py:FUNCTION` or `notebook: FILE.ipynb`")
            continue
        else:
            try:
                fn = _resolve_call(path, spec["call"])
            except (InvalidInputError, NotFoundError) as exc:
                problems.append(f"{where}: {exc}")
                continue
            options = {k: spec[k] for k in _STEP_OPTIONS if k in spec}
            try:
                s = (
                    fn
                    if isinstance(fn, Step) and not options
                    else Step(getattr(fn, "fn", fn), **options)
                )
            except (TypeError, InvalidInputError) as exc:
                problems.append(f"{where}: bad option ({exc})")
                continue
        args: dict[str, Any] = {}
        upstream: list[str] = []
        for arg, value in (spec.get("params") or {}).items():
            try:
                args[arg] = _substitute(value, values)
            except InvalidInputError as exc:
                problems.append(f"{where}: param {arg!r}: {exc}")
        for arg, value in (spec.get("inputs") or {}).items():
            items = value if isinstance(value, list) else [value]
            converted: list[Any] = []
            for item in items:
                text = str(item)
                kind, sep, ref = text.partition(":")
                if sep and kind in ("dataset", "model"):
                    try:
                        converted.append(Input(kind, str(_substitute(ref, values))))
                    except InvalidInputError as exc:
                        problems.append(f"{where}: input {arg!r}: {exc}")
                elif text in nodes:
                    converted.append(Output(text))
                    if text not in upstream:
                        upstream.append(text)
                else:
                    problems.append(
                        f"{where}: input {arg!r} names {text!r}, which is no earlier step "
                        "(or use dataset:REF / model:REF)"
                    )
            # (a problem above left nothing: the whole file is refused below anyway)
            args[arg] = converted if isinstance(value, list) else next(iter(converted), None)
        try:
            bound = s.signature.bind(**args)
            bound.apply_defaults()
        except TypeError as exc:
            problems.append(f"{where}: {exc}")
            continue
        nodes[step_name] = Node(step_name, s, dict(bound.arguments), upstream)
    if problems:
        raise InvalidInputError.from_problems(path.name, problems)
    return Dag(name, {k: v for k, v in values.items()}, nodes)


def _notebook_step(pipeline_file: Path, spec: dict[str, Any]) -> Step[Any, Any]:
    """The step of a ``notebook:`` entry: the notebook (relative to the pipeline file) run
    with the entry's inputs and params as papermill parameters."""
    from shipyard.pipelines.notebook import NotebookStep

    notebook = (pipeline_file.parent / spec["notebook"]).resolve()
    if not notebook.is_file():
        raise NotFoundError(f"no notebook {spec['notebook']}")
    names = [*(spec.get("inputs") or {}), *(spec.get("params") or {})]
    kernel = spec.get("kernel")
    options = {k: spec[k] for k in _STEP_OPTIONS if k in spec}
    return NotebookStep(
        notebook, names, kernel=str(kernel) if kernel is not None else None, **options
    )


def _resolve_call(pipeline_file: Path, call: str) -> Any:
    file, sep, func = call.rpartition(":")
    if not sep or not file or not func:
        raise InvalidInputError(f"call {call!r} must be FILE.py:FUNCTION or module:function")
    if file.endswith(".py"):
        target = (pipeline_file.parent / file).resolve()
        if not target.is_file():
            raise NotFoundError(
                f"no file {file} (looked for {target}; a `call:` file is relative to "
                f"{pipeline_file.name})"
            )
        module = load_module(target, fresh=False)
    else:
        put_first_on_path(pipeline_file.parent)
        try:
            module = importlib.import_module(file)
        except ModuleNotFoundError as exc:
            if exc.name is None or not file.startswith(exc.name):
                raise  # the module exists but imports one that does not
            raise NotFoundError(
                f"no module {file} (give FILE.py:FUNCTION for a file beside {pipeline_file.name})"
            ) from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise NotFoundError(f"no function {func!r} in {file}")
    return fn


def _substitute(value: Any, params: Mapping[str, Any]) -> Any:
    """``${name}`` replaced by the pipeline param; a value that is exactly one ``${name}``
    keeps the param's type."""
    if isinstance(value, str):
        whole = _PARAM.fullmatch(value)
        if whole:
            key = whole.group(1)
            if key not in params:
                raise InvalidInputError(f"unknown param ${{{key}}}")
            return params[key]
        for key in _PARAM.findall(value):
            if key not in params:
                raise InvalidInputError(f"unknown param ${{{key}}}")
        return _PARAM.sub(lambda m: str(params[m.group(1)]), value)
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    return value
