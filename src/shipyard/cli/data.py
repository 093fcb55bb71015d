"""``shipyard data``: the dataset registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard._internal.dtypes import readable_dtype
from shipyard.cli._common import (
    ForceOpt,
    JsonOpt,
    check_output,
    console,
    emit_json,
    open_local_project,
    open_project,
    parse_pairs,
    progress,
    short_digest,
    table,
    when,
)

if TYPE_CHECKING:
    from shipyard.data.datasets import DatasetVersion, OnInvalid
    from shipyard.data.deletion import DeletionResult

app = typer.Typer(
    help="Versioned datasets: add them, read them, compare them and trace their lineage.",
)


def _fmt_int(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def _summary_dict(v: DatasetVersion) -> dict[str, Any]:
    doc = v.to_dict()
    doc.pop("profile", None)
    return doc


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. credit.")],
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file, or a folder.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What this version is.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag (repeatable).")
    ] = None,
    parent: Annotated[
        list[str] | None,
        typer.Option("--parent", help="Dataset this one derives from, NAME@N (repeatable)."),
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(help="Validate against this contract (default: the bound contract)."),
    ] = None,
    quarantine: Annotated[
        bool,
        typer.Option(
            "--quarantine",
            help="Keep the valid rows as the new version; failing rows go to NAME.quarantine.",
        ),
    ] = False,
    allow_invalid: Annotated[
        bool, typer.Option("--allow-invalid", help="Store data that fails, marked invalid.")
    ] = False,
    allow_ragged: Annotated[
        bool,
        typer.Option(
            "--allow-ragged", help="Accept CSV lines with too few fields; fill them with nulls."
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Add a new version of a dataset (identical content returns the existing version).

    With a contract (--contract or `contract bind`), data that fails is rejected with exit 3
    and nothing is stored, unless --quarantine or --allow-invalid.
    """
    from shipyard.errors import CheckFailedError

    if quarantine and allow_invalid:
        raise typer.BadParameter("choose one of --quarantine and --allow-invalid")
    tags = parse_pairs(tag or [], "--tag")
    project = open_project(ctx)
    mode: OnInvalid = "quarantine" if quarantine else "allow" if allow_invalid else "reject"
    try:
        with progress(json_) as bar:
            v = project.datasets.add(
                name,
                path,
                message=message,
                tags=tags,
                parents=parent or [],
                contract=contract,
                on_invalid=mode,
                progress=bar,
                allow_ragged=allow_ragged,
            )
    except CheckFailedError as exc:
        if not json_ and "report" in exc.details:
            render_report(exc.details["report"], exc.details.get("contract", ""), err=True)
        raise
    if json_:
        emit_json(_summary_dict(v))
        return
    if v.created:
        shape = (
            f"{_plural(v.rows or 0, 'row')} x {_plural(len(v.columns), 'column')}"
            if v.kind == "table"
            else _plural(int(v.profile.get("files", 0)), "file")
        )
        typer.echo(f"added {v.ref}: {shape}, {v.digest}")
    else:
        typer.echo(f"unchanged: identical content is already {v.ref} ({v.digest})")
    ragged = v.source.get("ragged") if v.created else None
    if ragged:
        lines = ", ".join(str(r["line"]) for r in ragged["lines"])
        more = ", …" if ragged["rows"] > len(ragged["lines"]) else ""
        n = ragged["rows"]
        typer.echo(
            f"note: {n:,} short line{'' if n == 1 else 's'} filled with nulls "
            f"(line{'' if n == 1 else 's'} {lines}{more})"
        )
    if v.contract:
        typer.echo(f"validated against {v.contract}: {v.status}")
    q = v.quarantine
    if q:
        rows = f"{q['rows']:,} failing row{'' if q['rows'] == 1 else 's'}"
        typer.echo(f"quarantined {rows} to {q['ref']}")
        render_report(q["report"], v.contract or "", err=False, heading=_quarantined(v))


def _quarantined(v: Any) -> str | None:
    """What happened to a batch split by --quarantine, over its validation report: ``validation
    against c@1: 1 of 2,000 rows failed (quarantined), 1,999 stored``; None without one."""
    q = v.quarantine
    if not q or "report" not in q:
        return None
    return (
        f"validation against {v.contract}: {q['rows']:,} of "
        f"{_plural(q['report']['rows'], 'row')} failed (quarantined), {v.rows or 0:,} stored"
    )


