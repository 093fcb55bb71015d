"""Model signatures: the columns a model takes and what it returns, checked before predicting.

A signature is inferred once, at registration, from the fitted model and an example of its
input; :class:`CheckedPredictor` then refuses any input that does not match it with one error
that names every missing and mistyped column, instead of whatever scikit-learn says deep in a
pipeline.

>>> import pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> X = pd.DataFrame({"age": [20, 30, 40, 50], "income": [1.0, 2.0, 3.0, 4.0]})
>>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
>>> signature = infer_signature(model, X)
>>> signature.outputs
{'kind': 'classification', 'classes': [0, 1], 'dtype': 'int'}
>>> CheckedPredictor(model, signature).predict(X[["income", "age"]]).tolist()
[0, 0, 1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from shipyard._internal.dtypes import readable_dtype
from shipyard.data.contracts import ColumnSpec, ColumnType, Contract
from shipyard.data.inference import infer_column_type  # one mapping from dtypes to contract types
from shipyard.data.validation import type_matches
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import polars as pl
    from pydantic import ValidationError

__all__ = ["CheckedPredictor", "Signature", "infer_signature"]

OUTPUT_KINDS = ("classification", "regression")


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``, a contract with one column per input) and what it
    returns (``outputs``): ``{"kind": "classification", "classes": [...], "dtype": "int"}``
    or ``{"kind": "regression", "dtype": "float"}``."""

    inputs: Contract
    outputs: dict[str, Any]
    ignored: tuple[str, ...] = ()
    """Columns the model was fitted on but never reads (its pipeline drops them, like an id
    or a date): accepted and ignored in input, and filled with nulls for the model when
    left out."""

    @property
    def columns(self) -> list[str]:
        """The input columns the model reads, in the order it takes them."""
        return list(self.inputs.columns)

    def to_dict(self) -> dict[str, Any]:
        """``{"inputs": <contract document>, "outputs": {...}}``, with ``"ignored": [...]``
        when the model drops columns it was fitted on; JSON-ready."""
        doc: dict[str, Any] = {"inputs": self.inputs.to_dict(), "outputs": dict(self.outputs)}
        if self.ignored:
            doc["ignored"] = list(self.ignored)
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> Signature:
        """Read back a document written by :meth:`to_dict`.

        Raises:
            InvalidInputError: the document is not a signature.
        """
        if not isinstance(doc, Mapping) or not {"inputs", "outputs"} <= set(doc):
            raise InvalidInputError("a signature is a mapping with 'inputs' and 'outputs'")
        outputs = doc["outputs"]
        kind = outputs.get("kind") if isinstance(outputs, Mapping) else None
        if kind not in OUTPUT_KINDS:
            raise InvalidInputError(
                f"signature outputs: 'kind' must be one of {', '.join(OUTPUT_KINDS)}, got {kind!r}"
            )
        if kind == "classification" and not isinstance(outputs.get("classes"), list):
            raise InvalidInputError("signature outputs: a classifier needs a list of 'classes'")
        ignored = doc.get("ignored", [])
        if not isinstance(ignored, list) or not all(isinstance(c, str) for c in ignored):
            raise InvalidInputError("signature 'ignored' must be a list of column names")
        return cls(
            inputs=Contract.from_dict(doc["inputs"]),
            outputs=dict(outputs),
            ignored=tuple(ignored),
        )


def infer_signature(model: Any, input_example: Any) -> Signature:
    """The signature of a fitted model, from a pandas or polars frame of its input.

    The inputs are the columns the model was fitted on (``feature_names_in_``, in that
    order) or, for a model fitted without column names, every column of the example. Each
    is nullable, with no bounds: a small example says little about the range of values.
    Columns a pipeline's ColumnTransformer drops (an id, a date) are not inputs: they are
    listed in :attr:`Signature.ignored`.

    >>> infer_signature(model, X).columns  # doctest: +SKIP
    ['age', 'income']

    Raises:
        InvalidInputError: the example is not a frame, lacks columns the model was fitted on,
            has a column whose type a contract cannot describe, or the classes of a
            classifier are neither numbers, booleans nor text.
    """
    frame = _to_polars(input_example)
    names = _model_columns(model)
    if names is None:
        names = list(frame.columns)
        n_in = getattr(model, "n_features_in_", None)
        if isinstance(n_in, int) and n_in != len(names):
            raise InvalidInputError(
                f"the input example has {len(names)} columns but the model was fitted on {n_in}"
            )
    else:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidInputError(
                "the input example lacks columns the model was fitted on: " + ", ".join(missing)
            )
    ignored = _unread_columns(model, names)
    columns: dict[str, ColumnSpec] = {}
    for name in names:
        if name in ignored:
            continue
        type_ = infer_column_type(frame.schema[name])
        if type_ is None:
            raise InvalidInputError(
                f"column {name} has dtype {readable_dtype(str(frame.schema[name]))}, which a "
                "signature cannot describe (use int, float, bool, string, category or datetime)"
            )
        columns[name] = ColumnSpec(type=cast(ColumnType, type_), nullable=True)
    return Signature(
        inputs=Contract(columns=columns), outputs=_outputs(model), ignored=tuple(ignored)
    )


