"""What a server serves and how it follows it: the deployment, each alias's holder, and only
versions that may serve.

At start-up :func:`check_servable` reads the deployment (or, for ``serve NAME@ALIAS``, the one
route to that protected alias) and the holder of every alias it routes to or shadows; any
holder that may not serve (:meth:`Deployments.servable`: not approved, rejected, archived) or
an alias with no holder stops the server before it listens, with every reason. Then
:func:`follow` re-reads both every round: a new or re-weighted route, a new shadow, an alias
that moved to a servable version are taken up; an alias that moved to a version that may not
serve keeps the version it had (an alias new to the deployment is not added), which is logged
once and counted in ``shipyard_refused_versions_total``; a served version that is rejected is
withdrawn. A round that fails changes nothing and is counted in
``shipyard_refresh_errors_total``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.errors import CheckFailedError, InvalidInputError
from shipyard.governance.deployments import Deployment, Holder
from shipyard.registry.compiled import CompiledModel, compile_predictor
from shipyard.registry.row_checks import RowChecks
from shipyard.serving.failures import describe
from shipyard.serving.features import FeatureLookup, feature_lookup
from shipyard.serving.routing import Plan

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.registry.signatures import CheckedPredictor
    from shipyard.serving.app import ServeConfig, State
    from shipyard.serving.batching import Batcher

__all__ = ["Slot", "check_servable", "follow", "load_slot", "target"]

log = logging.getLogger("shipyard.serving")

# Seconds a replaced version's batcher keeps running, so requests queued on it finish.
RETIRE_SECONDS = 30.0


@dataclass
class Slot:
    """One version being served for an alias: its loaded predictor (and its compiled form,
    when the pipeline compiles) and the checks each request row passes first, the same as on
    every scoring path (:meth:`Models.row_checks <shipyard.registry.models.Models.
    row_checks>`: signature, training data's contracts, missing values the pipeline cannot
    take)."""

    alias: str
    version: int
    ref: str
    predictor: CheckedPredictor
    checks: RowChecks = field(default_factory=RowChecks)
    compiled: CompiledModel | None = None
    scoring: str = "scikit-learn"  # how requests are scored, for people reading the log
    batcher: Batcher | None = None
    # The signature columns looked up in the online store (:mod:`shipyard.serving.features`).
    features: FeatureLookup | None = None
    label: str = field(init=False)  # the version as a metric label

    def __post_init__(self) -> None:
        self.label = str(self.version)


def target(project: Project, config: ServeConfig) -> Deployment:
    """What ``config`` serves: the deployment ``config.deployment``
    (:meth:`Deployments.effective`), or, with ``config.alias``, that alias of the model
    alone, taking all traffic.

    Raises:
        NotFoundError: no deployment or model has that name.
    """
    if config.alias is None:
        return project.deployments.effective(config.deployment)
    routes = {config.alias: 100}
    return Deployment(config.deployment, config.deployment, routes, None, 0, stored=False)


def check_servable(project: Project, config: ServeConfig) -> tuple[Deployment, dict[str, Holder]]:
    """The deployment ``config`` serves and the holder of each of its aliases, every one of
    which may serve. ``shipyard serve`` calls this before it listens, and every server
    before it loads a model.

    Raises:
        NotFoundError: no deployment or model has that name.
        InvalidInputError: ``NAME@ALIAS`` names an alias that is not protected (a contributor
            could move it); the message says how an approver routes traffic to it.
        CheckFailedError: an alias has no holder, or its holder may not serve; every reason
            is in the message and in ``details["aliases"]`` (exit 3).
    """
    if config.alias is not None:
        model = config.deployment
        if config.alias not in project.deployments.protected(model):
            raise InvalidInputError(
                f"{model}@{config.alias} cannot be served: '{config.alias}' is not a protected "
                f"alias of {model}, so a contributor could move it to any version. An "
                f"approver routes traffic to it with `shipyard deployments set {model} --route "
                f"{config.alias}=100`; then serve the deployment with `shipyard serve {model}`",
                details={"model": model, "alias": config.alias},
            )
    deployment = target(project, config)
    found = project.deployments.holders(deployment)
    refused = [h for h in found.values() if h.reasons]
    if refused:
        raise CheckFailedError(
            f"{deployment.name} cannot be served: "
            + "; ".join(f"{h.alias}: {', '.join(h.reasons)}" for h in refused),
            details={
                "deployment": deployment.name,
                "aliases": [
                    {"alias": h.alias, "model": h.ref, "reasons": list(h.reasons)}
                    for h in found.values()
                ],
            },
        )
    return deployment, found


def load_slot(project: Project, alias: str, ref: str) -> Slot:
    """Load the version ``ref`` to serve for ``alias``: its predictor, its compiled form
    (checked against scikit-learn on rows of its own training data), and its row checks
    (:meth:`Models.row_checks <shipyard.registry.models.Models.row_checks>`)."""
    mv = project.models.get(ref)
    predictor = project.models.load(mv.ref)
    rows = project.models.reference_rows(mv.ref) if predictor.signature else []
    compiled, scoring = compile_predictor(predictor, rows=rows or None)
    checks = project.models.row_checks(mv.ref, predictor, rows)
    features = None
    if predictor.signature is not None:
        features = feature_lookup(project, mv, checks.columns, checks.no_nulls)
    return Slot(alias, mv.version, mv.ref, predictor, checks, compiled, scoring, features=features)


def announce(slot: Slot) -> None:
    """Say how a loaded version answers: compiled arithmetic or scikit-learn, and why."""
    no_nulls = slot.checks.no_nulls
    extra = f"; refuses a missing {', '.join(no_nulls)}" if no_nulls else ""
    if slot.features is not None:
        extra += f"; looks up {slot.features.describe()}"
    print(f"shipyard serve: {slot.alias} is {slot.ref}, {slot.scoring}{extra}", file=sys.stderr)


# -- following --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """One round's reading: the deployment, each alias's holder, and why each loaded version
    that is no longer its alias's holder may not serve (so it is not kept)."""

    deployment: Deployment
    holders: dict[str, Holder]
    loaded: dict[str, tuple[str, ...]]


