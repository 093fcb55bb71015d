"""The checks of a contract as polars expressions, and their compilation to a pandera schema.

Each row-level check is a polars expression that is true where a row fails; ``validate`` runs it
inside pandera and ``row_failures`` runs it directly (both in :mod:`shipyard.data.validation`),
so the two flag the same rows. :func:`to_pandera` compiles a whole contract, dataset-level checks
included, to a ``pandera.polars.DataFrameSchema`` with one ``pa.Check`` per contract check;
``_compile`` also returns, for each check, how to report its failure as a :class:`Failure`.
Import the public names from :mod:`shipyard.data.validation`, which re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from shipyard.data.contracts import ColumnSpec, Contract, LabelRate, Range, Representation
from shipyard.data.validation_report import Failure, _examples, _json_value

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "VALUE_CHECKS",
    "to_pandera",
    "type_matches",
]

# The order in which value checks run on a column, and in which row_failures lists reasons.
VALUE_CHECKS = ("nullable", "min", "max", "allowed", "regex", "unique")
_OK = "check_output"  # pandera's name for a check's boolean output column
_SKIPPED = object()  # a statistic that does not apply (the column has the wrong type)


# --------------------------------------------------------------------------- row-level rules


def type_matches(type_: str, dtype: Any) -> bool:
    """Whether a polars dtype satisfies a contract type.

    ``float`` accepts integers too (numeric widening), ``category`` accepts String,
    Categorical and Enum, ``datetime`` accepts Datetime (any unit or zone) and Date. A column
    of dtype Null (every value missing) satisfies every type; ``nullable`` judges it.
    """
    import polars as pl

    if dtype == pl.Null:
        return True
    if type_ == "int":
        return bool(dtype.is_integer())
    if type_ == "float":
        return bool(dtype.is_float() or dtype.is_integer())
    if type_ == "bool":
        return bool(dtype == pl.Boolean)
    if type_ == "string":
        return bool(dtype == pl.String)
    if type_ == "category":
        return bool(dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum))
    return bool(isinstance(dtype, pl.Datetime) or dtype == pl.Date)


def _applies(check: str, spec: ColumnSpec) -> bool:
    if check == "nullable":
        return not spec.nullable
    if check == "unique":
        return spec.unique
    return getattr(spec, check) is not None


def _values(name: str, spec: ColumnSpec, dtype: Any) -> pl.Expr:
    """The column as values the bounds compare with: NaN is missing, times are naive UTC."""
    import polars as pl

    col = pl.col(name)
    if dtype.is_float():
        return col.fill_nan(None)
    if spec.type == "datetime":
        if dtype == pl.Date:
            return col.cast(pl.Datetime("us"))
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        # Python datetimes (and so the bounds) stop at microseconds.
        return col.dt.cast_time_unit("us")
    return col


def _bound(spec: ColumnSpec, value: Any) -> pl.Expr:
    import polars as pl

    return pl.lit(value, dtype=pl.Datetime("us")) if spec.type == "datetime" else pl.lit(value)


def _fails(check: str, name: str, spec: ColumnSpec, dtype: Any) -> pl.Expr | None:
    """True where a row fails ``check``, never null; None when the check cannot fail here
    (the column's type is wrong, which ``type`` reports, or it holds only nulls)."""
    import polars as pl

    if not type_matches(spec.type, dtype):
        return None
    col = pl.col(name)
    if check == "nullable":
        return col.is_null() | col.is_nan() if dtype.is_float() else col.is_null()
    if dtype == pl.Null:
        return None
    values = _values(name, spec, dtype)
    if check == "min":
        fails = values < _bound(spec, spec.min)
    elif check == "max":
        fails = values > _bound(spec, spec.max)
    elif check == "allowed":
        assert spec.allowed is not None
        # Compare in the column's own dtype (strict=False turns unrepresentable values, which
        # no row can equal, into nulls), so Float32 0.1 equals an allowed 0.1.
        if spec.type == "float" and dtype.is_integer():
            values, dtype = values.cast(pl.Float64), pl.Float64
        elif spec.type in ("string", "category"):
            dtype = pl.String
        allowed = pl.Series(list(spec.allowed), dtype=dtype, strict=False).drop_nulls()
        fails = values.is_in(allowed.implode()).not_()
    elif check == "regex":
        text = values if dtype == pl.String else values.cast(pl.String)
        assert spec.regex is not None
        fails = text.str.contains(spec.regex).not_()
    else:  # unique: every occurrence after the first; missing values are not duplicates
        return values.is_first_distinct().not_() & values.is_not_null()
    return fails.fill_null(False)


def _bound_text(value: Any) -> str:
    if isinstance(value, datetime) and value.time() == time():
        return value.date().isoformat()
    return str(_json_value(value))


def _label(check: str, spec: ColumnSpec) -> str:
    return f"{check} {_bound_text(getattr(spec, check))}" if check in ("min", "max") else check


# --------------------------------------------------------------------------- compilation


@dataclass(frozen=True)
class _Rule:
    """One check of a compiled contract: the function pandera runs, and how to report it."""

    check: str
    column: str | None
    run: Callable[[Any], Any]  # pandera PolarsData -> bool or a LazyFrame of booleans
    report: Callable[[pl.DataFrame, pl.Series | None, int], Failure]


def _dtype(data: Any) -> Any:
    return data.lazyframe.collect_schema()[data.key]


def _verdict(passed: bool) -> Any:
    """A one-row frame for a check that judges the whole column or table.

    pandera 0.35 cannot report a plain ``False`` next to row-wise failures under
    ``lazy=True`` (it concatenates a Boolean failure case with String ones and crashes), while a
    one-row boolean frame goes through its aggregate-check path.
    """
    import polars as pl

    return pl.LazyFrame({_OK: [passed]})


def _type_rule(name: str, spec: ColumnSpec) -> _Rule:
    def run(data: Any) -> Any:
        return _verdict(type_matches(spec.type, _dtype(data)))

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        message = f"expected {spec.type}, found {frame.schema[name]}"
        return Failure(name, "type", frame.height, _examples(frame, [name], None, n), message)

    return _Rule("type", name, run, report)


def _value_rule(check: str, name: str, spec: ColumnSpec) -> _Rule:
    def run(data: Any) -> Any:
        fails = _fails(check, data.key, spec, _dtype(data))
        return _verdict(True) if fails is None else data.lazyframe.select(fails.not_())

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        failed = frame.height if ok is None else ok.len() - int(ok.sum())
        examples = _examples(frame, [name], ok, n)
        return Failure(name, check, failed, examples, _value_message(check, spec, failed))

    return _Rule(check, name, run, report)


def _value_message(check: str, spec: ColumnSpec, failed: int) -> str:
    rows = f"{failed:,} row{'s' if failed != 1 else ''}"
    if check == "nullable":
        return f"{rows} missing a value (null or NaN) in a column that is not nullable"
    if check == "min":
        return f"{rows} below min {_bound_text(spec.min)}"
    if check == "max":
        return f"{rows} above max {_bound_text(spec.max)}"
    if check == "allowed":
        assert spec.allowed is not None
        shown = ", ".join(map(str, spec.allowed[:10])) + (", ..." if len(spec.allowed) > 10 else "")
        return f"{rows} with a value not in allowed [{shown}]"
    if check == "regex":
        return f"{rows} not matching regex {spec.regex!r}"
    return f"{rows} repeating a value already seen in an earlier row"


def _statistic_rule(
    check: str,
    column: str,
    statistic: Callable[[Any], pl.Expr | None],
    accept: Callable[[Any], bool],
    describe: Callable[[Any], str],
    count: Callable[[pl.DataFrame], int] = lambda frame: 0,
) -> _Rule:
    """A check of one number computed over a column (mean, quantile, share of nulls)."""

    def observe(lf: Any, dtype: Any) -> Any:
        expr = statistic(dtype)
        return _SKIPPED if expr is None else lf.select(expr).collect().item()

    def run(data: Any) -> Any:
        observed = observe(data.lazyframe, _dtype(data))
        return _verdict(observed is _SKIPPED or accept(observed))

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        observed = observe(frame.lazy(), frame.schema[column])
        return Failure(column, check, count(frame), [_json_value(observed)], describe(observed))

    return _Rule(check, column, run, report)


def _range_text(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _statistic_rules(contract: Contract, name: str, spec: ColumnSpec) -> list[_Rule]:
    checks = contract.checks
    rules: list[_Rule] = []
    share = checks.max_null_share
    limit = share.get(name) if isinstance(share, Mapping) else share
    if limit is not None:
        rules.append(_null_share_rule(name, limit))
    if name in checks.mean:
        rules.append(_bounded_rule("mean", name, spec, checks.mean[name], lambda v: v.mean()))
    for qb in checks.quantile.get(name, ()):
        rules.append(
            _bounded_rule(
                "quantile",
                name,
                spec,
                Range(qb.min, qb.max),
                lambda v, q=qb.q: v.quantile(q, "linear"),  # type: ignore[misc]
                label=f"quantile {qb.q}",
            )
        )
    return rules


def _null_share_rule(name: str, limit: float) -> _Rule:
    import polars as pl

    def missing(dtype: Any) -> pl.Expr:
        col = pl.col(name)
        return col.is_null() | col.is_nan() if dtype.is_float() else col.is_null()

    return _statistic_rule(
        "max_null_share",
        name,
        lambda dtype: missing(dtype).mean().fill_null(0.0),
        lambda observed: bool(observed <= limit),
        lambda observed: f"{observed:.2%} of values missing; at most {limit:.2%} allowed",
        lambda frame: int(frame.select(missing(frame.schema[name]).sum()).item()),
    )


def _bounded_rule(
    check: str,
    name: str,
    spec: ColumnSpec,
    bounds: Range,
    make: Callable[[pl.Expr], pl.Expr],
    label: str = "",
) -> _Rule:
    """A statistic of a numeric column that must lie within bounds; undefined (no values)
    fails, since nothing shows the data meets the bound."""

    import polars as pl

    def statistic(dtype: Any) -> pl.Expr | None:
        if not type_matches(spec.type, dtype):
            return None  # the type check reports it
        if dtype == pl.Null:
            return pl.lit(None, dtype=pl.Float64)
        return make(_values(name, spec, dtype))

    expected = _range_text(bounds.min, bounds.max)
    return _statistic_rule(
        check,
        name,
        statistic,
        lambda observed: observed is not None and bounds.contains(observed),
        lambda observed: (
            f"{label or check} is "
            + ("undefined (no values)" if observed is None else str(observed))
            + f"; expected {expected}"
        ),
    )


def _row_count_rule(bounds: Range) -> _Rule:
    import polars as pl

    def run(data: Any) -> Any:
        return _verdict(bounds.contains(data.lazyframe.select(pl.len()).collect().item()))

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        text = _range_text(_count(bounds.min), _count(bounds.max))
        message = f"{frame.height:,} rows; expected {text}"
        return Failure(None, "row_count", 0, [frame.height], message)

    return _Rule("row_count", None, run, report)


def _count(value: float | None) -> str | None:
    return None if value is None else f"{int(value):,}"


def _key_rule(key: tuple[str, ...]) -> _Rule:
    import polars as pl

    def run(data: Any) -> Any:
        if not set(key) <= set(data.lazyframe.collect_schema().names()):
            return _verdict(True)  # column_present reports the missing column
        repeated = pl.struct(key).is_first_distinct().not_()
        complete = pl.all_horizontal(pl.col(c).is_not_null() for c in key)
        return data.lazyframe.select((repeated & complete).not_())

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        failed = 0 if ok is None else ok.len() - int(ok.sum())
        rows = f"{failed:,} row{'s' if failed != 1 else ''}"
        message = f"{rows} repeating a ({', '.join(key)}) key already seen in an earlier row"
        return Failure(None, "unique_combination", failed, _examples(frame, key, ok, n), message)

    return _Rule("unique_combination", None, run, report)


# --------------------------------------------------------------------------- representation


def _share_text(share: float) -> str:
    return f"{share:.1%}"


def _group_text(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(_json_value(value))


def _groups_usable(lf: Any, columns: Mapping[str, ColumnSpec]) -> bool:
    """Whether the grouping columns are there with their types (else their own checks say)."""
    schema = lf.collect_schema()
    return all(n in schema and type_matches(s.type, schema[n]) for n, s in columns.items())


def _group_counts(lf: Any, name: str) -> dict[Any, int]:
    table = lf.select(name).drop_nulls().group_by(name).len().collect()
    return {row[0]: int(row[1]) for row in table.iter_rows()}


def _representation_problems(
    lf: Any, name: str, spec: ColumnSpec, rep: Representation
) -> tuple[list[str], list[dict[str, Any]]]:
    """What breaks the bounds, as message parts and examples ({group, share, rows})."""
    counts = _group_counts(lf, name)
    if spec.allowed is not None and spec.type in ("int", "bool", "string", "category"):
        counts = {**dict.fromkeys(spec.allowed, 0), **counts}
    counts = {**dict.fromkeys(rep.groups, 0), **counts}
    total = sum(counts.values())
    messages: list[str] = []
    examples: list[dict[str, Any]] = []
    lows = [rep.min_share, *(r.min for r in rep.groups.values())]
    if total == 0 and any(lo is not None for lo in lows):
        # No row has a value: no group can reach its share, however the groups are named.
        import polars as pl

        from shipyard._internal.words import count

        rows = int(lf.select(pl.len()).collect().item())
        where = f"{name} is null in every row ({count(rows, 'row')})" if rows else "no rows"
        messages.append(f"no group reaches its share: {where}; shares count rows with a value")
        examples.append({"group": None, "share": 0.0, "rows": 0})
        return messages, examples
    for group in sorted(counts, key=lambda g: (str(type(g)), g)):
        bounds = rep.groups.get(group, Range(rep.min_share, rep.max_share))
        lo = bounds.min if bounds.min is not None else rep.min_share
        hi = bounds.max if bounds.max is not None else rep.max_share
        share = counts[group] / total if total else 0.0
        if lo is not None and share < lo:
            need = f"at least {_share_text(lo)}"
        elif hi is not None and share > hi:
            need = f"at most {_share_text(hi)}"
        else:
            continue
        messages.append(
            f"group {_group_text(group)} is {_share_text(share)} of rows "
            f"({counts[group]:,} of {total:,}); {need} required"
        )
        examples.append({"group": _json_value(group), "share": share, "rows": counts[group]})
    return messages, examples


def _representation_rule(name: str, spec: ColumnSpec, rep: Representation) -> _Rule:
    def run(data: Any) -> Any:
        if not _groups_usable(data.lazyframe, {name: spec}):
            return _verdict(True)
        return _verdict(not _representation_problems(data.lazyframe, name, spec, rep)[0])

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        messages, examples = _representation_problems(frame.lazy(), name, spec, rep)
        return Failure(name, "representation", 0, examples[:n], "; ".join(messages))

    return _Rule("representation", None, run, report)


def _label_rates(lf: Any, rate: LabelRate) -> dict[Any, tuple[float, int]]:
    """Per group of ``rate.column``: the label rate and the rows it is measured on."""
    import polars as pl

    label = pl.col(rate.label)
    if isinstance(rate.positive, str):
        label = label.cast(pl.String)
    table = (
        lf.filter(pl.col(rate.column).is_not_null() & pl.col(rate.label).is_not_null())
        .group_by(rate.column)
        .agg((label == rate.positive).mean().alias("rate"), pl.len().alias("rows"))
        .collect()
    )
    return {row[0]: (float(row[1]), int(row[2])) for row in table.iter_rows()}


def _label_rate_problems(lf: Any, rate: LabelRate) -> tuple[list[str], dict[str, Any]]:
    rates = _label_rates(lf, rate)
    ordered = sorted(rates, key=lambda g: (str(type(g)), g))
    observed = {str(_json_value(g)): rates[g][0] for g in ordered}
    problems: list[str] = []
    for g in ordered:
        r = rates[g][0]
        if rate.min is not None and r < rate.min:
            problems.append(
                f"group {_group_text(g)} is {_share_text(r)}; at least "
                f"{_share_text(rate.min)} required"
            )
        if rate.max is not None and r > rate.max:
            problems.append(
                f"group {_group_text(g)} is {_share_text(r)}; at most "
                f"{_share_text(rate.max)} allowed"
            )
    if len(rates) >= 2:
        values = [rates[g][0] for g in ordered]
        high, low = max(values), min(values)
        if rate.max_gap is not None and high - low > rate.max_gap + 1e-12:
            problems.append(
                f"the gap between groups is {(high - low) * 100:.1f} points; at most "
                f"{rate.max_gap * 100:.1f} allowed"
            )
        ratio = low / high if high else 1.0
        if rate.min_ratio is not None and ratio < rate.min_ratio - 1e-12:
            problems.append(
                f"the lowest rate is {ratio:.2f} of the highest; at least "
                f"{rate.min_ratio:.2f} required"
            )
    if problems:
        shown = ", ".join(f"{_group_text(g)} {_share_text(rates[g][0])}" for g in ordered)
        problems.insert(
            0, f"rate of {rate.label} = {_group_text(rate.positive)} by {rate.column}: {shown}"
        )
    return problems, observed


def _label_rate_rule(contract: Contract, rate: LabelRate) -> _Rule:
    columns = {c: contract.columns[c] for c in (rate.label, rate.column)}

    def run(data: Any) -> Any:
        if not _groups_usable(data.lazyframe, columns):
            return _verdict(True)
        return _verdict(not _label_rate_problems(data.lazyframe, rate)[0])

    def report(frame: pl.DataFrame, ok: pl.Series | None, n: int) -> Failure:
        problems, observed = _label_rate_problems(frame.lazy(), rate)
        message = problems[0] + "; " + "; ".join(problems[1:])
        return Failure(rate.column, "label_rate", 0, [observed], message)

    return _Rule("label_rate", None, run, report)


def _compile(contract: Contract) -> tuple[Any, dict[tuple[str | None, int], _Rule]]:
    import pandera.polars as pa

    rules: dict[tuple[str | None, int], _Rule] = {}

    def check(rule: _Rule, index: int) -> Any:
        rules[(rule.column, index)] = rule
        # The report takes its own examples; pandera needs only a few for its messages.
        return pa.Check(rule.run, name=rule.check, error=rule.check, n_failure_cases=5)

    columns = {}
    for name, spec in contract.columns.items():
        column_rules = [_type_rule(name, spec)]
        column_rules += [_value_rule(c, name, spec) for c in VALUE_CHECKS if _applies(c, spec)]
        column_rules += _statistic_rules(contract, name, spec)
        # Nullability and the dtype are contract checks too (NaN counts as missing, numbers
        # widen), so pandera's own dtype and nullable checks stay off.
        columns[name] = pa.Column(
            None,
            checks=[check(r, i) for i, r in enumerate(column_rules)],
            nullable=True,
            required=True,
            name=name,
        )
    frame_rules: list[_Rule] = []
    if contract.checks.row_count is not None:
        frame_rules.append(_row_count_rule(contract.checks.row_count))
    frame_rules += [_key_rule(key) for key in contract.checks.unique]
    frame_rules += [
        _representation_rule(name, contract.columns[name], rep)
        for name, rep in contract.checks.representation.items()
    ]
    frame_rules += [_label_rate_rule(contract, rate) for rate in contract.checks.label_rate]
    schema = pa.DataFrameSchema(
        columns,
        checks=[check(r, i) for i, r in enumerate(frame_rules)],
        strict=contract.strict,
        name=contract.description or None,
    )
    return schema, rules


def to_pandera(contract: Contract) -> Any:
    """The contract as a ``pandera.polars.DataFrameSchema``.

    Every contract check is a ``pa.Check`` named after it (``type``, ``min``, ``mean``...)
    whose polars expression runs vectorised; ``strict`` maps to pandera's ``strict``.

    >>> schema = to_pandera(Contract.from_yaml("columns: {age: {type: int, max: 100}}"))
    >>> [check.name for check in schema.columns["age"].checks]
    ['type', 'max']
    """
    return _compile(contract)[0]
