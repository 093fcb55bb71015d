"""The run search grammar: parsing, canonical rendering, error positions, and the exact runs a
filter and an ordering select on a real SQLite and PostgreSQL database."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.errors import InvalidInputError
from shipyard.stores.db.engine import Database
from shipyard.stores.db.tables import (
    experiments,
    run_latest_metrics,
    run_params,
    run_tags,
    runs,
)
from shipyard.tracking.search import (
    NULL_OPS,
    NUMBER_OPS,
    STRING_OPS,
    And,
    Comparison,
    Expr,
    Filter,
    FilterSyntaxError,
    Or,
    OrderTerm,
    parse_filter,
    parse_order_by,
)
from shipyard.tracking.search_sql import compile_filter, search_runs_stmt

# -- a small real database ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    """A run as a test writes it: attributes plus its latest metrics, params and tags."""

    id: str
    experiment: str = "churn"
    name: str = "run"
    status: str = "FINISHED"
    lifecycle: str = "active"
    start_time: int = 0
    end_time: int | None = None
    created_by: str = "alice"
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


EXPERIMENTS = {"churn": 1, "fraud": 2}


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    """A migrated metadata database on ``backend`` holding the experiments churn and fraud."""
    database = Database(backend)
    now = datetime.now(UTC)
    with database.write() as conn:
        conn.execute(
            experiments.insert(),
            [
                {"id": i, "name": name, "created_at": now, "created_by": "alice"}
                for name, i in EXPERIMENTS.items()
            ],
        )
    try:
        yield database
    finally:
        database.dispose()


def store(db: Database, rows: Sequence[RunRow]) -> None:
    """Replace every run in ``db`` with ``rows``."""
    with db.write() as conn:
        for table in (run_latest_metrics, run_params, run_tags, runs):
            conn.execute(delete(table))
        if not rows:
            return
        conn.execute(
            runs.insert(),
            [
                {
                    "id": r.id,
                    "experiment_id": EXPERIMENTS[r.experiment],
                    "name": r.name,
                    "status": r.status,
                    "lifecycle": r.lifecycle,
                    "start_time": r.start_time,
                    "end_time": r.end_time,
                    "created_by": r.created_by,
                    "code": {},
                    "environment": {},
                }
                for r in rows
            ],
        )
        metric_rows = [
            {
                "run_id": r.id,
                "key": k,
                "step": 0,
                "timestamp": 0,
                "value": v,
                "min_value": v,
                "max_value": v,
            }
            for r in rows
            for k, v in r.metrics.items()
        ]
        for table, column in ((run_params, "params"), (run_tags, "tags")):
            kv = [
                {"run_id": r.id, "key": k, "value": v}
                for r in rows
                for k, v in getattr(r, column).items()
            ]
            if kv:
                conn.execute(table.insert(), kv)
        if metric_rows:
            conn.execute(run_latest_metrics.insert(), metric_rows)


def search(
    db: Database,
    filter_text: str | None,
    order_by: str | Sequence[str] | None = None,
    **options: Any,
) -> list[str]:
    """The run ids ``search_runs_stmt`` selects, in order."""
    with db.read() as conn:
        return list(conn.execute(search_runs_stmt(filter_text, order_by, **options)).scalars())


RUNS = [
    RunRow(
        "r1", "churn", "baseline", "FINISHED", start_time=1000, end_time=2000,
        metrics={"auc": 0.9, "loss": 0.3}, params={"model": "gbm", "lr": "0.1"},
        tags={"team": "risk", "note": "it's fine"},
    ),
    RunRow(
        "r2", "churn", "gbm-deep", "FINISHED", start_time=2000, end_time=3000,
        created_by="bob", metrics={"auc": 0.75, "loss": 0.5},
        params={"model": "GBM", "lr": "0.01"}, tags={"team": "growth"},
    ),
    RunRow(
        "r3", "churn", "rf", "FAILED", start_time=3000, end_time=3500,
        metrics={"loss": 0.0}, params={"model": "rf"}, tags={"team": "risk"},
    ),
    RunRow(
        "r4", "fraud", "lr 50%", "RUNNING", start_time=4000, created_by="carol",
        metrics={"auc": 0.9, "val loss": -1.5, "val.loss": 2.0},
        params={"model": "logreg", "a.b": "x"},
    ),
    RunRow(
        "r5", "fraud", "gone", "FINISHED", lifecycle="deleted", start_time=5000,
        end_time=6000, metrics={"auc": 0.99}, params={"model": "gbm"}, tags={"team": "risk"},
    ),
    RunRow(
        "r6", "fraud", "Baseline_2", "KILLED", start_time=4000, end_time=4500,
        created_by="bob", metrics={"auc": 0.9, "loss": -2e-3}, params={"model": "gbm's"},
        tags={"team": "Risk"},
    ),
]  # fmt: skip


@pytest.fixture
def seeded(db: Database) -> Database:
    """The database holding RUNS: r1-r4 and r6 active, r5 deleted."""
    store(db, RUNS)
    return db


def assert_selects(db: Database, cases: Mapping[str, set[str]], **options: Any) -> None:
    """Assert that each filter selects exactly its set of run ids."""
    for filter_text, expected in cases.items():
        assert set(search(db, filter_text, **options)) == expected, filter_text


# -- filters on a real database -----------------------------------------------------------------


def test_metric_comparators_select_exact_runs(seeded: Database) -> None:
    """Each numeric comparator on a metric selects exactly the runs whose latest value passes."""
    assert_selects(
        seeded,
        {
            "metrics.auc > 0.8": {"r1", "r4", "r6"},
            "metrics.auc >= 0.9": {"r1", "r4", "r6"},
            "metrics.auc = 0.75": {"r2"},
            "metrics.auc != 0.9": {"r2"},
            "metrics.auc < 0.9": {"r2"},
            "metrics.auc <= 0.75": {"r2"},
            "metrics.loss < -1E-3": {"r6"},
            "metrics.loss >= -2e-3": {"r1", "r2", "r3", "r6"},
            "metric.auc > .8": {"r1", "r4", "r6"},
            "metrics.`val loss` < 0": {"r4"},
            'metrics."val.loss" = 2': {"r4"},
        },
    )


def test_a_run_without_the_metric_matches_no_comparison_on_it(seeded: Database) -> None:
    """r4 has no loss metric: neither ``loss > 0`` nor ``loss <= 0`` selects it."""
    assert set(search(seeded, "metrics.loss > 0")) == {"r1", "r2"}
    assert set(search(seeded, "metrics.loss <= 0")) == {"r3", "r6"}
    assert set(search(seeded, "metrics.loss IS NULL")) == {"r4"}


def test_string_comparators_on_params_and_tags(seeded: Database) -> None:
    """=, != and quoted strings (with doubled quotes) compare params and tags exactly."""
    assert_selects(
        seeded,
        {
            "params.model = 'gbm'": {"r1"},
            "params.model != 'gbm'": {"r2", "r3", "r4", "r6"},
            "params.model = 'gbm''s'": {"r6"},
            'params.model = "gbm\'s"': {"r6"},
            "tags.note = 'it''s fine'": {"r1"},
            "params.lr = '0.1'": {"r1"},
            "params.`a.b` = 'x'": {"r4"},
            "param.model = 'rf' or tag.team = 'growth'": {"r2", "r3"},
            "params.model = 'none'": set(),
        },
    )


def test_like_is_case_sensitive_and_ilike_is_not(seeded: Database) -> None:
    """LIKE matches case-sensitively on both backends, ILIKE ignores case; ``\\`` escapes."""
    assert_selects(
        seeded,
        {
            "params.model LIKE 'gbm%'": {"r1", "r6"},
            "params.model ILIKE 'gbm%'": {"r1", "r2", "r6"},
            "params.model LIKE '_bm'": {"r1"},
            "params.model ILIKE '_BM'": {"r1", "r2"},
            "attributes.run_name LIKE 'baseline%'": {"r1"},
            "attributes.run_name ILIKE 'baseline%'": {"r1", "r6"},
            "attributes.run_name LIKE 'Baseline\\_%'": {"r6"},
            "attributes.run_name LIKE '%\\%'": {"r4"},
            "attributes.run_name LIKE '%*%'": set(),
            "attributes.experiment LIKE 'ch%'": {"r1", "r2", "r3"},
        },
    )


def test_an_exclamation_mark_in_a_pattern_matches_itself(db: Database) -> None:
    """``!`` (the escape character of the SQL the patterns become) is an ordinary character in
    LIKE and ILIKE patterns, on both backends."""
    store(
        db,
        [
            RunRow("r1", name="a!b"),
            RunRow("r2", name="a%"),
            RunRow("r3", name="A!"),
            RunRow("r4", name="a!!"),
        ],
    )
    assert_selects(
        db,
        {
            "attributes.run_name ILIKE 'a!%'": {"r1", "r3", "r4"},
            "attributes.run_name LIKE 'a!%'": {"r1", "r4"},
            "attributes.run_name ILIKE 'a!_'": {"r1", "r4"},
            "attributes.run_name LIKE '%!'": {"r3", "r4"},
            "attributes.run_name ILIKE '%!!'": {"r4"},
            "attributes.run_name LIKE 'a\\!b'": {"r1"},
        },
    )


def test_in_lists_and_null_checks(seeded: Database) -> None:
    """IN and NOT IN need the key to exist; IS NULL selects runs without the key."""
    assert_selects(
        seeded,
        {
            "params.model IN ('gbm', 'rf')": {"r1", "r3"},
            "params.model NOT IN ('gbm', 'rf')": {"r2", "r4", "r6"},
            "tags.team NOT IN ('risk')": {"r2", "r6"},
            "tags.team IS NULL": {"r4"},
            "tags.team IS NOT NULL": {"r1", "r2", "r3", "r6"},
            "params.lr is null": {"r3", "r4", "r6"},
            "attributes.status IN ('FAILED', 'KILLED')": {"r3", "r6"},
            "attributes.run_id IN ('r1', 'r4', 'r5')": {"r1", "r4"},
        },
    )


def test_attributes(seeded: Database) -> None:
    """Status, name, id, user, experiment and times filter on the run's own columns."""
    assert_selects(
        seeded,
        {
            "attributes.status = 'FINISHED'": {"r1", "r2"},
            "attributes.status != 'RUNNING'": {"r1", "r2", "r3", "r6"},
            "attributes.run_name = 'rf'": {"r3"},
            "attr.name = 'rf'": {"r3"},
            "run.name = 'lr 50%'": {"r4"},
            "attributes.id = 'r3'": {"r3"},
            "attributes.user = 'bob'": {"r2", "r6"},
            "attributes.created_by != 'bob'": {"r1", "r3", "r4"},
            "attributes.experiment = 'fraud'": {"r4", "r6"},
            "attributes.experiment IN ('churn')": {"r1", "r2", "r3"},
            "attributes.start_time >= 3000": {"r3", "r4", "r6"},
            "attributes.start_time < 2000": {"r1"},
            "attributes.end_time > 3000": {"r3", "r6"},
            "attributes.start_time = 4e3": {"r4", "r6"},
        },
    )


