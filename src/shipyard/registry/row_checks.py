"""The checks every scored row passes, on every scoring path (the model server's requests,
``models predict`` on files): present in every column of the model's signature, of the
signature's types, and within the contracts of the data the model was trained on.

>>> checks = request_checks(signature, project.models.input_contracts("credit-risk@3"))
>>> errors = []
>>> check_row(checks, signature.columns, {"age": 250, ...}, 0, errors)    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.data.contracts import Contract
    from shipyard.registry.signatures import Signature

__all__ = ["MISSING", "check_row", "request_checks"]

MISSING = "missing (send null for an unknown value)"


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
) -> Any:
    """``row`` as the checks read it (ISO text turned into datetimes...), ready for a compiled
    model or :meth:`CheckedPredictor.frame_from_records`; or None, with each problem added to
    ``errors`` as ``{"record": index, "field", "reason"}``. Every column must be present,
    even one that allows null."""
    from pydantic import ValidationError

    from shipyard.registry.signatures import record_errors

    missing = [c for c in columns if c not in row]
    if missing:
        errors += [{"record": index, "field": c, "reason": MISSING} for c in missing]
        return None
    value: Any = None
    for model in checks:
        try:
            value = model.model_validate(row).model_dump(by_alias=True)
        except ValidationError as exc:
            errors += record_errors(exc, index)
            return None
    return value
