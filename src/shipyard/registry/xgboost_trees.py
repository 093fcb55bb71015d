"""XGBoost boosters (``XGBClassifier``, ``XGBRegressor``) as generated code: every tree
becomes nested ``if`` statements over the feature variables, adding its leaf value to a
running sum per output, as :mod:`shipyard.registry.trees` does for scikit-learn's histogram
boosting.

The trees are read from the booster's own JSON document (``Booster.save_raw("json")``: the
split feature, threshold, default direction of a missing value and children of every node,
the leaf values, the class of each tree, the base score and the objective); nothing is
unpickled. XGBoost compares a feature rounded to a 32-bit float with a 32-bit threshold,
``float32(x) < t``; the generated code compares the 64-bit feature with the midpoint between
``t`` and the 32-bit float below it, which sends every value the same way without rounding
it. A missing value (NaN) takes the branch the tree learned for it.

XGBoost sums the leaves in 32-bit floats and the generated code in 64-bit ones, so the
answers differ in the last digits of a 32-bit float: the equivalence check
(:mod:`shipyard.registry.equivalence`) allows a relative :data:`RTOL` for these models, and
the label is that of the 64-bit score (only a score within that rounding of the decision
boundary could be labelled otherwise; the check would see it on its rows).

Compiled: the ``gbtree`` booster with the objectives ``binary:logistic`` (logistic link),
``multi:softprob`` (softmax) and ``reg:squarederror`` (identity), missing values as NaN,
numeric splits only, one output per tree; a model trained with early stopping is cut at its
best iteration, as its ``predict`` does. Anything else (``dart``, categorical splits, other
objectives, more than :data:`MAX_NODES` nodes) raises :class:`Unsupported` and the caller
calls the estimator on arrays.
"""

from __future__ import annotations

import json
import math
from typing import Any

from shipyard.registry.codegen import Unsupported
from shipyard.registry.trees import MAX_NODES, _number

__all__ = ["OBJECTIVES", "RTOL", "is_xgboost_estimator", "xgboost_sum"]

#: The objectives compiled, and the link that turns the raw score into the answer.
OBJECTIVES = {
    "binary:logistic": "logistic",
    "multi:softprob": "softmax",
    "reg:squarederror": "identity",
}
#: Relative difference allowed against XGBoost's answers, which it computes in 32-bit floats.
RTOL = 1e-4
#: Absolute difference allowed likewise (probabilities and values near zero).
ATOL = 1e-6


def is_xgboost_estimator(est: Any) -> bool:
    """Whether ``est`` is XGBoost's own ``XGBClassifier`` or ``XGBRegressor`` (not a
    subclass, which may predict otherwise)."""
    cls = type(est)
    return cls.__module__ == "xgboost.sklearn" and cls.__name__ in (
        "XGBClassifier",
        "XGBRegressor",
    )