def test_or_and_parentheses_follow_precedence(seeded: Database) -> None:
    """``and`` binds tighter than ``or``; parentheses override it; keywords ignore case."""
    assert_selects(
        seeded,
        {
            "metrics.auc > 0.8 or params.model = 'rf'": {"r1", "r3", "r4", "r6"},
            "params.model = 'rf' or metrics.auc > 0.8 and tags.team = 'Risk'": {"r3", "r6"},
            "(params.model = 'rf' or metrics.auc > 0.8) and tags.team = 'Risk'": {"r6"},
            "metrics.auc > 0.8 AND tags.team = 'risk' Or attributes.status = 'FAILED'": {
                "r1",
                "r3",
            },
            "((metrics.auc > 0.8))": {"r1", "r4", "r6"},
        },
    )


def test_deleted_runs_and_experiment_scope(seeded: Database) -> None:
    """Deleted runs are left out unless asked for; experiment_ids limits the search."""
    assert search(seeded, "metrics.auc > 0.95") == []
    assert search(seeded, "metrics.auc > 0.95", include_deleted=True) == ["r5"]
    assert set(search(seeded, None, experiment_ids=[2])) == {"r4", "r6"}
    assert set(search(seeded, "", experiment_ids=[2], include_deleted=True)) == {"r4", "r5", "r6"}
    assert search(seeded, None, experiment_ids=[]) == []


