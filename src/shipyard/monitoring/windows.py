"""What a monitor's window holds, read from the project and measured by the monitor's kind
(:mod:`.measures`): the prediction log's rows between two times, KPI events, the answering
version's checks and reference, the drift service's comparison and the estimate without
labels. Reading only; :class:`~shipyard.monitoring.monitors.Monitors` stores the result.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.errors import ShipyardError
from shipyard.monitoring.measures import MIN_LABELS, MIN_ROWS, Measurement
from shipyard.stores.db.tables import kpi_events

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.monitoring.drift_service import Drift
    from shipyard.monitoring.monitors import Monitor
    from shipyard.monitoring.performance import WindowPerformance
    from shipyard.monitoring.reference import ReferenceProfile
    from shipyard.registry.models import Models
    from shipyard.serving.predictions import Predictions

__all__ = ["Estimator", "WindowMeasurer"]

#: Performance of a deployment's answers between two times (epoch seconds), per version, with
#: the estimate made without labels (:func:`shipyard.monitoring.performance.estimate_window`).
Estimator = Callable[[str, float, float], "Sequence[WindowPerformance]"]


class WindowMeasurer:
    """Measures a monitor's window from the services it reads (built by ``Monitors``); the
    answering versions' checks are built once per process."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        predictions: Predictions,
        models: Models,
        drift: Drift,
        estimate: Estimator | None = None,
    ) -> None:
        self._ctx = ctx
        self._predictions = predictions
        self._models = models
        self._drift = drift
        self._estimate = estimate
        self._checks: dict[str, Any] = {}

    def measure(self, monitor: Monitor, start: datetime, end: datetime) -> Measurement:
        """The window measured by the monitor's kind; an ``error`` measurement, with the
        reason, when the data it needs cannot be read."""
        from shipyard.monitoring import measures

        opts = monitor.options
        try:
            if monitor.kind == "kpi":
                values = self._kpi_values(monitor.deployment, opts["kpi"], start, end)
                agg = opts.get("aggregation", "sum")
                return measures.measure_kpi(
                    values,
                    name=opts["kpi"],
                    aggregation=agg,
                    min_events=int(opts.get("min_rows", 0 if agg == "sum" else 1)),
                )
            frame = self._window_rows(monitor.deployment, start, end)
            if monitor.kind == "performance":
                return self._measure_performance(monitor, frame, start, end)
            if frame.empty:
                need = MIN_ROWS if monitor.kind == "quality" else _drift_min_rows()
                need = max(1, int(opts.get("min_rows", need)))
                return Measurement(
                    "insufficient data", 0, {}, f"no rows in the window; the check needs {need}"
                )
            model = str(frame["model"].value_counts().idxmax()) if not frame.empty else ""
            mine = frame[frame["model"] == model] if model else frame
            if monitor.kind == "drift":
                m = self._measure_drift(monitor, model, mine["inputs"].tolist(), start, end)
            else:
                version = self._models.get(model) if model else None
                m = measures.measure_quality(
                    mine["inputs"].tolist(),
                    checks=self._row_checks(version),
                    reference=self._reference(version, opts.get("reference")),
                    min_rows=int(opts.get("min_rows", MIN_ROWS)),
                )
            return Measurement(m.status, m.rows, {**m.values, "model": model}, m.message)
        except ShipyardError as exc:
            return Measurement("error", 0, {}, str(exc))

    def _measure_performance(
        self, monitor: Monitor, frame: Any, start: datetime, end: datetime
    ) -> Measurement:
        """Realized figures from the labels, and the estimate without labels (CBPE) of the
        version that answered most, when the project can make one (a binary classifier with
        probabilities and an evaluation to calibrate on); why not, otherwise."""
        from shipyard.monitoring import measures

        estimate, note, model = None, None, ""
        if not frame.empty:
            model = str(frame["model"].value_counts().idxmax())
        if self._estimate is not None and model:
            try:
                found = self._estimate(monitor.deployment, start.timestamp(), end.timestamp())
                estimate = next((w.estimate for w in found if w.model == model), None)
            except ShipyardError as exc:
                note = f"no estimate without labels: {exc}"
        m = measures.measure_performance(
            frame["output"].tolist(),
            frame["label"].tolist(),
            min_labels=int(monitor.options.get("min_rows", MIN_LABELS)),
            estimate=estimate,
        )
        values = {**m.values, "model": model}
        if note:
            values["estimate_note"] = note
        return Measurement(m.status, m.rows, values, m.message)

    def _measure_drift(
        self, monitor: Monitor, model: str, inputs: Any, start: datetime, end: datetime
    ) -> Measurement:
        """The window's inputs (answered by ``model``) against its reference: the monitor's
        ``reference``, else the version's training data (:meth:`Drift.compare`)."""
        from shipyard.monitoring import measures
        from shipyard.monitoring.drift_service import inputs_frame

        named = monitor.options.get("reference")
        reference = self._drift.reference(named or self._drift.reference_of_model(model))
        share = next(
            (t.max for t in monitor.thresholds if t.metric == "drift_share" and t.max is not None),
            0.5,
        )
        current = inputs_frame(inputs, reference)
        report = self._drift.compare(
            model,
            current=current,
            reference=named,
            min_rows=int(monitor.options.get("min_rows", _drift_min_rows())),
            share_threshold=share,
        )
        return measures.measure_drift(report)

    def _window_rows(self, deployment: str, start: datetime, end: datetime) -> Any:
        frame = self._predictions.list(deployment, since=start.timestamp())
        end_ms = int(end.timestamp() * 1000)
        return frame[frame["time_ms"] < end_ms].reset_index(drop=True)

    def _kpi_values(
        self, deployment: str, name: str, start: datetime, end: datetime
    ) -> builtins.list[float]:
        with self._ctx.db.read() as conn:
            return [
                float(v)
                for v in conn.execute(
                    select(kpi_events.c.value)
                    .where(kpi_events.c.deployment == deployment)
                    .where(kpi_events.c.name == name)
                    .where(kpi_events.c.time >= int(start.timestamp() * 1000))
                    .where(kpi_events.c.time < int(end.timestamp() * 1000))
                ).scalars()
            ]

    def _reference(self, version: Any, named: str | None) -> ReferenceProfile | None:
        """The reference the monitor names, else the version's training data's (None when
        its lineage names none: null shares and new categories are then not compared),
        limited to the version's inputs."""
        from dataclasses import replace

        from shipyard.registry.signatures import Signature

        if named is None:
            if version is None or not version.training_data:
                return None
            named = self._drift.reference_of_model(version.ref)
        profile = self._drift.reference(named)
        if version is None or not version.signature:
            return profile
        inputs = Signature.from_dict(version.signature).columns
        kept = {c: profile.columns[c] for c in inputs if c in profile.columns}
        return replace(profile, columns=kept)  # the label and other columns are not inputs

    def _row_checks(self, version: Any) -> Any:
        """The checks the answering version's server refuses rows with, built once."""
        from shipyard.registry.row_checks import RowChecks
        from shipyard.registry.signatures import Signature

        if version is None or not version.signature:
            return RowChecks()
        if version.ref not in self._checks:
            rules = self._models.row_check_rules(version.ref)
            self._checks[version.ref] = rules.checks(Signature.from_dict(version.signature))
        return self._checks[version.ref]


def _drift_min_rows() -> int:
    from shipyard.monitoring.drift import MIN_ROWS as DRIFT_MIN_ROWS

    return DRIFT_MIN_ROWS
