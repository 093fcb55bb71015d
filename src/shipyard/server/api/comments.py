"""``/api/v1/comments``: Markdown comments on datasets, runs, models and deployments.

An entity is named as on the CLI: ``dataset:NAME@N``, ``run:ID``, ``model:NAME@N`` (or an
alias, stored as the version it points at) and ``deployment:NAME``. Any user reads comments;
a contributor writes them; only a comment's author edits it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from shipyard.collaboration.comments import Comment, CommentRevision
from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project

router = APIRouter(tags=["comments"])
Acting = Annotated[Project, Depends(acting_project)]

_COMMENT = {
    "id": 4,
    "on": "model:credit-risk@3",
    "author": "carol",
    "text": "@abe the fairness gap on `gender` is smaller than in v2; please review",
    "mentions": ["abe"],
    "created_at": "2026-05-03T10:00:00+00:00",
    "edited_at": None,
    "revisions": 1,
}
_REVISION = {
    "comment_id": 4,
    "revision": 1,
    "text": "@abe please review",
    "mentions": ["abe"],
    "time": "2026-05-03T10:00:00+00:00",
    "editor": "carol",
}
Entity = Annotated[
    str,
    Query(
        description="dataset:NAME@N, run:ID, model:NAME@N or NAME@ALIAS, deployment:NAME",
        examples=["model:credit-risk@production"],
    ),
]


class CommentIn(BaseModel):
    """A comment's Markdown text."""

    text: str = Field(examples=["@abe please review the card"])


@router.get(
    "/comments",
    summary="The comments on an entity, oldest first",
    **returns(Comment, many=True, example=[_COMMENT], errors=(401, 404, 422)),
)
def list_comments(project: Acting, entity: Entity) -> Any:
    return [c.to_dict() for c in project.comments.list(entity)]


@router.post(
    "/comments",
    summary="Comment on an entity (contributor)",
    status_code=201,
    **returns(Comment, example=_COMMENT, errors=(401, 403, 404, 422), status=201),
)
def add_comment(project: Acting, entity: Entity, body: CommentIn) -> Any:
    return project.comments.add(entity, body.text).to_dict()


@router.get(
    "/comments/{comment_id}",
    summary="One comment",
    **returns(Comment, example=_COMMENT, errors=(401, 404)),
)
def get_comment(project: Acting, comment_id: int) -> Any:
    return project.comments.get(comment_id).to_dict()


@router.patch(
    "/comments/{comment_id}",
    summary="Replace a comment's text (its author only); the old text stays in its history",
    **returns(Comment, example={**_COMMENT, "revisions": 2}, errors=(401, 403, 404, 422)),
)
def edit_comment(project: Acting, comment_id: int, body: CommentIn) -> Any:
    return project.comments.edit(comment_id, body.text).to_dict()


@router.get(
    "/comments/{comment_id}/history",
    summary="Every text a comment has had, the first one first",
    **returns(CommentRevision, many=True, example=[_REVISION], errors=(401, 404)),
)
def comment_history(project: Acting, comment_id: int) -> Any:
    return [r.to_dict() for r in project.comments.history(comment_id)]
