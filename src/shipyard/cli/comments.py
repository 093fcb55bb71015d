"""``shipyard comments``: Markdown comments on datasets, runs, models and deployments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli._common import JsonOpt, emit_json, open_local_project, table, when

if TYPE_CHECKING:
    from shipyard.collaboration.comments import Comment

app = typer.Typer(
    help="Comments on a dataset version, run, model version or deployment "
    "(REF: dataset:NAME@N, run:ID, model:NAME@N or NAME@ALIAS, deployment:NAME)."
)

TextOpt = Annotated[str | None, typer.Option("--text", help="The comment, in Markdown.")]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", help="Read the comment from this file (- for standard input)."),
]


def _text(text: str | None, file: Path | None) -> str:
    if (text is None) == (file is None):
        raise typer.BadParameter("give the comment with --text TEXT or --file FILE (one of them)")
    if file is None:
        return text or ""
    if str(file) == "-":
        import sys

        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {file}: {exc.strerror}", param_hint="--file"
        ) from None


def _show(c: Comment) -> None:
    edited = f", edited {when(c.edited_at)}" if c.edited_at else ""
    mentions = f" (mentions {', '.join('@' + m for m in c.mentions)})" if c.mentions else ""
    typer.echo(f"#{c.id} {c.author} on {c.on}, {when(c.created_at)}{edited}{mentions}")
    typer.echo(c.text)


@app.command("add")
def add(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="What to comment on.")],
    text: TextOpt = None,
    file: FileOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Comment on an entity (contributor); @name mentions of users are recorded."""
    comment = open_local_project(ctx).comments.add(ref, _text(text, file))
    if json_:
        emit_json(comment.to_dict())
    else:
        _show(comment)


@app.command("list")
def list_(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Whose comments.")],
    json_: JsonOpt = False,
) -> None:
    """List the comments on an entity, oldest first."""
    comments = open_local_project(ctx).comments.list(ref)
    if json_:
        emit_json([c.to_dict() for c in comments])
        return
    for c in comments:
        _show(c)
        typer.echo("")


@app.command("edit")
def edit(
    ctx: typer.Context,
    comment_id: Annotated[int, typer.Argument(metavar="ID", help="The comment's number.")],
    text: TextOpt = None,
    file: FileOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Replace your comment's text; earlier texts stay in its history."""
    comment = open_local_project(ctx).comments.edit(comment_id, _text(text, file))
    if json_:
        emit_json(comment.to_dict())
    else:
        _show(comment)


@app.command("history")
def history(
    ctx: typer.Context,
    comment_id: Annotated[int, typer.Argument(metavar="ID", help="The comment's number.")],
    json_: JsonOpt = False,
) -> None:
    """Every text a comment has had."""
    revisions = open_local_project(ctx).comments.history(comment_id)
    if json_:
        emit_json([r.to_dict() for r in revisions])
        return
    table(
        None,
        ["revision", "time", "by", "text"],
        [[r.revision, when(r.time), r.editor, r.text] for r in revisions],
    )
