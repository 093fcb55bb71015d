"""The code flavor: a model class of your own, stored as its source code with its weights in
NumPy's ``.npz`` format, never pickled; loaded only once an approver has approved that exact
code.

>>> class Threshold:
...     def __init__(self, weights):
...         self.cut = float(weights["cut"][0])
...         self.classes_ = weights["classes"]
...     def predict(self, X):
...         return self.classes_[(X[:, 0] > self.cut).astype(int)]
>>> model = CodeModel(Threshold, {"cut": np.array([0.5]), "classes": np.array([0, 1])})
>>> run.log_model(model, "threshold", input_example=x.head())          # doctest: +SKIP

The class must be defined in a module file (its whole source is stored, so it may import and
define what it needs), be built as ``cls(weights)`` from a mapping of names to NumPy arrays,
and have ``predict`` (and ``predict_proba`` with ``classes_`` for a classifier). It receives
a NumPy array of the signature's columns, in order, unless it sets ``feature_names_in_``;
then a pandas frame.

Loading runs that source, so it is refused (:class:`CodeNotApprovedError`) until an approver
who is not its author has approved the code's digest (``shipyard models approve-code
NAME@V``, after reading it with ``shipyard models code NAME@V``); the same code under another
model or version needs no second approval, and any change to it needs a new one.
"""

from __future__ import annotations

import inspect
import io
import sys
import types
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from shipyard._internal.hashing import digest_bytes
from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.bundle import Bundle, write_bundle
from shipyard.registry.flavors.sklearn import ModelFile, UntrustedModelError, running_versions

__all__ = ["CodeModel", "CodeNotApprovedError", "code_digest", "load", "save"]

FLAVOR = "code"


class CodeNotApprovedError(UntrustedModelError):
    """The model's code has not been approved by an approver; it was not run.

    ``details["code_digest"]`` is the digest an approver approves.
    """

    code = "code_not_approved"


class CodeModel:
    """A model class of your own with its weights: built as ``cls(weights)``, and answering
    through that instance (``predict``, ``predict_proba``, ``classes_`` and any other
    attribute)."""

    def __init__(self, cls: type, weights: Mapping[str, Any], *, source: str | None = None) -> None:
        import numpy as np

        if not isinstance(cls, type) or not callable(getattr(cls, "predict", None)):
            raise InvalidInputError("a custom model is a class with a predict method")
        arrays: dict[str, Any] = {}
        for name, value in weights.items():
            array = np.asarray(value)
            if array.dtype.kind not in "biufcUS":
                raise InvalidInputError(
                    f"weight {name!r} is an array of {array.dtype}: weights are arrays of "
                    "numbers, booleans or text (stored without pickle)"
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
        self.instance = cls(dict(arrays))

    @property
    def code_digest(self) -> str:
        return code_digest(self.source.encode())

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes CodeModel lacks: the instance answers them.
        if name in ("instance", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.instance, name)


def code_digest(source: bytes) -> str:
    """The digest an approver approves: of the code's bytes alone."""
    return digest_bytes(source)


def save(model: CodeModel, path: Path) -> ModelFile:
    """Write a :class:`CodeModel` to the archive ``path``: its source and its weights."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **model.weights)
    source = model.source.encode()
    write_bundle(
        path,
        FLAVOR,
        {"code": ("model.py", source), "weights": ("weights.npz", buffer.getvalue())},
        class_name=model.class_name,
        code_digest=code_digest(source),
    )
    return ModelFile(
        path=Path(path),
        model_type=f"code:{model.class_name}",
        flavor=FLAVOR,
        format="python+npz",
        versions=running_versions(),
    )


def bundle_digest(bundle: Bundle, path: Path) -> str:
    """The code digest of an archive, checked against its manifest (nothing is run)."""
    found = code_digest(bundle.parts["code"])
    if bundle.manifest.get("code_digest") != found:
        raise InvalidInputError(f"{path}: the manifest's code digest is not that of its code")
    return found


def load(bundle: Bundle, path: Path, approved: Collection[str]) -> CodeModel:
    """The model of a code archive, its source run only if its digest is in ``approved``.

    Raises:
        CodeNotApprovedError: the code is not approved (nothing was run).
        InvalidInputError: a damaged archive, or code that does not build the model.
    """
    import numpy as np

    digest = bundle_digest(bundle, path)
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
    try:
        source = bundle.parts["code"].decode()
        sys.modules[module.__name__] = module  # dataclasses and typing look the module up
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # approved code
        cls = module.__dict__[name]
        with np.load(io.BytesIO(bundle.parts["weights"]), allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
        return CodeModel(cls, weights, source=source)
    except InvalidInputError:
        raise
    except Exception as exc:  # the approved code failed: say so, in its words
        raise InvalidInputError(
            f"{path}: the approved code does not build the model: {type(exc).__name__}: {exc}"
        ) from exc
