"""Decision trees and forests of them (``DecisionTree*``, ``RandomForest*``, ``ExtraTrees*``)
walked in plain Python over the compiled features.

A forest is often too large to become code (thousands of nodes a tree), so each tree stays
four lists (left child, right child, feature, threshold) and a leaf table, and a row walks
them: about 0.2 ms for 100 trees of depth 15, against about 9 ms for scikit-learn's own call
on one row. As in scikit-learn, features are rounded to 32-bit floats before they are
compared, class probabilities are each tree's leaf proportions averaged over the trees, and
a regression is the mean of the trees' leaf values. A missing value never reaches a tree
here, nor does a feature too large for a 32-bit float, which scikit-learn refuses
(:class:`NotCompiled` sends that request to scikit-learn). Only public attributes are read
(``estimators_``, ``tree_``). Removing this module (and its branch in
:mod:`shipyard.registry.compiled`) leaves these models called on arrays.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from shipyard.registry.codegen import Answer, NotCompiled, Unsupported, class_name
from shipyard.registry.signatures import plain_value

__all__ = ["FORESTS", "forest_head"]

#: The estimators walked here (these classes themselves, not subclasses).
FORESTS = (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
)
#: The largest 32-bit float: scikit-learn casts a tree's input to float32 and refuses a
#: feature that becomes infinite.
FLOAT32_MAX = 3.4028234663852886e38

# One tree: left children, right children, features, thresholds, leaf values.
_Tree = tuple[list[int], list[int], list[int], list[float], list[Any]]


def forest_head(est: Any, width: int) -> Callable[[list[list[float]]], list[Answer]]:
    """The head that answers from ``width`` compiled features per row.

    Raises:
        Unsupported: several outputs, or a tree fitted on another number of features.
    """
    if int(getattr(est, "n_outputs_", 1)) != 1:
        raise Unsupported(f"{class_name(est)} with several outputs is not compiled")
    if int(getattr(est, "n_features_in_", width)) != width:
        raise Unsupported(f"{width} features for a model fitted on {est.n_features_in_}")
    members = list(getattr(est, "estimators_", [est]))
    classes = getattr(est, "classes_", None)
    trees = [_tree(member.tree_, classifier=classes is not None) for member in members]
    if classes is None:
        return _regression(trees)
    return _classification(trees, [plain_value(c) for c in classes])


def _tree(tree: Any, *, classifier: bool) -> _Tree:
    if classifier:
        values = tree.value[:, 0, :]
        totals = values.sum(axis=1, keepdims=True)
        totals[totals == 0.0] = 1.0
        leaves: list[Any] = [tuple(row) for row in (values / totals).tolist()]
    else:
        leaves = tree.value[:, 0, 0].tolist()
    return (
        tree.children_left.tolist(),
        tree.children_right.tolist(),
        tree.feature.tolist(),
        tree.threshold.tolist(),
        leaves,
    )


def _leaf(tree: _Tree, x: list[float]) -> Any:
    left, right, feature, threshold, leaves = tree
    node = 0
    while left[node] != -1:
        node = left[node] if x[feature[node]] <= threshold[node] else right[node]
    return leaves[node]


def _as_float32(features: list[float]) -> list[float]:
    """The features rounded to 32-bit floats, as scikit-learn gives them to the trees.

    Raises:
        NotCompiled: a feature is missing, or too large for a 32-bit float (scikit-learn
            refuses it: "Input X contains infinity or a value too large for
            dtype('float32')").
    """
    x = array("f", features).tolist()  # rounds to nearest; too large becomes infinite
    for v in x:
        if not -FLOAT32_MAX <= v <= FLOAT32_MAX:  # NaN too
            raise NotCompiled("a feature is missing or too large for a 32-bit float")
    return x


def _classification(
    trees: list[_Tree], labels: list[Any]
) -> Callable[[list[list[float]]], list[Answer]]:
    names = [str(c) for c in labels]
    k, n = len(labels), len(trees)

    def answers(rows: list[list[float]]) -> list[Answer]:
        out = []
        for features in rows:
            x = _as_float32(features)
            total = [0.0] * k
            for tree in trees:
                for j, p in enumerate(_leaf(tree, x)):
                    total[j] += p
            proba = [p / n for p in total]
            best = max(range(k), key=proba.__getitem__)
            out.append(
                {"prediction": labels[best], "probabilities": dict(zip(names, proba, strict=True))}
            )
        return out

    return answers


def _regression(trees: list[_Tree]) -> Callable[[list[list[float]]], list[Answer]]:
    n = len(trees)

    def answers(rows: list[list[float]]) -> list[Answer]:
        out = []
        for features in rows:
            x = _as_float32(features)
            out.append({"prediction": sum(_leaf(tree, x) for tree in trees) / n})
        return out

    return answers