def test_order_by_metric_puts_missing_last_both_ways(seeded: Database) -> None:
    """Ordering by a metric sorts runs without it last, ascending or descending."""
    assert search(seeded, None, "metrics.auc DESC") == ["r4", "r6", "r1", "r2", "r3"]
    assert search(seeded, None, ["metrics.auc ASC"]) == ["r2", "r4", "r6", "r1", "r3"]
    assert search(seeded, None, "metrics.auc") == ["r2", "r4", "r6", "r1", "r3"]


def test_ties_break_by_start_time_then_id(seeded: Database) -> None:
    """Equal sort keys fall back to newest start first, then run id, so order is stable."""
    assert search(seeded, None) == ["r4", "r6", "r3", "r2", "r1"]
    assert search(seeded, "metrics.auc = 0.9", "metrics.auc DESC") == ["r4", "r6", "r1"]
    assert search(seeded, None, "metrics.auc DESC", limit=2) == ["r4", "r6"]


def test_order_by_params_tags_and_attributes(seeded: Database) -> None:
    """Strings sort by code point; nullable attributes and missing keys sort last."""
    assert search(seeded, None, "params.lr") == ["r2", "r1", "r4", "r6", "r3"]
    assert search(seeded, None, "tags.team DESC") == ["r3", "r1", "r2", "r6", "r4"]
    assert search(seeded, None, ["attributes.end_time DESC"]) == ["r6", "r3", "r2", "r1", "r4"]
    assert search(seeded, None, "attributes.experiment, metrics.loss DESC") == [
        "r2",
        "r1",
        "r3",
        "r6",
        "r4",
    ]


