"""Compiling a preprocessing spec to an unfitted scikit-learn ColumnTransformer.

Columns with equal steps share one transformer, a Pipeline of an imputer and then a scaler or an
encoder; encoded columns share one also when only their fixed category lists differ. scikit-learn
is imported only when a spec is compiled. Callers use ``PreprocessingSpec.to_column_transformer``
in :mod:`shipyard.data.preprocessing`, not this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.data.preprocessing_steps import ColumnStep

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from shipyard.data.preprocessing import PreprocessingSpec

__all__ = ["column_transformer"]


def column_transformer(spec: PreprocessingSpec) -> ColumnTransformer:
    """The unfitted ColumnTransformer implementing ``spec``; see
    :meth:`~shipyard.data.preprocessing.PreprocessingSpec.to_column_transformer`."""
    from sklearn.compose import ColumnTransformer

    # Columns whose steps differ only in their category lists share one encoder with a
    # category list per column: fewer transformers make each prediction cheaper.
    groups: dict[tuple[Any, ...], list[tuple[str, ColumnStep]]] = {}
    for name, step in spec.columns.items():
        groups.setdefault(_group_key(step), []).append((name, step))
    transformers: list[tuple[str, Any, list[str]]] = []
    used: dict[str, int] = {}
    for members in groups.values():
        step = members[0][1]
        # With remainder="drop" the dropped columns need no entry, and leaving them out
        # lets the fitted transformer accept frames that no longer carry them.
        if step.drop and spec.remainder == "drop":
            continue
        names = [n for n, _ in members]
        per_column = None
        if step.encode is not None and step.encode.categories is not None:
            per_column = [s.encode.categories for _, s in members if s.encode is not None]
        label = step.label
        used[label] = used.get(label, 0) + 1
        if used[label] > 1:
            label = f"{label}_{used[label]}"
        transformers.append((label, _step_transformer(step, len(names), per_column), names))
    ct = ColumnTransformer(transformers, remainder=spec.remainder, verbose_feature_names_out=False)
    ct.set_output(transform="pandas")
    return ct


def _group_key(step: ColumnStep) -> tuple[Any, ...]:
    """Steps with equal keys can share one transformer (category lists may differ)."""
    enc = step.encode
    if enc is None:
        return (step,)
    return (
        step.impute,
        step.scale,
        step.drop,
        enc.method,
        enc.handle_unknown,
        enc.unknown_value,
        enc.categories is None,
    )


def _step_transformer(step: ColumnStep, n_columns: int, per_column: list[Any] | None = None) -> Any:
    """The scikit-learn object for one step applied to ``n_columns`` columns; ``per_column``
    gives each column's own category list."""
    if step.drop:
        return "drop"
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        StandardScaler,
    )

    stages: list[tuple[str, Any]] = []
    if step.impute is not None:
        if step.impute.strategy == "constant":
            imputer = SimpleImputer(strategy="constant", fill_value=step.impute.fill_value)
        else:
            imputer = SimpleImputer(strategy=step.impute.strategy)
        stages.append(("impute", imputer))
    if step.scale is not None:
        scaler = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
        stages.append(("scale", scaler[step.scale]()))
    if step.encode is not None:
        enc = step.encode
        if per_column is not None:
            categories: Any = [list(c) for c in per_column]
        elif enc.categories is not None:
            categories = [list(enc.categories)] * n_columns
        else:
            categories = "auto"
        if enc.method == "onehot":
            encoder: Any = OneHotEncoder(
                categories=categories, handle_unknown=enc.handle_unknown, sparse_output=False
            )
        else:
            encoder = OrdinalEncoder(
                categories=categories,
                handle_unknown="use_encoded_value",
                unknown_value=enc.unknown_value,
            )
        stages.append(("encode", encoder))
    if not stages:
        return "passthrough"
    return Pipeline(stages)
