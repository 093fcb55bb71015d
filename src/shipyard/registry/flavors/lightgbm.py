"""The LightGBM flavor: ``LGBMClassifier`` and ``LGBMRegressor``, alone or as the last step
of a scikit-learn Pipeline, with the booster in LightGBM's text model format (the
``lightgbm`` extra).

LightGBM's scikit-learn estimators cannot be rebuilt around a loaded booster through public
API, so a loaded model is a :class:`LightGBMClassifier` or :class:`LightGBMRegressor`: a
scikit-learn estimator over ``lightgbm.Booster(model_str=...)`` that answers
``predict`` and ``predict_proba`` as LightGBM's own estimators do (the classes and feature
names are kept in the manifest). Such a model is saved again the same way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from shipyard.errors import InvalidInputError
from shipyard.registry.flavors.boosters import load_boosted, manifest_str, require, save_boosted
from shipyard.registry.flavors.bundle import Bundle
from shipyard.registry.flavors.sklearn import ModelFile

__all__ = ["LightGBMClassifier", "LightGBMRegressor", "from_booster", "load", "save"]

FLAVOR = "lightgbm"
KINDS = ("classifier", "regressor")


class _LightGBMModel(BaseEstimator):  # type: ignore[misc]
    """A fitted LightGBM booster as a scikit-learn estimator (not trainable: ``fit``
    refuses)."""

    booster_: Any
    feature_names_in_: Any
    n_features_in_: int
    #: "gbdt", "dart" or "rf" (how the trees' outputs combine), as LightGBM's estimators say
    boosting_type: str = "gbdt"

    def fit(self, X: Any, y: Any = None) -> Any:
        raise InvalidInputError(
            "a LightGBM model loaded from the registry is not trained again; fit an "
            "LGBMClassifier or LGBMRegressor instead"
        )

    def _raw(self, X: Any) -> Any:
        import numpy as np
        import pandas as pd

        if isinstance(X, pd.DataFrame) and getattr(self.booster_, "pandas_categorical", None):
            # LightGBM takes text columns as pandas categories, with the categories it was
            # trained on (which it restores); a request holds them as text.
            text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
            if text:
                X = X.astype(dict.fromkeys(text, "category"))
        return np.asarray(self.booster_.predict(X))


class LightGBMClassifier(ClassifierMixin, _LightGBMModel):  # type: ignore[misc]
    """A LightGBM classifier loaded from the registry: ``classes_``, ``predict`` (the most
    probable class, as ``LGBMClassifier.predict``) and ``predict_proba``."""

    classes_: Any

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        raw = self._raw(X)
        if raw.ndim == 1:  # binary: the probability of the second class
            return np.vstack((1.0 - raw, raw)).transpose()
        return raw

    def predict(self, X: Any) -> Any:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class LightGBMRegressor(RegressorMixin, _LightGBMModel):  # type: ignore[misc]
    """A LightGBM regressor loaded from the registry."""

    def predict(self, X: Any) -> Any:
        return self._raw(X)


def save(model: Any, path: Path) -> ModelFile:
    """Write a LightGBM model (or a Pipeline ending in one) to the archive ``path``.

    Raises:
        MissingDependencyError: lightgbm is not installed.
        InvalidInputError: the estimator is not a fitted LightGBM classifier or regressor.
    """
    require("lightgbm", "lightgbm")
    import lightgbm

    def booster(est: Any) -> tuple[str, bytes, dict[str, Any]]:
        if isinstance(est, LightGBMClassifier | lightgbm.LGBMClassifier):
            kind = "classifier"
        elif isinstance(est, LightGBMRegressor | lightgbm.LGBMRegressor):
            kind = "regressor"
        else:
            raise InvalidInputError(
                f"cannot save a {type(est).__module__}.{type(est).__name__}: the lightgbm "
                "flavor saves LGBMClassifier and LGBMRegressor"
            )
        try:
            text = est.booster_.model_to_string()
        except Exception as exc:  # LGBMNotFittedError
            raise InvalidInputError(f"cannot save the {type(est).__name__}: {exc}") from exc
        fields: dict[str, Any] = {"estimator": kind}
        names = getattr(est, "feature_names_in_", None)
        if names is not None:
            fields["feature_names"] = [str(n) for n in names]
        if kind == "classifier":
            fields["classes"] = [c.item() if hasattr(c, "item") else c for c in est.classes_]
        return "model.txt", text.encode(), fields

    return save_boosted(model, path, FLAVOR, booster, lightgbm.__version__)


def from_booster(booster: Any) -> LightGBMClassifier | LightGBMRegressor:
    """A trained ``lightgbm.Booster`` (from ``lightgbm.train``) as the estimator this
    flavor saves: a classifier for a binary or multiclass objective, with classes 0…n-1 as
    LightGBM numbers them, else a regressor.

    Raises:
        InvalidInputError: an objective this flavor does not serve (ranking, a custom one).
    """
    import numpy as np

    text = booster.model_to_string()
    found = re.search(r"^objective=(\S+)(.*)$", text, re.MULTILINE)
    objective = found[1] if found else ""
    est: LightGBMClassifier | LightGBMRegressor
    if objective in ("binary", "cross_entropy"):
        est = LightGBMClassifier()
        est.classes_ = np.asarray([0, 1])
    elif objective in ("multiclass", "multiclassova"):
        est = LightGBMClassifier()
        est.classes_ = np.arange(int(booster.params.get("num_class") or _num_class(text)))
    elif objective.startswith(("lambdarank", "rank_xendcg")) or not objective:
        raise InvalidInputError(
            f"a LightGBM booster with objective {objective or 'none (custom)'!r}: the lightgbm "
            "flavor serves classifiers and regressors"
        )
    else:
        est = LightGBMRegressor()
    est.booster_ = booster
    boosting = re.search(r"^\[boosting: (\w+)\]$", text, re.MULTILINE)
    est.boosting_type = boosting[1] if boosting else "gbdt"
    est.n_features_in_ = int(booster.num_feature())
    est.feature_names_in_ = np.asarray([str(n) for n in booster.feature_name()], dtype=object)
    return est


def _num_class(text: str) -> int:
    found = re.search(r"^num_class=(\d+)$", text, re.MULTILINE)
    return int(found[1]) if found else 2


def load(bundle: Bundle, path: Path, trusted: tuple[str, ...] | list[str]) -> Any:
    """The model of a LightGBM archive.

    Raises:
        MissingDependencyError: lightgbm is not installed.
        InvalidInputError: a manifest that does not describe the booster, or LightGBM cannot
            read its model file.
    """
    require("lightgbm", "lightgbm")
    import lightgbm
    import numpy as np

    kind = manifest_str(bundle, "estimator", path, KINDS)
    try:
        text = bundle.parts["model"].decode()
        booster = lightgbm.Booster(model_str=text)
    except Exception as exc:  # LightGBMError, UnicodeDecodeError
        raise InvalidInputError(f"{path}: LightGBM cannot read its model: {exc}") from exc
    est: _LightGBMModel
    if kind == "classifier":
        classes = bundle.manifest.get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise InvalidInputError(f"{path}: the manifest lists no classes for the classifier")
        est = LightGBMClassifier()
        est.classes_ = np.asarray(classes)
    else:
        est = LightGBMRegressor()
    est.booster_ = booster
    boosting = re.search(r"^\[boosting: (\w+)\]$", text, re.MULTILINE)
    est.boosting_type = boosting[1] if boosting else "gbdt"
    est.n_features_in_ = int(booster.num_feature())
    names = bundle.manifest.get("feature_names")
    if isinstance(names, list):
        if len(names) != est.n_features_in_:
            raise InvalidInputError(f"{path}: the manifest's feature names do not fit the model")
        est.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)
    return load_boosted(bundle, path, est, trusted)
