"""Exporting a registered model to ONNX, with its parity against the original checked.

scikit-learn pipelines are converted by skl2onnx; an XGBoost or LightGBM model, alone or as
the last step of a pipeline, by onnxmltools' converters registered with skl2onnx (the
``onnx-export`` extra). A pipeline that starts with a ColumnTransformer becomes a graph with
one input per column (``[None, 1]`` tensors: integers, floats, booleans or strings, as the
signature types them); any other model a graph with one matrix of floats, its columns in the
signature's order. An ONNX model is written as it is.

The exported graph is then run by onnxruntime on rows of the model's own data, beside the
original: :class:`Parity` reports how many labels agree and how far apart the
probabilities (or values) are. An export whose parity fails is not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.boosters import final_step, require

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.registry.signatures import CheckedPredictor, Signature

__all__ = ["FORMATS", "SUFFIXES", "Parity", "check_parity", "to_onnx"]

FORMATS = ("onnx",)
#: The file extensions each format is written under.
SUFFIXES: dict[str, tuple[str, ...]] = {"onnx": (".onnx",)}
#: Probabilities, and values relative to their size, may differ by this much (ONNX runs the
#: arithmetic in 32-bit floats).
TOLERANCE = 1e-4
#: skl2onnx's opsets: the ONNX operators and the ONNX-ML ones (trees, encoders).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class Parity(ReadModel):
    """How the exported model answers beside the original, on ``rows`` rows of
    ``rows_from``: ``labels_agree`` of them get the same label; ``max_abs_diff`` is the
    largest difference of a probability (a classifier) or a value (a regressor), and
    ``max_rel_diff`` that difference relative to the value's size."""

    rows: int
    rows_from: str
    labels_agree: int
    max_abs_diff: float
    max_rel_diff: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return (
            self.rows > 0 and self.labels_agree == self.rows and self.max_rel_diff <= self.tolerance
        )

    json_properties = ("passed",)


def to_onnx(model: Any, signature: Signature) -> bytes:
    """The ONNX graph of a loaded model, as bytes.

    Raises:
        MissingDependencyError: skl2onnx (or onnxmltools, for a booster) is missing.
        InvalidInputError: a column type ONNX cannot take, or a step the converters do not
            know (the converter's message says which).
    """
    from shipyard.registry.flavors.onnx import OnnxModel

    if isinstance(model, OnnxModel):
        return model.data
    from shipyard.registry.flavors.code import CodeModel

    if isinstance(model, CodeModel):
        raise InvalidInputError(
            "cannot convert a custom code model to ONNX: no converter reads its Python code"
        )
    require("skl2onnx", "onnx-export")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    _register_converters()
    model = _text_imputers_read_empty_text(_xgboost_without_names(model))
    per_column = (
        isinstance(model, Pipeline)
        and bool(model.steps)
        and isinstance(model.steps[0][1], ColumnTransformer)
    )
    _, _, final = final_step(model)
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    if not per_column:
        return _convert(model, _matrix_input(signature), options)
    # First with numbers in doubles, imputed and scaled as scikit-learn does and rounded to
    # floats just before the final estimator, as XGBoost and LightGBM round them: an integer
    # (an age, a score) then reaches a tree's split exactly as in the original. A graph that
    # cannot be built or run that way is converted with floats.
    try:
        exported = _convert(_cast_before_final(model), _column_inputs(signature, True), options)
        OnnxModel(exported, None if not hasattr(final, "classes_") else list(final.classes_))
        return exported
    except InvalidInputError:
        return _convert(model, _column_inputs(signature, False), options)


