"""The check a compiled model passes before it answers anything: the same answers as
scikit-learn, row by row, on rows of the model's own data and on edge rows.

Rows generated from what a pipeline learned prove little: a passthrough column has no
learned centre, so a forest splitting an income in the tens of thousands sees values around
zero and gives every check row the same answer. The check therefore runs on

- **reference rows**: rows of the model's own training or validation data, as
  :meth:`Models.reference_rows <shipyard.registry.models.Models.reference_rows>` samples
  them; without any, rows generated from the fitted steps (:func:`generated_rows`), and the
  summary says so;
- **edge rows** (:func:`edge_rows`): one reference row with one column changed to its
  smallest and largest values seen and beyond, zero, a negative, 1e39 and -1e39, infinities,
  a boolean or a whole number where a float is expected, whole numbers too large for int64,
  every learned category, an unseen one, and a missing value where the signature allows it.

For every row the compiled model answers, scikit-learn must answer too (through
:meth:`CheckedPredictor.answer`, the one rule for what is served), with the same label and
probabilities or values within a relative :data:`RTOL` (or the compiled model's own
``tolerance``: XGBoost computes in 32-bit floats). A row the compiled model refuses
with :class:`NotCompiled` goes to scikit-learn at serving time, so scikit-learn's answer to
it needs no comparison. The reference rows must also get at least :data:`MIN_DISTINCT`
different answers: a check on which the model answers every row alike shows nothing.

Problems name rows by their number or by the edge they test, never by their values: the
summary is shown to every client of the model server, and reference rows are training data
(so is every edge row made from one: scikit-learn's message is left out for them).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer

from shipyard.registry.codegen import (
    ENCODERS,
    SCALERS,
    Answer,
    NotCompiled,
    exactly,
    selected_columns,
    stages,
)
from shipyard.registry.signatures import plain_value

if TYPE_CHECKING:
    from shipyard.data.contracts import ColumnSpec
    from shipyard.registry.compiled import CompiledModel
    from shipyard.registry.signatures import CheckedPredictor

__all__ = [
    "GENERATED_ROWS",
    "MIN_DISTINCT",
    "RTOL",
    "CheckReport",
    "check_against_sklearn",
    "edge_rows",
    "generated_rows",
]

#: Relative difference allowed between compiled and scikit-learn outputs (the sums run in
#: another order).
RTOL = 1e-9
#: Rows generated when there are no reference rows.
GENERATED_ROWS = 256
#: Fewest different scikit-learn answers the reference rows must get.
MIN_DISTINCT = 2
#: Rows also scored alone, to compare with their answer among others.
_ALONE = 16
#: Learned categories tried per column, at most; and values of the rows not learned.
_MAX_CATEGORIES = 50
_MAX_OTHERS = 5
_UNSEEN = "shipyard: a category never seen"


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_against_sklearn` found: ``problem`` is None when the compiled model
    answered like scikit-learn."""

    source: str  # "reference" or "generated"
    rows: int
    distinct: int  # different scikit-learn answers among the rows both answered
    edge_rows: int
    problem: str | None = None

    @property
    def summary(self) -> str:
        """``256 reference rows (231 distinct answers) and 70 edge rows``."""
        if self.source == "generated":
            return (
                f"{self.rows} generated rows, for want of reference rows ({self.distinct} "
                f"distinct answers), and {self.edge_rows} edge rows"
            )
        return (
            f"{self.rows} {self.source} rows ({self.distinct} distinct answers) and "
            f"{self.edge_rows} edge rows"
        )


