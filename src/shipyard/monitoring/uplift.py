"""KPI uplift: does a business KPI per prediction differ between the routes of a canary, or
between the windows before and after a promotion? The difference of the means, its 95%
confidence interval and the sample sizes; "not enough data" rather than a guess.

**The unit** is one answered prediction of the deployment (shadow scores answered nobody and
never count). Its KPI value is the sum of the KPI events recorded with its request id
(``record_kpi(deployment, "revenue", 12.5, request_id)``); events without a request id are
not joined. A prediction without an event counts as 0 (``missing="zero"``, the default: right
for conversion and revenue, where no event means no sale) or is left out (``missing="skip"``:
right for a KPI measured on some answers only, such as a rating).

**By route** (the default) compares the routes of the deployment as it is now, over the
predictions since its routes last changed (its latest promotion, see below), at most
``window`` back: each route is the version that holds its alias (routes whose aliases hold
the same version form one arm, e.g. ``production+challenger``). The route with the largest
weight is the baseline; every other route is compared with it.

**Around promotion N** compares all the deployment's answers in the window before the Nth
promotion with those in the window after it; each window is at most ``window`` long and stops
at the neighbouring promotions (and now), so each side is one configuration.

**Promotions** of a deployment, numbered 1, 2, … oldest first (-1 is the latest), are the
changes of which version answers any share of its traffic, from two histories:

- a move of an alias that is a route of the deployment with a weight above 0 at that time
  (alias history: ``models promote`` / ``models rollback``), to another version;
- a change of the deployment's routes or weights (deployment history: ``deployments set``);
  a change of the shadow alone is not one.

A deployment named after its model served ``production`` alone before it was stored, so the
moves of ``production`` before then count too.

**The interval**: ``welch`` (default) is Welch's t interval (scipy), which needs no equal
variances and, by the central limit theorem, holds for skewed KPIs once each side has a few
dozen values; it is exact and instant. ``bootstrap`` is a seeded percentile bootstrap of the
difference of means (scipy, 2,000 resamples): no normality assumption, for very skewed KPIs
on small samples, at a cost that grows with the sample. Either way a side with fewer than
``min_samples`` values (30) gives "not enough data", and so does a KPI that does not vary on
either side (every value the same: no interval can be computed).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.stores.db.tables import kpi_events, predictions

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.engine import Connection

    from shipyard.governance.deployments import Deployment, DeploymentChange
    from shipyard.registry.versions import AliasEvent

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CONFIDENCE",
    "DEFAULT_WINDOW",
    "MIN_SAMPLES",
    "Difference",
    "KpiValues",
    "Method",
    "Missing",
    "Promotion",
    "UpliftArm",
    "UpliftComparison",
    "UpliftReport",
    "Verdict",
    "difference_of_means",
    "promotions",
]

Method = Literal["welch", "bootstrap"]
Missing = Literal["zero", "skip"]
Verdict = Literal["higher", "lower", "inconclusive", "not enough data"]
METHODS: tuple[Method, ...] = ("welch", "bootstrap")
MISSING: tuple[Missing, ...] = ("zero", "skip")

#: Values a side needs before its mean is compared.
MIN_SAMPLES = 30
CONFIDENCE = 0.95
#: Seven days, in seconds.
DEFAULT_WINDOW = 7 * 86400.0
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
# Values held in memory at once by the bootstrap (resamples x sample size).
_BOOTSTRAP_CELLS = 4_000_000


@dataclass(frozen=True)
class Difference(ReadModel):
    """``treatment``'s mean minus ``baseline``'s, with its confidence interval and verdict:
    ``higher`` / ``lower`` when the interval excludes 0, ``inconclusive`` when it holds 0,
    ``not enough data`` (``reason`` says why; no figures) otherwise. ``relative`` is the
    difference over the baseline's mean (None when that is 0); ``p_value`` is Welch's."""

    verdict: Verdict
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    relative: float | None
    p_value: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Promotion(ReadModel):
    """A change of which version answers a share of a deployment's traffic: ``kind`` alias
    (an alias move) or deployment (new routes or weights)."""

    number: int
    time: datetime
    kind: Literal["alias", "deployment"]
    description: str
    actor: str


@dataclass(frozen=True)
class UpliftArm(ReadModel):
    """One side of a comparison: a route (``production``, ``challenger``) or a window
    (``before``, ``after``). ``predictions`` answered in it, ``with_kpi`` of them have a KPI
    event; ``n`` values were compared (``predictions`` with missing as zero, ``with_kpi``
    when skipped), with their ``mean`` and standard deviation ``std`` (None below 2)."""

    name: str
    models: tuple[str, ...]
    since: datetime
    until: datetime
    predictions: int
    with_kpi: int
    n: int
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class UpliftComparison(ReadModel):
    """``arm`` against ``baseline``: the :class:`Difference` of their means, written at the
    top level."""

    baseline: str
    arm: str
    verdict: Verdict
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    relative: float | None
    p_value: float | None
    reason: str | None


@dataclass(frozen=True)
class UpliftReport(ReadModel):
    """A KPI compared between routes (``mode`` by-route) or around a promotion. ``arms``
    start with the baseline; ``unassigned`` counts predictions of the period answered by a
    version that held none of the routes compared (e.g. the old version for the moment a
    server takes to reload)."""

    deployment: str
    model: str
    kpi: str
    mode: Literal["by-route", "around-promotion"]
    method: Method
    missing: Missing
    confidence: float
    min_samples: int
    window_seconds: float
    promotion: Promotion | None
    arms: tuple[UpliftArm, ...]
    comparisons: tuple[UpliftComparison, ...]
    unassigned: int


@dataclass(frozen=True)
class KpiValues:
    """The answered predictions of a period, each with its KPI value: the version that
    answered, the time (ms since the epoch), the summed KPI value (NaN without an event)."""

    models: np.ndarray
    times: np.ndarray
    values: np.ndarray


# -- statistics -------------------------------------------------------------------------------


def difference_of_means(
    baseline: Sequence[float] | np.ndarray,
    treatment: Sequence[float] | np.ndarray,
    *,
    method: Method = "welch",
    confidence: float = CONFIDENCE,
    min_samples: int = MIN_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Difference:
    """Mean of ``treatment`` minus mean of ``baseline``, with its ``confidence`` interval:
    Welch's t interval (``welch``) or a seeded percentile bootstrap (``bootstrap``).

    >>> difference_of_means([1.0, 2.0] * 20, [2.0, 3.0] * 20).difference
    1.0

    Raises:
        InvalidInputError: an unknown method, a confidence outside (0, 1), a minimum below 2.
    """
    import numpy as np
    from scipy import stats

    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be between 0 and 1, got {confidence!r}")
    if min_samples < 2:
        raise InvalidInputError(f"min_samples must be 2 or more, got {min_samples!r}")
    base = np.asarray(baseline, dtype=float)
    treat = np.asarray(treatment, dtype=float)
    short = [
        f"{side} has {len(values)} value{'s' if len(values) != 1 else ''}"
        for side, values in (("the baseline", base), ("the other side", treat))
        if len(values) < min_samples
    ]
    if short:
        return _not_enough(f"{' and '.join(short)}; at least {min_samples} are needed per side")
    if np.ptp(base) == 0 and np.ptp(treat) == 0:
        return _not_enough(
            "the KPI does not vary on either side (every value is the same), so no interval "
            "can be computed"
        )
    diff = float(treat.mean() - base.mean())
    p_value: float | None = None
    if method == "welch":
        result = stats.ttest_ind(treat, base, equal_var=False)
        interval = result.confidence_interval(confidence_level=confidence)
        low, high, p_value = float(interval.low), float(interval.high), float(result.pvalue)
    else:
        batch = max(1, _BOOTSTRAP_CELLS // (len(base) + len(treat)))
        boot = stats.bootstrap(
            (treat, base),
            _mean_difference,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            paired=False,
            batch=batch,
            rng=np.random.default_rng(seed),
        )
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    verdict: Verdict = "higher" if low > 0 else "lower" if high < 0 else "inconclusive"
    base_mean = float(base.mean())
    relative = diff / base_mean if base_mean != 0 else None
    return Difference(verdict, diff, low, high, relative, p_value)


def _mean_difference(treat: np.ndarray, base: np.ndarray, axis: int = -1) -> np.ndarray:
    import numpy as np

    return np.asarray(np.mean(treat, axis=axis) - np.mean(base, axis=axis))


def _not_enough(reason: str) -> Difference:
    return Difference("not enough data", None, None, None, None, None, reason)


# -- promotions -------------------------------------------------------------------------------


def promotions(
    deployment: Deployment,
    changes: Sequence[DeploymentChange],
    moves: Sequence[AliasEvent],
) -> list[Promotion]:
    """The promotions of ``deployment``, oldest first, from its ``changes`` (deployment
    history) and the ``moves`` of its model's aliases (alias history); see the module
    docstring for what counts."""
    from shipyard.governance.deployments import DEFAULT_ROUTES, DeploymentChange

    events: list[tuple[datetime, int, DeploymentChange | AliasEvent]] = [
        (c.time, 0, c) for c in changes
    ]
    events += [(m.time, 1, m) for m in moves]
    events.sort(key=lambda e: (_utc(e[0]), e[1]))
    routes: dict[str, int] | None = (
        dict(DEFAULT_ROUTES) if deployment.name == deployment.model else None
    )
    found: list[tuple[datetime, Literal["alias", "deployment"], str, str]] = []
    for when, _, event in events:
        if isinstance(event, DeploymentChange):
            if routes is not None and event.to_routes != routes:
                what = f"routes {_routes_text(routes)} → {_routes_text(event.to_routes)}"
                found.append((when, "deployment", what, event.actor))
            routes = dict(event.to_routes)
        elif routes and routes.get(event.alias, 0) > 0 and event.from_version != event.to_version:
            model = deployment.model
            what = (
                f"{event.alias}: {_version_text(model, event.from_version)} → "
                f"{_version_text(model, event.to_version)} ({event.reason or 'moved'})"
            )
            found.append((when, "alias", what, event.actor))
    return [
        Promotion(i, _utc(when), kind, what, actor)
        for i, (when, kind, what, actor) in enumerate(found, start=1)
    ]


def pick_promotion(deployment: str, found: Sequence[Promotion], number: int) -> Promotion:
    """Promotion ``number`` (1 the oldest, -1 the latest).

    Raises:
        NotFoundError: there is no such promotion; the message lists the latest ones.
    """
    index = number - 1 if number > 0 else len(found) + number
    if number != 0 and 0 <= index < len(found):
        return found[index]
    if not found:
        raise NotFoundError(
            f"deployment '{deployment}' has had no promotion: no alias it routes to has moved "
            "and its routes never changed; compare its routes with --by-route instead"
        )
    shown = "; ".join(
        f"{p.number}: {p.time.isoformat(timespec='seconds')} {p.description}" for p in found[-5:]
    )
    raise NotFoundError(
        f"deployment '{deployment}' has no promotion {number}: it has {len(found)} "
        f"(1 the oldest, -1 the latest); the latest: {shown}",
        details={"promotions": [p.to_dict() for p in found]},
    )


def _routes_text(routes: dict[str, int]) -> str:
    return ",".join(f"{a}={w}" for a, w in routes.items())


def _version_text(model: str, version: int | None) -> str:
    return "nothing" if version is None else f"{model}@{version}"


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def to_ms(when: datetime) -> int:
    return int(_utc(when).timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# -- the data ---------------------------------------------------------------------------------


def kpi_names(conn: Connection, deployment: str) -> list[str]:
    """The KPI names the deployment ever recorded, sorted."""
    query = select(kpi_events.c.name).where(kpi_events.c.deployment == deployment).distinct()
    return sorted(conn.execute(query).scalars())


def kpi_values(
    conn: Connection, deployment: str, kpi: str, since_ms: int, until_ms: int
) -> KpiValues:
    """The predictions the deployment answered from ``since_ms`` to ``until_ms`` (both
    included), each with the sum of its ``kpi`` events (NaN when it has none)."""
    import numpy as np

    per_request = (
        select(kpi_events.c.request_id, func.sum(kpi_events.c.value).label("value"))
        .where(kpi_events.c.deployment == deployment)
        .where(kpi_events.c.name == kpi)
        .where(kpi_events.c.request_id.is_not(None))
        # A KPI event follows its prediction: older events belong to older predictions.
        .where(kpi_events.c.time >= since_ms)
        .group_by(kpi_events.c.request_id)
        .subquery()
    )
    rows = conn.execute(
        select(predictions.c.model, predictions.c.time, per_request.c.value)
        .select_from(
            predictions.outerjoin(per_request, per_request.c.request_id == predictions.c.request_id)
        )
        .where(predictions.c.deployment == deployment)
        .where(predictions.c.time >= since_ms)
        .where(predictions.c.time <= until_ms)
    ).all()
    models, times, values = list(zip(*rows, strict=True)) or [(), (), ()]
    return KpiValues(
        np.asarray(models, dtype=object),
        np.asarray(times, dtype=np.int64),
        np.asarray(values, dtype=float),  # None (no event) becomes NaN
    )


# -- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How a report compares: the KPI and the options of :meth:`Predictions.uplift`."""

    kpi: str
    method: Method
    missing: Missing
    confidence: float
    min_samples: int
    window_seconds: float

    def check(self) -> None:
        """Raises:
        InvalidInputError: every bad option, listed."""
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.missing not in MISSING:
            problems.append(f"missing must be one of {', '.join(MISSING)}, got {self.missing!r}")
        if not 0 < self.confidence < 1:
            problems.append(f"confidence must be between 0 and 1, got {self.confidence!r}")
        if not isinstance(self.min_samples, int) or self.min_samples < 2:
            problems.append(
                f"min_samples must be a whole number of 2 or more, got {self.min_samples!r}"
            )
        if not (math.isfinite(self.window_seconds) and self.window_seconds > 0):
            problems.append(f"the window must be a positive duration, got {self.window_seconds!r}")
        if problems:
            raise InvalidInputError.from_problems("the uplift options", problems)


