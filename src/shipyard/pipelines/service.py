"""The pipelines service: ``run``, ``get``, ``list``, plus ``explain`` and ``resume``.

>>> r = project.pipelines.run("pipeline.py:train", params={"C": 0.5})   # doctest: +SKIP
>>> r.status, r.cache_hits                                              # doctest: +SKIP
('succeeded', 0)
>>> project.pipelines.explain(r.id, "train")                            # doctest: +SKIP
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard._internal.fingerprints import locate
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.authz import require_role
from shipyard.pipelines import records, uptodate
from shipyard.pipelines.cache import CodeScanner, diff_components
from shipyard.pipelines.executors import parse_executor
from shipyard.pipelines.records import PipelineRun, StepExplanation
from shipyard.pipelines.runner import RunOptions, StepServices, execute
from shipyard.pipelines.sources import load_source

if TYPE_CHECKING:
    from shipyard._internal.fingerprints import Invocation
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.data.lock import Locks
    from shipyard.governance.reports import Evaluations
    from shipyard.registry.models import Models
    from shipyard.tracking.runs import Runs

__all__ = ["Pipelines"]


class Pipelines:
    """Service for pipelines: ``run``, ``get``, ``list``, plus ``explain`` and ``resume``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        runs: Runs,
        datasets: Datasets,
        models: Models,
        evaluations: Evaluations,
        locks: Locks | None = None,
    ) -> None:
        self._ctx = ctx
        self._services = StepServices(runs, datasets, models, ctx.artifacts, evaluations)
        self._locks = locks

    def run(
        self,
        target: str,
        *,
        params: Mapping[str, Any] | None = None,
        executor: str = "local",
        workers: int = 1,
        use_cache: bool = True,
        tags: Mapping[str, str] | None = None,
        pins: Mapping[str, Mapping[str, str]] | None = None,
        lock: bool = True,
        progress: Progress = NO_PROGRESS,
        fingerprint: Invocation | None = None,
        seen: Mapping[str, str | None] | None = None,
    ) -> PipelineRun:
        """Run the pipeline ``FILE[:NAME]`` (a Python file with ``@pipeline`` functions, or a
        YAML pipeline) with ``params`` on ``executor`` (``local``, ``dask`` or
        ``dask://HOST:PORT``; ``workers`` > 1 runs local steps on a process pool). Steps
        whose key was computed before reuse their outputs unless ``use_cache`` is false.
        ``tags`` go on the pipeline's tracked run (the scheduler's ``shipyard.trigger``);
        ``pins`` are exact input versions to read instead of resolving the graph's
        references (``{"dataset:credit@latest": {"kind", "ref", "digest"}}``).

        When the project's root holds ``shipyard.lock`` (and ``lock`` is true and no ``pins``
        are given), each input is read at the version the lock pins for its reference, and
        the inputs the lock lacks are resolved and added to it before the run starts (see
        :meth:`~shipyard.data.lock.Locks.pin_inputs`); the run's ``lock`` says which.

        ``fingerprint`` is the command line this run answers (``shipyard pipeline run``): its
        old fingerprint is removed, and when the run stands for the next identical command
        line a new one is written, so that command line can answer "up to date" without
        running or recording anything (see :mod:`shipyard.pipelines.uptodate`). ``seen``
        holds the digests of files the caller read before calling (the params file,
        ``shipyard.toml``), taken before it read them.

        A failing step does not raise: the returned run has status ``failed`` and says which
        step failed and which did not run because of it.

        Raises:
            NotFoundError: no such file or pipeline, or an input dataset or model.
            InvalidInputError: bad params, a bad pipeline, or an unknown executor.
            PermissionDeniedError: the actor is not a contributor.
            MissingDependencyError: a Dask executor without the ``dask`` extra.
        """
        parse_executor(executor)
        self._require_contributor()
        before: dict[str, str | None] = {}
        if fingerprint is not None:
            try:
                uptodate.forget(self._ctx, fingerprint)
                before = {**uptodate.snapshot(self._ctx, fingerprint), **(seen or {})}
            except OSError:  # a fingerprint or file it cannot touch: no fingerprint this time
                fingerprint = None
        source = load_source(self._resolve_target(target))
        dag = source.build(dict(params or {}))
        scanner = CodeScanner([self._ctx.settings.root, source.path.parent])
        if fingerprint is not None:
            try:
                uptodate.read_pipeline_modules(scanner, source)
            except Exception:  # a module it cannot read: no fingerprint, the run goes on
                fingerprint = None
        given = {k: dict(v) for k, v in pins.items()} if pins else None
        locked = None
        if lock and given is None and self._locks is not None:
            locked = self._locks.pin_inputs([(i.kind, i.ref) for i in dag.inputs()])
        if locked is not None:
            given = {
                label: {"kind": p.kind, "ref": p.exact, "digest": p.digest}
                for label, p in locked.pins.items()
            }
        options = RunOptions(
            executor=executor,
            workers=workers,
            use_cache=use_cache,
            tags=dict(tags) if tags else None,
            pins=given,
            lock=locked.to_dict() if locked is not None else None,
        )
        run_id = execute(self._ctx, self._services, source, dag, options, progress, scanner)
        result = self.get(run_id)
        if fingerprint is not None:
            uptodate.record(
                self._ctx, self._services, fingerprint, source, dag, result, scanner, before
            )
        return result

    def resume(
        self,
        run_id: str,
        *,
        executor: str = "local",
        workers: int = 1,
        progress: Progress = NO_PROGRESS,
    ) -> PipelineRun:
        """Run a pipeline run again with the same params and input versions, as a new run
        that reuses the outputs of every step that succeeded (when its key is unchanged) and
        runs the rest.

        Raises:
            NotFoundError: no such pipeline run, or its file is gone.
        """
        parse_executor(executor)
        self._require_contributor()
        before = self.get(run_id)
        with self._ctx.db.read() as conn:
            pins = records.pinned_inputs(conn, before.id)
        source = load_source(self._resolve_target(before.source))
        dag = source.build(before.params)
        options = RunOptions(
            executor=executor,
            workers=workers,
            use_cache=True,
            resume_from=before.id,
            pins=pins,
        )
        new_id = execute(self._ctx, self._services, source, dag, options, progress)
        return self.get(new_id)

    def get(self, run_id: str) -> PipelineRun:
        """One pipeline run (by id or unique id prefix) with its steps.

        Raises:
            NotFoundError: no such pipeline run.
        """
        with self._ctx.db.read() as conn:
            return records.load_run(conn, records.resolve_pipeline_run(conn, run_id))

    def list(self, *, pipeline: str | None = None, limit: int = 50) -> builtins.list[PipelineRun]:
        """Pipeline runs, newest first (``pipeline``: only that pipeline's)."""
        with self._ctx.db.read() as conn:
            return records.list_runs(conn, pipeline, limit)

    def explain(self, run_id: str, step: str | None = None) -> builtins.list[StepExplanation]:
        """Why each step (or only ``step``) of a run hit or missed the cache: for a miss,
        every part of its key that differs from the step's last successful run before, with
        the values before and after.

        Raises:
            NotFoundError: no such run or step.
        """
        run = self.get(run_id)
        steps = [run.step(step)] if step is not None else run.steps
        out: builtins.list[StepExplanation] = []
        with self._ctx.db.read() as conn:
            for s in steps:
                row = records.step_row(conn, run.id, s.name)
                out.append(self._explain_step(conn, run, s, dict(row.components or {})))
        return out

    def _explain_step(
        self, conn: Any, run: PipelineRun, s: records.StepRun, components: dict[str, Any]
    ) -> StepExplanation:
        def made(
            reason: str,
            compared_to: str | None = None,
            changes: tuple[Any, ...] | builtins.list[Any] = (),
        ) -> StepExplanation:
            if s.status == "failed":
                reason = f"failed ({s.error}); {reason}"
            return StepExplanation(
                s.name, s.status, s.cache, s.key, reason, compared_to, builtins.list(changes)
            )

        if s.status == "skipped":
            return made(s.error or "not run")
        if s.cache == "hit":
            return made(f"hit: reused the outputs of run {s.run_id} (same key)")
        if s.cache == "resumed":
            return made(
                f"resumed: reused the outputs of run {s.run_id} from pipeline run "
                f"{run.resumed_from}",
            )
        if not components:
            return made(s.error or "not started")
        prev = records.previous_step(conn, run.pipeline, s.name, run.started_at, run.id)
        lead = {
            "volatile": "volatile: the step always runs",
            "disabled": "the cache was off (--no-cache)",
            "expired": "the cached result was older than the step's ttl",
        }.get(s.cache, "miss")
        if prev is None:
            return made(f"{lead}: first run of this step")
        changes = diff_components(dict(prev.components or {}), components)
        if not changes:
            reason = f"{lead}: same key as pipeline run {prev.pipeline_run[:12]}"
            if s.cache == "miss":
                reason += ", whose outputs are gone"
        else:
            what = sorted({c.component for c in changes})
            reason = (
                f"{lead}: {', '.join(what)} changed since pipeline run {prev.pipeline_run[:12]}"
            )
        return made(reason, compared_to=prev.pipeline_run, changes=changes)

    def _resolve_target(self, target: str) -> str:
        """A pipeline file given relative to the project root (as runs record it) or to the
        current directory."""
        file, sep, name = target.rpartition(":") if ":" in target else (target, "", "")
        if not sep:
            file, name = target, ""
        path = locate(str(self._ctx.settings.root), file)
        return f"{path}:{name}" if name else path

    def _require_contributor(self) -> None:
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "run pipelines")