def check_against_sklearn(
    predictor: CheckedPredictor,
    compiled: CompiledModel,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> CheckReport:
    """Whether ``compiled`` answers like ``predictor`` (scikit-learn) on ``rows`` (reference
    rows, shaped like checked request rows) and on edge rows built from them; on generated
    rows when ``rows`` is empty or None.

    >>> check_against_sklearn(predictor, compiled, models.reference_rows(ref)).problem
    ... # doctest: +SKIP
    """
    assert predictor.signature is not None
    source = "reference" if rows else "generated"
    sample = [dict(r) for r in rows] if rows else generated_rows(predictor)
    # Reference rows are training data, and edge rows are made from one: a message may name
    # the row and the error's type, never quote a value.
    private = source == "reference"
    with warnings.catch_warnings():
        # Edge rows make scikit-learn warn (overflow, unknown categories); its answer counts.
        warnings.simplefilter("ignore")
        return _check(predictor, compiled, source, sample, private)


def _check(
    predictor: CheckedPredictor,
    compiled: CompiledModel,
    source: str,
    sample: list[dict[str, Any]],
    private: bool,
) -> CheckReport:
    labelled = [(f"{source} row {i}", r) for i, r in enumerate(sample)]
    edges: list[tuple[str, dict[str, Any]]] = []
    tolerance = compiled.tolerance or (RTOL, 1e-12)

    def report(problem: str | None, distinct: int = 0) -> CheckReport:
        return CheckReport(source, len(sample), distinct, len(edges), problem)

    def fails(i: int, error: Exception, what: str = "the compiled model fails ({})") -> CheckReport:
        return report(f"{labelled[i][0]}: " + what.format(_why(error, private=private)))

    try:
        answers = _in_halves(compiled.score, sample, skip=(NotCompiled,))
    except _Refused as failed:
        return fails(failed.index, failed.error)
    answered = [(i, a) for i, a in enumerate(answers) if a is not None]
    if len(answered) * 4 < len(sample):
        return report(
            f"the compiled model answers only {len(answered)} of {len(sample)} {source} rows"
        )
    # Edge rows vary one column of a row the compiled model answers, so each tests its edge.
    edges = edge_rows(predictor, sample, base=sample[answered[0][0]])
    try:
        answers = _in_halves(compiled.score, [row for _, row in edges], skip=(NotCompiled,))
    except _Refused as failed:
        return fails(len(labelled) + failed.index, failed.error)
    answered += [(len(labelled) + i, a) for i, a in enumerate(answers) if a is not None]
    labelled += edges
    # A request of one row gets the answer it gets among others (an estimator called on
    # arrays may sum a batch in another order): tried on a spread of rows.
    for i, among in answered[:: max(1, len(answered) // _ALONE)]:
        try:
            alone = compiled.score([labelled[i][1]])[0]
        except Exception as exc:
            return fails(i, exc, "scored alone, the compiled model fails ({})")
        if _difference(alone, among, tolerance) is not None:
            return report(f"{labelled[i][0]}: scored alone, the compiled model answers otherwise")
    try:
        expected = _in_halves(_sklearn(predictor), [labelled[i][1] for i, _ in answered])
    except _Refused as refused:
        i = answered[refused.index][0]
        return fails(i, refused.error, "scikit-learn refuses it ({}), the compiled model answers")
    # Without ``skip`` every row has an answer (a refusal raised _Refused above).
    pairs = [(i, got, want) for (i, got), want in zip(answered, expected, strict=True) if want]
    for i, got, want in pairs:
        difference = _difference(got, want, tolerance)
        if difference is not None:
            return report(f"{labelled[i][0]}: {difference}")
    distinct = len({_key(want) for i, _, want in pairs if i < len(sample)})
    if distinct < MIN_DISTINCT:
        fix = "; check it on rows of its own data (Models.reference_rows)" if not private else ""
        return report(
            f"the {len(sample)} {source} rows get {distinct} distinct "
            f"answer{'' if distinct == 1 else 's'} from scikit-learn, too few for the check "
            f"to show anything{fix}",
            distinct,
        )
    return report(None, distinct)


# -- answers, row by row, in few calls -------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def _in_halves(
    score: Callable[[list[dict[str, Any]]], list[Answer]],
    rows: list[dict[str, Any]],
    *,
    skip: tuple[type[Exception], ...] = (),
) -> list[Answer | None]:
    """``score(rows)`` in one call while it answers them all, else in halves down to single
    rows (few calls when few rows are refused): None for a row on which it raises one of
    ``skip``; any other error raises :class:`_Refused` with the index of its row."""
    if not rows:
        return []
    try:
        return list(score(rows))
    except skip:
        if len(rows) == 1:
            return [None]
    except Exception as exc:
        if len(rows) == 1:
            raise _Refused(0, exc) from exc
    half = len(rows) // 2
    left = _in_halves(score, rows[:half], skip=skip)
    try:
        right = _in_halves(score, rows[half:], skip=skip)
    except _Refused as refused:
        raise _Refused(half + refused.index, refused.error) from refused.error
    return left + right


def _sklearn(predictor: CheckedPredictor) -> Callable[[list[dict[str, Any]]], list[Answer]]:
    """What scikit-learn answers to rows, as the server's fallback asks it."""

    def score(rows: list[dict[str, Any]]) -> list[Answer]:
        return predictor.answer(predictor.frame_from_records(rows))

    return score


def _why(exc: BaseException, *, private: bool) -> str:
    """The error's type and, unless the row is private data, its first line."""
    first = (str(exc).splitlines() or [""])[0][:200]
    return type(exc).__name__ if private or not first else f"{type(exc).__name__}: {first}"


def _difference(got: Answer, want: Answer, tolerance: tuple[float, float]) -> str | None:
    label, expected = got.get("prediction"), want["prediction"]
    if "probabilities" not in want:
        if not _close(label, expected, tolerance):
            return f"predicts {label!r}, scikit-learn {expected!r}"
        return None
    # A label is served as JSON: 1 and 1.0, or 1 and True, read differently.
    if label != expected or type(label) is not type(expected):
        return f"predicts {label!r}, scikit-learn {expected!r}"
    probabilities = got.get("probabilities") or {}
    if set(probabilities) != set(want["probabilities"]):
        return "gives probabilities of other classes than scikit-learn"
    for name, p in want["probabilities"].items():
        if not _close(probabilities[name], p, tolerance):
            return (
                f"gives class {name!r} a probability of {probabilities[name]!r}, scikit-learn {p!r}"
            )
    return None


def _close(a: Any, b: Any, tolerance: tuple[float, float]) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float):
        return bool(a == b) and type(a) is type(b)
    if not isinstance(b, int | float):
        return False
    return math.isclose(a, b, rel_tol=tolerance[0], abs_tol=tolerance[1])


def _key(answer: Answer) -> tuple[Any, ...]:
    probabilities = answer.get("probabilities") or {}
    return (repr(answer["prediction"]), tuple(sorted(probabilities.items())))


# -- rows -----------------------------------------------------------------------------------------


@dataclass
class _Learned:
    """What a pipeline learned of one input column."""

    numbers: list[float]
    categories: list[Any]


def _learned_values(model: Any) -> dict[str, _Learned]:
    """Per input column: numbers the fitted steps learned (centres, spreads, extremes,
    imputed values) and categories its encoder knows."""
    out: dict[str, _Learned] = {}
    for step in stages(model):
        if not exactly(step, ColumnTransformer):
            continue
        for _, transformer, names in selected_columns(step):
            if isinstance(transformer, str):
                continue
            for stage in stages(transformer):
                if not _learn(stage, names, out):
                    break  # an encoder: what follows sees other features
    return out


def _learn(stage: Any, names: list[str], out: dict[str, _Learned]) -> bool:
    """Add what ``stage`` learned of each of ``names``; False when it changes the features."""
    for j, name in enumerate(names):
        learned = out.setdefault(name, _Learned([], []))
        if exactly(stage, *ENCODERS):
            learned.categories += [plain_value(c) for c in stage.categories_[j]]
        elif exactly(stage, *SCALERS):
            for attribute in ("mean_", "center_", "data_min_", "data_max_"):
                values = getattr(stage, attribute, None)
                if values is not None:
                    learned.numbers.append(float(values[j]))
            centre = next(
                (
                    getattr(stage, a)
                    for a in ("mean_", "center_")
                    if getattr(stage, a, None) is not None
                ),
                None,
            )
            scale = getattr(stage, "scale_", None)
            if centre is not None and scale is not None:
                learned.numbers += [float(centre[j] - scale[j]), float(centre[j] + scale[j])]
        elif exactly(stage, SimpleImputer):
            stat = plain_value(stage.statistics_[j])
            if isinstance(stat, int | float) and not isinstance(stat, bool):
                learned.numbers.append(float(stat))
    return not exactly(stage, *ENCODERS)


def generated_rows(predictor: CheckedPredictor, n: int = GENERATED_ROWS) -> list[dict[str, Any]]:
    """Rows in the signature's types, with values from what the pipeline learned (around
    each column's centre, every category, missing values, unseen categories). Used when no
    reference rows are given; a column the pipeline learned nothing of (a passthrough) gets
    values around zero, which is why reference rows are better."""
    assert predictor.signature is not None
    rng = random.Random(20261126)
    learned = _learned_values(predictor.model)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for name, spec in predictor.signature.inputs.columns.items():
            kind = spec.type
            known = learned.get(name)
            if rng.random() < 0.05:
                value: Any = None
            elif kind in ("string", "category"):
                choices = known.categories if known and rng.random() >= 0.1 else None
                value = rng.choice(choices) if choices else f"unseen-{i}"
            elif kind in ("int", "float"):
                centre, spread = _centre(known.numbers if known else [])
                value = centre + spread * rng.gauss(0.0, 1.5)
                value = round(value) if kind == "int" else value
            elif kind == "bool":
                value = rng.random() < 0.5
            else:
                value = dt.datetime(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 365))
            row[name] = value
        rows.append(row)
    return rows


