"""The contract registry: versioned contracts from files, dicts and ``Contract`` objects, their
references, bindings to datasets, roles and audit trail. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.data.contracts import Contract
from shipyard.errors import (
    CheckFailedError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from shipyard.project import Project

StateOf = Callable[[Project], Any]

APPLICANTS_YAML = """\
description: Loan applicants
columns:
  id: {type: int, unique: true, nullable: false}
  age: {type: int, min: 18, max: 100}
  city: {type: category, allowed: [Oslo, Lima, Pune]}
checks:
  row_count: {min: 10}
"""
APPLICANTS = Contract.from_yaml(APPLICANTS_YAML)
# Version 2 tightens the age range: people over 60 no longer pass.
STRICTER = Contract.from_yaml(APPLICANTS_YAML.replace("max: 100", "max: 60"))


def _applicants(n: int = 50, *, oldest: int = 90) -> pl.DataFrame:
    """``n`` applicants with ages spread from 18 to ``oldest``."""
    return pl.DataFrame(
        {
            "id": list(range(n)),
            "age": [18 + i * (oldest - 18) // max(n - 1, 1) for i in range(n)],
            "city": [["Oslo", "Lima", "Pune"][i % 3] for i in range(n)],
        }
    )


def _contract_file(tmp_path: Path, text: str = APPLICANTS_YAML, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _contract_rows(project: Project) -> int:
    from sqlalchemy import func, select

    from shipyard.stores.db.tables import contract_versions, contracts

    with project.db.read() as conn:
        n_contracts = conn.execute(select(func.count()).select_from(contracts)).scalar_one()
        n_versions = conn.execute(select(func.count()).select_from(contract_versions)).scalar_one()
    return int(n_contracts) + int(n_versions)


# -- adding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["yaml-file", "dict", "contract"])
def test_add_from_a_file_a_dict_or_a_contract(
    project: Project, tmp_path: Path, source: str
) -> None:
    """A contract added from a YAML file, a dict or a Contract becomes version 1 with that spec."""
    given: Any = {
        "yaml-file": _contract_file(tmp_path),
        "dict": APPLICANTS.to_dict(),
        "contract": APPLICANTS,
    }[source]
    v = project.contracts.add("applicants", given, message="first cut")
    assert (v.name, v.version, v.ref, v.created) == ("applicants", 1, "applicants@1", True)
    assert v.digest.startswith("blake3:")
    assert v.spec == APPLICANTS.to_dict()
    assert v.contract == APPLICANTS
    assert (v.message, v.created_by, v.bound_to) == ("first cut", "alice", [])


def test_changed_content_gets_the_next_version(project: Project, tmp_path: Path) -> None:
    """Each different content gets the next version number, whatever form it arrives in."""
    v1 = project.contracts.add("applicants", _contract_file(tmp_path))
    v2 = project.contracts.add("applicants", STRICTER.to_dict(), message="max age 60")
    assert (v1.version, v2.version) == (1, 2)
    assert v2.created and v1.digest != v2.digest
    assert [v.version for v in project.contracts.versions("applicants")] == [1, 2]
    assert [v.message for v in project.contracts.versions("applicants")] == ["", "max age 60"]


def test_identical_content_creates_no_version(project: Project, tmp_path: Path) -> None:
    """Re-adding the same rules, as a file, a dict or a Contract, returns version 1 with
    created=False and records nothing."""
    first = project.contracts.add("applicants", _contract_file(tmp_path))
    events = len(project.audit.list())
    # Same rules written differently (flow style vs block style, reordered keys) are the same.
    reworded = (
        "columns:\n"
        "  id:\n    nullable: false\n    unique: true\n    type: int\n"
        "  age: {max: 100, min: 18, type: int}\n"
        "  city: {type: category, allowed: [Oslo, Lima, Pune]}\n"
        "checks: {row_count: {min: 10}}\n"
        "description: Loan applicants\n"
    )
    for again in (
        _contract_file(tmp_path, reworded, "again.yaml"),
        APPLICANTS.to_dict(),
        APPLICANTS,
    ):
        v = project.contracts.add("applicants", again, message="ignored")
        assert (v.ref, v.created, v.digest) == ("applicants@1", False, first.digest)
    assert [v.version for v in project.contracts.versions("applicants")] == [1]
    assert len(project.audit.list()) == events


def test_get_bare_name_is_latest_and_name_at_n_is_that_version(project: Project) -> None:
    """``get("name")`` and ``get("name@latest")`` give the newest version; ``name@1`` the first."""
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.add("applicants", STRICTER)
    assert project.contracts.get("applicants").ref == "applicants@2"
    assert project.contracts.get("applicants@latest").ref == "applicants@2"
    assert project.contracts.get("applicants@1").contract == APPLICANTS
    assert project.contracts.get("applicants@2").contract == STRICTER


def test_missing_contracts_and_versions_are_explained(project: Project) -> None:
    """Unknown contracts and versions raise NotFoundError naming them and where to look."""
    with pytest.raises(NotFoundError, match=r"no contract 'nope'; see `shipyard contract list`"):
        project.contracts.get("nope")
    with pytest.raises(NotFoundError, match="no contract 'nope'"):
        project.contracts.versions("nope")
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.add("applicants", STRICTER)
    with pytest.raises(NotFoundError, match=r"'applicants' has no version 7 \(latest is 2\)"):
        project.contracts.get("applicants@7")


def test_invalid_contract_file_lists_every_problem_and_writes_nothing(
    project: Project, tmp_path: Path, project_state: StateOf
) -> None:
    """A contract file with several mistakes raises one InvalidInputError naming the file and
    every problem; no contract row, version or audit event is written."""
    bad = _contract_file(
        tmp_path,
        "columns:\n"
        "  id: {type: integer}\n"  # unknown type
        "  age: {type: int, min: 100, max: 18}\n"  # min above max
        "  city: {type: string, regex: '('}\n"  # broken regex
        "checks:\n"
        "  rowcount: {min: 1}\n",  # misspelt check
        "bad.yaml",
    )
    before, rows = project_state(project), _contract_rows(project)
    with pytest.raises(InvalidInputError) as info:
        project.contracts.add("applicants", bad)
    err = info.value
    assert err.message.startswith(f"{bad}: 4 problems in contract")
    problems = err.details["problems"]
    assert len(problems) == 4
    assert any("columns.id.type" in p and "did you mean 'int'" in p for p in problems)
    assert any("columns.age" in p and "min 100 is greater than max 18" in p for p in problems)
    assert any("columns.city.regex" in p for p in problems)
    assert any("checks.rowcount" in p and "did you mean 'row_count'" in p for p in problems)
    assert project_state(project) == before
    assert _contract_rows(project) == rows == 0
    assert project.contracts.list() == []


def test_invalid_new_version_leaves_the_existing_versions(project: Project, tmp_path: Path) -> None:
    """A broken file for an existing contract adds no version and keeps the latest as it was."""
    project.contracts.add("applicants", APPLICANTS)
    events = len(project.audit.list())
    with pytest.raises(InvalidInputError, match="1 problem in contract"):
        project.contracts.add("applicants", _contract_file(tmp_path, "columns: {age: {min: 1}}"))
    assert [v.ref for v in project.contracts.versions("applicants")] == ["applicants@1"]
    assert len(project.audit.list()) == events


def test_missing_contract_file_is_invalid_input(project: Project, tmp_path: Path) -> None:
    """A path that does not exist is refused with the path named."""
    with pytest.raises(InvalidInputError, match="no such contract file"):
        project.contracts.add("applicants", tmp_path / "absent.yaml")
    assert project.contracts.list() == []


# -- binding ----------------------------------------------------------------------------------


def test_bind_before_the_dataset_exists_applies_to_its_first_add(project: Project) -> None:
    """A binding made before any data exists validates the very first ``add``."""
    project.contracts.add("applicants", APPLICANTS)
    assert project.contracts.bind("credit", "applicants", new=True) == "applicants"
    assert project.contracts.get("applicants").bound_to == ["credit"]
    with pytest.raises(CheckFailedError, match="fails contract applicants@1"):
        project.datasets.add("credit", _applicants(oldest=120))
    with pytest.raises(NotFoundError, match="has no versions"):
        project.datasets.get("credit")
    v = project.datasets.add("credit", _applicants())
    assert (v.ref, v.status, v.contract) == ("credit@1", "valid", "applicants@1")


def test_binding_by_name_follows_the_latest_version(project: Project) -> None:
    """A dataset bound to ``name`` is checked against whatever version is newest at add time."""
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.bind("credit", "applicants", new=True)
    assert project.datasets.add("credit", _applicants()).contract == "applicants@1"
    project.contracts.add("applicants", STRICTER)
    with pytest.raises(CheckFailedError, match="fails contract applicants@2"):
        project.datasets.add("credit", _applicants(n=60))
    assert project.datasets.add("credit", _applicants(oldest=60)).contract == "applicants@2"


def test_binding_pinned_to_a_version_keeps_using_it(project: Project) -> None:
    """A dataset bound to ``name@1`` is still validated against version 1 after version 2."""
    project.contracts.add("applicants", APPLICANTS)
    assert project.contracts.bind("credit", "applicants@1", new=True) == "applicants@1"
    project.contracts.add("applicants", STRICTER)
    # Ages up to 90 fail version 2 but pass version 1.
    v = project.datasets.add("credit", _applicants(oldest=90))
    assert (v.status, v.contract) == ("valid", "applicants@1")
    report = project.datasets.validate("credit@1")
    assert report.passed
    assert project.datasets.get("credit@1").contract == "applicants@1"
    assert project.contracts.get("applicants@1").bound_to == ["credit"]
    assert project.contracts.get("applicants@2").bound_to == []


def test_list_shows_datasets_pinned_to_an_older_version(project: Project) -> None:
    """``contracts.list()`` names every dataset bound to a contract, pinned or following."""
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.bind("credit", "applicants@1", new=True)
    project.contracts.bind("loans", "applicants", new=True)
    project.contracts.add("applicants", STRICTER)
    (summary,) = project.contracts.list()
    assert summary.bound_to == ["credit", "loans"]


def test_binding_by_digest_prefix_shows_in_bound_to(project: Project) -> None:
    """A dataset bound to a contract version by digest prefix is listed as bound to it."""
    v = project.contracts.add("applicants", APPLICANTS)
    project.contracts.bind("credit", f"applicants@{v.digest.split(':')[1][:12]}", new=True)
    assert project.datasets.add("credit", _applicants()).contract == "applicants@1"
    assert project.contracts.get("applicants@1").bound_to == ["credit"]


@pytest.mark.parametrize("prefix", ["12hex", "blake3:8hex"])
def test_binding_by_digest_prefix_pins_the_version_it_names(project: Project, prefix: str) -> None:
    """A digest prefix is resolved once, when binding: the binding stored, returned and
    recorded is ``NAME@N``, so later contract versions (which could share the prefix) do not
    change what the dataset is checked against."""
    project.contracts.add("applicants", {"columns": {"id": "int"}})
    v2 = project.contracts.add("applicants", APPLICANTS)
    hexpart = v2.digest.split(":")[1]
    ref = f"applicants@{hexpart[:12]}" if prefix == "12hex" else f"applicants@blake3:{hexpart[:8]}"
    assert project.contracts.bind("credit", ref, new=True) == "applicants@2"
    assert project.contracts.binding("credit") == "applicants@2"
    (event,) = project.audit.list(action="contract.bind")
    assert event.payload["contract"] == "applicants@2"
    project.contracts.add("applicants", STRICTER)
    # Ages up to 90 fail version 3 but pass the pinned version 2.
    assert project.datasets.add("credit", _applicants(oldest=90)).contract == "applicants@2"


def test_rebinding_replaces_the_binding(project: Project) -> None:
    """Binding again moves the dataset to the new contract and records the previous one."""
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.add("loose", {"columns": {"id": "int"}})
    project.contracts.bind("credit", "applicants", new=True)
    project.contracts.bind("credit", "loose", new=True)
    assert project.datasets.add("credit", _applicants(oldest=120)).contract == "loose@1"
    (last,) = project.audit.list(action="contract.bind", newest_first=True, limit=1)
    assert last.payload == {"contract": "loose", "previous": "applicants"}
    assert project.contracts.get("applicants").bound_to == []


def test_unbind_stops_validation(project: Project) -> None:
    """After ``unbind`` failing data is stored unvalidated; unbinding again is NotFoundError."""
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.bind("credit", "applicants", new=True)
    project.contracts.unbind("credit")
    v = project.datasets.add("credit", _applicants(oldest=120))
    assert (v.status, v.contract, v.validation) == ("unvalidated", None, None)
    assert project.contracts.get("applicants").bound_to == []
    with pytest.raises(NotFoundError, match="dataset 'credit' has no bound contract"):
        project.contracts.unbind("credit")
    with pytest.raises(NotFoundError, match="dataset 'ghost' has no bound contract"):
        project.contracts.unbind("ghost")
    (last,) = project.audit.list(action="contract.unbind")
    assert (last.entity, last.payload) == ("credit", {"previous": "applicants"})


def test_binding_to_an_unknown_contract_writes_nothing(
    project: Project, project_state: StateOf
) -> None:
    """Binding to a contract or version that does not exist is NotFoundError; no dataset row
    or event appears."""
    project.contracts.add("applicants", APPLICANTS)
    before = project_state(project)
    with pytest.raises(NotFoundError, match="no contract 'nope'"):
        project.contracts.bind("credit", "nope", new=True)
    with pytest.raises(NotFoundError, match="has no version 3"):
        project.contracts.bind("credit", "applicants@3", new=True)
    assert project_state(project) == before
    # The failed binds left the dataset unbound: its first version is not validated.
    assert project.datasets.add("credit", _applicants(oldest=120)).status == "unvalidated"


# -- roles and audit --------------------------------------------------------------------------


def test_viewer_cannot_add_bind_or_unbind(
    project: Project, tmp_path: Path, project_state: StateOf
) -> None:
    """An unregistered user is a viewer: adding, binding and unbinding contracts raise
    PermissionDeniedError and write nothing."""
    project.contracts.add("applicants", APPLICANTS)
    project.contracts.bind("credit", "applicants", new=True)
    viewer = project.as_actor("mallory")
    before, rows = project_state(project), _contract_rows(project)
    attempts: list[Callable[[], Any]] = [
        lambda: viewer.contracts.add("applicants", STRICTER),
        lambda: viewer.contracts.add("other", _contract_file(tmp_path)),
        lambda: viewer.contracts.bind("loans", "applicants", new=True),
        lambda: viewer.contracts.bind("credit", "applicants@1", new=True),
        lambda: viewer.contracts.unbind("credit"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDeniedError, match="'mallory' is a viewer") as info:
            attempt()
        assert info.value.details["needed"] == "contributor"
    assert project_state(project) == before
    assert _contract_rows(project) == rows
    assert project.contracts.get("applicants").bound_to == ["credit"]
    # Reading is allowed.
    assert viewer.contracts.get("applicants").ref == "applicants@1"


def test_a_contributor_can_add_and_bind(project: Project) -> None:
    """A contributor registers and binds contracts under their own name."""
    project.users.add("bob", "contributor")
    bob = project.as_actor("bob")
    v = bob.contracts.add("applicants", APPLICANTS)
    bob.contracts.bind("credit", "applicants", new=True)
    assert v.created_by == "bob"
    assert [e.actor for e in project.audit.list(action="contract.")] == ["bob", "bob"]


def test_add_and_bind_are_audited(project: Project) -> None:
    """``contract.add`` and ``contract.bind`` events name the version, digest, columns and
    binding; binding a new dataset also records its creation."""
    v = project.contracts.add("applicants", APPLICANTS, message="first cut")
    project.contracts.bind("credit", "applicants@1", new=True)
    (added,) = project.audit.list(action="contract.add")
    assert (added.actor, added.entity_kind, added.entity) == ("alice", "contract", "applicants@1")
    assert added.payload == {
        "digest": v.digest,
        "message": "first cut",
        "columns": ["age", "city", "id"],
    }
    (bound,) = project.audit.list(action="contract.bind")
    assert (bound.entity_kind, bound.entity) == ("dataset", "credit")
    assert bound.payload == {"contract": "applicants@1", "previous": None}
    created = project.audit.list(action="dataset.create", entity="credit")
    assert len(created) == 1 and created[0].seq < bound.seq
    assert project.audit.verify().ok
