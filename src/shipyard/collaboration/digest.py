"""The team digest: what changed in a project since a given time, short enough to read in a
minute at the team's regular sync-up.

``project.digests.get(since="7d")`` reads the audit log and the services (nothing is written)
and returns a :class:`Digest`; :mod:`shipyard.collaboration.digest_render` turns it into
Markdown, HTML or a Slack message (``{"text", "blocks"}``), which is what posting it to a
webhook sends.

Sections: new dataset versions and failed validations, runs with the best value of each
experiment's primary metric (see :func:`primary_metric` for how it is chosen), models
registered, approvals waiting (candidates nobody has decided on, whenever they were
registered), promotions and rollbacks, alerts, and comments that mention people. Alerts and
mentions come from services other parts of shipyard provide; until a project wires them,
their sections are ``None`` ("not available") rather than empty.

>>> digest = project.digests.get(since="7d")        # doctest: +SKIP
>>> digest.counts["dataset_versions"]               # doctest: +SKIP
3
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.collaboration.comments import Comments
    from shipyard.context import ServiceContext
    from shipyard.governance.approvals import Approvals
    from shipyard.governance.audit import AuditLog
    from shipyard.registry.models import Models
    from shipyard.tracking.runs import RunInfo, Runs

__all__ = [
    "Alert",
    "AliasMove",
    "DatasetChange",
    "Digest",
    "Digests",
    "ExperimentBest",
    "FailedValidation",
    "Mention",
    "ModelRegistered",
    "PendingApproval",
    "parse_since",
    "primary_metric",
]

#: Metrics tried in this order when an experiment does not name its primary metric.
PREFERRED_METRICS = (
    "roc_auc",
    "auc",
    "average_precision",
    "f1",
    "accuracy",
    "r2",
    "rmse",
    "mae",
    "log_loss",
    "loss",
)
#: A metric whose name contains one of these is better when lower.
LOWER_IS_BETTER = re.compile(r"loss|error|rmse|mse|mae|mape|brier|deviance|perplexity|latency")
#: The run tags through which an experiment names its primary metric and goal.
PRIMARY_METRIC_TAG = "primary_metric"
PRIMARY_GOAL_TAG = "primary_metric_goal"


@dataclass(frozen=True)
class DatasetChange(ReadModel):
    """A dataset version added in the window; ``deleted`` says whether it has been deleted
    since (``"deleted"``, or ``"purged"`` when its content is gone too), ``None`` if not."""

    ref: str
    time: datetime
    actor: str
    rows: int | None
    status: str
    message: str
    deleted: str | None = None


@dataclass(frozen=True)
class FailedValidation(ReadModel):
    """A table version that failed its contract in the window: at ingestion (``how``
    ``ingest``) or when validated later (``validate``, with the number of failing checks)."""

    ref: str
    contract: str | None
    how: str
    time: datetime
    actor: str
    failures: int | None = None


@dataclass(frozen=True)
class ExperimentBest(ReadModel):
    """An experiment's runs started in the window, and the best of them on its primary
    ``metric`` (``goal`` ``max`` or ``min``; ``chosen_by`` says how the metric was picked).
    ``metric`` is None when none of the runs logged a metric."""

    experiment: str
    runs: int
    finished: int
    failed: int
    metric: str | None
    goal: str | None
    chosen_by: str
    best_run: str | None = None
    best_run_name: str | None = None
    best_value: float | None = None
    by: str | None = None


@dataclass(frozen=True)
class ModelRegistered(ReadModel):
    """A model version registered in the window."""

    ref: str
    time: datetime
    actor: str
    run_id: str | None


@dataclass(frozen=True)
class PendingApproval(ReadModel):
    """A candidate version no approver has decided on yet."""

    ref: str
    registered_at: datetime
    registered_by: str


@dataclass(frozen=True)
class AliasMove(ReadModel):
    """A promotion or rollback of a protected alias in the window."""

    model: str
    alias: str
    kind: str  # "promote" or "rollback"
    from_version: int | None
    to_version: int
    actor: str
    time: datetime
    comment: str


@dataclass(frozen=True)
class Alert(ReadModel):
    """An alert raised in the window (by a monitor)."""

    name: str
    severity: str
    entity: str
    message: str
    time: datetime


@dataclass(frozen=True)
class Mention(ReadModel):
    """A comment in the window that mentions people."""

    entity: str
    author: str
    mentioned: list[str]
    excerpt: str
    time: datetime


# A source may answer None: "not available" (e.g. a project with no monitor yet).
AlertSource = Callable[[datetime], Sequence[Alert] | None]
MentionSource = Callable[[datetime], Sequence[Mention]]


def comment_mentions(comments: Comments) -> MentionSource:
    """The digest's source of mentions: comments written or edited in the window that name
    people (:meth:`Comments.mentioning`), with the first line of their text."""

    def mentions(since: datetime) -> list[Mention]:
        return [
            Mention(
                entity=c.on,
                author=c.author,
                mentioned=list(c.mentions),
                excerpt=_excerpt(c.text),
                time=c.edited_at or c.created_at,
            )
            for c in comments.mentioning(since)
        ]

    return mentions


def _excerpt(text: str, limit: int = 140) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


@dataclass(frozen=True)
class Digest(ReadModel):
    """What changed in ``project`` from ``since`` to ``until``. ``alerts`` and ``mentions``
    are None when the project has no source for them (not available, as opposed to none)."""

    project: str
    since: datetime
    until: datetime
    dataset_versions: list[DatasetChange]
    failed_validations: list[FailedValidation]
    experiments: list[ExperimentBest]
    models_registered: list[ModelRegistered]
    approvals_waiting: list[PendingApproval]
    promotions: list[AliasMove]
    alerts: list[Alert] | None = None
    mentions: list[Mention] | None = None

    json_properties = ("counts",)

    @property
    def counts(self) -> dict[str, int | None]:
        """How many items each section holds (None: not available)."""
        return {
            "dataset_versions": len(self.dataset_versions),
            "failed_validations": len(self.failed_validations),
            "runs": sum(e.runs for e in self.experiments),
            "experiments": len(self.experiments),
            "models_registered": len(self.models_registered),
            "approvals_waiting": len(self.approvals_waiting),
            "promotions": sum(1 for m in self.promotions if m.kind == "promote"),
            "rollbacks": sum(1 for m in self.promotions if m.kind == "rollback"),
            "alerts": None if self.alerts is None else len(self.alerts),
            "mentions": None if self.mentions is None else len(self.mentions),
        }

    @property
    def empty(self) -> bool:
        """Whether nothing happened and nothing waits."""
        return not any(self.counts.values())


class Digests:
    """Service for the team digest: ``get`` what changed since a time."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        audit: AuditLog,
        runs: Runs,
        models: Models,
        approvals: Approvals,
        alerts: AlertSource | None = None,
        mentions: MentionSource | None = None,
    ) -> None:
        self._ctx = ctx
        self._audit = audit
        self._runs = runs
        self._models = models
        self._approvals = approvals
        # Alerts come from monitoring and mentions from comments: each is a function from the
        # window's start to what happened since, wired in project.py when that service exists.
        self._alerts = alerts
        self._mentions = mentions

    def get(self, since: str | datetime | timedelta = "7d") -> Digest:
        """The digest of everything since ``since``: a duration before now (``"7d"``,
        ``"12h"``, ``"30m"``, ``"2w"``, or a ``timedelta``), or a time (an ISO 8601 date or
        date-time, UTC unless it says otherwise, or a ``datetime``).

        >>> project.digests.get("1d").counts["models_registered"]   # doctest: +SKIP
        2

        Raises:
            InvalidInputError: ``since`` cannot be read, or is in the future.
        """
        until = datetime.now(UTC)
        start = parse_since(since, now=until)
        events = self._audit.list(
            since=start,
            actions=(
                "dataset.add",
                "dataset.validate",
                "model.register",
                "model.alias.promote",
                "model.alias.rollback",
            ),
        )
        datasets: builtins.list[DatasetChange] = []
        failed: builtins.list[FailedValidation] = []
        registered: builtins.list[ModelRegistered] = []
        moves: builtins.list[AliasMove] = []
        for e in events:
            at = datetime.fromisoformat(e.time)
            p = e.payload
            if e.action == "dataset.add":
                status = str(p.get("status") or "unvalidated")
                datasets.append(
                    DatasetChange(
                        e.entity, at, e.actor, p.get("rows"), status, p.get("message", "")
                    )
                )
                if status == "invalid":
                    failed.append(
                        FailedValidation(e.entity, p.get("contract"), "ingest", at, e.actor)
                    )
            elif e.action == "dataset.validate" and p.get("passed") is False:
                failed.append(
                    FailedValidation(
                        e.entity, p.get("contract"), "validate", at, e.actor, p.get("failures")
                    )
                )
            elif e.action == "model.register":
                registered.append(ModelRegistered(e.entity, at, e.actor, p.get("run_id")))
            elif e.action.startswith("model.alias."):
                moves.append(
                    AliasMove(
                        e.entity.partition("@")[0],
                        str(p.get("alias")),
                        e.action.rsplit(".", 1)[1],
                        p.get("from"),
                        int(p.get("to") or e.entity.partition("@")[2]),
                        e.actor,
                        at,
                        str(p.get("comment") or ""),
                    )
                )
        gone = self._deleted([d.ref for d in datasets])
        datasets = [replace(d, deleted=gone[d.ref]) if d.ref in gone else d for d in datasets]
        return Digest(
            self._ctx.settings.name,
            start,
            until,
            datasets,
            failed,
            self._experiments(start),
            registered,
            self._waiting(),
            moves,
            self._alerts_since(start),
            None if self._mentions is None else list(self._mentions(start)),
        )

    def _deleted(self, refs: builtins.list[str]) -> dict[str, str]:
        """Of the dataset versions ``refs``, those deleted since: ``"deleted"`` or
        ``"purged"``. A reader of the digest must not take them for data to use."""
        from sqlalchemy import select

        from shipyard.stores.db.tables import dataset_versions, datasets

        names = sorted({r.rpartition("@")[0] for r in refs})
        if not names:
            return {}
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(datasets.c.name, dataset_versions.c.version, dataset_versions.c.purged_at)
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(datasets.c.name.in_(names))
                .where(dataset_versions.c.deleted_at.is_not(None))
            ).all()
        return {
            f"{r.name}@{r.version}": "purged" if r.purged_at is not None else "deleted"
            for r in rows
        }

    def _alerts_since(self, start: datetime) -> builtins.list[Alert] | None:
        found = None if self._alerts is None else self._alerts(start)
        return None if found is None else list(found)

    def _experiments(self, since: datetime) -> builtins.list[ExperimentBest]:
        ms = int(since.timestamp() * 1000)
        started = self._runs.list(filter=f"attributes.start_time >= {ms}")
        by_experiment: dict[str, builtins.list[RunInfo]] = {}
        for run in started:
            by_experiment.setdefault(run.experiment, []).append(run)
        out = []
        for name, group in sorted(by_experiment.items()):
            group.sort(key=lambda r: (r.start_time, r.id))
            metric, goal, how = primary_metric(group)
            best = None
            if metric is not None:
                scored = [r for r in group if _finite(r.metrics.get(metric))]
                sign = 1 if goal == "max" else -1
                best = max(scored, key=lambda r: sign * r.metrics[metric], default=None)
            out.append(
                ExperimentBest(
                    name,
                    len(group),
                    sum(1 for r in group if r.status == "FINISHED"),
                    sum(1 for r in group if r.status in ("FAILED", "KILLED")),
                    metric,
                    goal,
                    how,
                    best.id if best else None,
                    best.name if best else None,
                    best.metrics[metric] if best and metric else None,
                    best.created_by if best else None,
                )
            )
        return out

    def _waiting(self) -> builtins.list[PendingApproval]:
        out = []
        for m in self._models.list():
            for v in self._models.versions(m.name):
                if v.status == "candidate" and self._approvals.standing(v.ref) == "pending":
                    out.append(PendingApproval(v.ref, v.created_at, v.created_by))
        out.sort(key=lambda p: (p.registered_at, p.ref))
        return out


