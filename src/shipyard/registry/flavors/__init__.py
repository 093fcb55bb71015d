"""Saving and loading models without pickle, one flavor per kind of model.

==========  ======================================================  ==========================
flavor      models                                                  stored as
==========  ======================================================  ==========================
sklearn     scikit-learn estimators and pipelines                   a skops file
xgboost     ``XGBClassifier``/``XGBRegressor``, alone or ending a   XGBoost's UBJSON (+ skops
            scikit-learn Pipeline                                   for the pipeline)
lightgbm    ``LGBMClassifier``/``LGBMRegressor``, alone or ending   LightGBM's text format
            a scikit-learn Pipeline                                 (+ skops for the pipeline)
onnx        any ONNX model (:class:`~shipyard.registry.flavors.     the ONNX file, run by
            onnx.OnnxModel`)                                        onnxruntime
code        a class of your own (:class:`~shipyard.registry.        its source code, its arrays
            flavors.code.CodeModel`), loaded once its code is       in ``.npz`` or safetensors,
            approved                                                models among its weights in
                                                                    their own flavors
==========  ======================================================  ==========================

:func:`save_model` picks the flavor from the model; :func:`load_model` from the file. A
scikit-learn model is a bare skops file (:mod:`shipyard.registry.flavors.sklearn`, which
describes the trusted-type check); the other flavors write one archive of a manifest and
their parts (:mod:`shipyard.registry.flavors.bundle`), so a version is still one file with
one digest. None of them ever unpickles: each part is read by its library's own parser of
data. The xgboost, lightgbm and onnx flavors need the extra of that name; without it, saving
or loading such a model raises :class:`~shipyard.errors.MissingDependencyError` naming it.

>>> save_model(xgb_pipeline, tmp / "model.bin").flavor      # doctest: +SKIP
'xgboost'
>>> load_model(tmp / "model.bin").predict_proba(X)           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.bundle import is_bundle, read_bundle
from shipyard.registry.flavors.sklearn import (
    SHIPYARD_TRUSTED_TYPES,
    SKLEARN_SUPPORTED,
    ModelFile,
    UntrustedModelError,
    load_sklearn,
    running_versions,
    version_problem,
)
from shipyard.registry.flavors.sklearn import save_model as _save_sklearn

__all__ = [
    "FLAVORS",
    "SHIPYARD_TRUSTED_TYPES",
    "SKLEARN_SUPPORTED",
    "ModelFile",
    "UntrustedModelError",
    "file_code_digest",
    "file_flavor",
    "flavor_of",
    "load_model",
    "load_model_bytes",
    "running_versions",
    "save_model",
    "version_problem",
]

FLAVORS = ("sklearn", "xgboost", "lightgbm", "onnx", "code")
#: The parts an archive of each flavor holds (a code archive's: see ``code.check_parts``).
_PARTS: dict[str, list[set[str]]] = {
    "xgboost": [{"model"}, {"model", "pipeline"}],
    "lightgbm": [{"model"}, {"model", "pipeline"}],
    "onnx": [{"model"}],
}


def flavor_of(model: Any) -> str:
    """The flavor :func:`save_model` writes ``model`` with (see the table above)."""
    from shipyard.registry.flavors.boosters import library_of
    from shipyard.registry.flavors.code import CodeModel
    from shipyard.registry.flavors.onnx import is_onnx

    if isinstance(model, CodeModel):
        return "code"
    if is_onnx(model):
        return "onnx"
    return library_of(model) or "sklearn"


def save_model(model: Any, path: Path) -> ModelFile:
    """Write ``model`` to ``path`` in its flavor's format, atomically.

    Raises:
        InvalidInputError: a model of no flavor, or one its flavor cannot write (the message
            says why).
        MissingDependencyError: the flavor's extra is not installed.
    """
    flavor = flavor_of(model)
    if flavor == "sklearn":
        return _save_sklearn(model, path)
    return _module(flavor).save(model, Path(path))  # type: ignore[no-any-return]


def load_model(
    path: Path, *, trusted: Sequence[str] = (), approved_code: Collection[str] = ()
) -> Any:
    """Load a model written by :func:`save_model`, whatever its flavor; the scikit-learn
    parts with skops' trusted-type check (``trusted`` names further types to trust, as
    listed by :class:`UntrustedModelError`; pass only types whose code you have reviewed).
    A custom code model loads only when its code digest is in ``approved_code`` (the
    registry passes the digests approvers approved).

    Raises:
        UntrustedModelError: a skops file or part names types that are not trusted.
        CodeNotApprovedError: custom code whose digest is not approved (it was not run).
        InvalidInputError: the file is missing or is not a model file shipyard reads.
        MissingDependencyError: the flavor's extra is not installed.
    """
    path = Path(path)
    try:
        # Read once: the bytes that are checked are the bytes that are loaded.
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the model file: {exc.strerror}") from None
    return load_model_bytes(data, path, trusted=trusted, approved_code=approved_code)


def load_model_bytes(
    data: bytes, path: Path, *, trusted: Sequence[str] = (), approved_code: Collection[str] = ()
) -> Any:
    """:func:`load_model` of a model file's bytes (``path`` names it in errors)."""
    if isinstance(trusted, str):
        trusted = [trusted]
    if not is_bundle(data):
        return load_sklearn(data, path, trusted=trusted)
    bundle = read_bundle(data, str(path))
    if bundle.flavor not in FLAVORS[1:]:
        raise InvalidInputError(
            f"{path}: a model of flavor {bundle.flavor!r}, which this version of shipyard "
            f"does not load (it loads {', '.join(FLAVORS)})"
        )
    if bundle.flavor == "code":
        from shipyard.registry.flavors import code

        # Its parts are the code, the weights and the models its manifest names (checked
        # by code.load).
        return code.load(bundle, path, approved_code, list(trusted))
    parts = set(bundle.parts)
    if parts not in _PARTS[bundle.flavor]:
        raise InvalidInputError(
            f"{path}: a {bundle.flavor} model archive with the parts {sorted(parts)}; it holds "
            + " or ".join(str(sorted(p)) for p in _PARTS[bundle.flavor])
        )
    return _module(bundle.flavor).load(bundle, path, list(trusted))


def file_code_digest(path: Path) -> str | None:
    """The code digest of a custom code model file (None for another flavor), read from the
    archive without running anything."""
    from shipyard.registry.flavors.code import bundle_digest

    data = Path(path).read_bytes()
    if not is_bundle(data):
        return None
    bundle = read_bundle(data, str(path))
    return bundle_digest(bundle, Path(path)) if bundle.flavor == "code" else None


def file_flavor(path: Path) -> str:
    """The flavor of the model file ``path`` (``sklearn`` for a skops file), read from its
    manifest without loading the model.

    Raises:
        InvalidInputError: the file cannot be read, or is an archive without a manifest.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the model file: {exc.strerror}") from None
    return read_bundle(data, str(path)).flavor if is_bundle(data) else "sklearn"


def _module(flavor: str) -> Any:
    if flavor == "code":
        from shipyard.registry.flavors import code as module
    elif flavor == "xgboost":
        from shipyard.registry.flavors import xgboost as module  # type: ignore[no-redef]
    elif flavor == "lightgbm":
        from shipyard.registry.flavors import lightgbm as module  # type: ignore[no-redef]
    else:
        from shipyard.registry.flavors import onnx as module  # type: ignore[no-redef]
    return module
