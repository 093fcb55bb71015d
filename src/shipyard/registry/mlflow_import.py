"""Import an MLflow model directory (an ``MLmodel`` file beside the model's files) into the
registry as a new version, loaded through shipyard's own flavors.

>>> project.mlflow_imports.import_model("exported/churn-model", "churn")  # doctest: +SKIP
>>> project.mlflow_imports.import_model("models:/churn/3", "churn")       # doctest: +SKIP

==========  ==================================================  ===========================
MLflow      what is read                                        registered as
==========  ==================================================  ===========================
onnx        the ``.onnx`` file (onnx's parser)                  onnx
xgboost     the native ``.ubj``/``.json``/``.xgb`` file         xgboost
lightgbm    a Booster's text file; an estimator's skops file    lightgbm
sklearn     the skops file, with shipyard's trusted types       sklearn (skops)
==========  ==================================================  ===========================

The model is then saved again in its shipyard flavor's format, so a version imported from
MLflow loads, serves and exports like any other. A pickled model (``pickle`` or
``cloudpickle``) is refused: loading a pickle runs whatever code it names. An admin who has
reviewed where the file comes from may pass ``trust_pickle=True``: the pickle is loaded once,
here, and the model saved in its safe format; the audit event and the model card record who
trusted which file (its SHA-256). A ``python_function`` model of custom code is refused
either way: its code is not a flavor shipyard saves (log it as a
:class:`~shipyard.registry.flavors.code.CodeModel`).

A source is a local directory (or its ``MLmodel`` file), or a URI of this project's MLflow
protocol (``shipyard server``): ``models:/NAME/VERSION`` of its MLflow registry,
``models:/m-…`` (a logged model), ``runs:/RUN/PATH`` or ``mlflow-artifacts:/…``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from shipyard.authz import require_role
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.refs import validate_name

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.registry.mlflow_models import MlflowModelDir
    from shipyard.registry.models import Models
    from shipyard.registry.versions import ModelVersion
    from shipyard.tracking.artifact_tree import ArtifactTree

__all__ = ["MLFLOW_FLAVORS", "MlflowImports"]

#: The MLflow flavors shipyard imports, in the order it prefers them when a model has several.
MLFLOW_FLAVORS = ("onnx", "xgboost", "lightgbm", "sklearn")
PICKLE_FORMATS = ("pickle", "cloudpickle")
#: LightGBM's own classes that a skops file of an LGBMClassifier/LGBMRegressor names (the
#: list MLflow writes beside it, fixed here: the file's own list is never used).
LIGHTGBM_SKOPS_TYPES = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
)
_URI_PREFIXES = ("models:/", "runs:/", "mlflow-artifacts:")
_XGB_CLASSES = {
    "xgboost.sklearn.XGBClassifier": "XGBClassifier",
    "xgboost.sklearn.XGBRegressor": "XGBRegressor",
    "xgboost.core.Booster": None,
}


@dataclass(frozen=True)
class _Loaded:
    model: Any
    flavor: str  # the MLflow flavor it was read from
    file: str
    pickle_sha256: str | None = None


class MlflowImports:
    """Service importing MLflow model directories: ``import_model``."""

    def __init__(self, ctx: ServiceContext, *, models: Models, artifact_tree: ArtifactTree) -> None:
        self._ctx = ctx
        self._models = models
        self._tree = artifact_tree

    def import_model(
        self,
        source: str,
        name: str,
        *,
        trust_pickle: bool = False,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register the MLflow model at ``source`` as the next version of ``name``
        (contributor; admin with ``trust_pickle``), with the signature of its saved input
        example (else of its MLflow signature) and where it came from as provenance, with
        ``tags`` as the version's tags.

        Raises:
            NotFoundError: no such directory, URI or file in it.
            InvalidInputError: not an MLflow model, a flavor shipyard does not import, or a
                pickle without ``trust_pickle`` (nothing is loaded then).
            UntrustedModelError: a skops file naming types shipyard does not trust.
            MissingDependencyError: the flavor's extra is not installed.
            PermissionDeniedError: not a contributor, or ``trust_pickle`` by a non-admin.
            CheckFailedError: the version lacks tags the project's annotation policy
                requires (``details["missing"]``); nothing is registered.
        """
        validate_name(name, "model name")
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "register models")
            if trust_pickle:
                require_role(conn, self._ctx.actor, "admin", "trust a pickled MLflow model")
        read, where, run_id = self._reader(source)
        from shipyard.registry.mlflow_models import MlflowModelDir

        model_dir = MlflowModelDir.parse(read("MLmodel"), where)
        loaded = _load(model_dir, read, source, name, trust_pickle)
        provenance = {"mlflow_source": source, "mlflow_flavor": loaded.flavor}
        provenance.update({f"mlflow_{k}": v for k, v in model_dir.about.items()})
        if loaded.pickle_sha256 is not None:
            provenance["trusted_pickle"] = (
                f"{loaded.file} (sha256 {loaded.pickle_sha256}) loaded with pickle at import, "
                f"trusted by admin {self._ctx.actor}"
            )
        return self._models.register_model(
            name,
            loaded.model,
            run_id=run_id,
            input_example=_example(model_dir, read),
            description=description,
            tags=tags,
            provenance=provenance,
        )

    def _reader(self, source: str) -> tuple[Callable[[str], bytes], str, str | None]:
        """``(read(relative path) → bytes, where, run id)`` for the model directory."""
        if source.startswith(_URI_PREFIXES):
            return self._tree_reader(source)
        folder = Path(source).expanduser()
        if folder.name == "MLmodel" and folder.is_file():
            folder = folder.parent
        if not (folder / "MLmodel").is_file():
            raise NotFoundError(
                f"{source} is not an MLflow model directory (it has no MLmodel file); give the "
                "folder mlflow.<flavor>.save_model wrote, or a models:/NAME/VERSION URI of this "
                "project's MLflow registry"
            )

        def read(rel: str) -> bytes:
            path = folder / _relative(rel, source)
            try:
                return path.read_bytes()
            except OSError as exc:
                raise NotFoundError(
                    f"the MLflow model at {source} has no readable file {rel}: {exc.strerror}"
                ) from None

        return read, str(folder), None

    def _tree_reader(self, source: str) -> tuple[Callable[[str], bytes], str, str | None]:
        from shipyard.registry.mlflow_sources import resolve_source

        with self._ctx.db.read() as conn:
            try:
                where = resolve_source(conn, source, None, None)
            except NotFoundError as exc:
                raise NotFoundError(
                    f"{exc.message}; a models:/ or runs:/ URI names a model of this project's "
                    "MLflow registry (models logged to `shipyard server` with the mlflow "
                    "client); for a model stored elsewhere, download it with `mlflow "
                    "artifacts download` and import the folder"
                ) from None
        run_id = where.run_id
        if run_id is not None:
            from shipyard.stores.db.tables import runs

            with self._ctx.db.read() as conn:
                if conn.execute(runs.select().where(runs.c.id == run_id)).first() is None:
                    run_id = None

        def read(rel: str) -> bytes:
            path = f"{where.path}/{_relative(rel, source)}"
            try:
                digest = self._tree.get(path).digest
            except NotFoundError:
                digest = None
            if digest is None:
                raise NotFoundError(f"the MLflow model at {source} has no file {rel}")
            with self._ctx.artifacts.local_copy(digest, owner=f"{source}/{rel}") as local:
                return local.read_bytes()

        return read, where.path, run_id


