"""A run started in this process and not in the store yet.

A sweep starts many short runs, and writing each one's start, parameters, tags, metric
points and end in transactions of their own cost more than training a small model. So a run
that this process started and captured itself is held in memory until its first write:

- when it ends, the whole run is written in one transaction with one audit event,
  ``run.record``;
- before that, a flush (called, or due while metric points are logged) and anything that must
  refer to a stored run (an input, an artifact, a model, an update) write its start, with what
  it buffered, in one transaction with one ``run.start`` event; later writes go straight on.

A process killed before the first write leaves nothing behind: the store holds the run whole,
or not at all. Runs described by a remote client (``Runs.start`` with ``code`` and
``environment``, ``Runs.create``) are written at once: a stateless server must find them in
the next request.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from shipyard.errors import ConflictError
from shipyard.stores.db.tables import experiments, run_params, run_tags, runs

if TYPE_CHECKING:
    from shipyard.stores.audit import AuditedTransaction
    from shipyard.tracking.active import ActiveRun

__all__ = ["PendingStart", "ensure_experiment", "param_conflict", "write_at_exit"]

log = logging.getLogger(__name__)

# Built once: building a statement costs more than running it for one short run.
_INSERT_RUN = runs.insert()
_INSERT_TAG = run_tags.insert()
_INSERT_PARAM = run_params.insert()
_EXPERIMENT_ID = select(experiments.c.id, experiments.c.deleted_at).where(
    experiments.c.name == bindparam("name")
)


@dataclass
class PendingStart:
    """What the first write of a run records: its row, tags and parameters."""

    experiment: str
    name: str
    start_time: int
    actor: str
    code: dict[str, Any]
    environment: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def add_params(self, run_id: str, items: dict[str, str]) -> None:
        """Keep ``items`` for the first write; re-logging an equal value is a no-op.

        Raises:
            ConflictError: a parameter was already logged with another value (none is kept).
        """
        for key, value in items.items():
            old = self.params.get(key, value)
            if old != value:
                raise param_conflict(run_id, key, old, value)
        self.params.update(items)

    def write(
        self,
        tx: AuditedTransaction,
        run_id: str,
        *,
        status: str = "RUNNING",
        end_time: int | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Insert the run (creating its experiment on first use), its tags and parameters;
        returns the audit payload that describes them."""
        exp_id = ensure_experiment(tx, self.experiment)
        tx.conn.execute(
            _INSERT_RUN,
            {
                "id": run_id,
                "experiment_id": exp_id,
                "name": self.name,
                "status": status,
                "lifecycle": "active",
                "start_time": self.start_time,
                "end_time": end_time,
                "created_by": self.actor,
                "code": self.code,
                "environment": self.environment,
                "error": error,
            },
        )
        payload: dict[str, Any] = {
            "experiment": self.experiment,
            "name": self.name,
            "git": self.code.get("git"),
        }
        if self.tags:
            tx.conn.execute(
                _INSERT_TAG,
                [{"run_id": run_id, "key": k, "value": v} for k, v in self.tags.items()],
            )
            payload["tags"] = dict(self.tags)
        if self.params:
            tx.conn.execute(
                _INSERT_PARAM,
                [{"run_id": run_id, "key": k, "value": v} for k, v in self.params.items()],
            )
            payload["params"] = dict(self.params)
        return payload


def param_conflict(run_id: str, key: str, old: str, new: str) -> ConflictError:
    return ConflictError(
        f"run {run_id} already has parameter {key!r} = {old!r}; parameters are "
        f"immutable, so {new!r} cannot replace it (log it under another name)"
    )


def ensure_experiment(tx: AuditedTransaction, name: str) -> int:
    """The id of experiment ``name``, created (and audited) when it does not exist.

    Raises:
        ConflictError: the experiment is deleted (restore it first).
    """
    row = tx.conn.execute(_EXPERIMENT_ID, {"name": name}).first()
    if row is not None and row.deleted_at is not None:
        raise ConflictError(
            f"experiment '{name}' is deleted; restore it with "
            f"`shipyard experiments restore {name}` before adding runs"
        )
    if row is not None:
        return int(row.id)
    res = tx.conn.execute(
        experiments.insert().values(name=name, created_at=datetime.now(UTC), created_by=tx.actor)
    )
    tx.record("experiment.create", "experiment", name, {})
    return int(res.inserted_primary_key[0])  # type: ignore[index]


# Runs left pending when the interpreter exits (started without ``with`` and never ended) are
# written then, still RUNNING, as if they had flushed: what they logged is not lost.
_AT_EXIT: weakref.WeakSet[ActiveRun] = weakref.WeakSet()
_AT_EXIT_LOCK = threading.Lock()
_registered = False


def write_at_exit(run: ActiveRun) -> None:
    """Flush ``run`` when the interpreter exits, if it is still pending then."""
    global _registered
    with _AT_EXIT_LOCK:
        _AT_EXIT.add(run)
        if not _registered:
            atexit.register(_flush_pending)
            _registered = True


def _flush_pending() -> None:
    for run in list(_AT_EXIT):
        if run.pending:
            try:
                run.flush()
            except Exception as exc:  # exiting: report, never raise
                log.warning("run %s could not be written at exit: %s", run.id, exc)