class CheckedPredictor:
    """A model behind its signature: input is checked before the model sees it.

    Frames (pandas or polars) may carry extra columns, which are dropped, and may list
    columns in any order. Integers are accepted where floats are expected, and floats
    holding only whole numbers (an int column with missing values, as pandas stores it)
    where integers are; text columns accept string or categorical dtypes. Missing values are
    passed to the model, whose imputer decides.

    ``name`` (such as ``credit-risk@3``) appears in error messages. Without a signature (a
    model registered without an input example) frames reach the model as given: only their
    kind is checked, and :meth:`validate_records` is unavailable. ``saved_with`` holds the
    library versions the model was saved with (:attr:`ModelVersion.environment`), which
    :attr:`version_problem` compares with the running ones.

    Raises:
        InvalidInputError: at construction, the signature describes other outputs than the
            model has (kind or classes).
    """

    def __init__(
        self,
        model: Any,
        signature: Signature | None,
        *,
        name: str = "the model",
        saved_with: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.signature = signature
        self.name = name
        self.saved_with: dict[str, str] = dict(saved_with or {})
        expected = _outputs(model)
        if signature is not None and expected != signature.outputs:
            raise InvalidInputError(
                f"the signature of {name} does not describe the model's outputs: "
                f"signature says {signature.outputs}, the model gives {expected}"
            )

    @property
    def version_problem(self) -> str | None:
        """Why the model should not be answered by the compiled path with the libraries
        running now (saved with another scikit-learn minor version, or running one outside
        the supported range), or None: :func:`shipyard.registry.flavors.version_problem`."""
        from shipyard.registry.flavors import version_problem

        return version_problem(self.saved_with)

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes (it has ``classes_``)."""
        return getattr(self.model, "classes_", None) is not None

    @property
    def classes(self) -> np.ndarray | None:
        """The classes, in the order of the columns of :meth:`predict_proba`; None for a
        regressor."""
        import numpy as np

        classes = getattr(self.model, "classes_", None)
        return None if classes is None else np.asarray(classes)

    def predict(self, frame: Any) -> np.ndarray:
        """Predictions for each row of a pandas or polars frame.

        Raises:
            InvalidInputError: the frame does not match the signature (every missing and
                mistyped column is named).
        """
        import numpy as np

        return np.asarray(self.model.predict(self._model_input(frame)))

    def predict_proba(self, frame: Any) -> np.ndarray:
        """Class probabilities, one row per input row and one column per class
        (:attr:`classes`).

        Raises:
            InvalidInputError: the model is not a classifier with probabilities, or the frame
                does not match the signature.
        """
        import numpy as np

        if not self.is_classifier:
            raise InvalidInputError(f"{self.name} is a regressor; it has no class probabilities")
        if not hasattr(self.model, "predict_proba"):
            raise InvalidInputError(f"{self.name} does not give class probabilities")
        return np.asarray(self.model.predict_proba(self._model_input(frame)))

    def answer(self, frame: Any) -> list[dict[str, Any]]:
        """What every scoring path answers for each row of ``frame``: ``{"prediction": ...}``,
        the model's own ``predict()`` (so a thresholded classifier serves its thresholded
        label, as evaluation and the policy gate see it), with ``"probabilities"`` (class name
        to probability, from ``predict_proba``) beside it for a classifier that has them.

        Raises:
            InvalidInputError: the frame does not match the signature.
        """
        import numpy as np

        x = self._model_input(frame)
        labels = [plain_value(v) for v in np.asarray(self.model.predict(x))]
        classes = self.classes
        if not (
            self.is_classifier and classes is not None and hasattr(self.model, "predict_proba")
        ):
            return [{"prediction": label} for label in labels]
        proba = np.asarray(self.model.predict_proba(x))
        names = [str(plain_value(c)) for c in classes]
        return [
            {
                "prediction": label,
                "probabilities": {c: float(p) for c, p in zip(names, probs, strict=True)},
            }
            for label, probs in zip(labels, proba, strict=True)
        ]

    def validate_records(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """A pandas frame in signature column order from JSON records, each checked with
        the signature's pydantic model (keys the signature does not name are ignored;
        nullable columns may be left out here, whereas the model server refuses a record
        that lacks any signature column). Missing values become NaN (NaT for times), as
        scikit-learn's imputers expect.

        >>> predictor.validate_records([{"age": 30, "income": 2.5}])  # doctest: +SKIP

        Raises:
            InvalidInputError: a record does not validate; every problem is listed as
                ``record <index>, <field>: <reason>``, and ``details["errors"]`` holds
                ``{"record", "field", "reason", "check"}`` for each.
        """
        from pydantic import ValidationError

        if isinstance(records, Mapping | str | bytes) or not isinstance(records, Sequence):
            raise InvalidInputError("expected a list of records (JSON objects)")
        if self.signature is None:
            raise InvalidInputError(
                f"{self.name} has no signature, so records cannot be validated; register it "
                "with an input example"
            )
        model = self.signature.inputs.to_pydantic()
        rows: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            try:
                rows.append(model.model_validate(record).model_dump(by_alias=True))
            except ValidationError as exc:
                errors += record_errors(exc, index)
        if errors:
            problems = [f"record {e['record']}, {e['field']}: {e['reason']}" for e in errors]
            error = InvalidInputError.from_problems("the records", problems)
            error.details["errors"] = errors
            raise error
        return self.frame_from_records(rows)

    # -- checking ---------------------------------------------------------------------------

    def _model_input(self, frame: Any) -> Any:
        """The frame reduced to the signature's columns, in its order, as the model takes it
        (a pandas frame, or an array for a model fitted without column names)."""
        import pandas as pd
        import polars as pl

        columns = self.signature.columns if self.signature is not None else None
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        if isinstance(frame, pl.DataFrame):
            if columns is not None:
                self._check({n: frame[n] for n in columns if n in frame.columns})
                frame = frame.select(columns)
            selected = frame.to_pandas()
        elif isinstance(frame, pd.DataFrame):
            selected = frame
            if columns is not None:
                self._check({n: frame[n] for n in columns if n in frame.columns})
                selected = frame[columns]
        else:
            raise InvalidInputError(
                f"expected a pandas or polars DataFrame, got {type(frame).__name__}"
            )
        fitted = _model_columns(self.model)
        if fitted is None:
            return selected.to_numpy()
        if self.signature is not None and self.signature.ignored:
            # The model drops these columns, but scikit-learn wants every fitted column.
            selected = selected.assign(**dict.fromkeys(self.signature.ignored))[fitted]
        return selected

    def _check(self, present: Mapping[str, Any]) -> None:
        assert self.signature is not None
        missing = [n for n in self.signature.columns if n not in present]
        wrong: dict[str, dict[str, str]] = {}
        for name, column in present.items():
            expected = self.signature.inputs.columns[name].type
            dtype = _column_dtype(column)
            if dtype is None or not _accepts(expected, dtype, column):
                wrong[name] = {"dtype": str(column.dtype), "expected": expected}
        if not missing and not wrong:
            return
        parts = []
        if missing:
            parts.append("missing columns: " + ", ".join(missing))
        if wrong:
            parts.append(
                "wrong types: "
                + ", ".join(
                    f"{n} is {w['dtype']}, expected {w['expected']}" for n, w in wrong.items()
                )
            )
        raise InvalidInputError(
            f"input does not match the signature of {self.name}: " + "; ".join(parts),
            details={"missing": missing, "wrong_types": wrong},
        )

    def frame_from_records(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """A frame in signature column order from records already checked against the
        signature (as :meth:`validate_records` returns them)."""
        import pandas as pd

        assert self.signature is not None

        data: dict[str, Any] = {}
        for name, spec in self.signature.inputs.columns.items():
            values = [row[name] for row in rows]
            data[name] = _pandas_column(spec.type, values)
        return pd.DataFrame(data, columns=self.signature.columns)


# --------------------------------------------------------------------------- helpers


def record_errors(exc: ValidationError, index: int) -> list[dict[str, Any]]:
    """``{"record", "field", "reason", "check"}`` for each problem pydantic found in record
    ``index``. A check of shipyard's own (allowed values, ISO dates, NaN) is reported in its
    words, without pydantic's "Value error, " prefix. ``check`` names the rule that refused
    the value: missing, null, type, min, max, allowed, regex, extra, or invalid."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "(record)"
        reason = err["msg"]
        ctx = err.get("ctx") or {}
        if err["type"] == "value_error" and "error" in ctx:
            reason = str(ctx["error"])
        out.append({"record": index, "field": field, "reason": reason, "check": _check(err)})
    return out


