"""Benchmark: one pass of a quality, a performance and a drift monitor over a window of
``--rows`` answers of a deployment's prediction log.

A SQLite project with a logistic regression on 8 numeric and 2 categorical inputs, trained on
a 5,000-row dataset (its contract bound, so serving's checks apply), whose answers to
``--rows`` rows (a tenth of them labelled, two columns shifted) are written with the server's
own prediction log half an hour ago. Each monitor's first pass (which builds the version's
checks and reads the reference) and a second pass over the next window are timed; the second
is what ``monitor watch`` pays per window.

    python bench/monitors.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

NUMERIC = [f"x{i}" for i in range(8)]


def frame(n: int, seed: int, shift: float = 0.0):  # type: ignore[no-untyped-def]
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    cols = {c: rng.normal(0, 1, n) + (shift if c in ("x0", "x1") else 0.0) for c in NUMERIC}
    cols["region"] = rng.choice(["north", "south", "east", "west"], n)
    cols["plan"] = rng.choice(["basic", "plus", "pro"], n)
    df = pl.DataFrame(cols)
    return df.with_columns((pl.col("x0") + pl.col("x2") > 0).cast(pl.Int64).alias("y"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    import shipyard
    from shipyard.data.inference import infer_contract
    from shipyard.serving.prediction_log import PredictionLog, PredictionRecord

    with tempfile.TemporaryDirectory() as tmp:
        project = shipyard.init_project(Path(tmp) / "proj", actor="alice")
        train = frame(5_000, 0)
        version = project.datasets.add("train", train)
        project.contracts.add("inputs", infer_contract(train))
        project.contracts.bind("train", "inputs")
        from sklearn.compose import make_column_transformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        x = train.drop("y").to_pandas()
        model = make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["region", "plan"]),
                remainder="passthrough",
            ),
            LogisticRegression(max_iter=500),
        ).fit(x, train["y"].to_numpy())
        with project.start_run("bench") as run:
            run.log_input(version.ref, context="train")
            run.log_model(model, "churn", input_example=x.head(5))
        current = frame(args.rows, 1, shift=0.5)
        rows = current.drop("y").to_dicts()
        answers = model.predict(current.drop("y").to_pandas()).tolist()
        now = datetime.now(UTC)
        start_ms = int((now - timedelta(minutes=30)).timestamp() * 1000)
        log = PredictionLog(project, "churn", flush_seconds=0.05, max_queue=args.rows + 1)
        log.put(
            PredictionRecord(f"{i:032x}", start_ms + i, "churn@1", False, r, a, 1.0)
            for i, (r, a) in enumerate(zip(rows, answers, strict=True))
        )
        log.close()
        labels = current["y"].to_list()
        project.predictions.record_feedback(
            "churn", [(f"{i:032x}", labels[i]) for i in range(0, args.rows, 10)]
        )
        figures: dict[str, object] = {"rows": args.rows}
        for kind, extra in (
            ("quality", {}),
            ("performance", {"thresholds": ["accuracy>=0.9"]}),
            ("drift", {}),
        ):
            project.monitors.add(
                kind,
                deployment="churn",
                kind=kind,
                window_seconds=3600,
                every_seconds=60,
                **extra,  # type: ignore[arg-type]
            )
            t0 = time.perf_counter()
            first = project.monitors.run(kind, now=now + timedelta(minutes=1))
            t1 = time.perf_counter()
            project.monitors.run(kind, now=now + timedelta(minutes=2))
            t2 = time.perf_counter()
            figures[f"{kind}_first_pass_s"] = round(t1 - t0, 3)
            figures[f"{kind}_next_pass_s"] = round(t2 - t1, 3)
            figures[f"{kind}_status"] = f"{first.result.status}, {first.result.rows} rows"
        project.close()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
