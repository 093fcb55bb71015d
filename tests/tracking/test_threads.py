"""Threads of one process logging to one run at once lose no point.

This is what a run with system metrics does: the sampler thread logs (and may flush) while
the training loop logs and flushes on the main thread.
"""

from __future__ import annotations

import linecache
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import shipyard
from shipyard.tracking.active import ActiveRun

THREADS = ("train", "system")
CALLS = 400
KEYS = 25
FLUSH_EVERY = 10


def test_two_threads_logging_and_flushing_one_run_lose_no_point(tmp_path: Path) -> None:
    """Two threads each log 400 calls of 25 metrics to the same run, each flushing every 10
    calls: every point of every metric is stored, with steps 0..399 in order."""
    project = shipyard.init_project(tmp_path / "p")
    errors: list[BaseException] = []
    start = threading.Barrier(len(THREADS))
    try:
        with project.start_run("threads") as run:

            def log(prefix: str) -> None:
                try:
                    start.wait()
                    for call in range(CALLS):
                        run.log_metrics({f"{prefix}.{k}": float(call) for k in range(KEYS)})
                        if call % FLUSH_EVERY == 0:
                            run.flush()
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=log, args=(name,)) for name in THREADS]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []
        for prefix in THREADS:
            for k in range(KEYS):
                history = project.runs.metric_history(run.id, f"{prefix}.{k}")
                assert [(p["step"], p["value"]) for p in history] == [
                    (call, float(call)) for call in range(CALLS)
                ], f"{prefix}.{k}"
    finally:
        project.close()


def test_a_flush_from_another_thread_during_a_call_loses_none_of_its_points(
    tmp_path: Path,
) -> None:
    """The sampler thread may flush while the training thread is in the middle of one
    `log_metrics` call, between taking the buffer and appending the call's points. The
    interleaving is forced: a trace hook stops the training thread at its first append and
    lets a flush run on another thread (if the flush cannot get in, the call goes on after
    a second). All ten points of the call are stored."""
    project = shipyard.init_project(tmp_path / "p")
    go, flushed = threading.Event(), threading.Event()
    paused: list[int] = []

    def in_log_metrics(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and not paused:
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
            if "points.append(" in line:
                paused.append(frame.f_lineno)
                go.set()
                flushed.wait(timeout=1)
        return in_log_metrics

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return in_log_metrics if frame.f_code is ActiveRun.log_metrics.__code__ else None

    try:
        with project.start_run("threads") as run:

            def sampler_flush() -> None:
                go.wait()
                run.flush()
                flushed.set()

            other = threading.Thread(target=sampler_flush)
            other.start()
            previous = sys.gettrace()
            sys.settrace(tracer)
            try:
                run.log_metrics({f"m.{k}": float(k) for k in range(10)})
            finally:
                sys.settrace(previous)
                go.set()  # never leave the other thread waiting
            other.join()
        assert paused, "the trace hook never reached the append"
        stored = {
            k: [(p["step"], p["value"]) for p in project.runs.metric_history(run.id, f"m.{k}")]
            for k in range(10)
        }
        assert stored == {k: [(0, float(k))] for k in range(10)}
    finally:
        project.close()