def test_hostile_text_is_a_value_not_sql(seeded: Database) -> None:
    """SQL in a quoted value is only compared as text; the runs table is untouched."""
    hostile = "params.x = 'a''; DROP TABLE runs; --'"
    assert search(seeded, hostile) == []
    stmt = search_runs_stmt(hostile, None)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        compiled = stmt.compile(dialect=dialect)
        assert "DROP" not in str(compiled)
        assert "a'; DROP TABLE runs; --" in compiled.params.values()
    with pytest.raises(FilterSyntaxError):
        search(seeded, "params.x = 'a'; DROP TABLE runs; --'")
    with seeded.read() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == len(RUNS)


# -- parsing ------------------------------------------------------------------------------------


def test_parse_builds_the_ast_with_canonical_names() -> None:
    """Aliases and case variants parse to canonical nodes, and ``str`` renders them back."""
    f = parse_filter("metric.auc>0.8 AND run.NAME like 'a%' Or tags.`my tag` is not null")
    assert f == Filter(
        Or(
            (
                And(
                    (
                        Comparison("metric", "auc", ">", 0.8),
                        Comparison("attribute", "run_name", "LIKE", "a%"),
                    )
                ),
                Comparison("tag", "my tag", "IS NOT NULL"),
            )
        )
    )
    assert str(f) == (
        "metrics.auc > 0.8 and attributes.run_name LIKE 'a%' or tags.`my tag` IS NOT NULL"
    )


def test_empty_filter_passes_every_run() -> None:
    """An empty or blank filter parses to ``Filter()``, which renders as ''."""
    assert parse_filter("") == parse_filter("  \n") == Filter()
    assert str(Filter()) == ""


def test_order_by_forms_agree() -> None:
    """A list and a comma-separated string give the same terms; ASC is the default."""
    expected = [
        OrderTerm("metric", "auc", descending=True),
        OrderTerm("param", "lr"),
        OrderTerm("attribute", "start_time"),
    ]
    assert parse_order_by("metrics.auc DESC, params.lr, attributes.start_time asc") == expected
    assert parse_order_by(["metrics.auc desc", "params.lr", "attributes.start_time"]) == expected
    assert parse_order_by(None) == parse_order_by("") == parse_order_by([]) == []
    assert [str(t) for t in expected] == [
        "metrics.auc DESC",
        "params.lr ASC",
        "attributes.start_time ASC",
    ]


def test_ast_nodes_refuse_invalid_combinations() -> None:
    """Building a comparison the grammar would refuse raises InvalidInputError."""
    with pytest.raises(InvalidInputError, match="params are strings"):
        Comparison("param", "lr", "<", "0.1")
    with pytest.raises(InvalidInputError, match="compared with a number"):
        Comparison("metric", "auc", ">", "high")
    with pytest.raises(InvalidInputError, match="unknown attribute"):
        Comparison("attribute", "name", "=", "x")
    with pytest.raises(InvalidInputError, match="at least two"):
        And((Comparison("metric", "auc", ">", 1),))
    with pytest.raises(InvalidInputError, match="unknown attribute"):
        OrderTerm("attribute", "colour")


ERROR_POSITIONS = [
    ("metrics.auc 0.8", 12, "expected a comparator after 'metrics.auc'"),
    ("params.model < 'gbm'", 13, "< does not apply to params.model"),
    ("params.x = 'abc", 11, "unterminated string"),
    ("metrics.auc > 0.8 extra", 18, "expected 'and', 'or' or the end"),
    ("foo.bar = 1", 0, "unknown entity 'foo'"),
    ("attributes.colour = 'red'", 11, "unknown attribute 'colour'"),
    ("metrics. > 1", 8, "empty key"),
    ("metrics.`` > 1", 8, "empty key"),
    ("params.x = 'a'; DROP TABLE runs; --'", 14, "unexpected character ';'"),
    ("(metrics.a > 1", 14, "expected ')' to close the '(' at position 0"),
    ("metrics.a > 1)", 13, "unmatched ')'"),
    ("params.lr = 0.1", 12, "write params.lr = '0.1'"),
    ("metrics.auc > 'high'", 14, "metrics.auc is compared with a number"),
    ("metrics.auc IN ('a')", 12, "IN does not apply to metrics.auc"),
    ("tags.t IN ()", 11, "IN needs at least one value"),
    ("status = 'FINISHED'", 0, "did you mean attributes.status?"),
    ("metrics.a > 1 and", 17, "got the end of the text"),
    ("attributes.status IS NULL", 18, "IS NULL does not apply"),
    ("params.p LIKE 'a\\'", 14, "lone escape"),
    ("metrics.a > 1e999", 12, "out of range"),
    ("(" * 40 + "metrics.a > 1", 32, "nested more than 32 deep"),
]


@pytest.mark.parametrize(("text", "position", "reason"), ERROR_POSITIONS)
def test_errors_point_at_the_problem(text: str, position: int, reason: str) -> None:
    """A malformed filter raises FilterSyntaxError at the offending character."""
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    err = info.value
    assert (err.position, err.text) == (position, text)
    assert reason in err.reason
    assert isinstance(err, InvalidInputError) and isinstance(err, ValueError)
    # The message ends with the text and a caret under the position.
    *_, shown, caret = str(err).splitlines()
    assert shown == "    " + text
    assert caret == " " * (4 + position) + "^"
    assert str(err).startswith(f"{err.reason} at position {position}:")


