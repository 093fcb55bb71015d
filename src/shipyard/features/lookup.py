"""Which inputs of a model version are features, and filling them into rows to score.

Nothing is declared a second time: the version's training datasets (its run's inputs) name
the feature view versions they were joined from (``feature_view:payments@1``); every signature
column that is a feature of one of those views is a feature column, read from that view
version (``payments@1:late_payments``). The model server fills them from the online store
(:mod:`shipyard.serving.features`); ``models predict`` fills a file's rows with
:func:`fill_table`, point in time when it names an event-time column, else from the online
store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.data.datasets import Datasets
    from shipyard.features.service import Features
    from shipyard.registry.versions import ModelVersion
    from shipyard.stores.db.engine import Database

__all__ = ["ModelFeatures", "fill_table", "model_features", "time_columns"]


@dataclass(frozen=True)
class ModelFeatures:
    """The feature columns of a model version: ``refs`` (``VIEW@N:FEATURE``), the column each
    fills (``columns``, same order), its view's name (``views``) and type (``types``: ``int``,
    ``float``, ``string``, ``bool``, ``datetime``), the join keys rows must carry
    (``join_keys``) with the kind of value the training data held for each (``key_types``:
    ``int``, ``float`` or ``str``)."""

    refs: tuple[str, ...]
    columns: tuple[str, ...]
    views: tuple[str, ...]
    types: tuple[str, ...]
    join_keys: tuple[str, ...]
    key_types: tuple[str, ...]


def model_features(
    db: Database,
    features: Features,
    datasets: Datasets,
    mv: ModelVersion,
    columns: Sequence[str],
) -> ModelFeatures | None:
    """The feature columns of version ``mv`` whose signature has ``columns``, read from the
    lineage of its training data; None when it was not trained on feature views or none of
    their features is in its signature."""
    from shipyard.stores.lineage import walk

    view_refs: list[str] = []
    with db.read() as conn:
        for dataset in dict.fromkeys(mv.training_data):
            for edge in walk(conn, "dataset", dataset, upstream=True):
                kind, _, ref = edge["parent"].partition(":")
                if kind == "feature_view" and ref not in view_refs:
                    view_refs.append(ref)
    wanted = set(columns)
    refs: list[str] = []
    names: list[str] = []
    views: list[str] = []
    types: list[str] = []
    keys: list[str] = []
    for ref in view_refs:
        view = features.get(ref)
        for feature in view.features:
            if feature.name in wanted and feature.name not in names:
                refs.append(f"{view.ref}:{feature.name}")
                names.append(feature.name)
                views.append(view.name)
                types.append(feature.type)
                keys += [k for k in view.join_keys if k not in keys]
    if not refs:
        return None
    schema: dict[str, str] = {}
    for dataset in mv.training_data:
        schema = {**datasets.get(dataset).schema, **schema}
    return ModelFeatures(
        tuple(refs),
        tuple(names),
        tuple(views),
        tuple(types),
        tuple(keys),
        tuple(_kind(schema.get(k, "")) for k in keys),
    )


def time_columns(schema: Any, leave_out: Sequence[str] = ()) -> list[str]:
    """The date and datetime columns of an Arrow ``schema``, but ``leave_out``."""
    import pyarrow as pa

    return [
        f.name
        for f in schema
        if (pa.types.is_date(f.type) or pa.types.is_timestamp(f.type)) and f.name not in leave_out
    ]


def fill_table(features: Features, found: ModelFeatures, timestamp: str | None, what: str) -> Any:
    """The function that fills the feature columns of each Arrow table of rows to score
    (from ``what``, named in messages and in the access log): the values at each row's
    ``timestamp`` (the latest at or before it, within the view's TTL, as ``features
    historical`` joins them; the sources are read once, here), or, without a timestamp, the
    latest ones in the online store (as the model server does). A value the rows hold for a
    feature column is replaced; one no value qualifies for is null.

    The function raises InvalidInputError when the rows lack a join key.
    """
    import polars as pl

    join = (
        None
        if timestamp is None
        else features.point_in_time(list(found.refs), timestamp, reader=what)
    )

    def fill(table: Any) -> Any:
        absent = [k for k in found.join_keys if k not in table.column_names]
        if absent:
            raise InvalidInputError(
                f"{what} lacks {', '.join(absent)}: the features of this model "
                f"({', '.join(found.refs)}) are looked up by {', '.join(found.join_keys)}"
            )
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        order = frame.columns
        frame = frame.drop([c for c in found.columns if c in frame.columns])
        if join is not None:
            frame = join(frame)
        else:
            got = features.online(frame.select(found.join_keys).to_dicts(), list(found.refs))
            frame = frame.with_columns(
                pl.Series(c, [r.values[c] for r in got.rows], dtype=_dtype(t), strict=False)
                for c, t in zip(found.columns, found.types, strict=True)
            )
        # The input's columns where they were, the features it did not hold after them.
        return frame.select(*order, *[c for c in found.columns if c not in order]).to_arrow()

    return fill


def _kind(dtype: str) -> str:
    if dtype.startswith(("Int", "UInt")):
        return "int"
    return "float" if dtype.startswith("Float") else "str"


def _dtype(name: str) -> Any:
    import polars as pl

    return {
        "int": pl.Int64,
        "float": pl.Float64,
        "string": pl.String,
        "bool": pl.Boolean,
        "datetime": pl.Datetime("us", "UTC"),
    }[name]
