"""Staging SQL for the files of one scope's month: each file's columns resolved onto the raw
table (``cost_details.resolve_azure_layout``), its rows counted (a header-only classic run counts
0), limited to the days being loaded; and the row checks run inside the write transaction. The
choice of runs is ``deliveries.py``'s, the FOCUS mapping ``cost_details.py``'s."""

from datetime import date

import duckdb

from finops_assets.defs.sources.azure.cost_details import (
    AzureFormatError,
    azure_staging_select,
    resolve_azure_layout,
)
from finops_assets.defs.sources.azure.deliveries import (
    AzureScopeMonth,
)
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.loading import (
    ISO_CURRENCIES,
    describe_file,
    reader_sql,
    sql_list,
    sql_literal,
)
from finops_assets.lib.period_rows import MonthRows, OutsideRows, outside_rows

# Rows an export must never carry (checked inside the write transaction, per file).
AZURE_ROW_CHECKS = (
    (
        "x_ExportType <> 'FocusCost' AND CostInBillingCurrency IS NULL",
        "CostInBillingCurrency",
        "is empty",
    ),
    (
        "x_ExportType = 'FocusCost' AND (BilledCost IS NULL OR EffectiveCost IS NULL)",
        "BilledCost",
        "or EffectiveCost is empty",
    ),
    ("charge_date IS NULL", "Date", "is empty"),
    (
        f"BillingCurrency IS NULL OR BillingCurrency NOT IN (SELECT unnest({sql_list(ISO_CURRENCIES)}))",
        "BillingCurrency",
        "is not an ISO 4217 currency code",
    ),
    (
        "NOT (json_valid(Tags) AND json_type(Tags) = 'OBJECT')",
        "Tags",
        'is neither JSON nor the braces-less form "key": "value",...',
    ),
)


# An export row's own cost in billing currency (FocusCost exports: BilledCost).
AZURE_BILLED_SQL = (
    "CASE WHEN x_ExportType = 'FocusCost' THEN BilledCost ELSE CostInBillingCurrency END"
)


def staging_sql(
    con: duckdb.DuckDBPyConnection,
    scope_month: AzureScopeMonth,
    paths: dict[str, str],
    describe: dict[str, str],
    days: tuple[date, date],
) -> tuple[dict[str, str], dict[str, int], list[OutsideRows]]:
    """One staging SELECT per file of the scope's runs, limited to ``days``, each file's row
    count (counted here: the manifest's dataRowCount is never trusted), and per file the rows
    dated outside its run's month (a month's load reads only that month's runs, so no load would
    place them in a day)."""
    per_file, counted = {}, {}
    outside: list[OutsideRows] = []
    for run in scope_month.runs:
        for file in run.files:
            where = describe[file.key]
            columns = describe_file(con, paths[file.key], file.format, where)
            try:
                layout = resolve_azure_layout(columns, run.export_type)
            except AzureFormatError as error:
                raise DeliveryError(f"{where}: {error}") from None
            reader = reader_sql(file.format, [paths[file.key]])
            source = (
                f"(SELECT *, {sql_literal(run.run_id)} AS x_DeliveryId, "
                f"{sql_literal(file.key)} AS x_SourceFile FROM {reader})"
            )
            staged = f"""
                SELECT *, {sql_literal(run.dataset)} AS x_Dataset,
                       {sql_literal(run.billing_period)} AS x_BillingPeriod
                FROM ({azure_staging_select(source, layout, run.export_type, scope_month.cost_basis)})
            """
            counted[file.key], months = _file_months(con, staged, reader)
            outside += outside_rows({file.key: months}, run.billing_period, "fail", 0)
            per_file[file.key] = f"""
                SELECT * FROM ({staged})
                WHERE charge_date BETWEEN DATE '{days[0].isoformat()}'
                                      AND DATE '{days[1].isoformat()}'
            """
    return per_file, counted, outside


def _file_months(
    con: duckdb.DuckDBPyConnection, staged: str, reader: str
) -> tuple[int, list[MonthRows]]:
    """A file's row count and its rows per charge month and currency (the export's own cost).
    A value the typed read rejects is left to the write, which names it (only the count then)."""
    try:
        rows = con.execute(
            f"""SELECT strftime(charge_date, '%Y-%m'), BillingCurrency, count(*),
                       coalesce(sum({AZURE_BILLED_SQL}), 0), min(charge_date), max(charge_date)
                FROM ({staged}) GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    except duckdb.Error:
        return con.execute(f"SELECT count(*) FROM {reader}").fetchone()[0], []
    months = [MonthRows(*row) for row in rows]
    return sum(m.rows for m in months), months
