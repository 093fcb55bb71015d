"""Fitted scikit-learn steps as generated Python: each input column's imputer, scaler and
encoder become a few statements of one function, which ends with whatever the final
estimator needs (a linear sum, or the feature list).

Used by :mod:`shipyard.registry.compiled`, which checks the result against scikit-learn
before anything is served with it. Steps are recognised by their class, scikit-learn's own
(:func:`exactly`), and read through public fitted attributes only (``statistics_``,
``scale_``, ``categories_``, ``drop_idx_``...). Constants reach the generated code by name,
never as text, so every float keeps its exact value; coefficients are written with
``repr``, which reads back as the same float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from shipyard.registry.signatures import plain_value

__all__ = [
    "ENCODERS",
    "SCALERS",
    "Answer",
    "Column",
    "NotCompiled",
    "Unsupported",
    "apply_stage",
    "class_name",
    "column_transformer_columns",
    "exactly",
    "generate",
    "linear_sum",
    "selected_columns",
    "stages",
]

SCALERS = (StandardScaler, MinMaxScaler, RobustScaler)
ENCODERS = (OneHotEncoder, OrdinalEncoder)
# Whole numbers outside these reach scikit-learn as an int64 column, which pandas refuses.
INT64 = (-(2**63), 2**63 - 1)


def exactly(obj: Any, *classes: type) -> bool:
    """Whether ``obj`` is an instance of one of ``classes`` itself. Stricter than
    ``isinstance``: a subclass may override the very method whose arithmetic is compiled
    (``transform``, ``decision_function``), so only scikit-learn's own classes are compiled."""
    return type(obj) in classes


def class_name(obj: Any) -> str:
    """``StandardScaler`` for scikit-learn's own classes; the full name of any other class
    (a subclass, or a same-named class from elsewhere), so messages do not confuse them."""
    cls = type(obj)
    if cls.__module__.startswith("sklearn."):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


class NotCompiled(Exception):
    """This input is outside what the compiled arithmetic covers: use scikit-learn."""


class Unsupported(Exception):
    """The pipeline holds something that cannot be compiled; the message says what."""


# What a compiled model answers for one row: {"prediction": ...} (and "probabilities").
Answer = dict[str, Any]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# -- what each column goes through ---------------------------------------------------------------

# A numeric operation, as scikit-learn does it: ("sub" | "div" | "mul" | "add", constant) or
# ("clip", low, high).
Op = tuple[Any, ...]


@dataclass
class Column:
    """One input column (or one feature, for steps after the ColumnTransformer), described
    step by step while compiling."""

    name: str
    kind: str | None = None  # the signature's type of an input column ("int", "float"...)
    fill: Any = None  # the imputer's value, when there is one
    has_imputer: bool = False
    ops: list[Op] = field(default_factory=list)  # scalers, in order
    categories: list[Any] | None = None  # an encoder's categories
    encoder: str | None = None  # "onehot" or "ordinal"
    drop_index: int | None = None  # one-hot: the category left out
    unknown_value: float | None = None  # ordinal: what an unseen category becomes
    unknown_ignored: bool = False  # one-hot: an unseen category gives all zeros

    @property
    def width(self) -> int:
        if self.encoder == "onehot":
            return len(self.categories or []) - (self.drop_index is not None)
        return 1


def _scaler_ops(step: Any, j: int) -> list[Op]:
    """Column ``j`` of a fitted scaler, as the operations scikit-learn does, in its order."""
    ops: list[Op] = []
    if exactly(step, StandardScaler):
        if step.with_mean and step.mean_ is not None:
            ops.append(("sub", float(step.mean_[j])))
        if step.with_std and step.scale_ is not None:
            ops.append(("div", float(step.scale_[j])))
    elif exactly(step, MinMaxScaler):
        ops += [("mul", float(step.scale_[j])), ("add", float(step.min_[j]))]
        if step.clip:
            low, high = step.feature_range
            ops.append(("clip", float(low), float(high)))
    else:  # RobustScaler
        if step.with_centering and step.center_ is not None:
            ops.append(("sub", float(step.center_[j])))
        if step.with_scaling and step.scale_ is not None:
            ops.append(("div", float(step.scale_[j])))
    return ops


