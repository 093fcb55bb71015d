"""Roles (viewer < contributor < approver < admin), enforced by the services themselves.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

import shipyard
from shipyard.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.project import Project


def test_init_user_is_the_admin(project: Project) -> None:
    """The user who created the project is its registered admin."""
    me = project.users.whoami()
    assert (me.name, me.role, me.registered, me.created_by) == ("alice", "admin", True, "alice")
    assert [u.name for u in project.users.list()] == ["alice"]


def test_admin_adds_a_user(project: Project) -> None:
    """An admin registers a user with a role, and the change is logged."""
    bob = project.users.add("bob", "contributor")
    assert (bob.name, bob.role, bob.registered, bob.created_by) == (
        "bob",
        "contributor",
        True,
        "alice",
    )
    assert bob.created_at is not None and bob.created_at.tzinfo is not None
    assert [u.name for u in project.users.list()] == ["alice", "bob"]
    (event,) = project.audit.list(entity="user:bob")
    assert (event.action, event.payload) == ("user.add", {"role": "contributor"})
    assert bob.to_dict()["role"] == "contributor"


def test_admin_changes_a_role(project: Project) -> None:
    """Adding an existing user with another role changes the role and logs from/to."""
    project.users.add("bob", "viewer")
    assert project.users.add("bob", "approver").role == "approver"
    assert project.users.get("bob").role == "approver"
    change = project.audit.list(action="user.role")
    assert [(e.entity, e.payload) for e in change] == [
        ("bob", {"from": "viewer", "to": "approver"})
    ]


def test_same_role_again_changes_nothing(project: Project) -> None:
    """Re-adding a user with the role they have writes no event."""
    project.users.add("bob", "viewer")
    before = len(project.audit.list())
    project.users.add("bob", "viewer")
    assert len(project.audit.list()) == before


def test_unknown_actor_is_an_unregistered_viewer(project: Project) -> None:
    """Someone with no user record is treated as a viewer."""
    stranger = project.as_actor("mallory").users.whoami()
    assert (stranger.name, stranger.role, stranger.registered) == ("mallory", "viewer", False)
    assert stranger.to_dict()["created_at"] is None
    with pytest.raises(NotFoundError, match="no user 'mallory'"):
        project.users.require_exists("mallory")


def _inputs(tmp_path: Path, sample_csv: Callable[..., Path]) -> dict[str, Any]:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.bin").write_bytes(b"\x00\x01")
    return {
        "csv": sample_csv(),
        "tree": tree,
        "polars": pl.DataFrame({"a": [1, 2]}),
        "pandas": pd.DataFrame({"a": [1, 2]}),
    }


@pytest.mark.parametrize("who", ["viewer", "unregistered"])
@pytest.mark.parametrize("source", ["csv", "tree", "polars", "pandas"])
def test_viewer_cannot_add_data_and_nothing_is_written(
    project: Project,
    tmp_path: Path,
    sample_csv: Callable[..., Path],
    project_state: Callable[[Project], Any],
    who: str,
    source: str,
) -> None:
    """A viewer (registered or not) adding data is refused with a clear message, and no
    version, blob, event or staging file is left behind."""
    if who == "viewer":
        project.users.add("victor", "viewer")
    data = _inputs(tmp_path, sample_csv)[source]
    before = project_state(project)
    with pytest.raises(PermissionDeniedError) as info:
        project.as_actor("victor").datasets.add("credit", data)
    assert info.value.message.startswith(
        "user 'victor' is a viewer and cannot add data: this needs the contributor role"
    )
    assert "shipyard users add victor --role contributor" in info.value.message
    assert info.value.details == {"actor": "victor", "role": "viewer", "needed": "contributor"}
    assert project_state(project) == before
    assert project.datasets.list() == []


def test_viewer_cannot_tag(project: Project, sample_csv: Callable[..., Path]) -> None:
    """Tagging needs the contributor role; a refused tag leaves the tags unchanged."""
    project.datasets.add("credit", sample_csv())
    with pytest.raises(PermissionDeniedError, match="cannot tag data"):
        project.as_actor("victor").datasets.tag("credit@1", {"stage": "prod"})
    assert project.datasets.get("credit@1").tags == {}


def test_contributor_adds_data_but_not_users(
    project: Project, sample_csv: Callable[..., Path]
) -> None:
    """A contributor can add and tag data but cannot manage users."""
    project.users.add("carl", "contributor")
    carl = project.as_actor("carl")
    version = carl.datasets.add("credit", sample_csv())
    assert (version.created_by, version.created) == ("carl", True)
    carl.datasets.tag("credit@1", {"stage": "raw"})
    events = len(project.audit.list())
    with pytest.raises(PermissionDeniedError) as info:
        carl.users.add("eve", "admin")
    assert "user 'carl' is a contributor and cannot manage users" in info.value.message
    assert "needs the admin role" in info.value.message
    assert not project.users.get("eve").registered
    assert len(project.audit.list()) == events


@pytest.mark.parametrize("role", ["approver", "admin"])
def test_higher_roles_include_contributing(
    project: Project, sample_csv: Callable[..., Path], role: str
) -> None:
    """Approvers and admins can do what contributors can."""
    project.users.add("hana", role)
    assert project.as_actor("hana").datasets.add("credit", sample_csv()).created


def test_approver_cannot_manage_users(project: Project) -> None:
    """Only admins manage users; approvers are refused."""
    project.users.add("ann", "approver")
    with pytest.raises(PermissionDeniedError, match="is an approver and cannot manage users"):
        project.as_actor("ann").users.add("ann", "admin")
    assert project.users.get("ann").role == "approver"


def test_last_admin_cannot_demote_themself(project: Project) -> None:
    """The only admin cannot give up the role, so the project always keeps an admin."""
    events = len(project.audit.list())
    with pytest.raises(InvalidInputError, match="'alice' is the last admin"):
        project.users.add("alice", "contributor")
    assert project.users.get("alice").role == "admin"
    assert len(project.audit.list()) == events


def test_admin_can_step_down_once_another_admin_exists(project: Project) -> None:
    """With a second admin in place, an admin may take a lower role."""
    project.users.add("bob", "admin")
    assert project.users.add("alice", "viewer").role == "viewer"
    with pytest.raises(PermissionDeniedError):
        project.users.add("carol", "viewer")
    assert project.as_actor("bob").users.add("alice", "admin").role == "admin"


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [
        ("bob", "superuser", "unknown role 'superuser': choose one of viewer, contributor"),
        ("bad name", "viewer", "invalid user name 'bad name'"),
    ],
)
def test_bad_user_or_role_is_invalid_input(
    project: Project, name: str, role: str, message: str
) -> None:
    """Unknown roles and invalid user names are rejected with a message naming them."""
    events = len(project.audit.list())
    with pytest.raises(InvalidInputError, match=message):
        project.users.add(name, role)
    assert len(project.audit.list()) == events


def test_second_project_on_a_shared_database_adds_no_admin(
    project: Project, tmp_path: Path
) -> None:
    """A project initialised on a database that already has users does not make its creator
    an admin."""
    with shipyard.init_project(
        tmp_path / "second", actor="zed", db_url=project.settings.db_url
    ) as second:
        assert not second.users.whoami().registered
        assert second.users.whoami().role == "viewer"
    assert [u.name for u in project.users.list()] == ["alice"]
    assert project.audit.verify().ok
