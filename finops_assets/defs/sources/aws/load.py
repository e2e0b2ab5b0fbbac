"""Staging SQL for raw/aws_cur (legacy CUR and CUR 2.0 files to typed raw rows), and what is
checked about a delivery's rows before anything is written: values the strict casts reject
(named by file, column as delivered, sample and count), CSVs read in the wrong dialect, rows dated
outside the report's billing period (``rules.deliveries.rows_outside_period``) and a delivery
whose rows fall on none of the days it claims. No Dagster here: ``assets.py`` calls these."""

from __future__ import annotations

import gzip
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from finops_assets.defs.sources.aws.cur import (
    ESSENTIAL_COLUMN_NAMES,
    CurFormatError,
    CurLayout,
    cast_failures,
    cur_staging_select,
    delivered_spelling,
    resolve_cur_layout,
)
from finops_assets.defs.sources.aws.deliveries import (
    CUR_ROOT,
    CurDelivery,
    DataExportDelivery,
)
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.loading import (
    ISO_CURRENCIES,
    describe_file,
    reader_sql,
    sql_list,
    sql_literal,
)
from finops_assets.lib.period_rows import MonthRows, OutsideRows, outside_rows, placed
from finops_assets.lib.snapshots import snapshot_file, snapshot_reader
from finops_assets.lib.warehouse import quote_identifier as q

# Rows a CUR must never carry (checked inside the write transaction, per file).
CUR_ROW_CHECKS = (
    ("line_item_line_item_type IS NULL", "line_item_line_item_type", "is empty"),
    ("line_item_unblended_cost IS NULL", "line_item_unblended_cost", "is empty"),
    ("line_item_usage_start_date IS NULL", "line_item_usage_start_date", "is empty"),
    (
        f"line_item_currency_code NOT IN (SELECT unnest({sql_list(ISO_CURRENCIES)}))",
        "line_item_currency_code",
        "is not an ISO 4217 currency code",
    ),
)


def lineage(delivery: CurDelivery | DataExportDelivery) -> tuple[str, str]:
    """(delivery id, dataset) recorded on every row: the CUR assembly or the export execution."""
    if isinstance(delivery, CurDelivery):
        return delivery.assembly_id, f"{CUR_ROOT}/{delivery.report}"
    return delivery.execution_id, delivery.dataset


@dataclass(frozen=True)
class StagedFile:
    key: str  # landing key
    path: str  # local path read (the snapshot when one was taken)
    format: str
    layout: CurLayout
    source: str  # the file's rows with the lineage columns
    select: str  # the file's typed rows (RAW_CUR_COLUMNS), every day
    snapshot: str | None = None  # the file's snapshot in the raw zone (lib.snapshots)


def stage_delivery(
    con: duckdb.DuckDBPyConnection,
    delivery: CurDelivery | DataExportDelivery,
    paths: dict[str, str],
    describe: dict[str, str],
    zone: Path | None = None,
) -> list[StagedFile]:
    """The typed SELECT of each file of the delivery (files of one assembly may differ in
    columns, e.g. a tag first used mid-month). With ``zone``, each file is first kept as a
    snapshot there (``lib.snapshots``) and the SELECT reads the snapshot."""
    delivery_id, dataset = lineage(delivery)
    staged = []
    for file in delivery.files:
        path, where = paths[file.key], describe[file.key]
        columns = describe_file(con, path, file.format, where)
        try:
            layout = resolve_cur_layout(columns)
        except CurFormatError as error:
            if file.format == "csv":
                misread = dialect_error(con, path, where, columns)
                if misread is not None:
                    raise misread from None
            raise DeliveryError(f"{where}: {error}") from None
        snapshot = None
        reader = reader_sql(file.format, [path])
        if zone is not None:
            snapshot = str(
                snapshot_file(con, zone, path, file.format, (dataset, delivery_id, file.key), where)
            )
            reader = snapshot_reader(snapshot)
        source = (
            f"(SELECT *, {sql_literal(delivery_id)} AS x_DeliveryId, "
            f"{sql_literal(file.key)} AS x_SourceFile FROM {reader})"
        )
        staged.append(
            StagedFile(
                file.key,
                snapshot or path,
                file.format,
                layout,
                source,
                cur_staging_select(source, layout),
                snapshot,
            )
        )
    return staged


def typed_sql(file: StagedFile, delivery: CurDelivery | DataExportDelivery) -> str:
    """The file's typed rows of every day, with the dataset and billing period columns (what a
    snapshot entry of raw.aws_cur serves)."""
    _, dataset = lineage(delivery)
    return (
        f"SELECT *, {sql_literal(dataset)} AS x_Dataset, "
        f"{sql_literal(delivery.billing_period)} AS x_BillingPeriod FROM ({file.select})"
    )


def window_sql(
    file: StagedFile, delivery: CurDelivery | DataExportDelivery, days: tuple[date, date]
) -> str:
    """The file's typed rows of ``days``, with the dataset and billing period columns."""
    _, dataset = lineage(delivery)
    return f"""
        SELECT *, {sql_literal(dataset)} AS x_Dataset,
               {sql_literal(delivery.billing_period)} AS x_BillingPeriod
        FROM ({file.select})
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
    """


# --- CSV dialect ------------------------------------------------------------------------------
def header_line(path: str) -> str:
    """The first line of a CSV (gzip or plain), without its line break and BOM."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as text:
        return text.readline(1_000_000).rstrip("\r\n")


def dialect_error(
    con: duckdb.DuckDBPyConnection, path: str, where: str, columns: dict[str, str]
) -> DeliveryError | None:
    """A CSV whose header line holds a CUR column name the parsed columns lack was read in the
    wrong dialect (semicolons, a quoted header line ...): say that, not "missing column"."""
    try:
        line = header_line(path)
    except OSError:
        return None
    named = [name for name in ESSENTIAL_COLUMN_NAMES if name in line and name not in columns]
    if not named:
        return None
    try:
        row = con.execute("SELECT Delimiter FROM sniff_csv(?)", [path]).fetchone()
        detected = row[0] if row else "?"
    except duckdb.Error:
        detected = "?"
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    in_header = max(counts, key=lambda d: counts[d])
    quoted = line.startswith('"') and line.endswith('"') and line.count('"') == 2
    shown = ", ".join(list(columns)[:3]) + (", ..." if len(columns) > 3 else "")
    return DeliveryError(
        f"{where}: the CSV dialect was misdetected: the header line names {named[0]} but the "
        f"file was read with delimiter {detected!r} as {len(columns)} column(s) ({shown}); the "
        f"header line is split by {in_header!r}"
        + (" and wrapped in quotes as one field" if quoted else "")
        + ". AWS writes CUR files comma-delimited, with an unquoted header line and '.' as the "
        "decimal point. Fix: re-export the report (or convert the file back: a file re-saved by "
        "a spreadsheet is the usual cause), then re-deliver it; nothing was written."
    )


# --- values the strict casts reject ------------------------------------------------------------
def type_error(
    con: duckdb.DuckDBPyConnection, file: StagedFile, where: str, error: Exception
) -> DeliveryError:
    """After the typed read of a file failed: the column (as delivered), sample values and the
    number of rows it rejects; the engine's own message when no column explains it."""
    checks = cast_failures(file.layout)
    if checks:
        aggregates = ", ".join(
            f"count_if({condition}), list(CAST({q(column)} AS VARCHAR)) FILTER ({condition})[1:3]"
            for column, condition, _ in checks
        )
        try:
            row = con.execute(f"SELECT {aggregates} FROM {file.source}").fetchone()
        except duckdb.Error:
            row = None
        problems = [
            f"column {column} has {row[2 * index]} row(s) whose value is not {expected}, "
            f"e.g. {row[2 * index + 1]}"
            for index, (column, _, expected) in enumerate(checks)
            if row and row[2 * index]
        ]
        if problems:
            return DeliveryError(
                f"{where}: {'; '.join(problems)}. Fix: correct the export (no currency symbols, "
                "thousands separators, decimal commas or text in numeric and date columns; "
                "empty, None, null, NULL and \\N are read as empty) and re-deliver it; nothing "
                "was written."
            )
    return DeliveryError(
        f"{where}: {str(error).splitlines()[0]}. Fix: correct the export (or re-copy a truncated "
        "file) and re-deliver it; nothing was written."
    )


