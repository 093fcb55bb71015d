"""Cache keys that hash content, not names.

A step's key is the BLAKE3 digest of its *components*:

- ``code``: the step's source, with the source of the functions and classes of its own module
  that it uses (and the constants it reads), so an edit elsewhere in the file is no change;
- ``modules``: each project-local module the step uses (a module it names, or the module of
  a function or class it calls), and the local modules those import in turn, by the digest of
  the file's bytes (a timestamp is no change; an edit is);
- ``params``: its plain arguments; ``inputs``: the digests of what earlier steps produced and
  of the dataset and model versions it reads;
- ``shipyard`` and ``packages``: shipyard's version, Python's, and the versions of the
  third-party distributions the step and those modules use;
- ``outputs``: the dataset or model name it registers its result as.

:func:`diff_components` lists what changed between two keys' components, which is what
``shipyard pipeline explain`` shows for a miss.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import inspect
import platform
import sys
import textwrap
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import canonical_json, digest_bytes

if TYPE_CHECKING:
    from shipyard.pipelines.dag import Step

__all__ = ["CodeScanner", "KeyChange", "cache_key", "diff_components"]

#: The parts of a key, in the order ``explain`` reports them.
COMPONENTS = ("code", "modules", "params", "inputs", "outputs", "shipyard", "packages")


def cache_key(components: dict[str, Any]) -> str:
    """The digest of a step's key components."""
    return digest_bytes(canonical_json(components))


@dataclass(frozen=True)
class KeyChange(ReadModel):
    """One part of a key that differs from the last run of the step: ``component`` (see
    :data:`COMPONENTS`), the item within it (a module, a param; empty for ``code``), and the
    values before and after (None: absent)."""

    component: str
    item: str
    before: Any
    after: Any


def diff_components(before: dict[str, Any], after: dict[str, Any]) -> list[KeyChange]:
    """What differs between two steps' key components, component by component.

    >>> diff_components({"params": {"C": 1}}, {"params": {"C": 2}})
    [KeyChange(component='params', item='C', before=1, after=2)]
    """
    out: list[KeyChange] = []
    for comp in (*COMPONENTS, *sorted((set(before) | set(after)) - set(COMPONENTS))):
        a, b = before.get(comp), after.get(comp)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for item in sorted(set(a) | set(b)):
                if a.get(item) != b.get(item):
                    out.append(KeyChange(comp, item, a.get(item), b.get(item)))
        else:
            out.append(KeyChange(comp, "", a, b))
    return out


