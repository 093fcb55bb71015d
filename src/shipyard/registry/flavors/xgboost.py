"""The XGBoost flavor: ``XGBClassifier`` and ``XGBRegressor``, alone or as the last step of a
scikit-learn Pipeline, with the booster in XGBoost's native UBJSON format (the ``xgboost``
extra).

XGBoost's own ``save_model`` writes the trees and the estimator's scikit-learn attributes
(classes, feature names); loading builds a fresh estimator of the class the manifest names
(one of :data:`ESTIMATORS`) and calls its ``load_model`` on the bytes: no pickle, no code of
the file's choosing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.boosters import (
    final_step,
    load_boosted,
    manifest_str,
    require,
    save_boosted,
)
from shipyard.registry.flavors.bundle import Bundle
from shipyard.registry.flavors.sklearn import ModelFile

__all__ = ["ESTIMATORS", "load", "save"]

FLAVOR = "xgboost"
#: The estimator classes a file may name, from ``xgboost``.
ESTIMATORS = ("XGBClassifier", "XGBRegressor")


def save(model: Any, path: Path) -> ModelFile:
    """Write an XGBoost model (or a Pipeline ending in one) to the archive ``path``.

    Raises:
        MissingDependencyError: xgboost is not installed.
        InvalidInputError: the estimator is not an XGBClassifier or XGBRegressor, or it is
            not fitted.
    """
    require("xgboost", "xgboost")
    import xgboost

    def booster(est: Any) -> tuple[str, bytes, dict[str, Any]]:
        name = type(est).__name__
        if name not in ESTIMATORS or not isinstance(est, getattr(xgboost, name)):
            raise InvalidInputError(
                f"cannot save a {type(est).__module__}.{name}: the xgboost flavor saves "
                f"{' and '.join(ESTIMATORS)}"
            )
        try:
            est.get_booster()
        except Exception as exc:  # xgboost raises NotFittedError or XGBoostError
            raise InvalidInputError(f"cannot save the {name}: it is not fitted") from exc
        with tempfile.TemporaryDirectory(prefix="shipyard-xgb-") as tmp:
            file = Path(tmp) / "model.ubj"
            est.save_model(file)
            data = file.read_bytes()
        return "model.ubj", data, {"estimator": name}

    return save_boosted(model, path, FLAVOR, booster, xgboost.__version__)


def load(bundle: Bundle, path: Path, trusted: tuple[str, ...] | list[str]) -> Any:
    """The model of an XGBoost archive.

    Raises:
        MissingDependencyError: xgboost is not installed.
        InvalidInputError: the archive names another estimator, or XGBoost cannot read its
            model file.
    """
    require("xgboost", "xgboost")
    import xgboost

    name = manifest_str(bundle, "estimator", path, ESTIMATORS)
    est = getattr(xgboost, name)()
    try:
        est.load_model(bytearray(bundle.parts["model"]))
    except Exception as exc:  # XGBoostError for a damaged file
        raise InvalidInputError(f"{path}: XGBoost cannot read its model: {exc}") from exc
    return load_boosted(bundle, path, est, trusted)


def is_xgboost(model: Any) -> bool:
    """Whether ``model``, or the last step of a Pipeline, is an XGBoost model."""
    _, _, est = final_step(model)
    return type(est).__module__.split(".")[0] == "xgboost"
