"""Governance commands: ``models evaluate/approve/reject/promote/rollback/card/describe/risk``,
``policy set/show/check`` and ``shipyard check`` for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli._common import (
    ForceOpt,
    JsonOpt,
    check_output,
    console,
    emit_json,
    open_local_project,
    open_project,
    table,
    write_output,
)
from shipyard.cli.models import app as models_app

policy_app = typer.Typer(
    help="Policies as files: the gates a model version must pass to take an alias."
)


def _render_checks(doc: dict[str, Any], title: str) -> None:
    out = console()
    verdict = "[green]PASSED[/green]" if doc["passed"] else "[red]FAILED[/red]"
    out.print(f"{title}: {verdict}")
    for c in doc["checks"]:
        mark = "[green]ok  [/green]" if c["passed"] else "[red]FAIL[/red]"
        out.print(f"  {mark} {c['name']}: {c['detail']}")


@models_app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF of the model version.")],
    data: Annotated[str, typer.Option("--data", help="DATASET@REF to evaluate on.")],
    label: Annotated[
        str | None, typer.Option(help="Label column (default: the one non-input column).")
    ] = None,
    sensitive: Annotated[
        list[str] | None, typer.Option("--sensitive", help="Column for group metrics (repeat).")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for CIs.", min=0)] = 200,
    json_: JsonOpt = False,
) -> None:
    """Metrics with confidence intervals, per-group fairness and permutation importance,
    stored and linked to the model version and the exact dataset version."""
    e = open_local_project(ctx).evaluations.evaluate(
        ref, data, label=label, sensitive=sensitive or [], bootstrap=bootstrap
    )
    if json_:
        emit_json(e.to_dict())
        return
    from shipyard._internal.words import count

    out = console()
    out.print(
        f"[bold]{e.model}[/bold] on {e.dataset} ({count(int(e.report.get('rows', 0)), 'row')}, "
        f"label {e.label})"
    )
    table(
        None,
        ["metric", "value", "95% CI"],
        [
            [
                k,
                f"{m['value']:.4f}" if m.get("value") is not None else "-",
                f"{m['ci_low']:.4f} – {m['ci_high']:.4f}" if m.get("ci_low") is not None else "",
            ]
            for k, m in e.report.get("metrics", {}).items()
        ],
    )
    for col, g in (e.report.get("groups") or {}).items():
        fair = g.get("fairness", {})
        out.print(
            f"{col}: "
            + ", ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fair.items()
            )
        )
    imp = e.report.get("importance") or []
    if imp:
        out.print(
            "top features: " + ", ".join(f"{i['feature']} ({i['mean']:.3f})" for i in imp[:5])
        )


@models_app.command("request-approval")
def request_approval(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    comment: Annotated[str, typer.Option(help="What reviewers should look at.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Ask approvers to review a version (contributor); webhooks hear `approval.requested`."""
    doc = open_local_project(ctx).approvals.request(ref, comment=comment)
    emit_json(doc) if json_ else typer.echo(
        f"{doc['requested_by']} asked for a review of {doc['model']}"
    )