def primary_metric(runs: Sequence[RunInfo]) -> tuple[str | None, str | None, str]:
    """The metric an experiment's runs are ranked on, its goal (``max``/``min``) and how it
    was chosen, in this order:

    1. the run tag ``primary_metric`` (the value most runs give), with the goal from the tag
       ``primary_metric_goal`` when set;
    2. else the first of :data:`PREFERRED_METRICS` that a run logged (``roc_auc`` before
       ``accuracy``...);
    3. else the metric the most runs logged (ties: by name).

    Unless a tag says so, a metric is minimised when its name says it is a loss or an error
    (:data:`LOWER_IS_BETTER`), else maximised.

    >>> primary_metric([])
    (None, None, 'no metric logged')
    """
    logged: dict[str, int] = {}
    for r in runs:
        for key, value in r.metrics.items():
            if _finite(value):
                logged[key] = logged.get(key, 0) + 1
    tagged: dict[str, int] = {}
    for r in runs:
        name = r.tags.get(PRIMARY_METRIC_TAG)
        if name:
            tagged[name] = tagged.get(name, 0) + 1
    goal_tags = {r.tags.get(PRIMARY_GOAL_TAG) for r in runs} - {None}
    if tagged:
        name = min(tagged, key=lambda k: (-tagged[k], k))
        goal = goal_tags.pop() if len(goal_tags) == 1 and goal_tags <= {"min", "max"} else None
        how = f"run tag {PRIMARY_METRIC_TAG}"
        if goal is not None:
            return name, goal, f"{how} (goal from tag {PRIMARY_GOAL_TAG})"
        return name, _goal(name), how
    if not logged:
        return None, None, "no metric logged"
    for name in PREFERRED_METRICS:
        if name in logged:
            return name, _goal(name), "first of the usual metrics the runs logged"
    name = min(logged, key=lambda k: (-logged[k], k))
    return name, _goal(name), "the metric most runs logged"


def _goal(metric: str) -> str:
    return "min" if LOWER_IS_BETTER.search(metric.lower()) else "max"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and value == value and abs(value) != float("inf")


_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | datetime | timedelta, *, now: datetime) -> datetime:
    """The start of a digest's window (aware, UTC), from a duration before ``now`` or a time.

    Durations are a count and a unit, ``m`` ``h`` ``d`` or ``w``; four units do not warrant a
    parsing library. Times are ISO 8601 (``datetime.fromisoformat``).

    >>> parse_since("2d", now=datetime(2026, 5, 8, tzinfo=UTC)).isoformat()
    '2026-05-06T00:00:00+00:00'

    Raises:
        InvalidInputError: neither a duration nor a time, or a time after ``now``.
    """
    if isinstance(value, timedelta):
        start = now - value
    elif isinstance(value, datetime):
        start = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if match:
            start = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        else:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise InvalidInputError(
                    f"cannot read --since {value!r}: give a duration such as 30m, 12h, 7d or "
                    "2w, or a date such as 2026-05-01"
                ) from None
            start = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    if start > now:
        raise InvalidInputError(f"--since {start.isoformat()} is in the future")
    return start
