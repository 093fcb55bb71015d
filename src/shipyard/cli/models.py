"""``shipyard models``: the model registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli._common import (
    JsonOpt,
    check_output,
    console,
    emit_json,
    open_local_project,
    open_project,
    parse_pairs,
    progress,
    table,
    when,
)

app = typer.Typer(help="The model registry: versions, aliases, loading and batch scoring.")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List registered models with their latest version and aliases."""
    items = open_project(ctx).models.list()
    if json_:
        emit_json([m.to_dict() for m in items])
        return
    if not items:
        typer.echo("no models yet; log one with run.log_model(...) or `shipyard models register`")
        return
    table(
        None,
        ["model", "latest", "versions", "aliases", "updated", "by"],
        [
            [
                m.name,
                m.latest,
                m.versions,
                ", ".join(f"{a}={v}" for a, v in m.aliases.items()),
                when(m.updated_at),
                m.updated_by,
            ]
            for m in items
        ],
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    json_: JsonOpt = False,
) -> None:
    """List every version of a model."""
    items = open_project(ctx).models.versions(name)
    if json_:
        emit_json([v.to_dict() for v in items])
        return
    keys = sorted({k for v in items for k in v.metrics if not k.startswith("system.")})[:5]
    table(
        name,
        ["version", "status", "aliases", "run", *keys, "by", "created"],
        [
            [
                v.version,
                v.status,
                ", ".join(v.aliases),
                (v.run_id or "")[:12],
                *[f"{v.metrics[k]:.4g}" if k in v.metrics else "" for k in keys],
                v.created_by,
                when(v.created_at),
            ]
            for v in items
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N, NAME@ALIAS or NAME (latest).")],
    json_: JsonOpt = False,
) -> None:
    """Show a version: signature, lineage, metrics, status and aliases."""
    v = open_project(ctx).models.get(ref)
    if json_:
        emit_json(v.to_dict())
        return
    out = console()
    out.print(f"[bold]{v.ref}[/bold]  {v.status}  {v.flavor}  {v.digest}")
    out.print(f"registered {when(v.created_at)} by {v.created_by}")
    out.print(f"aliases: {', '.join(v.aliases) or 'none'}")
    for item in v.lineage:
        if item["kind"] == "run":
            out.print(f"from run {item['ref']} ({item.get('name')}, by {item.get('by')})")
        else:
            gone = item.get("deleted")
            note = ""
            if gone:
                state = "deleted and purged" if gone.get("purged_at") else "deleted"
                why = f": {gone['reason']}" if gone.get("reason") else ""
                note = (
                    f"  [tombstone: {state} by {gone['by']} on {when(gone['at'])}{why}; "
                    f"digest {item['digest']}]"
                )
            out.print(f"  {item['context']} data: {item['ref']}{note}", markup=False)
    if v.metrics:
        out.print("metrics: " + ", ".join(f"{k}={x:.4g}" for k, x in v.metrics.items()))
    sig = v.signature or {}
    if sig:
        cols = sig.get("inputs", {}).get("columns", {})
        out.print("inputs: " + ", ".join(f"{c}:{s.get('type')}" for c, s in cols.items()))
        if sig.get("ignored"):
            out.print("ignored (the model drops them): " + ", ".join(sig["ignored"]))
        out.print(f"outputs: {_outputs(sig.get('outputs'))}", markup=False)


def _outputs(outputs: Any) -> str:
    """``classification of 0, 1 (int)``, ``regression (float)``, or the mapping as key=value."""
    if not isinstance(outputs, dict):
        return str(outputs)
    kind, dtype = outputs.get("kind", "?"), outputs.get("dtype")
    classes = outputs.get("classes")
    text = str(kind)
    if isinstance(classes, list):
        shown = ", ".join(str(c) for c in classes[:10])
        text += f" of {shown}" + (f", … ({len(classes):,} classes)" if len(classes) > 10 else "")
    if dtype:
        text += f" ({dtype})"
    rest = {k: v for k, v in outputs.items() if k not in ("kind", "dtype", "classes")}
    return text + "".join(f", {k}={v}" for k, v in rest.items())


@app.command("register")
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    run: Annotated[str, typer.Option("--run", help="The run that logged the model file.")],
    artifact: Annotated[
        str,
        typer.Option(
            "--artifact",
            help="Path of the model file among the run's artifacts (autolog logs it as model).",
        ),
    ],
    input_example: Annotated[
        Path | None,
        typer.Option(
            "--input-example",
            help="CSV or Parquet file of input rows to infer the signature from (default: the "
            "input_example.parquet the run logged beside the model file).",
        ),
    ] = None,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag (repeatable).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Register a model file that a run logged as an artifact (any flavor but custom code),
    its signature inferred from an input example."""
    tags = parse_pairs(tag or [], "--tag")
    v = open_local_project(ctx).models.register(
        name,
        run_id=run,
        artifact=artifact,
        input_example=input_example,
        description=description,
        tags=tags,
    )
    if json_:
        emit_json(v.to_dict())
        return
    cols = len((v.signature or {}).get("inputs", {}).get("columns", {}))
    typer.echo(f"registered {v.ref} from run {v.run_id} ({v.flavor}, {cols} input columns)")


@app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="An MLflow model directory (with its MLmodel file), or models:/NAME/VERSION "
            "(or models:/m-…, runs:/RUN/PATH) of this project's MLflow registry."
        ),
    ],
    name: Annotated[str, typer.Argument(help="Model name to register it under.")],
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Admin only: load a pickled model once, here, and store it in its safe "
            "format; recorded in the audit log and on the model card.",
        ),
    ] = False,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="KEY=VALUE tag (repeatable).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Import an MLflow model (sklearn with skops, XGBoost, LightGBM, ONNX) as a new version,
    with its signature; a pickled model is refused unless an admin passes --trust-pickle."""
    tags = parse_pairs(tag or [], "--tag")
    v = open_local_project(ctx).mlflow_imports.import_model(
        source, name, trust_pickle=trust_pickle, description=description, tags=tags
    )
    if json_:
        emit_json(v.to_dict())
        return
    cols = len((v.signature or {}).get("inputs", {}).get("columns", {}))
    typer.echo(f"imported {source} as {v.ref} (flavor {v.flavor}, {cols} input columns)")


@app.command("alias")
def alias(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N to point the alias at.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. staging, champion.")],
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Point an alias at a version (protected aliases such as production move only by
    promotion)."""
    v = open_local_project(ctx).models.set_alias(ref, alias_name, comment=comment)
    if json_:
        emit_json(v.to_dict())
    else:
        typer.echo(f"{v.name}@{alias_name} -> version {v.version}")


@app.command("alias-history")
def alias_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Every move of the model's aliases: alias, from, to, who, when, why."""
    events = open_project(ctx).models.alias_history(name, alias_name)
    if json_:
        emit_json([e.to_dict() for e in events])
        return
    table(
        name,
        ["when", "alias", "from", "to", "by", "how", "comment"],
        [
            [
                when(e.time),
                e.alias,
                e.from_version or "",
                e.to_version or "",
                e.actor,
                e.reason,
                e.comment,
            ]
            for e in events
        ],
    )


@app.command("archive")
def archive(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@N.")],
    json_: JsonOpt = False,
) -> None:
    """Archive a version that no alias points at."""
    v = open_local_project(ctx).models.archive(ref)
    emit_json(v.to_dict()) if json_ else typer.echo(f"archived {v.ref}")


@app.command("predict")
def predict(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF of the model.")],
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV or Parquet to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .csv or .parquet.")],
    chunk_size: Annotated[int, typer.Option(help="Rows scored at a time.", min=1)] = 50_000,
    on_invalid: Annotated[
        str,
        typer.Option(
            help="Rows the checks refuse (signature, training data's contract): reject (write "
            "nothing), skip (leave them out) or null (keep them with empty predictions); "
            "skip and null write them with their reasons to OUTPUT-STEM.rejected.csv.",
        ),
    ] = "reject",
    force: Annotated[
        bool, typer.Option("--force", help="Replace the output if it exists.")
    ] = False,
    timestamp: Annotated[
        str | None,
        typer.Option(
            help="For a model trained on feature views: the input's column to join its "
            "features as of (default: the input's only date or datetime column).",
        ),
    ] = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="For a model trained on feature views: read its features' latest values "
            "from the online store, even when the input has a time column.",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Score a file in chunks (bounded memory) with a progress bar, every row checked as the
    model server checks a request."""
    if on_invalid not in ("reject", "skip", "null"):
        raise typer.BadParameter("--on-invalid must be reject, skip or null")
    if timestamp is not None and online:
        raise typer.BadParameter("give --timestamp or --online, not both")
    output = check_output(output, force=force, suffixes=(".csv", ".parquet"))
    project = open_project(ctx)
    with progress(json_) as bar:
        doc = project.models.predict_file(
            ref,
            source,
            output,
            chunk_size=chunk_size,
            on_invalid=on_invalid,  # type: ignore[arg-type]
            force=force,
            timestamp=timestamp,
            online=online,
            progress=bar,
        )
    if json_:
        emit_json(doc)
        return
    from shipyard._internal.words import count

    typer.echo(f"scored {doc['scored']:,} of {count(doc['rows'], 'row')} into {doc['output']}")
    how = doc.get("features")
    if how:
        where = (
            f"as of each row's {how['timestamp']} (point in time)"
            if how["mode"] == "point_in_time"
            else "from the online store (latest values)"
        )
        typer.echo(f"features {', '.join(how['refs'])} joined {where}")
    if doc["refused"]:
        typer.echo(f"{doc['refused']:,} refused rows, with their reasons, in {doc['rejected']}")


@app.command("export")
def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF of the model.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write (.onnx).")],
    format_: Annotated[str, typer.Option("--format", help="The format: onnx.")] = "onnx",
    data: Annotated[
        str | None,
        typer.Option(
            help="Dataset to check parity on (default: that of the newest evaluation, else "
            "the training data)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the output if it exists.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Export a version to ONNX (scikit-learn, XGBoost, LightGBM), after checking that it
    answers like the original on the model's own validation rows; exit 3, writing nothing,
    if it does not."""
    from shipyard.registry.export import FORMATS, SUFFIXES

    if format_ not in FORMATS:
        raise typer.BadParameter(
            f"cannot export to {format_!r}: the formats are {', '.join(FORMATS)}",
            param_hint="--format",
        )
    output = check_output(output, force=force, suffixes=SUFFIXES[format_])
    doc = (
        open_local_project(ctx)
        .models.export(ref, output, format=format_, data=data, force=force)
        .to_dict()
    )
    parity = doc["parity"]
    if json_:
        emit_json(doc)
    else:
        from shipyard._internal.words import count

        agree = f"{parity['labels_agree']:,} of {parity['rows']:,}"
        typer.echo(
            f"parity on {count(parity['rows'], 'row')} of {parity['rows_from']}: {agree} answers "
            f"agree, largest difference {parity['max_abs_diff']:.3g} "
            f"(relative {parity['max_rel_diff']:.3g}, tolerance {parity['tolerance']:g})"
        )
        if doc["written"]:
            typer.echo(f"wrote {doc['model']} as {doc['format']} to {doc['output']}")
        else:
            typer.echo(f"parity failed: nothing written to {doc['output']}", err=True)
    if not doc["written"]:
        raise typer.Exit(3)


@app.command("code")
def code(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF of a custom code model.")],
    json_: JsonOpt = False,
) -> None:
    """Show the source code of a custom code model, its digest and who approved it (runs
    nothing): what an approver reads before `models approve-code`."""
    doc = open_project(ctx).models.code(ref).to_dict()
    if json_:
        emit_json(doc)
        return
    approvals = ", ".join(a["approver"] for a in doc["approvals"]) or "nobody (it does not load)"
    typer.echo(f"# {doc['model']}: class {doc['class_name']}, code {doc['digest']}")
    typer.echo(f"# approved by: {approvals}")
    models = ", ".join(f"{n} ({f})" for n, f in doc.get("models", {}).items())
    typer.echo(
        f"# weights: arrays in {doc.get('weights_format', 'npz')}"
        + (f"; models: {models}" if models else "")
    )
    typer.echo(doc["source"])


@app.command("approve-code")
def approve_code(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF of a custom code model.")],
    comment: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Approve the code of a custom code model (approver; never its author): it loads and
    serves from then on, as does any version with exactly that code."""
    doc = open_project(ctx).models.approve_code(ref, comment=comment).to_dict()
    if json_:
        emit_json(doc)
        return
    typer.echo(f"approved code {doc['digest']} of {doc['model']} as {doc['approver']}")
