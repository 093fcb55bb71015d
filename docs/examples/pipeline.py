"""The pipeline of docs/pipelines.md: features, a model, its evaluation."""

import polars as pl
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard import pipeline, step
from shipyard.pipelines import current, dataset

FEATURES = ["income", "loan_amount", "credit_score", "debt_to_income"]


@step
def features(data) -> pl.DataFrame:
    return data.to_polars().select(*FEATURES, "default").drop_nulls()


@step(model="credit-pipeline")
def train(table: pl.DataFrame, C: float):
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=C))
    return model.fit(table.select(FEATURES).to_pandas(), table["default"].to_numpy())


@step
def evaluate(model, test) -> dict:
    # A registered evaluation on the test set: what a policy's checks read.
    stored = current().project.evaluations.evaluate(model.ref, test.ref, label="default")
    accuracy = stored.metric("accuracy")
    current().run.log_metric("accuracy", accuracy)
    return {"model": model.ref, "evaluation": stored.dataset, "accuracy": accuracy}


@pipeline
def train_credit(
    train_data=dataset("credit.train"), test_data=dataset("credit.test"), C: float = 1.0
):
    evaluate(train(features(train_data), C), test_data)
