"""Comments on the pages of a dataset version, a run, a model version and a deployment.

An entity's page holds a slot (``_comments_slot.html``, one include line) that htmx fills from
``GET /comments?on=KIND:REF``: the comments, each as sanitised Markdown with its mentions
highlighted, "edited" with its earlier texts a click away, an edit button on the visitor's
own comments, and for a contributor a form to add one. Posting (htmx, with the CSRF header)
answers with the refreshed block; a refusal of the service (a viewer posting, someone editing
another's comment) comes back with its status and message, which ``shipyard.js`` shows in
the form. Without htmx, a post redirects to the entity's page. Every route calls
``project.comments`` only.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shipyard.server.ui.rendering import UiRoute, page
from shipyard.server.ui.visitors import PostedBy, ViewedBy, Visitor

__all__ = ["entity_path", "router"]

router = APIRouter(route_class=UiRoute)


def entity_path(on: str) -> str:
    """The UI page of a comment's entity (a canonical ``KIND:REF``).

    >>> entity_path("model:credit-risk@3"), entity_path("run:5d1c0e9a")
    ('/models/credit-risk/3', '/runs/5d1c0e9a')
    """
    kind, _, ref = on.partition(":")
    name, _, version = ref.partition("@")
    if kind == "dataset":
        return f"/datasets/{quote(name, safe='')}/{version}"
    if kind == "model":
        return f"/models/{quote(name, safe='')}/{version}"
    if kind == "run":
        return f"/runs/{quote(ref, safe='')}"
    return f"/deployments/{quote(ref, safe='')}"


def _block(request: Request, who: Visitor, on: str) -> Response:
    """The comments block of ``on`` (its comments and the form)."""
    return page(request, "_comments.html", who, on=on, comments=who.project.comments.list(on))


def _answer(request: Request, who: Visitor, on: str) -> Response:
    """After a post: the refreshed block for htmx, else back to the entity's page."""
    if request.headers.get("hx-request"):
        return _block(request, who, on)
    return RedirectResponse(f"{entity_path(on)}#comments", status_code=303)


@router.get("/comments")
def comments(request: Request, who: ViewedBy, on: str) -> Response:
    return _block(request, who, on)


@router.post("/comments")
def add(request: Request, posted: PostedBy, on: str) -> Response:
    comment = posted.visitor.project.comments.add(on, posted.field("text"))
    return _answer(request, posted.visitor, comment.on)


@router.get("/comments/{comment_id}/edit")
def edit_form(request: Request, who: ViewedBy, comment_id: int) -> Response:
    """The edit form in place of the comment (the service decides who may save it)."""
    comment = who.project.comments.get(comment_id)
    return page(request, "_comment_edit.html", who, c=comment)


@router.post("/comments/{comment_id}")
def edit(request: Request, posted: PostedBy, comment_id: int) -> Response:
    comment = posted.visitor.project.comments.edit(comment_id, posted.field("text"))
    return _answer(request, posted.visitor, comment.on)


@router.get("/comments/{comment_id}/history")
def history(request: Request, who: ViewedBy, comment_id: int) -> Response:
    """Every text the comment has had: a fragment for htmx, else a page of its own."""
    revisions = who.project.comments.history(comment_id)
    if request.headers.get("hx-request"):
        return page(request, "_comment_history.html", who, revisions=revisions)
    comment = who.project.comments.get(comment_id)
    return page(
        request,
        "comment_history.html",
        who,
        c=comment,
        revisions=revisions,
        back=entity_path(comment.on),
    )
