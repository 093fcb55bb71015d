"""The feature store service: ``project.features``.

>>> project.features.apply("features.yaml")                                  # doctest: +SKIP
>>> project.features.historical("applications@1", ["payments:late_payments"],
...                             output="credit.training")                   # doctest: +SKIP
>>> project.features.materialize()                                           # doctest: +SKIP
>>> project.features.online([{"applicant_id": 17}], ["payments:late_payments"])  # doctest: +SKIP

Roles: any user reads definitions, training data and online values (reads are logged);
contributors apply definitions, register training sets and materialize.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import canonical_json, digest_bytes
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard._internal.words import count
from shipyard.authz import require_role
from shipyard.errors import CheckFailedError, InvalidInputError
from shipyard.features.catalog import (
    ApplyChange,
    FeatureRef,
    GlossaryEntry,
    diff_specs,
    glossary_entries,
    latest_row,
    parse_feature_refs,
    resolve_entity,
    resolve_view,
    to_entity,
    to_view,
)
from shipyard.features.definitions import (
    FEATURE_TYPES,
    Entity,
    EntityDefinition,
    FeatureView,
    FeatureViewDefinition,
    load_definitions,
)
from shipyard.features.offline import ViewFrame, latest_per_entity, point_in_time_join
from shipyard.features.reads import OnlineReadCount, ReadCounter, read_counts
from shipyard.stores.db.tables import feature_entities, feature_views

if TYPE_CHECKING:
    import polars as pl

    from shipyard.context import ServiceContext
    from shipyard.data.contract_registry import Contracts
    from shipyard.data.datasets import Datasets
    from shipyard.data.versions import DatasetVersion
    from shipyard.features.online import OnlineStore
    from shipyard.stores.audit import AuditedTransaction

__all__ = [
    "Features",
    "Materialization",
    "OnlineFeatures",
    "OnlineRow",
    "OnlineRuntime",
    "TrainingData",
]

VIEW_KIND = "feature_view"
ENTITY_KIND = "feature_entity"
# How long a resolved view is reused by online lookups (a new version applied elsewhere is
# seen after at most this long; one applied through the same project at once).
_VIEW_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class TrainingData(ReadModel):
    """The result of a point-in-time retrieval: the rows (``frame``, not in JSON), the
    dataset version they were registered as (when an output name was given), and what was
    read: the entity rows, the feature view versions and their source dataset versions."""

    rows: int
    columns: list[str]
    entities: str | None
    views: list[str]
    sources: list[str]
    dataset: DatasetVersion | None = None
    frame: Any = field(default=None, repr=False, compare=False, metadata={"json": "omit"})


@dataclass(frozen=True)
class Materialization(ReadModel):
    """One view written to the online store: from which source version, how many entity
    rows, into which store, and the latest event time now there (``watermark``)."""

    view: str
    source: str
    rows: int
    store: str
    incremental: bool
    watermark: datetime | None
    seconds: float


@dataclass(frozen=True)
class OnlineRow(ReadModel):
    """The online values of one entity: per feature its ``values``, ``status`` (``present``,
    ``missing``, ``outside_ttl``) and the ``event_time`` it was observed at."""

    entity: dict[str, Any]
    values: dict[str, Any]
    status: dict[str, str]
    event_time: dict[str, datetime | None]


@dataclass(frozen=True)
class OnlineFeatures(ReadModel):
    """An online lookup: the feature columns asked for and one row per entity, in order."""

    features: list[str]
    rows: list[OnlineRow]


class OnlineRuntime:
    """What online lookups share across every actor of a project (and every request of the
    team server): the online store, opened on first use, the read counts, and the views
    recently resolved."""

    def __init__(self, open_store: Any, counter: ReadCounter) -> None:
        self._open_store = open_store
        self._store: OnlineStore | None = None
        self._lock = threading.Lock()
        self.counter = counter
        self.views: dict[str, tuple[float, FeatureView]] = {}

    @property
    def store(self) -> OnlineStore:
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    def close(self) -> None:
        self.counter.close()
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class Features:
    """Service for the feature store: ``apply``, ``get``, ``list``, ``versions``,
    ``entities``, ``glossary``, plus ``historical``, ``materialize``, ``online`` and
    ``online_reads``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        datasets: Datasets,
        contracts: Contracts,
        runtime: OnlineRuntime,
    ) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._contracts = contracts
        self._runtime = runtime

    # -- definitions --------------------------------------------------------------------------

    def apply(
        self, definitions: str | Path | Iterable[Any], *, dry_run: bool = False
    ) -> builtins.list[ApplyChange]:
        """Record a new version of every entity and feature view whose definition changed
        (contributor); ``dry_run`` only reports what would change. Views are checked against
        their source dataset: the event-time column, the entity's join keys and every feature
        must be columns of it, of a type that fits.

        Raises:
            InvalidInputError: the definitions have problems (all listed).
            NotFoundError: a source dataset does not exist.
            PermissionDeniedError: the actor is not a contributor.
        """
        defs = load_definitions(definitions)
        entity_specs = {d.name: d.spec() for d in defs if isinstance(d, EntityDefinition)}
        view_defs = [d for d in defs if isinstance(d, FeatureViewDefinition)]
        view_specs = {d.name: d.spec() for d in view_defs}
        if len(entity_specs) + len(view_specs) != len(defs):
            raise InvalidInputError("a definition name appears twice; give each one once")
        with self._ctx.db.read() as conn:
            if not dry_run:
                require_role(conn, self._ctx.actor, "contributor", "apply feature definitions")
            known = {
                name: dict(row.spec)
                for name in {s["entity"] for s in view_specs.values()} - set(entity_specs)
                if (row := latest_row(conn, feature_entities, name)) is not None
            }
        problems: builtins.list[str] = []
        for name, spec in view_specs.items():
            entity = entity_specs.get(spec["entity"]) or known.get(spec["entity"])
            if entity is None:
                problems.append(
                    f"feature view '{name}': no entity '{spec['entity']}'; define it in the "
                    "same file or apply it first"
                )
                continue
            problems += self._check_source(name, spec, entity["join_keys"])
        if problems:
            raise InvalidInputError(
                f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the feature "
                "definitions: " + "; ".join(problems),
                details={"problems": problems},
            )
        changes: builtins.list[ApplyChange] = []
        with ExitStack() as stack:
            # A dry run reads; a real one writes every version and its audit event at once.
            tx = None if dry_run else stack.enter_context(self._ctx.audited())
            conn = stack.enter_context(self._ctx.db.read()) if tx is None else tx.conn
            if tx is not None:
                require_role(conn, self._ctx.actor, "contributor", "apply feature definitions")
            entity_versions: dict[str, tuple[int, builtins.list[str]]] = {}
            for name, spec in entity_specs.items():
                change = self._apply_one(conn, tx, feature_entities, ENTITY_KIND, name, spec)
                changes.append(change)
                entity_versions[name] = (change.version, spec["join_keys"])
            for name, spec in view_specs.items():
                if spec["entity"] not in entity_versions:
                    row = latest_row(conn, feature_entities, spec["entity"])
                    entity_versions[spec["entity"]] = (int(row.version), row.spec["join_keys"])
                version, keys = entity_versions[spec["entity"]]
                full = {**spec, "entity_version": version, "join_keys": keys}
                changes.append(self._apply_one(conn, tx, feature_views, VIEW_KIND, name, full))
        self._runtime.views.clear()
        return changes

    def _apply_one(
        self,
        conn: Any,
        tx: AuditedTransaction | None,
        table: Any,
        kind: str,
        name: str,
        spec: dict[str, Any],
    ) -> ApplyChange:
        digest = digest_bytes(canonical_json(spec))
        current = latest_row(conn, table, name)
        if current is not None and current.digest == digest:
            return ApplyChange(kind, name, int(current.version), "unchanged")
        lines = diff_specs(None if current is None else dict(current.spec), spec)
        version = 1 if current is None else int(current.version) + 1
        action = "created" if current is None else "updated"
        if tx is not None:
            conn.execute(
                table.insert().values(
                    name=name,
                    version=version,
                    digest=digest,
                    spec=spec,
                    created_at=datetime.now(UTC),
                    created_by=self._ctx.actor,
                )
            )
            tx.record(
                f"{kind}.apply",
                kind,
                f"{name}@{version}",
                {"digest": digest, "spec": spec, "changes": lines},
            )
        return ApplyChange(kind, name, version, action, lines)

    def _check_source(
        self, name: str, spec: dict[str, Any], join_keys: builtins.list[str]
    ) -> builtins.list[str]:
        source = self._datasets.get(spec["source"])
        where = f"feature view '{name}' (source {source.ref})"
        if source.kind != "table":
            return [f"{where}: the source is a file tree, not a table"]
        schema = source.schema
        problems = []
        for column in [*join_keys, spec["timestamp"]]:
            if column not in schema:
                problems.append(f"{where}: no column {column!r}")
        ts = schema.get(spec["timestamp"], "")
        if ts and not (ts.startswith(("Datetime", "Date")) or ts == "String"):
            problems.append(f"{where}: timestamp column {spec['timestamp']!r} holds {ts}")
        for f in spec["features"]:
            dtype = schema.get(f["name"])
            if dtype is None:
                problems.append(f"{where}: no column for feature {f['name']!r}")
            elif not dtype.startswith(FEATURE_TYPES[f["type"]]):
                problems.append(
                    f"{where}: feature {f['name']!r} is declared {f['type']} but the column "
                    f"holds {dtype}"
                )
        return problems

    def get(self, ref: str) -> FeatureView:
        """A feature view version: ``NAME`` (latest) or ``NAME@N``.

        Raises:
            NotFoundError: no such view or version.
        """
        with self._ctx.db.read() as conn:
            return resolve_view(conn, ref)

    def entity(self, ref: str) -> Entity:
        """An entity version: ``NAME`` (latest) or ``NAME@N``.

        Raises:
            NotFoundError: no such entity or version.
        """
        with self._ctx.db.read() as conn:
            return resolve_entity(conn, ref)

    def list(self) -> builtins.list[FeatureView]:
        """The latest version of every feature view, by name."""
        return self._latest(feature_views, to_view)

    def entities(self) -> builtins.list[Entity]:
        """The latest version of every entity, by name."""
        return self._latest(feature_entities, to_entity)

    def _latest(self, table: Any, convert: Any) -> builtins.list[Any]:
        with self._ctx.db.read() as conn:
            rows = conn.execute(select(table).order_by(table.c.name, table.c.version.desc()))
            seen: dict[str, Any] = {}
            for row in rows:
                seen.setdefault(row.name, row)
        return [convert(r) for r in seen.values()]

    def versions(self, name: str) -> builtins.list[FeatureView]:
        """Every version of a feature view, oldest first.

        Raises:
            NotFoundError: no such view.
        """
        self.get(name)
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(feature_views)
                .where(feature_views.c.name == name)
                .order_by(feature_views.c.version)
            )
            return [to_view(r) for r in rows]

    def glossary(self) -> builtins.list[GlossaryEntry]:
        """Every feature of the latest views: what it means, its type and owner."""
        return [e for v in self.list() for e in glossary_entries(v)]

    # -- training data ------------------------------------------------------------------------

    def historical(
        self,
        entities: str | Any,
        features: Sequence[str] | str,
        *,
        timestamp: str | None = None,
        output: str | None = None,
        message: str = "",
        tags: Mapping[str, str] | None = None,
        progress: Progress = NO_PROGRESS,
    ) -> TrainingData:
        """Point-in-time correct training data: each entity row (a table dataset reference,
        or a DataFrame) with the latest value of each feature at or before the row's
        ``timestamp`` (the only time column when not given) and within the view's TTL.
        Every row comes back, in its order; features without a qualifying value are null.
        With ``output`` the result is registered as a version of that dataset whose lineage
        names the entity rows, the feature view versions and their sources, and ``tags`` are
        its tags (what the project's annotation policy may require of every dataset).

        Raises:
            InvalidInputError: a bad feature reference, time column or join key.
            NotFoundError: a view, feature or dataset does not exist.
            PermissionDeniedError: ``output`` is given and the actor is not a contributor.
            CheckFailedError: the result fails the contract bound to ``output``, or lacks
                what the project's annotation policy requires (``details["missing"]``).
        """
        import polars as pl

        if output is not None:
            with self._ctx.db.read() as conn:
                require_role(conn, self._ctx.actor, "contributor", "register training data")
        groups = self._resolve(parse_feature_refs(features), cached=False)
        entity_ref: str | None = None
        if isinstance(entities, str):
            progress.stage(f"reading entity rows {entities}")
            version = self._datasets.get(entities)
            entity_ref = version.ref
            frame = self._datasets.read_polars(version, via="features.historical")
        elif isinstance(entities, pl.DataFrame):
            frame = entities
        else:
            import pandas as pd

            if not isinstance(entities, pd.DataFrame):
                raise InvalidInputError(
                    "entities must be a dataset reference or a pandas or polars DataFrame"
                )
            frame = pl.from_pandas(entities)
        column = timestamp or _only_time_column(frame)
        view_frames, sources = self._view_frames(groups, "features.historical", progress)
        result = point_in_time_join(frame, column, view_frames, progress)
        dataset = None
        if output is not None:
            progress.stage(f"registering {output}")
            try:
                dataset = self._datasets.add(
                    output,
                    result,
                    tags=tags,
                    message=message
                    or f"point-in-time features {', '.join(v.ref for v, _ in groups)}"
                    + (f" for {entity_ref}" if entity_ref else ""),
                    parents=[r for r in dict.fromkeys([*(entity_ref or "",), *sources]) if r],
                    inputs=[(VIEW_KIND, v.ref) for v, _ in groups],
                    progress=progress,
                )
            except CheckFailedError as exc:
                raise _training_rejected(output, exc) from None
            progress.stage("recording the read")
        with self._ctx.audited() as tx:
            for view, names in groups:
                tx.record(
                    "feature_view.read",
                    VIEW_KIND,
                    view.ref,
                    {
                        "via": "historical",
                        "features": builtins.list(names),
                        "entities": entity_ref,
                        "rows": result.height,
                        "output": None if dataset is None else dataset.ref,
                    },
                )
        return TrainingData(
            result.height,
            result.columns,
            entity_ref,
            [v.ref for v, _ in groups],
            sources,
            dataset,
            result,
        )

    def point_in_time(
        self, features: Sequence[str] | str, timestamp: str, *, reader: str
    ) -> Callable[[pl.DataFrame], pl.DataFrame]:
        """A function joining ``features`` to entity rows as :meth:`historical` does (as of
        their ``timestamp`` column), for rows that come in batches, such as the chunks of a
        file ``models predict`` scores: the sources are read once, here, and one
        ``feature_view.read`` event per view names the ``reader`` (what the rows are).

        Raises:
            InvalidInputError: a bad feature reference.
            NotFoundError: a view, feature or source dataset does not exist.
        """
        groups = self._resolve(parse_feature_refs(features), cached=False)
        view_frames, _ = self._view_frames(groups, f"features.point_in_time {reader}")
        with self._ctx.audited() as tx:
            for view, names in groups:
                tx.record(
                    "feature_view.read",
                    VIEW_KIND,
                    view.ref,
                    {"via": "point_in_time", "features": builtins.list(names), "entities": reader},
                )

        def join(frame: pl.DataFrame) -> pl.DataFrame:
            return point_in_time_join(frame, timestamp, view_frames)

        return join

    def _view_frames(
        self,
        groups: builtins.list[tuple[FeatureView, tuple[str, ...]]],
        via: str,
        progress: Progress = NO_PROGRESS,
    ) -> tuple[builtins.list[ViewFrame], builtins.list[str]]:
        """The source rows of each view to join, and the source versions read."""
        view_frames: builtins.list[ViewFrame] = []
        sources: builtins.list[str] = []
        for view, names in groups:
            progress.stage(f"reading {view.source} for {view.ref}")
            source = self._datasets.get(view.source)
            sources.append(source.ref)
            view_frames.append(
                ViewFrame(
                    view.name,
                    self._datasets.read_polars(
                        source,
                        via=f"{via} {view.ref}",
                        columns=_needed(source.columns, [*view.join_keys, view.timestamp, *names]),
                    ),
                    view.join_keys,
                    view.timestamp,
                    names,
                    names,
                    view.ttl_seconds,
                )
            )
        return view_frames, sources

    def _resolve(
        self, refs: builtins.list[FeatureRef], *, cached: bool
    ) -> builtins.list[tuple[FeatureView, tuple[str, ...]]]:
        out: builtins.list[tuple[FeatureView, tuple[str, ...]]] = []
        taken: dict[str, str] = {}
        now = time.monotonic()
        for ref in refs:
            hit = self._runtime.views.get(ref.view) if cached else None
            if hit is not None and now - hit[0] < _VIEW_CACHE_SECONDS:
                view = hit[1]
            else:
                view = self.get(ref.view)
                self._runtime.views[ref.view] = (now, view)
            names = (
                tuple(f.name for f in view.features)
                if ref.features == ("*",)
                else tuple(view.feature(n).name for n in ref.features)
            )
            for n in names:
                if n in taken:
                    raise InvalidInputError(
                        f"feature {n!r} is asked of both '{taken[n]}' and '{view.name}'; "
                        "ask for it from one view"
                    )
                taken[n] = view.name
            out.append((view, names))
        return out

    # -- the online store ---------------------------------------------------------------------

    def materialize(
        self,
        view: str | None = None,
        *,
        incremental: bool = False,
        progress: Progress = NO_PROGRESS,
    ) -> builtins.list[Materialization]:
        """Write the latest values per entity of ``view`` (or of every view) from its source
        to the online store (contributor). ``incremental`` writes only events later than the
        last materialized one (a late event older than that waits for a full run). When the
        view binds a contract, the values are checked against it first.

        Raises:
            NotFoundError: no such view, or its source is missing.
            CheckFailedError: the values fail the view's contract (nothing written).
            PermissionDeniedError: the actor is not a contributor.
        """
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "materialize features")
        views = [self.get(view)] if view is not None else self.list()
        store = self._runtime.store
        done: builtins.list[Materialization] = []
        for v in views:
            started = time.perf_counter()
            progress.stage(f"materializing {v.ref}")
            source = self._datasets.get(v.source)
            frame = self._datasets.read_polars(source, via=f"features.materialize {v.ref}")
            mark = store.watermark(v.name) if incremental else None
            after = None if mark is None else datetime.fromtimestamp(mark, UTC)
            names = [f.name for f in v.features]
            latest = latest_per_entity(
                ViewFrame(v.name, frame, v.join_keys, v.timestamp, names, names, v.ttl_seconds),
                after=after,
            )
            if v.contract is not None:
                self._check_contract(v, latest)
            rows = store.write(v.name, v.join_keys, latest)
            if latest.height:
                top = latest.get_column("event_time").max()
                mark = max(mark or 0.0, top.timestamp()) if isinstance(top, datetime) else mark
                store.set_watermark(v.name, mark or 0.0)
            watermark = None if mark is None else datetime.fromtimestamp(mark, UTC)
            seconds = time.perf_counter() - started
            with self._ctx.audited() as tx:
                tx.record(
                    "feature_view.materialize",
                    VIEW_KIND,
                    v.ref,
                    {
                        "source": source.ref,
                        "rows": rows,
                        "store": store.kind,
                        "incremental": incremental,
                        "watermark": None if watermark is None else watermark.isoformat(),
                    },
                )
            done.append(
                Materialization(
                    v.ref, source.ref, rows, store.kind, incremental, watermark, seconds
                )
            )
        return done

    def _check_contract(self, view: FeatureView, latest: pl.DataFrame) -> None:
        from shipyard.data.validation import validate

        assert view.contract is not None
        contract = self._contracts.get(view.contract)
        report = validate(contract.contract, latest.rename({"event_time": view.timestamp}))
        if not report.passed:
            failed = ", ".join(
                f"{f.column or 'dataset'}: {f.check} ({count(f.failed_rows, 'row')})"
                for f in report.failures[:6]
            )
            raise CheckFailedError(
                f"the values of feature view '{view.ref}' fail its contract {contract.ref}: "
                f"{failed}; nothing was materialized",
                details={"report": report.to_dict(), "contract": contract.ref},
            )

    def online(
        self, entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str] | str
    ) -> OnlineFeatures:
        """The materialized values of ``features`` for each entity (a mapping of its join
        keys), with their event times and a status per value: ``present``, ``missing`` (never
        materialized, or null) or ``outside_ttl`` (older than the view's TTL; the value is
        withheld). Reads are counted per view and actor.

        Raises:
            InvalidInputError: a bad feature reference, or an entity row lacks a join key.
            NotFoundError: no such view or feature.
        """
        groups = self._resolve(parse_feature_refs(features), cached=True)
        rows = [dict(r) for r in entity_rows]
        values: builtins.list[dict[str, Any]] = [{} for _ in rows]
        status: builtins.list[dict[str, str]] = [{} for _ in rows]
        times: builtins.list[dict[str, datetime | None]] = [{} for _ in rows]
        store = self._runtime.store
        now = time.time()
        from shipyard.features.online import entity_key

        for view, names in groups:
            try:
                keys = [entity_key([r[k] for k in view.join_keys]) for r in rows]
            except KeyError as exc:
                raise InvalidInputError(
                    f"an entity row lacks the join key {exc} of feature view '{view.name}' "
                    f"(its keys: {', '.join(view.join_keys)})"
                ) from None
            ttl = view.ttl_seconds
            for i, stored in enumerate(store.read(view.name, keys, names)):
                for n in names:
                    if stored is None or stored[0].get(n) is None:
                        values[i][n], status[i][n] = None, "missing"
                        times[i][n] = None if stored is None else _utc(stored[1])
                        continue
                    fresh = ttl is None or now - stored[1] <= ttl
                    values[i][n] = stored[0][n] if fresh else None
                    status[i][n] = "present" if fresh else "outside_ttl"
                    times[i][n] = _utc(stored[1])
            self._runtime.counter.count(view.name, self._ctx.actor, len(rows))
        return OnlineFeatures(
            [n for _, names in groups for n in names],
            [OnlineRow(r, v, s, t) for r, v, s, t in zip(rows, values, status, times, strict=True)],
        )

    def online_reads(self, view: str | None = None) -> builtins.list[OnlineReadCount]:
        """Online reads per view and client (what is still counted in memory included)."""
        self._runtime.counter.flush()
        return read_counts(self._ctx.db, view)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _only_time_column(frame: pl.DataFrame) -> str:
    import polars as pl

    found = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) or t == pl.Date]
    if len(found) != 1:
        which = f"it has {', '.join(found)}" if found else "it has none"
        raise InvalidInputError(
            "name the entity rows' event-time column with timestamp= (--timestamp): " + which
        )
    return found[0]


def _needed(present: Sequence[str], wanted: Sequence[str]) -> builtins.list[str] | None:
    """The columns of a view's source to read: those the join needs, in the source's order;
    None (every column, so that the join names what is missing) when one is absent."""
    if any(c not in present for c in wanted):
        return None
    keep = set(wanted)
    return [c for c in present if c in keep]


def _training_rejected(output: str, exc: CheckFailedError) -> CheckFailedError:
    """The rejection of a point-in-time result by the contract bound to ``output``, with
    the fixes open to ``features historical`` (which neither quarantines nor stores invalid
    data): the dataset's own reasons, without the flags of ``data add``."""
    from shipyard.data.validation_report import ValidationReport

    if "report" not in exc.details and "contract" not in exc.details:
        return exc  # not the contract's verdict (the annotation policy's): as it is
    report = exc.details.get("report")
    contract = exc.details.get("contract", "its contract")
    why = ValidationReport.from_dict(report).summary() if report else str(exc)
    return CheckFailedError(
        f"rejected: the point-in-time result for dataset '{output}' fails contract "
        f"{contract}: {why}; nothing was stored (change the entity rows or the features, "
        f"write to another dataset with -o, or unbind the contract from '{output}')",
        details=exc.details,
    )
