"""The drift service: the reference stored with a table version, a model's reference found
through its lineage, and drift reports of current data (a dataset version, a frame, or what a
deployment answered over a window) against a reference.

>>> project.drift.compare("credit-risk@production", window_seconds=3600).verdict  # doctest: +SKIP
'no drift'
>>> project.drift.compare("applicants@1", current="applicants@2").drifted_columns  # doctest: +SKIP
['income']
"""

from __future__ import annotations

import builtins
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.data.versions import log_read, reference_of
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.monitoring.drift import DRIFT_SHARE, MIN_ROWS, DriftReport, Method, compare
from shipyard.refs import parse_ref
from shipyard.stores.db.tables import datasets, registered_models

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.governance.deployments import Deployment, Deployments
    from shipyard.governance.reports import Evaluations
    from shipyard.monitoring.reference import ReferenceProfile
    from shipyard.registry.models import Models
    from shipyard.registry.versions import ModelVersion
    from shipyard.serving.predictions import Predictions

__all__ = ["Drift", "inputs_frame", "save_html"]

# A subject may say what it names when a model and a dataset share the name.
_PREFIXES = ("model:", "dataset:")


@dataclass(frozen=True)
class _Subject:
    """What ``compare`` was asked about, as written (``text``) and resolved (``ref``,
    ``name@N``): a model version (``model`` set) or a dataset version."""

    text: str
    ref: str
    model: ModelVersion | None = None