def arm(
    name: str, data: KpiValues, mask: np.ndarray, since_ms: int, until_ms: int, missing: Missing
) -> tuple[UpliftArm, np.ndarray]:
    """The arm ``name`` of the predictions selected by ``mask``, and its values."""
    import numpy as np

    raw = data.values[mask]
    has = ~np.isnan(raw)
    values = np.where(has, raw, 0.0) if missing == "zero" else raw[has]
    n = len(values)
    summary = UpliftArm(
        name,
        tuple(sorted({str(m) for m in data.models[mask]})),
        from_ms(since_ms),
        from_ms(until_ms),
        int(mask.sum()),
        int(has.sum()),
        n,
        float(values.mean()) if n else None,
        float(values.std(ddof=1)) if n > 1 else None,
    )
    return summary, values


def compare_arms(
    arms: Sequence[tuple[UpliftArm, np.ndarray]], settings: Settings
) -> tuple[UpliftComparison, ...]:
    """Every arm after the first against the first."""
    (base, base_values), rest = arms[0], arms[1:]
    out = []
    for other, values in rest:
        d = difference_of_means(
            base_values,
            values,
            method=settings.method,
            confidence=settings.confidence,
            min_samples=settings.min_samples,
        )
        fields = dataclasses.asdict(d)
        if d.reason is not None:
            fields["reason"] = d.reason.replace("the baseline", base.name).replace(
                "the other side", other.name
            )
        out.append(UpliftComparison(base.name, other.name, **fields))
    return tuple(out)


