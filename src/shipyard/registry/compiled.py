"""Fitted scikit-learn pipelines as plain arithmetic over records, for answering one request
at a time.

A scikit-learn call spends milliseconds checking its input and building pandas frames,
whatever the number of rows: about 14 ms for one row through a ColumnTransformer and a
LogisticRegression. A model server answering single rows needs microseconds.
:func:`compile_predictor` turns the usual shape of a tabular model, a ColumnTransformer of
imputers, scalers and encoders before a linear model, into one generated Python function: a
few statements per input column and one sum, about 3 microseconds a row. Histogram gradient
boosting becomes nested ``if`` statements, one block per tree (:mod:`shipyard.registry.
trees`): about 9 microseconds a row for 150 trees. Random forests, extra trees and single
decision trees are walked in Python (:mod:`shipyard.registry.forests`): about 80 microseconds
a row for 100 trees. Any other final estimator still gets its features from that function
and is called on a NumPy array, which skips the frame work.

A compiled model is only used after it has given the same answers as scikit-learn on rows
generated from what the pipeline learned (every category, values around each column's
centre, missing values, unseen categories): the same labels, and probabilities or values
equal to within a relative 1e-9 (the sums run in another order). If it differs, or the
pipeline holds a step not listed here, :func:`compile_predictor` says why and the caller
keeps scikit-learn. A row the arithmetic does not cover at serving time (a missing value
where the pipeline has no imputer, a category the encoder refuses, an infinite number)
raises :class:`NotCompiled`, and that request goes to scikit-learn, which answers or fails
exactly as it would have.

Supported steps: ``SimpleImputer`` (mean, median, most_frequent, constant; missing values
NaN or None), ``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``, ``OneHotEncoder``
(any ``drop``, no infrequent categories), ``OrdinalEncoder``, ``"passthrough"`` and
``"drop"``, inside a ``ColumnTransformer`` or on the whole feature vector after it; then
``LogisticRegression`` or a linear regressor as arithmetic, ``HistGradientBoosting*`` as
code, tree ensembles walked in Python, or any other estimator on a NumPy array.
"""

from __future__ import annotations

import contextlib
import math
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.registry.codegen import (
    SCALERS,
    Answer,
    Column,
    NotCompiled,
    Unsupported,
    apply_stage,
    column_transformer_columns,
    generate,
    linear_sum,
    stages,
)
from shipyard.registry.forests import FORESTS, forest_head
from shipyard.registry.signatures import plain_value
from shipyard.registry.trees import boosted_sum

if TYPE_CHECKING:
    from shipyard.registry.signatures import CheckedPredictor

__all__ = ["CompiledModel", "NotCompiled", "compile_predictor"]

#: Relative difference allowed between compiled and scikit-learn outputs.
RTOL = 1e-9
#: Rows generated to check a compiled model against scikit-learn.
CHECK_ROWS = 256

_LINEAR_REGRESSORS = frozenset(
    {
        "LinearRegression",
        "Ridge",
        "RidgeCV",
        "Lasso",
        "LassoCV",
        "ElasticNet",
        "ElasticNetCV",
        "Lars",
        "LassoLars",
        "BayesianRidge",
        "ARDRegression",
        "HuberRegressor",
        "SGDRegressor",
    }
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
    ) -> None:
        self._row = row
        self._head = head
        self.description = description

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[Answer]:
        """Answers for ``rows``.

        Raises:
            NotCompiled: a row holds what the arithmetic does not cover; score the rows
                with scikit-learn instead.
        """
        row = self._row
        return self._head([row(r) for r in rows])


def _compile(model: Any, signature_columns: list[str]) -> CompiledModel:
    steps = stages(model)
    if not steps:
        raise Unsupported("the pipeline is empty")
    *prep, est = steps
    if prep and type(prep[0]).__name__ == "ColumnTransformer":
        columns = column_transformer_columns(prep.pop(0))
    else:
        # No ColumnTransformer: the model takes the columns it was fitted on, as numbers.
        first = prep[0] if prep else est
        names = [str(n) for n in getattr(first, "feature_names_in_", [])] or signature_columns
        columns = [Column(n) for n in names]
    after = []
    for stage in prep:
        if type(stage).__name__ not in ("SimpleImputer", *SCALERS):
            raise Unsupported(f"{type(stage).__name__} is not compiled")
        step = [Column(f"feature {j}") for j in range(int(stage.n_features_in_))]
        apply_stage(stage, step)
        after.append(step)
    kind = type(est).__name__
    if kind == "LogisticRegression":
        return _logistic(est, columns, after)
    if kind in _LINEAR_REGRESSORS and type(est).__module__.startswith("sklearn.linear_model"):
        return _linear_regressor(est, columns, after)
    if kind in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        with contextlib.suppress(Unsupported):  # else its features on arrays, below
            return _boosted(est, columns, after)
    if kind in FORESTS:
        with contextlib.suppress(Unsupported):
            return _forest(est, columns, after)
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
            out.append({"prediction": one if p1 > p0 else zero, "probabilities": {n0: p0, n1: p1}})
        return out

    return answers


def _softmax_head(labels: list[Any]) -> Callable[[list[tuple[float, ...]]], list[Answer]]:
    """Several classes from one score each: probabilities by softmax."""
    names = [str(c) for c in labels]

    def answers(scores: list[tuple[float, ...]]) -> list[Answer]:
        out = []
        for z in scores:
            top = max(z)
            if not -1e308 <= top <= 1e308:
                raise NotCompiled("score")
            e = [math.exp(v - top) for v in z]
            total = sum(e)
            p = [v / total for v in e]
            best = max(range(len(p)), key=p.__getitem__)
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
        raise Unsupported(f"{type(est).__name__} with several targets is not compiled")
    bias = float(np.ravel(est.intercept_)[0]) if np.ndim(est.intercept_) else float(est.intercept_)
    value = generate(columns, after, linear_sum([float(v) for v in coef], bias))
    return CompiledModel(value, _value_head, "arithmetic")


