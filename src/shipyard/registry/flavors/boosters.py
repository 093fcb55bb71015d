"""What the XGBoost and LightGBM flavors share: a booster alone, or as the last step of a
scikit-learn Pipeline whose other steps are written with skops.

A version is one archive (:mod:`shipyard.registry.flavors.bundle`): ``model`` holds the
booster in its library's native format and, for a pipeline, ``pipeline`` holds the pipeline
with its last step replaced by ``"passthrough"``. Loading reads the pipeline with skops'
trusted-type check, rebuilds the booster's estimator from the native file and puts it back
as the last step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError, MissingDependencyError
from shipyard.registry.flavors.bundle import Bundle, write_bundle
from shipyard.registry.flavors.sklearn import (
    SHIPYARD_TRUSTED_TYPES,
    ModelFile,
    dump_sklearn,
    load_sklearn,
    running_versions,
)

__all__ = ["final_step", "library_of", "load_boosted", "save_boosted"]

#: The flavors of this module: the top-level package of the final estimator's class.
LIBRARIES = {"xgboost": "xgboost", "lightgbm": "lightgbm"}


def final_step(model: Any) -> tuple[Any | None, str | None, Any]:
    """``(pipeline, step name, final estimator)`` for a scikit-learn Pipeline, else
    ``(None, None, model)``."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and model.steps:
        name, last = model.steps[-1]
        return model, str(name), last
    return None, None, model


def library_of(model: Any) -> str | None:
    """``"xgboost"`` or ``"lightgbm"`` when ``model`` (or the last step of a Pipeline) is a
    model of that library, or shipyard's LightGBM estimator; else None."""
    _, _, est = final_step(model)
    module = type(est).__module__
    if module == "shipyard.registry.flavors.lightgbm":
        return "lightgbm"
    return LIBRARIES.get(module.split(".")[0])


def require(package: str, extra: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extra when ``package`` is missing."""
    import importlib

    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            package, extra, f"a model of the {extra} flavor"
        ) from exc


def save_boosted(
    model: Any,
    path: Path,
    flavor: str,
    booster: Callable[[Any], tuple[str, bytes, dict[str, Any]]],
    library_version: str,
) -> ModelFile:
    """Write ``model`` (a booster alone or ending a Pipeline) to the archive ``path``:
    ``booster(estimator)`` gives the native file's name, its bytes and manifest fields."""
    pipeline, step, est = final_step(model)
    file, data, fields = booster(est)
    parts: dict[str, tuple[str, bytes]] = {"model": (file, data)}
    types: tuple[str, ...] = ()
    if pipeline is not None:
        rest = copy.copy(pipeline)
        rest.steps = [*pipeline.steps[:-1], (step, "passthrough")]
        skops_bytes, types = dump_sklearn(rest)
        parts["pipeline"] = ("pipeline.skops", skops_bytes)
        fields["step"] = step
    versions = {**running_versions(), flavor: library_version}
    write_bundle(path, flavor, parts, model_type=_type_name(model), **fields)
    return ModelFile(
        path=Path(path),
        model_type=_type_name(model),
        flavor=flavor,
        format=f"{flavor}+skops" if pipeline is not None else flavor,
        versions=versions,
        types=types,
        untrusted_types=tuple(t for t in types if t not in SHIPYARD_TRUSTED_TYPES),
    )


def load_boosted(
    bundle: Bundle, path: Path, estimator: Any, trusted: tuple[str, ...] | list[str]
) -> Any:
    """The model of a booster archive: ``estimator`` is the booster rebuilt from the native
    file, put back as the last step of the pipeline when the archive has one."""
    from sklearn.pipeline import Pipeline

    if "pipeline" not in bundle.parts:
        return estimator
    pipeline = load_sklearn(bundle.parts["pipeline"], path, trusted=trusted)
    step = bundle.manifest.get("step")
    if (
        not isinstance(pipeline, Pipeline)
        or not isinstance(step, str)
        or not pipeline.steps
        or pipeline.steps[-1] != (step, "passthrough")
    ):
        raise InvalidInputError(
            f"{path}: the pipeline part does not end in the step '{step}' its booster fills"
        )
    pipeline.steps[-1] = (step, estimator)
    return pipeline


def manifest_str(bundle: Bundle, key: str, path: Path, allowed: tuple[str, ...]) -> str:
    """The manifest field ``key``, which must be one of ``allowed``."""
    value = bundle.manifest.get(key)
    if value not in allowed:
        raise InvalidInputError(
            f"{path}: the manifest's {key} {value!r} is not one of {', '.join(allowed)}"
        )
    return str(value)


def _type_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"
