"""Which loaded version answers a request (the deployment's route weights: a canary) and
which also scores it in the background (its shadow), on a bounded pool of its own."""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.governance.deployments import Deployment
    from shipyard.serving.reload import Slot

__all__ = ["Plan", "ShadowPool"]


@dataclass(frozen=True)
class Plan:
    """What serves now: the deployment as last read and the version serving each of its
    aliases (``slots``; an alias whose holder may not serve and that had no earlier version
    is left out). A request takes the plan of the moment and keeps it to the end, so a
    change never reaches a request halfway."""

    deployment: Deployment
    slots: Mapping[str, Slot]
    shadow: Slot | None
    _routes: tuple[Slot, ...]
    _cumulative: tuple[int, ...]

    @classmethod
    def of(cls, deployment: Deployment, slots: Mapping[str, Slot]) -> Plan:
        """The plan serving ``slots`` with ``deployment``'s weights (aliases of weight 0
        take no traffic)."""
        routes, cumulative, total = [], [], 0
        for alias, weight in deployment.routes.items():
            if weight > 0 and alias in slots:
                total += weight
                routes.append(slots[alias])
                cumulative.append(total)
        shadow = slots.get(deployment.shadow) if deployment.shadow else None
        return cls(deployment, dict(slots), shadow, tuple(routes), tuple(cumulative))

    def route(self) -> Slot | None:
        """The version that answers the next request, drawn by weight; None when no route
        has a version that may serve."""
        routes = self._routes
        if len(routes) == 1:
            return routes[0]
        if not routes:
            return None
        point = random.random() * self._cumulative[-1]
        return routes[bisect.bisect_right(self._cumulative, point)]

    @property
    def answering(self) -> bool:
        """Whether any route has a version to answer with."""
        return bool(self._routes)

    def describe(self) -> str:
        """``credit-risk: production=90 (credit-risk@1), challenger=10 (credit-risk@2),
        shadow canary (credit-risk@3)``, naming what serves each alias."""
        d = self.deployment

        def held(alias: str) -> str:
            slot = self.slots.get(alias)
            return slot.ref if slot is not None else "not served"

        parts = [f"{a}={w} ({held(a)})" for a, w in d.routes.items()]
        if d.shadow:
            parts.append(f"shadow {d.shadow} ({held(d.shadow)})")
        return f"{d.name}: {', '.join(parts)}"


class ShadowPool:
    """Runs shadow scoring on ``workers`` threads of its own, with at most ``queue`` more
    waiting: work beyond that is dropped and reported to ``on_drop``, so a slow shadow
    version never holds memory without bound or slows the answers."""

    def __init__(self, workers: int, queue: int, on_drop: Callable[[], None]) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="shipyard-shadow")
        self._room = threading.BoundedSemaphore(workers + queue)
        self._on_drop = on_drop

    def submit(self, fn: Callable[..., None], *args: Any) -> bool:
        """Queue ``fn(*args)``; False (and counted) when the pool is full."""
        if not self._room.acquire(blocking=False):
            self._on_drop()
            return False
        try:
            self._executor.submit(self._run, fn, args)
        except RuntimeError:  # shutting down
            self._room.release()
            self._on_drop()
            return False
        return True

    def _run(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        finally:
            self._room.release()

    def close(self) -> None:
        """Finish the work already running or queued (its scores reach the log)."""
        self._executor.shutdown(wait=True)
