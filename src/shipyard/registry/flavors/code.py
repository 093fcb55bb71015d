"""The code flavor: a model class of your own, stored as its source code with its weights in
safe formats — NumPy's ``.npz`` (default) or safetensors for arrays, and models of the other
flavors in their own formats — never pickled; loaded only once an approver has approved that
exact code.

>>> class Threshold:
...     def __init__(self, weights):
...         self.cut = float(weights["cut"][0])
...         self.classes_ = weights["classes"]
...     def predict(self, X):
...         return self.classes_[(X[:, 0] > self.cut).astype(int)]
>>> model = CodeModel(Threshold, {"cut": np.array([0.5]), "classes": np.array([0, 1])})
>>> run.log_model(model, "threshold", input_example=x.head())          # doctest: +SKIP

The class must be defined in a module file (its whole source is stored, so it may import and
define what it needs), be built as ``cls(weights)`` from a mapping of names to weights, and
have ``predict`` (and ``predict_proba`` with ``classes_`` for a classifier). It receives a
NumPy array of the signature's columns, in order, unless it sets ``feature_names_in_``; then
a pandas frame.

A weight is either

- a NumPy array (of numbers, booleans or text), stored in one ``.npz`` file read with
  ``allow_pickle=False``, or, with ``weights_format="safetensors"`` (the ``safetensors``
  extra), in one safetensors file (numbers and booleans only); or
- a fitted model of another flavor (a scikit-learn estimator or pipeline, an XGBoost or
  LightGBM model, an ONNX model): stored as that flavor stores it (skops with its
  trusted-type check, the booster's native file, the ONNX graph), its digest recorded in the
  manifest and checked when it is read, and handed back to ``cls`` loaded.

Loading runs that source, so it is refused (:class:`CodeNotApprovedError`) until an approver
who is not its author has approved the code's digest (``shipyard models approve-code
NAME@V``, after reading it with ``shipyard models code NAME@V``); the same code under another
model or version needs no second approval, and any change to it needs a new one. The
weights are read (by their libraries' parsers of data, never running code) before the
approval is checked, so a damaged or untrusted part is refused whether or not the code is
approved.
"""

from __future__ import annotations

import inspect
import io
import sys
import tempfile
import types
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from shipyard._internal.hashing import digest_bytes
from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.bundle import Bundle, is_bundle, read_bundle, write_bundle
from shipyard.registry.flavors.sklearn import ModelFile, UntrustedModelError, running_versions

__all__ = [
    "WEIGHTS_FORMATS",
    "CodeModel",
    "CodeNotApprovedError",
    "code_digest",
    "code_format",
    "load",
    "save",
]

FLAVOR = "code"
#: How the arrays among the weights are stored: NumPy's ``.npz`` or safetensors.
WEIGHTS_FORMATS = ("npz", "safetensors")
#: The prefix of the archive parts that hold a weight that is a model of another flavor.
MODEL_PART = "model:"
#: The array kinds each weights format stores.
_KINDS = {"npz": "biufcUS", "safetensors": "biuf"}


class CodeNotApprovedError(UntrustedModelError):
    """The model's code has not been approved by an approver; it was not run.

    ``details["code_digest"]`` is the digest an approver approves.
    """

    code = "code_not_approved"


class CodeModel:
    """A model class of your own with its weights: built as ``cls(weights)``, and answering
    through that instance (``predict``, ``predict_proba``, ``classes_`` and any other
    attribute).

    ``weights`` maps names to NumPy arrays or to fitted models of another flavor (see the
    module's documentation); ``weights_format`` says how the arrays are stored (``npz`` or
    ``safetensors``)."""

    def __init__(
        self,
        cls: type,
        weights: Mapping[str, Any],
        *,
        source: str | None = None,
        weights_format: str = "npz",
    ) -> None:
        import numpy as np

        if not isinstance(cls, type) or not callable(getattr(cls, "predict", None)):
            raise InvalidInputError("a custom model is a class with a predict method")
        if weights_format not in WEIGHTS_FORMATS:
            raise InvalidInputError(
                f"weights_format must be one of {', '.join(WEIGHTS_FORMATS)}, "
                f"not {weights_format!r}"
            )
        arrays: dict[str, Any] = {}
        models: dict[str, Any] = {}
        for name, value in weights.items():
            if isinstance(value, CodeModel):
                raise InvalidInputError(
                    f"weight {name!r} is a custom code model: a custom model's weights are "
                    "arrays or models of the other flavors, not custom code"
                )
            if _is_model(value):
                models[str(name)] = value
                continue
            array = np.asarray(value)
            if array.dtype.kind not in _KINDS[weights_format]:
                what = (
                    "arrays of numbers, booleans or text (stored without pickle), or fitted "
                    "models of another flavor"
                    if weights_format == "npz"
                    else "arrays of numbers or booleans with safetensors (store text with "
                    "weights_format='npz')"
                )
                raise InvalidInputError(
                    f"weight {name!r} is an array of {array.dtype}: weights are {what}"
                )
            arrays[str(name)] = array
        if source is None:
            try:
                source = inspect.getsource(sys.modules[cls.__module__])
            except (KeyError, OSError, TypeError) as exc:
                raise InvalidInputError(
                    f"cannot read the source of {cls.__qualname__}: define it in a module "
                    f"file ({exc})"
                ) from exc
        self.class_name = cls.__qualname__
        self.source = source
        self.weights = arrays
        self.models = models
        self.weights_format = weights_format
        self.instance = cls({**arrays, **models})

    @property
    def code_digest(self) -> str:
        return code_digest(self.source.encode())

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes CodeModel lacks: the instance answers them.
        if name in ("instance", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.instance, name)


