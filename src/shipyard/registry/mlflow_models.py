"""MLflow model directories (an ``MLmodel`` file beside the model's files), read without
running any of their code: what a version registered through the MLflow protocol is made of.

>>> d = MlflowModelDir.parse(mlmodel_text, "1/models/m-3f9a…/artifacts")   # doctest: +SKIP
>>> d.refusal("credit", "models:/m-3f9a…")                                 # doctest: +SKIP

shipyard registers scikit-learn models saved with skops (``mlflow.sklearn.log_model(...,
serialization_format="skops")``, MLflow 3's default outside Databricks), and loads them with
its own trusted-type rules, never with the ``skops_trusted_types`` the file itself lists. A
pickled model (``pickle`` or ``cloudpickle``) stays stored with its run, but is never loaded,
because loading a pickle runs whatever code it names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInputError

__all__ = ["MlflowModelDir", "example_frame", "signature_frame"]

#: MLflow's column types (mlflow.types.DataType) as the pandas dtypes of an input example.
_DTYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
}

_ABOUT = ("mlflow_version", "model_uuid", "utc_time_created", "model_id")


@dataclass(frozen=True)
class MlflowModelDir:
    """What an ``MLmodel`` file says about its model directory (at ``path``)."""

    path: str
    flavors: tuple[str, ...]
    serialization_format: str | None = None  # of the sklearn flavor
    model_file: str | None = None  # the sklearn flavor's file, relative to ``path``
    sklearn_version: str | None = None
    example_file: str | None = None  # relative to ``path``
    example_info: dict[str, Any] = field(default_factory=dict)
    input_types: dict[str, str] = field(default_factory=dict)  # column → MLflow type
    run_id: str | None = None
    #: Each flavor's section of the MLmodel file, as written (``{"xgboost": {"data": …}}``).
    flavor_conf: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What the MLmodel file says of the model: mlflow_version, model_uuid, utc_time_created.
    about: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: bytes, path: str) -> MlflowModelDir:
        """Read an ``MLmodel`` file (YAML, read with the safe loader).

        Raises:
            InvalidInputError: not an MLmodel file.
        """
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{path}/MLmodel is not valid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
            raise InvalidInputError(f"{path}/MLmodel has no flavors: it is not an MLflow model")
        flavors = doc["flavors"]
        sk = flavors.get("sklearn") if isinstance(flavors.get("sklearn"), dict) else {}
        example = doc.get("saved_input_example_info")
        example = example if isinstance(example, dict) else {}
        return cls(
            path=path,
            flavors=tuple(str(f) for f in flavors),
            serialization_format=(
                str(sk.get("serialization_format", "pickle")) if "sklearn" in flavors else None
            ),
            model_file=str(sk["pickled_model"]) if sk.get("pickled_model") else None,
            sklearn_version=str(sk["sklearn_version"]) if sk.get("sklearn_version") else None,
            example_file=str(example["artifact_path"]) if example.get("artifact_path") else None,
            example_info=example,
            input_types=_input_types(doc.get("signature")),
            run_id=str(doc["run_id"]) if doc.get("run_id") else None,
            flavor_conf={str(k): v for k, v in flavors.items() if isinstance(v, dict)},
            about={k: str(doc[k]) for k in _ABOUT if doc.get(k) is not None},
        )

    def refusal(self, name: str, source: str) -> InvalidInputError | None:
        """Why shipyard will not register this model as a version of ``name``, or None."""
        fix = (
            'log it with mlflow.sklearn.log_model(model, name=..., serialization_format="skops") '
            "(MLflow 3's default outside Databricks)"
        )
        if self.serialization_format is None:
            return InvalidInputError(
                f"cannot register {source} as a version of '{name}': shipyard registers "
                "scikit-learn models saved with skops through the MLflow API, and this model's "
                f"flavors are {', '.join(self.flavors) or 'none'}; its files stay stored",
                details={"model": name, "source": source, "flavors": list(self.flavors)},
            )
        if self.serialization_format != "skops" or not self.model_file:
            return InvalidInputError(
                f"cannot register {source} as a version of '{name}': its scikit-learn model "
                f"is saved with {self.serialization_format} ({self.model_file or 'no file'}), "
                "and shipyard never loads a pickle, since loading one runs whatever code it "
                f"names; the files stay stored but nothing was registered; {fix}",
                details={
                    "model": name,
                    "source": source,
                    "serialization_format": self.serialization_format,
                },
            )
        return None


def example_frame(raw: bytes, model_dir: MlflowModelDir) -> Any:
    """The input example saved beside a model as a pandas frame (columns cast to the
    signature's types), or None when it is not a table (a tensor, text, a dict of arrays)."""
    import pandas as pd

    info = model_dir.example_info
    if info.get("type") != "dataframe" or info.get("pandas_orient", "split") != "split":
        return None
    try:
        doc = json.loads(raw)
        frame = pd.DataFrame(doc["data"], columns=doc["columns"])
    except (ValueError, KeyError, TypeError):
        return None
    for column, kind in model_dir.input_types.items():
        if column in frame.columns and kind in _DTYPES:
            try:
                frame[column] = frame[column].astype(_DTYPES[kind])
            except (ValueError, TypeError):
                return None
    return frame


def signature_frame(model_dir: MlflowModelDir) -> Any:
    """An empty pandas frame with the columns and types of the model's MLflow signature, or
    None when it has no column-based signature (or a type with no pandas dtype)."""
    import pandas as pd

    types = model_dir.input_types
    if not types or any(t not in _DTYPES for t in types.values()):
        return None
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[t]) for c, t in types.items()})


def _input_types(signature: Any) -> dict[str, str]:
    if not isinstance(signature, dict) or not isinstance(signature.get("inputs"), str):
        return {}
    try:
        columns = json.loads(signature["inputs"])
    except ValueError:
        return {}
    return {
        str(c["name"]): str(c["type"])
        for c in columns
        if isinstance(c, dict) and c.get("name") and isinstance(c.get("type"), str)
    }