def apply_stage(stage: Any, columns: list[Column]) -> None:
    """Fold one fitted step of a column group into its columns' descriptions.

    Raises:
        Unsupported: the step is not one of scikit-learn's own classes listed in
            :mod:`shipyard.registry.compiled`, or uses an option that is not compiled.
    """
    if exactly(stage, FunctionTransformer) and stage.func is None:
        # How a fitted ColumnTransformer spells "passthrough": the identity. With validate
        # it would also refuse missing and infinite values, which the identity does not.
        if stage.validate:
            raise Unsupported("FunctionTransformer(validate=True) is not compiled")
        return
    if exactly(stage, SimpleImputer):
        _imputer(stage, columns)
    elif exactly(stage, *SCALERS):
        for j, column in enumerate(columns):
            if column.encoder:
                raise Unsupported(f"{class_name(stage)} after an encoder is not compiled")
            if column.has_imputer and not isinstance(column.fill, int | float):
                raise Unsupported(
                    f"{class_name(stage)} on text column {column.name} is not compiled"
                )
            column.ops += _scaler_ops(stage, j)
    elif exactly(stage, *ENCODERS):
        _encoder(stage, columns)
    else:
        raise Unsupported(f"{class_name(stage)} is not compiled")


def _imputer(stage: Any, columns: list[Column]) -> None:
    if getattr(stage, "indicator_", None) is not None:
        raise Unsupported("SimpleImputer(add_indicator=True) is not compiled")
    mv = stage.missing_values
    if not (mv is None or (isinstance(mv, float) and math.isnan(mv))):
        raise Unsupported(f"SimpleImputer(missing_values={mv!r}) is not compiled")
    for j, column in enumerate(columns):
        if column.encoder or column.ops or column.has_imputer:
            raise Unsupported("an imputer after another step is not compiled")
        fill = plain_value(stage.statistics_[j])
        if _missing(fill):
            raise Unsupported(f"the imputer learned no value for column {column.name}")
        column.fill, column.has_imputer = fill, True


def _encoder(stage: Any, columns: list[Column]) -> None:
    kind = class_name(stage)
    # The public parameters say whether rare categories are grouped (scikit-learn's own
    # flag for it is private).
    if stage.min_frequency is not None or stage.max_categories is not None:
        raise Unsupported(f"{kind} with infrequent categories is not compiled")
    onehot = exactly(stage, OneHotEncoder)
    drop = stage.drop_idx_ if onehot else None
    for j, column in enumerate(columns):
        if column.encoder or column.ops:
            raise Unsupported(f"{kind} after another encoder or a scaler is not compiled")
        column.categories = [plain_value(c) for c in stage.categories_[j]]
        if any(_missing(c) for c in column.categories):
            raise Unsupported(f"column {column.name} has a missing value as a category")
        if onehot:
            column.encoder = "onehot"
            column.drop_index = None if drop is None or drop[j] is None else int(drop[j])
            column.unknown_ignored = stage.handle_unknown in (
                "ignore",
                "infrequent_if_exist",
                "warn",
            )
        else:
            column.encoder = "ordinal"
            if stage.handle_unknown == "use_encoded_value":
                unknown = float(stage.unknown_value)
                column.unknown_value = None if math.isnan(unknown) else unknown


def stages(transformer: Any) -> list[Any]:
    """The fitted steps of a Pipeline (skipping ``"passthrough"`` and None), or ``[it]``."""
    if exactly(transformer, Pipeline):
        return [s for _, s in transformer.steps if not (isinstance(s, str) or s is None)]
    if isinstance(transformer, Pipeline):
        raise Unsupported(f"{class_name(transformer)} (a subclass of Pipeline) is not compiled")
    return [transformer]


