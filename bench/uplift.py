"""Benchmark: KPI uplift over a week of canary traffic, and the CBPE estimate of a window.

A SQLite project with a canary (production=90, challenger=10) whose prediction index holds
``--rows`` answers and a revenue event for 30% of them (challenger sells a little more);
``project.predictions.uplift`` is timed by route with Welch's interval and with the bootstrap.
Then :func:`~shipyard.monitoring.performance.estimate_binary` on ``--rows`` scores, and the
calibration fitted on 10,000 reference rows.

The index rows are inserted directly (what the log writer stores for each answer; uplift
reads nothing else), so the figures are the cost of the comparison, not of serving.

    python bench/uplift.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path


def build(root: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sqlalchemy import insert

    import shipyard
    from shipyard.stores.db.tables import kpi_events, predictions

    project = shipyard.init_project(root, actor="alice")
    x = pd.DataFrame({"x": np.arange(20.0)})
    y = (x["x"] > 9).astype(int)
    for c in (1.0, 2.0):
        project.models.register_model("shop", LogisticRegression(C=c).fit(x, y), input_example=x)
    project.users.add("bob", "approver")
    project.policies.set("shop", {"require": []})
    bob = project.as_actor("bob")
    for ref in ("shop@1", "shop@2"):
        bob.approvals.approve(ref)
    bob.promotions.promote("shop@1")
    bob.promotions.promote("shop@2", to="challenger")
    bob.deployments.set("shop", {"production": 90, "challenger": 10})
    rng = np.random.default_rng(0)
    now = int(time.time() * 1000) + 1000
    challenger = rng.random(rows) < 0.1
    converted = rng.random(rows) < 0.3
    revenue = rng.exponential(np.where(challenger, 21.0, 20.0))
    ids = [uuid.uuid4().hex for _ in range(rows)]
    with project.db.write() as conn:
        for start in range(0, rows, 50_000):
            chunk = range(start, min(rows, start + 50_000))
            conn.execute(
                insert(predictions),
                [
                    {
                        "request_id": ids[i],
                        "deployment": "shop",
                        "model": "shop@2" if challenger[i] else "shop@1",
                        "prediction": "1",
                        "time": now + i % 1000,
                        "latency_ms": 1.0,
                    }
                    for i in chunk
                ],
            )
            conn.execute(
                insert(kpi_events),
                [
                    {
                        "deployment": "shop",
                        "name": "revenue",
                        "value": float(revenue[i]),
                        "request_id": ids[i],
                        "time": now + 2000,
                    }
                    for i in chunk
                    if converted[i]
                ],
            )
    project.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    import numpy as np

    import shipyard
    from shipyard.monitoring.performance import estimate_binary, fit_calibration

    figures: dict[str, object] = {"rows": args.rows}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        started = time.perf_counter()
        build(root, args.rows)
        figures["build_s"] = round(time.perf_counter() - started, 2)
        time.sleep(max(0.0, 3.0 - (time.perf_counter() - started)))  # the rows are in the past
        project = shipyard.open_project(root, actor="alice")
        for method in ("welch", "bootstrap"):
            started = time.perf_counter()
            report = project.predictions.uplift("shop", "revenue", method=method)
            elapsed = time.perf_counter() - started
            [c] = report.comparisons
            figures[f"uplift_{method}_s"] = round(elapsed, 3)
            figures[f"uplift_{method}"] = {
                "n": [a.n for a in report.arms],
                "difference": round(c.difference or 0, 4),
                "ci": [round(c.ci_low or 0, 4), round(c.ci_high or 0, 4)],
                "verdict": c.verdict,
            }
        project.close()
    rng = np.random.default_rng(1)
    p = rng.beta(2, 2, 10_000)
    started = time.perf_counter()
    calibration = fit_calibration(p, rng.random(10_000) < p)
    figures["calibration_10k_s"] = round(time.perf_counter() - started, 3)
    scores = rng.beta(2, 2, args.rows)
    started = time.perf_counter()
    estimate_binary(scores, scores >= 0.5, calibration)
    figures["cbpe_estimate_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