class Drift:
    """Service for drift: ``reference``, ``reference_of_model`` and ``compare``.

    Reading a reference or current data is a read of that dataset version, logged in the
    access log as ``datasets`` logs it.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        datasets: Datasets,
        models: Models,
        evaluations: Evaluations,
        deployments: Deployments,
        predictions: Predictions,
    ) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._models = models
        self._evaluations = evaluations
        self._deployments = deployments
        self._predictions = predictions

    def reference(self, dataset_ref: str) -> ReferenceProfile:
        """The drift reference stored with a table version (``source``: its ``name@N``).

        A version added before references were stored gets one on this first use.

        Raises:
            NotFoundError: no such dataset or version.
            InvalidInputError: the version is a file tree.
            IntegrityError: its stored bytes do not match their digest (first use only).
        """
        v = self._datasets.get(dataset_ref)
        profile = reference_of(self._ctx, v)
        log_read(self._ctx, v, {"via": "drift reference"})
        return profile

    def reference_of_model(self, model_ref: str) -> str:
        """The dataset version a model version was trained on, through its lineage: the first
        dataset its run logged with context ``train``.

        >>> project.drift.reference_of_model("credit-risk@production")  # doctest: +SKIP
        'credit.train@1'

        Raises:
            NotFoundError: no such model, version or alias, or no training data in its lineage.
        """
        mv = self._models.get(model_ref)
        training = mv.training_data
        if not training:
            raise NotFoundError(
                f"model version '{mv.ref}' has no training data in its lineage (its run "
                f"logged no dataset with context 'train'); name the reference data with "
                f"--reference DATASET@N (reference= in Python)",
                details={"model": mv.ref},
            )
        return training[0]

    def compare(
        self,
        subject: str,
        *,
        current: str | pl.DataFrame | pd.DataFrame | None = None,
        window_seconds: float | None = None,
        deployment: str | None = None,
        reference: str | None = None,
        columns: Sequence[str] | None = None,
        methods: Mapping[str, Method] | None = None,
        thresholds: Mapping[str, float] | None = None,
        min_rows: int = MIN_ROWS,
        share_threshold: float = DRIFT_SHARE,
    ) -> DriftReport:
        """Compare current data with the reference of ``subject``.

        ``subject`` is a model version (``MODEL@ALIAS``, ``MODEL@N``): its reference is its
        training data (:meth:`reference_of_model`), its columns its inputs, and the columns
        are weighted by the permutation importance of its newest evaluation, when it has one;
        or a dataset version (``DATASET@N``), which is then the reference. Write
        ``model:NAME@…`` or ``dataset:NAME@…`` when a model and a dataset share the name.
        ``reference`` names another reference dataset version.

        The current data is ``current`` (a dataset reference, or a polars or pandas frame),
        or, with ``window_seconds``, the inputs a deployment answered over that many seconds
        up to now: ``deployment``, or the one deployment that serves the subject model.

        Raises:
            InvalidInputError: neither or both of ``current`` and ``window_seconds``; an
                ambiguous subject; several deployments serve the subject.
            NotFoundError: an unknown subject, reference or deployment; a model without
                training data in its lineage and no ``reference``; no deployment serves it.
        """
        if (current is None) == (window_seconds is None):
            raise InvalidInputError(
                "give the current data: a dataset version (--current DATASET@N) or a window "
                "of a deployment's prediction log (--window 1h), not both"
                if current is not None
                else "give the current data: a dataset version (--current DATASET@N) or a "
                "window of a deployment's prediction log (--window 1h)"
            )
        if window_seconds is not None and not (
            math.isfinite(window_seconds) and window_seconds > 0
        ):
            raise InvalidInputError(f"the window must be a positive duration, not {window_seconds}")
        subj = self._subject(subject)
        if reference is None:
            reference = self.reference_of_model(subj.ref) if subj.model else subj.ref
        profile = self.reference(reference)
        # The model's inputs that have a reference (not dates); named columns are checked
        # by compare(), which names those the reference or the data lacks.
        wanted = list(columns) if columns is not None else self._inputs(subj.model)
        if wanted is not None and columns is None:
            wanted = [c for c in wanted if c in profile.columns]
        if window_seconds is not None:
            serving = self._serving(subj, deployment)
            frame = self._window(serving, profile, wanted, window_seconds)
            name = f"{serving} over the last {_span(window_seconds)}"
        else:
            frame, name = self._current(current)
        absent: builtins.list[str] = []
        if wanted is not None and columns is None:
            absent = [c for c in wanted if c not in frame.columns]
            wanted = [c for c in wanted if c in frame.columns]
        report = compare(
            profile,
            frame,
            columns=wanted,
            methods=methods,
            thresholds=thresholds,
            weights=self._weights(subj.model),
            min_rows=min_rows,
            share_threshold=share_threshold,
            current_name=name,
        )
        return replace(report, missing_columns=report.missing_columns + tuple(absent))

    def save_html(
        self, report: DriftReport, path: str | os.PathLike[str], *, force: bool = False
    ) -> Path:
        """Write ``report`` as a standalone HTML file; see :func:`save_html`."""
        return save_html(report, path, force=force)

    # -- what is compared ----------------------------------------------------------------------

    def _subject(self, text: str) -> _Subject:
        kind, _, rest = text.partition(":") if text.startswith(_PREFIXES) else ("", "", text)
        ref = parse_ref(rest)
        if not kind:
            with self._ctx.db.read() as conn:
                is_model = conn.execute(
                    select(registered_models.c.id).where(registered_models.c.name == ref.name)
                ).first()
                is_dataset = conn.execute(
                    select(datasets.c.id).where(datasets.c.name == ref.name)
                ).first()
            if is_model and is_dataset:
                raise InvalidInputError(
                    f"'{ref.name}' names both a model and a dataset; write model:{rest} or "
                    f"dataset:{rest}"
                )
            if not is_model and not is_dataset:
                raise NotFoundError(
                    f"no model or dataset named '{ref.name}'; see `shipyard models list` and "
                    f"`shipyard data list`"
                )
            kind = "model" if is_model else "dataset"
        if kind == "model":
            mv = self._models.get(rest)
            return _Subject(rest, mv.ref, model=mv)
        return _Subject(rest, self._datasets.get(rest).ref)

    def _inputs(self, mv: ModelVersion | None) -> builtins.list[str] | None:
        """The columns a model takes (None: every column the reference and the data share)."""
        if mv is None or not mv.signature:
            return None
        from shipyard.registry.signatures import Signature

        return Signature.from_dict(mv.signature).columns

    def _weights(self, mv: ModelVersion | None) -> dict[str, float] | None:
        """Permutation importance from the model's newest evaluation (clipped at 0: a column
        whose shuffling helps carries no weight), or None (every column weighs 1)."""
        if mv is None:
            return None
        evaluation = self._evaluations.latest(mv.ref)
        importance = evaluation.report.get("importance", []) if evaluation else []
        weights = {str(i["feature"]): max(0.0, float(i["mean"])) for i in importance}
        return weights if any(weights.values()) else None

    def _current(self, current: Any) -> tuple[pl.DataFrame, str]:
        import pandas as pd
        import polars as pl

        if isinstance(current, str):
            v = self._datasets.get(current)
            return self._datasets.read_polars(v, via="drift"), v.ref
        if isinstance(current, pl.LazyFrame):
            current = current.collect()
        if isinstance(current, pd.DataFrame):
            current = pl.from_pandas(current)
        if not isinstance(current, pl.DataFrame):
            raise InvalidInputError(
                f"cannot compare {type(current).__name__}: give a dataset reference or a "
                "polars or pandas DataFrame"
            )
        return current, "frame"

    # -- a deployment's window -----------------------------------------------------------------

    def _serving(self, subj: _Subject, deployment: str | None) -> str:
        """The deployment whose prediction log holds the subject's window."""
        if deployment is not None:
            d = self._deployments.effective(deployment)
            if subj.model is not None and d.model != subj.model.name:
                raise InvalidInputError(
                    f"deployment '{d.name}' serves model '{d.model}', not '{subj.model.name}'"
                )
            return d.name
        if subj.model is None:
            raise InvalidInputError(
                f"{subj.text} is a dataset: a window reads a deployment's prediction log, so "
                "name the deployment with --deployment NAME"
            )
        mv = subj.model
        mine = [d for d in self._deployments.list() if d.model == mv.name]
        if not mine and self._is_default_deployment_free(mv.name):
            mine = [self._deployments.effective(mv.name)]
        selector = parse_ref(subj.text).selector
        alias = selector.value if selector.kind == "alias" else None
        found = [d for d in mine if self._serves(d, mv, alias)]
        if len(found) == 1:
            return found[0].name
        if found:
            raise InvalidInputError(
                f"{subj.text} is served by {len(found)} deployments: "
                f"{', '.join(d.name for d in found)}; choose one with --deployment NAME",
                details={"deployments": [d.name for d in found]},
            )
        known = "; ".join(f"{d.name} ({', '.join(d.aliases)})" for d in mine) or "none"
        raise NotFoundError(
            f"no deployment serves {subj.text} (deployments of model '{mv.name}': {known}); "
            f"name one with --deployment NAME, or compare a dataset with --current DATASET@N",
            details={"deployments": [d.name for d in mine]},
        )

    def _is_default_deployment_free(self, model: str) -> bool:
        """Whether a server for ``model`` would serve its default deployment (no stored
        deployment takes the model's name)."""
        try:
            self._deployments.get(model)
        except NotFoundError:
            return True
        return False

    def _serves(self, d: Deployment, mv: ModelVersion, alias: str | None) -> bool:
        if alias is not None:
            return alias in d.aliases
        return any(h.version == mv.version for h in self._deployments.holders(d).values())

    def _window(
        self,
        deployment: str,
        profile: ReferenceProfile,
        wanted: builtins.list[str] | None,
        seconds: float,
    ) -> pl.DataFrame:
        """The inputs ``deployment`` answered over the last ``seconds`` as a frame, one column
        per compared column, typed as the reference column is (a value of another type is
        missing)."""

        log = self._predictions.list(deployment, since=time.time() - seconds)
        return inputs_frame(log["inputs"], profile, wanted)


