"""The standalone HTML drift report: verdict first, every column, most drifted first, names
escaped, nothing fetched, the same bytes for the same report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shipyard.monitoring.drift import DriftReport, compare
from shipyard.monitoring.drift_report import MAX_BARS, render_html, write_html
from shipyard.monitoring.reference import build_reference

NASTY = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def report() -> DriftReport:
    rng = np.random.default_rng(5)
    n = 3_000
    ref = pl.DataFrame(
        {
            "steady": rng.normal(0, 1, n),
            "income": rng.lognormal(10, 0.5, n),
            NASTY: rng.choice(["a", "b", "</svg>"], n),
            "many": rng.integers(0, 60, n).astype(str),
        }
    )
    cur = pl.DataFrame(
        {
            "steady": rng.normal(0, 1, n),
            "income": rng.lognormal(10.6, 0.5, n),
            NASTY: rng.choice(["a", "b", "</svg>"], n, p=[0.1, 0.1, 0.8]),
            "many": rng.integers(0, 60, n).astype(str),
        }
    )
    return compare(build_reference(ref, source="ref <1>"), cur, current_name="cur & co")


def test_report_shows_the_verdict_then_columns_most_drifted_first(report: DriftReport) -> None:
    """The dataset verdict comes before the table, and the charts follow the report's order."""
    page = render_html(report)
    assert page.index(">drift</span>") < page.index("<table>")
    positions = [page.index(f"<figure id='col-{c.column.encode().hex()}'") for c in report.columns]
    assert positions == sorted(positions)
    assert report.columns[0].column == "income"
    assert report.columns[-1].column in {"steady", "many"}
    for c in report.columns:
        assert page.count(f"href='#col-{c.column.encode().hex()}'") == 1


def test_report_escapes_every_name(report: DriftReport) -> None:
    """Column names, values and dataset names from the data never become markup."""
    page = render_html(report)
    assert NASTY not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "ref &lt;1&gt;" in page and "cur &amp; co" in page
    assert page.count("</svg>") == page.count("<svg ")  # the value "</svg>" was escaped
    assert "<script" not in page


def test_report_opens_offline_and_is_deterministic(report: DriftReport, tmp_path: Path) -> None:
    """Nothing is loaded from elsewhere, and the same report writes the same bytes."""
    first = write_html(report, tmp_path / "a.html").read_bytes()
    second = write_html(report, tmp_path / "b.html").read_bytes()
    assert first == second
    text = first.decode()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text)
    assert "<link" not in text and "@import" not in text


def test_report_caps_bars_of_a_wide_categorical_column(report: DriftReport) -> None:
    """A column with more values than MAX_BARS draws its largest bins and says so."""
    page = render_html(report)
    many = page[page.index(f"<figure id='col-{b'many'.hex()}'") :]
    many = many[: many.index("</figure>")]
    assert many.count("<title>") == 2 * MAX_BARS  # a reference and a current bar each
    assert "smaller bins not drawn" in many
