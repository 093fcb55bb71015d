"""Comments on a dataset version, a run, a model version or a deployment.

A comment is Markdown, stored raw (whoever renders it sanitises it); ``@name`` mentions of
existing users are stored with it, and a webhook subscribed to ``comment.mention`` hears of
them. Every text a comment has had is kept; only its author edits it.

>>> project.comments.add("model:credit-risk@production", "@abe can you review?")  # doctest: +SKIP
>>> project.comments.list("model:credit-risk@3")                                  # doctest: +SKIP

Roles: any user (a viewer too) reads comments; a contributor or higher writes them.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from shipyard._internal.encode import ReadModel
from shipyard._internal.markdown import MENTION
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.stores.db.tables import comment_revisions, comments, users

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shipyard.context import ServiceContext
    from shipyard.data.datasets import Datasets
    from shipyard.governance.deployments import Deployments
    from shipyard.registry.models import Models
    from shipyard.tracking.runs import Runs

__all__ = [
    "ENTITY_KINDS",
    "MAX_COMMENT_CHARS",
    "Comment",
    "CommentRevision",
    "Comments",
    "parse_mentions",
]

#: What a comment can be on, as the prefix of its reference (``model:credit-risk@3``).
ENTITY_KINDS = ("dataset", "run", "model", "deployment")
MAX_COMMENT_CHARS = 20_000


def parse_mentions(text: str) -> list[str]:
    """The distinct ``@name`` mentions in ``text``, in order of first appearance.

    >>> parse_mentions("@abe and @vic, see mail@example.com and credit@3. Thanks @abe.")
    ['abe', 'vic']
    """
    return list(dict.fromkeys(MENTION.findall(text)))


@dataclass(frozen=True)
class Comment(ReadModel):
    """A comment: ``on`` is the entity's reference (``model:credit-risk@3``), ``text`` its
    latest Markdown, ``mentions`` the existing users it names."""

    id: int
    on: str
    author: str
    text: str
    mentions: tuple[str, ...]
    created_at: datetime
    edited_at: datetime | None
    revisions: int


@dataclass(frozen=True)
class CommentRevision(ReadModel):
    """One text a comment has had (revision 1 is the text it was written with)."""

    comment_id: int
    revision: int
    text: str
    mentions: tuple[str, ...]
    time: datetime
    editor: str


class Comments:
    """Service for comments: ``add``, ``edit``, ``get``, ``list``, plus ``history``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        datasets: Datasets,
        runs: Runs,
        models: Models,
        deployments: Deployments,
    ) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._runs = runs
        self._models = models
        self._deployments = deployments

    def resolve(self, entity: str) -> str:
        """The canonical reference of what ``entity`` names: an alias or ``latest`` becomes
        the version it points at now (``model:credit-risk@production`` →
        ``model:credit-risk@3``), a run id prefix the full id.

        Raises:
            InvalidInputError: not ``KIND:REF`` with a known kind.
            NotFoundError: no such entity.
        """
        kind, sep, ref = entity.partition(":")
        if not sep or kind not in ENTITY_KINDS or not ref.strip():
            raise InvalidInputError(
                f"cannot comment on {entity!r}: name the entity as KIND:REF with KIND one of "
                f"{', '.join(ENTITY_KINDS)}, e.g. dataset:credit@2, run:5d1c0e9a, "
                "model:credit-risk@production, deployment:credit"
            )
        ref = ref.strip()
        if kind == "dataset":
            canonical = self._datasets.get(ref).ref
        elif kind == "model":
            canonical = self._models.get(ref).ref
        elif kind == "run":
            canonical = self._runs.get(ref).id
        else:
            canonical = self._deployments.get(ref).name
        return f"{kind}:{canonical}"

    def add(self, entity: str, text: str) -> Comment:
        """Comment on ``entity`` (contributor), e.g. ``add("run:5d1c0e9a", "**why** so slow?")``.

        Raises:
            InvalidInputError: a bad reference or an empty or too long text.
            NotFoundError: no such entity.
            PermissionDeniedError: the actor is a viewer.
        """
        body = _checked_text(text)
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "comment")
        on = self.resolve(entity)
        kind, _, ref = on.partition(":")
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "comment")
            mentions = _known_users(tx.conn, parse_mentions(body))
            res = tx.conn.execute(
                comments.insert().values(
                    entity_kind=kind,
                    entity=ref,
                    author=self._ctx.actor,
                    text=body,
                    mentions=mentions,
                    created_at=now,
                    edited_at=None,
                    revisions=1,
                )
            )
            comment_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            _insert_revision(tx.conn, comment_id, 1, body, mentions, now, self._ctx.actor)
            tx.record(
                "comment.add",
                "comment",
                str(comment_id),
                {"on": on, "text": body, "mentions": mentions, "new_mentions": mentions},
            )
        return self.get(comment_id)

    def edit(self, comment_id: int, text: str) -> Comment:
        """Replace a comment's text (its author only); the earlier texts stay in its history.
        Users mentioned for the first time are told (``comment.mention``); those mentioned
        before are not told again.

        Raises:
            NotFoundError: no such comment.
            PermissionDeniedError: the actor is not its author, or no longer a contributor.
        """
        body = _checked_text(text)
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            row = _row(tx.conn, comment_id)
            if row.author != self._ctx.actor:
                raise PermissionDeniedError(
                    f"comment {comment_id} is {row.author}'s and only its author edits it; "
                    "add a comment of your own instead",
                    details={"actor": self._ctx.actor, "author": row.author},
                )
            require_role(tx.conn, self._ctx.actor, "contributor", "comment")
            mentions = _known_users(tx.conn, parse_mentions(body))
            before = set(row.mentions or [])
            for r in tx.conn.execute(
                select(comment_revisions.c.mentions).where(
                    comment_revisions.c.comment_id == comment_id
                )
            ):
                before.update(r.mentions or [])
            revision = int(row.revisions) + 1
            tx.conn.execute(
                update(comments)
                .where(comments.c.id == comment_id)
                .values(text=body, mentions=mentions, edited_at=now, revisions=revision)
            )
            _insert_revision(tx.conn, comment_id, revision, body, mentions, now, self._ctx.actor)
            tx.record(
                "comment.edit",
                "comment",
                str(comment_id),
                {
                    "on": f"{row.entity_kind}:{row.entity}",
                    "revision": revision,
                    "text": body,
                    "mentions": mentions,
                    "new_mentions": [m for m in mentions if m not in before],
                },
            )
        return self.get(comment_id)

    def get(self, comment_id: int) -> Comment:
        """One comment.

        Raises:
            NotFoundError: no such comment.
        """
        with self._ctx.db.read() as conn:
            return _to_comment(_row(conn, comment_id))

    def list(self, entity: str) -> builtins.list[Comment]:
        """The comments on ``entity``, oldest first (an alias is resolved to the version it
        points at now, whose comments are listed).

        Raises:
            InvalidInputError, NotFoundError: see :meth:`resolve`.
        """
        kind, _, ref = self.resolve(entity).partition(":")
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(comments)
                .where(comments.c.entity_kind == kind)
                .where(comments.c.entity == ref)
                .order_by(comments.c.id)
            ).all()
        return [_to_comment(r) for r in rows]

    def mentioning(self, since: datetime) -> builtins.list[Comment]:
        """Comments written or edited at or after ``since`` that mention someone, oldest
        first (for the team digest)."""
        with self._ctx.db.read() as conn:
            rows = conn.execute(
                select(comments)
                .where(
                    (comments.c.created_at >= since)
                    | (comments.c.edited_at.is_not(None) & (comments.c.edited_at >= since))
                )
                .order_by(comments.c.id)
            ).all()
        return [c for c in map(_to_comment, rows) if c.mentions]

    def history(self, comment_id: int) -> builtins.list[CommentRevision]:
        """Every text the comment has had, the first one first.

        Raises:
            NotFoundError: no such comment.
        """
        with self._ctx.db.read() as conn:
            _row(conn, comment_id)
            rows = conn.execute(
                select(comment_revisions)
                .where(comment_revisions.c.comment_id == comment_id)
                .order_by(comment_revisions.c.revision)
            ).all()
        return [
            CommentRevision(
                int(r.comment_id),
                int(r.revision),
                r.text,
                tuple(r.mentions or ()),
                r.time,
                r.editor,
            )
            for r in rows
        ]


