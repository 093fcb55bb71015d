"""The checks every scored row passes, on every scoring path (the model server's requests,
``models predict`` on files): present in every column of the model's signature, of the
signature's types, within the contracts of the data the model was trained on, and with no
missing value in a column the fitted pipeline cannot take missing.

>>> checks = project.models.row_checks("credit-risk@3", predictor)     # doctest: +SKIP
>>> errors = []
>>> checks.check({"age": 250, ...}, 0, errors)                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shipyard.registry.signatures import record_errors

if TYPE_CHECKING:
    from shipyard.data.contracts import Contract
    from shipyard.registry.signatures import CheckedPredictor, Signature

__all__ = [
    "MISSING",
    "NO_IMPUTER",
    "RowCheckRules",
    "RowChecks",
    "check_row",
    "columns_without_nulls",
    "request_checks",
]

MISSING = "missing (send null for an unknown value)"
NO_IMPUTER = "the model cannot take a missing value here (its pipeline has no imputer for it)"


@dataclass(frozen=True)
class RowChecks:
    """Everything a row is checked with before a model version scores it: the signature's
    ``columns``, the pydantic ``models`` (:func:`request_checks`) and the columns the fitted
    pipeline cannot take missing (:func:`columns_without_nulls`)."""

    columns: tuple[str, ...] = ()
    models: tuple[Any, ...] = ()
    no_nulls: tuple[str, ...] = ()

    def check(self, row: dict[str, Any], index: int, errors: list[dict[str, Any]]) -> Any:
        """``row`` checked (:func:`check_row`), or None with its problems in ``errors``."""
        return check_row(self.models, self.columns, row, index, errors, self.no_nulls)


@dataclass(frozen=True)
class RowCheckRules:
    """What a version's :class:`RowChecks` are built from, beside its signature: the
    contracts of its training data and the columns its fitted pipeline cannot take missing.
    The team server sends these to a remote ``models predict``, which scores on the client
    with the same checks as a local one without reading the training data itself."""

    ref: str
    contracts: tuple[Contract, ...] = ()
    no_nulls: tuple[str, ...] = ()

    def checks(self, signature: Signature | None) -> RowChecks:
        """The checks for a predictor with ``signature`` (none without a signature)."""
        if signature is None:
            return RowChecks()
        return RowChecks(
            tuple(signature.columns), request_checks(signature, self.contracts), self.no_nulls
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "contracts": [c.to_dict() for c in self.contracts],
            "no_nulls": list(self.no_nulls),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RowCheckRules:
        """Read :meth:`to_dict`'s document back, every contract checked again.

        Raises:
            InvalidInputError: a contract in it is not valid.
        """
        from shipyard.data.contracts import Contract

        return cls(
            str(doc["ref"]),
            tuple(Contract.from_dict(c) for c in doc.get("contracts", [])),
            tuple(str(c) for c in doc.get("no_nulls", [])),
        )


def request_checks(signature: Signature | None, contracts: Sequence[Contract]) -> tuple[Any, ...]:
    """The pydantic models every request row must pass, in order: the signature's types and
    each contract of the training data (:meth:`Models.input_contracts`) limited to the model's
    inputs, so that a value outside the contract (an age of 250, an unknown category) is
    refused like a badly typed one.

    Where a single contract gives each shared column the signature's type (text and category
    count as one), both become a single model: one validation per row instead of two.
    Empty without a signature.
    """
    from dataclasses import replace

    from shipyard.data.contracts import DatasetChecks

    if signature is None:
        return ()
    inputs = signature.inputs
    subsets = []
    for contract in contracts:
        kept = {c: spec for c, spec in contract.columns.items() if c in inputs.columns}
        if kept:
            subsets.append((contract, kept))
    if not subsets:
        return (inputs.to_pydantic(),)
    if len(subsets) == 1:
        contract, kept = subsets[0]
        if all(_same_type(spec.type, inputs.columns[c].type) for c, spec in kept.items()):
            merged = {c: kept.get(c, spec) for c, spec in inputs.columns.items()}
            return (replace(inputs, columns=merged).to_pydantic(),)
    return (
        *(
            replace(contract, columns=kept, strict=False, checks=DatasetChecks()).to_pydantic()
            for contract, kept in subsets
        ),
        inputs.to_pydantic(),
    )


def _same_type(a: str, b: str) -> bool:
    text = ("string", "category")
    return a == b or (a in text and b in text)


def check_row(
    checks: Sequence[Any],
    columns: Sequence[str],
    row: dict[str, Any],
    index: int,
    errors: list[dict[str, Any]],
    no_nulls: Sequence[str] = (),
) -> Any:
    """``row`` as the checks read it (ISO text turned into datetimes...), ready for a compiled
    model or :meth:`CheckedPredictor.frame_from_records`; or None, with each problem added to
    ``errors`` as ``{"record": index, "field", "reason"}``. Every column must be present,
    even one that allows null; a column of ``no_nulls`` must not be missing."""
    missing = [c for c in columns if c not in row]
    if missing:
        errors += [
            {"record": index, "field": c, "reason": MISSING, "check": "missing"} for c in missing
        ]
        return None
    value: Any = None
    for model in checks:
        try:
            value = model.model_validate(row).model_dump(by_alias=True)
        except ValidationError as exc:
            errors += record_errors(exc, index)
            return None
    nulls = [c for c in no_nulls if value[c] is None]
    if nulls:
        errors += [
            {"record": index, "field": c, "reason": NO_IMPUTER, "check": "no_imputer"}
            for c in nulls
        ]
        return None
    return value


def columns_without_nulls(
    predictor: CheckedPredictor, rows: Sequence[dict[str, Any]]
) -> tuple[str, ...]:
    """The signature columns where the fitted pipeline fails on a missing value (a scaler or
    an encoder with no imputer before it), found by scoring ``rows`` (checked rows of the
    training data) with one column at a time set to missing. A row with a missing value there
    is then refused naming the column, instead of failing in the model. Empty without rows
    to probe with (rows with no missing value: the probe sets one)."""
    if not rows or predictor.signature is None:
        return ()
    columns = predictor.signature.columns

    def fails(probe: list[dict[str, Any]]) -> bool:
        try:
            predictor.answer(predictor.frame_from_records(probe))
        except Exception:  # whatever the pipeline raises on a missing value
            return True
        return False

    if fails(list(rows)):
        return ()  # the rows themselves do not score: nothing can be learned from them
    # One call for all columns first (each row block with one column missing): a pipeline
    # that imputes everything costs a single call.
    if not fails([{**row, c: None} for c in columns for row in rows]):
        return ()
    return tuple(c for c in columns if fails([{**row, c: None} for row in rows]))
