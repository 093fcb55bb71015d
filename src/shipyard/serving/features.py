"""Serving with features: a version trained on point-in-time training data (``shipyard
features historical``) gets the feature columns of its signature looked up in the online store
by entity key, so a request carries the entity id and the request-time columns only.

Which inputs are feature references is read from the lineage, not declared again: the
version's training datasets (its run's inputs) name the feature view versions they were joined
from (``feature_view:payments@1``); every signature column that is a feature of one of those
views is filled from the online store, at that view version's definition. A request value sent
for such a column is replaced by the stored one, so training and serving read the same
definitions.

A feature the store does not hold for the entity (``missing``) or holds older than the view's
TTL (``outside_ttl``) is null, which the version's checks then accept or refuse as for any
request; a column the fitted pipeline cannot take missing is refused here with a 422 naming the
feature, the entity and why. Every looked-up value is counted in
``shipyard_feature_lookups_total{model,view,status}``. A batch is one online read per view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, ShipyardError
from shipyard.serving.inputs import RequestError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shipyard.project import Project
    from shipyard.registry.models import ModelVersion
    from shipyard.serving.metrics import ServerMetrics

__all__ = ["FeatureLookup", "feature_lookup"]


@dataclass(frozen=True)
class FeatureLookup:
    """The feature columns of a served version: ``refs`` (``VIEW@N:FEATURE``), the column
    each fills (``columns``, in the same order), its view's name (``views``), the join keys
    a request must carry (``join_keys``, with their signature types in ``key_types``:
    ``int``, ``float`` or ``str``, as the training data held them) and the columns refused
    when missing (``required``)."""

    refs: tuple[str, ...]
    columns: tuple[str, ...]
    views: tuple[str, ...]
    join_keys: tuple[str, ...]
    required: frozenset[str]
    key_types: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"features {', '.join(self.refs)} by {', '.join(self.join_keys)}"

    def fill(
        self,
        project: Project,
        rows: list[dict[str, Any]],
        metrics: ServerMetrics,
        model: str,
    ) -> list[dict[str, Any]]:
        """``rows`` with the feature columns filled from the online store (one read per view
        for the whole batch); missing and stale values counted, and null unless required.

        Raises:
            RequestError: 422 when a row lacks a join key, or a required feature is missing
                or stale (naming the feature, the entity and why).
        """
        for i, row in enumerate(rows):
            absent = [k for k in self.join_keys if row.get(k) is None]
            if absent:
                raise RequestError(
                    422,
                    "invalid_input",
                    f"record {i} lacks {', '.join(absent)}: this model's features "
                    f"({', '.join(self.refs)}) are looked up by {', '.join(self.join_keys)}",
                    {"errors": [{"record": i, "field": k, "reason": "missing"} for k in absent]},
                )
        try:
            found = project.features.online(rows, list(self.refs))
        except InvalidInputError as exc:
            raise RequestError(422, "invalid_input", exc.message) from None
        except ShipyardError as exc:  # e.g. a view dropped since the version loaded
            raise RequestError(503, "feature_store", exc.message) from None
        counts: dict[tuple[str, str], int] = {}
        errors: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []
        for i, (row, got) in enumerate(zip(rows, found.rows, strict=True)):
            filled = dict(row)
            for ref, column, view in zip(self.refs, self.columns, self.views, strict=True):
                status = got.status[column]
                counts[view, status] = counts.get((view, status), 0) + 1
                filled[column] = got.values[column]
                if status != "present" and column in self.required and len(errors) < 50:
                    entity = ", ".join(f"{k}={row[k]!r}" for k in self.join_keys)
                    why = "is older than its TTL" if status == "outside_ttl" else "is missing"
                    errors.append(
                        {
                            "record": i,
                            "field": column,
                            "feature": ref,
                            "entity": {k: row[k] for k in self.join_keys},
                            "status": status,
                            "reason": f"feature {ref} of {entity} {why} in the online store, "
                            "and the model cannot take it missing",
                        }
                    )
            out.append(filled)
        for (view, status), n in counts.items():
            metrics.feature_lookups.labels(model, view, status).inc(n)
        if errors:
            problems = "; ".join(f"record {e['record']}: {e['reason']}" for e in errors[:5])
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise RequestError(422, "missing_feature", problems + more, {"errors": errors})
        return out


def feature_lookup(
    project: Project, mv: ModelVersion, columns: Sequence[str], no_nulls: Sequence[str]
) -> FeatureLookup | None:
    """The feature columns of version ``mv`` with signature ``columns``, read from the lineage
    of its training data (:func:`shipyard.features.lookup.model_features`; None when it was
    not trained on feature views, or none of their features is in its signature).
    ``no_nulls`` are the columns its pipeline cannot take missing."""
    from shipyard.features.lookup import model_features

    found = model_features(project.db, project.features, project.datasets, mv, columns)
    if found is None:
        return None
    return FeatureLookup(
        found.refs,
        found.columns,
        found.views,
        found.join_keys,
        frozenset(found.columns) & frozenset(no_nulls),
        found.key_types,
    )