def _convert(model: Any, inputs: list[tuple[str, Any]], options: Any) -> bytes:
    from skl2onnx import convert_sklearn

    try:
        proto = convert_sklearn(
            model, initial_types=inputs, target_opset=TARGET_OPSET, options=options
        )
    except Exception as exc:  # skl2onnx raises RuntimeError, NotImplementedError, …
        first = (str(exc).splitlines() or [""])[0]
        first = first if len(first) <= 300 else first[:300] + "…"
        raise InvalidInputError(
            f"cannot convert the model to ONNX: {type(exc).__name__}: {first}"
        ) from exc
    # Inputs no operator reads (columns the pipeline drops) are left out of the graph.
    graph = proto.graph
    used = {name for node in graph.node for name in node.input}
    for unused in [i for i in graph.input if i.name not in used]:
        graph.input.remove(unused)
    return bytes(proto.SerializeToString())


def _cast_before_final(model: Any) -> Any:
    """A copy of the pipeline ``model`` that rounds its features to 32-bit floats before its
    final estimator (skl2onnx's CastTransformer)."""
    import copy

    import numpy as np
    from skl2onnx.sklapi import CastTransformer

    pipeline, step, final = final_step(model)
    assert pipeline is not None
    width = int(getattr(final, "n_features_in_", 1))
    cast = CastTransformer(dtype=np.float32).fit(np.zeros((1, width)))
    out = copy.copy(pipeline)
    out.steps = [*pipeline.steps[:-1], ("shipyard_cast", cast), (step, final)]
    return out


def check_parity(
    predictor: CheckedPredictor, exported: bytes, frame: pd.DataFrame, rows_from: str
) -> Parity:
    """Score ``frame`` with the original and with the exported graph (onnxruntime)."""
    import numpy as np

    from shipyard.registry.flavors.onnx import OnnxModel

    classes = None if predictor.classes is None else predictor.classes.tolist()
    graph = OnnxModel(exported, classes if predictor.is_classifier else None)
    x = predictor._model_input(frame)
    n = len(frame)
    if n == 0:
        return Parity(0, rows_from, 0, float("nan"), float("nan"), TOLERANCE)
    labels = np.asarray(predictor.model.predict(x))
    answered = np.asarray(graph.predict(x))
    if predictor.is_classifier:
        agree = int(sum(str(a) == str(b) for a, b in zip(labels, answered, strict=True)))
        ours = np.asarray(predictor.model.predict_proba(x), dtype=float)
        theirs = np.asarray(graph.predict_proba(x), dtype=float)
    else:
        ours = labels.astype(float)
        theirs = answered.astype(float)
        agree = int(np.sum(np.isclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE)))
    diff = np.abs(ours - theirs)
    rel = diff / np.maximum(np.abs(ours), 1.0)
    return Parity(n, rows_from, agree, float(diff.max()), float(rel.max()), TOLERANCE)


def _text_imputers_read_empty_text(model: Any) -> Any:
    """``model``, or a copy of it whose imputers of text columns take the empty string as the
    missing value: skl2onnx converts those only, and the exported graph receives a missing
    text as ``""`` (as :class:`~shipyard.registry.flavors.onnx.OnnxModel` sends it)."""
    import copy

    from sklearn.impute import SimpleImputer

    def imputers(obj: Any) -> list[Any]:
        found = []
        for _, step, *_ in getattr(obj, "steps", []) + getattr(obj, "transformers_", []):
            if isinstance(step, SimpleImputer):
                found.append(step)
            elif not isinstance(step, str):
                found += imputers(step)
        return found

    def is_text(imputer: Any) -> bool:
        stats = getattr(imputer, "statistics_", None)
        return stats is not None and stats.dtype.kind in "OUS" and imputer.missing_values != ""

    if not any(is_text(i) for i in imputers(model)):
        return model
    model = copy.deepcopy(model)
    for imputer in imputers(model):
        if is_text(imputer):
            imputer.missing_values = ""
    return model


