"""The report a pull request gets: a candidate model version against the holder of an alias.

It gathers what a reviewer needs to decide, from the lineage graph: the metric deltas on the
same holdout (each side with its bootstrap interval), the fairness deltas, the verdict of the
gate with every check (what ``shipyard check`` runs, so the two always agree), the contract
verdict of the training data, and the drift of the candidate's training data against the
champion's. :func:`render_markdown` writes it for a PR comment or a CI job summary.

>>> report = project.pr_reports.build("credit-risk@4", against="production")  # doctest: +SKIP
>>> report.passed, report.champion                                           # doctest: +SKIP
(False, 'credit-risk@3')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard._internal.words import count
from shipyard.errors import NotFoundError
from shipyard.governance.evaluation import FAIRNESS_MEASURES, LOWER_IS_BETTER

if TYPE_CHECKING:
    from shipyard.governance.promotion import Promotions
    from shipyard.governance.reports import StoredEvaluation
    from shipyard.monitoring.drift import DriftReport
    from shipyard.monitoring.drift_service import Drift
    from shipyard.registry.models import Models

__all__ = [
    "FairnessDelta",
    "MetricDelta",
    "PullRequestReport",
    "PullRequestReports",
    "render_markdown",
]

#: Fairness measures where a smaller value is fairer (selection_rate_ratio: larger is fairer).
_FAIRER_WHEN_LOWER = frozenset({"demographic_parity_difference", "equalized_odds_difference"})
#: Contract checks of the gate carry this prefix (:meth:`Promotions.gate`).
_CONTRACT_CHECK = "contract on training data "
_DRIFT_ROWS = 12


@dataclass(frozen=True)
class MetricDelta(ReadModel):
    """One metric of the candidate and the champion on the same dataset version.

    ``better`` says whether the change is an improvement (direction-aware; None when either
    value is missing or they are equal); ``clear`` whether the two 95% bootstrap intervals
    do not overlap, i.e. the change is larger than the sampling noise of either side.
    """

    metric: str
    candidate: float | None
    candidate_low: float | None
    candidate_high: float | None
    champion: float | None = None
    champion_low: float | None = None
    champion_high: float | None = None
    delta: float | None = None
    better: bool | None = None
    clear: bool = False


@dataclass(frozen=True)
class FairnessDelta(ReadModel):
    """One fairness measure for one sensitive column, candidate against champion."""

    column: str
    measure: str
    candidate: float | None
    champion: float | None
    delta: float | None
    fairer: bool | None


@dataclass(frozen=True)
class PullRequestReport(ReadModel):
    """Everything the pull-request report shows, JSON-ready through ``to_dict``.

    ``gate`` is :meth:`Promotions.gate`'s document (``passed`` and every check); ``dataset``
    the holdout both evaluations ran on (None: the candidate has no evaluation);
    ``training`` / ``champion_training`` the dataset versions each was trained on; ``drift``
    the candidate's training data against the champion's (None, with ``drift_note`` saying
    why, when it could not be compared); ``notes`` what else could not be shown.
    """

    candidate: str
    against: str
    champion: str | None
    gate: dict[str, Any]
    dataset: str | None = None
    rows: int | None = None
    metrics: tuple[MetricDelta, ...] = ()
    fairness: tuple[FairnessDelta, ...] = ()
    training: tuple[str, ...] = ()
    champion_training: tuple[str, ...] = ()
    drift: DriftReport | None = None
    drift_note: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.gate.get("passed"))

    json_properties = ("passed",)


class PullRequestReports:
    """Service for pull-request reports: ``build``."""

    def __init__(self, *, models: Models, promotions: Promotions, drift: Drift) -> None:
        self._models = models
        self._promotions = promotions
        self._drift = drift

    def build(self, candidate: str, *, against: str = "production") -> PullRequestReport:
        """The report of ``candidate`` against the version holding ``against``.

        Reads only (any role): contracts of the training data that have no stored validation
        are checked now and not stored, as ``shipyard check`` does.

        Raises:
            NotFoundError: no such model or version.
            InvalidReferenceError: a malformed reference.
        """
        mv = self._models.get(candidate)
        gate = self._promotions.gate(mv.ref, for_alias=against)
        evidence = self._promotions.evidence(mv.ref, for_alias=against)
        notes: list[str] = []
        champion = evidence.holder
        if evidence.against != against:
            notes.append(
                f"the policy compares with {evidence.against} (no_regression.against), "
                f"so the deltas are against {champion or 'its holder'}"
            )
        ev, base = evidence.evaluation, evidence.baseline
        metrics: tuple[MetricDelta, ...] = ()
        fairness: tuple[FairnessDelta, ...] = ()
        if ev is None:
            notes.append(
                f"{mv.ref} has no evaluation"
                + (
                    f" on {evidence.policy.evaluation_data}"
                    if evidence.policy.evaluation_data
                    else ""
                )
                + f"; run `shipyard models evaluate {mv.ref} --data DATASET@N`"
            )
        else:
            metrics = _metric_deltas(ev, base)
            fairness = _fairness_deltas(ev, base)
            if champion is not None and base is None:
                notes.append(
                    f"{champion} has no evaluation on {ev.dataset}; run `shipyard models "
                    f"evaluate {champion} --data {ev.dataset}` to compare on the same holdout"
                )
        if champion is None:
            notes.append(f"no version of {mv.name} holds {evidence.against}: nothing to compare")
        training = tuple(mv.training_data)
        champion_training = tuple(self._models.get(champion).training_data) if champion else ()
        drift, drift_note = self._training_drift(mv.ref, training, champion, champion_training)
        return PullRequestReport(
            candidate=mv.ref,
            against=against,
            champion=champion,
            gate=gate,
            dataset=ev.dataset if ev else None,
            rows=ev.report.get("rows") if ev else None,
            metrics=metrics,
            fairness=fairness,
            training=training,
            champion_training=champion_training,
            drift=drift,
            drift_note=drift_note,
            notes=tuple(notes),
        )

    def _training_drift(
        self,
        candidate: str,
        training: tuple[str, ...],
        champion: str | None,
        champion_training: tuple[str, ...],
    ) -> tuple[DriftReport | None, str]:
        if champion is None:
            return None, "no champion to compare with"
        if not training or not champion_training:
            who = candidate if not training else champion
            return None, f"{who} has no training data in its lineage (no input logged as train)"
        if training[0] == champion_training[0]:
            return None, f"both were trained on {training[0]}: the training data did not change"
        try:
            report = self._drift.compare(
                f"model:{candidate}", current=training[0], reference=champion_training[0]
            )
        except NotFoundError as exc:
            return None, exc.message
        return report, ""


def _value(report: Mapping[str, Any], name: str, key: str) -> float | None:
    entry = report.get("metrics", {}).get(name) or {}
    value = entry.get(key)
    return None if value is None else float(value)


def _metric_deltas(ev: StoredEvaluation, base: StoredEvaluation | None) -> tuple[MetricDelta, ...]:
    out = []
    for name in ev.report.get("metrics", {}):
        cand = _value(ev.report, name, "value")
        lo, hi = _value(ev.report, name, "ci_low"), _value(ev.report, name, "ci_high")
        if base is None:
            out.append(MetricDelta(name, cand, lo, hi))
            continue
        champ = _value(base.report, name, "value")
        blo, bhi = _value(base.report, name, "ci_low"), _value(base.report, name, "ci_high")
        delta = None if cand is None or champ is None else cand - champ
        better = None
        if delta:
            better = delta < 0 if name in LOWER_IS_BETTER else delta > 0
        clear = None not in (lo, hi, blo, bhi) and (hi < blo or bhi < lo)  # type: ignore[operator]
        out.append(MetricDelta(name, cand, lo, hi, champ, blo, bhi, delta, better, bool(clear)))
    return tuple(out)


def _fairness_deltas(
    ev: StoredEvaluation, base: StoredEvaluation | None
) -> tuple[FairnessDelta, ...]:
    out = []
    base_groups = (base.report.get("groups") or {}) if base else {}
    for column, group in (ev.report.get("groups") or {}).items():
        mine = group.get("fairness") or {}
        theirs = (base_groups.get(column) or {}).get("fairness") or {}
        for measure in FAIRNESS_MEASURES:
            if measure not in mine:
                continue
            cand, champ = _float(mine.get(measure)), _float(theirs.get(measure))
            delta = None if cand is None or champ is None else cand - champ
            fairer = None
            if delta:
                fairer = delta < 0 if measure in _FAIRER_WHEN_LOWER else delta > 0
            out.append(FairnessDelta(column, measure, cand, champ, delta, fairer))
    return tuple(out)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# -- Markdown ---------------------------------------------------------------------------------


def render_markdown(report: PullRequestReport) -> str:
    """The report as GitHub-flavoured Markdown (also what GitLab renders)."""
    r = report
    champion = f"`{r.champion}`" if r.champion else "nobody"
    lines = [
        f"## shipyard: `{r.candidate}` against {r.against} ({champion})",
        "",
        _verdict(r.gate),
        "",
    ]
    lines += _metrics_section(r)
    lines += _fairness_section(r)
    lines += _gate_section(r)
    lines += _training_section(r)
    lines += _drift_section(r)
    if r.notes:
        lines += ["### Notes", "", *[f"- {_cell(n)}" for n in r.notes], ""]
    lines.append(
        f"<sub>Reproduce: `shipyard report pr --candidate {r.candidate} --against {r.against}`"
        "</sub>"
    )
    return "\n".join(lines) + "\n"


def _verdict(gate: Mapping[str, Any]) -> str:
    checks = gate.get("checks", [])
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return f"**Gate: ✅ passed** ({count(len(checks), 'check')})"
    names = ", ".join(f"`{c['name']}`" for c in failed)
    return f"**Gate: ❌ failed**: {len(failed)} of {len(checks)} checks failed: {names}"


def _metrics_section(r: PullRequestReport) -> list[str]:
    if not r.metrics:
        return []
    rows = f", {count(r.rows, 'row')}" if r.rows else ""
    out = [
        f"### Metrics on `{r.dataset}`{rows}",
        "",
        "Each value with its 95% bootstrap interval; a change in **bold** is larger than the "
        "sampling noise of either side (the intervals do not overlap).",
        "",
    ]
    side = r.champion or r.against
    out += [f"| metric | candidate | {side} | change |", "|---|---|---|---|"]
    for m in r.metrics:
        arrow = "↓" if m.metric in LOWER_IS_BETTER else "↑"
        change = ""
        if m.delta is not None:
            mark = "" if m.better is None or not round(m.delta, 4) else _mark(m.better)
            change = f"{m.delta:+.4f}{mark}"
            if m.clear:
                change = f"**{change}**"
        out.append(
            f"| {m.metric} {arrow} | {_interval(m.candidate, m.candidate_low, m.candidate_high)}"
            f" | {_interval(m.champion, m.champion_low, m.champion_high)} | {change} |"
        )
    return [*out, ""]


def _fairness_section(r: PullRequestReport) -> list[str]:
    if not r.fairness:
        return []
    side = r.champion or r.against
    out = [
        "### Fairness",
        "",
        f"| column | measure | candidate | {side} | change |",
        "|---|---|---|---|---|",
    ]
    for f in r.fairness:
        change = ""
        if f.delta is not None:
            mark = "" if f.fairer is None or not round(f.delta, 4) else _mark(f.fairer)
            change = f"{f.delta:+.4f}{mark}"
        out.append(
            f"| {f.column} | {f.measure} | {_num(f.candidate)} | {_num(f.champion)} | {change} |"
        )
    return [*out, ""]


def _gate_section(r: PullRequestReport) -> list[str]:
    out = [
        f"### Gate: `shipyard check {r.candidate} --for {r.against}`",
        "",
        "| | check | detail |",
        "|---|---|---|",
    ]
    for c in r.gate.get("checks", []):
        mark = "✅" if c["passed"] else "❌"
        out.append(f"| {mark} | {_cell(c['name'])} | {_cell(c['detail'])} |")
    return [*out, ""]


def _training_section(r: PullRequestReport) -> list[str]:
    out = ["### Training data", ""]
    out.append(f"- candidate: {', '.join(f'`{t}`' for t in r.training) or 'not recorded'}")
    if r.champion:
        out.append(
            f"- {r.champion}: {', '.join(f'`{t}`' for t in r.champion_training) or 'not recorded'}"
        )
    contracts = [c for c in r.gate.get("checks", []) if c["name"].startswith(_CONTRACT_CHECK)]
    for c in contracts:
        mark = "✅" if c["passed"] else "❌"
        dataset = c["name"][len(_CONTRACT_CHECK) :]
        out.append(f"- contract of `{dataset}`: {mark} {_cell(c['detail'])}")
    if not contracts:
        out.append("- contract: no training data recorded, nothing checked")
    return [*out, ""]


def _drift_section(r: PullRequestReport) -> list[str]:
    out = ["### Drift of the training data", ""]
    d = r.drift
    if d is None:
        return [*out, _cell(r.drift_note) or "not compared", ""]
    badge = {"drift": "⚠️ drift", "no drift": "✅ no drift"}.get(d.verdict, d.verdict)
    out += [
        f"`{d.current}` ({count(d.current_rows, 'row')}) against `{d.reference}` "
        f"({count(d.reference_rows, 'row')}): **{badge}**, {d.share:.0%} of the columns drifted "
        f"(threshold {d.share_threshold:.0%}).",
        "",
        "| column | method | statistic | threshold | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in d.columns[:_DRIFT_ROWS]:
        out.append(
            f"| {c.column} | {c.method} | {_num(c.statistic)} | {_num(c.threshold)} | {c.verdict} |"
        )
    if len(d.columns) > _DRIFT_ROWS:
        out.append(f"| … {len(d.columns) - _DRIFT_ROWS} more | | | | |")
    if d.missing_columns:
        out += ["", f"Not in the candidate's training data: {', '.join(d.missing_columns)}."]
    return [*out, ""]


def _mark(good: bool) -> str:
    return " 🟢" if good else " 🔴"


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "–"
    if low is None or high is None:
        return f"{value:.4f}"
    return f"{value:.4f} ({low:.4f}–{high:.4f})"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
