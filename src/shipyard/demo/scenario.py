"""``shipyard demo``: the end-to-end story on synthetic credit-risk data.

It grows with every capability: for now it creates a project, registers two versions of the
applicants table and shows what changed between them.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from rich.console import Console

from shipyard.errors import ConflictError

__all__ = ["run_demo"]


def run_demo(directory: Path | None = None, *, rows: int = 50_000) -> Path:
    """Run the demo in ``directory`` (default: a new temporary folder); returns the project
    folder."""
    from shipyard.data.profiles import diff_profiles
    from shipyard.demo.data import credit_applicants
    from shipyard.project import init_project

    out = Console(highlight=False)
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    if (root / "shipyard.toml").exists():
        raise ConflictError(f"{root} already holds a project; give --dir a new folder")
    out.rule("[bold]shipyard demo")
    project = init_project(root, name="credit-demo")
    out.print(f"project: {project.root}  (you are [bold]{project.actor}[/bold], admin)")

    raw = root / "raw"
    raw.mkdir(exist_ok=True)
    out.rule("1. register the first batch of loan applicants")
    batch1 = credit_applicants(rows, seed=7)
    csv1 = raw / "applicants_2026q1.csv"
    batch1.write_csv(csv1)
    v1 = project.datasets.add(
        "credit", csv1, message="Q1 applicants", tags={"source": "loan-origination"}
    )
    out.print(f"$ shipyard data add credit {csv1.name} -m 'Q1 applicants'")
    out.print(f"  -> {v1.ref}: {v1.rows:,} rows x {len(v1.columns)} columns, {v1.digest}")
    again = project.datasets.add("credit", csv1)
    out.print(f"  adding the same file again returns {again.ref} (created={again.created})")

    out.rule("2. a second batch arrives: more applicants, a shifted population")
    batch2 = credit_applicants(
        rows // 5, seed=8, start_id=rows + 1, start_date=date(2026, 4, 1), drift=1.0
    )
    combined = batch1.vstack(batch2)
    csv2 = raw / "applicants_2026h1.csv"
    combined.write_csv(csv2)
    v2 = project.datasets.add(
        "credit",
        csv2,
        message="Q1 + April applicants",
        parents=[v1.ref],
        tags={"source": "loan-origination"},
    )
    out.print(f"$ shipyard data add credit {csv2.name} --parent {v1.ref}")
    out.print(f"  -> {v2.ref}: {v2.rows:,} rows, {v2.digest}")

    out.rule(f"3. what changed: shipyard data diff {v1.ref} {v2.ref}")
    d = diff_profiles(v1.schema, v2.schema, v1.profile, v2.profile)
    out.print(f"rows: {d['rows']['from']:,} -> {d['rows']['to']:,} ({d['rows']['change']:+,})")
    shown = [
        c
        for c in d["columns"]
        if c["stat"] in ("mean", "top")
        and c["column"] in ("income", "purpose", "loan_amount", "default", "debt_to_income")
    ]
    for c in shown:
        if c["stat"] == "mean":
            out.print(
                f"  {c['column']:<16} mean {c['from']:.4g} -> {c['to']:.4g} "
                f"({c.get('relative', 0):+.1%})"
            )
        else:
            out.print(f"  {c['column']:<16} top values {c['from']} -> {c['to']}")

    out.rule("4. integrity")
    store = project.verify()
    chain = project.audit.verify()
    out.print(f"artifact store: {store.checked} blobs verified, ok={store.ok}")
    out.print(f"audit log: {chain.events} events, chain ok={chain.ok}")
    out.rule()
    out.print("Explore it yourself:")
    for cmd in (
        "data list",
        f"data show {v2.ref}",
        f"data diff {v1.ref} {v2.ref}",
        f"data lineage {v2.ref}",
        "audit log",
    ):
        out.print(f"  shipyard --project {project.root} {cmd}")
    project.close()
    return root