def _is_model(value: Any) -> bool:
    """Whether a weight is a model of another flavor (not an array or a value)."""
    import numpy as np

    if isinstance(value, np.ndarray | np.generic | list | tuple | str | bytes | int | float | Path):
        return False
    from sklearn.base import BaseEstimator

    from shipyard.registry.flavors.onnx import is_onnx

    return isinstance(value, BaseEstimator) or is_onnx(value)


def code_digest(source: bytes) -> str:
    """The digest an approver approves: of the code's bytes alone."""
    return digest_bytes(source)


def save(model: CodeModel, path: Path) -> ModelFile:
    """Write a :class:`CodeModel` to the archive ``path``: its source, its arrays and each
    model among its weights in that model's flavor.

    Raises:
        MissingDependencyError: the safetensors extra (or a weight's flavor's) is missing.
        InvalidInputError: a weight its flavor cannot write.
    """
    from shipyard.registry.flavors import save_model

    versions = running_versions()
    if model.weights_format == "safetensors":
        data, versions["safetensors"] = _safetensors_bytes(model.weights)
    else:
        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **model.weights)
        data = buffer.getvalue()
    source = model.source.encode()
    parts = {
        "code": ("model.py", source),
        "weights": (f"weights.{model.weights_format}", data),
    }
    nested: dict[str, dict[str, str]] = {}
    found: list[str] = []
    untrusted: list[str] = []
    with tempfile.TemporaryDirectory(prefix="shipyard-code-") as tmp:
        for i, (name, weight) in enumerate(model.models.items()):
            try:
                saved = save_model(weight, Path(tmp) / f"{i}.model")
            except InvalidInputError as exc:
                raise InvalidInputError(f"weight {name!r}: {exc.message}") from None
            blob = saved.path.read_bytes()
            parts[MODEL_PART + name] = (f"models/{i}.{saved.flavor}", blob)
            nested[name] = {"flavor": saved.flavor, "digest": digest_bytes(blob)}
            versions.update(saved.versions)
            found += [f"{name}: {t}" for t in saved.types]
            untrusted += [t for t in saved.untrusted_types if t not in untrusted]
    write_bundle(
        path,
        FLAVOR,
        parts,
        class_name=model.class_name,
        code_digest=code_digest(source),
        weights_format=model.weights_format,
        models=nested,
    )
    return ModelFile(
        path=Path(path),
        model_type=f"code:{model.class_name}",
        flavor=FLAVOR,
        format=f"python+{model.weights_format}",
        versions=versions,
        types=tuple(found),
        untrusted_types=tuple(untrusted),
    )


def _safetensors_bytes(arrays: Mapping[str, Any]) -> tuple[bytes, str]:
    """The arrays as one safetensors file, and the library's version."""
    from shipyard.registry.flavors.boosters import require

    require("safetensors", "safetensors")
    import numpy as np
    import safetensors
    from safetensors.numpy import save as save_arrays

    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    return save_arrays(contiguous), str(safetensors.__version__)


def code_format(bundle: Bundle) -> str:
    """The format a code archive's version records: ``python+npz`` or
    ``python+safetensors``."""
    return f"python+{bundle.manifest.get('weights_format', 'npz')}"


def bundle_digest(bundle: Bundle, path: Path) -> str:
    """The code digest of an archive, checked against its manifest (nothing is run)."""
    found = code_digest(bundle.parts["code"])
    if bundle.manifest.get("code_digest") != found:
        raise InvalidInputError(f"{path}: the manifest's code digest is not that of its code")
    return found


