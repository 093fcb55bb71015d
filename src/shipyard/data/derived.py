"""Contract checks and derived versions of datasets: a new batch checked against its contract
(rejected, its failing rows quarantined into ``NAME.quarantine``, or stored marked invalid), a
stored version validated, and a table split into child datasets ``NAME.<part>``.

:class:`~shipyard.data.datasets.Datasets` delegates to these functions. Each takes the service's
context and the service, and writes through :func:`~shipyard.data.versions.commit_versions`, so
that a batch and its quarantine, or the parts of a split, appear together or not at all.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update

from shipyard._internal.progress import Progress
from shipyard.authz import require_role
from shipyard.data import ingest
from shipyard.data.versions import (
    KIND,
    DatasetVersion,
    PendingVersion,
    commit_versions,
    resolve,
    stage_table,
)
from shipyard.errors import CheckFailedError, InvalidInputError
from shipyard.refs import parse_ref, validate_name
from shipyard.stores.db.tables import dataset_versions

if TYPE_CHECKING:
    import polars as pl

    from shipyard.context import ServiceContext
    from shipyard.data.contract_registry import Contracts
    from shipyard.data.contracts import Contract
    from shipyard.data.datasets import Datasets, OnInvalid
    from shipyard.data.splits import SplitSpec
    from shipyard.data.validation import ParsedCells, ValidationReport

__all__ = [
    "QUARANTINE_COLUMNS",
    "add_checked",
    "check_derived_name",
    "finish_pending",
    "split_version",
    "validate_version",
]

# Columns the quarantine dataset adds to the failing rows: where each was, and why it failed.
QUARANTINE_COLUMNS = ("source_row", "quarantine_reason")
_ROW, _REASON = "__shipyard_row__", "__shipyard_reason__"


def add_checked(
    ctx: ServiceContext,
    contracts: Contracts,
    service: Datasets,
    pending: PendingVersion,
    contract_ref: str,
    on_invalid: OnInvalid,
    cleanup: list[Path],
    progress: Progress,
) -> DatasetVersion:
    """Commit a staged table checked against ``contract_ref``: as valid, as invalid
    (``allow``), with its failing rows set aside (``quarantine``), or not at all (``reject``).

    Raises:
        CheckFailedError: the data fails its contract and is rejected.
        InvalidInputError: the data to quarantine has a column the quarantine dataset adds.
    """
    import polars as pl

    from shipyard.data.validation import parse_cells

    cv = contracts.get(contract_ref)
    # Read once (or not at all when the table was just parsed): quarantine splits the same rows.
    frame = pending.frame if pending.frame is not None else pl.read_parquet(pending.payload)
    # A text file's column types are guessed by the reader; with a contract, its types decide,
    # so one cell that is not a number fails its own row rather than the whole column.
    cells = (
        parse_cells(cv.contract, frame) if pending.source.get("format") in _TEXT_FORMATS else None
    )
    report = _checked(cv.contract, frame, cells)
    pending.contract = cv.ref
    pending.validation = report.to_dict()
    if report.passed:
        pending.status = "valid"
        if cells is not None and cells.parsed:
            pending = _restaged(ctx, pending, cells.frame, cleanup)
        return commit_versions(ctx, [pending], service)[0]
    if on_invalid == "allow":
        pending.status = "invalid"
        return commit_versions(ctx, [pending], service)[0]
    if on_invalid == "reject":
        raise _rejected(pending.name, cv.ref, report)
    return _quarantine(
        ctx, service, pending, frame, cells, cv.ref, cv.contract, report, cleanup, progress
    )


# Formats whose column types the reader guesses from text.
_TEXT_FORMATS = ("csv", "tsv", "jsonl")


def _checked(
    contract: Contract, frame: pl.DataFrame, cells: ParsedCells | None
) -> ValidationReport:
    """The report on ``frame``: cells that do not parse as their column's type, then every
    check on the rows that do."""
    import polars as pl

    from shipyard.data.validation import ValidationReport, validate

    if cells is None:
        return validate(contract, frame)
    if not cells.failures:
        return validate(contract, cells.frame)
    parsed = (
        cells.frame.with_row_index(_ROW)
        .join(cells.rows.select(pl.col("__row").alias(_ROW)), on=_ROW, how="anti")
        .drop(_ROW)
    )
    rest = validate(contract, parsed)
    return ValidationReport(False, frame.height, [*cells.failures, *rest.failures])


def _restaged(
    ctx: ServiceContext, pending: PendingVersion, frame: pl.DataFrame, cleanup: list[Path]
) -> PendingVersion:
    """``pending`` with ``frame`` (its rows, values typed) as its data."""
    path = ctx.artifacts.new_staging_path(".parquet")
    cleanup.append(path)
    frame.write_parquet(
        path,
        compression=ingest.PARQUET_COMPRESSION,
        compression_level=ingest.DERIVED_COMPRESSION_LEVEL,
    )
    typed = stage_table(path, pending.name, pending.source)
    finish_pending(typed, pending.message, pending.tags, pending.parents)
    typed.status, typed.contract, typed.validation = (
        pending.status,
        pending.contract,
        pending.validation,
    )
    return typed


def _quarantine(
    ctx: ServiceContext,
    service: Datasets,
    pending: PendingVersion,
    frame: pl.DataFrame,
    cells: ParsedCells | None,
    contract_ref: str,
    contract: Contract,
    report: ValidationReport,
    cleanup: list[Path],
    progress: Progress,
) -> DatasetVersion:
    """Split failing rows off into ``NAME.quarantine``; the rest becomes the version. Rows
    with a cell that does not parse go aside as they were written."""
    import polars as pl

    from shipyard.data.validation import row_failures, validate

    progress.stage("quarantining failing rows")
    clash = sorted(set(frame.columns) & set(QUARANTINE_COLUMNS))
    if clash:
        raise InvalidInputError(
            f"cannot quarantine: the data has column(s) {', '.join(clash)}, which the "
            f"quarantine dataset uses for its own; rename them, or use --allow-invalid"
        )
    parsed = cells.parsed if cells is not None else []
    whole = [
        f
        for f in report.failures
        if f.check in ("column_present", "extra_column")
        or (f.check == "type" and f.column not in parsed)
    ]
    if whole:
        # A missing, extra or mistyped column fails every row: none can be kept.
        failing = "; ".join(f"{f.column}: {f.message}" for f in whole)
        raise _rejected(
            pending.name,
            contract_ref,
            report,
            f"every row fails, so none can be kept: {failing}",
            quarantining=True,
        )
    typed = frame if cells is None else cells.frame
    renamed = [pl.col("__row").cast(pl.UInt32).alias(_ROW), pl.col("reason").alias(_REASON)]
    failures = row_failures(contract, typed).select(renamed)
    if cells is not None and cells.rows.height:
        unparsed = cells.rows.select(renamed)
        failures = pl.concat(
            [unparsed, failures.join(unparsed.select(_ROW), on=_ROW, how="anti")]
        ).sort(_ROW)
    if failures.height == 0:
        # Only dataset-level checks (row count, shares, representation) fail: no row to set aside.
        raise _rejected(pending.name, contract_ref, report)
    good = typed.with_row_index(_ROW).join(failures, on=_ROW, how="anti").drop(_ROW)
    bad = (
        frame.with_row_index(_ROW)
        .join(failures, on=_ROW, how="inner")
        .rename({_ROW: "source_row", _REASON: "quarantine_reason"})
    )
    good_report = validate(contract, good)
    if not good_report.passed:
        still = "; ".join(f"{f.column or 'dataset'}: {f.message}" for f in good_report.failures)
        raise _rejected(
            pending.name,
            contract_ref,
            report,
            f"even without its {_count(bad.height, 'failing row')} the batch fails: {still}",
            quarantining=True,
        )
    good_path = ctx.artifacts.new_staging_path(".parquet")
    bad_path = ctx.artifacts.new_staging_path(".parquet")
    cleanup += [good_path, bad_path]
    good.write_parquet(
        good_path,
        compression=ingest.PARQUET_COMPRESSION,
        compression_level=ingest.DERIVED_COMPRESSION_LEVEL,
    )
    bad.write_parquet(
        bad_path,
        compression=ingest.PARQUET_COMPRESSION,
        compression_level=ingest.DERIVED_COMPRESSION_LEVEL,
    )
    side_name = f"{pending.name}.quarantine"
    summary = {"dataset": side_name, "rows": bad.height, "report": report.to_dict()}
    source = {**pending.source, "quarantined_rows": bad.height}
    main = stage_table(good_path, pending.name, source)
    finish_pending(main, pending.message, pending.tags, pending.parents)
    main.status, main.contract = "valid", contract_ref
    main.validation = {**good_report.to_dict(), "quarantine": summary}
    side = stage_table(bad_path, side_name, source)
    side.parents, side.relation = [0], "quarantined_from"
    side.status, side.contract, side.validation = "invalid", contract_ref, report.to_dict()
    side.message = f"rows of a {pending.name} batch that failed {contract_ref}"
    kept, aside = commit_versions(ctx, [main, side], service)
    # The valid rows may equal an existing version; say where the failing rows went anyway.
    return replace(kept, quarantine={**summary, "ref": aside.ref})


def validate_version(
    ctx: ServiceContext,
    contracts: Contracts,
    service: Datasets,
    ref: str,
    contract: str | None,
    store: bool,
) -> ValidationReport:
    """:meth:`Datasets.validate <shipyard.data.datasets.Datasets.validate>`: check a table
    version against a contract and, with ``store``, record the report on the version."""
    from shipyard.data.validation import validate

    v = service.get(ref)
    if store:
        with ctx.db.read() as conn:
            require_role(conn, ctx.actor, "contributor", "validate data")
    contract_ref = contract or contracts.binding(v.name)
    if contract_ref is None:
        raise InvalidInputError(
            f"dataset '{v.name}' has no bound contract; pass --contract NAME or bind one "
            f"with `shipyard contract bind {v.name} CONTRACT`"
        )
    if v.kind != "table":
        raise InvalidInputError(f"dataset '{v.ref}' is a file tree; contracts apply to tables")
    cv = contracts.get(contract_ref)
    import polars as pl

    with ctx.artifacts.local_copy(v.digest, owner=f"dataset '{v.ref}'") as path:
        report = validate(cv.contract, pl.scan_parquet(path))
    status = "valid" if report.passed else "invalid"
    if not store:
        with ctx.audited() as tx:
            tx.record(
                "dataset.read",
                KIND,
                v.ref,
                {"digest": v.digest, "via": "validate", "contract": cv.ref},
            )
        return report
    with ctx.audited() as tx:
        require_role(tx.conn, ctx.actor, "contributor", "validate data")
        row = resolve(tx.conn, parse_ref(v.ref))
        tx.conn.execute(
            update(dataset_versions)
            .where(dataset_versions.c.id == row.id)
            .values(validation=report.to_dict(), status=status, contract=cv.ref)
        )
        tx.record(
            "dataset.validate",
            KIND,
            v.ref,
            {"contract": cv.ref, "passed": report.passed, "failures": len(report.failures)},
        )
        tx.record("dataset.read", KIND, v.ref, {"digest": v.digest, "via": "validate"})
    return report


def split_version(
    ctx: ServiceContext, service: Datasets, ref: str, spec: SplitSpec, progress: Progress
) -> dict[str, DatasetVersion]:
    """:meth:`Datasets.split <shipyard.data.datasets.Datasets.split>`: split a table version
    into child datasets ``NAME.<part>``, committed in one transaction."""
    from shipyard.data.splits import split_frame

    parent = service.get(ref)
    if parent.kind != "table":
        raise InvalidInputError(f"dataset '{parent.ref}' is a file tree; only tables split")
    for part in spec.fractions:
        check_derived_name(parent.name, part)
    with ctx.db.read() as conn:
        require_role(conn, ctx.actor, "contributor", "split data")
    frame = service.read_polars(parent, via="split")
    progress.stage(f"splitting {parent.ref}")
    parts = split_frame(frame, spec)
    staged: list[Path] = []
    try:
        pending = []
        for part, df in parts.items():
            path = ctx.artifacts.new_staging_path(".parquet")
            staged.append(path)
            df.write_parquet(
                path,
                compression=ingest.PARQUET_COMPRESSION,
                compression_level=ingest.DERIVED_COMPRESSION_LEVEL,
            )
            source = {
                "format": "split",
                "split": spec.to_dict(),
                "part": part,
                "parent": parent.ref,
                "parent_digest": parent.digest,
            }
            p = stage_table(path, f"{parent.name}.{part}", source)
            p.parents, p.relation = [parent.ref], "split"
            p.message = f"{part} part of {parent.ref}"
            pending.append(p)
        committed = commit_versions(ctx, pending, service)
    finally:
        for path in staged:
            path.unlink(missing_ok=True)
    return dict(zip(parts, committed, strict=True))


def check_derived_name(name: str, suffix: str) -> None:
    """Refuse up front when ``NAME.suffix`` (a quarantine or split child) is not a valid name."""
    derived = f"{name}.{suffix}"
    try:
        validate_name(derived, "dataset name")
    except InvalidInputError:
        raise InvalidInputError(
            f"dataset '{name}' cannot have a child named {derived!r}: names are at most 128 "
            "characters of letters, digits, '.', '_' or '-'; use a shorter dataset or part name"
        ) from None


def finish_pending(
    pending: PendingVersion, message: str, tags: dict[str, str], parents: list[str | int]
) -> PendingVersion:
    """Set the message, tags and parents the caller gave on a staged version."""
    pending.message, pending.tags, pending.parents = message, tags, list(parents)
    return pending


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _rejected(
    name: str,
    contract_ref: str,
    report: ValidationReport,
    why: str | None = None,
    *,
    quarantining: bool = False,
) -> CheckFailedError:
    failed = ", ".join(
        f"{f.column or 'dataset'}: "
        + (f.message if f.check == "type" and f.failed_rows else f.check)
        + (
            f" ({_count(f.failed_rows, 'row')})"
            if f.failed_rows
            else (f" ({f.message})" if f.message else "")
        )
        for f in report.failures[:6]
    )
    more = f" and {len(report.failures) - 6} more" if len(report.failures) > 6 else ""
    # ``why`` names what fails itself: the report's failures are not listed again.
    reason = why or f"{_count(len(report.failures), 'check')} failed: {failed}{more}"
    if not any(f.failed_rows for f in report.failures):
        fix = (
            "no row fails on its own, the batch as a whole does, so --quarantine cannot help; "
            "use --allow-invalid to store it marked invalid"
        )
    elif quarantining:
        fix = "fix the data, or use --allow-invalid to store it marked invalid"
    elif whole := [f for f in report.failures if not f.failed_rows]:
        checks = ", ".join(f"{f.column or 'dataset'}: {f.check}" for f in whole)
        fix = (
            "use --quarantine to keep the valid rows, which then must pass the batch-wide "
            f"check{'' if len(whole) == 1 else 's'} {checks} on their own, or --allow-invalid "
            "to store it marked invalid"
        )
    else:
        fix = (
            "use --quarantine to keep the valid rows, or --allow-invalid to store it marked invalid"
        )
    return CheckFailedError(
        f"rejected: the batch for dataset '{name}' fails contract {contract_ref}: {reason}; "
        f"nothing was stored ({fix})",
        details={"report": report.to_dict(), "contract": contract_ref},
    )
