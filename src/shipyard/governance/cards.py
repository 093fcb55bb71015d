"""Model cards ("Model Cards for Model Reporting", Mitchell et al. 2019), filled from metadata.

Facts come from the registry: lineage and dataset digests, metrics with intervals, per-group
metrics and fairness, feature importance, approvals and alias history. People write the
sections only they can (intended use, ethical considerations, caveats) with
``shipyard models describe``; a policy can require them by risk tier.
"""

from __future__ import annotations

import builtins
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import InvalidInputError
from shipyard.refs import parse_ref
from shipyard.stores.db.tables import card_sections, model_tags

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.governance.approvals import Approvals
    from shipyard.governance.reports import Evaluations
    from shipyard.registry.models import Models
    from shipyard.registry.versions import ModelVersion

__all__ = ["SECTIONS", "Cards", "ModelCard"]

# The card's sections in order, with their titles.
SECTIONS: dict[str, str] = {
    "details": "Model details",
    "intended_use": "Intended use",
    "factors": "Factors",
    "metrics": "Metrics",
    "evaluation_data": "Evaluation data",
    "training_data": "Training data",
    "quantitative_analyses": "Quantitative analyses",
    "ethical_considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
}
NOT_WRITTEN = "_Not written yet: `shipyard models describe {ref} --section {section} --text ...`_"


@dataclass(frozen=True)
class ModelCard(ReadModel):
    """A version's model card: the sections people wrote (section → text, author, time), in
    the card's order, and the whole card as Markdown."""

    model: str
    sections: dict[str, dict[str, Any]]
    markdown: str