def route_arms(deployment: Deployment, holders: dict[str, int]) -> list[tuple[str, str]]:
    """The arms of a by-route comparison: ``(arm name, name@version)`` for each version that
    holds a route with a weight above 0, the heaviest route's first; aliases that hold the
    same version are one arm (``production+challenger``)."""
    by_version: dict[int, list[str]] = {}
    weight: dict[int, int] = {}
    for alias, w in deployment.routes.items():
        version = holders.get(alias)
        if w <= 0 or version is None:
            continue
        by_version.setdefault(version, []).append(alias)
        weight[version] = max(weight.get(version, 0), w)
    order = sorted(by_version, key=lambda v: -weight[v])  # stable: routes order on ties
    return [("+".join(by_version[v]), f"{deployment.model}@{v}") for v in order]


def report(
    deployment: Deployment,
    settings: Settings,
    *,
    mode: Literal["by-route", "around-promotion"],
    promotion: Promotion | None,
    arms: Sequence[tuple[UpliftArm, np.ndarray]],
    unassigned: int,
) -> UpliftReport:
    return UpliftReport(
        deployment.name,
        deployment.model,
        settings.kpi,
        mode,
        settings.method,
        settings.missing,
        settings.confidence,
        settings.min_samples,
        settings.window_seconds,
        promotion,
        tuple(a for a, _ in arms),
        compare_arms(arms, settings) if len(arms) > 1 else (),
        unassigned,
    )