def _impute_doubles(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter for SimpleImputer, which takes floats only (onnxruntime's Imputer
    operator), extended to doubles: ``Where(IsNaN(x), statistics, x)``, for an imputer of
    numbers that keeps every column and adds no indicator."""
    import numpy as np
    from skl2onnx.algebra.onnx_ops import OnnxIsNaN, OnnxWhere

    imputer = operator.raw_operator
    x = operator.inputs[0]
    stats = np.asarray(getattr(imputer, "statistics_", []))
    if (
        type(x.type).__name__ != "DoubleTensorType"
        or stats.dtype.kind not in "iuf"
        or np.isnan(stats).any()
        or imputer.add_indicator
        or not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values))
    ):
        _impute_doubles.floats(scope, operator, container)  # type: ignore[attr-defined]
        return
    opset = container.target_opset
    values = stats.astype(np.float64).reshape(1, -1)
    out = OnnxWhere(
        OnnxIsNaN(x, op_version=opset),
        values,
        x,
        op_version=opset,
        output_names=operator.outputs[:1],
    )
    out.add_to(scope, container)


def _xgboost_without_names(model: Any) -> Any:
    """``model`` with its XGBoost booster (if any) copied without feature names: the converter
    reads features as ``f0``, ``f1``…, in the order of the columns it is given."""
    import copy

    pipeline, step, final = final_step(model)
    if type(final).__module__.split(".")[0] != "xgboost":
        return model
    if not final.get_booster().feature_names:
        return model
    unnamed = copy.deepcopy(final)
    unnamed.get_booster().feature_names = None
    if pipeline is None:
        return unnamed
    out = copy.copy(pipeline)
    out.steps = [*pipeline.steps[:-1], (step, unnamed)]
    return out


def _column_inputs(signature: Signature, doubles: bool) -> list[tuple[str, Any]]:
    """One input per column: numbers as doubles (``doubles``), else as floats (integers too:
    scikit-learn's imputers and scalers give floats, and skl2onnx's keep the input type)."""
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        StringTensorType,
    )

    kinds = {
        "int": DoubleTensorType if doubles else FloatTensorType,
        "float": DoubleTensorType if doubles else FloatTensorType,
        "bool": BooleanTensorType,
        "string": StringTensorType,
        "category": StringTensorType,
    }
    # A column of another type (a date the ColumnTransformer drops) is declared as text;
    # unused, it leaves the graph (_convert), and used, the converter refuses the model.
    return [
        (name, kinds.get(spec.type, StringTensorType)([None, 1]))
        for name, spec in signature.inputs.columns.items()
    ]


def _matrix_input(signature: Signature) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType

    text = [n for n, s in signature.inputs.columns.items() if s.type not in ("int", "float")]
    if text:
        raise InvalidInputError(
            "a model without a ColumnTransformer is exported with one matrix of numbers, but "
            f"these columns are not numbers: {', '.join(text)}"
        )
    if len(signature.columns) == 1:
        # A one-column matrix is a [None, 1] tensor, which reads as one column input: named
        # after its column, it is fed as one.
        return [(signature.columns[0], FloatTensorType([None, 1]))]
    return [("input", FloatTensorType([None, len(signature.columns)]))]


def _register_converters() -> None:
    """Teach skl2onnx the XGBoost and LightGBM estimators, with onnxmltools' converters, and
    to impute numbers in doubles (:func:`_impute_doubles`)."""
    import importlib.util

    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from sklearn.impute import SimpleImputer

    if not getattr(_impute_doubles, "floats", None):
        _impute_doubles.floats = get_converter("SklearnSimpleImputer")  # type: ignore[attr-defined]
        update_registered_converter(
            SimpleImputer,
            "SklearnSimpleImputer",
            get_shape_calculator("SklearnSimpleImputer"),
            _impute_doubles,
        )
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if importlib.util.find_spec("xgboost") is not None:
        require("onnxmltools", "onnx-export")
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        update_registered_converter(
            xgboost.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=classifier_options,
        )
        update_registered_converter(
            xgboost.XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    if importlib.util.find_spec("lightgbm") is not None:
        require("onnxmltools", "onnx-export")
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        from shipyard.registry.flavors.lightgbm import LightGBMClassifier, LightGBMRegressor

        update_registered_converter(
            LightGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            LightGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )
