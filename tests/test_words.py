"""Counts and numbers read as words: one row, 30,000 (not 3e+04), in every message and in
`data show`'s profile."""

from __future__ import annotations

import math

from shipyard._internal.words import count, number
from shipyard.data.validation_report import Failure, ValidationReport


def test_counts_agree_with_their_noun_and_numbers_never_use_exponents() -> None:
    assert [count(n, "row") for n in (0, 1, 2, 12345)] == [
        "0 rows",
        "1 row",
        "2 rows",
        "12,345 rows",
    ]
    assert count(1, "entry", "entries") == "1 entry" and count(3, "entry", "entries") == "3 entries"
    assert [number(x) for x in (30000.0, 60000, 0.123456, 123.456, 1.0, 2.5e-6, None, True)] == [
        "30,000",
        "60,000",
        "0.1235",
        "123.5",
        "1",
        "2.5e-06",
        "-",
        "yes",
    ]
    assert (number(math.nan), number(math.inf), number(-math.inf)) == ("NaN", "inf", "-inf")


def test_a_validation_summary_says_1_check_and_1_row() -> None:
    one = ValidationReport(passed=False, rows=1, failures=[Failure("age", "max", 1)])
    assert one.summary() == "1 check failed on 1 row: age max (1 row)"
    assert ValidationReport(passed=True, rows=1, failures=[]).summary() == "passed (1 row)"
