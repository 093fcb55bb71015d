"""A model class of a user's own, for the code flavor's tests: a logistic regression over
scaled numbers and one-hot text, written by hand. Its whole source is what the registry
stores."""

from __future__ import annotations

from typing import Any

import numpy as np


class HandLogistic:
    """Built from weights only (names to NumPy arrays), as the code flavor builds it."""

    def __init__(self, weights: dict[str, Any]) -> None:
        self.numbers = [str(n) for n in weights["numbers"]]
        self.text = [str(n) for n in weights["text"]]
        self.categories = {c: [str(v) for v in weights[f"categories_{c}"]] for c in self.text}
        self.mean, self.scale = weights["mean"], weights["scale"]
        self.coef, self.intercept = weights["coef"], float(weights["intercept"][0])
        self.classes_ = weights["classes"]
        self.feature_names_in_ = np.asarray(self.numbers + self.text, dtype=object)

    def _features(self, X: Any) -> Any:
        parts = [(X[self.numbers].to_numpy(dtype=float) - self.mean) / self.scale]
        for column in self.text:
            values = X[column].astype(str).to_numpy()
            parts.append(np.stack([values == v for v in self.categories[column]], axis=1))
        return np.hstack(parts).astype(float)

    def predict_proba(self, X: Any) -> Any:
        p = 1.0 / (1.0 + np.exp(-(self._features(X) @ self.coef + self.intercept)))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> Any:
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]
