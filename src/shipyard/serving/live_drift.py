"""Live drift of what a server scores: per feature, the rows of the current window counted in
the bins of the served version's drift reference, and the gauges computed from those counts
when Prometheus scrapes.

Counting happens in the prediction log's writer process (:mod:`shipyard.serving.logwriter`),
which already reads every request's rows back out of its body: the request path does no
extra work. Each writer keeps, per model version, a ring of sub-window buckets (the window
split in :data:`SUB_WINDOWS`, keyed by the answer's time, so buckets of different writers line
up) and writes them to a file of its own in the server's drift folder after every frame
(:class:`LiveCounts`). ``/metrics`` adds up every file's buckets inside the window
(:func:`merged_windows`), so the gauges reflect the rows every worker scored, and computes:

- ``shipyard_feature_drift{model,version,feature,method}``: PSI for numeric features (the
  reference's quantile bins), Jensen–Shannon distance for categorical ones (top values and
  "other"), from :mod:`shipyard.monitoring.statistics`, once the window holds at least
  ``min_rows`` rows (no series before: too few rows to say anything, never drift);
- ``shipyard_dataset_drift_share{model,version}``: the share of features at or above their
  method's threshold (:data:`THRESHOLDS`), under the same guard;
- ``shipyard_feature_null_share{model,version,feature}`` and
  ``shipyard_drift_window_rows{model,version}``.

The reference is the one stored with the served version's training dataset version
(:func:`served_reference`, through ``project.drift``), read once per version a writer sees.
Counts in fixed bins add up, so merging workers (or windows) is a sum. The window slides in
steps of one sub-window: it covers between ``window - window/SUB_WINDOWS`` and ``window``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import operator
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from shipyard.monitoring.statistics import jensen_shannon, psi

if TYPE_CHECKING:
    from shipyard.monitoring.reference import ColumnReference, ReferenceProfile
    from shipyard.project import Project

__all__ = [
    "SUB_WINDOWS",
    "THRESHOLDS",
    "LiveCounts",
    "LiveDriftCollector",
    "VersionBins",
    "Window",
    "drift_folder",
    "merged_windows",
    "served_reference",
]

# Buckets per window: the window slides by a twelfth of its length.
SUB_WINDOWS = 12
# A feature drifts at or above these, as Evidently's defaults for these methods.
THRESHOLDS = {"psi": 0.1, "jensenshannon": 0.1}
STATISTICS = {"psi": psi, "jensenshannon": jensen_shannon}
FORMAT = 1


# -- counting (the writer process) --------------------------------------------------------------


@dataclass(frozen=True)
class FeatureBins:
    """One feature of a reference as the counter reads it: numeric (``edges``, bins open at
    both ends) or categorical (``values`` then "other"); its counts sit at ``offset`` in a
    version's flat count vector, ``bins`` of them and then its nulls."""

    name: str
    kind: str
    method: str
    reference: tuple[int, ...]
    reference_null_share: float
    offset: int
    edges: tuple[float, ...] = ()
    values: tuple[Any, ...] = ()
    _index: dict[Any, int] = field(init=False, repr=False, compare=False)
    _edges: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Looked up per value: built once. A null (None) has its own slot after the bins.
        index = {v: i for i, v in enumerate(self.values)}
        index[None] = len(self.reference)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_edges", np.asarray(self.edges, dtype=np.float64))

    @property
    def bins(self) -> int:
        return len(self.reference)

    def count(self, values: Sequence[Any]) -> np.ndarray:
        """``values`` in this feature's bins, then the nulls among them (one more slot)."""
        nulls = self.bins
        if self.kind == "numeric":
            try:
                arr = np.array(values, dtype=np.float64)  # None becomes NaN
            except (TypeError, ValueError):
                arr = np.array([_number(v) for v in values], dtype=np.float64)
            idx = np.searchsorted(self._edges, arr, side="left")
            idx[~np.isfinite(arr)] = nulls
            return np.bincount(idx, minlength=nulls + 1)
        # Request rows come from JSON, which has no NaN: a missing value is None.
        get, other = self._index.get, nulls - 1
        try:
            codes = list(map(get, values, itertools.repeat(other, len(values))))
        except TypeError:  # an unhashable value (a list): not one of the reference's
            codes = [_code(get, v, other) for v in values]
        return np.bincount(np.asarray(codes, dtype=np.intp), minlength=nulls + 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "reference": list(self.reference),
            "reference_null_share": self.reference_null_share,
        }


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _code(get: Callable[[Any, int], int], value: Any, other: int) -> int:
    try:
        return get(value, other)
    except TypeError:
        return other