def _checked_text(text: str) -> str:
    body = text.strip()
    if not body:
        raise InvalidInputError("a comment needs some text: pass --text TEXT or --file FILE")
    if len(body) > MAX_COMMENT_CHARS:
        raise InvalidInputError(
            f"the comment has {len(body)} characters; keep it to {MAX_COMMENT_CHARS} "
            "(link to a document for longer notes)"
        )
    return body


def _known_users(conn: Connection, names: builtins.list[str]) -> builtins.list[str]:
    """``names`` that are users of the project, in the same order."""
    if not names:
        return []
    known = set(conn.execute(select(users.c.name).where(users.c.name.in_(names))).scalars())
    return [n for n in names if n in known]


def _row(conn: Connection, comment_id: int) -> Any:
    # Ids are 32-bit integers in the database; a larger number names no comment.
    in_range = 0 < comment_id < 2**31
    row = in_range and conn.execute(select(comments).where(comments.c.id == comment_id)).first()
    if not row:
        raise NotFoundError(
            f"no comment {comment_id}; list an entity's comments with "
            "`shipyard comments list KIND:REF`"
        )
    return row


def _insert_revision(
    conn: Connection,
    comment_id: int,
    revision: int,
    text: str,
    mentions: builtins.list[str],
    time: datetime,
    editor: str,
) -> None:
    conn.execute(
        comment_revisions.insert().values(
            comment_id=comment_id,
            revision=revision,
            text=text,
            mentions=mentions,
            time=time,
            editor=editor,
        )
    )


def _to_comment(row: Any) -> Comment:
    return Comment(
        int(row.id),
        f"{row.entity_kind}:{row.entity}",
        row.author,
        row.text,
        tuple(row.mentions or ()),
        row.created_at,
        row.edited_at,
        int(row.revisions),
    )
