"""Pipelines written in Python: ``@step`` functions, an ``@pipeline`` function that calls them,
and the graph of step calls that calling the pipeline builds.

>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> @pipeline
... def twice(n: int = 3) -> None:
...     double(double(n))
>>> [(n.name, n.upstream) for n in twice.build({}).nodes.values()]
[('double', []), ('double_2', ['double'])]

Inside a pipeline function a step call does not run the step: it records a node and returns
an :class:`Output` that later calls take as an argument (an edge). Outside a pipeline a step
is the plain function it decorates.
"""

from __future__ import annotations

import contextvars
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from shipyard.errors import InvalidArgumentError, InvalidInputError
from shipyard.refs import validate_name

__all__ = [
    "Dag",
    "Input",
    "Node",
    "Output",
    "Pipeline",
    "Step",
    "convert_params",
    "dataset",
    "model",
    "pipeline",
    "step",
]

P = ParamSpec("P")
R = TypeVar("R")

_BUILDER: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar(
    "shipyard_pipeline_builder", default=None
)


class Step(Generic[P, R]):
    """A function marked ``@step``: a unit of a pipeline, cached by content (see
    :mod:`shipyard.pipelines.cache`).

    ``volatile`` steps always run; ``ttl`` (seconds) bounds how old a cached result may be;
    ``retries`` re-runs a failing step; ``timeout`` (seconds) fails a step that runs longer.
    ``dataset`` registers the step's returned table as a version of that dataset, and
    ``model`` its returned scikit-learn estimator as a version of that model; ``tags`` are
    the tags of the version it registers (those the project's annotation policy requires,
    such as ``{"team": "risk"}`` or ``{"owner": "alice"}``).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        volatile: bool = False,
        ttl: float | None = None,
        retries: int = 0,
        timeout: float | None = None,
        dataset: str | None = None,
        model: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if retries < 0:
            raise InvalidInputError(f"step {fn.__name__}: retries must be 0 or more")
        for what, value in (("ttl", ttl), ("timeout", timeout)):
            if value is not None and value <= 0:
                raise InvalidInputError(f"step {fn.__name__}: {what} must be positive seconds")
        if dataset is not None:
            validate_name(dataset, "dataset name")
        if model is not None:
            validate_name(model, "model name")
        self.tags: dict[str, str] = _step_tags(fn.__name__, tags, dataset or model)
        self.fn = fn
        self.name: str = fn.__name__
        self.volatile = volatile
        self.ttl = ttl
        self.retries = retries
        self.timeout = timeout
        self.dataset = dataset
        self.model = model
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"Step({self.fn.__module__}.{self.fn.__qualname__})"

    def options(self) -> dict[str, Any]:
        """The options the step was declared with (recorded with each of its runs)."""
        return {
            "volatile": self.volatile,
            "ttl": self.ttl,
            "retries": self.retries,
            "timeout": self.timeout,
            "dataset": self.dataset,
            "model": self.model,
            "tags": dict(self.tags),
        }

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        builder = _BUILDER.get()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)  # type: ignore[return-value]

    def map(self, items: Iterable[Any], /, **kwargs: Any) -> list[Output]:
        """One call of the step per item, the item as its first argument; the calls are
        independent, so an executor runs them in parallel. Inside a pipeline only.

        >>> parts = score.map([1, 2, 3], model=trained)        # doctest: +SKIP
        >>> report(parts)                                      # a list of outputs
        """
        builder = _BUILDER.get()
        if builder is None:
            raise InvalidInputError(f"{self.name}.map(...) is for use inside a @pipeline")
        first = next(iter(self.signature.parameters), None)
        if first is None:
            raise InvalidInputError(f"step {self.name} takes no argument to map over")
        base = builder.unique(self.name)
        return [
            builder.add(self, (), {first: item, **kwargs}, name=f"{base}[{i}]")
            for i, item in enumerate(items)
        ]


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    volatile: bool = False,
    ttl: float | None = None,
    retries: int = 0,
    timeout: float | None = None,
    dataset: str | None = None,
    model: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    volatile: bool = False,
    ttl: float | None = None,
    retries: int = 0,
    timeout: float | None = None,
    dataset: str | None = None,
    model: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Mark a typed function as a pipeline step (see :class:`Step` for the options).

    >>> @step(retries=2, timeout=600, dataset="credit.clean")   # doctest: +SKIP
    ... def clean(raw: DatasetVersion) -> pl.DataFrame: ...
    """

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        return Step(
            f,
            volatile=volatile,
            ttl=ttl,
            retries=retries,
            timeout=timeout,
            dataset=dataset,
            model=model,
            tags=tags,
        )

    return wrap(fn) if fn is not None else wrap