def _relative(rel: str, source: str) -> str:
    """A file the MLmodel names, refused if it leaves the model directory."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise InvalidInputError(
            f"the MLmodel file of {source} names the file {rel!r}, outside its directory"
        )
    return str(PurePosixPath(*parts))


def _load(
    model_dir: MlflowModelDir,
    read: Callable[[str], bytes],
    source: str,
    name: str,
    trust_pickle: bool,
) -> _Loaded:
    flavor = next((f for f in MLFLOW_FLAVORS if f in model_dir.flavor_conf), None)
    if flavor is None:
        raise InvalidInputError(
            f"cannot import {source} as '{name}': its MLflow flavors are "
            f"{', '.join(model_dir.flavors) or 'none'}, and shipyard imports "
            f"{', '.join(MLFLOW_FLAVORS)} models (a python_function model of your own code is "
            "code, not data: log it with run.log_model(CodeModel(...)), which an approver "
            "approves before it loads)",
            details={"source": source, "flavors": list(model_dir.flavors)},
        )
    conf = model_dir.flavor_conf[flavor]
    rel = str(conf.get("pickled_model") if flavor == "sklearn" else conf.get("data") or "")
    if not rel:
        raise InvalidInputError(f"the MLmodel file of {source} names no file for its {flavor}")
    data = read(rel)
    fmt = str(conf.get("serialization_format") or "pickle")
    model_class = str(conf.get("model_class") or "")
    if flavor == "onnx":
        return _Loaded(_onnx(data, source), flavor, rel)
    if flavor == "xgboost":
        return _Loaded(_xgboost(data, model_class, source), flavor, rel)
    if flavor == "lightgbm" and model_class == "lightgbm.basic.Booster":
        return _Loaded(_lightgbm_booster(data, source), flavor, rel)
    if fmt in PICKLE_FORMATS:
        if not trust_pickle:
            raise InvalidInputError(
                f"cannot import {source} as '{name}': its {flavor} model is saved with {fmt} "
                f"({rel}), and loading a pickle runs whatever code it names, so shipyard does "
                'not load it; save it with serialization_format="skops" (MLflow 3\'s default), '
                "or, if you trust where this file comes from, an admin may import it with "
                "--trust-pickle (recorded in the audit log and on the model card)",
                details={"source": source, "serialization_format": fmt, "file": rel},
            )
        return _Loaded(_unpickle(data), flavor, rel, hashlib.sha256(data).hexdigest())
    if fmt != "skops":
        raise InvalidInputError(
            f"cannot import {source} as '{name}': its {flavor} model is saved as {fmt!r}, "
            "a format shipyard does not read"
        )
    from shipyard.registry.flavors import UntrustedModelError

    extra = LIGHTGBM_SKOPS_TYPES if flavor == "lightgbm" else ()
    try:
        return _Loaded(_skops(data, rel, extra), flavor, rel)
    except UntrustedModelError as exc:
        types = exc.details.get("untrusted_types", [])
        raise UntrustedModelError(
            f"cannot import {source} as '{name}': its skops file {rel} holds types that are "
            f"not trusted: {', '.join(types)}; shipyard loads only scikit-learn, numpy and "
            "scipy types (and, in a LightGBM model, LightGBM's estimators); nothing was "
            "registered",
            details={"model": name, "source": source, "untrusted_types": types},
        ) from None


def _onnx(data: bytes, source: str) -> Any:
    from shipyard.registry.flavors.boosters import require

    require("onnx", "onnx")
    import onnx

    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # DecodeError for a damaged file
        raise InvalidInputError(f"{source}: onnx cannot read its model: {exc}") from exc


def _xgboost(data: bytes, model_class: str, source: str) -> Any:
    from shipyard.registry.flavors.boosters import require

    require("xgboost", "xgboost")
    import xgboost

    if model_class not in _XGB_CLASSES:
        raise InvalidInputError(
            f"{source}: an XGBoost model of class {model_class!r}; shipyard imports "
            "XGBClassifier, XGBRegressor and Booster"
        )
    estimator = _XGB_CLASSES[model_class]
    try:
        if estimator is None:
            # A Booster from xgboost.train: a classifier when its objective is one.
            booster = xgboost.Booster()
            booster.load_model(bytearray(data))
            objective = str(_xgb_objective(booster))
            estimator = (
                "XGBClassifier" if objective.startswith(("binary:", "multi:")) else "XGBRegressor"
            )
        model = getattr(xgboost, estimator)()
        model.load_model(bytearray(data))
    except xgboost.core.XGBoostError as exc:
        raise InvalidInputError(f"{source}: XGBoost cannot read its model: {exc}") from exc
    return model


def _xgb_objective(booster: Any) -> str:
    import json

    config = json.loads(booster.save_config())
    return str(config["learner"]["objective"]["name"])


def _lightgbm_booster(data: bytes, source: str) -> Any:
    from shipyard.registry.flavors.boosters import require

    require("lightgbm", "lightgbm")
    import lightgbm

    from shipyard.registry.flavors.lightgbm import from_booster

    try:
        booster = lightgbm.Booster(model_str=data.decode())
    except Exception as exc:  # LightGBMError, UnicodeDecodeError
        raise InvalidInputError(f"{source}: LightGBM cannot read its model: {exc}") from exc
    return from_booster(booster)


def _skops(data: bytes, rel: str, extra: tuple[str, ...]) -> Any:
    """A skops file loaded with shipyard's trusted types (plus ``extra``), never the types
    the MLmodel file lists."""
    import tempfile

    from shipyard.registry.flavors import load_model

    # load_model reads a path: the bytes go to a private temporary folder.
    with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-") as tmp:
        path = Path(tmp) / PurePosixPath(rel).name
        path.write_bytes(data)
        return load_model(path, trusted=extra)


def _unpickle(data: bytes) -> Any:
    import pickle

    # An admin trusted this file (import_model checked the role and records it).
    return pickle.load(io.BytesIO(data))


def _example(model_dir: MlflowModelDir, read: Callable[[str], bytes]) -> Any:
    """The saved input example as a frame, else an empty frame of the MLflow signature's
    columns (a signature is inferred from column types), else None."""
    from shipyard.registry.mlflow_models import example_frame, signature_frame

    if model_dir.example_file:
        try:
            frame = example_frame(read(model_dir.example_file), model_dir)
        except NotFoundError:
            frame = None
        if frame is not None:
            return frame
    return signature_frame(model_dir)
