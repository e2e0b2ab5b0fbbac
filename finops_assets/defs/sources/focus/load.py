"""FOCUS delivery files to typed ``raw.focus`` rows, without Dagster: the typed SELECT per
delivery and the refusal of days a producer marks incomplete (status column or Recency).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import duckdb

from finops_assets.defs.sources.focus.deliveries import FocusDelivery
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.delivery_watch import RecencyError, recency_incomplete_days
from finops_assets.lib.facts import (
    FOCUS_SOURCE_NAME,
    FactSource,
    cost_facts_sql,
    focus_basis_totals_sql,
)
from finops_assets.lib.focus import (
    COLUMN_SUBSTITUTES,
    FOCUS_COLUMNS,
    MONEY,
    QUANTITY,
    TEXT,
    TIMESTAMP,
)
from finops_assets.lib.loading import (
    PLATFORM_COLUMNS,
    SourceFile,
    reader_sql,
    sql_literal,
)
from finops_assets.lib.period_rows import MonthRows, OutsideRows, outside_rows, placed
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import utc_date, utc_instant, utc_month


def _cast(source: str | None, source_type: str | None, target_type: str) -> str:
    if source is None:
        return f"CAST(NULL AS {target_type})"
    column = q(source)
    if source_type == "VARCHAR" and target_type in (MONEY, QUANTITY, TIMESTAMP):
        return f"CAST(NULLIF(trim({column}), '') AS {target_type})"
    if (
        target_type == TIMESTAMP
        and source_type
        and (source_type == "DATE" or source_type.startswith("TIMESTAMP"))
        and "TIME ZONE" not in source_type
        and source_type != "TIMESTAMPTZ"
    ):
        # FOCUS date/times are UTC: a naive one is read as UTC wall-clock time.
        return utc_instant(f"CAST({column} AS TIMESTAMP)")
    if target_type == TEXT and source_type and source_type.startswith(("MAP(", "STRUCT(")):
        # e.g. Tags as a Parquet map (AWS Data Exports FOCUS): JSON object text.
        return f"CAST(to_json({column}) AS VARCHAR)"
    if target_type == TEXT and source_type != "VARCHAR":
        return f"CAST({column} AS VARCHAR)"
    return f"CAST({column} AS {target_type})"


def typed_select(
    files: Sequence[SourceFile], delivery: FocusDelivery, days: tuple[date, date]
) -> str:
    """One SELECT over one delivery's files of one format, typed to FOCUS, limited to ``days``
    (and, for a manifest-less delivery, to the rows of its billing period)."""
    fmt = files[0].format
    union: dict[str, str] = {}
    for f in files:
        for column, data_type in f.columns.items():
            union.setdefault(column, data_type)
    by_lower = {c.lower(): c for c in union}
    expressions = []
    for column, target_type in FOCUS_COLUMNS.items():
        source = by_lower.get(column.lower())
        if source is None:
            source = next(
                (
                    by_lower[s.lower()]
                    for s in COLUMN_SUBSTITUTES.get(column, ())
                    if s.lower() in by_lower
                ),
                None,
            )
        expressions.append(
            f"{_cast(source, union.get(source) if source else None, target_type)} AS {q(column)}"
        )
    focus_lower = {c.lower() for c in FOCUS_COLUMNS} | {c.lower() for c in PLATFORM_COLUMNS}
    # Producer-specific extra columns are kept as delivered (raw keeps everything).
    for column, _ in union.items():
        if column.lower() not in focus_lower:
            expressions.append(f"{q(column)} AS {q(column)}")
    # The landing key of each row's file. A CASE on the reader's filename column (a literal for
    # one file): joining a VALUES map on it instead made DuckDB carry every wide row through a
    # hash join, about 1.5 s more per million rows.
    if len(files) == 1:
        source_file = sql_literal(files[0].key)
    else:
        source_file = (
            "CASE src.filename "
            + " ".join(f"WHEN {sql_literal(f.path)} THEN {sql_literal(f.key)}" for f in files)
            + " END"
        )
    charge_start = _cast(
        by_lower.get("chargeperiodstart"),
        union.get(by_lower.get("chargeperiodstart", "")),
        TIMESTAMP,
    )
    # A manifest-less delivery is one billing period of its files: only that period's rows.
    billing_filter = (
        f"AND {utc_month('BillingPeriodStart')} = {sql_literal(delivery.billing_period)}"
        if delivery.from_files
        else ""
    )
    return f"""
        SELECT * FROM (
            SELECT {", ".join(expressions)},
                   {utc_date(charge_start)} AS charge_date,
                   {sql_literal(delivery.delivery_id)} AS x_DeliveryId,
                   {source_file} AS x_SourceFile,
                   {sql_literal(delivery.provider + "/" + delivery.dataset)} AS x_Dataset,
                   {sql_literal(delivery.billing_period)} AS x_BillingPeriod
            FROM {reader_sql(fmt, [f.path for f in files])} AS src
        ) WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
        {billing_filter}
    """


def outside_period_rows(
    con: duckdb.DuckDBPyConnection,
    delivery: FocusDelivery,
    delivered_sql: str,
    claimed_days: Sequence[date],
    mode: str,
    correction_months: int,
) -> list[OutsideRows]:
    """Per file, the rows of ``delivery`` (all of them: ``delivered_sql``) dated where no load
    places them (``lib/period_rows.py``), with Σ BilledCost per currency. The files are read
    again only when the charge days the delivery claims say such rows exist."""
    period = delivery.billing_period
    if all(placed(period, f"{d:%Y-%m}", mode, correction_months) for d in claimed_days):
        return []
    rows_by_file: dict[str, list[MonthRows]] = defaultdict(list)
    for key, *row in con.execute(
        f"""SELECT x_SourceFile, strftime(charge_date, '%Y-%m'), BillingCurrency, count(*),
                   coalesce(sum(BilledCost), 0), min(charge_date), max(charge_date)
            FROM ({delivered_sql}) GROUP BY ALL ORDER BY ALL"""
    ).fetchall():
        rows_by_file[key].append(MonthRows(*row))
    return outside_rows(rows_by_file, period, mode, correction_months)


COMPLETION_STATUS_COLUMN = "x_DatasetCompletionStatus"


def refuse_incomplete_days(
    con: duckdb.DuckDBPyConnection, table: str, days: tuple[date, date], describe: dict[str, str]
) -> None:
    """A producer that marks rows ``x_DatasetCompletionStatus = Incomplete`` says the day is not
    final yet: loading it would publish partial cost. Raises (inside the write transaction, so the
    previous data stays) naming the days and files; the delivery sensor never requests them."""
    columns = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
        "AND table_name = ? AND lower(column_name) = lower(?)",
        [*table.split("."), COMPLETION_STATUS_COLUMN],
    ).fetchall()
    if not columns:
        return
    status = q(columns[0][0])
    rows = con.execute(
        f"SELECT charge_date, x_SourceFile, count(*) FROM {table} "
        f"WHERE charge_date BETWEEN ? AND ? "
        f"AND lower(trim(CAST({status} AS VARCHAR))) = 'incomplete' GROUP BY 1, 2 ORDER BY 1, 2",
        [days[0], days[1]],
    ).fetchall()
    if rows:
        listed = "; ".join(
            f"{day} in {describe.get(key, key)} ({count} row(s))" for day, key, count in rows[:5]
        )
        raise DeliveryError(
            f"{COMPLETION_STATUS_COLUMN} marks these days Incomplete: {listed}. They are loaded "
            "once the producer delivers them as Complete; request only the complete days, or "
            f"wait. Nothing was written for {days[0]}..{days[1]}."
        )


FACT_SOURCE = FactSource(
    FOCUS_SOURCE_NAME,
    "raw.focus",
    cost_facts_sql,
    focus_basis_totals_sql,
    "the FOCUS export's own Σ BilledCost / Σ EffectiveCost",
)


def refuse_recency_incomplete_days(
    claimed: Sequence[tuple[FocusDelivery, Sequence[date]]], days: tuple[date, date]
) -> None:
    """FOCUS 1.3 Recency that does not mark a day complete means the producer may still add to
    it: like ``refuse_incomplete_days``, raise before anything is written, naming the days, the
    delivery and the Recency file (the delivery sensor never requests these days)."""
    refused = []
    for delivery, delivery_days in claimed:
        if delivery.recency is None:
            continue
        url, recency_bytes = delivery.recency
        in_window = [d for d in delivery_days if days[0] <= d <= days[1]]
        try:
            incomplete = recency_incomplete_days(recency_bytes, url, in_window)
        except RecencyError as error:
            raise DeliveryError(
                f"{error}. Fix: let the producer rewrite it; until then "
                f"{delivery.provider}/{delivery.dataset} is not loaded."
            ) from None
        refused += [
            f"{day} of {delivery.provider}/{delivery.dataset} (delivery {delivery.delivery_id}): "
            f"{reason} ({url})"
            for day, reason in sorted(incomplete.items())
        ]
    if refused:
        raise DeliveryError(
            "FOCUS Recency metadata does not mark these days complete: "
            + "; ".join(refused[:5])
            + (f" (+{len(refused) - 5} more)" if len(refused) > 5 else "")
            + ". They are loaded once Recency marks them complete; request only the complete "
            f"days, or wait. Nothing was written for {days[0]}..{days[1]}."
        )
