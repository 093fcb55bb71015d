"""A model class of a user's own whose weights are models of other flavors: a blend of a
scikit-learn pipeline and an XGBoost classifier, with the blend weight as an array. Its whole
source is what the registry stores."""

from __future__ import annotations

from typing import Any

import numpy as np


class Blend:
    """Averages the probabilities of two fitted models, ``alpha`` of the first."""

    def __init__(self, weights: dict[str, Any]) -> None:
        self.first, self.second = weights["first"], weights["second"]
        self.alpha = float(weights["alpha"][0])
        self.columns = [str(c) for c in weights["columns"]]
        self.classes_ = np.asarray(self.first.classes_)
        self.feature_names_in_ = np.asarray(self.columns, dtype=object)

    def predict_proba(self, X: Any) -> Any:
        frame = X[self.columns]
        return self.alpha * self.first.predict_proba(frame) + (
            1.0 - self.alpha
        ) * self.second.predict_proba(frame)

    def predict(self, X: Any) -> Any:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class Linear:
    """A linear score over numeric columns, its coefficients as numeric arrays only (what
    safetensors stores)."""

    def __init__(self, weights: dict[str, Any]) -> None:
        self.coef, self.intercept = weights["coef"], weights["intercept"]
        self.classes_ = weights["classes"]

    def predict_proba(self, X: Any) -> Any:
        p = 1.0 / (1.0 + np.exp(-(np.asarray(X, dtype=float) @ self.coef + self.intercept)))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> Any:
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]
