"""Reproduction: rebuild a registered model from its lineage and say whether it is the same.

A model made by ``shipyard pipeline run`` has, in its records, everything a rebuild needs: the
step run that registered it names its pipeline run, which holds the code files of its steps
(artifacts ``code/…``), its params and the exact dataset and model versions it read. The
rebuild writes those files to a temporary folder, runs the pipeline from there with the same
params and pinned inputs and without the cache (so every step, evaluation included, runs
again on the same data), and compares: the artifact digest of the rebuilt model, the metrics
every step logged, and each step's key components (code, local modules, params, inputs,
package and shipyard versions) against those recorded.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError
from shipyard.pipelines.cache import diff_components
from shipyard.stores.db.tables import pipeline_steps

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.pipelines.records import PipelineRun
    from shipyard.pipelines.service import Pipelines
    from shipyard.registry.models import Models
    from shipyard.registry.versions import ModelVersion
    from shipyard.tracking.runs import Runs

__all__ = ["Difference", "MetricComparison", "Reproduction", "Reproductions"]

#: How a key component is reported among the differences.
_WHAT = {
    "code": "code",
    "modules": "code",
    "params": "params",
    "inputs": "data",
    "outputs": "outputs",
    "shipyard": "packages",
    "packages": "packages",
}


@dataclass(frozen=True)
class Difference(ReadModel):
    """One thing that differs between the recorded build and the rebuild: ``what`` (code,
    params, data, packages, metrics, artifact), the ``step`` and ``item`` it concerns, and the
    recorded and rebuilt values."""

    what: str
    step: str
    item: str
    recorded: Any
    rebuilt: Any


@dataclass(frozen=True)
class MetricComparison(ReadModel):
    """A metric a step logged, recorded and rebuilt, and whether they agree within the
    tolerance."""

    step: str
    metric: str
    recorded: float | None
    rebuilt: float | None
    within_tolerance: bool


@dataclass(frozen=True)
class Reproduction(ReadModel):
    """The outcome of rebuilding ``model``: ``outcome`` identical (same artifact digest),
    equivalent (another digest, every metric within ``tolerance``) or differs (``reproduced``
    is false); ``differences`` lists what differs, whatever the outcome."""

    model: str
    outcome: str
    reproduced: bool
    digest: str
    rebuilt_digest: str | None
    rebuilt_model: str | None
    pipeline_run: str
    rebuild_run: str
    tolerance: float
    metrics: list[MetricComparison] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None


class Reproductions:
    """Service for reproduction: ``reproduce`` a registered model from its lineage."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        pipelines: Pipelines,
        runs: Runs,
        models: Models,
        datasets: Datasets,
    ) -> None:
        self._ctx = ctx
        self._pipelines = pipelines
        self._runs = runs
        self._models = models
        self._datasets = datasets

    def reproduce(self, ref: str, *, tolerance: float = 1e-6) -> Reproduction:
        """Rebuild the model version ``ref`` from its lineage and compare.

        The rebuild is a pipeline run of its own (tags ``shipyard.trigger=reproduce`` and
        ``shipyard.reproduces``), so the model it makes is registered as a new version.

        >>> project.reproductions.reproduce("credit-pipeline@1").outcome  # doctest: +SKIP
        'identical'

        Raises:
            NotFoundError: no such model version.
            InvalidInputError: the version was not made by a pipeline, or its pipeline run's
                code was not stored.
            PermissionDeniedError: the actor is not a contributor.
        """
        mv = self._models.get(ref)
        original, step = self._origin(mv)
        with self._ctx.db.read() as conn:
            from shipyard.pipelines.records import pinned_inputs

            pins = pinned_inputs(conn, original.id)
            recorded = _components(conn, original.id)
        differences = self._stored_data(pins)
        with tempfile.TemporaryDirectory(prefix="shipyard-reproduce-") as folder:
            target = self._restore_code(original, Path(folder))
            rebuilt = self._pipelines.run(
                target,
                params=original.params,
                pins=pins,
                use_cache=False,
                tags={"shipyard.trigger": "reproduce", "shipyard.reproduces": mv.ref},
            )
        with self._ctx.db.read() as conn:
            now = _components(conn, rebuilt.id)
        outputs = _output_digests(original) | _output_digests(rebuilt)
        for name, before in recorded.items():
            for change in diff_components(before, now.get(name, {})):
                if change.component == "inputs" and _digests(change.before, change.after) & outputs:
                    continue  # an upstream step's output: its own difference explains it
                differences.append(
                    Difference(
                        _WHAT.get(change.component, change.component),
                        name,
                        f"{change.component}.{change.item}".rstrip("."),
                        change.before,
                        change.after,
                    )
                )
        made = rebuilt.step(step).outputs if step in {s.name for s in rebuilt.steps} else None
        rebuilt_ref = str(made["ref"]) if made and made.get("kind") == "model" else None
        rebuilt_digest = str(made["digest"]) if made and rebuilt_ref else None
        metrics = self._metrics(original, rebuilt, tolerance)
        differences += [
            Difference("metrics", m.step, m.metric, m.recorded, m.rebuilt)
            for m in metrics
            if not m.within_tolerance
        ]
        # Different code, params, data or packages is no reproduction, even when the
        # result happens to agree: the record would not explain how the model was made.
        inputs_differ = any(d.what != "outputs" for d in differences)
        if inputs_differ:
            outcome = "differs"
        elif rebuilt_digest == mv.digest:
            outcome = "identical"
        elif rebuilt_digest is not None and metrics and all(m.within_tolerance for m in metrics):
            outcome = "equivalent"
        else:
            outcome = "differs"
        if rebuilt_digest != mv.digest:
            differences.append(Difference("artifact", step, "digest", mv.digest, rebuilt_digest))
        return Reproduction(
            model=mv.ref,
            outcome=outcome,
            reproduced=outcome != "differs",
            digest=mv.digest,
            rebuilt_digest=rebuilt_digest,
            rebuilt_model=rebuilt_ref,
            pipeline_run=original.id,
            rebuild_run=rebuilt.id,
            tolerance=tolerance,
            metrics=metrics,
            differences=differences,
            error=rebuilt.error,
        )

    def _origin(self, mv: ModelVersion) -> tuple[PipelineRun, str]:
        """The pipeline run whose step registered ``mv``, and that step's name."""
        if mv.run_id is None:
            raise InvalidInputError(
                f"{mv.ref} was not made by a pipeline (it has no source run), so there is no "
                "lineage to rebuild it from; train it with `shipyard pipeline run`"
            )
        tags = self._runs.get(mv.run_id).tags
        run_id, step = tags.get("shipyard.pipeline_run"), tags.get("shipyard.step")
        if not run_id or not step:
            raise InvalidInputError(
                f"{mv.ref} was not made by a pipeline: its source run {mv.run_id} is not a "
                "step of a pipeline run, so its code and inputs were not recorded for a "
                "rebuild; train it with `shipyard pipeline run`"
            )
        return self._pipelines.get(run_id), step

    def _restore_code(self, original: PipelineRun, folder: Path) -> str:
        """Write the pipeline run's stored code files under ``folder`` (at their paths from
        the project root) and return the pipeline target there."""
        info = self._runs.get(original.id)
        files = [a for a in info.artifacts if str(a.get("path", "")).startswith("code/")]
        if not files:
            raise InvalidInputError(
                f"pipeline run {original.id[:12]} stored no code (every step was reused from "
                "the cache), so it cannot be rebuilt from its own records"
            )
        for a in files:
            path = folder / str(a["path"]).removeprefix("code/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                self._ctx.artifacts.read_bytes(str(a["digest"]), owner=f"run {original.id}")
            )
        file, _, name = original.source.partition(":")
        return f"{folder / file}:{name}" if name else str(folder / file)

    def _stored_data(self, pins: dict[str, dict[str, str]]) -> list[Difference]:
        """Pinned dataset versions whose stored digest is no longer the one recorded."""
        out: list[Difference] = []
        for label, pin in sorted(pins.items()):
            if pin.get("kind") != "dataset":
                continue
            now = self._datasets.get(pin["ref"]).digest
            if now != pin["digest"]:
                out.append(Difference("data", "", label, pin["digest"], now))
        return out

    def _metrics(
        self, original: PipelineRun, rebuilt: PipelineRun, tolerance: float
    ) -> list[MetricComparison]:
        out: list[MetricComparison] = []
        by_name = {s.name: s for s in rebuilt.steps}
        for s in original.steps:
            if s.run_id is None:
                continue
            before = self._runs.get(s.run_id).metrics
            other = by_name.get(s.name)
            after = self._runs.get(other.run_id).metrics if other and other.run_id else {}
            for key in sorted(set(before) | set(after)):
                a, b = before.get(key), after.get(key)
                same = a is not None and b is not None and abs(a - b) <= tolerance
                out.append(MetricComparison(s.name, key, a, b, same))
        return out


def _components(conn: Any, run_id: str) -> dict[str, dict[str, Any]]:
    return {
        r.name: dict(r.components or {})
        for r in conn.execute(
            select(pipeline_steps.c.name, pipeline_steps.c.components).where(
                pipeline_steps.c.pipeline_run_id == run_id
            )
        )
    }


def _output_digests(run: PipelineRun) -> set[str]:
    return {str(s.outputs["digest"]) for s in run.steps if s.outputs and s.outputs.get("digest")}


def _digests(*values: Any) -> set[str]:
    out: set[str] = set()
    for v in values:
        if isinstance(v, list):
            out.update(str(x) for x in v)
        elif v is not None:
            out.add(str(v))
    return out