@models_app.command("approve")
def approve(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Approve a version (approver; never its author)."""
    a = open_project(ctx).approvals.approve(ref, comment=comment)
    emit_json(a.to_dict()) if json_ else typer.echo(f"{a.approver} approved {a.model}")


@models_app.command("reject")
def reject(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Reject a version (approver; never its author)."""
    a = open_project(ctx).approvals.reject(ref, comment=comment)
    emit_json(a.to_dict()) if json_ else typer.echo(f"{a.approver} rejected {a.model}")


@models_app.command("promote")
def promote(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF to promote.")],
    to: Annotated[str, typer.Option("--to", help="The alias to move.")] = "production",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Run the policy check and count approvals; only then move the alias. Exit 3 with every
    unmet check when refused."""
    from shipyard.errors import CheckFailedError

    try:
        doc = open_project(ctx).promotions.promote(ref, to=to, comment=comment)
    except CheckFailedError as exc:
        if not json_:
            _render_checks(exc.details, f"promotion of {ref} to {to}")
        raise
    if json_:
        emit_json(doc)
    else:
        _render_checks(doc, f"promotion of {doc['model']} to {to}")
        typer.echo(f"{doc['model']} is now {to}")


@models_app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "production",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Move the alias back to its previous holder (approver), recorded as a rollback."""
    doc = open_project(ctx).promotions.rollback(name, alias=alias, comment=comment)
    if json_:
        emit_json(doc)
    else:
        typer.echo(f"{name}@{alias}: version {doc['from']} -> {doc['to']} (rollback)")


@models_app.command("describe")
def describe(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    section: Annotated[str, typer.Option(help="e.g. intended_use, ethical_considerations.")],
    text: Annotated[str | None, typer.Option(help="The section text.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="Read the text from this file.", exists=True, dir_okay=False, readable=True
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Write a human section of the model card."""
    if text is not None and file is None:
        body = text
    elif file is not None and text is None:
        body = file.read_text(encoding="utf-8")
    else:
        raise typer.BadParameter("give exactly one of --text and --file")
    open_local_project(ctx).cards.describe(ref, section, body)
    emit_json({"model": ref, "section": section}) if json_ else typer.echo(
        f"wrote section {section} of {ref}"
    )


@models_app.command("card")
def card(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="card.md or card.html (else stdout).")
    ] = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """The model card, filled from metadata and the human-written sections."""
    if output is not None:
        output = check_output(output, force=force, suffixes=(".md", ".markdown", ".html", ".htm"))
    fmt = (
        "html" if output is not None and output.suffix.lower() in (".html", ".htm") else "markdown"
    )
    text = open_local_project(ctx).cards.render(ref, fmt)
    if output is not None:
        write_output(output, text, force=force)
    if json_:
        emit_json(
            {
                "model": ref,
                "format": fmt,
                "output": str(output) if output else None,
                "card": text if output is None else None,
            }
        )
    elif output is not None:
        typer.echo(f"wrote the model card of {ref} to {output}")
    else:
        typer.echo(text, nl=False)


@models_app.command("risk")
def risk(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    tier: Annotated[
        str | None,
        typer.Argument(help="Risk tier, usually one of the policy's risk_tiers (e.g. low, high)."),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the model's risk tier instead.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Set the model's risk tier, which selects the policy's risk_tiers rules (admin); a near
    miss of one of the policy's tiers is refused as a typo. --clear removes it."""
    if (tier is None) == (not clear):
        raise typer.BadParameter("give exactly one of TIER and --clear")
    open_local_project(ctx).policies.set_risk_tier(name, tier)
    if json_:
        emit_json({"model": name, "risk_tier": tier})
    elif tier is None:
        typer.echo(f"{name} has no risk tier now")
    else:
        typer.echo(f"{name} is risk tier {tier}")


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, or '*' for the project default.")],
    file: Annotated[Path, typer.Argument(help="The policy YAML.")],
    json_: JsonOpt = False,
) -> None:
    """Store a new version of a policy (admin)."""
    p = open_project(ctx).policies.set(name, file)
    if json_:
        emit_json(p.to_dict())
    elif p.created:
        typer.echo(f"policy {p.name} is now version {p.version}")
    else:
        typer.echo(f"unchanged: policy {p.name} version {p.version} has identical content")


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, or '*'.")],
    json_: JsonOpt = False,
) -> None:
    """Show the policy that applies to a model (its own over the project default); for '*',
    the project default (the built-in one when none is stored)."""
    policies = open_local_project(ctx).policies
    stored = policies.get(name)
    effective = policies.effective(name)
    if json_:
        emit_json(
            {
                "name": name,
                "stored": stored.to_dict() if stored else None,
                "effective": effective.to_dict(),
            }
        )
        return
    if stored is None:
        typer.echo(f"no policy stored for {name}; the effective policy is:")
    else:
        typer.echo(f"policy {name} version {stored.version} by {stored.created_by}; effective:")
    typer.echo(effective.to_yaml(), nl=False)


@policy_app.command("check")
def policy_check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    for_alias: Annotated[str, typer.Option("--for", help="The alias it would move.")] = (
        "production"
    ),
    json_: JsonOpt = False,
) -> None:
    """Check a version against its policy; exit 3 if any check fails."""
    doc = open_local_project(ctx).promotions.check(ref, for_alias=for_alias).to_dict()
    emit_json(doc) if json_ else _render_checks(doc, f"policy check of {ref} for {for_alias}")
    if not doc["passed"]:
        raise typer.Exit(3)


def check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@REF.")],
    for_alias: Annotated[str, typer.Option("--for", help="The alias it would move.")] = (
        "production"
    ),
    json_: JsonOpt = False,
) -> None:
    """For CI: the contract checks of the training data and the policy; exit 0 or 3."""
    doc = open_project(ctx).promotions.gate(ref, for_alias=for_alias)
    emit_json(doc) if json_ else _render_checks(doc, f"shipyard check {doc['model']}")
    if not doc["passed"]:
        raise typer.Exit(3)
