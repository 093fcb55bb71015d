"""Synthetic credit-risk applicants: numeric and categorical features, a binary label
(``default``) and sensitive attributes (``gender``, ``age_band``).

The label depends on the features through a known logistic model, so models trained on it
have something real to learn; ``drift`` shifts incomes and the purpose mix to imitate a later
population. Everything is generated locally from a seed; nothing is downloaded.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

__all__ = ["credit_applicants", "payment_history"]

PURPOSES = ["car", "home_improvement", "education", "business", "debt_consolidation", "medical"]
HOUSING = ["rent", "own", "mortgage"]
REGIONS = ["north", "south", "east", "west"]
EMPLOYMENT = ["salaried", "self_employed", "unemployed", "retired"]


def credit_applicants(
    n: int = 50_000,
    *,
    seed: int = 7,
    start_id: int = 1,
    start_date: date = date(2026, 1, 1),
    days: int = 90,
    drift: float = 0.0,
    income_shift: float = 0.0,
) -> pl.DataFrame:
    """Generate ``n`` applicants.

    ``income_shift`` moves the log of every income by that much (-0.5: incomes fall to 61 %)
    and, with it, credit scores by ``60 × income_shift`` points, as a new channel bringing
    poorer applicants with thinner credit files would: a shift the risk model feels.

    >>> credit_applicants(1000).shape
    (1000, 18)
    """
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(41, 12, n), 18, 85).round().astype(np.int64)
    gender = rng.choice(["female", "male", "nonbinary"], n, p=[0.48, 0.49, 0.03])
    age_band = np.select(
        [age < 25, age < 35, age < 50, age < 65], ["18-24", "25-34", "35-49", "50-64"], "65+"
    )
    employment = rng.choice(EMPLOYMENT, n, p=[0.68, 0.17, 0.06, 0.09])
    base_income = rng.lognormal(10.8 + 0.12 * drift + income_shift, 0.45, n)
    income = np.where(employment == "unemployed", base_income * 0.25, base_income).round(2)
    years_employed = np.where(
        employment == "unemployed", 0, np.clip(rng.gamma(2.0, 3.5, n), 0, age - 17)
    ).round(1)
    p_purpose = np.array([0.22, 0.16, 0.1, 0.12, 0.32, 0.08])
    if drift:
        p_purpose = p_purpose + drift * np.array([-0.05, 0.0, 0.02, 0.08, -0.06, 0.01])
        p_purpose = p_purpose / p_purpose.sum()
    purpose = rng.choice(PURPOSES, n, p=p_purpose)
    housing = rng.choice(HOUSING, n, p=[0.38, 0.22, 0.40])
    region = rng.choice(REGIONS, n)
    loan_amount = np.clip(rng.lognormal(9.4, 0.6, n), 500, 150_000).round(-1)
    term_months = rng.choice([12, 24, 36, 48, 60], n, p=[0.1, 0.25, 0.35, 0.15, 0.15])
    credit_score = (
        np.clip(rng.normal(680 + 60 * income_shift, 70, n), 300, 850).round().astype(np.int64)
    )
    open_accounts = rng.poisson(4, n)
    dti = np.clip(
        loan_amount / np.maximum(income, 1) * 12 / term_months + rng.normal(0.25, 0.1, n), 0, 3
    ).round(3)
    prior_defaults = rng.poisson(0.15, n)
    # The true risk model behind the label.
    logit = (
        -1.2
        - 0.012 * (credit_score - 680)
        + 1.6 * (dti - 0.35)
        + 0.55 * prior_defaults
        + 0.9 * (employment == "unemployed")
        + 0.25 * (purpose == "business")
        - 0.2 * (housing == "own")
        - 0.015 * (years_employed - 5)
        + 0.004 * (loan_amount / 1000)
    )
    default = rng.random(n) < 1 / (1 + np.exp(-logit))
    # A few missing values, as in real collections.
    years_missing = rng.random(n) < 0.02
    day = rng.integers(0, days, n)
    dates = [start_date + timedelta(days=int(d)) for d in day]
    return pl.DataFrame(
        {
            "applicant_id": np.arange(start_id, start_id + n, dtype=np.int64),
            "application_date": dates,
            "age": age,
            "age_band": age_band,
            "gender": gender,
            "region": region,
            "employment": employment,
            "years_employed": pl.Series(years_employed).set(pl.Series(years_missing), None),
            "income": income,
            "housing": housing,
            "purpose": purpose,
            "loan_amount": loan_amount,
            "term_months": term_months.astype(np.int64),
            "credit_score": credit_score,
            "open_accounts": open_accounts.astype(np.int64),
            "debt_to_income": dti,
            "prior_defaults": prior_defaults.astype(np.int64),
            "default": default.astype(np.int64),
        }
    ).select(
        "applicant_id",
        "application_date",
        "age",
        "age_band",
        "gender",
        "region",
        "employment",
        "years_employed",
        "income",
        "housing",
        "purpose",
        "loan_amount",
        "term_months",
        "credit_score",
        "open_accounts",
        "debt_to_income",
        "prior_defaults",
        "default",
    )


def payment_history(applicants: pl.DataFrame, *, seed: int = 17) -> pl.DataFrame:
    """Monthly account statements of the ``applicants`` (a frame from
    :func:`credit_applicants`): one 30, 60 and 90 days before each application and one 45
    days after it, with ``late_payments_90d`` (payments more than 30 days late over the 90 days
    before the statement), ``avg_payment_ratio`` (the share of the amounts due that was paid)
    and ``utilization`` (balance over credit limit). About 8 % of the applicants are new
    customers without statements.

    Applicants who go on to default were already paying late more often, so the statements
    before an application carry signal beyond the application form; the statement after it
    carries far more (the default is happening), which is why training data must be joined
    point in time: only statements at or before the application date count.

    >>> payment_history(credit_applicants(1000)).columns
    ['applicant_id', 'statement_date', 'late_payments_90d', 'avg_payment_ratio', 'utilization']
    """
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    ids = applicants["applicant_id"].to_numpy()
    dates = applicants["application_date"].to_numpy().astype("datetime64[D]")
    default = applicants["default"].to_numpy().astype(np.float64)
    known = rng.random(len(ids)) >= 0.08
    ids, dates, default = ids[known], dates[known], default[known]
    habit = rng.normal(0, 0.6, len(ids))  # how each customer usually pays
    parts = []
    for offset in (-90, -60, -30, 45):
        after = offset > 0
        risk = habit + (2.4 if after else 0.7) * default - 1.6
        late = rng.poisson(np.exp(risk))
        ratio = np.clip(
            0.97
            - 0.05 * late
            - (0.25 if after else 0.05) * default
            + rng.normal(0, 0.05, len(ids)),
            0,
            1,
        )
        utilization = np.clip(
            rng.beta(2, 4, len(ids))
            + 0.12 * default
            + 0.05 * habit
            + (0.25 * default if after else 0),
            0,
            1.5,
        )
        parts.append(
            pl.DataFrame(
                {
                    "applicant_id": ids,
                    "statement_date": dates + np.timedelta64(offset, "D"),
                    "late_payments_90d": late.astype(np.int64),
                    "avg_payment_ratio": ratio.round(3),
                    "utilization": utilization.round(3),
                }
            )
        )
    return pl.concat(parts).sort("statement_date", "applicant_id")
