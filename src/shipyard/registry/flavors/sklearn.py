"""The scikit-learn flavor: estimators and pipelines written with skops, without pickle.

A scikit-learn estimator or Pipeline is written with skops (:func:`skops.io.dump`), whose
loader rebuilds objects only from an allow-list of types instead of running the code a pickle
names. XGBoost, LightGBM and ONNX models have flavors of their own
(:mod:`shipyard.registry.flavors`); the scikit-learn part of a pipeline that ends in a
booster is written here.

>>> from sklearn.linear_model import LogisticRegression
>>> model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
>>> saved = save_model(model, tmp / "model.skops")          # doctest: +SKIP
>>> load_model(saved.path).predict([[1.0]])                 # doctest: +SKIP
array([1])

Trusted types when loading
--------------------------
A file loads when every type it names is trusted. Trusted are:

1. the types skops trusts by default (scikit-learn estimators, numpy and scipy arrays,
   ufuncs and dtypes, Python primitives and containers);
2. :data:`SHIPYARD_TRUSTED_TYPES`, the exact names our supported estimators need beyond
   those (no prefix rule: whole namespaces such as ``numpy.`` hold classes that read files
   or wrap raw memory);
3. the names the caller passes as ``trusted=``.

Anything else — a user class, ``functools.partial``, a function such as ``builtins.eval`` or
``posix.system`` — raises :class:`UntrustedModelError` naming it, before any object is built.

skops leaves the tree types out of its defaults because their node arrays hold indices that
scikit-learn follows without bounds checks, so a crafted file could crash the process at
prediction time. shipyard trusts them (every tree model needs them) and, in exchange, checks
after loading that every node index stays inside its arrays (:func:`_check_tree_structure`).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from shipyard._internal.encode import ReadModel
from shipyard._internal.files import write_bytes_atomic
from shipyard.errors import InvalidInputError

__all__ = [
    "SHIPYARD_TRUSTED_TYPES",
    "SKLEARN_SUPPORTED",
    "ModelFile",
    "UntrustedModelError",
    "dump_sklearn",
    "load_model",
    "load_sklearn",
    "running_versions",
    "save_model",
    "version_problem",
]

#: The scikit-learn versions shipyard supports, from the first up to (not including) the
#: second, as pyproject.toml bounds them. The compiled path reads private fitted attributes
#: (:mod:`shipyard.registry.trees`), which a minor release may change: raise the upper bound
#: only after the test suite passed with the new version.
SKLEARN_SUPPORTED: tuple[tuple[int, int], tuple[int, int]] = ((1, 4), (1, 10))

TREE = "sklearn.tree._tree.Tree"
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"

#: Types trusted on top of skops' defaults, each with the reason it is safe to build.
SHIPYARD_TRUSTED_TYPES: Mapping[str, str] = {
    "numpy.dtype": (
        "rebuilt as the dtype of an empty array that skops audits and reads with "
        "allow_pickle=False; fitted SimpleImputer and OneHotEncoder store one"
    ),
    TREE: (
        "node storage of DecisionTree*, RandomForest*, ExtraTrees* and GradientBoosting*; "
        "node indices are bounds-checked after loading"
    ),
    TREE_PREDICTOR: (
        "trees of HistGradientBoosting*; node indices are bounds-checked after loading"
    ),
}


class UntrustedModelError(InvalidInputError):
    """A model file names types that are not trusted; nothing was built from it.

    ``details["untrusted_types"]`` lists them.
    """

    code = "untrusted_model"


@dataclass(frozen=True)
class ModelFile(ReadModel):
    """A model written by :func:`save_model`.

    ``types`` lists the types in the file that skops does not trust by default (the input
    of the trust decision); ``untrusted_types`` those among them that :func:`load_model`
    refuses unless they are passed as ``trusted=``.
    """

    path: Path = field(metadata={"json": "omit"})  # the artifact store decides where
    model_type: str
    flavor: str = "sklearn"
    format: str = "skops"
    versions: Mapping[str, str] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    untrusted_types: tuple[str, ...] = ()


def save_model(model: Any, path: Path) -> ModelFile:
    """Write a scikit-learn estimator or Pipeline to ``path`` with skops, atomically.

    >>> save_model(LogisticRegression().fit(X, y), Path("model.skops")).format  # doctest: +SKIP
    'skops'

    Raises:
        InvalidInputError: ``model`` is not a scikit-learn estimator, or holds an object that
            skops cannot write (the message says which).
    """
    data, types = dump_sklearn(model)
    write_bytes_atomic(path, data)
    return ModelFile(
        path=Path(path),
        model_type=_type_name(type(model)),
        versions=running_versions(),
        types=types,
        untrusted_types=tuple(t for t in types if t not in SHIPYARD_TRUSTED_TYPES),
    )


def dump_sklearn(model: Any) -> tuple[bytes, tuple[str, ...]]:
    """The skops bytes of a scikit-learn estimator, and the types in them that skops does not
    trust by default.

    Raises:
        InvalidInputError: not a scikit-learn estimator, or skops cannot write it.
    """
    import skops.io as sio
    from sklearn.base import BaseEstimator

    if not isinstance(model, BaseEstimator):
        raise InvalidInputError(
            f"cannot save a {_type_name(type(model))}: shipyard saves scikit-learn estimators "
            "and pipelines, XGBoost and LightGBM models (alone or as the last step of a "
            "Pipeline) and ONNX models, each without pickle; other Python models are not "
            "supported"
        )
    try:
        data = sio.dumps(model)
    except Exception as exc:  # skops raises several types, e.g. for lambdas or open files
        raise InvalidInputError(
            f"cannot save the {type(model).__name__} with skops: {type(exc).__name__}: {exc}"
        ) from exc
    return data, tuple(sorted(sio.get_untrusted_types(data=data)))


def running_versions() -> dict[str, str]:
    """The versions of the libraries a model is saved and loaded with, here and now:
    ``{"sklearn": "1.9.1", "skops": ..., "numpy": ..., "python": ...}`` (what
    :func:`save_model` records)."""
    import numpy
    import sklearn
    import skops

    return {
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def version_problem(
    saved_with: Mapping[str, str] | None, running: Mapping[str, str] | None = None
) -> str | None:
    """Why a model saved with the library versions ``saved_with`` (a
    :attr:`ModelVersion.environment`) should not be answered by the compiled path when
    running with ``running`` (default: :func:`running_versions`), or None.

    The compiled path reads fitted attributes, some private, so it needs the scikit-learn
    minor version the model was saved with, inside :data:`SKLEARN_SUPPORTED`. A model whose
    saved versions are unknown (registered from a run's artifact) is judged on the running
    version alone; the check against scikit-learn still runs on it.

    >>> version_problem({"sklearn": "1.4.2"}, {"sklearn": "1.6.1"})  # doctest: +ELLIPSIS
    'the model was saved with scikit-learn 1.4.2 and runs on 1.6.1; ...'
    >>> version_problem({"sklearn": "1.6.0"}, {"sklearn": "1.6.1"}) is None
    True
    """
    now = (running if running is not None else running_versions()).get("sklearn", "")
    (low, high) = SKLEARN_SUPPORTED
    supported = f">={low[0]}.{low[1]}, <{high[0]}.{high[1]}"
    now_minor = _minor(now)
    if now_minor is None or not low <= now_minor < high:
        return (
            f"scikit-learn {now or '(unknown version)'} is outside the versions shipyard "
            f"supports ({supported}); install a supported version"
        )
    saved = (saved_with or {}).get("sklearn")
    if not saved:
        return None
    if _minor(saved) != now_minor:
        return (
            f"the model was saved with scikit-learn {saved} and runs on {now}; fitted "
            "attributes can change between minor versions, so it is answered by scikit-learn, "
            f"not compiled (register it again under scikit-learn {now_minor[0]}.{now_minor[1]} "
            "to compile it)"
        )
    return None


def _minor(version: str) -> tuple[int, int] | None:
    """``(1, 6)`` for ``"1.6.1"`` or ``"1.6.dev0"``; None for what is not a version."""
    found = re.match(r"([0-9]+)\.([0-9]+)", version)
    return (int(found[1]), int(found[2])) if found else None


def load_model(path: Path, *, trusted: Sequence[str] = ()) -> Any:
    """Load a model written by :func:`save_model`, refusing types that are not trusted.

    ``trusted`` names further types to trust (as listed by :class:`UntrustedModelError`);
    pass only types whose code you have reviewed.

    >>> load_model(Path("model.skops")).predict(X)  # doctest: +SKIP

    Raises:
        UntrustedModelError: the file names types that are not trusted (listed, with the
            ``trusted=`` argument that would accept them).
        InvalidInputError: the file is missing, is not a skops file, does not hold a
            scikit-learn estimator, or holds trees whose structure is invalid.
    """
    path = Path(path)
    try:
        # Read once: the bytes that are audited are the bytes that are loaded.
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the model file: {exc.strerror}") from None
    return load_sklearn(data, path, trusted=trusted)


def load_sklearn(data: bytes, path: Path, *, trusted: Sequence[str] = ()) -> Any:
    """The scikit-learn estimator in the skops bytes ``data`` (read from ``path``, which
    errors name), loaded as :func:`load_model` loads a file."""
    import skops.io as sio
    from sklearn.base import BaseEstimator

    if isinstance(trusted, str):  # a lone name would be read as a sequence of letters
        trusted = [trusted]
    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a damaged zip, JSON or schema surfaces as many types
        raise _unreadable(path, exc) from exc
    untrusted = sorted(t for t in found if t not in SHIPYARD_TRUSTED_TYPES and t not in trusted)
    if untrusted:
        raise UntrustedModelError(
            f"{path}: the model file names types that are not trusted: "
            f"{', '.join(untrusted)}; if you wrote or reviewed them, load with "
            f"load_model(path, trusted={untrusted!r}), otherwise do not load this file",
            details={"untrusted_types": untrusted},
        )
    try:
        model = sio.loads(data, trusted=list(found))
    except Exception as exc:  # building the objects failed; never retry with pickle
        raise _unreadable(path, exc) from exc
    if not isinstance(model, BaseEstimator):
        raise InvalidInputError(
            f"{path}: holds a {_type_name(type(model))}, not a scikit-learn estimator"
        )
    _check_tree_structure(model, path)
    return model


# --------------------------------------------------------------------------- helpers


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _unreadable(path: Path, exc: Exception) -> InvalidInputError:
    return InvalidInputError(
        f"{path}: not a readable skops model file ({type(exc).__name__}: {exc})"
    )


# --------------------------------------------------------------------------- tree checks
#
# Prediction reads ``X[row, feature]`` and follows child indices with no bounds checks. A
# legitimate tree stores children after their parent (both builders number nodes depth
# first), so requiring ``parent < child < n_nodes`` rules out both out-of-range reads and
# cycles. Features must be below the width of the X the tree receives: the smallest
# ``n_features_in_`` among the estimators enclosing the tree, counted from the nearest step
# that changes the columns (a Pipeline step, a ColumnTransformer part, a stacking level).
# An estimator that holds trees must declare ``n_features_in_``, since that is what makes
# scikit-learn check the width of X before predicting.


def _feature_boundaries() -> tuple[type, ...]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.pipeline import FeatureUnion, Pipeline

    return (ColumnTransformer, FeatureUnion, Pipeline, StackingClassifier, StackingRegressor)


def _check_tree_structure(model: Any, path: Path) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    boundaries = _feature_boundaries()
    # An object is visited once per context, not once: a tree reachable along two paths
    # must satisfy the narrower bound too.
    seen: set[tuple[int, int | None, bool, int]] = set()
    # (object, feature bound, an estimator on the way lacks n_features_in_, categorical flags)
    stack: list[tuple[Any, int | None, bool, Any]] = [(model, None, False, None)]
    while stack:
        obj, bound, undeclared, categorical = stack.pop()
        key = (id(obj), bound, undeclared, id(categorical))
        if key in seen:
            continue
        seen.add(key)
        if isinstance(obj, Tree | TreePredictor):
            if undeclared or bound is None:
                _bad_tree(path, "its estimator does not declare n_features_in_")
            assert bound is not None
            if isinstance(obj, Tree):
                _check_tree(obj, bound, path)
            else:
                _check_predictor(obj, bound, categorical, path)
            continue
        if isinstance(obj, BaseEstimator):
            if isinstance(obj, boundaries):
                bound, undeclared = None, False
            else:
                n_in = getattr(obj, "n_features_in_", None)
                if isinstance(n_in, int) and not isinstance(n_in, bool):
                    bound = n_in if bound is None else min(bound, n_in)
                else:
                    undeclared = True
            mapper = getattr(obj, "_bin_mapper", None)
            if mapper is not None:
                categorical = getattr(mapper, "is_categorical_", None)
        for child in _children(obj):
            stack.append((child, bound, undeclared, categorical))


def _children(obj: Any) -> Iterator[Any]:
    import numpy as np

    if isinstance(obj, dict):
        yield from obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from obj
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            yield from obj.ravel()
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from vars(obj).values()


def _bad_tree(path: Path, reason: str) -> NoReturn:
    raise InvalidInputError(f"{path}: holds a tree with an invalid structure: {reason}")


def _check_children(left: Any, right: Any, is_leaf: Any, path: Path) -> None:
    import numpy as np

    n = len(left)
    index = np.arange(n)
    inner = ~is_leaf
    for child in (left, right):
        c = child[inner].astype(np.int64)
        if np.any(c <= index[inner]) or np.any(c >= n):
            _bad_tree(path, "a child index is out of range")


def _check_features(feature: Any, bound: int, path: Path) -> None:
    import numpy as np

    f = np.asarray(feature, dtype=np.int64)
    if f.size and (f.min() < 0 or f.max() >= bound):
        _bad_tree(path, f"a split uses a feature outside the {bound} input columns")


def _check_tree(tree: Any, bound: int, path: Path) -> None:
    # The node arrays are views of node_count nodes over a buffer of capacity nodes.
    if not 0 < tree.node_count <= tree.capacity:
        _bad_tree(path, "node_count does not fit the node buffer")
    left, right = tree.children_left, tree.children_right
    is_leaf = (left == -1) & (right == -1)
    _check_children(left, right, is_leaf, path)
    _check_features(tree.feature[~is_leaf], min(bound, tree.n_features), path)


def _check_predictor(predictor: Any, bound: int, categorical: Any, path: Path) -> None:
    import numpy as np

    nodes = predictor.nodes
    fields = ("is_leaf", "left", "right", "feature_idx", "is_categorical", "bitset_idx")
    if (
        not isinstance(nodes, np.ndarray)
        or nodes.ndim != 1
        or len(nodes) == 0
        or nodes.dtype.names is None
        or not set(fields) <= set(nodes.dtype.names)
    ):
        _bad_tree(path, "the node array is not a vector of TreePredictor nodes")
    is_leaf = nodes["is_leaf"].astype(bool)
    _check_children(nodes["left"], nodes["right"], is_leaf, path)
    split = ~is_leaf
    features = nodes["feature_idx"][split].astype(np.int64)
    _check_features(features, bound, path)
    cat = nodes["is_categorical"][split].astype(bool)
    if not cat.any():
        return
    cat_features = features[cat]
    flags = np.asarray(categorical if categorical is not None else [], dtype=bool).ravel()
    if cat_features.max() >= len(flags) or not flags[cat_features].all():
        _bad_tree(path, "a categorical split uses a feature that is not categorical")
    bitsets = nodes["bitset_idx"][split][cat].astype(np.int64)
    for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        table = getattr(predictor, name, None)
        if (
            not isinstance(table, np.ndarray)
            or table.ndim != 2
            or table.shape[1] != 8
            or bitsets.max() >= len(table)
        ):
            _bad_tree(path, f"{name} does not cover the categorical splits")
