"""The decoder is the inverse of the encoder: every public read model comes back from its JSON
as the same value, so a remote client returns what a local project returns."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard._internal.decode import _hints, decode
from shipyard.data.contract_registry import ContractSummary, ContractVersion
from shipyard.data.datasets import GoverningContract
from shipyard.data.validation_report import ValidationReport
from shipyard.data.versions import DatasetSummary, DatasetVersion
from shipyard.errors import InvalidInputError
from shipyard.governance.access import User
from shipyard.governance.approvals import Approval
from shipyard.governance.deployments import (
    Deployment,
    DeploymentChange,
    DeploymentStatus,
    Holder,
)
from shipyard.governance.policy_checks import PolicyResult
from shipyard.governance.policy_registry import StoredPolicy
from shipyard.governance.reports import StoredEvaluation
from shipyard.governance.tokens import NewToken, Token
from shipyard.registry.versions import AliasEvent, ModelSummary, ModelVersion
from shipyard.server.responses import JSON
from shipyard.stores.audit import AuditEvent, ChainReport
from shipyard.stores.integrity import GarbageReport, StoreReport
from shipyard.tracking.runs import Experiment, RunInfo

READ_MODELS = [
    DatasetVersion,
    DatasetSummary,
    GoverningContract,
    ValidationReport,
    ContractVersion,
    ContractSummary,
    Experiment,
    RunInfo,
    ModelVersion,
    ModelSummary,
    AliasEvent,
    StoredEvaluation,
    StoredPolicy,
    PolicyResult,
    Approval,
    Deployment,
    Holder,
    DeploymentChange,
    DeploymentStatus,
    User,
    Token,
    NewToken,
    AuditEvent,
    ChainReport,
    StoreReport,
    GarbageReport,
]

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
KEYS = st.text("abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=8)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
TIMES = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
EPOCH_MS = st.integers(0, 7_000_000_000_000)


def _strategy(hint: Any, reserved: frozenset[str] = frozenset()) -> st.SearchStrategy[Any]:
    """Values of the type ``hint`` (JSON values for ``Any``)."""
    if hint is Any:
        return JSON_VALUES
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return instances(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, __import__("types").UnionType):
        return st.one_of([_strategy(a, reserved) for a in args])
    if origin is tuple:
        return st.lists(_strategy(args[0]), max_size=3).map(tuple)
    if origin is list or getattr(origin, "__name__", "") in ("Sequence",):
        return st.lists(_strategy(args[0] if args else Any), max_size=3)
    if origin is dict or getattr(origin, "__name__", "") == "Mapping":
        keys = KEYS.filter(lambda k: k not in reserved)
        return st.dictionaries(keys, _strategy(args[1] if args else Any), max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        bool: st.booleans(),
        int: st.integers(-(2**53), 2**53),
        # A float field may be infinite (a metric): the server writes "Infinity".
        float: FLOATS | st.sampled_from([float("inf"), float("-inf")]),
        str: TEXT,
        datetime: TIMES,
    }
    if hint in simple:
        return simple[hint]
    raise AssertionError(f"no strategy for {hint!r}")


def instances(cls: type) -> st.SearchStrategy[Any]:
    """Instances of a read model with every field that reaches its JSON drawn at random."""
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init and f.metadata.get("json") != "omit"]
    # A flattened mapping must not take the keys of the fields around it.
    reserved = frozenset(f.name for f in fields) | frozenset(cls.json_properties)  # type: ignore[attr-defined]
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields:
        how = f.metadata.get("json")
        kwargs[f.name] = (
            EPOCH_MS
            if how == "epoch_ms" and "None" not in str(f.type)
            else st.none() | EPOCH_MS
            if how == "epoch_ms"
            else _strategy(hints[f.name], reserved if how == "flatten" else frozenset())
        )
    return st.builds(cls, **kwargs)


@pytest.mark.parametrize("cls", READ_MODELS, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_read_model_comes_back_from_its_json(cls: type, data: st.DataObject) -> None:
    """decode(cls, json(x.to_dict())) is x again (same JSON, and the same value), for every
    public read model, nested models, epoch-millisecond times, flattened fields and infinite
    floats included, written as the server writes its answers."""
    original = data.draw(instances(cls))
    wire = json.loads(JSON(original.to_dict()).body)  # type: ignore[attr-defined]
    back = decode(cls, wire)
    assert type(back) is cls
    assert back.to_dict() == original.to_dict()  # type: ignore[attr-defined]
    assert back == original


def test_a_document_without_a_required_field_names_it() -> None:
    """A server answer lacking a field fails with the class and the field named."""
    with pytest.raises(InvalidInputError, match=r"User document lacks the field 'role'"):
        decode(User, {"name": "ann", "created_at": "2026-01-01T00:00:00+00:00"})


def test_omitted_fields_are_given_by_the_caller() -> None:
    """A field the JSON never carries (the dataset version's link to its service) is set
    from the caller's extra values."""
    marker = object()
    doc = {
        "name": "credit",
        "version": 1,
        "digest": "blake3:00",
        "kind": "table",
        "rows": 1,
        "columns": ["a"],
        "schema": {"a": "Int64"},
        "profile": {},
        "size_bytes": 10,
        "message": "",
        "tags": {},
        "source": {},
        "created_at": "2026-01-01T00:00:00+00:00",
        "created_by": "ann",
        "ref": "credit@1",
    }
    v = decode(DatasetVersion, doc, _service=marker)
    assert v._service is marker
    assert v.ref == "credit@1"