def render_report(
    report: dict[str, Any], contract: str, *, err: bool, heading: str | None = None
) -> None:
    """A validation report as a table (on stderr for rejections), under ``heading`` (by
    default "validation against CONTRACT: passed/FAILED on N rows"), drawn as every listing
    is (:func:`~shipyard.cli._common.table`)."""
    verdict = "passed" if report["passed"] else "FAILED"
    title = heading or (
        f"validation against {contract}: {verdict} on {_plural(report['rows'], 'row')}"
    )
    if not report["failures"]:
        stream = sys.stderr if err else sys.stdout
        stream.write(title + "\n")
        stream.flush()
        return
    rows = [
        (
            f["column"] or "(dataset)",
            f["check"],
            _fmt_int(f["failed_rows"]),
            ", ".join(_example(f["check"], e) for e in f.get("examples", [])[:5]),
            f.get("message", ""),
        )
        for f in report["failures"]
    ]
    columns = ("column", "check", "failed rows", "examples", "message")
    table(title, columns, rows, err=err)


def _example(check: str, e: Any) -> str:
    """One example of a failure as people read it: a representation group as ``'F': 5.0%
    (10 rows)``, the label rates as ``'F' 51.6%, 'M' 48.2%``, a value as written."""
    from shipyard._internal.words import count, number

    if e is None:
        return "null"
    if isinstance(e, dict):
        if check == "representation" and {"group", "share", "rows"} <= e.keys():
            group = e["group"]
            shown = repr(group) if isinstance(group, str) else _example("", group)
            return f"{shown}: {e['share']:.1%} ({count(int(e['rows']), 'row')})"
        if check == "label_rate":
            return ", ".join(
                f"{g!r} {r:.1%}" if isinstance(r, float) else f"{g!r} {_example('', r)}"
                for g, r in e.items()
            )
        return ", ".join(f"{k}: {_example('', v)}" for k, v in e.items())
    if isinstance(e, list):
        return "(" + ", ".join(_example("", v) for v in e) + ")"
    if isinstance(e, float):
        return number(e)
    return str(e)