class CodeScanner:
    """Reads the code a step depends on, for its key and its record. One scanner serves one
    pipeline run: each module file is read and parsed once, however many steps use it."""

    def __init__(self, roots: list[Path]) -> None:
        self._roots = [r.resolve() for r in roots]
        self._imports: dict[Path, tuple[list[Path], set[str]]] = {}
        self._digests: dict[Path, str] = {}
        self._steps: dict[int, dict[str, Any]] = {}
        self._computed: set[str] = set()

    def is_local(self, path: Path) -> bool:
        """Whether ``path`` is the project's own code (under a root, not an environment)."""
        parts = set(path.parts)
        if "site-packages" in parts or "dist-packages" in parts:
            return False
        return any(path.is_relative_to(r) for r in self._roots)

    def file_digest(self, path: Path) -> str:
        found = self._digests.get(path)
        if found is None:
            found = self._digests[path] = digest_bytes(path.read_bytes())
        return found

    def files(self) -> dict[Path, str]:
        """Every file read so far, with the digest of its bytes as read then: the files the
        keys of the steps scanned depend on."""
        return dict(self._digests)

    def computed_constants(self) -> set[str]:
        """The module-level constants (``module.NAME``) the steps scanned so far read whose
        value is not written in their file as a literal (``SCALE = int(os.environ[...])``,
        ``TODAY = date.today()``): their value is in the keys, but nothing on disk shows
        when it changes."""
        return set(self._computed)

    def packages(self) -> dict[str, str]:
        """The third-party distributions (name: version) of the steps scanned so far."""
        out: dict[str, str] = {}
        for record in self._steps.values():
            out.update(record["packages"])
        return out

    def step_code(self, s: Step[Any, Any]) -> dict[str, Any]:
        """The code record of a step: its source (with the helpers of its module it uses),
        the digest of that, the local modules its module imports and the third-party
        packages' versions::

            {"module", "qualname", "file", "source", "digest", "modules": {name: {"file",
             "digest"}}, "packages": {distribution: version}}
        """
        done = self._steps.get(id(s))
        if done is not None:
            return done
        from shipyard.pipelines.notebook import NotebookStep, notebook_code

        if isinstance(s, NotebookStep):
            self._steps[id(s)] = notebook_code(s, self)
            return self._steps[id(s)]
        fn = s.fn
        source = _source(fn)
        helpers, used = _helpers(fn, self._computed)
        text = "\n\n".join([source, *(helpers[k] for k in sorted(helpers))])
        file = Path(inspect.getfile(fn)).resolve()
        local: list[Path] = []
        third: set[str] = set()
        for name in sorted(used):
            path = _module_file(name)
            if path is not None and self.is_local(path):
                for p in self.module_closure(path, third):
                    if p not in local:
                        local.append(p)
            elif name.split(".")[0] not in sys.stdlib_module_names:
                third.add(name.split(".")[0])
        record = {
            "module": fn.__module__,
            "qualname": fn.__qualname__,
            "file": self.relative(file),
            "path": str(file),
            "file_digest": self.file_digest(file),
            "source": text,
            "digest": digest_bytes(text.encode()),
            "helpers": sorted(helpers),
            "modules": {
                _module_name(p, self._roots): {
                    "file": self.relative(p),
                    "digest": self.file_digest(p),
                }
                for p in local
                if p != file
            },
            "packages": _versions(third),
        }
        self._steps[id(s)] = record
        return record

    def relative(self, path: Path) -> str:
        for r in self._roots:
            if path.is_relative_to(r):
                return path.relative_to(r).as_posix()
        return str(path)

    def module_closure(self, file: Path, third: set[str]) -> list[Path]:
        """The local module files ``file`` imports, directly or through other local modules
        (``file`` first); the top-level names of the other modules they import are added to
        ``third``."""
        seen: list[Path] = []
        todo = [file]
        while todo:
            f = todo.pop()
            if f in seen:
                continue
            seen.append(f)
            local, names = self._module_imports(f)
            third |= names
            todo.extend(p for p in local if p not in seen)
        return seen

    def _module_imports(self, file: Path) -> tuple[list[Path], set[str]]:
        found = self._imports.get(file)
        if found is not None:
            return found
        tree = ast.parse(file.read_bytes(), filename=str(file))
        package = _package_of(file, self._roots)
        local: list[Path] = []
        third: set[str] = set()
        for name in _imported_names(tree, package):
            if name.split(".")[0] == "shipyard":  # its version is a component of its own
                continue
            path = _find_module_file(name)
            if path is not None and self.is_local(path):
                if path not in local:
                    local.append(path)
                continue
            top = name.split(".")[0]
            if top and top not in sys.stdlib_module_names:
                third.add(top)
        self._imports[file] = (local, third)
        return local, third


def environment_components() -> dict[str, str]:
    """shipyard's and Python's versions (part of every key)."""
    from shipyard import __version__

    return {"shipyard": __version__, "python": platform.python_version()}


