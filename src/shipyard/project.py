"""A shipyard project: the stores opened from its settings, and the services wired on them.

>>> project = open_project(".")               # doctest: +SKIP
>>> project.datasets.list()                   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from sqlalchemy import func, select

from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.config import CONFIG_FILE, STATE_DIR, Settings, current_actor, find_project_root
from shipyard.config import render_config as _render_config
from shipyard.context import ServiceContext
from shipyard.errors import ConflictError
from shipyard.refs import validate_name
from shipyard.stores.artifacts import ArtifactStore
from shipyard.stores.audit import audited
from shipyard.stores.db.engine import Database
from shipyard.stores.db.tables import users

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shipyard.client.project import RemoteProject
    from shipyard.collaboration.comments import Comments
    from shipyard.collaboration.digest import Digests
    from shipyard.collaboration.docs_site import DocsSite
    from shipyard.collaboration.webhooks import Webhooks
    from shipyard.data.contract_registry import Contracts
    from shipyard.data.datasets import Datasets
    from shipyard.data.lock import Locks
    from shipyard.features.service import Features, OnlineRuntime
    from shipyard.governance.access import Users
    from shipyard.governance.approvals import Approvals
    from shipyard.governance.audit import AuditLog
    from shipyard.governance.cards import Cards
    from shipyard.governance.deployments import Deployments
    from shipyard.governance.policy_registry import Policies
    from shipyard.governance.pr_report import PullRequestReports
    from shipyard.governance.promotion import Promotions
    from shipyard.governance.reports import Evaluations
    from shipyard.governance.tokens import Tokens
    from shipyard.monitoring.alerts import Alerts
    from shipyard.monitoring.drift_service import Drift
    from shipyard.monitoring.monitors import Monitors
    from shipyard.pipelines.reproduce import Reproductions
    from shipyard.pipelines.scheduler import Scheduler
    from shipyard.pipelines.service import Pipelines
    from shipyard.registry.mlflow_import import MlflowImports
    from shipyard.registry.mlflow_registry import MlflowRegistry
    from shipyard.registry.models import Models
    from shipyard.serving.predictions import Predictions
    from shipyard.stores.integrity import GarbageReport, StoreReport
    from shipyard.tracking.artifact_tree import ArtifactTree
    from shipyard.tracking.logged_models import LoggedModels
    from shipyard.tracking.runs import ActiveRun, Runs

__all__ = ["Project", "init_project", "open_project"]

T = TypeVar("T")


class _Deferred:
    """Stands in for a service that another one calls only now and then: built (and its
    module imported) on first use. ``runs list`` never touches the feature store, and
    importing it cost more than the listing."""

    __slots__ = ("_build", "_target")

    def __init__(self, build: Callable[[], object]) -> None:
        self._build = build
        self._target: object = None

    def __getattr__(self, name: str) -> Any:
        if self._target is None:
            self._target = self._build()
        return getattr(self._target, name)


def _deferred(build: Callable[[], T]) -> T:
    """A stand-in for the service ``build`` returns, built when first used."""
    return cast(T, _Deferred(build))


class Project:
    """The entry point to every service of one project, acting as one user (``actor``)."""

    def __init__(
        self, settings: Settings, *, actor: str | None = None, token_id: str | None = None
    ) -> None:
        self.settings = settings
        self.actor = actor or current_actor()
        self.token_id = token_id
        self.db = Database(settings.db_url)
        self.artifacts = ArtifactStore(settings.artifacts_uri, settings.artifacts_options)

    def __repr__(self) -> str:
        return f"Project({str(self.settings.root)!r}, actor={self.actor!r})"

    @property
    def root(self) -> Path:
        return self.settings.root

    def as_actor(self, actor: str, *, token_id: str | None = None) -> Project:
        """The same project (same stores) acting as another user (through the API token
        ``token_id``, recorded with each change, on the team server)."""
        other = object.__new__(Project)
        self.feature_runtime  # noqa: B018 -- made here so every actor shares it
        other.__dict__.update(
            {
                k: v
                for k, v in self.__dict__.items()
                if k in ("settings", "db", "artifacts", "feature_runtime")
            }
        )
        other.actor = actor
        other.token_id = token_id
        return other

    @cached_property
    def context(self) -> ServiceContext:
        """The stores and the actor every service of this project works with."""
        return ServiceContext(self.db, self.artifacts, self.settings, self.actor, self.token_id)

    # The services, wired here and nowhere else: each gets the context and, by name, the
    # services it calls.

    @cached_property
    def contracts(self) -> Contracts:
        from shipyard.data.contract_registry import Contracts

        return Contracts(self.context)

    @cached_property
    def datasets(self) -> Datasets:
        from shipyard.data.datasets import Datasets

        return Datasets(self.context, contracts=_deferred(lambda: self.contracts))

    @cached_property
    def locks(self) -> Locks:
        from shipyard.data.lock import Locks

        return Locks(
            self.context, datasets=self.datasets, contracts=self.contracts, models=self.models
        )

    @cached_property
    def feature_runtime(self) -> OnlineRuntime:
        """The online feature store and the online read counts, shared by every actor."""
        from shipyard.features.online import open_online_store
        from shipyard.features.reads import ReadCounter
        from shipyard.features.service import OnlineRuntime

        return OnlineRuntime(lambda: open_online_store(self.settings), ReadCounter(self.db))

    @cached_property
    def features(self) -> Features:
        from shipyard.features.service import Features

        return Features(
            self.context,
            datasets=self.datasets,
            contracts=self.contracts,
            runtime=self.feature_runtime,
        )

    @cached_property
    def models(self) -> Models:
        from shipyard.registry.models import Models

        return Models(
            self.context,
            datasets=_deferred(lambda: self.datasets),
            contracts=_deferred(lambda: self.contracts),
            features=_deferred(lambda: self.features),
        )

    @cached_property
    def mlflow_registry(self) -> MlflowRegistry:
        from shipyard.registry.mlflow_registry import MlflowRegistry

        return MlflowRegistry(self.context, models=self.models, artifact_tree=self.artifact_tree)

    @cached_property
    def mlflow_imports(self) -> MlflowImports:
        from shipyard.registry.mlflow_import import MlflowImports

        return MlflowImports(self.context, models=self.models, artifact_tree=self.artifact_tree)

    @cached_property
    def logged_models(self) -> LoggedModels:
        from shipyard.tracking.logged_models import LoggedModels

        return LoggedModels(self.context)

    @cached_property
    def runs(self) -> Runs:
        from shipyard.tracking.runs import Runs

        return Runs(
            self.context,
            datasets=_deferred(lambda: self.datasets),
            models=_deferred(lambda: self.models),
        )

    @cached_property
    def artifact_tree(self) -> ArtifactTree:
        from shipyard.tracking.artifact_tree import ArtifactTree

        return ArtifactTree(self.context)

    @cached_property
    def evaluations(self) -> Evaluations:
        from shipyard.governance.reports import Evaluations

        return Evaluations(self.context, models=self.models, datasets=self.datasets)

    @cached_property
    def policies(self) -> Policies:
        from shipyard.governance.policy_registry import Policies

        return Policies(self.context)

    @cached_property
    def approvals(self) -> Approvals:
        from shipyard.governance.approvals import Approvals

        return Approvals(self.context)

    @cached_property
    def cards(self) -> Cards:
        from shipyard.governance.cards import Cards

        return Cards(
            self.context,
            models=self.models,
            evaluations=self.evaluations,
            approvals=self.approvals,
        )

    @cached_property
    def promotions(self) -> Promotions:
        from shipyard.governance.promotion import Promotions

        return Promotions(
            self.context,
            models=self.models,
            datasets=self.datasets,
            evaluations=self.evaluations,
            policies=self.policies,
            approvals=self.approvals,
            cards=self.cards,
        )

    @cached_property
    def pr_reports(self) -> PullRequestReports:
        from shipyard.governance.pr_report import PullRequestReports

        return PullRequestReports(models=self.models, promotions=self.promotions, drift=self.drift)

    @cached_property
    def deployments(self) -> Deployments:
        from shipyard.governance.deployments import Deployments

        return Deployments(
            self.context,
            models=self.models,
            approvals=self.approvals,
            promotions=self.promotions,
        )

    @cached_property
    def predictions(self) -> Predictions:
        from shipyard.serving.predictions import Predictions

        return Predictions(self.context, models=self.models, deployments=self.deployments)

    @cached_property
    def drift(self) -> Drift:
        from shipyard.monitoring.drift_service import Drift

        return Drift(
            self.context,
            datasets=self.datasets,
            models=self.models,
            evaluations=self.evaluations,
            deployments=self.deployments,
            predictions=self.predictions,
        )

    @cached_property
    def alerts(self) -> Alerts:
        from shipyard.monitoring.alerts import Alerts

        return Alerts(self.context)

    @cached_property
    def monitors(self) -> Monitors:
        from shipyard.monitoring.monitors import Monitors
        from shipyard.monitoring.performance import estimate_window

        # The estimate without labels re-scores a window with the answering version and
        # calibrates on its evaluation's dataset: it reads several services, so it is wired
        # here as a function of the project.
        return Monitors(
            self.context,
            predictions=self.predictions,
            models=self.models,
            drift=self.drift,
            alerts=self.alerts,
            estimate=lambda deployment, since, until: estimate_window(
                self, deployment, since, until
            ),
        )

    @cached_property
    def pipelines(self) -> Pipelines:
        from shipyard.pipelines.service import Pipelines

        return Pipelines(
            self.context,
            runs=self.runs,
            datasets=self.datasets,
            models=self.models,
            locks=self.locks,
            evaluations=self.evaluations,
        )

    @cached_property
    def scheduler(self) -> Scheduler:
        from shipyard.pipelines.scheduler import Scheduler

        return Scheduler(
            self.context,
            pipelines=self.pipelines,
            datasets=self.datasets,
            alerts=self.alerts,
            promotions=self.promotions,
        )

    @cached_property
    def reproductions(self) -> Reproductions:
        from shipyard.pipelines.reproduce import Reproductions

        return Reproductions(
            self.context,
            pipelines=self.pipelines,
            runs=self.runs,
            models=self.models,
            datasets=self.datasets,
        )

    @cached_property
    def users(self) -> Users:
        from shipyard.governance.access import Users

        return Users(self.context)

    @cached_property
    def tokens(self) -> Tokens:
        from shipyard.governance.tokens import Tokens

        return Tokens(self.context)

    @cached_property
    def comments(self) -> Comments:
        from shipyard.collaboration.comments import Comments

        return Comments(
            self.context,
            datasets=self.datasets,
            runs=self.runs,
            models=self.models,
            deployments=self.deployments,
        )

    @cached_property
    def webhooks(self) -> Webhooks:
        from shipyard.collaboration.webhooks import Webhooks

        return Webhooks(self.context)

    @cached_property
    def audit(self) -> AuditLog:
        from shipyard.governance.audit import AuditLog

        return AuditLog(self.context)

    @cached_property
    def docs(self) -> DocsSite:
        from shipyard.collaboration.docs_site import DocsSite

        return DocsSite(
            self.context,
            datasets=self.datasets,
            contracts=self.contracts,
            models=self.models,
            cards=self.cards,
            deployments=self.deployments,
            features=self.features,
        )

    @cached_property
    def digests(self) -> Digests:
        from shipyard.collaboration.digest import Digests, comment_mentions
        from shipyard.monitoring.alerts import digest_alerts

        return Digests(
            self.context,
            audit=self.audit,
            runs=self.runs,
            models=self.models,
            approvals=self.approvals,
            alerts=digest_alerts(self.alerts, self.monitors.exists),
            mentions=comment_mentions(self.comments),
        )

    def start_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        system_metrics: bool | float = False,
        autolog: bool = False,
    ) -> ActiveRun:
        """Start a tracked run; use it as a context manager. See :meth:`Runs.start`. It is
        this thread's active run until it ends: with ``autolog=True`` (or after
        :func:`shipyard.autolog`), fitting a model records it (:mod:`shipyard.registry.
        autolog`)."""
        from shipyard.registry.autolog import activate

        run = self.runs.start(experiment, name=name, tags=tags, system_metrics=system_metrics)
        activate(run, autolog=autolog)
        return run

    def verify(self, progress: Progress = NO_PROGRESS) -> StoreReport:
        """Re-hash every stored blob; see :func:`shipyard.stores.integrity.verify_store`."""
        from shipyard.stores.integrity import verify_store

        return verify_store(self.db, self.artifacts, progress)

    def gc(self, *, grace_seconds: float = 3600.0, dry_run: bool = False) -> GarbageReport:
        """Remove unreferenced blobs and stale staging files older than ``grace_seconds``
        (admin only).

        Raises:
            PermissionDeniedError: the actor is not an admin.
        """
        from shipyard.authz import require_role
        from shipyard.stores.integrity import collect_garbage

        with self.db.read() as conn:
            require_role(conn, self.actor, "admin", "collect garbage")
        report = collect_garbage(
            self.db, self.artifacts, grace_seconds=grace_seconds, dry_run=dry_run
        )
        if not dry_run and report.blobs:
            with self.context.audited() as tx:
                tx.record(
                    "store.gc",
                    "project",
                    self.settings.name,
                    {"blobs": len(report.blobs), "bytes": report.bytes},
                )
        return report

    def close(self) -> None:
        runtime = self.__dict__.get("feature_runtime")
        if runtime is not None:
            runtime.close()
        self.db.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@overload
def open_project(
    path: str | os.PathLike[str],
    *,
    actor: str | None = None,
    db_url: str | None = None,
    artifacts_uri: str | None = None,
) -> Project: ...


@overload
def open_project(
    path: None = None,
    *,
    actor: str | None = None,
    db_url: str | None = None,
    artifacts_uri: str | None = None,
) -> Project | RemoteProject: ...


def open_project(
    path: str | os.PathLike[str] | None = None,
    *,
    actor: str | None = None,
    db_url: str | None = None,
    artifacts_uri: str | None = None,
) -> Project | RemoteProject:
    """Open the project at ``path`` (or found from the current directory).

    Without arguments, a team server wins when one is configured: ``SHIPYARD_SERVER`` (with
    ``SHIPYARD_TOKEN``), else ``SHIPYARD_PROJECT``, else the login ``shipyard login`` stored;
    the result is then a :class:`~shipyard.client.RemoteProject` with the same services, acting
    as the token's user. A ``path`` (or any argument) always opens the local project.

    Raises:
        ProjectNotFoundError: no ``shipyard.toml`` there or above.
        UnauthenticatedError: ``SHIPYARD_SERVER`` is set without a token for it.
    """
    if path is None and actor is None and db_url is None and artifacts_uri is None:
        remote = _remote_project()
        if remote is not None:
            return remote
    root = find_project_root(path)
    return Project(Settings.load(root, db_url=db_url, artifacts_uri=artifacts_uri), actor=actor)


def _remote_project() -> RemoteProject | None:
    """The team server to use instead of a local project, if one is configured (see
    :func:`open_project` for the order)."""
    from shipyard.client.login import SERVER_ENV, remote_target

    if not os.environ.get(SERVER_ENV, "").strip() and os.environ.get("SHIPYARD_PROJECT"):
        return None
    target = remote_target()
    if target is None:
        return None
    from shipyard.client.project import RemoteProject

    return RemoteProject(target.url, target.token)


def init_project(
    path: str | os.PathLike[str] = ".",
    *,
    name: str | None = None,
    actor: str | None = None,
    db_url: str | None = None,
    artifacts_uri: str | None = None,
) -> Project:
    """Create a project: ``shipyard.toml``, ``.shipyard/`` and its stores.

    The acting user becomes the first admin (unless the metadata database, shared with other
    projects, already has users).

    Raises:
        ConflictError: the folder already holds a project.
    """
    root = Path(path).expanduser().resolve()
    cfg = root / CONFIG_FILE
    if cfg.exists():
        raise ConflictError(f"{root} is already a shipyard project ({CONFIG_FILE} exists)")
    project_name = validate_name(name or _default_name(root), "project name")
    root.mkdir(parents=True, exist_ok=True)
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    (state / ".gitignore").write_text("*\n", encoding="utf-8")
    tmp = cfg.with_name(f".{CONFIG_FILE}.part")
    tmp.write_text(
        _render_config(project_name, db_url=db_url, artifacts_uri=artifacts_uri),
        encoding="utf-8",
    )
    settings = Settings.load(root, db_url=db_url, artifacts_uri=artifacts_uri)
    settings = replace(settings, name=project_name)
    project = Project(settings, actor=actor)
    with audited(project.db, project.actor) as tx:
        has_users = tx.conn.execute(select(func.count()).select_from(users)).scalar_one()
        if not has_users:
            tx.conn.execute(
                users.insert().values(
                    name=project.actor,
                    role="admin",
                    created_at=datetime.now(UTC),
                    created_by=project.actor,
                )
            )
            tx.record("user.add", "user", project.actor, {"role": "admin", "via": "init"})
        tx.record("project.init", "project", project_name, {"root": str(root)})
    os.replace(tmp, cfg)
    return project


def _default_name(root: Path) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", root.name).strip("-._") or "project"
    return cleaned[:128]
