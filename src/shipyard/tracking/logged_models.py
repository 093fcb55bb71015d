"""MLflow 3 logged models: a model a run logged (its files, params and tags), before or
without registration. ``mlflow.<flavor>.log_model`` creates one, uploads the model directory
to its folder of the MLflow artifact tree (``<experiment>/models/<id>/artifacts``) and, with
``registered_model_name=``, registers it (:meth:`MlflowRegistry.create_version`).

>>> m = project.logged_models.create(None, name="model", run_id=run.id)   # doctest: +SKIP
>>> m.artifact_path                                                     # doctest: +SKIP
'1/models/m-3f9a…/artifacts'
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.registry import mlflow_search as search
from shipyard.registry.mlflow_search import RegistryPage
from shipyard.registry.mlflow_sources import logged_model_path
from shipyard.stores.db.tables import experiments, logged_models, runs

if TYPE_CHECKING:
    from shipyard.context import ServiceContext

__all__ = ["LoggedModel", "LoggedModels"]

KIND = "logged_model"
STATUSES = ("PENDING", "READY", "UPLOAD_FAILED")
DEFAULT_EXPERIMENT = "default"
MAX_KEY = 250
MAX_VALUE = 8000


@dataclass(frozen=True)
class LoggedModel(ReadModel):
    """One logged model."""

    json_properties = ("artifact_path",)

    id: str
    experiment_id: int
    run_id: str | None
    name: str
    model_type: str
    status: str
    status_message: str
    params: dict[str, str]
    tags: dict[str, str]
    created_at: int  # milliseconds since the epoch
    updated_at: int
    created_by: str

    @property
    def artifact_path(self) -> str:
        """Its folder in the MLflow artifact tree."""
        return logged_model_path(self.experiment_id, self.id)


class LoggedModels:
    """Service for logged models: ``create``, ``get``, ``search``, plus ``finalize``,
    ``set_tags``, ``delete_tag``, ``log_params`` and ``check_outputs``."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def create(
        self,
        experiment_id: int | None,
        *,
        name: str = "",
        run_id: str | None = None,
        model_type: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """A new logged model, PENDING, in the run's experiment (else ``experiment_id``, else
        ``default``) (contributor).

        Raises:
            NotFoundError: no such run or experiment.
        """
        model_id = f"m-{uuid.uuid4().hex}"
        now = _now_ms()
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "log models")
            if run_id:
                run = tx.conn.execute(
                    select(runs.c.experiment_id).where(runs.c.id == run_id)
                ).first()
                if run is None:
                    raise NotFoundError(f"no run {run_id!r}; see `shipyard runs list`")
                experiment_id = int(run.experiment_id)
            experiment_id = _experiment(tx.conn, experiment_id)
            tx.conn.execute(
                logged_models.insert().values(
                    id=model_id,
                    experiment_id=experiment_id,
                    run_id=run_id or None,
                    name=name or f"model-{model_id[2:10]}",
                    model_type=model_type or "",
                    status="PENDING",
                    status_message="",
                    params=_checked(params, "param"),
                    tags=_checked(tags, "tag"),
                    created_at=now,
                    updated_at=now,
                    created_by=self._ctx.actor,
                )
            )
            tx.record("logged_model.create", KIND, model_id, {"run_id": run_id, "name": name})
        return self.get(model_id)

    def get(self, model_id: str) -> LoggedModel:
        """One logged model.

        Raises:
            NotFoundError: no such logged model.
        """
        with self._ctx.db.read() as conn:
            return _load(_row(conn, model_id))

    def finalize(self, model_id: str, status: str) -> LoggedModel:
        """Mark a logged model READY or UPLOAD_FAILED (contributor)."""
        if status not in STATUSES:
            raise InvalidInputError(
                f"invalid logged model status {status!r}: use one of {', '.join(STATUSES)}"
            )
        return self._change(model_id, "finalize", {"status": status}, {"status": status})

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> LoggedModel:
        """Set tags on a logged model (contributor)."""
        checked = _checked(tags, "tag")
        with self._ctx.db.read() as conn:
            merged = {**_load(_row(conn, model_id)).tags, **checked}
        return self._change(model_id, "tags", {"tags": merged}, {"set": sorted(checked)})

    def delete_tag(self, model_id: str, key: str) -> LoggedModel:
        """Remove a tag from a logged model (contributor).

        Raises:
            NotFoundError: no such model or tag.
        """
        with self._ctx.db.read() as conn:
            tags = dict(_load(_row(conn, model_id)).tags)
        if tags.pop(key, None) is None:
            raise NotFoundError(f"logged model {model_id} has no tag {key!r}")
        return self._change(model_id, "tags", {"tags": tags}, {"deleted": key})

    def log_params(self, model_id: str, params: Mapping[str, str]) -> LoggedModel:
        """Add params to a logged model (contributor)."""
        checked = _checked(params, "param")
        with self._ctx.db.read() as conn:
            merged = {**_load(_row(conn, model_id)).params, **checked}
        return self._change(model_id, "params", {"params": merged}, {"set": sorted(checked)})

    def check_outputs(self, run_id: str, model_ids: builtins.list[str]) -> None:
        """Check that the logged models a run names as its outputs exist (the run they came
        from is their ``run_id`` already)."""
        with self._ctx.db.read() as conn:
            if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"no run {run_id!r}; see `shipyard runs list`")
            for model_id in model_ids:
                _row(conn, model_id)

    def search(
        self,
        experiment_ids: builtins.list[int] | None = None,
        filter: str | None = None,
        *,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RegistryPage:
        """Logged models of some experiments matching a filter on ``name``,
        ``source_run_id`` and ``tags.<key>``, newest first.

        Raises:
            InvalidInputError: a filter or page token that cannot be used.
        """
        where = search.parse_filter(
            filter, {"run_name": "name", "run_id": "run_id"}, "logged models"
        )
        start = search.offset(page_token)
        limit = search.limit(max_results)
        stmt = select(logged_models).order_by(logged_models.c.created_at.desc(), logged_models.c.id)
        if experiment_ids:
            stmt = stmt.where(logged_models.c.experiment_id.in_(experiment_ids))
        with self._ctx.db.read() as conn:
            found = [_load(r) for r in conn.execute(stmt)]
        matched = [
            m for m in found if search.matches(where, {"name": m.name, "run_id": m.run_id}, m.tags)
        ]
        return search.page(matched, start, limit)

    def _change(
        self, model_id: str, what: str, values: dict[str, Any], payload: dict[str, Any]
    ) -> LoggedModel:
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "change logged models")
            _row(tx.conn, model_id)
            tx.conn.execute(
                update(logged_models)
                .where(logged_models.c.id == model_id)
                .values(**values, updated_at=_now_ms())
            )
            tx.record(f"logged_model.{what}", KIND, model_id, payload)
        return self.get(model_id)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _experiment(conn: Connection, experiment_id: int | None) -> int:
    if experiment_id is None:
        row = conn.execute(
            select(experiments.c.id).where(experiments.c.name == DEFAULT_EXPERIMENT)
        ).first()
    else:
        row = conn.execute(
            select(experiments.c.id).where(experiments.c.id == experiment_id)
        ).first()
    if row is None:
        raise NotFoundError(
            f"no experiment {experiment_id if experiment_id is not None else DEFAULT_EXPERIMENT}"
            "; log the model inside a run (mlflow.start_run()) or create the experiment first"
        )
    return int(row.id)


def _checked(items: Mapping[str, str] | None, what: str) -> dict[str, str]:
    out = {}
    for k, v in (items or {}).items():
        if not isinstance(k, str) or not k or len(k) > MAX_KEY:
            raise InvalidInputError(f"invalid {what} key {k!r}: 1 to {MAX_KEY} characters")
        if not isinstance(v, str) or len(v) > MAX_VALUE:
            raise InvalidInputError(
                f"invalid value for {what} {k!r}: text of at most {MAX_VALUE} characters"
            )
        out[k] = v
    return out


def _row(conn: Connection, model_id: str) -> Any:
    row = conn.execute(select(logged_models).where(logged_models.c.id == model_id)).first()
    if row is None:
        raise NotFoundError(f"no logged model {model_id!r}")
    return row


def _load(row: Any) -> LoggedModel:
    return LoggedModel(
        id=row.id,
        experiment_id=int(row.experiment_id),
        run_id=row.run_id,
        name=row.name,
        model_type=row.model_type or "",
        status=row.status,
        status_message=row.status_message or "",
        params=dict(row.params or {}),
        tags=dict(row.tags or {}),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
        created_by=row.created_by,
    )