class Cards:
    """Service for model cards: ``describe`` a section, list written ``sections``, ``render``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        models: Models,
        evaluations: Evaluations,
        approvals: Approvals,
    ) -> None:
        self._ctx = ctx
        self._models = models
        self._evaluations = evaluations
        self._approvals = approvals

    def describe(self, ref: str, section: str, text: str) -> None:
        """Write (or rewrite) a human section of a version's card (contributor)."""
        if section not in SECTIONS:
            from shipyard._internal.suggest import did_you_mean

            raise InvalidInputError(
                f"unknown card section {section!r}{did_you_mean(section, SECTIONS)}: choose "
                f"one of {', '.join(SECTIONS)}"
            )
        if not text.strip():
            raise InvalidInputError("the section text is empty")
        from shipyard.registry.versions import resolve_version

        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "write model cards")
            row = resolve_version(tx.conn, parse_ref(ref))
            key = {"model_id": row.model_id, "version": row.version, "section": section}
            tx.conn.execute(
                card_sections.delete()
                .where(card_sections.c.model_id == row.model_id)
                .where(card_sections.c.version == row.version)
                .where(card_sections.c.section == section)
            )
            tx.conn.execute(
                card_sections.insert().values(
                    **key, text=text.strip(), author=self._ctx.actor, time=datetime.now(UTC)
                )
            )
            tx.record(
                "model.card",
                "model",
                f"{row.name}@{row.version}",
                {"section": section, "text": text.strip()},
            )

    def sections(self, ref: str) -> dict[str, dict[str, Any]]:
        """The human-written sections of a version: section → {text, author, time}."""
        from shipyard.registry.versions import resolve_version

        with self._ctx.db.read() as conn:
            row = resolve_version(conn, parse_ref(ref))
            rows = conn.execute(
                select(card_sections)
                .where(card_sections.c.model_id == row.model_id)
                .where(card_sections.c.version == row.version)
            ).all()
        return {
            r.section: {"text": r.text, "author": r.author, "time": r.time.isoformat()}
            for r in rows
        }

    def card(self, ref: str) -> ModelCard:
        """The card of a version as data: its written sections and the rendered Markdown.

        Raises:
            NotFoundError: no such model, version or alias.
        """
        mv = self._models.get(ref)
        written = self.sections(mv.ref)
        return ModelCard(
            mv.ref,
            {k: written[k] for k in SECTIONS if k in written},
            self.render(mv.ref, "markdown"),
        )

    def render(self, ref: str, fmt: str = "markdown") -> str:
        """The card as Markdown (``markdown``) or a standalone HTML page (``html``)."""
        if fmt not in ("markdown", "html"):
            raise InvalidInputError("card format must be markdown or html")
        md = self._markdown(ref)
        if fmt == "markdown":
            return md
        from shipyard.governance.card_charts import report_charts

        evals = self._evaluations.list(self._models.get(ref).ref)
        return _html_page(ref, md, report_charts(evals[0].report) if evals else [])

    def pii_inputs(self, ref: str) -> builtins.list[str]:
        """The inputs of a version that its training data's contracts mark ``pii: true``
        (all such columns when the version has no signature)."""
        from shipyard.data.pii import pii_columns
        from shipyard.errors import InvalidInputError, NotFoundError

        mv = self._models.get(ref)
        try:
            marked = pii_columns(self._models.input_contracts(mv.ref))
        except (NotFoundError, InvalidInputError):  # training data outside the registry
            return []
        inputs = ((mv.signature or {}).get("inputs") or {}).get("columns")
        return [c for c in marked if not inputs or c in inputs]

    def _pii_facts(self, mv: Any) -> builtins.list[str]:
        pii = self.pii_inputs(mv.ref)
        if not pii:
            return []
        return [
            f"- Personal-data inputs (`pii: true` in its contracts): "
            f"{', '.join(f'`{c}`' for c in pii)}; the prediction log keeps only their "
            "keyed hash"
        ]

    def _provenance(self, mv: ModelVersion) -> builtins.list[str]:
        """Card lines for where a version came from (its ``shipyard.`` provenance tags)."""
        from shipyard.registry.models import PROVENANCE_PREFIX
        from shipyard.registry.versions import resolve_version

        with self._ctx.db.read() as conn:
            row = resolve_version(conn, parse_ref(mv.ref))
            tags = {
                r.key.removeprefix(PROVENANCE_PREFIX): r.value
                for r in conn.execute(
                    select(model_tags.c.key, model_tags.c.value)
                    .where(model_tags.c.model_id == row.model_id)
                    .where(model_tags.c.version == row.version)
                    .where(model_tags.c.key.startswith(PROVENANCE_PREFIX))
                )
            }
        lines = []
        if "mlflow_source" in tags:
            made = tags.get("mlflow_mlflow_version")
            lines.append(
                f"- Imported from MLflow: `{tags['mlflow_source']}` "
                f"({tags.get('mlflow_flavor', '?')} flavor"
                + (f", saved with MLflow {made})" if made else ")")
            )
        if "trusted_pickle" in tags:
            lines.append(f"- **Trusted pickle**: {tags['trusted_pickle']}")
        return lines

    def _markdown(self, ref: str) -> str:
        mv = self._models.get(ref)
        human = self.sections(mv.ref)
        evals = self._evaluations.list(mv.ref)
        latest = evals[0] if evals else None
        decisions = self._approvals.list(mv.ref)
        history = [
            e
            for e in self._models.alias_history(mv.name)
            if e.to_version == mv.version or e.from_version == mv.version
        ]
        out: builtins.list[str] = [f"# Model card: {mv.ref}", ""]

        def section(key: str, facts: builtins.list[str]) -> None:
            out.append(f"## {SECTIONS[key]}")
            out.append("")
            if key in human:
                out.append(human[key]["text"])
                out.append("")
                out.append(f"_Written by {human[key]['author']}, {human[key]['time'][:10]}._")
                out.append("")
            elif not facts:
                out.append(NOT_WRITTEN.format(ref=mv.ref, section=key))
                out.append("")
            out.extend(facts)
            if facts:
                out.append("")

        details = [
            f"- Version {mv.version} of `{mv.name}`, flavor {mv.flavor}, status **{mv.status}**",
            f"- Artifact digest `{mv.digest}`",
            f"- Registered by {mv.created_by} on {mv.created_at:%Y-%m-%d %H:%M} UTC",
            f"- Aliases: {', '.join(mv.aliases) or 'none'}",
        ]
        if mv.run_id:
            details.append(f"- Trained in run `{mv.run_id}`")
        details.extend(self._provenance(mv))
        if mv.description:
            details.append(f"- {mv.description}")
        section("details", details)
        section("intended_use", [])
        sensitive = sorted((latest.report.get("groups") or {}) if latest else [])
        section("factors", [f"- Groups evaluated: {', '.join(sensitive)}"] if sensitive else [])
        metric_lines = []
        if latest:
            metric_lines.append("| metric | value | 95% CI |")
            metric_lines.append("|---|---|---|")
            for name, m in latest.report.get("metrics", {}).items():
                metric_lines.append(
                    f"| {name} | {_num(m.get('value'))} | "
                    f"{_num(m.get('ci_low'))} – {_num(m.get('ci_high'))} |"
                )
        notes = [str(n) for n in latest.report.get("notes", [])] if latest else []
        group_columns = (latest.report.get("groups") or {}) if latest else {}
        general = [n for n in notes if n.split(":", 1)[0] not in group_columns]
        if general:
            metric_lines.append("")
            metric_lines.extend(f"- Note: {n}" for n in general)
        section("metrics", metric_lines)
        section(
            "evaluation_data",
            [
                f"- `{e.dataset}` (digest `{e.dataset_digest}`), label `{e.label}`, "
                f"{_rows(e.report.get('rows'))}, by {e.created_by}"
                for e in evals[:3]
            ],
        )
        section(
            "training_data",
            [
                f"- {i['context']}: `{i['ref']}` (digest `{i.get('digest', '')}`)"
                + _tombstone(i.get("deleted"))
                for i in mv.lineage
                if i["kind"] == "dataset"
            ]
            + self._pii_facts(mv),
        )
        quant: builtins.list[str] = []
        if latest:
            for col, g in group_columns.items():
                fair = g.get("fairness", {})
                quant.append(f"**{col}**:")
                quant.append("")
                quant.extend(f"- {k}: {_num(v)}" for k, v in fair.items())
                quant.append("")
                col_notes = [n[len(col) + 2 :] for n in notes if n.startswith(f"{col}: ")]
                rows = g.get("metrics", {})
                if rows:
                    keys = sorted({k for r in rows.values() for k in r})
                    quant.append("| group | " + " | ".join(keys) + " |")
                    quant.append("|---|" + "---|" * len(keys))
                    for group, r in rows.items():
                        small = any(n.startswith(f"group {group!r} has ") for n in col_notes)
                        label = f"{group} (too few rows: see the note)" if small else group
                        quant.append(
                            f"| {label} | " + " | ".join(_num(r.get(k)) for k in keys) + " |"
                        )
                    quant.append("")
                if col_notes:
                    quant.extend(f"- Note: {n}" for n in col_notes)
                    quant.append("")
            imp = latest.report.get("importance") or []
            if imp:
                quant.append("Permutation importance (drop in score when shuffled):")
                quant.append("")
                quant.extend(
                    f"- {i['feature']}: {_num(i['mean'])} ± {_num(i['std'])}" for i in imp[:10]
                )
        section("quantitative_analyses", quant)
        section("ethical_considerations", [])
        section("caveats", [])
        out.append("## Governance")
        out.append("")
        for d in decisions:
            if d.confirmed:
                out.append(
                    f"- {d.decision} by {d.approver} on {d.time:%Y-%m-%d %H:%M} UTC"
                    + (f": {d.comment}" if d.comment else "")
                )
        forged = [d for d in decisions if not d.confirmed]
        if forged:
            out.append(
                f"- **{len(forged)} recorded decision{'s' if len(forged) != 1 else ''} "
                "left out: not confirmed by the audit log** (edited or added outside shipyard; "
                "run `shipyard audit verify`)"
            )
        for e in history:
            if e.from_version is None:
                move = f"set to version {e.to_version}"
            elif e.to_version is None:
                move = f"removed from version {e.from_version}"
            else:
                move = f"moved from version {e.from_version} to {e.to_version}"
            why = f" ({e.reason})" if e.reason else ""
            out.append(
                f"- alias `{e.alias}` {move}{why} by {e.actor} on {e.time:%Y-%m-%d %H:%M} UTC"
            )
        if not decisions and not history:
            out.append("- No approvals or alias moves yet.")
        out.append("")
        return "\n".join(out)


