"""TODO docstring"""

from datetime import date

import duckdb

from finops_assets.defs.sources.aws.cur import (
    CurFormatError,
    cur_staging_select,
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


def staging_sql(
    con: duckdb.DuckDBPyConnection,
    delivery: CurDelivery | DataExportDelivery,
    paths: dict[str, str],
    describe: dict[str, str],
    days: tuple[date, date],
) -> dict[str, str]:
    """One staging SELECT per file of the delivery (files of one assembly may differ in columns,
    e.g. a tag first used mid-month), each limited to ``days``."""
    delivery_id, dataset = lineage(delivery)
    per_file = {}
    for file in delivery.files:
        columns = describe_file(con, paths[file.key], file.format, describe[file.key])
        try:
            layout = resolve_cur_layout(columns)
        except CurFormatError as error:
            raise DeliveryError(f"{describe[file.key]}: {error}") from None
        source = (
            f"(SELECT *, {sql_literal(delivery_id)} AS x_DeliveryId, "
            f"{sql_literal(file.key)} AS x_SourceFile "
            f"FROM {reader_sql(file.format, [paths[file.key]])})"
        )
        per_file[file.key] = f"""
            SELECT *, {sql_literal(dataset)} AS x_Dataset,
                   {sql_literal(delivery.billing_period)} AS x_BillingPeriod
            FROM ({cur_staging_select(source, layout)})
            WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
        """
    return per_file

