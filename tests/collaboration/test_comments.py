"""Comments: on any entity, resolved to the concrete version, with mentions, edit history,
roles and audit events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.collaboration.comments import parse_mentions
from shipyard.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.project import Project
from tests.governance.test_governance_service import MODEL, V1, clone_credit_project


@pytest.fixture
def team_project(project: Project) -> Project:
    """The empty project with abe (approver), carol (contributor) and vic (viewer)."""
    for name, role in (("abe", "approver"), ("carol", "contributor"), ("vic", "viewer")):
        project.users.add(name, role)
    return project


@pytest.fixture
def registered(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The credit project (SQLite copy) with credit-risk@1 and @2 registered."""
    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=False)
    project.users.add("abe", "approver")
    yield project
    project.close()


def test_mentions_are_names_after_an_at_sign_not_addresses_or_references() -> None:
    """`@name` counts once, in order; e-mail addresses and `name@3` references do not."""
    text = "@abe see credit@3 and mail ann@example.com; @vic-b. also @abe"
    assert parse_mentions(text) == ["abe", "vic-b"]


def test_a_comment_on_a_dataset_version_is_listed_with_its_existing_mentions(
    team_project: Project, sample_csv: Callable[..., Path]
) -> None:
    """A contributor comments on sales@latest: it is stored on sales@1, mentions only users
    that exist, and is listed for the entity; the audit log records it."""
    team_project.datasets.add("sales", sample_csv())
    carol = team_project.as_actor("carol")
    c = carol.comments.add("dataset:sales@latest", "**Nulls** in `amount`: @abe @nobody look?")
    assert (c.on, c.author, c.mentions, c.revisions) == ("dataset:sales@1", "carol", ("abe",), 1)
    assert c.text == "**Nulls** in `amount`: @abe @nobody look?"
    listed = team_project.as_actor("vic").comments.list("dataset:sales@1")
    assert [x.id for x in listed] == [c.id]
    [event] = team_project.audit.list(action="comment.add")
    assert (event.actor, event.entity, event.payload["on"]) == (
        "carol",
        str(c.id),
        "dataset:sales@1",
    )
    assert event.payload["new_mentions"] == ["abe"]


def test_comments_on_runs_and_deployments_resolve_and_unknown_ones_are_not_found(
    team_project: Project,
) -> None:
    """A run id prefix resolves to the full id; a missing run, dataset or deployment is a
    NotFoundError and a reference without a known kind an InvalidInputError."""
    with team_project.start_run("exp") as run:
        pass
    c = team_project.comments.add(f"run:{run.id[:8]}", "baseline")
    assert c.on == f"run:{run.id}"
    for ref in ("run:ffffffff", "dataset:nope@1", "deployment:nope", "model:nope@1"):
        with pytest.raises(NotFoundError):
            team_project.comments.add(ref, "x")
    for ref in ("sales@1", "table:sales@1", "dataset:"):
        with pytest.raises(InvalidInputError):
            team_project.comments.add(ref, "x")
    with pytest.raises(InvalidInputError):
        team_project.comments.add(f"run:{run.id}", "   ")


def test_a_viewer_reads_but_cannot_comment(
    team_project: Project, sample_csv: Callable[..., Path]
) -> None:
    """vic (viewer) is refused with a message naming the role needed; nothing is stored."""
    team_project.datasets.add("sales", sample_csv())
    with pytest.raises(PermissionDeniedError, match="contributor"):
        team_project.as_actor("vic").comments.add("dataset:sales@1", "hi")
    assert team_project.comments.list("dataset:sales@1") == []


def test_only_the_author_edits_and_every_text_is_kept(
    team_project: Project, sample_csv: Callable[..., Path]
) -> None:
    """carol edits her comment twice: the history holds all three texts in order; abe may not
    edit it; an edit tells only newly mentioned users."""
    team_project.datasets.add("sales", sample_csv())
    carol = team_project.as_actor("carol")
    c = carol.comments.add("dataset:sales@1", "first @abe")
    with pytest.raises(PermissionDeniedError, match="only its author"):
        team_project.as_actor("abe").comments.edit(c.id, "mine now")
    carol.comments.edit(c.id, "second @abe")
    edited = carol.comments.edit(c.id, "third @abe @vic")
    assert (edited.text, edited.revisions, edited.mentions) == (
        "third @abe @vic",
        3,
        ("abe", "vic"),
    )
    assert edited.edited_at is not None
    history = team_project.comments.history(c.id)
    assert [(r.revision, r.text) for r in history] == [
        (1, "first @abe"),
        (2, "second @abe"),
        (3, "third @abe @vic"),
    ]
    edits = team_project.audit.list(action="comment.edit")
    assert [e.payload["new_mentions"] for e in sorted(edits, key=lambda e: e.seq)] == [[], ["vic"]]
    with pytest.raises(NotFoundError):
        team_project.comments.history(999)


def test_a_comment_on_an_alias_is_stored_on_the_version_it_points_at(registered: Project) -> None:
    """`model:credit-risk@staging` is stored as the version staging names today, so moving the
    alias later does not move the comment."""
    registered.models.set_alias(V1, "staging")
    c = registered.comments.add(f"model:{MODEL}@staging", "@abe please review")
    assert c.on == f"model:{V1}"
    assert c.mentions == ("abe",)
    assert [x.id for x in registered.comments.list(f"model:{V1}")] == [c.id]