def _source(fn: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # no source file (an interactive definition)
        return f"<no source: {fn.__module__}.{fn.__qualname__}>"


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _helpers(fn: Any, computed: set[str]) -> tuple[dict[str, str], set[str]]:
    """Source (or value) of the functions, classes and constants of ``fn``'s own module that
    ``fn`` uses, followed transitively: what an edit to the step's behaviour may touch
    without touching the step itself; and the names of the other modules whose objects (or
    themselves) they use. Constants whose value is not a literal in the module's file are
    added to ``computed`` (as ``module.NAME``)."""
    from shipyard.pipelines.dag import Pipeline, Step

    module = fn.__module__
    out: dict[str, str] = {}
    used: set[str] = set()
    seen: set[str] = set()
    todo = [fn]
    while todo:
        f = todo.pop()
        code = getattr(f, "__code__", None)
        if code is None:
            continue
        g = getattr(f, "__globals__", {})
        for name in sorted(_code_names(code)):
            if name in seen or name not in g:
                continue
            seen.add(name)
            value = g[name]
            if isinstance(value, types.ModuleType):
                used.add(value.__name__)
            elif isinstance(value, Step | Pipeline):
                used.add(value.fn.__module__)
            elif inspect.isfunction(value) or inspect.isclass(value):
                owner = getattr(value, "__module__", None) or ""
                if owner == module:
                    out[name] = _source(value)
                    if inspect.isfunction(value):
                        todo.append(value)
                elif owner:
                    used.add(owner)
            elif isinstance(value, int | float | str | bool | tuple | frozenset | type(None)):
                out[name] = f"{name} = {value!r}"
                if not _written_as(module, name, value):
                    computed.add(f"{module}.{name}")
            else:
                owner = getattr(type(value), "__module__", "") or ""
                if owner and owner != "builtins":
                    used.add(owner)
    used.discard(module)
    return out, {u for u in used if u.split(".")[0] != "shipyard"}


def _written_as(module: str, name: str, value: Any) -> bool:
    """Whether ``module``'s file assigns ``name`` once at the top level, to a literal that is
    ``value``."""
    found = _literal_constants(module).get(name)
    return found is not None and found == repr(value)


@cache
def _literal_constants(module: str) -> dict[str, str | None]:
    """``{name: repr of its literal}`` for the top-level names ``module``'s file assigns,
    None for a name assigned anything else or more than once."""
    path = _module_file(module)
    if path is None:
        return {}
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return {}
    out: dict[str, str | None] = {}
    for node in tree.body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            literal: str | None = None
            if value is not None and not isinstance(node, ast.AugAssign):
                try:
                    literal = repr(ast.literal_eval(value))
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    literal = None
            out[target.id] = None if target.id in out else literal
    for found in ast.walk(tree):  # a function may rebind it (``global NAME``)
        if isinstance(found, ast.Global):
            out.update(dict.fromkeys(found.names))
    return out


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    f = getattr(module, "__file__", None)
    if f:
        path = Path(f)
        return path.resolve() if path.suffix == ".py" else None
    return _find_module_file(name)


def _imported_names(tree: ast.AST, package: str | None) -> list[str]:
    """Module names an import statement anywhere in ``tree`` names (``from a import b``
    names ``a`` and ``a.b``, since ``b`` may be a submodule)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if not package:
                    continue
                parts = package.split(".")
                if node.level > 1:
                    parts = parts[: -(node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if base:
                names.append(base)
                names.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return names


def _find_module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    path = Path(spec.origin)
    return path.resolve() if path.suffix == ".py" else None


def _package_of(file: Path, roots: list[Path]) -> str | None:
    name = _module_name(file, roots)
    if file.name == "__init__.py":
        return name
    return name.rpartition(".")[0] or None


def _module_name(file: Path, roots: list[Path]) -> str:
    """The dotted name of a local module file, from the entry of ``sys.path`` it is under."""
    best: Path | None = None
    for entry in sys.path:
        try:
            base = Path(entry or ".").resolve()
        except OSError:
            continue
        if file.is_relative_to(base) and (best is None or len(base.parts) > len(best.parts)):
            best = base
    if best is None:
        best = next((r for r in roots if file.is_relative_to(r)), file.parent)
    rel = file.relative_to(best).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or file.stem


#: Import names whose distribution is named otherwise, resolved without a scan of every
#: installed distribution's files (``packages_distributions`` reads each RECORD: over a
#: second in a typical environment, for every ``shipyard pipeline run``).
_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "bs4": "beautifulsoup4",
    "attr": "attrs",
    "jwt": "pyjwt",
    "dotenv": "python-dotenv",
}


@cache
def _all_distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@cache
def _distribution_of(top: str) -> tuple[str, str] | None:
    """The distribution (name, version) that provides import name ``top``, if installed."""
    for name in (_KNOWN_DISTRIBUTIONS.get(top, top), top.replace("_", "-")):
        try:
            return name.lower(), importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    for dist in _all_distributions().get(top, []):  # the slow, complete way
        try:
            return dist.lower(), importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _versions(top_level: set[str]) -> dict[str, str]:
    found = (_distribution_of(name) for name in sorted(top_level))
    return dict(sorted(f for f in found if f is not None))