@app.command("validate")
def validate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF to check.")],
    contract: Annotated[
        str | None, typer.Option(help="CONTRACT@REF (default: the dataset's bound contract).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Check a version against a contract; exit 3 if it does not pass. The report is stored
    with the version."""
    project = open_project(ctx)
    report = project.datasets.validate(ref, contract=contract)
    v = project.datasets.get(ref)
    if json_:
        emit_json(report.to_dict())
    else:
        render_report(report.to_dict(), v.contract or "", err=False)
    if not report.passed:
        raise typer.Exit(3)


@app.command("split")
def split(
    ctx: typer.Context,
    ref: Annotated[
        str | None, typer.Argument(help="NAME@REF to split (omit with --replay).")
    ] = None,
    fractions: Annotated[
        str, typer.Option(help="Parts and shares, e.g. train=0.7,valid=0.15,test=0.15.")
    ] = "train=0.7,valid=0.15,test=0.15",
    key: Annotated[
        str | None,
        typer.Option(help="Assign rows by a hash of this column: appends never move rows."),
    ] = None,
    stratify: Annotated[
        str | None, typer.Option(help="Keep the class shares of this column in every part.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the random assignment.")] = 0,
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="Split by time instead, at --cutoffs.")
    ] = None,
    cutoffs: Annotated[
        str | None, typer.Option(help="Increasing times T1,T2 (with --time-column).")
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(
            "--replay", help="Re-create the split that made this child, e.g. credit.train@1."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Register child datasets NAME.train, NAME.valid, NAME.test with lineage and the spec.

    The same spec on the same data gives identical digests, in any project.
    """
    from shipyard.data.splits import SplitSpec, parse_fractions

    project = open_local_project(ctx)
    note = None
    with progress(json_) as bar:
        if replay:
            if ref:
                raise typer.BadParameter("give either NAME@REF or --replay CHILD, not both")
            parts = project.datasets.replay_split(replay, progress=bar)
        else:
            if not ref:
                raise typer.BadParameter("give the dataset to split, or --replay CHILD")
            shares = parse_fractions(fractions)
            source = ctx.get_parameter_source("fractions")
            explicit = source is not None and source.name != "DEFAULT"
            if time_column and cutoffs and explicit:
                note = (
                    f"note: a time split cuts at --cutoffs {cutoffs}, so it cannot honour the "
                    f"shares in --fractions {fractions}: only the part names "
                    f"({', '.join(shares)}) are used"
                )
            spec = SplitSpec(
                fractions=shares,
                key=key,
                stratify=stratify,
                seed=seed,
                time_column=time_column,
                cutoffs=cutoffs.split(",") if cutoffs else None,
            )
            parts = project.datasets.split(ref, spec, progress=bar)
    if note is not None:  # said of a split that was made, never before one that is refused
        typer.echo(note, err=True)
    if json_:
        emit_json({part: _summary_dict(v) for part, v in parts.items()})
        return
    table(
        None,
        ["part", "dataset", "rows", "digest", "new"],
        [
            [part, v.ref, _fmt_int(v.rows), short_digest(v.digest), "yes" if v.created else "no"]
            for part, v in parts.items()
        ],
    )


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List datasets with their latest version."""
    items = open_project(ctx).datasets.list()
    if json_:
        emit_json([d.to_dict() for d in items])
        return
    if not items:
        typer.echo("no datasets yet; add one with `shipyard data add NAME FILE`")
        return
    table(
        None,
        ["name", "latest", "versions", "kind", "rows", "columns", "status", "updated", "by"],
        [
            [
                d.name,
                d.latest,
                d.versions,
                d.kind,
                _fmt_int(d.rows),
                d.columns,
                d.status + (f" ({d.contract})" if d.contract else ""),
                when(d.updated_at),
                d.updated_by,
            ]
            for d in items
        ],
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    deleted: Annotated[
        bool, typer.Option("--deleted", help="List the deleted versions (tombstones) instead.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """List every version of a dataset."""
    if deleted:
        _tombstones(ctx, name, json_)
        return
    items = open_project(ctx).datasets.versions(name)
    if json_:
        emit_json([_summary_dict(v) for v in items])
        return
    # A split part's versions follow one numbering whatever version of the parent each was
    # cut from: the parent is shown beside each (credit.train@2 from credit@1).
    parents = [v.source.get("parent") if v.source.get("format") == "split" else None for v in items]
    split_from = any(parents)
    header = ["version", *(["split from"] if split_from else []), "digest", "rows", "columns"]
    table(
        name,
        [*header, "message", "tags", "by", "created"],
        [
            [
                v.version,
                *([parent or ""] if split_from else []),
                short_digest(v.digest),
                _fmt_int(v.rows),
                len(v.columns),
                v.message,
                ", ".join(f"{k}={x}" for k, x in v.tags.items()),
                v.created_by,
                when(v.created_at),
            ]
            for v, parent in zip(items, parents, strict=True)
        ],
    )


def _tombstones(ctx: typer.Context, name: str, json_: bool) -> None:
    items = open_local_project(ctx).datasets.versions(name, deleted=True)
    if json_:
        emit_json([_summary_dict(v) for v in items])
        return
    table(
        f"{name} (deleted)",
        ["version", "digest", "deleted by", "when", "reason", "content"],
        [
            [
                v.version,
                v.digest,
                (v.deleted or {}).get("by", ""),
                when((v.deleted or {}).get("at")),
                (v.deleted or {}).get("reason", ""),
                "purged" if (v.deleted or {}).get("purged_at") else "kept (restorable)",
            ]
            for v in items
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N, NAME@latest or NAME@<digest>.")],
    json_: JsonOpt = False,
) -> None:
    """Show a version: schema, column profile, lineage, message, tags, author, time."""
    v = open_project(ctx).datasets.get(ref)
    if json_:
        emit_json(v.to_dict())
        return
    out = console()
    out.print(f"[bold]{v.ref}[/bold]  {v.kind}  {v.digest}")
    out.print(f"created {when(v.created_at)} by {v.created_by}")
    if v.message:
        out.print(f"message: {v.message}")
    if v.tags:
        out.print("tags: " + ", ".join(f"{k}={x}" for k, x in v.tags.items()))
    out.print(f"parents: {', '.join(v.parents) or 'none'}")
    if v.contract:
        out.print(f"status: {v.status} (contract {v.contract})")
    src = v.source
    if src.get("format") == "split":
        out.print(f"split: {src['part']} part of {src['parent']}, {_split_words(src['split'])}")
    if src.get("path"):
        out.print(f"source: {src['path']} ({src.get('format')})")
    if v.kind == "files":
        out.print(
            f"{_plural(int(v.profile.get('files', 0)), 'file')}, {_plural(v.size_bytes, 'byte')}"
        )
        return
    out.print(
        f"{_plural(v.rows or 0, 'row')}, {_plural(len(v.columns), 'column')}, "
        f"{_plural(v.size_bytes, 'byte')} stored"
    )
    cols = v.profile.get("columns", {})
    rows = []
    for c in v.columns:
        p = cols.get(c, {})
        if p.get("kind") == "number":
            q = p.get("quantiles", {})
            detail = (
                f"min {_num(p.get('min'))}  p50 {_num(q.get('0.5'))}  max {_num(p.get('max'))}"
                f"  mean {_num(p.get('mean'))}  std {_num(p.get('std'))}"
            )
        elif p.get("top"):
            detail = ", ".join(f"{t['value']} ({t['count']:,})" for t in p["top"][:4])
        elif p.get("kind") == "time":
            detail = f"{p.get('min')} .. {p.get('max')}"
        else:
            detail = ""
        rows.append(
            [
                c,
                readable_dtype(v.schema.get(c, "")),
                _fmt_int(p.get("nulls")),
                _fmt_int(p.get("distinct")),
                detail,
            ]
        )
    table(None, ["column", "type", "nulls", "distinct", "profile"], rows)
    if v.validation:
        render_report(v.validation, v.contract or "", err=False, heading=_quarantined(v))


def _split_words(doc: Any) -> str:
    """A stored split spec in words; one this version cannot read, as stored."""
    from shipyard.data.splits import SplitSpec
    from shipyard.errors import InvalidInputError

    try:
        return SplitSpec.from_dict(doc).describe()
    except InvalidInputError:
        return f"spec {doc}"


def _num(x: Any) -> str:
    from shipyard._internal.words import number

    return number(x)


@app.command("get")
def get(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF to fetch.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="File (.csv, .parquet, .jsonl) or folder (file tree)."),
    ],
    force: ForceOpt = False,
    drop_pii: Annotated[
        bool,
        typer.Option("--drop-pii", help="Leave out the columns its contract marks pii: true."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Write a version to a file (format by extension) or restore a file tree to a folder."""
    tables = (".csv", ".parquet", ".jsonl")
    if drop_pii:
        _get_without_pii(ctx, ref, check_output(output, force=force, suffixes=tables), json_)
        return
    project = open_project(ctx)
    v = project.datasets.get(ref)
    if v.kind == "table":
        output = check_output(output, force=force, suffixes=tables)
    with progress(json_) as bar:
        dest = project.datasets.export(v.ref, output, progress=bar)
    if json_:
        emit_json({"ref": v.ref, "digest": v.digest, "output": str(dest)})
    else:
        typer.echo(f"wrote {v.ref} to {dest}")


def _get_without_pii(ctx: typer.Context, ref: str, output: Path, json_: bool) -> None:
    datasets = open_local_project(ctx).datasets
    dropped = datasets.pii_columns(ref)
    with progress(json_) as bar:
        dest = datasets.export(ref, output, progress=bar, drop_pii=True)
    v = datasets.get(ref)
    if json_:
        emit_json({"ref": v.ref, "digest": v.digest, "output": str(dest), "dropped": dropped})
    else:
        left_out = f"left out {', '.join(dropped)}" if dropped else "no column is marked pii"
        typer.echo(f"wrote {v.ref} to {dest} ({left_out})")


@app.command("diff")
def diff(
    ctx: typer.Context,
    ref_a: Annotated[str, typer.Argument(help="From, e.g. credit@1.")],
    ref_b: Annotated[str, typer.Argument(help="To, e.g. credit@2.")],
    json_: JsonOpt = False,
) -> None:
    """Compare two versions: schema changes, row count, per-column statistics."""
    d = open_project(ctx).datasets.diff(ref_a, ref_b)
    if json_:
        emit_json(d)
        return
    out = console()
    out.print(
        f"[bold]{d['from']} -> {d['to']}[/bold]" + ("  (identical)" if d["identical"] else "")
    )
    s = d["schema"]
    for c in s["added"]:
        out.print(f"  + column {c}")
    for c in s["removed"]:
        out.print(f"  - column {c}")
    for r in s["retyped"]:
        out.print(
            f"  ~ column {r['column']}: {readable_dtype(r['from'])} -> {readable_dtype(r['to'])}"
        )
    rows = d["rows"]
    if rows["change"] is not None:
        out.print(
            f"  rows: {_fmt_int(rows['from'])} -> {_fmt_int(rows['to'])} ({rows['change']:+,})"
        )
    if d["columns"]:
        table(
            None,
            ["column", "statistic", "from", "to", "change"],
            [
                [
                    c["column"],
                    c["stat"],
                    _num(c["from"])
                    if not isinstance(c["from"], list)
                    else ", ".join(map(str, c["from"])),
                    _num(c["to"])
                    if not isinstance(c["to"], list)
                    else ", ".join(map(str, c["to"])),
                    f"{c['relative']:+.1%}" if "relative" in c else "",
                ]
                for c in d["columns"]
            ],
        )


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N to tag.")],
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE tags to set.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", "-r", help="Tag key to remove (repeatable).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Set or remove tags on a version."""
    tags = parse_pairs(pairs or [], "KEY=VALUE")
    if not tags and not remove:
        raise typer.BadParameter("give KEY=VALUE tags to set or --remove KEY")
    v = open_local_project(ctx).datasets.tag(ref, tags, remove or [])
    if json_:
        emit_json({"ref": v.ref, "tags": v.tags})
    else:
        typer.echo(f"{v.ref} tags: " + (", ".join(f"{k}={x}" for k, x in v.tags.items()) or "none"))


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N.")],
    json_: JsonOpt = False,
) -> None:
    """Show where a version came from and what was made from it."""
    g = open_project(ctx).datasets.lineage(ref)
    if json_:
        emit_json(g)
        return
    out = console()
    gone = g.get("tombstones", {})

    def node(n: str) -> str:
        t = gone.get(n.removeprefix("dataset:")) if n.startswith("dataset:") else None
        if not t:
            return n
        state = "deleted and purged" if t.get("purged_at") else "deleted"
        return f"{n} ({state} by {t['by']} on {t['at'][:10]})"

    out.print(f"[bold]{g['ref']}[/bold]  {g['digest']}")
    out.print("upstream:" if g["upstream"] else "upstream: none")
    for e in g["upstream"]:
        out.print(f"  {e['child']}  <-{e['relation']}-  {node(e['parent'])}", markup=False)
    out.print("downstream:" if g["downstream"] else "downstream: none")
    for e in g["downstream"]:
        out.print(f"  {e['parent']}  -{e['relation']}->  {node(e['child'])}", markup=False)


def _plural(n: int, word: str) -> str:
    from shipyard._internal.words import count

    return count(n, word)


def _deletion_summary(r: DeletionResult) -> str:
    lines = []
    if r.action == "erase":
        made = f": new version {r.created}" if r.created else " (the latest version had none)"
        lines.append(f"erased {_plural(r.rows_removed, 'row')}{made}")
    if r.versions:
        verb = "restored" if r.action == "restore" else "deleted"
        lines.append(f"{verb} {', '.join(r.versions)}" + (f" ({r.reason})" if r.reason else ""))
    if r.purged:
        stays = "it remains as a tombstone" if len(r.purged) == 1 else "they remain as tombstones"
        lines.append(
            f"purged {', '.join(r.purged)}: {_plural(r.blobs_removed, 'blob')} removed "
            f"({_plural(r.bytes_removed, 'byte')}); {stays}"
        )
    if r.models:
        lines.append(f"the lineage of {', '.join(r.models)} keeps a tombstone")
    return "\n".join(lines)


@app.command("delete")
def delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N, or NAME for every version.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Delete even if a registered model's lineage uses it (admin)."
        ),
    ] = False,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Also remove the content from the artifact store (admin)."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Delete a version or a dataset (restorable).

    A deleted version is hidden from listings and from latest; naming it says who deleted it,
    when and why. --purge (admin) also removes its content from the artifact store.
    """
    r = open_local_project(ctx).datasets.delete(ref, reason=reason, force=force, purge=purge)
    emit_json(r.to_dict()) if json_ else typer.echo(_deletion_summary(r))


@app.command("restore")
def restore(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N, or NAME for every deleted version.")],
    json_: JsonOpt = False,
) -> None:
    """Bring back deleted versions not purged."""
    r = open_local_project(ctx).datasets.restore(ref)
    emit_json(r.to_dict()) if json_ else typer.echo(_deletion_summary(r))


@app.command("erase")
def erase(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    where: Annotated[
        str, typer.Option("--where", help='SQL condition on the rows, e.g. "customer_id = 42".')
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. a ticket number.")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Erase even from data a model's lineage uses.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Erase rows from every version (admin).

    Writes a new version without the rows --where matches (a SQL condition) and purges every
    version that held them; those remain as tombstones with their digests.
    """
    r = open_local_project(ctx).datasets.erase(name, where, reason=reason, force=force)
    emit_json(r.to_dict()) if json_ else typer.echo(_deletion_summary(r))
