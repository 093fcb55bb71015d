"""What a deployment answered, its ground-truth feedback and business KPIs: the service over
the prediction log (written by :mod:`shipyard.serving.prediction_log`).

Feedback and KPI events join the predictions by request id: a label
only for a logged answer, once per request id, and one the answering version could have given
(:mod:`shipyard.serving.feedback`); KPI names from a bounded or declared set, values finite.
"""

from __future__ import annotations

import builtins
import json
import math
import numbers
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, text

from shipyard.config import kpi_name_problem
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.monitoring.uplift import CONFIDENCE, DEFAULT_WINDOW, MIN_SAMPLES
from shipyard.serving.feedback import (
    CheckedLabel,
    FeedbackItem,
    FeedbackResult,
    check_label,
    feedback_items,
    request_id_problem,
    same_answer,
    show_value,
    store_labels,
)
from shipyard.stores.db.tables import feedback, kpi_events, prediction_segments, predictions

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection

    from shipyard.context import ServiceContext
    from shipyard.governance.deployments import Deployments
    from shipyard.monitoring.uplift import Method, Missing, UpliftReport
    from shipyard.registry.models import Models

__all__ = ["MAX_KPI_NAMES", "MAX_KPI_VALUE", "Predictions"]

# Distinct KPI names a deployment may record when the project declares none.
MAX_KPI_NAMES = 20
# The largest KPI value, either sign: a business figure, not an overflow.
MAX_KPI_VALUE = 1e15
_BOUND = f"{MAX_KPI_VALUE:.0e}".replace("e+", "e")  # 1e15