def _tombstone(deleted: dict[str, Any] | None) -> str:
    if not deleted:
        return ""
    state = "deleted and purged" if deleted.get("purged_at") else "deleted"
    why = f": {deleted['reason']}" if deleted.get("reason") else ""
    return f" — {state} by {deleted['by']} on {deleted['at']:%Y-%m-%d}{why}"


def _rows(n: Any) -> str:
    """``8,990 rows``, ``1 row``, or ``? rows`` when the count is unknown."""
    from shipyard._internal.words import count

    return count(n, "row") if isinstance(n, int) else "? rows"


def _num(x: Any) -> str:
    """A value as people read it: "–" for none, yes/no for a truth value, thousands
    separators, 4 significant digits for a float and no exponent for a small one."""
    from shipyard._internal.words import number

    return number(x, missing="–")


def _html_page(ref: str, markdown: str, charts: Sequence[str] = ()) -> str:
    """A dependency-free HTML rendering of the card's Markdown subset, with the latest
    evaluation's ``charts`` (inline SVG) at the end of its quantitative analyses."""
    body: builtins.list[str] = []
    in_table = False
    in_list = False
    for line in markdown.splitlines():
        if charts and line == f"## {SECTIONS['ethical_considerations']}":
            if in_table:
                body.append("</table>")
                in_table = False
            if in_list:
                body.append("</ul>")
                in_list = False
            body.append("<div class='charts'>")
            body.extend(f"<figure>{svg}</figure>" for svg in charts)
            body.append("</div>")
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if in_list and not line.startswith("- "):
            body.append("</ul>")
            in_list = False
        if line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    if in_table:
        body.append("</table>")
    if in_list:
        body.append("</ul>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Model card: {html.escape(ref)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
        ".charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}"
        "</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _inline(text: str) -> str:
    """Markdown's inline code, bold and emphasis; code spans are left as written."""
    import re

    if len(text) > 2 and text.startswith("_") and text.endswith("_"):
        return f"<em>{_inline(text[1:-1])}</em>"

    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        escaped = html.escape(part)
        if i % 2 == 1 and i < len(parts) - 1:
            out.append(f"<code>{escaped}</code>")
            continue
        escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
        # Emphasis only between word boundaries, so snake_case names stay whole.
        escaped = re.sub(r"(?<![\w])_([^_]+?)_(?![\w])", r"<em>\1</em>", escaped)
        out.append(escaped if i % 2 == 0 else "`" + escaped)
    return "".join(out)