def diagnose_type_errors(
    con: duckdb.DuckDBPyConnection, files: list[StagedFile], describe: dict[str, str]
) -> DeliveryError | None:
    """After a failed write: the first file with values the strict casts reject, named."""
    for file in files:
        if cast_failures(file.layout):
            found = type_error(con, file, describe.get(file.key, file.key), Exception(""))
            if "row(s) whose value is not" in str(found):
                return found
    return None


# --- rows and the billing period ---------------------------------------------------------------
def file_rows(con: duckdb.DuckDBPyConnection, file: StagedFile, where: str) -> list[MonthRows]:
    """Every row of the file counted per usage month and currency, after every value the typed
    view's casts would reject is looked for (a raw table kept as snapshots types rows when read,
    so a bad value must fail here, named, before anything is written)."""
    checks = cast_failures(file.layout)
    if checks:
        counts = con.execute(
            f"SELECT {', '.join(f'count_if({c})' for _, c, _ in checks)} FROM {file.source}"
        ).fetchone()
        if any(counts):
            raise type_error(con, file, where, Exception("a value the casts reject"))
    try:
        rows = con.execute(
            f"""SELECT strftime(charge_date, '%Y-%m'), line_item_currency_code, count(*),
                       coalesce(sum(line_item_unblended_cost), 0), min(charge_date),
                       max(charge_date)
                FROM ({file.select}) GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    except duckdb.Error as error:
        raise type_error(con, file, where, error) from None
    return [MonthRows(*row) for row in rows]


def check_delivery_rows(
    delivery: CurDelivery | DataExportDelivery,
    rows_by_file: dict[str, list[MonthRows]],
    describe: dict[str, str],
    mode: str,
    correction_months: int,
    flavour: str = "athena",
) -> list[OutsideRows]:
    """Refuse a delivery whose rows fall on no day a load would place them in (its billing period
    or the corrections window) or carry no usage date, and return per file the rows dated outside the period that no load will place.

    Rows dated in the ``correction_months`` months before the period are corrections (the load
    of their month reads this report); with ``mode`` "load" the rows dated up to
    ``correction_months`` after the period are placed the same way. Anything else is outside."""
    period = delivery.billing_period
    delivery_id, dataset = lineage(delivery)
    name = f"{dataset} billing period {period} delivery {delivery_id}"
    every = [r for rows in rows_by_file.values() for r in rows]
    total = sum(r.rows for r in every)

    def is_placed(month: str | None) -> bool:
        return placed(period, month, mode, correction_months)

    placeable = sum(r.rows for r in every if is_placed(r.month))
    undated = {k: sum(r.rows for r in rows if r.month is None) for k, rows in rows_by_file.items()}
    start = delivered_spelling("line_item_usage_start_date", flavour)
    window = (
        f" and the correction_months = {correction_months} month(s) "
        + ("around it" if mode == "load" else "before it")
        if correction_months
        else ""
    )
    if total and not placeable:
        dated = [r for r in every if r.month is not None]
        if not dated:
            reason = f"none of its {total} row(s) has a usage start date ({start} is empty)"
        else:
            months = defaultdict(int)
            for r in dated:
                months[r.month] += r.rows
            reason = (
                f"all {total} row(s) are dated outside {period}{window}: usage starts run from "
                f"{min(r.first for r in dated)} to {max(r.last for r in dated)} ("
                + ", ".join(f"{m}: {n} row(s)" for m, n in sorted(months.items()))
                + (
                    f", no usage start date: {total - sum(months.values())} row(s)"
                    if total > sum(months.values())
                    else ""
                )
                + ")"
            )
        raise DeliveryError(
            f"{name} claims the days of {period} but yields no row for any of them: {reason}. "
            f"Files: {', '.join(describe.get(k, k) for k in rows_by_file)}. Fix: check that the "
            "report's usage dates parse (ISO 8601, UTC) and that the files belong to this billing "
            "period, then re-deliver it; nothing was written."
        )
    for key, count in undated.items():
        if count:
            raise DeliveryError(
                f"{describe.get(key, key)}: {count} row(s) have no usage start date ({start} is "
                "empty), so no day can hold their cost. Fix: correct the export and re-deliver "
                "it; nothing was written."
            )
    return outside_rows(rows_by_file, period, mode, correction_months)