class Predictions:
    """Service for what deployments answered: ``list``, ``record_feedback``,
    ``record_kpi`` / ``record_kpis``, ``metrics``, ``accuracy``, ``uplift``.

    Labels are checked against the signature of the version that answered, which ``models``
    gives; ``deployments`` and the alias history of ``models`` say which route answered.
    """

    def __init__(self, ctx: ServiceContext, *, models: Models, deployments: Deployments) -> None:
        self._ctx = ctx
        self._models = models
        self._deployments = deployments

    def list(
        self, deployment: str, *, since: float | None = None, include_shadow: bool = False
    ) -> pd.DataFrame:
        """The logged predictions of a deployment (``since``: epoch seconds), with feedback
        labels joined by request id."""
        import pandas as pd
        import pyarrow.parquet as pq

        since_ms = 0 if since is None else int(since * 1000)
        with self._ctx.db.read() as conn:
            segs = conn.execute(
                select(prediction_segments.c.digest)
                .where(prediction_segments.c.deployment == deployment)
                .where(prediction_segments.c.last_time >= since_ms)
                .order_by(prediction_segments.c.id)
            ).all()
            labels = {
                r.request_id: json.loads(r.label)
                for r in conn.execute(
                    select(feedback.c.request_id, feedback.c.label)
                    .where(feedback.c.deployment == deployment)
                    .where(feedback.c.time >= since_ms)
                )
            }
        frames = []
        for s in segs:
            with self._ctx.artifacts.local_copy(
                s.digest, owner=f"deployment '{deployment}'"
            ) as path:
                frames.append(pq.read_table(path).to_pandas())
        if not frames:
            return pd.DataFrame(
                columns=[
                    "request_id",
                    "time_ms",
                    "model",
                    "shadow",
                    "inputs",
                    "output",
                    "latency_ms",
                    "label",
                ]
            )
        df = pd.concat(frames, ignore_index=True)
        df = df[df["time_ms"] >= since_ms]
        if not include_shadow:
            df = df[~df["shadow"]]
        df = df.assign(
            inputs=df["inputs"].map(json.loads),
            output=df["output"].map(json.loads),
            label=df["request_id"].map(labels),
        )
        return df.reset_index(drop=True)

    def record_feedback(
        self, deployment: str, items: Sequence[FeedbackItem | tuple[Any, ...]]
    ) -> builtins.list[FeedbackResult]:
        """Store ground-truth labels for answers this deployment logged, one per request id,
        after checking every item; returns what became of each, in order.

        ``items`` are :class:`FeedbackItem` or ``(request_id, label)`` tuples, or
        ``(request_id, label, True)`` to replace a label already stored. A label must be one
        the answering version could have given (see :func:`~shipyard.serving.feedback.
        check_label`). The first label of a request id is kept: sending it again is
        ``unchanged``, another label is ``kept`` out unless it replaces (``replaced``, the
        old label recorded beside it).

        >>> project.predictions.record_feedback("churn", [(rid, 1)])  # doctest: +SKIP
        [FeedbackResult(request_id=..., model='churn@3', status='stored', label=1, ...)]

        Raises:
            InvalidInputError: a malformed item, a request id in two items, or a label the
                model could not have answered (every problem listed; nothing stored).
            NotFoundError: request ids that the deployment's prediction log does not hold
                (yet: the log is written about every second), listed in
                ``details["request_ids"]``; nothing stored.
        """
        checked_items = feedback_items(items)
        answered = self._answered(deployment, [i.request_id for i in checked_items])
        missing = [i.request_id for i in checked_items if i.request_id not in answered]
        if missing:
            shown = ", ".join(repr(r) for r in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise NotFoundError(
                f"request id{'s' if len(missing) > 1 else ''} {shown}{more} "
                f"{'are' if len(missing) > 1 else 'is'} not in the prediction log of "
                f"deployment '{deployment}': send the request ids of its answers (a row the "
                "log dropped, counted in shipyard_prediction_log_dropped_total, cannot be "
                "labelled)",
                details={"request_ids": missing},
            )
        outputs = {model: self._outputs(model) for model, _ in answered.values()}
        checked: builtins.list[CheckedLabel] = []
        problems = []
        for i, item in enumerate(checked_items):
            model, answer = answered[item.request_id]
            try:
                label = check_label(item.label, model, outputs[model], answer)
            except InvalidInputError as exc:
                problems.append(f"feedback item {i} ({item.request_id}): {exc.message}")
                continue
            checked.append(CheckedLabel(item, model, answer, label))
        if problems:
            raise InvalidInputError.from_problems("the feedback", problems)
        now = int(time.time() * 1000)
        with self._ctx.db.write() as conn:
            return store_labels(conn, deployment, checked, now)

    def record_kpi(
        self, deployment: str, name: str, value: float, request_id: str | None = None
    ) -> None:
        """Store a business KPI event (e.g. revenue), optionally tied to a prediction.

        Raises:
            InvalidInputError: as :meth:`record_kpis`.
        """
        self.record_kpis(deployment, [(name, value, request_id)])

    def record_kpis(self, deployment: str, events: Sequence[tuple[str, float, str | None]]) -> None:
        """Store KPI events ``(name, value, request_id or None)`` in one write, after
        checking every one of them.

        A name is 1 to 64 ASCII letters, digits or underscores, not starting with a digit
        (it becomes a Prometheus label value). When the project declares its KPIs
        (``[serving] kpis`` in shipyard.toml, or ``SHIPYARD_KPIS``), only those names are
        taken; otherwise a deployment takes at most :data:`MAX_KPI_NAMES` distinct names,
        counting those it stored before. A value is a finite number within
        ±:data:`MAX_KPI_VALUE`.

        Raises:
            InvalidInputError: no events, a name that breaks those rules, a value that is not
                a finite number within the bounds, or a malformed request id (every problem
                listed; nothing stored).
        """
        if not events:
            raise InvalidInputError("no KPI events given")
        declared = self._ctx.settings.kpis
        problems = []
        rows: builtins.list[tuple[str, Any, Any]] = []
        for i, event in enumerate(events):
            if not isinstance(event, tuple | builtins.list) or len(event) not in (2, 3):
                problems.append(
                    f"kpi item {i}: expected (name, value) or (name, value, request_id)"
                )
                continue
            name, value, rid = event[0], event[1], event[2] if len(event) == 3 else None
            problem = kpi_name_problem(name)
            if problem is not None:
                problems.append(f"kpi item {i}: {problem}")
            elif declared is not None and name not in declared:
                problems.append(
                    f"kpi item {i}: {name!r} is not one of the KPIs this project declares "
                    f"({', '.join(declared)}); add it to `kpis` under [serving] in "
                    "shipyard.toml (or to SHIPYARD_KPIS) to record it"
                )
            if not _kpi_value(value):
                problems.append(
                    f"kpi item {i}: value must be a finite number between -{_BOUND} and "
                    f"{_BOUND}, got {show_value(value)}"
                )
            if rid is not None and (problem := request_id_problem(rid)) is not None:
                problems.append(f"kpi item {i}: {problem}")
            rows.append((str(name), value, rid))
        if problems:
            raise InvalidInputError.from_problems("the KPI events", problems)
        now = int(time.time() * 1000)
        with self._ctx.db.write() as conn:
            if declared is None:
                _check_kpi_names(conn, deployment, [name for name, _, _ in rows])
            conn.execute(
                insert(kpi_events),
                [
                    {
                        "deployment": deployment,
                        "name": name,
                        "value": float(value),
                        "request_id": rid,
                        "time": now,
                    }
                    for name, value, rid in rows
                ],
            )

    def accuracy(self, deployment: str, *, window_seconds: float = 3600) -> dict[str, float]:
        """Share of correct answers per model version among predictions with feedback in the
        window."""
        since = int((time.time() - window_seconds) * 1000)
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(predictions.c.model, predictions.c.prediction, feedback.c.label)
                .join(feedback, feedback.c.request_id == predictions.c.request_id)
                .where(predictions.c.deployment == deployment)
                .where(feedback.c.time >= since)
            ).all()
        totals: dict[str, list[int]] = {}
        for r in rows:
            t = totals.setdefault(r.model, [0, 0])
            t[0] += int(same_answer(json.loads(r.prediction), json.loads(r.label)))
            t[1] += 1
        return {m: c / n for m, (c, n) in sorted(totals.items()) if n}

    def metrics(self, deployment: str, *, window_seconds: float = 3600) -> dict[str, Any]:
        """Throughput, latency percentiles, accuracy and KPIs over a window, from the log —
        for teams without Prometheus. Errors are counted only by Prometheus (refused requests
        have no prediction to log)."""
        since = int((time.time() - window_seconds) * 1000)
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(predictions.c.model, predictions.c.latency_ms, predictions.c.time)
                .where(predictions.c.deployment == deployment)
                .where(predictions.c.time >= since)
            ).all()
            kpis = conn.execute(
                select(kpi_events.c.name, func.count(), func.sum(kpi_events.c.value))
                .where(kpi_events.c.deployment == deployment)
                .where(kpi_events.c.time >= since)
                .group_by(kpi_events.c.name)
            ).all()
            fb = conn.execute(
                select(func.count())
                .select_from(feedback)
                .where(feedback.c.deployment == deployment)
                .where(feedback.c.time >= since)
            ).scalar_one()
        if not rows and not kpis:
            known = self._known(deployment)
            if not known:
                raise NotFoundError(
                    f"no deployment '{deployment}' has logged anything; start one with "
                    f"`shipyard serve {deployment}`"
                )
        by_model: dict[str, list[float]] = {}
        for r in rows:
            by_model.setdefault(r.model, []).append(r.latency_ms)
        span = max(
            1.0,
            (
                max((r.time for r in rows), default=since)
                - min((r.time for r in rows), default=since)
            )
            / 1000,
        )
        accuracy = self.accuracy(deployment, window_seconds=window_seconds)
        return {
            "deployment": deployment,
            "window_seconds": window_seconds,
            "predictions": len(rows),
            "throughput_per_second": len(rows) / span if rows else 0.0,
            "latency_ms": _percentiles([r.latency_ms for r in rows]),
            "by_model": {
                m: {
                    "predictions": len(v),
                    "latency_ms": _percentiles(v),
                    "accuracy": accuracy.get(m),
                }
                for m, v in sorted(by_model.items())
            },
            "feedback": int(fb),
            "accuracy": accuracy,
            "kpis": {name: {"events": int(n), "sum": float(total or 0)} for name, n, total in kpis},
        }

    def uplift(
        self,
        deployment: str,
        kpi: str,
        *,
        around_promotion: int | None = None,
        window_seconds: float = DEFAULT_WINDOW,
        method: Method = "welch",
        missing: Missing = "zero",
        min_samples: int = MIN_SAMPLES,
        confidence: float = CONFIDENCE,
    ) -> UpliftReport:
        """Whether the KPI ``kpi`` per prediction differs between the routes of the
        deployment (by default) or before and after its promotion ``around_promotion``
        (1 the oldest, -1 the latest): means, sample sizes, the difference and its
        ``confidence`` interval (Welch, or a seeded bootstrap), or "not enough data" below
        ``min_samples`` values per side. Read-only. The rules (which predictions, which
        promotions, missing KPI events as zero or skipped) are in
        :mod:`shipyard.monitoring.uplift`.

        >>> project.predictions.uplift("credit-risk", "revenue").comparisons[0]  # doctest: +SKIP
        UpliftComparison(baseline='production', arm='challenger', verdict='higher', ...)

        Raises:
            InvalidInputError: a bad option, or a deployment with a single route (by route).
            NotFoundError: no such deployment or model, a KPI the deployment never recorded,
                or no such promotion (the message lists the latest ones).
        """
        from shipyard.monitoring import uplift as up

        settings = up.Settings(kpi, method, missing, confidence, min_samples, window_seconds)
        settings.check()
        d = self._deployments.effective(deployment)
        changes = self._deployments.history(deployment) if d.stored else []
        found = up.promotions(d, changes, self._models.alias_history(d.model))
        with self._ctx.db.read() as conn:
            names = up.kpi_names(conn, deployment)
        if kpi not in names:
            raise NotFoundError(
                f"deployment '{deployment}' has recorded no KPI '{kpi}' "
                f"(it records: {', '.join(names) or 'none yet'}); a client records one per "
                'answer with POST /kpi {"name": ..., "value": ..., "request_id": ...}'
            )

        def data_of(since_ms: int, until_ms: int) -> up.KpiValues:
            with self._ctx.db.read() as conn:
                return up.kpi_values(conn, deployment, kpi, since_ms, until_ms)

        now_ms = int(time.time() * 1000)
        if around_promotion is None:
            holders = self._models.aliases(d.model)
            return up.by_route(d, settings, found, holders, data_of, now_ms)
        promotion = up.pick_promotion(deployment, found, around_promotion)
        return up.around_promotion(d, settings, found, promotion, data_of, now_ms)

    def _answered(
        self, deployment: str, request_ids: builtins.list[str]
    ) -> dict[str, tuple[str, Any]]:
        """The logged answers of ``deployment`` among ``request_ids``: request id to the
        model (``name@version``) that answered and its answer."""
        out: dict[str, tuple[str, Any]] = {}
        with self._ctx.db.read() as conn:
            for start in range(0, len(request_ids), 500):
                query = (
                    select(predictions.c.request_id, predictions.c.model, predictions.c.prediction)
                    .where(predictions.c.deployment == deployment)
                    .where(predictions.c.request_id.in_(request_ids[start : start + 500]))
                )
                for r in conn.execute(query):
                    out[r.request_id] = (r.model, json.loads(r.prediction))
        return out

    def _outputs(self, model: str) -> dict[str, Any] | None:
        """The signature outputs of ``model`` (``name@version``); None when it has no
        signature or is not in the registry (a log written by other means)."""
        try:
            signature = self._models.get(model).signature
        except (NotFoundError, InvalidInputError):
            return None
        outputs = signature.get("outputs") if signature else None
        return outputs if isinstance(outputs, dict) else None

    def _known(self, deployment: str) -> bool:
        with self._ctx.db.read() as conn:
            return (
                conn.execute(
                    select(prediction_segments.c.id)
                    .where(prediction_segments.c.deployment == deployment)
                    .limit(1)
                ).first()
                is not None
            )