def by_route(
    deployment: Deployment,
    settings: Settings,
    found: Sequence[Promotion],
    holders: dict[str, int],
    data_of: Any,
    now_ms: int,
) -> UpliftReport:
    """The by-route report: ``data_of(since_ms, until_ms)`` gives the :class:`KpiValues`."""
    import numpy as np

    since_ms = now_ms - int(settings.window_seconds * 1000)
    if found:
        since_ms = max(since_ms, to_ms(found[-1].time))
    data: KpiValues = data_of(since_ms, now_ms)
    arms = []
    assigned = np.zeros(len(data.models), dtype=bool)
    for name, ref in route_arms(deployment, holders):
        mask = data.models == ref
        assigned |= mask
        arms.append(arm(name, data, mask, since_ms, now_ms, settings.missing))
    if len(arms) < 2:
        raise InvalidInputError(
            f"deployment '{deployment.name}' sends all its traffic to one version "
            f"({', '.join(f'{a}={w}' for a, w in deployment.routes.items())}): there are no "
            "routes to compare; compare before and after a promotion with --around-promotion N"
        )
    return report(
        deployment,
        settings,
        mode="by-route",
        promotion=None,
        arms=arms,
        unassigned=int((~assigned).sum()),
    )


def around_promotion(
    deployment: Deployment,
    settings: Settings,
    found: Sequence[Promotion],
    promotion: Promotion,
    data_of: Any,
    now_ms: int,
) -> UpliftReport:
    """The report before and after ``promotion`` (one of ``found``)."""
    window_ms = int(settings.window_seconds * 1000)
    at = to_ms(promotion.time)
    index = promotion.number - 1
    since = at - window_ms
    if index > 0:
        since = max(since, to_ms(found[index - 1].time))
    until = min(at + window_ms, now_ms)
    if index + 1 < len(found):
        until = min(until, to_ms(found[index + 1].time) - 1)
    data: KpiValues = data_of(since, until)
    before = data.times < at
    arms = [
        arm("before", data, before, since, at, settings.missing),
        arm("after", data, ~before, at, max(at, until), settings.missing),
    ]
    return report(
        deployment,
        settings,
        mode="around-promotion",
        promotion=promotion,
        arms=arms,
        unassigned=0,
    )