def _step_tags(step: str, tags: Mapping[str, str] | None, registers: str | None) -> dict[str, str]:
    """The tags of what step ``step`` registers, checked: text keys and values, and only on
    a step that registers a dataset or a model."""
    if not tags:
        return {}
    if registers is None:
        raise InvalidInputError(
            f"step {step}: tags are the tags of the version it registers: "
            "give dataset=NAME or model=NAME too"
        )
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in tags.items()
    ):
        raise InvalidInputError(
            f"step {step}: tags map names to text, such as tags={{'team': 'risk'}}; got {tags!r}"
        )
    return dict(tags)


@dataclass(frozen=True)
class Output:
    """What a step call returns inside a pipeline: the future value of node ``node``."""

    node: str

    def __repr__(self) -> str:
        return f"Output({self.node!r})"


@dataclass(frozen=True)
class Input:
    """A registered dataset or model a pipeline reads, pinned to an exact version when the
    run starts (see :func:`dataset` and :func:`model`)."""

    kind: str  # "dataset" | "model"
    ref: str


def dataset(ref: str) -> Input:
    """A dataset version as a step argument: ``clean(dataset("credit@latest"))``; the step
    receives the :class:`~shipyard.DatasetVersion` (``.to_polars()``) pinned at run start."""
    return Input("dataset", ref)


def model(ref: str) -> Input:
    """A model version as a step argument: ``score(model("churn@champion"), data)``; the step
    receives the :class:`~shipyard.ModelVersion` pinned at run start."""
    return Input("model", ref)


@dataclass
class Node:
    """One step call: its unique name in the pipeline, the step, and its arguments (plain
    values, :class:`Output`, :class:`Input` or lists of outputs)."""

    name: str
    step: Step[Any, Any]
    args: dict[str, Any]
    upstream: list[str] = field(default_factory=list)


@dataclass
class Dag:
    """The graph one call of a pipeline function built: nodes in call order (a topological
    order, since an output exists only after its call)."""

    pipeline: str
    params: dict[str, Any]
    nodes: dict[str, Node]

    def downstream(self, name: str) -> list[str]:
        """Every node that depends on ``name``, directly or not, in order."""
        out: list[str] = []
        reached = {name}
        for node in self.nodes.values():
            if reached.intersection(node.upstream):
                reached.add(node.name)
                out.append(node.name)
        return out

    def inputs(self) -> list[Input]:
        """The registered datasets and models the steps read, each once."""
        seen: dict[tuple[str, str], Input] = {}
        for node in self.nodes.values():
            for value in node.args.values():
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, Input):
                        seen.setdefault((item.kind, item.ref), item)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "params": self.params,
            "steps": {
                n.name: {"step": n.step.name, "upstream": n.upstream} for n in self.nodes.values()
            },
        }


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._counts: dict[str, int] = {}

    def unique(self, base: str) -> str:
        n = self._counts.get(base, 0) + 1
        self._counts[base] = n
        return base if n == 1 else f"{base}_{n}"

    def add(
        self,
        s: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        name: str | None = None,
    ) -> Output:
        try:
            bound = s.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"step {s.name}: {exc}") from None
        bound.apply_defaults()
        node_name = name or self.unique(s.name)
        upstream: list[str] = []
        for arg, value in bound.arguments.items():
            items = value if isinstance(value, list | tuple) else [value]
            outputs = [v for v in items if isinstance(v, Output)]
            if outputs and len(outputs) != len(items):
                raise InvalidInputError(
                    f"step {node_name}: argument {arg!r} mixes step outputs and plain values; "
                    "pass a list of outputs or a list of values"
                )
            for v in items:
                if isinstance(v, Output) and v.node not in upstream:
                    upstream.append(v.node)
                elif not isinstance(v, Output | Input):
                    _check_plain(v, f"step {node_name}: argument {arg!r}")
        self.nodes[node_name] = Node(node_name, s, dict(bound.arguments), upstream)
        return Output(node_name)