class VersionBins:
    """The features of one served version's reference, laid out in one flat count vector:
    each feature's bins and nulls, then the number of rows."""

    def __init__(self, reference: ReferenceProfile, columns: Sequence[str]) -> None:
        from shipyard.monitoring.reference import NumericReference

        features = []
        offset = 0
        for name in columns:
            col: ColumnReference | None = reference.columns.get(name)
            if col is None:
                continue
            if isinstance(col, NumericReference):
                feature = FeatureBins(
                    name, "numeric", "psi", col.counts, col.null_share, offset, edges=col.edges
                )
            else:
                counts = (*col.counts, col.other)
                feature = FeatureBins(
                    name,
                    "categorical",
                    "jensenshannon",
                    counts,
                    col.null_share,
                    offset,
                    values=col.values,
                )
            features.append(feature)
            offset += feature.bins + 1
        self.features: tuple[FeatureBins, ...] = tuple(features)
        self.size = offset + 1  # the last slot counts rows
        names = [f.name for f in self.features]
        self._names = names
        # One C-level pass per row takes every feature out; with a single feature
        # itemgetter returns the value, not a tuple.
        self._getter = operator.itemgetter(*names) if len(names) > 1 else None

    def count(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The flat count vector of ``rows`` (request rows as the client sent them)."""
        out = np.zeros(self.size, dtype=np.int64)
        out[-1] = len(rows)
        if not self.features or not rows:
            return out
        columns: Sequence[Sequence[Any]]
        try:
            if self._getter is None:
                raise KeyError
            columns = list(zip(*map(self._getter, rows), strict=True))
        except (KeyError, TypeError):  # a row without a feature: None for it
            columns = [[r.get(name) for r in rows] for name in self._names]
        for f, values in zip(self.features, columns, strict=True):
            out[f.offset : f.offset + f.bins + 1] += f.count(values)
        return out


def served_reference(project: Project, ref: str) -> tuple[ReferenceProfile, list[str]] | None:
    """The drift reference of the model version ``ref`` (the one stored with its training
    dataset version, found through its lineage) and the features to count, its signature's
    columns; None without a signature or training data in its lineage."""
    from shipyard.errors import NotFoundError
    from shipyard.registry.signatures import Signature

    mv = project.models.get(ref)
    if not mv.signature:
        return None
    try:
        dataset = project.drift.reference_of_model(mv.ref)
    except NotFoundError:
        return None
    columns = list(Signature.from_dict(mv.signature).columns)
    return project.drift.reference(dataset), columns


@dataclass(frozen=True)
class Window:
    """Live drift settings: the drift folder of one server, the window's length, and the rows
    it must hold before drift is computed."""

    folder: str
    seconds: float = 3600.0
    min_rows: int = 200

    @property
    def bucket_ms(self) -> int:
        return max(1, round(self.seconds * 1000 / SUB_WINDOWS))


class LiveCounts:
    """What one writer process counts: per model version (``name@version``), per sub-window
    bucket, the flat count vector of the rows scored, kept for one window and written to
    ``counts-WRITER.json`` in the drift folder after every :meth:`flush` (``writer``: this
    process's id unless given).

    ``reference_of(ref)`` gives a version's reference and features (None: not counted); it
    is asked once per version, in :meth:`flush`, after the log's rows are written.
    """

    def __init__(
        self,
        window: Window,
        reference_of: Callable[[str], tuple[ReferenceProfile, list[str]] | None],
        *,
        writer: str | None = None,
    ) -> None:
        self.window = window
        self._reference_of = reference_of
        self._versions: dict[str, VersionBins | None] = {}
        self._buckets: dict[str, dict[int, np.ndarray]] = {}
        self._pending: dict[tuple[str, int], list[Any]] = {}
        self.path = Path(window.folder) / f"counts-{writer or os.getpid()}.json"

    def observe(self, model: str, time_ms: int, rows: list[Any]) -> None:
        """Keep ``rows`` scored by ``model`` at ``time_ms`` for the next :meth:`flush`."""
        key = (model, time_ms // self.window.bucket_ms)
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = list(rows)
        else:
            pending.extend(rows)

    def flush(self, now_ms: int) -> None:
        """Count what was observed into its buckets, drop buckets older than the window, and
        write the file (to a temporary name, then renamed: a scrape reads a whole file)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        for (model, bucket), rows in pending.items():
            bins = self._bins(model)
            if bins is None or not rows:
                continue
            buckets = self._buckets.setdefault(model, {})
            counts = bins.count(rows)
            if bucket in buckets:
                buckets[bucket] += counts
            else:
                buckets[bucket] = counts
        oldest = now_ms // self.window.bucket_ms - SUB_WINDOWS + 1
        for buckets in self._buckets.values():
            for bucket in [b for b in buckets if b < oldest]:
                del buckets[bucket]
        self._write()

    def _bins(self, model: str) -> VersionBins | None:
        if model not in self._versions:
            try:
                found = self._reference_of(model)
            except Exception as exc:  # the log goes on; this version's drift is not counted
                found = None
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = "no signature, or no training data in its lineage"
            self._versions[model] = None if found is None else VersionBins(*found)
            if found is None:
                print(f"shipyard serve: no live drift for {model}: {reason}", file=sys.stderr)
        return self._versions[model]

    def _write(self) -> None:
        doc = {
            "format": FORMAT,
            "bucket_ms": self.window.bucket_ms,
            "versions": {
                model: {
                    "features": [f.to_json() for f in bins.features],
                    "buckets": {str(b): c for b, c in self._buckets.get(model, {}).items()},
                }
                for model, bins in self._versions.items()
                if bins is not None
            },
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
        os.replace(tmp, self.path)


# -- gauges (any worker, when scraped) ----------------------------------------------------------


@dataclass(frozen=True)
class VersionWindow:
    """One version's window, summed over every writer: its features and flat counts."""

    model: str  # name@version
    features: tuple[dict[str, Any], ...]
    counts: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.counts[-1])


def merged_windows(folder: str | Path, now_ms: int) -> dict[str, VersionWindow]:
    """Per model version, the counts of every writer's file in ``folder`` whose buckets fall
    in the window ending at ``now_ms``. A file that cannot be read (being replaced, or of
    another format) is skipped."""
    merged: dict[str, VersionWindow] = {}
    for path in sorted(Path(folder).glob("counts-*.json")):
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if doc.get("format") != FORMAT:
            continue
        oldest = now_ms // int(doc["bucket_ms"]) - SUB_WINDOWS + 1
        for model, version in doc["versions"].items():
            features = tuple(version["features"])
            found = merged.get(model)
            size = sum(len(f["reference"]) + 1 for f in features) + 1
            if found is not None and found.features != features:
                continue  # another reference for the same version: keep the first
            total = found.counts if found is not None else np.zeros(size, dtype=np.int64)
            for bucket, counts in version["buckets"].items():
                if int(bucket) >= oldest and len(counts) == size:
                    total = total + np.asarray(counts, dtype=np.int64)
            merged[model] = VersionWindow(model, features, total)
    return merged


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str
    statistic: float | None  # None: not computed (too few rows, or every value missing)
    null_share: float


def feature_drifts(window: VersionWindow, min_rows: int) -> list[FeatureDrift]:
    """Per feature of ``window``: its statistic against the reference (once the window
    holds ``min_rows`` rows and the feature has a value) and its null share."""
    out = []
    offset = 0
    rows = window.rows
    for f in window.features:
        bins = len(f["reference"])
        counts = window.counts[offset : offset + bins]
        nulls = int(window.counts[offset + bins])
        offset += bins + 1
        statistic = None
        if rows >= min_rows and counts.sum() > 0 and sum(f["reference"]) > 0:
            statistic = STATISTICS[f["method"]](f["reference"], counts)
        out.append(FeatureDrift(f["name"], f["method"], statistic, nulls / rows if rows else 0.0))
    return out


class LiveDriftCollector:
    """The live drift gauges of the deployment ``deployment``, computed from the drift folder
    whenever the registry is collected (a Prometheus custom collector)."""

    def __init__(
        self, deployment: str, window: Window, clock: Callable[[], float] | None = None
    ) -> None:
        import time

        self.deployment = deployment
        self.window = window
        self._clock = clock or time.time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        drift = GaugeMetricFamily(
            "shipyard_feature_drift",
            "Drift of a feature in the live window against the served version's reference "
            "(method psi: numeric, jensenshannon: categorical); absent below the minimum rows.",
            labels=["model", "version", "feature", "method"],
        )
        share = GaugeMetricFamily(
            "shipyard_dataset_drift_share",
            "Share of features whose drift is at or above its method's threshold in the live "
            "window; absent below the minimum rows.",
            labels=["model", "version"],
        )
        nulls = GaugeMetricFamily(
            "shipyard_feature_null_share",
            "Share of rows in the live window with the feature missing.",
            labels=["model", "version", "feature"],
        )
        rows = GaugeMetricFamily(
            "shipyard_drift_window_rows",
            "Rows in the live drift window (drift is computed from the minimum on).",
            labels=["model", "version"],
        )
        now_ms = int(self._clock() * 1000)
        windows = merged_windows(self.window.folder, now_ms)
        for model, window in sorted(windows.items()):
            version = model.rpartition("@")[2]
            labels = [self.deployment, version]
            rows.add_metric(labels, window.rows)
            drifted = compared = 0
            for fd in feature_drifts(window, self.window.min_rows):
                if window.rows:
                    nulls.add_metric([*labels, fd.feature], fd.null_share)
                if fd.statistic is not None:
                    drift.add_metric([*labels, fd.feature, fd.method], fd.statistic)
                    compared += 1
                    drifted += fd.statistic >= THRESHOLDS[fd.method]
            if compared:
                share.add_metric(labels, drifted / compared)
        yield from (drift, share, nulls, rows)


def drift_folder(multiprocess_dir: str | None) -> tuple[Path, bool]:
    """The folder the writers of this server count in, and whether this process made it
    (then it removes it on exit): beside the shared metrics files with several workers
    (removed with them), else a new temporary folder."""
    import tempfile

    if multiprocess_dir:
        folder = Path(multiprocess_dir) / "live-drift"
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
        return folder, False
    return Path(tempfile.mkdtemp(prefix="shipyard-drift-")), True