def _centre(numbers: list[float]) -> tuple[float, float]:
    finite = [v for v in numbers if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    centre = (low + high) / 2
    return centre, (high - low) / 2 or max(abs(centre), 1.0)


def edge_rows(
    predictor: CheckedPredictor,
    sample: Sequence[Mapping[str, Any]],
    *,
    base: Mapping[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``(label, row)`` pairs: ``base`` (else the first row of ``sample``) with one column at
    a time set to an edge value for its type (see the module's docstring), judged from the
    values in ``sample`` and what the pipeline learned; then a row with every column missing
    and one with every number above its largest value."""
    assert predictor.signature is not None
    columns = predictor.signature.inputs.columns
    if base is None:
        base = sample[0] if sample else {name: None for name in columns}
    learned = _learned_values(predictor.model)
    out: list[tuple[str, dict[str, Any]]] = []
    beyond: dict[str, Any] = {}
    for name, spec in columns.items():
        seen = [r.get(name) for r in sample]
        for what, value in _edge_values(spec, seen, learned.get(name)):
            out.append((f"the edge row with {name} {what}", {**base, name: value}))
            if what == "above its largest value seen":
                beyond[name] = value
    if all(spec.nullable for spec in columns.values()):
        out.append(("the edge row with every column missing", {name: None for name in columns}))
    if beyond:
        out.append(("the edge row with every number above its largest value", {**base, **beyond}))
    return out


def _edge_values(
    spec: ColumnSpec, seen: list[Any], learned: _Learned | None
) -> list[tuple[str, Any]]:
    values: list[tuple[str, Any]] = []
    if spec.type in ("int", "float"):
        numbers = [
            float(v)
            for v in seen
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        numbers += [v for v in (learned.numbers if learned else []) if math.isfinite(v)]
        low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
        span = high - low or 1.0
        values += [
            ("at its smallest value seen", low),
            ("at its largest value seen", high),
            ("below its smallest value seen", low - span),
            ("above its largest value seen", high + span),
            ("far above its largest value seen", high + 1000 * span),
            ("negated", -high),
            ("at zero", 0.0),
            ("at -1", -1.0),
            ("at 1e39", 1e39),
            ("at -1e39", -1e39),
        ]
        if spec.type == "int":
            values = [(what, round(v)) for what, v in values]
            values += [("at 2**63", 2**63), ("at -2**63 - 1", -(2**63) - 1)]
        else:
            values += [
                ("infinite", math.inf),
                ("at -infinity", -math.inf),
                ("as the boolean True", True),
                ("as a whole number", round(high)),
            ]
            if spec.nullable:
                values.append(("NaN", math.nan))
    elif spec.type in ("string", "category"):
        known = list(dict.fromkeys(c for c in (learned.categories if learned else [])))
        # Values of the rows the encoder did not learn take the unseen-category path: a few.
        others = list(dict.fromkeys(v for v in seen if isinstance(v, str) and v not in known))
        tried = known[:_MAX_CATEGORIES] + others[:_MAX_OTHERS]
        values += [(f"at category {k}", c) for k, c in enumerate(tried)]
        values += [("at an unseen category", _UNSEEN), ("empty", "")]
    elif spec.type == "bool":
        values += [("True", True), ("False", False)]
    elif spec.type == "datetime":
        values += [
            ("in 1970", dt.datetime(1970, 1, 1)),
            ("in 2200", dt.datetime(2200, 1, 1)),
        ]
    if spec.nullable:
        values.append(("missing", None))
    return values
