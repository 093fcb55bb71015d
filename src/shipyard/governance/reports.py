"""Evaluation reports: a model version scored on an exact dataset version, stored and linked.

>>> project.evaluations.evaluate("credit-risk@2", "credit.test@1", label="default",
...                              sensitive=["gender"])                       # doctest: +SKIP
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError
from shipyard.refs import parse_ref
from shipyard.registry.versions import find_model_id
from shipyard.stores.db.tables import evaluation_reports
from shipyard.stores.lineage import add_edge

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.registry.models import Models

__all__ = ["Evaluations", "StoredEvaluation"]


@dataclass(frozen=True)
class StoredEvaluation(ReadModel):
    """An evaluation report as stored: which model version, on which dataset version."""

    id: int
    model: str  # name@version
    dataset: str  # name@version
    dataset_digest: str
    label: str
    report: dict[str, Any] = field(metadata={"json": "flatten"})
    created_at: datetime
    created_by: str

    def metric(self, name: str) -> float | None:
        value = self.report.get("metrics", {}).get(name)
        return None if value is None else value.get("value")


class Evaluations:
    """Service for evaluation reports: ``evaluate``, ``list``, ``latest``."""

    def __init__(self, ctx: ServiceContext, *, models: Models, datasets: Datasets) -> None:
        self._ctx = ctx
        self._models = models
        self._datasets = datasets

    def evaluate(
        self,
        ref: str,
        data: str,
        *,
        label: str | None = None,
        sensitive: Sequence[str] = (),
        bootstrap: int = 200,
    ) -> StoredEvaluation:
        """Score a model version on a dataset version and store the report (contributor).

        Without ``label``, the dataset's single column that is not a model input is used.

        Raises:
            InvalidInputError: no label can be found, or a column is missing.
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.governance.evaluation import evaluate

        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "evaluate models")
        mv = self._models.get(ref)
        dataset = self._datasets.get(data)
        frame = dataset.to_pandas()
        label = label or _guess_label(mv.signature, list(frame.columns), dataset.ref)
        predictor = self._models.load(mv.ref)
        report = evaluate(predictor, frame, label, sensitive=list(sensitive), bootstrap=bootstrap)
        doc = report.to_dict()
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "evaluate models")
            model_id = find_model_id(tx.conn, mv.name)
            res = tx.conn.execute(
                evaluation_reports.insert().values(
                    model_id=model_id,
                    version=mv.version,
                    dataset=dataset.ref,
                    dataset_digest=dataset.digest,
                    label=label,
                    report=doc,
                    created_at=now,
                    created_by=self._ctx.actor,
                )
            )
            add_edge(tx.conn, ("dataset", dataset.ref), ("model", mv.ref), "evaluated_on")
            headline = {k: v.get("value") for k, v in doc.get("metrics", {}).items()}
            tx.record(
                "model.evaluate",
                "model",
                mv.ref,
                {
                    "dataset": dataset.ref,
                    "label": label,
                    "metrics": headline,
                    "sensitive": list(sensitive),
                },
            )
            report_id = int(res.inserted_primary_key[0])  # type: ignore[index]
        return StoredEvaluation(
            report_id, mv.ref, dataset.ref, dataset.digest, label, doc, now, self._ctx.actor
        )

    def list(self, ref: str) -> builtins.list[StoredEvaluation]:
        """Every evaluation of a model version, newest first."""
        mv = self._models.get(ref)
        with self._ctx.db.read() as conn:
            model_id = find_model_id(conn, mv.name)
            rows = conn.execute(
                select(evaluation_reports)
                .where(evaluation_reports.c.model_id == model_id)
                .where(evaluation_reports.c.version == mv.version)
                .order_by(evaluation_reports.c.id.desc())
            ).all()
        return [_stored(mv.ref, r) for r in rows]

    def latest(
        self, ref: str, *, dataset: str | None = None, dataset_digest: str | None = None
    ) -> StoredEvaluation | None:
        """The newest evaluation of a version, optionally on one dataset (name, name@N) or on
        exactly the dataset content with ``dataset_digest``."""
        for e in self.list(ref):
            if dataset_digest is not None and e.dataset_digest != dataset_digest:
                continue
            if dataset is not None:
                want = parse_ref(dataset)
                if want.selector.kind == "latest" and "@" not in dataset:
                    if not e.dataset.startswith(want.name + "@"):
                        continue
                elif e.dataset != f"{want.name}@{want.selector}":
                    continue
            return e
        return None


def _stored(model_ref: str, r: Any) -> StoredEvaluation:
    return StoredEvaluation(
        int(r.id),
        model_ref,
        r.dataset,
        r.dataset_digest,
        r.label,
        dict(r.report),
        r.created_at,
        r.created_by,
    )


def _guess_label(signature: dict[str, Any] | None, columns: list[str], dataset: str) -> str:
    inputs = set((signature or {}).get("inputs", {}).get("columns", {}))
    ignored = set(
        (signature or {}).get("ignored", [])
    )  # dropped by the model: not the label either
    if not inputs:
        raise InvalidInputError(
            f"which column of {dataset} is the label? pass --label (the model has no signature "
            "to tell inputs from the label)"
        )
    rest = [c for c in columns if c not in inputs and c not in ignored]
    if len(rest) != 1:
        raise InvalidInputError(
            f"which column of {dataset} is the label? pass --label; columns that are not model "
            f"inputs: {', '.join(rest) or 'none'}"
        )
    return rest[0]