def test_order_by_errors_point_at_the_problem() -> None:
    """A bad order-by term raises FilterSyntaxError at the bad word, per list element."""
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by("metrics.auc DSC")
    assert info.value.position == 12
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(["metrics.auc DESC, params.lr"])
    assert info.value.position == 16
    with pytest.raises(FilterSyntaxError, match="unknown attribute"):
        parse_order_by("attributes.colour")


def test_long_filters_show_a_window_around_the_error() -> None:
    """For a long filter the message shows the part around the position, caret aligned."""
    text = " and ".join(f"metrics.m{i} > {i}" for i in range(20)) + " ?"
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    *_, shown, caret = str(info.value).splitlines()
    assert shown[caret.index("^")] == "?"
    assert len(shown) < 100


def test_limits_stop_oversized_filters() -> None:
    """Too many comparisons, values or characters are refused before reaching the database."""
    many = " or ".join(f"metrics.m > {i}" for i in range(101))
    with pytest.raises(FilterSyntaxError, match="at most 100 comparisons"):
        parse_filter(many)
    values = ", ".join(f"'{i}'" for i in range(1001))
    with pytest.raises(FilterSyntaxError, match="at most 1000 values"):
        parse_filter(f"params.p IN ({values})")
    with pytest.raises(FilterSyntaxError, match="longer than 10,000 characters") as info:
        parse_filter("params.p LIKE '" + "%" * 10_001 + "'")
    assert info.value.position == 14


# -- properties ---------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
keys = texts.filter(bool)
numbers = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
patterns = texts.filter(lambda s: (len(s) - len(s.rstrip("\\"))) % 2 == 0)
STRING_ATTRIBUTES = ("status", "run_name", "run_id", "created_by", "experiment")


@st.composite
def comparisons(
    draw: st.DrawFn,
    keys: st.SearchStrategy[str] = keys,
    strings: st.SearchStrategy[str] = texts,
    patterns: st.SearchStrategy[str] = patterns,
    numbers: st.SearchStrategy[int | float] = numbers,
    times: st.SearchStrategy[int | float] = numbers,
) -> Comparison:
    """A valid comparison of any entity, drawing keys and values from the given pools."""
    entity = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    if entity == "attribute":
        key = draw(st.sampled_from([*STRING_ATTRIBUTES, "start_time", "end_time"]))
    else:
        key = draw(keys)
    if entity == "metric" or key in ("start_time", "end_time"):
        ops = NUMBER_OPS if entity == "attribute" else NUMBER_OPS + NULL_OPS
        op = draw(st.sampled_from(ops))
        value: Any = None if op in NULL_OPS else draw(numbers if entity == "metric" else times)
    else:
        ops = STRING_OPS if entity == "attribute" else STRING_OPS + NULL_OPS
        op = draw(st.sampled_from(ops))
        if op in ("IN", "NOT IN"):
            value = tuple(draw(st.lists(strings, min_size=1, max_size=3)))
        elif op in ("LIKE", "ILIKE"):
            value = draw(patterns)
        else:
            value = None if op in NULL_OPS else draw(strings)
    return Comparison(entity, key, op, value)  # type: ignore[arg-type]


def expressions(leaves: st.SearchStrategy[Comparison], max_leaves: int) -> st.SearchStrategy[Expr]:
    def combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        groups = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.builds(And, groups) | st.builds(Or, groups)

    return st.recursive(leaves, combine, max_leaves=max_leaves)  # type: ignore[arg-type]


filters = st.builds(Filter, st.none() | expressions(comparisons(), max_leaves=8))