def _check_plain(value: Any, where: str) -> None:
    """Plain step arguments become the step's recorded params and part of its cache key:
    JSON values only."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{where} is a {type(value).__name__}; plain arguments must be JSON values "
            "(numbers, text, lists, mappings) or the outputs of other steps"
        ) from None


class Pipeline:
    """A function marked ``@pipeline``: calling :meth:`build` with params runs the function
    with step calls recorded, giving the :class:`Dag` an executor runs."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = validate_name(name or fn.__name__, "pipeline name")
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__module__ = fn.__module__

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r})"

    def defaults(self) -> dict[str, Any]:
        return {
            k: p.default
            for k, p in self.signature.parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    def build(self, params: Mapping[str, Any]) -> Dag:
        """The graph for these params (text values from a command line are converted to the
        type of the parameter's annotation or default).

        Raises:
            InvalidArgumentError: an unknown, missing or unconvertible param (exit 2).
            InvalidInputError: a bad step call.
        """
        values = convert_params(self.signature, params, f"pipeline {self.name}")
        builder = _Builder()
        token = _BUILDER.set(builder)
        try:
            self.fn(**values)
        finally:
            _BUILDER.reset(token)
        if not builder.nodes:
            raise InvalidInputError(f"pipeline {self.name} calls no step")
        return Dag(self.name, _jsonable(values), builder.nodes)


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Mark a function as a pipeline: its parameters are the pipeline's params, and the steps
    it calls are its nodes (see the module docstring)."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name)

    return wrap(fn) if fn is not None else wrap


def convert_params(
    signature: inspect.Signature, params: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """``params`` bound to ``signature``: text converted to the annotated (or default's)
    type, defaults filled in. Gathers every problem, then raises once.

    Raises:
        InvalidArgumentError: an unknown, missing or unconvertible param (the caller's
            choice: a usage error on the command line).
    """
    problems: list[str] = []
    known = signature.parameters
    for key in params:
        if key not in known:
            problems.append(f"unknown param {key!r} (known: {', '.join(known) or 'none'})")
    out: dict[str, Any] = {}
    for key, p in known.items():
        if key in params:
            try:
                out[key] = _convert(params[key], p)
            except ValueError as exc:
                problems.append(f"param {key!r}: {exc}")
        elif p.default is not inspect.Parameter.empty:
            out[key] = p.default
        else:
            problems.append(f"param {key!r} is required (give --param {key}=VALUE)")
    if problems:
        raise InvalidArgumentError.from_problems(where, problems)
    return out


def _convert(value: Any, p: inspect.Parameter) -> Any:
    kind: Any = p.annotation
    if isinstance(kind, str):  # postponed annotations
        kind = {"int": int, "float": float, "bool": bool, "str": str}.get(
            kind.split("|")[0].strip()
        )
    if kind in (inspect.Parameter.empty, None) and p.default not in (inspect.Parameter.empty, None):
        kind = type(p.default)
    if not isinstance(value, str):
        # 3 from a params file is the float 3.0 a float param means (one cache key for both).
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if isinstance(p.default, Input):  # a dataset or model param given as a reference
        return Input(p.default.kind, value.removeprefix(f"{p.default.kind}:"))
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not true or false")
    if kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a{'n int' if kind is int else ' float'}") from None
    if kind in (list, dict):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a JSON {kind.__name__}") from None
        return parsed
    return value


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Input):
            out[k] = f"{v.kind}:{v.ref}"
        else:
            _check_plain(v, f"param {k!r}")
            out[k] = v
    return out
