"""The model server: the FastAPI app behind ``shipyard serve NAME`` (a deployment) and
``shipyard serve NAME@ALIAS`` (a protected alias of the model NAME alone).

Endpoints (:mod:`shipyard.serving.routes`): ``POST /predict`` (records or MLflow's
``dataframe_split``), the Open Inference Protocol v2 (``/v2/health/live``,
``/v2/health/ready``, ``/v2/models/{name}``, ``/v2/models/{name}/infer``), ``GET /metrics``
for Prometheus (with the live drift of the inputs: :mod:`shipyard.serving.live_drift`),
``POST /feedback`` for ground truth and ``POST /kpi`` for business events.
Bad input gets a 4xx naming the field and the reason, never a 5xx, and is counted.

What serves (:mod:`shipyard.serving.reload`): only versions that may serve (approved, not
rejected, not archived), checked before a model loads and every round after; the server
follows the deployment's routes, shadow and each alias's holder.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import secrets
import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import FastAPI

from shipyard.serving.ingest import IngestAuth
from shipyard.serving.live_drift import LiveDriftCollector, Window, drift_folder
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.openapi import install as install_openapi
from shipyard.serving.prediction_log import PredictionLog
from shipyard.serving.reload import announce, check_servable, follow, load_slot
from shipyard.serving.routes import install as install_routes
from shipyard.serving.routing import Plan, ShadowPool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from shipyard.project import Project
    from shipyard.serving.reload import Slot

__all__ = ["ServeConfig", "State", "create_app"]

MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    """What to serve: the deployment ``deployment`` (its routes, shadow and holders, followed
    as they change), or with ``alias``, that protected alias of the model ``deployment``
    alone. The prediction log and the metrics are kept under ``deployment``. Shadow scoring
    runs on ``shadow_workers`` threads with at most ``shadow_queue`` requests waiting."""

    project: str
    deployment: str
    alias: str | None = None
    reload_seconds: float = 2.0
    max_body_bytes: int = MAX_BODY_BYTES
    log_queue: int = 100_000
    accuracy_window_seconds: float = 3600.0
    shadow_workers: int = 1
    shadow_queue: int = 64
    # A file holding the bearer token /feedback and /kpi require (None: open). The path
    # travels to the workers, never the token.
    ingest_token_file: str | None = None
    # How long /feedback waits for the log row of an answer given a moment ago, and how often
    # the log is handed to its writer (so a row reaches the table within about that time).
    feedback_wait_seconds: float = 2.0
    log_flush_seconds: float = 1.0
    # Live drift (:mod:`shipyard.serving.live_drift`): the window counted in the reference's
    # bins (0 turns it off) and the rows it must hold before drift is computed.
    drift_window_seconds: float = 3600.0
    drift_min_rows: int = 200

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


@dataclass
class State:
    """A running server: its project, metrics and log; what serves now (``plan``, swapped
    whole when the deployment or a holder changes); every version loaded per alias, serving
    or not (``loaded``); and the refusals already reported."""

    project: Project
    config: ServeConfig
    metrics: ServerMetrics
    log: PredictionLog
    plan: Plan
    shadow_pool: ShadowPool
    loaded: dict[str, Slot]
    ingest: IngestAuth
    refusals: set[tuple[str, str]] = field(default_factory=set)
    ready: bool = False
    # Request ids: 32 hex digits, a random prefix per process and a counter.
    _id_prefix: str = field(default_factory=lambda: secrets.token_hex(10))
    _id_counter: Iterator[int] = field(default_factory=itertools.count)

    def request_ids(self, n: int) -> list[str]:
        prefix, counter = self._id_prefix, self._id_counter
        return [f"{prefix}{next(counter):012x}" for _ in range(n)]

    def issued(self, request_id: str) -> bool:
        """Whether this process gave out ``request_id``."""
        return request_id.startswith(self._id_prefix)


def create_app(config: ServeConfig) -> FastAPI:
    """The app for ``config``. At start-up it checks that every version it would serve or
    shadow may serve, and refuses to start otherwise (:func:`check_servable`: CheckFailedError
    listing every reason); then it loads them and follows the deployment.

    Raises:
        InvalidInputError: ``config.ingest_token_file`` cannot be read or is empty.
    """
    from shipyard.project import open_project

    name = config.deployment
    ingest = IngestAuth.from_file(config.ingest_token_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        project = open_project(config.project)
        metrics = ServerMetrics()
        for refresh in ("aliases", "accuracy"):  # exported as 0 from the start, for alerts
            metrics.refresh_errors.labels(name, refresh)
        metrics.shadow_dropped.labels(name)
        window = None
        if config.drift_window_seconds > 0:
            folder, own_folder = drift_folder(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
            window = Window(str(folder), config.drift_window_seconds, config.drift_min_rows)
            metrics.add_collector(LiveDriftCollector(name, window))
        log = PredictionLog(
            project,
            name,
            max_queue=config.log_queue,
            flush_seconds=config.log_flush_seconds,
            on_drop=metrics.dropped.inc,
            live_drift=window,
        )

        def close_log() -> None:
            log.close()
            if window is not None and own_folder:
                shutil.rmtree(window.folder, ignore_errors=True)

        try:
            deployment, holders = await asyncio.to_thread(check_servable, project, config)
            loaded: dict[str, Slot] = {}
            for alias, holder in holders.items():
                assert holder.ref is not None  # check_servable refuses an alias without one
                loaded[alias] = await asyncio.to_thread(load_slot, project, alias, holder.ref)
                announce(loaded[alias])
        except BaseException as exc:  # a version that may not serve or cannot load
            app.state.startup_error = exc
            await asyncio.to_thread(close_log)
            metrics.stop()
            project.close()
            raise
        shadow_dropped = metrics.shadow_dropped.labels(name)
        pool = ShadowPool(config.shadow_workers, config.shadow_queue, shadow_dropped.inc)
        plan = Plan.of(deployment, loaded)
        state = State(project, config, metrics, log, plan, pool, loaded, ingest)
        app.state.shipyard = state
        # What start-up loaded (libraries, models) lives as long as the server: keep it out
        # of the collector's generations, so that collections only walk request garbage. The
        # garbage of start-up itself (the checks of the compiled forms) goes first, or it would
        # be kept for good.
        gc.collect()
        gc.freeze()
        state.ready = True
        metrics.start_resource_sampler()
        watcher = asyncio.create_task(follow(state))
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.to_thread(pool.close)
            metrics.stop()
            await asyncio.to_thread(close_log)
            project.close()

    app = FastAPI(
        title=f"shipyard: {name}",
        description="Predictions from the model registry, checked against the signature.",
        lifespan=lifespan,
    )
    install_openapi(app, name)
    install_routes(app, name)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --workers``: the config travels in ``SHIPYARD_SERVE_CONFIG``."""
    return create_app(ServeConfig.from_json(os.environ["SHIPYARD_SERVE_CONFIG"]))