# pydantic's error types for the rules of a contract or signature
_CHECKS = {
    "missing": "missing",
    "greater_than_equal": "min",
    "greater_than": "min",
    "less_than_equal": "max",
    "less_than": "max",
    "string_pattern_mismatch": "regex",
    "extra_forbidden": "extra",
}


def _check(err: Any) -> str:
    kind = str(err["type"])
    if kind in _CHECKS:
        return _CHECKS[kind]
    if kind == "value_error":  # shipyard's own rules say which they are
        return str(getattr((err.get("ctx") or {}).get("error"), "check", "invalid"))
    if err.get("input", ...) is None:
        return "null"
    if kind.endswith(("_type", "_parsing")):
        return "type"
    return "invalid"


def plain_value(value: Any) -> Any:
    """A NumPy scalar as the Python value (JSON can hold it)."""
    return value.item() if hasattr(value, "item") else value


def _to_polars(frame: Any) -> Any:
    import pandas as pd
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pd.DataFrame):
        try:
            return pl.from_pandas(frame)
        except Exception as exc:  # pyarrow and polars raise several types for odd columns
            raise InvalidInputError(f"cannot read the input example: {exc}") from exc
    raise InvalidInputError(
        f"the input example must be a pandas or polars DataFrame, got {type(frame).__name__}"
    )


