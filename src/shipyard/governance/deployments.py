"""Deployments: the governed record of what serves behind a name, and the only thing a model
server reads.

A deployment names a model, its routes (alias → traffic weight) and an optional shadow alias
that scores every request without answering. Every alias a deployment routes to or shadows is
protected (:mod:`shipyard.registry.aliases`): it moves only through promotion or rollback.
Changing a deployment needs an approver, and every alias it names must be held by a version
that is approved (not rejected since) and passes the policy check for that alias, checked
under the write lock as promotion does. Every change is kept: who, when, from what, to what.

Without a stored deployment, a model's deployment is ``production`` taking all traffic.

>>> project.deployments.set("credit-risk", {"production": 90, "challenger": 10})  # doctest: +SKIP
>>> [c.to_routes for c in project.deployments.history("credit-risk")]            # doctest: +SKIP
[{'production': 90, 'challenger': 10}]
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import CheckFailedError, InvalidInputError, NotFoundError
from shipyard.refs import validate_name
from shipyard.registry.aliases import check_alias, protected_aliases
from shipyard.registry.versions import find_model_id
from shipyard.stores.db.tables import deployment_events, deployments, registered_models

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shipyard.context import ServiceContext
    from shipyard.governance.approvals import Approvals
    from shipyard.governance.promotion import Promotions
    from shipyard.governance.training_contract import CheckedNow
    from shipyard.registry.models import Models

__all__ = [
    "DEFAULT_ROUTES",
    "MAX_ROUTES",
    "Deployment",
    "DeploymentChange",
    "DeploymentStatus",
    "Deployments",
    "Holder",
]

#: The deployment of a model that has none stored: production takes all traffic.
DEFAULT_ROUTES: dict[str, int] = {"production": 100}
MAX_ROUTES = 10
MAX_WEIGHT = 1_000_000


@dataclass(frozen=True)
class Deployment(ReadModel):
    """What serves behind ``name``: ``model``'s aliases with their traffic weights, and an
    optional shadow alias. ``stored`` is False for a model's default deployment (production
    takes all traffic), which has ``version`` 0."""

    name: str
    model: str
    routes: dict[str, int]
    shadow: str | None
    version: int
    stored: bool
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def aliases(self) -> list[str]:
        """Every alias it serves or shadows, routes first."""
        return [*self.routes, *([self.shadow] if self.shadow else [])]


@dataclass(frozen=True)
class Holder(ReadModel):
    """Where ``alias`` points (``version`` and ``ref`` None when it points nowhere) and why
    that version may not serve (empty when it may)."""

    alias: str
    version: int | None
    ref: str | None
    reasons: tuple[str, ...]

    json_properties = ("servable",)

    @property
    def servable(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class DeploymentStatus(ReadModel):
    """A deployment (its fields written at the top level) and, in ``serving``, the holder of
    each alias it routes to or shadows, with whether that version may serve."""

    deployment: Deployment = field(metadata={"json": "flatten"})
    serving: list[Holder]


@dataclass(frozen=True)
class DeploymentChange(ReadModel):
    """One change of a deployment."""

    deployment: str
    version: int
    from_routes: dict[str, int] | None
    to_routes: dict[str, int]
    from_shadow: str | None
    to_shadow: str | None
    actor: str
    time: datetime
    comment: str


class Deployments:
    """Service for deployments: ``set``, ``get``, ``list``, plus ``history``, ``effective``,
    ``servable`` and ``protected``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        models: Models,
        approvals: Approvals,
        promotions: Promotions,
    ) -> None:
        self._ctx = ctx
        self._models = models
        self._approvals = approvals
        self._promotions = promotions

    def set(
        self,
        name: str,
        routes: Mapping[str, int],
        *,
        shadow: str | None = None,
        model: str | None = None,
        comment: str = "",
    ) -> Deployment:
        """Create or change the deployment ``name`` (approver) of ``model`` (default: the
        model called ``name``). Setting what is already there changes nothing.

        Raises:
            InvalidInputError: a bad name, alias or weight (all listed).
            NotFoundError: no such model, or an alias with no holder (promote one first).
            CheckFailedError: a holder is not approved, or fails the policy check for its
                alias; ``details["aliases"]`` lists every check (exit 3); nothing changed.
            PermissionDeniedError: the actor is not an approver.
        """
        validate_name(name, "deployment name")
        model = model or name
        routes, shadow = _checked_routes(routes, shadow)
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "approver", "change deployments")
            find_model_id(conn, model)
        aliases = [*routes, *([shadow] if shadow else [])]
        checked_now: CheckedNow = {}
        for alias in aliases:
            holder = self._holder(model, alias)
            checked_now.update(self._promotions.prepare(holder))
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "approver", "change deployments")
            model_id = find_model_id(tx.conn, model)
            results: builtins.list[dict[str, Any]] = []
            for alias in aliases:
                row, result = self._promotions.check_locked(
                    tx, f"{model}@{alias}", alias, checked_now
                )
                ref = f"{row.name}@{row.version}"
                checks = [c.to_dict() for c in result.checks]
                reasons = self._approvals.servable(ref, tx.conn)
                checks.insert(
                    0,
                    {
                        "name": "servable",
                        "passed": not reasons,
                        "detail": "; ".join(reasons) or f"{ref} is approved",
                    },
                )
                results.append(
                    {
                        "alias": alias,
                        "model": ref,
                        "passed": all(c["passed"] for c in checks),
                        "checks": checks,
                    }
                )
            refused = [r for r in results if not r["passed"]]
            if refused:
                raise CheckFailedError(
                    f"deployment {name} refused: "
                    + "; ".join(
                        f"{r['alias']} ({r['model']}): "
                        + ", ".join(
                            f"{c['name']}: {c['detail']}" for c in r["checks"] if not c["passed"]
                        )
                        for r in refused
                    ),
                    details={"deployment": name, "passed": False, "aliases": results},
                )
            current = tx.conn.execute(select(deployments).where(deployments.c.name == name)).first()
            if current is not None and current.model_id != model_id:
                raise InvalidInputError(
                    f"deployment {name} serves another model; a deployment keeps its model"
                )
            if current is not None and (dict(current.routes), current.shadow) == (routes, shadow):
                return self.get(name)
            version = 1 if current is None else int(current.version) + 1
            values = {
                "routes": routes,
                "shadow": shadow,
                "version": version,
                "updated_at": now,
                "updated_by": self._ctx.actor,
            }
            if current is None:
                res = tx.conn.execute(
                    deployments.insert().values(name=name, model_id=model_id, **values)
                )
                deployment_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            else:
                deployment_id = int(current.id)
                tx.conn.execute(
                    update(deployments).where(deployments.c.id == deployment_id).values(**values)
                )
            before_routes = None if current is None else dict(current.routes)
            before_shadow = None if current is None else current.shadow
            tx.conn.execute(
                deployment_events.insert().values(
                    deployment_id=deployment_id,
                    version=version,
                    from_routes=before_routes,
                    to_routes=routes,
                    from_shadow=before_shadow,
                    to_shadow=shadow,
                    actor=self._ctx.actor,
                    time=now,
                    comment=comment,
                )
            )
            tx.record(
                "deployment.set",
                "deployment",
                name,
                {
                    "model": model,
                    "version": version,
                    "routes": routes,
                    "shadow": shadow,
                    "from_routes": before_routes,
                    "from_shadow": before_shadow,
                    "comment": comment,
                    "holders": {r["alias"]: r["model"] for r in results},
                },
            )
        return self.get(name)

    def get(self, name: str) -> Deployment:
        """The stored deployment ``name``.

        Raises:
            NotFoundError: there is none.
        """
        with self._ctx.db.read() as conn:
            row = _select(conn, name)
        if row is None:
            raise NotFoundError(
                f"no deployment '{name}'; an approver creates one with `shipyard deployments "
                f"set {name} --route production=100`",
            )
        return _deployment(row)

    def list(self) -> builtins.list[Deployment]:
        """Every stored deployment, by name."""
        with self._ctx.db.read() as conn:
            rows = conn.execute(_query().order_by(deployments.c.name)).all()
        return [_deployment(r) for r in rows]

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        """Every change of the deployment, oldest first.

        Raises:
            NotFoundError: there is no such deployment.
        """
        deployment = self.get(name)
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(deployment_events)
                .join(deployments, deployments.c.id == deployment_events.c.deployment_id)
                .where(deployments.c.name == deployment.name)
                .order_by(deployment_events.c.version)
            ).all()
        return [
            DeploymentChange(
                name,
                int(r.version),
                None if r.from_routes is None else dict(r.from_routes),
                dict(r.to_routes),
                r.from_shadow,
                r.to_shadow,
                r.actor,
                r.time,
                r.comment,
            )
            for r in rows
        ]

    def effective(self, name: str) -> Deployment:
        """The deployment a server for ``name`` serves: the stored one, else the default
        deployment of the model ``name`` (production takes all traffic).

        Raises:
            NotFoundError: neither a deployment nor a model has that name.
        """
        with self._ctx.db.read() as conn:
            row = _select(conn, name)
            if row is not None:
                return _deployment(row)
            find_model_id(conn, name)
        return Deployment(name, name, dict(DEFAULT_ROUTES), None, 0, stored=False)

    def show(self, name: str) -> DeploymentStatus:
        """What serves behind ``name`` now: :meth:`effective` with :meth:`holders`.

        Raises:
            NotFoundError: neither a deployment nor a model has that name.
        """
        deployment = self.effective(name)
        return DeploymentStatus(deployment, builtins.list(self.holders(deployment).values()))

    def holders(self, deployment: Deployment) -> dict[str, Holder]:
        """The holder of every alias ``deployment`` routes to or shadows, with the reasons it
        may not serve (:meth:`servable`)."""
        found = {}
        for alias in deployment.aliases:
            try:
                mv = self._models.get(f"{deployment.model}@{alias}")
            except NotFoundError:
                reason = (
                    f"{deployment.model} has no alias '{alias}': an approver promotes a version "
                    f"to it with `shipyard models promote {deployment.model}@N --to {alias}`"
                )
                found[alias] = Holder(alias, None, None, (reason,))
                continue
            found[alias] = Holder(alias, mv.version, mv.ref, tuple(self.servable(mv.ref)))
        return found

    def servable(self, ref: str) -> builtins.list[str]:
        """Why the version ``ref`` may not take or shadow traffic; empty when it may
        (:meth:`Approvals.servable <shipyard.governance.approvals.Approvals.servable>`)."""
        return self._approvals.servable(ref)

    def protected(self, model: str) -> frozenset[str]:
        """The aliases of ``model`` that only promotion and rollback move."""
        with self._ctx.db.read() as conn:
            return protected_aliases(conn, find_model_id(conn, model))

    def _holder(self, model: str, alias: str) -> str:
        try:
            return self._models.get(f"{model}@{alias}").ref
        except NotFoundError:
            raise NotFoundError(
                f"model '{model}' has no alias '{alias}': promote a version to it first with "
                f"`shipyard models promote {model}@N --to {alias}`",
                details={"model": model, "alias": alias},
            ) from None