def _percentiles(values: builtins.list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    import numpy as np

    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _kpi_value(value: Any) -> bool:
    """Whether ``value`` is a number (not true/false) within ±MAX_KPI_VALUE."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= MAX_KPI_VALUE
    except OverflowError:  # an integer beyond a double
        return False


def _check_kpi_names(conn: Connection, deployment: str, names: builtins.list[str]) -> None:
    """Refuse names that would take a deployment past MAX_KPI_NAMES distinct KPI names.

    Raises:
        InvalidInputError: naming the names over the limit and how to declare KPIs.
    """

    def stored() -> set[str]:
        query = select(kpi_events.c.name).where(kpi_events.c.deployment == deployment)
        return set(conn.execute(query.distinct()).scalars())

    known = stored()
    new = [n for n in dict.fromkeys(names) if n not in known]
    if not new:
        return
    if conn.dialect.name == "postgresql":
        # Two requests adding names at once must not both pass the limit (SQLite's writes
        # are serialised already).
        key = f"shipyard.kpi_names:{deployment}"
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
        known = stored()
        new = [n for n in new if n not in known]
    over = new[max(0, MAX_KPI_NAMES - len(known)) :]
    if over:
        raise InvalidInputError(
            f"deployment '{deployment}' records {len(known)} KPI names "
            f"({', '.join(sorted(known)) or 'none'}); {', '.join(repr(n) for n in over)} would "
            f"take it past {MAX_KPI_NAMES}, the limit for a project that does not declare its "
            "KPIs. Declare the names it uses in shipyard.toml, e.g. [serving] kpis = "
            '["revenue", "churned"], or in SHIPYARD_KPIS=revenue,churned: any other name is '
            "then refused, and the declared ones have no limit",
            details={"names": over, "limit": MAX_KPI_NAMES},
        )