def observe(project: Project, config: ServeConfig, loaded: Mapping[str, Slot]) -> Observed:
    """Read the deployment and the holders (database reads: run in a thread)."""
    deployment = target(project, config)
    found = project.deployments.holders(deployment)
    kept = {}
    for alias, holder in found.items():
        slot = loaded.get(alias)
        if slot is not None and slot.version != holder.version:
            kept[alias] = tuple(project.deployments.servable(slot.ref))
    return Observed(deployment, found, kept)


async def follow(state: State) -> None:
    """Every ``reload_seconds``, follow the deployment (:func:`refresh`); about every 10
    seconds also refresh the accuracy gauge. Runs until cancelled."""
    from shipyard.serving.routes import refresh_accuracy

    config = state.config
    rounds = 0
    while True:
        await asyncio.sleep(config.reload_seconds)
        rounds += 1
        if rounds * config.reload_seconds >= 10:
            rounds = 0
            await asyncio.to_thread(refresh_accuracy, state)
        try:
            await refresh(state)
        except Exception as exc:  # keep serving what is loaded; try again next round
            refresh_failed(state, "aliases", f"cannot follow deployment {config.deployment!r}", exc)


async def refresh(state: State) -> None:
    """One round: read the deployment and holders, load what moved to a servable version,
    keep the previous version where an alias moved to one that may not serve, and swap in
    the new plan. Requests in flight keep the plan they started with."""
    loaded = state.loaded
    observed = await asyncio.to_thread(observe, state.project, state.config, dict(loaded))
    serving: dict[str, Slot] = {}
    refusals: dict[tuple[str, str], Refusal] = {}
    for alias, holder in observed.holders.items():
        slot = loaded.get(alias)
        if holder.version is not None and not holder.reasons:
            if slot is None or slot.version != holder.version:
                assert holder.ref is not None
                try:
                    new = await asyncio.to_thread(load_slot, state.project, alias, holder.ref)
                except Exception as exc:  # a version that does not load: keep the old one
                    refresh_failed(state, "aliases", f"cannot load {holder.ref} for {alias}", exc)
                    if slot is not None and not observed.loaded.get(alias):
                        serving[alias] = slot
                    continue
                announce(new)
                if slot is not None:
                    retire(slot)
                loaded[alias] = slot = new
            serving[alias] = slot
            continue
        version = "none" if holder.version is None else str(holder.version)
        if slot is None:
            action = f"does not add {alias}"
        elif slot.version == holder.version:
            action = f"stops serving it for {alias}"  # the served version may no longer serve
        elif observed.loaded.get(alias):
            action = f"serves nothing for {alias}"
            refusals[(alias, slot.label)] = Refusal(slot.ref, observed.loaded[alias], action)
        else:
            action = f"keeps {slot.ref} for {alias}"
            serving[alias] = slot
        what = holder.ref or f"{observed.deployment.model}@{alias}"
        refusals[(alias, version)] = Refusal(what, holder.reasons, action)
    for alias in set(loaded) - set(observed.holders):
        retire(loaded.pop(alias))
    report_refusals(state, refusals)
    plan = Plan.of(observed.deployment, serving)
    if plan.describe() != state.plan.describe():
        print(f"shipyard serve: now {plan.describe()}", file=sys.stderr)
    state.plan = plan


@dataclass(frozen=True)
class Refusal:
    """A version an alias points at that may not serve, why, and what the server does."""

    ref: str
    reasons: tuple[str, ...]
    action: str


def report_refusals(state: State, refusals: dict[tuple[str, str], Refusal]) -> None:
    """Log and count each refused (alias, version) once, when first seen; one that clears
    and comes back is reported again."""
    name = state.config.deployment
    for (alias, version), refusal in refusals.items():
        if (alias, version) not in state.refusals:
            state.metrics.refused.labels(name, alias, version).inc()
            log.warning(
                "shipyard serve: %s: %s may not serve (%s); the server %s",
                name,
                refusal.ref,
                "; ".join(refusal.reasons),
                refusal.action,
            )
    state.refusals = set(refusals)


def retire(slot: Slot) -> None:
    """Stop a replaced version's batcher once the requests queued on it have finished."""
    if slot.batcher is not None:
        asyncio.get_running_loop().call_later(RETIRE_SECONDS, slot.batcher.task.cancel)


def refresh_failed(state: State, refresh: str, what: str, exc: BaseException) -> None:
    state.metrics.refresh_errors.labels(state.config.deployment, refresh).inc()
    log.warning("shipyard serve: %s; will try again: %s", what, describe(exc))
