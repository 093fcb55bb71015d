"""Fitted scikit-learn pipelines as plain arithmetic over records, for answering one request
at a time.

A scikit-learn call spends milliseconds checking its input and building pandas frames, whatever
the number of rows: about 14 ms for one row through a ColumnTransformer and a
LogisticRegression. A model server answering single rows needs microseconds.
:func:`compile_predictor` turns the usual shape of a tabular model, a ColumnTransformer of
imputers, scalers and encoders before a linear model, into one generated Python function: a few
statements per input column and one sum, about 3 microseconds a row. Histogram gradient boosting
becomes nested ``if`` statements, one block per tree (:mod:`shipyard.registry.trees`): about 9
microseconds a row for 150 trees; so do XGBoost boosters, read from their own JSON document
(:mod:`shipyard.registry.xgboost_trees`). Random forests, extra trees and single decision trees
are walked in Python (:mod:`shipyard.registry.forests`): about 80 microseconds a row for 100
trees. Any other final estimator still gets its features from that function and is called on a
NumPy array, which skips the frame work.

A compiled model is only used after it has given the same answers as scikit-learn
(:mod:`shipyard.registry.equivalence`) on rows of the model's own data and on edge rows: the
labels ``predict()`` gives, and probabilities or values equal to within a relative 1e-9 (the
sums run in another order; XGBoost's within its 32-bit rounding). Where scikit-learn refuses a
row, the compiled model must refuse it too. If it differs, if the pipeline holds a step not
listed here, if the model was saved with another scikit-learn minor version
(:func:`shipyard.registry.flavors.version_problem`), or if anything at all goes wrong while
compiling or checking, :func:`compile_predictor` says why and the caller keeps scikit-learn. A
row the arithmetic does not cover at serving time (a missing value where the pipeline has no
imputer, a category the encoder refuses, an infinite number, a feature too large for a tree's
32-bit floats) raises :class:`NotCompiled`, and that request goes to scikit-learn, which answers
or fails exactly as it would have.

Supported steps, recognised by their class (scikit-learn's own; a subclass may compute something
else): ``SimpleImputer`` (mean, median, most_frequent, constant; missing values NaN or None),
``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``, ``OneHotEncoder`` (any ``drop``, no
infrequent categories), ``OrdinalEncoder``, ``"passthrough"`` and ``"drop"``, inside a
``ColumnTransformer`` or on the whole feature vector after it; then ``LogisticRegression`` or a
linear regressor as arithmetic, ``HistGradientBoosting*`` and ``XGBClassifier`` /
``XGBRegressor`` as code, tree ensembles walked in Python, or any other estimator on a NumPy
array. Each way of compiling an estimator is one branch of :func:`_compile` and one module, so
that removing one (the forest walker, the trees as code) leaves those estimators on arrays.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    HuberRegressor,
    Lars,
    Lasso,
    LassoCV,
    LassoLars,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeCV,
    SGDRegressor,
)

from shipyard.registry.codegen import (
    SCALERS,
    Answer,
    Column,
    NotCompiled,
    Unsupported,
    apply_stage,
    class_name,
    column_transformer_columns,
    exactly,
    generate,
    linear_sum,
    stages,
)
from shipyard.registry.equivalence import check_against_sklearn
from shipyard.registry.forests import FORESTS, forest_head
from shipyard.registry.signatures import plain_value
from shipyard.registry.trees import BOOSTED, boosted_sum
from shipyard.registry.xgboost_trees import is_xgboost_estimator, xgboost_sum

if TYPE_CHECKING:
    from shipyard.registry.signatures import CheckedPredictor, Signature

__all__ = ["CompiledModel", "NotCompiled", "compile_predictor"]

#: Linear regressors whose prediction is ``features @ coef_ + intercept_``.
_LINEAR_REGRESSORS = (
    LinearRegression,
    Ridge,
    RidgeCV,
    Lasso,
    LassoCV,
    ElasticNet,
    ElasticNetCV,
    Lars,
    LassoLars,
    BayesianRidge,
    ARDRegression,
    HuberRegressor,
    SGDRegressor,
)


# -- the compiled model -------------------------------------------------------------------------


class CompiledModel:
    """A pipeline as one generated function per row and a head that turns its result into
    answers.

    :meth:`score` takes records as :func:`shipyard.serving.inputs.validate_rows` returns
    them and answers like :meth:`CheckedPredictor.answer`: ``{"prediction": ...}`` per row,
    with ``"probabilities"`` (class name to probability) for a classifier.
    """

    def __init__(
        self,
        row: Callable[[Mapping[str, Any]], Any],
        head: Callable[[list[Any]], list[Answer]],
        description: str,
        *,
        tolerance: tuple[float, float] | None = None,
    ) -> None:
        self._row = row
        self._head = head
        self.description = description
        #: ``(relative, absolute)`` difference the equivalence check allows, when it is not
        #: the default (a model computed in 32-bit floats)
        self.tolerance = tolerance

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[Answer]:
        """Answers for ``rows``.

        Raises:
            NotCompiled: a row holds what the arithmetic does not cover; score the rows
                with scikit-learn instead.
        """
        row = self._row
        return self._head([row(r) for r in rows])


def _compile(model: Any, signature: Signature) -> CompiledModel:
    steps = stages(model)
    if not steps:
        raise Unsupported("the pipeline is empty")
    *prep, est = steps
    kinds = {name: spec.type for name, spec in signature.inputs.columns.items()}
    sparse = bool(prep) and bool(getattr(prep[0], "sparse_output_", False))
    if prep and isinstance(prep[0], ColumnTransformer):
        columns = column_transformer_columns(prep.pop(0), kinds)
    else:
        # No ColumnTransformer: the model takes the columns it was fitted on, as numbers.
        first = prep[0] if prep else est
        names = [str(n) for n in getattr(first, "feature_names_in_", [])] or signature.columns
        columns = [Column(n, kinds.get(n)) for n in names]
    after = []
    for stage in prep:
        if not exactly(stage, SimpleImputer, *SCALERS):
            raise Unsupported(f"{class_name(stage)} is not compiled")
        step = [Column(f"feature {j}") for j in range(int(stage.n_features_in_))]
        apply_stage(stage, step)
        after.append(step)
    # Each branch is one way of compiling; deleting a branch (and its module) leaves those
    # estimators to _on_arrays.
    if exactly(est, LogisticRegression):
        return _logistic(est, columns, after)
    if exactly(est, *_LINEAR_REGRESSORS):
        return _linear_regressor(est, columns, after)
    if exactly(est, *BOOSTED):
        with contextlib.suppress(Unsupported):  # else its features on arrays, below
            return _boosted(est, columns, after)
    if exactly(est, *FORESTS):
        with contextlib.suppress(Unsupported):
            return _forest(est, columns, after)
    if is_xgboost_estimator(est):
        # A sparse matrix's zeros that are not stored are missing values to XGBoost.
        if sparse:
            raise Unsupported("XGBoost after a ColumnTransformer of sparse output")
        with contextlib.suppress(Unsupported):
            return _xgboost(est, columns, after)
    return _on_arrays(est, columns, after)


def _logistic(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    coef = [[float(v) for v in row] for row in est.coef_]
    intercept = [float(v) for v in est.intercept_]
    labels = [plain_value(c) for c in est.classes_]
    if len(labels) == 2 and len(coef) == 1:
        decision = generate(columns, after, linear_sum(coef[0], intercept[0]))
        return CompiledModel(decision, _logistic_head(labels), "arithmetic")
    if len(coef) != len(labels):
        raise Unsupported("a one-vs-rest LogisticRegression is not compiled")

    def result(features: list[str]) -> str:
        sums = [linear_sum(w, b)(features) for w, b in zip(coef, intercept, strict=True)]
        return "(" + ", ".join(sums) + ",)"

    return CompiledModel(generate(columns, after, result), _softmax_head(labels), "arithmetic")


def _boosted(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    result, link = boosted_sum(est)
    score = generate(columns, after, result, nan_ok=True)  # the trees learned where NaN goes
    if link == "identity":
        return CompiledModel(score, _value_head, "trees as code")
    labels = [plain_value(c) for c in est.classes_]
    head = _logistic_head(labels) if link == "logistic" else _softmax_head(labels)
    return CompiledModel(score, head, "trees as code")


def _xgboost(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    from shipyard.registry.xgboost_trees import ATOL, RTOL

    result, link = xgboost_sum(est)
    score = generate(columns, after, result, nan_ok=True)  # the trees learned where NaN goes
    tolerance = (RTOL, ATOL)
    if link == "identity":
        return CompiledModel(score, _value_head, "XGBoost trees as code", tolerance=tolerance)
    labels = [plain_value(c) for c in est.classes_]
    head = _logistic_head(labels) if link == "logistic" else _softmax_head(labels)
    return CompiledModel(score, head, "XGBoost trees as code", tolerance=tolerance)


def _forest(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    width = int(getattr(est, "n_features_in_", 0))
    features = generate(columns, after, _feature_list(width))
    return CompiledModel(features, forest_head(est, width), "trees walked in Python")


def _feature_list(width: int) -> Callable[[list[str]], str]:
    """``result`` for :func:`generate`: the features as a list, ``width`` of them."""

    def result(features: list[str]) -> str:
        if width and len(features) != width:
            raise Unsupported(f"{len(features)} features for a model fitted on {width}")
        return "[" + ", ".join(features) + "]"

    return result


# The heads label a row as the estimator's predict() does: from the raw score (positive
# means the second class; else the first highest score), not from the rounded probabilities.


def _logistic_head(labels: list[Any]) -> Callable[[list[float]], list[Answer]]:
    """Two classes from one score: the second class's probability is its logistic."""
    zero, one = labels
    n0, n1 = (str(c) for c in labels)

    def answers(scores: list[float]) -> list[Answer]:
        out = []
        for z in scores:
            if not -1e308 <= z <= 1e308:
                raise NotCompiled("score")
            p1 = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            p0 = 1.0 - p1
            out.append({"prediction": one if z > 0 else zero, "probabilities": {n0: p0, n1: p1}})
        return out

    return answers


