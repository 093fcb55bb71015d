"""Histogram gradient boosting (``HistGradientBoostingClassifier`` and ``...Regressor``) as
generated code: every tree becomes nested ``if`` statements over the feature variables,
adding its leaf value to a running sum per output.

scikit-learn sums the baseline and then each tree's leaf in the order of the boosting
iterations; the generated code does the same, so the raw scores are the same floats. A
missing value follows the side the tree learned for it. Trees that split on categorical
features, losses other than log-loss and squared error, and models of more than
:data:`MAX_NODES` nodes are not compiled (the caller then calls the estimator on arrays).

The trees are read from private attributes (``_predictors``, ``_baseline_prediction``),
which is why pyproject.toml bounds scikit-learn and :func:`shipyard.registry.flavors.
version_problem` refuses the compiled path for a model saved with another minor version.
Removing this module (and its branch in :mod:`shipyard.registry.compiled`) leaves these
models called on arrays.
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from shipyard.registry.codegen import Unsupported, class_name, exactly

__all__ = ["BOOSTED", "MAX_NODES", "boosted_sum"]

#: The estimators compiled here (these classes themselves, not subclasses).
BOOSTED = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)

#: Above this many tree nodes the generated function would take long to compile.
MAX_NODES = 60_000


def boosted_sum(est: Any) -> tuple[Any, str]:
    """``result`` for :func:`shipyard.registry.codegen.generate`, returning the raw score
    (one per class for several classes), and the link that turns it into the answer:
    ``"logistic"``, ``"softmax"`` or ``"identity"``.

    Raises:
        Unsupported: categorical splits, another loss, or too many nodes.
    """
    link = _link(est)
    predictors = est._predictors
    baseline = [float(v) for v in est._baseline_prediction.ravel()]
    nodes = sum(len(tree.nodes) for iteration in predictors for tree in iteration)
    if nodes > MAX_NODES:
        raise Unsupported(f"{nodes:,} tree nodes are more than {MAX_NODES:,} to compile")
    for iteration in predictors:
        for tree in iteration:
            if tree.nodes["is_categorical"].any():
                raise Unsupported("trees that split on categorical features are not compiled")

    def result(features: list[str]) -> tuple[list[str], str]:
        width = int(getattr(est, "n_features_in_", len(features)))
        if len(features) != width:
            raise Unsupported(f"{len(features)} features for a model fitted on {width}")
        lines = [f"    r{k} = {_number(b)}" for k, b in enumerate(baseline)]
        for iteration in predictors:
            for k, tree in enumerate(iteration):
                _tree_lines(tree.nodes, 0, f"r{k}", features, 1, lines)
        sums = [f"r{k}" for k in range(len(baseline))]
        return lines, sums[0] if link != "softmax" else "(" + ", ".join(sums) + ",)"

    return result, link


def _link(est: Any) -> str:
    """The link of the estimator's loss, from its public parameters."""
    if exactly(est, HistGradientBoostingClassifier) and est.loss == "log_loss":
        return "logistic" if int(est.n_trees_per_iteration_) == 1 else "softmax"
    if exactly(est, HistGradientBoostingRegressor) and est.loss == "squared_error":
        return "identity"
    raise Unsupported(f"{class_name(est)} with loss {est.loss!r} is not compiled")


def _tree_lines(
    nodes: Any, at: int, total: str, features: list[str], depth: int, lines: list[str]
) -> None:
    """The statements of the subtree at node ``at``, indented ``depth`` levels."""
    indent = "    " * depth
    node = nodes[at]
    if node["is_leaf"]:
        lines.append(f"{indent}{total} += {_number(float(node['value']))}")
        return
    x = features[int(node["feature_idx"])]
    threshold = _number(float(node["num_threshold"]))
    missing_left = bool(node["missing_go_to_left"])
    # NaN compares false: it goes right unless the tree sent missing values left.
    test = f"{x} <= {threshold} or {x} != {x}" if missing_left else f"{x} <= {threshold}"
    lines.append(f"{indent}if {test}:")
    _tree_lines(nodes, int(node["left"]), total, features, depth + 1, lines)
    lines.append(f"{indent}else:")
    _tree_lines(nodes, int(node["right"]), total, features, depth + 1, lines)


def _number(value: float) -> str:
    """A float as source text that reads back as the same float (1e999 reads as infinity)."""
    if value != value:
        raise Unsupported("a tree holds NaN")
    if value in (float("inf"), float("-inf")):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)