def _checked_routes(
    routes: Mapping[str, int], shadow: str | None
) -> tuple[dict[str, int], str | None]:
    problems: builtins.list[str] = []
    if not isinstance(routes, Mapping) or not routes:
        raise InvalidInputError("a deployment needs at least one route, e.g. production=100")
    if len(routes) > MAX_ROUTES:
        problems.append(f"at most {MAX_ROUTES} routes, got {len(routes)}")
    out: dict[str, int] = {}
    for alias, weight in routes.items():
        try:
            check_alias(alias)
        except InvalidInputError as exc:
            problems.append(exc.message)
            continue
        if not isinstance(weight, int) or isinstance(weight, bool):
            problems.append(f"route {alias}: the weight must be a whole number, got {weight!r}")
        elif not 0 <= weight <= MAX_WEIGHT:
            problems.append(f"route {alias}: the weight must be 0 to {MAX_WEIGHT:,}, got {weight}")
        else:
            out[alias] = weight
    if out and not any(out.values()):
        problems.append("at least one route needs a weight above 0")
    if shadow is not None:
        try:
            check_alias(shadow)
        except InvalidInputError as exc:
            problems.append(exc.message)
        if shadow in routes:
            problems.append(f"{shadow} is a route already; a shadow scores beside the routes")
    if problems:
        raise InvalidInputError.from_problems("the deployment", problems)
    return out, shadow


def _query() -> Any:
    return select(deployments, registered_models.c.name.label("model")).join(
        registered_models, registered_models.c.id == deployments.c.model_id
    )


def _select(conn: Connection, name: str) -> Any:
    return conn.execute(_query().where(deployments.c.name == name)).first()


def _deployment(row: Any) -> Deployment:
    return Deployment(
        row.name,
        row.model,
        dict(row.routes),
        row.shadow,
        int(row.version),
        stored=True,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
