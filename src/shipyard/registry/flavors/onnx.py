"""The ONNX flavor: any ONNX model (exported from PyTorch or TensorFlow, converted by
skl2onnx or onnxmltools…) answered by onnxruntime (the ``onnx`` extra).

An ONNX file is a graph of operators and weights, with no Python in it: loading it runs no
code of its own. A graph whose weights live in external files is refused (loading them would
read files next to wherever the model is), and so is one that onnxruntime cannot load.

The model takes either one input per column (as skl2onnx writes a pipeline converted with one
initial type per column: ``[None, 1]`` tensors of floats, integers, booleans or strings), or
one matrix of numbers ``[None, k]`` (as a network exported from PyTorch takes), whose columns
are those of the input example. It is a classifier when the graph has a label output
(integers or strings), with its probabilities (a ``[None, n_classes]`` tensor, or skl2onnx's
ZipMap sequence of maps) beside it, or when ``classes`` are given for a graph whose only
output is one probability per class; otherwise a regressor, whose first output is the value.
The classes come from the graph (the ``classlabels_*`` attribute of its ZipMap or classifier
node) unless ``classes`` are given.

>>> model = OnnxModel.from_onnx("model.onnx")                 # doctest: +SKIP
>>> run.log_model(model, "churn")                             # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.boosters import require
from shipyard.registry.flavors.bundle import Bundle, write_bundle
from shipyard.registry.flavors.sklearn import ModelFile, running_versions

if TYPE_CHECKING:
    from shipyard.registry.signatures import Signature

__all__ = ["OnnxModel", "is_onnx", "load", "save"]

FLAVOR = "onnx"
#: ONNX element types a column input may have, and the signature type each takes.
COLUMN_TYPES = {
    "tensor(float)": "float",
    "tensor(double)": "float",
    "tensor(int64)": "int",
    "tensor(int32)": "int",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}
_NUMPY = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}
_LABELS = ("tensor(int64)", "tensor(int32)", "tensor(string)")
_FLOATS = ("tensor(float)", "tensor(double)")


class OnnxModel:
    """An ONNX model behind the interface shipyard scores models through: ``predict``,
    ``predict_proba`` and ``classes_`` for a classifier, ``feature_names_in_`` when it takes
    one input per column (else ``n_features_in_`` numbers in one matrix).

    Build one with :meth:`from_onnx`.
    """

    def __init__(self, data: bytes, classes: list[Any] | None = None, *, where: str = "") -> None:
        require("onnxruntime", "onnx")
        import numpy as np
        import onnxruntime

        where = where or "the ONNX model"
        _refuse_external_data(data, where)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # single rows and small batches: no thread hand-offs
        try:
            self._session = onnxruntime.InferenceSession(
                data, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InvalidInputError(f"{where}: onnxruntime cannot load it: {exc}") from exc
        self.data = data
        inputs = self._session.get_inputs()
        if all(_is_column(i) for i in inputs) and (len(inputs) > 1 or _width(inputs[0]) == 1):
            for i in inputs:
                if i.type not in COLUMN_TYPES:
                    raise InvalidInputError(
                        f"{where}: input {i.name} is a {i.type}; a column input holds one of "
                        f"{', '.join(COLUMN_TYPES)}"
                    )
            self.feature_names_in_: Any = np.asarray([i.name for i in inputs], dtype=object)
            self.n_features_in_ = len(inputs)
            self._matrix: Any = None
        elif len(inputs) == 1 and len(inputs[0].shape) == 2 and isinstance(_width(inputs[0]), int):
            if inputs[0].type not in _FLOATS:
                raise InvalidInputError(f"{where}: its matrix input is a {inputs[0].type}")
            self._matrix = inputs[0]
            self.n_features_in_ = int(_width(inputs[0]))
        else:
            raise InvalidInputError(
                f"{where}: its inputs are neither one column each ([None, 1] tensors) nor one "
                "matrix of numbers with a fixed number of columns"
            )
        self._inputs = inputs
        outputs = self._session.get_outputs()
        self._label = next((o.name for o in outputs if o.type in _LABELS), None)
        self._proba = next(
            (
                o.name
                for o in outputs
                if o.name != self._label
                and (o.type.startswith("seq(map(") or (o.type in _FLOATS and len(o.shape) == 2))
            ),
            None,
        )
        self._value = next((o.name for o in outputs if o.type in _FLOATS), None)
        if classes is None and self._label is not None:
            classes = _graph_classes(data)
            if classes is None:
                raise InvalidInputError(
                    f"{where}: the graph has a label output but names no classes; give them "
                    "with OnnxModel.from_onnx(..., classes=[...])"
                )
        if classes is not None:
            if len(classes) < 2 or (self._label is None and self._proba is None):
                raise InvalidInputError(
                    f"{where}: a classifier needs two classes or more and a label or "
                    "probability output"
                )
            self.classes_: Any = np.asarray(classes)
        elif self._value is None:
            raise InvalidInputError(f"{where}: it has no output of floats to read a value from")
        else:
            self.classes_ = None

    @classmethod
    def from_onnx(cls, source: Any, *, classes: list[Any] | None = None) -> OnnxModel:
        """An ONNX model from a file path, its bytes or an ``onnx.ModelProto``; ``classes``
        for a classifier whose graph does not name them.

        Raises:
            MissingDependencyError: onnxruntime is not installed.
            InvalidInputError: onnxruntime cannot load it, or its inputs and outputs are
                not of a form shipyard scores (see the module documentation).
        """
        if isinstance(source, OnnxModel):
            return cls(source.data, classes if classes is not None else _list(source.classes_))
        where = "the ONNX model"
        if isinstance(source, str | Path):
            where = str(source)
            try:
                data = Path(source).read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"{source}: cannot read it: {exc.strerror}") from None
        elif isinstance(source, bytes | bytearray):
            data = bytes(source)
        elif hasattr(source, "SerializeToString"):
            data = source.SerializeToString()
        else:
            raise InvalidInputError(f"cannot read an ONNX model from a {type(source).__name__}")
        return cls(data, classes, where=where)

    # -- scoring ------------------------------------------------------------------------------

    def predict(self, X: Any) -> Any:
        """A label per row for a classifier, a value per row for a regressor."""
        import numpy as np

        if self.classes_ is None:
            [out] = self._run(X, [self._value])  # type: ignore[list-item]
            return np.asarray(out, dtype=float).reshape(len(out), -1)[:, 0]
        if self._label is None:
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        [out] = self._run(X, [self._label])
        return np.asarray(out).ravel()

    def predict_proba(self, X: Any) -> Any:
        """One probability per class (in the order of ``classes_``) per row."""
        import numpy as np

        if self.classes_ is None or self._proba is None:
            raise InvalidInputError("the ONNX model gives no class probabilities")
        [out] = self._run(X, [self._proba])
        if isinstance(out, list):  # skl2onnx's ZipMap: one {class: probability} per row
            keys = self.classes_.tolist()
            return np.asarray([[row[k] for k in keys] for row in out], dtype=float)
        return np.asarray(out, dtype=float)

    def signature(self) -> Signature | None:
        """The signature the graph describes: its column inputs and its outputs (None for a
        matrix input, whose columns only an input example names)."""
        from shipyard.data.contracts import ColumnSpec, Contract
        from shipyard.registry.signatures import Signature, _outputs

        if self._matrix is not None:
            return None
        columns = {
            i.name: ColumnSpec(type=COLUMN_TYPES[i.type], nullable=i.type in _FLOATS)  # type: ignore[arg-type]
            for i in self._inputs
        }
        return Signature(inputs=Contract(columns=columns), outputs=_outputs(self))

    def _run(self, X: Any, outputs: list[str]) -> list[Any]:
        import numpy as np
        import pandas as pd

        n = len(X)
        feeds: dict[str, Any] = {}
        if self._matrix is not None:
            dtype = _NUMPY[self._matrix.type]
            feeds[self._matrix.name] = np.asarray(X, dtype=dtype).reshape(n, -1)
        else:
            frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=self._names())
            for i in self._inputs:
                feeds[i.name] = _column(frame[i.name], i, n)
        try:
            return list(self._session.run(outputs, feeds))
        except Exception as exc:  # onnxruntime's own error types
            raise InvalidInputError(f"the ONNX model refused the input: {exc}") from exc

    def _names(self) -> list[str]:
        return [str(n) for n in self.feature_names_in_]


def _column(series: Any, spec: Any, n: int) -> Any:
    import numpy as np
    import pandas as pd

    dtype = _NUMPY[spec.type]
    shape = (n, 1) if len(spec.shape) == 2 else (n,)
    if dtype == "object":
        values = [
            "" if v is None or (isinstance(v, float) and v != v) else str(v)
            for v in series.tolist()
        ]
        return np.asarray(values, dtype=object).reshape(shape)
    if dtype.startswith("int") and series.isna().any():
        raise InvalidInputError(f"column {spec.name} has missing values; the model takes none")
    return pd.to_numeric(series).to_numpy(dtype=dtype).reshape(shape)


def _is_column(spec: Any) -> bool:
    return len(spec.shape) == 1 or (len(spec.shape) == 2 and spec.shape[1] == 1)


def _width(spec: Any) -> Any:
    return 1 if len(spec.shape) == 1 else spec.shape[-1]


def _list(classes: Any) -> list[Any] | None:
    return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]


def _graph_classes(data: bytes) -> list[Any] | None:
    """The class labels the graph names: on its ZipMap node, else on a classifier node."""
    import onnx

    model = onnx.load_from_string(data)
    found: list[Any] | None = None
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                labels: list[Any] = list(attr.ints)
            elif attr.name == "classlabels_strings" and attr.strings:
                labels = [s.decode() for s in attr.strings]
            else:
                continue
            if node.op_type == "ZipMap":
                return labels
            found = found or labels
    return found


def _refuse_external_data(data: bytes, where: str) -> None:
    """Refuse a graph whose weights are read from files outside it."""
    require("onnx", "onnx")
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # DecodeError for bytes that are not an ONNX model
        raise InvalidInputError(f"{where}: not an ONNX model: {exc}") from exc
    if any(uses_external_data(t) for t in _get_all_tensors(model)):
        raise InvalidInputError(
            f"{where}: its weights are stored in external files; save the model with its "
            "weights inside (onnx.save_model(model, path, save_as_external_data=False))"
        )


def is_onnx(model: Any) -> bool:
    """Whether ``model`` is an :class:`OnnxModel`, an ``onnx.ModelProto`` or a path to an
    ``.onnx`` file."""
    if isinstance(model, OnnxModel):
        return True
    if isinstance(model, str | Path):
        return str(model).endswith(".onnx")
    return type(model).__module__.split(".")[0] == "onnx" and hasattr(model, "SerializeToString")


def save(model: Any, path: Path) -> ModelFile:
    """Write an ONNX model to the archive ``path``.

    Raises:
        MissingDependencyError: onnx or onnxruntime is not installed.
        InvalidInputError: see :meth:`OnnxModel.from_onnx`.
    """
    loaded = OnnxModel.from_onnx(model)
    import onnxruntime

    write_bundle(
        path, FLAVOR, {"model": ("model.onnx", loaded.data)}, classes=_list(loaded.classes_)
    )
    return ModelFile(
        path=Path(path),
        model_type="onnx",
        flavor=FLAVOR,
        format="onnx",
        versions={**running_versions(), "onnxruntime": onnxruntime.__version__},
    )


def load(bundle: Bundle, path: Path, trusted: tuple[str, ...] | list[str]) -> OnnxModel:
    """The model of an ONNX archive (``trusted`` has no use here: no types are built)."""
    classes = bundle.manifest.get("classes")
    if classes is not None and not isinstance(classes, list):
        raise InvalidInputError(f"{path}: the manifest's classes are not a list")
    return OnnxModel(bundle.parts["model"], classes, where=str(path))