def selected_columns(ct: Any) -> list[tuple[str, Any, list[str]]]:
    """``(name, fitted transformer, input column names)`` for each part of a fitted
    ColumnTransformer, in the order of its output features.

    Raises:
        Unsupported: not scikit-learn's ColumnTransformer, weights on its parts, or a part
            that selects columns other than by name or position.
    """
    if not exactly(ct, ColumnTransformer):
        raise Unsupported(f"{class_name(ct)} is not compiled")
    if ct.transformer_weights:
        raise Unsupported("ColumnTransformer(transformer_weights=...) is not compiled")
    names_in = [str(n) for n in getattr(ct, "feature_names_in_", [])]
    out = []
    for name, transformer, columns in ct.transformers_:
        if isinstance(columns, str):
            columns = [columns]
        selected: list[str] = []
        for c in list(columns):
            if isinstance(c, str):
                selected.append(c)
            elif isinstance(c, int) and not isinstance(c, bool) and names_in:
                selected.append(names_in[c])
            else:
                raise Unsupported(f"transformer {name!r} selects columns by {type(c).__name__}")
        out.append((name, transformer, selected))
    return out


def column_transformer_columns(ct: Any, kinds: Mapping[str, str]) -> list[Column]:
    """The columns a fitted ColumnTransformer reads, in the order of its output features;
    ``kinds`` gives the signature's type of each input column."""
    out: list[Column] = []
    for name, transformer, selected in selected_columns(ct):
        if not selected or (isinstance(transformer, str) and transformer == "drop"):
            continue
        group = [Column(n, kinds.get(n)) for n in selected]
        if isinstance(transformer, str):
            if transformer != "passthrough":
                raise Unsupported(f"transformer {name!r} is {transformer!r}")
        else:
            for stage in stages(transformer):
                apply_stage(stage, group)
        out += group
    return out


# -- code generation ----------------------------------------------------------------------------


class _Source:
    """The generated function's lines and the constants it reads (by name, so that every
    float keeps its exact value)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"NotCompiled": NotCompiled, "NUMBER": (int, float)}

    def const(self, value: Any) -> str:
        name = f"K{len(self.names)}"
        self.names[name] = value
        return name

    def add(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)


def _read_value(src: _Source, column: Column, key: str, *, nan_ok: bool = False) -> str:
    """Lines that put the column's value in ``v``: read, missing values imputed (or NaN,
    with ``nan_ok``). Returns the name of the key's constant."""
    name = src.const(key)
    src.add(f"v = row[{name}]")
    src.add("if v is None or v != v:")
    if column.has_imputer:
        src.add(f"v = {src.const(column.fill)}", 2)
    elif nan_ok:
        src.add(f"v = {src.const(math.nan)}", 2)
    else:
        src.add(f"raise NotCompiled({name})", 2)
    return name


def _numeric_lines(
    src: _Source, column: Column, target: str, *, read: str | None, nan_ok: bool = False
) -> None:
    """Lines that leave the column's number in ``target``; ``read`` is the input key, or None
    for a feature already in ``target`` (a step after the ColumnTransformer)."""
    if read is not None:
        key = _read_value(src, column, read, nan_ok=nan_ok)
        # Booleans are numbers to scikit-learn; anything else (text, times) is not. An int
        # column becomes int64 on the way to scikit-learn, which refuses larger numbers.
        low, high = INT64 if column.kind == "int" else (-1e308, 1e308)
        low_name, high_name = src.const(low), src.const(high)
        src.add(f"elif not isinstance(v, NUMBER) or not {low_name} <= v <= {high_name}:")
        src.add(f"raise NotCompiled({key})", 2)
        src.add(f"{target} = float(v)")
    elif column.has_imputer:
        src.add(f"if {target} != {target}:")
        src.add(f"{target} = {src.const(float(column.fill))}", 2)
    for op in column.ops:
        if op[0] == "clip":
            src.add(f"{target} = min(max({target}, {src.const(op[1])}), {src.const(op[2])})")
        else:
            symbol = {"sub": "-", "div": "/", "mul": "*", "add": "+"}[op[0]]
            src.add(f"{target} = {target} {symbol} {src.const(op[1])}")


