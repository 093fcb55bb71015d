"""Where steps run, behind one interface (``concurrent.futures.Executor``):

- ``local``: in the process that started the run, one step at a time; ``local`` with
  ``workers > 1``: independent steps (and the items of a ``map``) on a pool of that many
  processes;
- ``dask``: a Dask ``LocalCluster`` of two worker processes started for the run;
- ``dask://HOST:PORT``: the Dask scheduler already running there.

Every executor runs the same task function (:func:`shipyard.pipelines.worker.run_task`) on
the same JSON task, so outputs, digests and lineage do not depend on where a step ran.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidArgumentError, InvalidInputError, MissingDependencyError

__all__ = ["Executor", "InlineExecutor", "open_executor"]

#: Workers of the LocalCluster that ``--executor dask`` starts.
DASK_LOCAL_WORKERS = 2


class InlineExecutor(cf.Executor):
    """Runs each submitted call at once, in this process, and returns its finished future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@dataclass
class Executor:
    """An opened executor: the pool, how it is described in records, and whether tasks run
    in this process (then they share the driver's open project)."""

    pool: cf.Executor
    description: str
    in_process: bool


def parse_executor(spec: str) -> str:
    """``local``, ``dask`` or ``dask://HOST:PORT``, checked.

    Raises:
        InvalidArgumentError: anything else (a usage error on the command line).
    """
    if spec in ("local", "dask") or (spec.startswith("dask://") and len(spec) > 7):
        return spec
    raise InvalidArgumentError(f"unknown executor {spec!r}: use local, dask or dask://HOST:PORT")


@contextmanager
def open_executor(spec: str, *, workers: int = 1) -> Iterator[Executor]:
    """The executor ``spec`` names, closed (and a cluster it started, stopped) on exit.

    Raises:
        InvalidInputError: an unknown executor.
        MissingDependencyError: Dask is not installed (the ``dask`` extra).
    """
    spec = parse_executor(spec)
    if spec == "local":
        if workers <= 1:
            yield Executor(InlineExecutor(), "local", True)
            return
        import multiprocessing

        # spawn: a forked copy of a process holding database connections and threads is
        # not safe; each worker opens the project itself.
        pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield Executor(pool, f"local ({workers} processes)", False)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError.for_extra(
            "dask[distributed]", "dask", "run pipelines on Dask"
        ) from None
    # distributed has no type hints: its objects are Any here.
    dist: Any = distributed
    cluster: Any = None
    if spec == "dask":
        cluster = dist.LocalCluster(
            n_workers=DASK_LOCAL_WORKERS,
            threads_per_worker=1,
            processes=True,
            # The HTTP server on a free loopback port: two clusters on one machine must not
            # contend for the dashboard's default 8787.
            dashboard_address="127.0.0.1:0",
        )
        client = dist.Client(cluster)
        description = f"dask (LocalCluster, {DASK_LOCAL_WORKERS} workers)"
    else:
        address = "tcp://" + spec.removeprefix("dask://")
        try:
            client = dist.Client(address, timeout="10s")
        except OSError as exc:
            raise InvalidInputError(
                f"cannot reach the Dask scheduler at {address}: {exc}; start one with "
                "`dask scheduler` and workers with `dask worker ADDRESS`"
            ) from None
        description = f"dask ({address})"
    try:
        yield Executor(client.get_executor(pure=False), description, False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