@given(filters)
@example(Filter(And((Comparison("tag", "a`b", "=", "'"), Comparison("metric", "x", "<", -0.0)))))
@example(Filter(Or((Comparison("param", "k", "LIKE", "\\\\"), Comparison("metric", "x", "=", 1)))))
def test_rendered_filters_parse_back_to_the_same_ast(f: Filter) -> None:
    """Any valid filter renders with ``str`` to text that parses back to an equal filter."""
    text = str(f)
    assert parse_filter(text) == f
    assert str(parse_filter(text)) == text


# Fuzz input: any text, plus text assembled from the grammar's own pieces to get deeper.
FRAGMENTS = [
    "metrics.", "params.", "tags.", "attributes.", "run.", "auc", "status", "start_time",
    "experiment", " ", "=", "!=", "<", "<=", ">", ">=", "<>", "!", " and ", " or ", " AND ",
    "(", ")", "'", "''", '"', "`", "x", "0.5", "-", "1e5", "1e999", " IN ", " NOT ", " IS ",
    " NULL", " LIKE ", " ILIKE ", ",", ";", "\\", "%", "_", ".", "\n", "\0", "\ud800", "é",
    " DESC", " asc",
]  # fmt: skip
fuzz_text = st.text(max_size=60) | st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)


@given(fuzz_text)
@example("params.x = 'a'; DROP TABLE runs; --'")
@example("metrics.auc > 1" + "0" * 5000)
@example("params.`a\0b` = 'x'")
@example("params.a = '\ud800'")
@example("(" * 10_000)
def test_any_text_parses_or_raises_filter_syntax_error(text: str) -> None:
    """For any text, parsing returns a filter that round-trips, or raises FilterSyntaxError."""
    try:
        f = parse_filter(text)
    except FilterSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert "^" in str(err)
    else:
        assert parse_filter(str(f)) == f
        compile_filter(f)
    try:
        terms = parse_order_by(text)
    except FilterSyntaxError as err:
        assert 0 <= err.position <= len(text)
    else:
        assert parse_order_by(", ".join(str(t) for t in terms)) == terms


# -- the SQL agrees with a reference evaluator --------------------------------------------------

SMALL_KEYS = ["a", "b c"]
SMALL_NUMBERS = [-1.5, 0.0, 0.5, 1.0, 2.0]
SMALL_STRINGS = ["x", "X", "xy", "x_y", "50%", "it's", ""]
SMALL_PATTERNS = ["x%", "X%", "%y", "_", "x\\_y", "%\\%", "X_", "%", "it's", "%'%", "x"]
RUN_IDS = [f"r{i}" for i in range(6)]


