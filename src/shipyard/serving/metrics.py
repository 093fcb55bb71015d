"""The model server's Prometheus metrics.

With one worker the metrics live in a registry of the app, with the process collector. With
``--workers`` above 1, ``PROMETHEUS_MULTIPROC_DIR`` names a folder of this server's own
(:func:`metrics_folder`) and every worker writes its values to files there that ``/metrics``
aggregates, so counters and histograms add up across workers. The exposition passes
``promtool check metrics`` either way: counters end in ``_total``, the KPI sums are a summary's
``_sum``.
"""

from __future__ import annotations

import collections
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    Summary,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["LATENCY_BUCKETS", "ServerMetrics", "metrics_folder"]

# The *_created series double the output without helping a dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds, from half a millisecond: a model server answers in milliseconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServerMetrics:
    """Every metric the server exports, created once per app (or per worker)."""

    def __init__(self) -> None:
        shared = multiprocess()
        # In multiprocess mode values go to files, not to a registry.
        self.registry: CollectorRegistry | None = None if shared else CollectorRegistry()
        r: Any = self.registry
        self.requests = Counter(
            "shipyard_requests",
            "HTTP requests answered.",
            ["model", "version", "endpoint", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "shipyard_request_duration_seconds",
            "Time to answer a request.",
            ["model", "version", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "shipyard_predictions", "Rows predicted.", ["model", "version"], registry=r
        )
        self.errors = Counter(
            "shipyard_prediction_errors",
            "Requests refused or failed, by reason.",
            ["model", "version", "reason"],
            registry=r,
        )
        self.inflight = Gauge(
            "shipyard_inflight_requests",
            "Requests being answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        # One worker counts in a plain integer (on the event loop's thread) that the gauge
        # reads when scraped: no lock per request. Several workers write it to their files.
        self._inflight = 0
        if self.registry is not None:
            self.inflight.set_function(lambda: self._inflight)
        self.accuracy = Gauge(
            "shipyard_model_accuracy",
            "Share of correct predictions among those with feedback in the accuracy window.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="max",
        )
        self.feedback = Counter(
            "shipyard_feedback", "Ground-truth labels received.", ["model", "version"], registry=r
        )
        self.feature_lookups = Counter(
            "shipyard_feature_lookups",
            "Feature values looked up in the online store, by view and status (present, "
            "missing, outside_ttl).",
            ["model", "view", "status"],
            registry=r,
        )
        self.kpi = Counter("shipyard_kpi", "Business KPI events.", ["name"], registry=r)
        # A summary: its _sum adds the values (which may be negative, so not a counter) and
        # its _count counts them, as Prometheus expects of a series named *_sum.
        self.kpi_value = Summary(
            "shipyard_kpi_value", "Business KPI values (sum and count).", ["name"], registry=r
        )
        self.cpu = Gauge(
            "shipyard_cpu_utilization_ratio",
            "CPU used by the serving process(es), as a share of one core per worker.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.memory = Gauge(
            "shipyard_memory_rss_bytes",
            "Resident memory of the serving process(es).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.refresh_errors = Counter(
            "shipyard_refresh_errors",
            "Failed refreshes of what the server follows (refresh: aliases, accuracy); the "
            "server keeps what it had and tries again.",
            ["model", "refresh"],
            registry=r,
        )
        self.dropped = Counter(
            "shipyard_prediction_log_dropped",
            "Prediction-log records dropped (buffer full, writer gone, or an entry it could "
            "not read).",
            registry=r,
        )
        self.refused = Counter(
            "shipyard_refused_versions",
            "Versions an alias of the deployment pointed at that may not serve (not approved, "
            "rejected, archived, or no holder: version 'none'), counted once each time one is "
            "seen; the server keeps the previous version for that alias.",
            ["model", "alias", "version"],
            registry=r,
        )
        self.violations = Counter(
            "shipyard_contract_violations",
            "Values refused by the checks of the served version, by column and check (missing, "
            "null, type, min, max, allowed, regex, extra, no_imputer, invalid): each problem "
            "a refusal names, at most 50 per request.",
            ["model", "version", "column", "check"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            "shipyard_shadow_dropped",
            "Shadow scorings dropped because the shadow pool was full (the answers were not "
            "delayed).",
            ["model"],
            registry=r,
        )
        self._process_cpu: Counter | None = None
        self._process_rss: Gauge | None = None
        if self.registry is not None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        else:
            # The process collector does not aggregate across workers: export the same names
            # from every worker's files. CPU time is a counter that each worker advances by
            # what it used since its last sample, so the sum keeps what exited workers used
            # and never goes down; memory is a gauge over the live workers.
            self._process_cpu = Counter(
                "process_cpu_seconds", "CPU seconds used by the workers.", registry=None
            )
            self._process_rss = Gauge(
                "process_resident_memory_bytes",
                "Resident memory of the live workers.",
                registry=None,
                multiprocess_mode="livesum",
            )
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        # Labelled children, looked up once: .labels() costs more than the increment.
        self._answered: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._predicted: dict[tuple[str, str], Any] = {}
        # Collectors computed when scraped (the live drift gauges): registered in the app's
        # registry, or added to the one each scrape builds from the workers' files.
        self._collectors: list[Any] = []

    def add_collector(self, collector: Any) -> None:
        """Export what ``collector`` (a Prometheus custom collector) yields on every scrape."""
        if self.registry is not None:
            self.registry.register(collector)
        else:
            self._collectors.append(collector)

    def started(self) -> None:
        """One more request being answered (call on the event loop's thread)."""
        if self.registry is not None:
            self._inflight += 1
        else:
            self.inflight.inc()

    def finished(self) -> None:
        """One request fewer being answered."""
        if self.registry is not None:
            self._inflight -= 1
        else:
            self.inflight.dec()

    def answered(self, model: str, version: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and observe how long it took."""
        key = (model, version, endpoint, str(code))
        children = self._answered.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.duration.labels(model, version, endpoint))
            self._answered[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def predicted(self, model: str, version: str, rows: int) -> None:
        """Count ``rows`` predictions made by ``model`` version ``version``."""
        child = self._predicted.get((model, version))
        if child is None:
            child = self._predicted[(model, version)] = self.predictions.labels(model, version)
        child.inc(rows)

    def violated(
        self, model: str, version: str, errors: list[dict[str, Any]], columns: Sequence[str]
    ) -> None:
        """Count the problems of a refused request (``{"field", "check"}`` each): a field
        outside the version's ``columns`` counts as ``(other)``, so that what a client sends
        cannot add series."""
        known = set(columns)
        for key, n in collections.Counter(
            (e["field"] if e["field"] in known else "(other)", e.get("check", "invalid"))
            for e in errors
        ).items():
            self.violations.labels(model, version, *key).inc(n)

    def render(self) -> bytes:
        """The text exposition of every metric (aggregated across workers when shared)."""
        if self.registry is not None:
            return generate_latest(self.registry)  # type: ignore[no-any-return]
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in self._collectors:
            registry.register(collector)
        return generate_latest(registry)  # type: ignore[no-any-return]

    def start_resource_sampler(self, interval: float = 2.0) -> None:
        """Sample this process's CPU and memory into the gauges in the background."""
        import psutil

        proc = psutil.Process()
        proc.cpu_percent(None)

        counted = 0.0  # CPU seconds already added to the counter

        def sample() -> None:
            nonlocal counted
            rss = proc.memory_info().rss
            self.memory.set(rss)
            if self._process_rss is not None and self._process_cpu is not None:
                times = proc.cpu_times()
                used = times.user + times.system
                self._process_rss.set(rss)
                if used > counted:
                    self._process_cpu.inc(used - counted)
                    counted = used

        def loop() -> None:
            while not self._stop.wait(interval):
                self.cpu.set(proc.cpu_percent(None) / 100.0)
                sample()

        sample()
        self._sampler = threading.Thread(target=loop, name="shipyard-resources", daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        """Stop the sampler; in a worker of a shared folder, drop its live gauges (memory,
        CPU share, in-flight requests) from the aggregate."""
        self._stop.set()
        if self.registry is None:
            from prometheus_client import multiprocess as mp

            mp.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def metrics_folder() -> Path:
    """A new, empty folder for the metric files of one server's workers, in the system's
    temporary folder (memory-mapped files want a local disk, not a shared project folder).
    Each server has its own, so one never touches another's; the caller removes it when the
    server exits."""
    return Path(tempfile.mkdtemp(prefix="shipyard-metrics-"))