def _softmax_head(labels: list[Any]) -> Callable[[list[tuple[float, ...]]], list[Answer]]:
    """Several classes from one score each: probabilities by softmax."""
    names = [str(c) for c in labels]

    def answers(scores: list[tuple[float, ...]]) -> list[Answer]:
        out = []
        for z in scores:
            # Every score finite (a NaN compares false), or max() could skip a NaN.
            if not all(-1e308 <= v <= 1e308 for v in z):
                raise NotCompiled("score")
            top = max(z)
            e = [math.exp(v - top) for v in z]
            total = sum(e)
            p = [v / total for v in e]
            best = max(range(len(z)), key=z.__getitem__)
            out.append(
                {"prediction": labels[best], "probabilities": dict(zip(names, p, strict=True))}
            )
        return out

    return answers


def _value_head(values: list[float]) -> list[Answer]:
    """A regression: the value itself."""
    for v in values:
        if not -1e308 <= v <= 1e308:
            raise NotCompiled("value")
    return [{"prediction": v} for v in values]


def _linear_regressor(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    import numpy as np

    coef = np.asarray(est.coef_, dtype=float)
    if coef.ndim != 1:
        raise Unsupported(f"{class_name(est)} with several targets is not compiled")
    bias = float(np.ravel(est.intercept_)[0]) if np.ndim(est.intercept_) else float(est.intercept_)
    value = generate(columns, after, linear_sum([float(v) for v in coef], bias))
    return CompiledModel(value, _value_head, "arithmetic")


def _on_arrays(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    """Any other estimator (a subclass of a compiled one too), called on a NumPy array of the
    compiled features: its own predict() labels the rows, its predict_proba() is beside."""
    import numpy as np

    classes = getattr(est, "classes_", None)
    if classes is not None and not hasattr(est, "predict_proba"):
        raise Unsupported(f"{class_name(est)} gives no class probabilities")
    names = None if classes is None else [str(plain_value(c)) for c in classes]
    features = generate(columns, after, _feature_list(int(getattr(est, "n_features_in_", 0))))

    def call(rows: list[list[float]]) -> list[Answer]:
        x = np.asarray(rows, dtype=float)
        try:
            with warnings.catch_warnings():
                # Fitted on a frame with feature names; the array holds the same columns.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                predicted = [plain_value(v) for v in est.predict(x)]
                proba = None if names is None else est.predict_proba(x)
        except Exception as exc:  # refused: scikit-learn's whole pipeline says so in its words
            raise NotCompiled(f"{class_name(est)}: {type(exc).__name__}") from exc
        if proba is None or names is None:
            return [{"prediction": v} for v in predicted]
        return [
            {
                "prediction": v,
                "probabilities": {n: float(q) for n, q in zip(names, p, strict=True)},
            }
            for v, p in zip(predicted, proba, strict=True)
        ]

    return CompiledModel(features, call, f"{class_name(est)} on arrays")


def compile_predictor(
    predictor: CheckedPredictor, *, rows: Sequence[Mapping[str, Any]] | None = None
) -> tuple[CompiledModel | None, str]:
    """The compiled form of ``predictor``'s model, checked against scikit-learn, or None;
    with a sentence on what was compiled and what it was checked on, or why not.

    ``rows`` are rows of the model's own data, shaped like checked request rows: pass
    :meth:`Models.reference_rows <shipyard.registry.models.Models.reference_rows>`. The
    check runs on them and on edge rows built from them
    (:func:`shipyard.registry.equivalence.check_against_sklearn`); without them, on rows
    generated from what the pipeline learned, and the sentence says so.

    >>> compiled, note = compile_predictor(predictor, rows=models.reference_rows(ref))
    >>> note  # doctest: +SKIP
    'compiled (arithmetic), checked on 256 reference rows (251 distinct answers) and 70 edge rows'

    Never raises: whatever goes wrong while compiling or checking (a model saved with another
    scikit-learn minor version, a step that is not compiled, an error of any type) gives
    ``(None, "not compiled: <reason>")``, and the caller keeps scikit-learn.
    """
    try:
        return _compile_checked(predictor, rows)
    except Exception as exc:  # an unforeseen model must cost speed, never the server
        return None, f"not compiled: {_reason(exc)}"


def _compile_checked(
    predictor: CheckedPredictor, rows: Sequence[Mapping[str, Any]] | None
) -> tuple[CompiledModel | None, str]:
    problem = predictor.version_problem
    if problem is not None:
        return None, f"not compiled: {problem}"
    if predictor.signature is None:
        return None, "not compiled: the model has no signature"
    if not isinstance(predictor.model, BaseEstimator):
        return None, "not compiled: an ONNX or custom code model answers with its own predict()"
    compiled = _compile(predictor.model, predictor.signature)
    report = check_against_sklearn(predictor, compiled, rows)
    if report.problem is not None:
        return None, f"not compiled: {report.problem}"
    return compiled, f"compiled ({compiled.description}), checked on {report.summary}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, Unsupported):
        return str(exc)
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
