"""The demo's model training: candidates behind the preprocessing spec (a logistic
regression, scikit-learn's gradient boosting and, with the ``lightgbm`` extra, LightGBM),
tracked as runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.data.datasets import DatasetVersion
    from shipyard.data.preprocessing import PreprocessingSpec
    from shipyard.project import Project
    from shipyard.registry.models import ModelVersion

__all__ = ["LABEL", "MODEL_NAME", "train_candidates", "train_on_legacy_decisions"]

LABEL = "default"
MODEL_NAME = "credit-risk"


def _candidates() -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    candidates: dict[str, Any] = {
        "logistic-regression": LogisticRegression(max_iter=1000, C=1.0),
        "gradient-boosting": HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.1, max_depth=4, random_state=0
        ),
    }
    try:
        import lightgbm
    except ImportError:  # the lightgbm extra is optional: the demo compares the others
        return candidates
    # One thread: the demo's timing should not depend on the machine's core count.
    candidates["lightgbm"] = lightgbm.LGBMClassifier(
        n_estimators=150, learning_rate=0.05, num_leaves=15, random_state=0, n_jobs=1, verbose=-1
    )
    return candidates


def train_candidates(
    project: Project,
    train: DatasetVersion,
    valid: DatasetVersion,
    prep: PreprocessingSpec,
) -> dict[str, ModelVersion]:
    """Fit each candidate on ``train``, score it on ``valid``, track the run and register the
    fitted pipeline (preprocessing first) as a version of ``credit-risk``, in its flavor's
    format (the LightGBM one as LightGBM's text model beside the skops preprocessing)."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.pipeline import Pipeline

    train_df = train.to_pandas()
    valid_df = valid.to_pandas()
    x_train, y_train = train_df.drop(columns=[LABEL]), train_df[LABEL]
    x_valid, y_valid = valid_df.drop(columns=[LABEL]), valid_df[LABEL]
    registered: dict[str, ModelVersion] = {}
    for name, estimator in _candidates().items():
        with project.start_run("credit-risk", name=name, tags={"team": "risk"}) as run:
            params = {
                k: v
                for k, v in estimator.get_params().items()
                if isinstance(v, int | float | str | bool) or v is None
            }
            run.log_params({"model": name, **params})
            run.log_input(train.ref, context="train")
            run.log_input(valid.ref, context="valid")
            pipeline = Pipeline([("prep", prep.to_column_transformer()), ("model", estimator)])
            pipeline.fit(x_train, y_train)
            proba = pipeline.predict_proba(x_valid)[:, 1]
            predicted = (proba >= 0.5).astype(int)
            run.log_metrics(
                {
                    "roc_auc": float(roc_auc_score(y_valid, proba)),
                    "accuracy": float(accuracy_score(y_valid, predicted)),
                    "f1": float(f1_score(y_valid, predicted)),
                    "log_loss": float(log_loss(y_valid, proba)),
                }
            )
            registered[name] = run.log_model(
                pipeline,
                MODEL_NAME,
                input_example=x_train.head(20),
                description=f"{name} behind the contract's preprocessing spec",
            )
    return registered


def train_on_legacy_decisions(
    project: Project,
    train: DatasetVersion,
    valid: DatasetVersion,
    prep: PreprocessingSpec,
) -> ModelVersion:
    """A third candidate trained on last year's manual decisions instead of observed defaults.
    Those decisions flagged many more men as risky, and the model learns it: a candidate that
    scores well enough but fails the fairness gate."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline

    train_df = train.to_pandas()
    valid_df = valid.to_pandas()
    rng = np.random.default_rng(11)
    legacy = train_df[LABEL].to_numpy().copy()
    flagged = (train_df["gender"].to_numpy() == "male") & (rng.random(len(legacy)) < 0.35)
    legacy[flagged] = 1
    x_train = train_df.drop(columns=[LABEL])
    x_valid, y_valid = valid_df.drop(columns=[LABEL]), valid_df[LABEL]
    with project.start_run("credit-risk", name="legacy-decisions", tags={"team": "risk"}) as run:
        run.log_params({"model": "gradient-boosting", "label_source": "manual decisions 2025"})
        run.log_input(train.ref, context="train")
        run.log_input(valid.ref, context="valid")
        pipeline = Pipeline(
            [
                ("prep", prep.to_column_transformer()),
                ("model", HistGradientBoostingClassifier(max_iter=150, random_state=0)),
            ]
        )
        pipeline.fit(x_train, legacy)
        proba = pipeline.predict_proba(x_valid)[:, 1]
        run.log_metrics({"roc_auc": float(roc_auc_score(y_valid, proba))})
        return run.log_model(
            pipeline,
            MODEL_NAME,
            input_example=x_train.head(20),
            description="gradient boosting on last year's manual decisions",
        )