def inputs_frame(
    inputs: Iterable[Any], profile: ReferenceProfile, wanted: Sequence[str] | None = None
) -> pl.DataFrame:
    """Logged request rows (dicts; anything else is skipped) as a frame, one column per
    ``wanted`` column of the reference (default: all of them) that some row has, typed as the
    reference column is (a value of another type is missing)."""
    import polars as pl

    rows: builtins.list[dict[str, Any]] = [r for r in inputs if isinstance(r, dict)]
    names = [c for c in wanted or profile.columns if c in profile.columns]
    present = [c for c in names if any(c in r for r in rows)] if rows else names
    out: dict[str, pl.Series] = {}
    for c in present:
        values = [r.get(c) for r in rows]
        ref = profile.columns[c]
        if ref.kind == "numeric":
            out[c] = pl.Series(c, [_number(v) for v in values], dtype=pl.Float64)
        else:
            out[c] = pl.Series(c, values, strict=False).cast(_dtype(ref.dtype), strict=False)
    return pl.DataFrame(out)


def save_html(report: DriftReport, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``report`` as a standalone HTML file (a temporary name, then a rename; see
    :func:`shipyard.monitoring.drift_report.render_html`) and return its path.

    Raises:
        ConflictError: ``path`` exists and ``force`` is false.
        InvalidInputError: the folder of ``path`` does not exist (it is never created).
    """
    from shipyard._internal.files import require_folder
    from shipyard.monitoring.drift_report import write_html

    target = Path(path).expanduser()
    require_folder(target)
    if target.exists() and not force:
        raise ConflictError(f"{target} exists; pass --force (force=True) to replace it")
    return write_html(report, target)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _dtype(name: str) -> Any:
    """The polars dtype to read a categorical reference column's values as, by the name of
    its dtype: booleans, whole numbers, numbers, else text."""
    import polars as pl

    if name == "Boolean":
        return pl.Boolean
    if name.startswith(("Int", "UInt")):
        return pl.Int64
    if name.startswith("Float"):
        return pl.Float64
    return pl.String


def _span(seconds: float) -> str:
    """``3600`` → ``1h``; ``90`` → ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