def _encoded_lines(src: _Source, column: Column, targets: list[str]) -> None:
    """Lines that leave an encoded column's features in ``targets``."""
    _read_value(src, column, column.name)
    categories = column.categories or []
    if column.encoder == "ordinal":
        codes = src.const({c: float(i) for i, c in enumerate(categories)})
        src.add(f"{targets[0]} = {codes}.get(v, {src.const(column.unknown_value)})")
        src.add(f"if {targets[0]} is None:")
        src.add(f"raise NotCompiled({src.const(column.name)})", 2)
        return
    kept = [c for i, c in enumerate(categories) if i != column.drop_index]
    blocks = {c: tuple(float(c == k) for k in kept) for c in kept}
    zeros = tuple(0.0 for _ in kept)
    if column.drop_index is not None:
        blocks[categories[column.drop_index]] = zeros
    table = src.const(blocks)
    if column.unknown_ignored:
        src.add(f"{', '.join(targets)}, = {table}.get(v, {src.const(zeros)})")
    else:
        src.add(f"t = {table}.get(v)")
        src.add("if t is None:")
        src.add(f"raise NotCompiled({src.const(column.name)})", 2)
        src.add(f"{', '.join(targets)}, = t")


# Given the names of the feature variables: the expression to return, or statements
# (indented one level) and the expression.
Result = Callable[[list[str]], "str | tuple[list[str], str]"]


def generate(
    columns: list[Column], after: list[list[Column]], result: Result, *, nan_ok: bool = False
) -> Callable[[Mapping[str, Any]], Any]:
    """The function of one row that runs ``columns``, then each step of ``after`` over the
    whole feature vector, and returns what ``result(feature names)`` says. A missing number
    with no imputer raises :class:`NotCompiled`, or becomes NaN with ``nan_ok`` (for an
    estimator that takes NaN, as scikit-learn would hand it over)."""
    src = _Source()
    features: list[str] = []
    for column in columns:
        targets = [f"f{len(features) + i}" for i in range(column.width)]
        if column.width == 0:
            continue
        if column.encoder:
            _encoded_lines(src, column, targets)
        else:
            _numeric_lines(src, column, targets[0], read=column.name, nan_ok=nan_ok)
        features += targets
    for step in after:
        if len(step) != len(features):
            raise Unsupported(f"a step after the columns takes {len(step)} features")
        for column, target in zip(step, features, strict=True):
            _numeric_lines(src, column, target, read=None)
    out = result(features)
    lines, expression = ([], out) if isinstance(out, str) else out
    src.lines += lines
    src.add(f"return {expression}")
    code = "def generated(row):\n" + "\n".join(src.lines) + "\n"
    namespace = dict(src.names)
    exec(compile(code, "<shipyard compiled model>", "exec"), namespace)
    function: Callable[[Mapping[str, Any]], Any] = namespace["generated"]
    function.source = code  # type: ignore[attr-defined]  # for people debugging it
    return function


def linear_sum(weights: Sequence[float], bias: float) -> Callable[[list[str]], str]:
    """``result`` for :func:`generate`: the linear function of the features (the repr of a
    float reads back as the same float)."""
    if not all(math.isfinite(v) for v in [*weights, bias]):
        raise Unsupported("the model has coefficients that are not finite")

    def result(features: list[str]) -> str:
        if len(features) != len(weights):
            raise Unsupported(f"{len(features)} features for {len(weights)} coefficients")
        terms = [f"{w!r} * {f}" for w, f in zip(weights, features, strict=True)]
        return " + ".join([repr(bias), *terms])

    return result
