"""Autologging: while a run is active, fitting a scikit-learn estimator or pipeline, an
XGBoost or a LightGBM model records what MLflow's autolog records, through shipyard's
flavors (never pickle).

>>> shipyard.autolog()                                                # doctest: +SKIP
>>> with project.start_run() as run:                                  # doctest: +SKIP
...     model.fit(X, y)          # params, training metrics, datasets, the model
>>> shipyard.autolog(disable=True)                                    # doctest: +SKIP

``project.start_run(autolog=True)`` turns it on for that run alone.

What one ``fit`` records in the active run:

- its parameters (``get_params()``: numbers, text, booleans; a pipeline's as
  ``step__param``);
- ``training_score`` (the estimator's own ``score`` on the rows it was fitted on, when it
  was given labels) and, per boosting round, each metric XGBoost or LightGBM reports in
  ``evals_result_`` (``validation_0-logloss``, step = round);
- its input datasets: a pandas frame read with ``DatasetVersion.to_pandas()`` carries its
  reference, so the run records ``credit@3`` as a ``train`` input (``eval`` for an
  ``eval_set``);
- the fitted model, saved by its flavor (:mod:`shipyard.registry.flavors`) as the run
  artifact ``model`` with its first rows as ``input_example.parquet``; with
  ``registered_model_name`` it is registered instead, its signature inferred from those rows
  (``shipyard models register NAME --run RUN --artifact model`` infers it from them too),
  with ``registered_model_tags`` as its tags.

The user's code computes exactly what it would without autolog: the original ``fit`` runs
with the same arguments and its result is returned; what autolog computes afterwards (the
score) only reads the fitted model. A failure to record is a warning, never an error in
``fit``. Only the outermost ``fit`` of a thread records (a pipeline's steps, a grid
search's candidates do not), and only in the thread whose run is active.

Patching is reversible and thread-safe: each class that defines ``fit`` (among the
scikit-learn estimators imported when autolog is turned on, or when a run starts) gets a
wrapper that remembers the original, under a lock; turning autolog off puts every original
back.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DATASET_ATTR", "AutologSettings", "activate", "autolog", "deactivate", "enabled"]

#: The ``DataFrame.attrs`` key holding the reference of the dataset version a frame was read
#: from (set by ``DatasetVersion.to_pandas``; pandas keeps attrs through column selection).
DATASET_ATTR = "shipyard.dataset"
#: The rows kept as the model's input example.
EXAMPLE_ROWS = 5
_MARK = "__shipyard_autolog_original__"


@dataclass(frozen=True)
class AutologSettings:
    """What autolog records (see :func:`autolog`)."""

    log_models: bool = True
    log_datasets: bool = True
    registered_model_name: str | None = None
    registered_model_tags: Mapping[str, str] | None = None


_lock = threading.RLock()
_patched: dict[type, Callable[..., Any]] = {}  # class -> its original fit
_global: AutologSettings | None = None
_local = threading.local()  # .runs: [(run, settings or None)], .depth: nested fits


def autolog(
    *,
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    registered_model_name: str | None = None,
    registered_model_tags: Mapping[str, str] | None = None,
) -> None:
    """Turn autologging on for every run started from now on in this process (and the runs
    already active), or off with ``disable=True``.

    >>> shipyard.autolog(registered_model_name="credit-risk")   # doctest: +SKIP

    ``registered_model_name`` registers each fitted model as a new version of that model
    instead of storing it as a run artifact, with ``registered_model_tags`` as the version's
    tags (those the project's annotation policy requires, such as ``{"team": "risk"}``).

    Raises:
        InvalidInputError: ``registered_model_tags`` without ``registered_model_name``.
    """
    from shipyard.errors import InvalidInputError

    global _global
    with _lock:
        if disable:
            _global = None
            if not any(s is not None for s in _all_run_settings()):
                _unpatch()
            return
        if registered_model_tags and not registered_model_name:
            raise InvalidInputError(
                "registered_model_tags are the tags of the version registered_model_name "
                "registers: give registered_model_name too"
            )
        tags = dict(registered_model_tags) if registered_model_tags else None
        _global = AutologSettings(log_models, log_datasets, registered_model_name, tags)
        _patch()


def enabled() -> bool:
    """Whether autolog is on for the process."""
    return _global is not None


def activate(run: Any, *, autolog: bool | AutologSettings = False) -> None:
    """Make ``run`` the active run of this thread (a started run is; ``Project.start_run``
    calls this); ``autolog`` turns autologging on for this run alone."""
    settings = (
        autolog
        if isinstance(autolog, AutologSettings)
        else (AutologSettings() if autolog else None)
    )
    with _lock:
        _runs().append((run, settings))
        if settings is not None or _global is not None:
            _patch()


def deactivate(run: Any) -> None:
    """``run`` ended: it is no longer active (patches go when nothing needs them)."""
    with _lock:
        stack = _runs()
        stack[:] = [(r, s) for r, s in stack if r is not run]
        if _global is None and not any(s is not None for s in _all_run_settings()):
            _unpatch()


# -- patching -------------------------------------------------------------------------------------


def _patch() -> None:
    for cls in _estimator_classes():
        if cls in _patched or "fit" not in cls.__dict__:
            continue
        original = cls.__dict__["fit"]
        if not callable(original) or hasattr(original, _MARK):
            continue
        wrapper = _wrap(original)
        setattr(wrapper, _MARK, original)
        _patched[cls] = original
        setattr(cls, "fit", wrapper)  # noqa: B010  (mypy: ``type`` has no ``fit``)


def _unpatch() -> None:
    for cls, original in _patched.items():
        setattr(cls, "fit", original)  # noqa: B010
    _patched.clear()


def _estimator_classes() -> Iterator[type]:
    """Every scikit-learn estimator class imported so far (XGBoost's and LightGBM's
    scikit-learn wrappers are among them), except shipyard's own."""
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return
    seen: set[type] = set()
    todo = [BaseEstimator]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
                if not sub.__module__.startswith("shipyard."):
                    yield sub


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        active = _active()
        depth = getattr(_local, "depth", 0)
        if active is None or depth:
            return original(self, *args, **kwargs)
        _local.depth = depth + 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            _local.depth = depth
        _local.depth = depth + 1  # what autolog runs (score) is not recorded again
        try:
            _record(active[0], active[1], self, args, kwargs)
        except Exception as exc:  # recording must never break the user's fit
            warnings.warn(
                f"shipyard autolog could not record the fit of {type(self).__name__}: {exc}",
                stacklevel=2,
            )
        finally:
            _local.depth = depth
        return result

    return fit


def _runs() -> list[tuple[Any, AutologSettings | None]]:
    if not hasattr(_local, "runs"):
        _local.runs = []
    return _local.runs  # type: ignore[no-any-return]


def _all_run_settings() -> list[AutologSettings | None]:
    # Only this thread's runs are visible; a run in another thread keeps its own patches
    # alive through that thread's next start or end.
    return [s for _, s in _runs()]


def _active() -> tuple[Any, AutologSettings] | None:
    stack = _runs()
    if not stack:
        return None
    run, settings = stack[-1]
    settings = settings or _global
    return None if settings is None else (run, settings)


# -- recording ------------------------------------------------------------------------------------


def _record(
    run: Any, settings: AutologSettings, model: Any, args: tuple[Any, ...], kw: dict[str, Any]
) -> None:
    X = args[0] if args else kw.get("X")
    y = args[1] if len(args) > 1 else kw.get("y")
    _log_params(run, model)
    metrics: dict[str, float] = {}
    if y is not None and X is not None and hasattr(model, "score"):
        # An estimator whose score needs more than X and y records no score.
        with contextlib.suppress(Exception):
            metrics["training_score"] = float(model.score(X, y))
    if metrics:
        run.log_metrics(metrics)
    _log_rounds(run, model)
    if settings.log_datasets:
        evals = list(kw.get("eval_set") or [])
        # LightGBM's eval_X/eval_y: tuples of frames, paired up as eval_set's are.
        evals += list(zip(kw.get("eval_X") or (), kw.get("eval_y") or (), strict=False))
        _log_datasets(run, X, y, evals)
    if settings.log_models and X is not None:
        _log_model(run, settings, model, X)


def _log_params(run: Any, model: Any) -> None:
    from shipyard.errors import ConflictError, InvalidInputError

    try:
        params = model.get_params(deep=True)
    except Exception:
        return
    plain = {
        str(k): v for k, v in params.items() if v is None or isinstance(v, bool | int | float | str)
    }
    try:
        run.log_params(plain)
    except (ConflictError, InvalidInputError) as exc:
        # A second fit in the same run with other values: the first stays recorded.
        warnings.warn(f"shipyard autolog kept the run's parameters: {exc}", stacklevel=4)


def _log_rounds(run: Any, model: Any) -> None:
    """Each metric XGBoost or LightGBM evaluated per boosting round, step = round."""
    from shipyard.registry.flavors.boosters import final_step

    _, _, est = final_step(model)
    results = getattr(est, "evals_result_", None)
    if not isinstance(results, dict):
        return
    for data_name, by_metric in results.items():
        if not isinstance(by_metric, dict):
            continue
        for metric, values in by_metric.items():
            for step, value in enumerate(values):
                run.log_metric(f"{data_name}-{metric}", float(value), step=step)


def _dataset_of(frame: Any) -> str | None:
    attrs = getattr(frame, "attrs", None)
    ref = attrs.get(DATASET_ATTR) if isinstance(attrs, dict) else None
    return str(ref) if ref else None


def _log_datasets(run: Any, X: Any, y: Any, evals: list[Any]) -> None:
    seen: set[tuple[str, str]] = set()
    pairs = [(X, "train"), (y, "train")]
    for item in evals:
        if isinstance(item, list | tuple):
            pairs.extend((part, "eval") for part in item)
    for frame, context in pairs:
        ref = _dataset_of(frame)
        if ref is not None and (ref, context) not in seen:
            seen.add((ref, context))
            run.log_input(ref, context=context)


def _log_model(run: Any, settings: AutologSettings, model: Any, X: Any) -> None:
    from shipyard.registry.flavors import save_model

    example = X[:EXAMPLE_ROWS] if hasattr(X, "columns") else None
    if settings.registered_model_name:
        from shipyard.errors import CheckFailedError
        from shipyard.governance.annotations import missing_tags, with_hint

        try:
            run.log_model(
                model,
                settings.registered_model_name,
                input_example=example,
                tags=settings.registered_model_tags,
            )
        except CheckFailedError as exc:
            missing = ", ".join(f'"{k}": ...' for k in missing_tags(exc))
            raise with_hint(
                exc,
                f"give autolog the tags: shipyard.autolog(registered_model_name="
                f'"{settings.registered_model_name}", registered_model_tags={{{missing}}})',
            ) from None
        return
    with tempfile.TemporaryDirectory(prefix="shipyard-autolog-") as tmp:
        path = Path(tmp) / "model"
        saved = save_model(model, path)
        if saved.untrusted_types:
            raise ValueError(
                "the model holds types shipyard would not load: " + ", ".join(saved.untrusted_types)
            )
        run.log_artifact(path, name="model")
        if example is not None:
            import polars as pl

            frame = example if isinstance(example, pl.DataFrame) else pl.from_pandas(example)
            frame.write_parquet(Path(tmp) / "input_example.parquet")
            run.log_artifact(Path(tmp) / "input_example.parquet", name="input_example.parquet")