def small_maps(values: Sequence[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Maps over SMALL_KEYS where each key is present about half the time."""
    return st.fixed_dictionaries({}, optional={k: st.sampled_from(values) for k in SMALL_KEYS})


small_runs = st.lists(
    st.builds(
        RunRow,
        id=st.just(""),
        experiment=st.sampled_from(sorted(EXPERIMENTS)),
        name=st.sampled_from(SMALL_STRINGS),
        status=st.sampled_from(["FINISHED", "FAILED", "RUNNING"]),
        lifecycle=st.sampled_from(["active"] * 4 + ["deleted"]),
        start_time=st.integers(0, 3),
        end_time=st.none() | st.integers(0, 3),
        created_by=st.sampled_from(["alice", "bob"]),
        metrics=small_maps(SMALL_NUMBERS),
        params=small_maps(SMALL_STRINGS),
        tags=small_maps(SMALL_STRINGS),
    ),
    min_size=2,
    max_size=7,
).map(lambda rows: [replace(r, id=f"r{i}") for i, r in enumerate(rows)])

small_comparisons = comparisons(
    keys=st.sampled_from(SMALL_KEYS),
    strings=st.sampled_from(SMALL_STRINGS + RUN_IDS + sorted(EXPERIMENTS) + ["FAILED", "bob"]),
    patterns=st.sampled_from(SMALL_PATTERNS),
    numbers=st.sampled_from(SMALL_NUMBERS) | st.integers(-1, 2),
    times=st.integers(0, 3) | st.just(1.5),
)
small_filters = st.builds(Filter, st.none() | expressions(small_comparisons, max_leaves=4))
small_orders = st.lists(
    st.builds(
        OrderTerm,
        st.sampled_from(["metric", "param", "tag"]),
        st.sampled_from(SMALL_KEYS),
        st.booleans(),
    )
    | st.builds(
        OrderTerm,
        st.just("attribute"),
        st.sampled_from([*STRING_ATTRIBUTES, "start_time", "end_time"]),
        st.booleans(),
    ),
    max_size=2,
)


# Several queries per example: storing the runs is the slow part.
small_queries = st.tuples(small_filters, small_orders)


def like(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """The regular expression a LIKE pattern means: % any text, _ one character, \\ escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def attribute(run: RunRow, name: str) -> Any:
    return {
        "status": run.status,
        "run_name": run.name,
        "run_id": run.id,
        "created_by": run.created_by,
        "experiment": run.experiment,
        "start_time": run.start_time,
        "end_time": run.end_time,
    }[name]


def lookup(run: RunRow, entity: str, key: str) -> Any:
    if entity == "attribute":
        return attribute(run, key)
    return {"metric": run.metrics, "param": run.params, "tag": run.tags}[entity].get(key)


def holds(e: Expr, run: RunRow) -> bool:
    """The reference semantics of a filter, in plain Python."""
    if isinstance(e, And):
        return all(holds(t, run) for t in e.terms)
    if isinstance(e, Or):
        return any(holds(t, run) for t in e.terms)
    x, v = lookup(run, e.entity, e.key), e.value
    if e.op == "IS NULL":
        return x is None
    if x is None:  # a missing key or NULL end_time fails every other comparison
        return False
    if e.op in ("LIKE", "ILIKE"):
        assert isinstance(v, str)
        return like(v, e.op == "LIKE").fullmatch(x) is not None
    checks = {
        "IS NOT NULL": lambda: True,
        "=": lambda: x == v,
        "!=": lambda: x != v,
        "<": lambda: x < v,
        "<=": lambda: x <= v,
        ">": lambda: x > v,
        ">=": lambda: x >= v,
        "IN": lambda: x in v,  # type: ignore[operator]
        "NOT IN": lambda: x not in v,  # type: ignore[operator]
    }
    return bool(checks[e.op]())


def reference_search(rows: Sequence[RunRow], f: Filter, order: Sequence[OrderTerm]) -> list[str]:
    """The ids a search must return: matching active runs, sorted by the terms with missing
    values last, then newest start, then id."""
    found = [r for r in rows if r.lifecycle == "active" and (f.where is None or holds(f.where, r))]
    found.sort(key=lambda r: r.id)
    found.sort(key=lambda r: r.start_time, reverse=True)
    for term in reversed(order):  # stable sorts, least significant key first
        present = [r for r in found if lookup(r, term.entity, term.key) is not None]
        missing = [r for r in found if lookup(r, term.entity, term.key) is None]
        present.sort(key=lambda r, t=term: lookup(r, t.entity, t.key), reverse=term.descending)  # type: ignore[misc]
        found = present + missing
    return [r.id for r in found]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=small_runs, queries=st.lists(small_queries, min_size=4, max_size=8))
def test_sql_agrees_with_the_reference_evaluator(
    db: Database, rows: list[RunRow], queries: list[tuple[Filter, list[OrderTerm]]]
) -> None:
    """On random small sets of runs, the SQL search returns exactly the reference ids, in order."""
    store(db, rows)
    for f, order in queries:
        order_text = ", ".join(str(t) for t in order)
        expected = reference_search(rows, f, order)
        assert search(db, str(f), order_text) == expected, (str(f), order_text)