def xgboost_sum(est: Any) -> tuple[Any, str]:
    """``result`` for :func:`shipyard.registry.codegen.generate`, returning the raw score
    (one per class for several classes), and the link that turns it into the answer:
    ``"logistic"``, ``"softmax"`` or ``"identity"``.

    Raises:
        Unsupported: another booster, objective or missing value, categorical splits, trees
            of several outputs, or too many nodes.
    """
    missing = getattr(est, "missing", math.nan)
    if not (isinstance(missing, float) and math.isnan(missing)):
        raise Unsupported(f"an XGBoost model whose missing value is {missing!r} is not compiled")
    doc = json.loads(bytes(est.get_booster().save_raw("json")))
    learner = doc["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise Unsupported(f"the XGBoost booster {booster.get('name')!r} is not compiled")
    objective = learner["objective"]["name"]
    link = OBJECTIVES.get(objective)
    if link is None:
        raise Unsupported(f"the XGBoost objective {objective!r} is not compiled")
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) != 1:
        raise Unsupported("an XGBoost model of several targets is not compiled")
    width = int(params["num_feature"])
    outputs = max(1, int(params.get("num_class", "0")))
    if (outputs > 1) != (link == "softmax"):
        raise Unsupported(f"{objective} with {outputs} classes is not compiled")
    base = [_f32(v) for v in str(params["base_score"]).strip("[]").split(",")]
    if len(base) == 1:
        base *= outputs
    if len(base) != outputs:
        raise Unsupported(f"{len(base)} base scores for {outputs} outputs")
    if link == "logistic":
        # The base score of a logistic model is a probability; its margin is the logit.
        p = base[0]
        if not 0.0 < p < 1.0:
            raise Unsupported(f"a base score of {p!r} for a logistic model")
        base = [-math.log(1.0 / p - 1.0)]
    model = booster["model"]
    trees, groups = model["trees"], [int(g) for g in model["tree_info"]]
    best = learner.get("attributes", {}).get("best_iteration")
    if best is not None:  # predict() stops at the best iteration of early stopping
        indptr = model["iteration_indptr"]
        end = int(indptr[min(int(best) + 1, len(indptr) - 1)])
        trees, groups = trees[:end], groups[:end]
    nodes = sum(len(t["left_children"]) for t in trees)
    if nodes > MAX_NODES:
        raise Unsupported(f"{nodes:,} tree nodes are more than {MAX_NODES:,} to compile")
    for tree in trees:
        if any(int(s) != 0 for s in tree["split_type"]):
            raise Unsupported("trees that split on categorical features are not compiled")
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise Unsupported("trees with a vector in each leaf are not compiled")
    if any(not 0 <= g < outputs for g in groups):
        raise Unsupported("a tree of a class the model does not have")

    def result(features: list[str]) -> tuple[list[str], str]:
        if len(features) != width:
            raise Unsupported(f"{len(features)} features for a booster of {width}")
        lines = [f"    r{k} = {_number(b)}" for k, b in enumerate(base)]
        for tree, group in zip(trees, groups, strict=True):
            _tree_lines(tree, 0, f"r{group}", features, 1, lines)
        sums = [f"r{k}" for k in range(outputs)]
        return lines, sums[0] if link != "softmax" else "(" + ", ".join(sums) + ",)"

    return result, link


def _tree_lines(
    tree: dict[str, Any], at: int, total: str, features: list[str], depth: int, lines: list[str]
) -> None:
    """The statements of the subtree at node ``at``, indented ``depth`` levels."""
    indent = "    " * depth
    left = int(tree["left_children"][at])
    if left == -1:  # a leaf: its value is in split_conditions
        lines.append(f"{indent}{total} += {_number(_f32(tree['split_conditions'][at]))}")
        return
    index = int(tree["split_indices"][at])
    if not 0 <= index < len(features):
        raise Unsupported(f"a split on feature {index} of {len(features)}")
    x = features[index]
    bound, inclusive = _below(_f32(tree["split_conditions"][at]))
    test = f"{x} {'<=' if inclusive else '<'} {_number(bound)}"
    if int(tree["default_left"][at]):
        test += f" or {x} != {x}"  # NaN compares false: it goes right unless sent left
    lines.append(f"{indent}if {test}:")
    _tree_lines(tree, left, total, features, depth + 1, lines)
    lines.append(f"{indent}else:")
    _tree_lines(tree, int(tree["right_children"][at]), total, features, depth + 1, lines)


def _f32(value: Any) -> float:
    """``value`` as the 32-bit float XGBoost holds, as a Python float."""
    import numpy as np

    return float(np.float32(float(value)))


def _below(threshold: float) -> tuple[float, bool]:
    """``(bound, inclusive)`` such that ``float32(x) < threshold`` exactly when ``x <
    bound`` (``x <= bound`` if inclusive) for every 64-bit ``x``: the midpoint between the
    threshold and the 32-bit float below it, which rounds (to even) down when that float's
    last bit is 0."""
    import numpy as np

    t = np.float32(threshold)
    if not math.isfinite(float(t)):
        raise Unsupported("a tree holds an infinite threshold")
    below = np.nextafter(t, np.float32(-np.inf))
    if not math.isfinite(float(below)):
        raise Unsupported("a tree splits at the lowest 32-bit float")
    midpoint = (float(below) + float(t)) / 2.0  # exact: 64-bit floats have room for it
    even = int(np.asarray(below, dtype=np.float32).view(np.int32)) & 1 == 0
    return midpoint, even