def check_parts(bundle: Bundle, path: Path) -> dict[str, dict[str, str]]:
    """The manifest's models among the weights, checked to be exactly the archive's model
    parts, each of a flavor that is not code (nothing is loaded)."""
    models = bundle.manifest.get("models", {})
    if not isinstance(models, dict) or not all(
        isinstance(v, dict)
        and isinstance(v.get("flavor"), str)
        and isinstance(v.get("digest"), str)
        for v in models.values()
    ):
        raise InvalidInputError(f"{path}: the manifest's models are not a mapping of weights")
    named = {MODEL_PART + str(k) for k in models}
    held = {p for p in bundle.parts if p.startswith(MODEL_PART)}
    if named != held or set(bundle.parts) - held != {"code", "weights"}:
        raise InvalidInputError(
            f"{path}: a code model archive with the parts {sorted(bundle.parts)}; it holds "
            "code, weights and the models its manifest names"
        )
    for name, entry in models.items():
        if entry["flavor"] == FLAVOR:
            raise InvalidInputError(f"{path}: weight {name!r} is custom code, which is refused")
    return models


def _read_weights(
    bundle: Bundle, path: Path, models: Mapping[str, Mapping[str, str]], trusted: list[str]
) -> dict[str, Any]:
    """The weights of a code archive: its arrays and its models, each model part checked
    against its digest and read by its flavor (never running code)."""
    import numpy as np

    from shipyard.registry.flavors import load_model_bytes

    fmt = bundle.manifest.get("weights_format", "npz")
    if fmt not in WEIGHTS_FORMATS:
        raise InvalidInputError(
            f"{path}: the manifest's weights_format {fmt!r} is not one of "
            f"{', '.join(WEIGHTS_FORMATS)}"
        )
    data = bundle.parts["weights"]
    weights: dict[str, Any]
    if fmt == "safetensors":
        from shipyard.registry.flavors.boosters import require

        require("safetensors", "safetensors")
        from safetensors.numpy import load as load_arrays

        try:
            weights = dict(load_arrays(data))
        except Exception as exc:  # SafetensorError for a damaged file
            raise InvalidInputError(f"{path}: cannot read its safetensors weights: {exc}") from exc
    else:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                weights = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidInputError(f"{path}: cannot read its .npz weights: {exc}") from exc
    for name, entry in models.items():
        blob = bundle.parts[MODEL_PART + name]
        if digest_bytes(blob) != entry["digest"]:
            raise InvalidInputError(
                f"{path}: weight {name!r} does not match the digest its manifest records"
            )
        where = Path(f"{path}[{name}]")
        if is_bundle(blob) and read_bundle(blob, str(where)).flavor == FLAVOR:
            raise InvalidInputError(f"{where}: a weight that is custom code is refused")
        model = load_model_bytes(blob, where, trusted=trusted, approved_code=())
        if _flavor_name(model) != entry["flavor"]:
            raise InvalidInputError(
                f"{path}: weight {name!r} is not of the flavor {entry['flavor']!r} its "
                "manifest records"
            )
        weights[name] = model
    return weights


def _flavor_name(model: Any) -> str:
    from shipyard.registry.flavors import flavor_of

    return flavor_of(model)


def load(
    bundle: Bundle, path: Path, approved: Collection[str], trusted: Collection[str] = ()
) -> CodeModel:
    """The model of a code archive: its weights read, then its source run only if its digest
    is in ``approved``.

    Raises:
        CodeNotApprovedError: the code is not approved (nothing was run).
        UntrustedModelError: a model among the weights names types that are not trusted.
        InvalidInputError: a damaged archive, or code that does not build the model.
        MissingDependencyError: the extra of the weights' format or of a model's flavor.
    """
    models = check_parts(bundle, path)
    digest = bundle_digest(bundle, path)
    weights = _read_weights(bundle, path, models, list(trusted))
    if digest not in approved:
        raise CodeNotApprovedError(
            f"{path}: the model is custom Python code ({digest}), which runs when it is "
            "loaded, and no approver has approved that code; an approver reads it with "
            "`shipyard models code NAME@V` and approves it with `shipyard models approve-code "
            "NAME@V`",
            details={"code_digest": digest, "untrusted_types": []},
        )
    name = bundle.manifest.get("class_name")
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidInputError(f"{path}: the manifest names no class")
    module = types.ModuleType(f"shipyard_model_code_{digest.split(':')[-1][:16]}")
    module.__file__ = f"<model code {digest}>"
    fmt = str(bundle.manifest.get("weights_format", "npz"))
    try:
        source = bundle.parts["code"].decode()
        sys.modules[module.__name__] = module  # dataclasses and typing look the module up
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # approved code
        cls = module.__dict__[name]
        return CodeModel(cls, weights, source=source, weights_format=fmt)
    except InvalidInputError:
        raise
    except Exception as exc:  # the approved code failed: say so, in its words
        raise InvalidInputError(
            f"{path}: the approved code does not build the model: {type(exc).__name__}: {exc}"
        ) from exc