def _on_arrays(est: Any, columns: list[Column], after: list[list[Column]]) -> CompiledModel:
    """Any other estimator, called on a NumPy array of the compiled features."""
    import numpy as np

    classes = getattr(est, "classes_", None)
    if classes is not None and not hasattr(est, "predict_proba"):
        raise Unsupported(f"{type(est).__name__} gives no class probabilities")
    labels = None if classes is None else [plain_value(c) for c in classes]
    names = None if labels is None else [str(c) for c in labels]
    features = generate(columns, after, _feature_list(int(getattr(est, "n_features_in_", 0))))

    def call(rows: list[list[float]]) -> list[Answer]:
        x = np.asarray(rows, dtype=float)
        with warnings.catch_warnings():
            # Fitted on a frame with feature names; the array holds the same columns in order.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            if labels is None or names is None:
                return [{"prediction": plain_value(v)} for v in est.predict(x)]
            proba = est.predict_proba(x)
        return [
            {
                "prediction": labels[int(p.argmax())],
                "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)},
            }
            for p in proba
        ]

    return CompiledModel(features, call, f"{type(est).__name__} on arrays")


def compile_predictor(predictor: CheckedPredictor) -> tuple[CompiledModel | None, str]:
    """The compiled form of ``predictor``'s model, checked against scikit-learn, or None;
    with a sentence on what was compiled, or why not."""
    if predictor.signature is None:
        return None, "not compiled: the model has no signature"
    try:
        compiled = _compile(predictor.model, list(predictor.signature.columns))
    except Unsupported as exc:
        return None, f"not compiled: {exc}"
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        return None, f"not compiled: {type(exc).__name__}: {exc}"
    problem = _check(predictor, compiled)
    if problem:
        return None, f"not compiled: {problem}"
    return compiled, f"compiled ({compiled.description}), checked on {CHECK_ROWS} rows"


# -- the check against scikit-learn ------------------------------------------------------------


def _check(predictor: CheckedPredictor, compiled: CompiledModel) -> str | None:
    """None when ``compiled`` answers like scikit-learn on generated rows, else what differs."""
    rows = _sample_rows(predictor, CHECK_ROWS)
    covered: list[dict[str, Any]] = []
    answers: list[Answer] = []
    for row in rows:
        try:
            answers += compiled.score([row])
        except NotCompiled:
            continue
        covered.append(row)
    if len(covered) < CHECK_ROWS // 4:
        return f"only {len(covered)} of {CHECK_ROWS} generated rows are covered"
    if compiled.score(covered) != answers:
        return "scoring rows together differs from scoring them one by one"
    try:
        expected = predictor.answer(predictor.frame_from_records(covered))
    except Exception as exc:  # scikit-learn refused rows the compiled form answered
        return f"scikit-learn refused the generated rows: {type(exc).__name__}: {exc}"
    for i, (got, want) in enumerate(zip(answers, expected, strict=True)):
        if not _close(got["prediction"], want["prediction"]):
            return f"row {i}: predicts {got['prediction']!r}, scikit-learn {want['prediction']!r}"
        for name, p in want.get("probabilities", {}).items():
            if not _close(got.get("probabilities", {}).get(name), p):
                return f"row {i}: probability of {name} differs from scikit-learn"
    return None


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float):
        return bool(a == b)
    if not isinstance(b, int | float):
        return False
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12)


def _sample_rows(predictor: CheckedPredictor, n: int) -> list[dict[str, Any]]:
    """Rows in the signature's types, with values from what the pipeline learned."""
    import datetime as dt

    assert predictor.signature is not None
    rng = random.Random(20261126)
    learned = _learned_values(predictor.model)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for name, spec in predictor.signature.inputs.columns.items():
            kind = spec.type
            known = learned.get(name)
            if rng.random() < 0.05:
                value: Any = None
            elif kind in ("string", "category"):
                choices = known if isinstance(known, list) and rng.random() >= 0.1 else None
                value = rng.choice(choices) if choices else f"unseen-{i}"
            elif kind in ("int", "float"):
                centre, spread = known if isinstance(known, tuple) else (0.0, 1.0)
                value = centre + spread * rng.gauss(0.0, 1.5)
                value = round(value) if kind == "int" else value
            elif kind == "bool":
                value = rng.random() < 0.5
            else:
                value = dt.datetime(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 365))
            row[name] = value
        rows.append(row)
    return rows


def _learned_values(model: Any) -> dict[str, Any]:
    """Per input column: its categories (a list) or its centre and spread (a tuple)."""
    out: dict[str, Any] = {}
    for step in stages(model):
        if type(step).__name__ != "ColumnTransformer":
            continue
        for _, transformer, columns in step.transformers_:
            if isinstance(transformer, str) or isinstance(columns, str):
                continue
            names = [c for c in columns if isinstance(c, str)]
            for stage in stages(transformer):
                for j, name in enumerate(names):
                    if hasattr(stage, "categories_"):
                        out[name] = [plain_value(c) for c in stage.categories_[j]]
                    elif getattr(stage, "mean_", None) is not None:
                        scale = stage.scale_[j] if stage.scale_ is not None else 1.0
                        out[name] = (float(stage.mean_[j]), float(scale))
                    elif hasattr(stage, "statistics_") and name not in out:
                        stat = plain_value(stage.statistics_[j])
                        if isinstance(stat, int | float):
                            out[name] = (float(stat), max(abs(float(stat)), 1.0))
    return out