def _model_columns(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _unread_columns(model: Any, names: list[str]) -> list[str]:
    """The fitted columns that a pipeline's first step, a ColumnTransformer, drops (sent to
    ``"drop"`` or left to a ``remainder="drop"``); empty when that cannot be told."""
    try:
        from shipyard.registry.codegen import Unsupported, selected_columns
    except ImportError:  # without scikit-learn, no ColumnTransformer either
        return []

    steps = getattr(model, "steps", None)
    first = steps[0][1] if isinstance(steps, list) and steps else model
    try:
        parts = selected_columns(first)
    except (Unsupported, AttributeError, TypeError, IndexError):
        return []
    read: set[str] = set()
    for _, transformer, selected in parts:
        if not (isinstance(transformer, str) and transformer == "drop"):
            read.update(selected)
    return [n for n in names if n not in read]


def _outputs(model: Any) -> dict[str, Any]:
    import numpy as np

    classes = getattr(model, "classes_", None)
    if classes is None:
        return {"kind": "regression", "dtype": "float"}
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind in "iu":
        dtype = "int"
    elif kind == "f":
        dtype = "float"
    elif kind == "b":
        dtype = "bool"
    elif kind in "USO" and all(isinstance(c, str) for c in classes.tolist()):
        dtype = "string"
    else:
        raise InvalidInputError(
            f"the classes of the model have dtype {classes.dtype}; a signature describes "
            "classes that are numbers, booleans or text"
        )
    return {"kind": "classification", "classes": classes.tolist(), "dtype": dtype}


def _column_dtype(column: Any) -> Any:
    """The polars dtype of a polars or pandas column; None when polars cannot read it."""
    import polars as pl

    if isinstance(column, pl.Series):
        return column.dtype
    try:
        return _series(column).dtype
    except Exception:  # an object column with mixed values has no polars type
        return None


def _series(column: Any) -> pl.Series:
    import polars as pl

    return cast("pl.Series", pl.from_pandas(column))


def _accepts(expected: str, dtype: Any, column: Any) -> bool:
    import polars as pl

    if type_matches(expected, dtype):
        return True
    if expected == "string":
        return isinstance(dtype, pl.Categorical | pl.Enum)
    if expected == "int" and dtype.is_float():
        # pandas keeps an int column with missing values as float64
        series = column if isinstance(column, pl.Series) else _series(column)
        values = series.drop_nulls().drop_nans()
        return bool(values.is_finite().all() and (values == values.floor()).all())
    return False


def _pandas_column(type_: str, values: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    has_missing = any(v is None for v in values)
    if type_ in ("string", "category"):
        return pd.Series(values, dtype="str")
    if type_ == "float" or (type_ == "int" and has_missing):
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    if type_ == "int":
        return pd.Series(values, dtype="int64")
    if type_ == "bool":
        return pd.Series(values, dtype="boolean" if has_missing else "bool")
    return pd.to_datetime(pd.Series(values, dtype="object"))
