"""raw/aws_cur: AWS Cost and Usage Reports per charge day: legacy CUR (CSV or Parquet) from the
assembly each month's manifest currently points at, and CUR 2.0 from AWS Data Exports from the
files the month's export manifest lists."""

from collections import defaultdict
from datetime import date, timedelta

import dagster as dg
import duckdb

from finops_assets.contracts.checks import WAREHOUSE_POOL, partition_window
from finops_assets.defs.sources.focus.assets import month_chunks
from finops_assets.defs.sources.shared import discover_data_exports, no_deliveries_result
from finops_assets.freshness import freshness_policy
from finops_assets.lib import warehouse as wh
from finops_assets.lib.aws_cur import (
    CurFormatError,
    cur_basis_totals_sql,
    cur_invoice_status_sql,
    cur_staging_select,
    resolve_cur_layout,
)
from finops_assets.lib.deliveries import (
    EXPORT_ROOT,
    CurDelivery,
    DataExportDelivery,
    DeliveryError,
    add_months,
    find_cur_manifests,
    month_of,
    parse_cur_manifest,
)
from finops_assets.lib.facts import day_totals_sql
from finops_assets.lib.focus_load import (
    ISO_CURRENCIES,
    describe_file,
    diagnose_by_file,
    reader_sql,
    sql_list,
    sql_literal,
    validate_loaded_rows,
)
from finops_assets.metadata import add_daily_money_metadata
from finops_assets.partitions import daily_partitions
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

RAW_AWS_CUR_TABLE = "raw.aws_cur"
CUR_ROOT = "aws-cur"

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


def discover_cur(
    landing: LandingZone,
) -> tuple[list[CurDelivery], list[tuple[str, DeliveryError]], bool]:
    """Current CUR deliveries, manifests that cannot be loaded (billing period, error), and
    whether the landing zone carries CUR reports at all."""
    objects = landing.list(CUR_ROOT)
    present = {o.key: o for o in objects}
    deliveries, broken = [], []
    for manifest in find_cur_manifests(objects):
        try:
            deliveries.append(
                parse_cur_manifest(
                    manifest, landing.read_bytes(manifest.key), present, landing.url(manifest.key)
                )
            )
        except DeliveryError as error:
            start = manifest.key.split("/")[2][:6]
            broken.append((f"{start[:4]}-{start[4:6]}", error))
    return deliveries, broken, bool(objects)


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


@dg.asset(
    key=["raw", "aws_cur"],
    freshness_policy=freshness_policy("aws_cur"),
    group_name="raw",
    kinds={"duckdb", "aws"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    description=(
        "AWS Cost and Usage Report line items for each charge day (legacy CUR and CUR 2.0 Data "
        "Exports), from the files the month's manifest currently points at (AWS rebuilds the "
        "whole month; older assemblies are ignored), typed, with tags as JSON and the delivery "
        "and file each row came from."
    ),
)
def raw_aws_cur(
    context: dg.AssetExecutionContext,
    landing: LandingZone,
    warehouse: Warehouse,
    rules: RulesResource,
) -> dg.MaterializeResult:
    days = partition_window(context)
    correction_months = rules.load().correction_months
    reports, broken, any_cur = discover_cur(landing)
    exports, broken_exports = discover_data_exports(landing)
    cur2_exports = [e for e in exports if e.kind == "cur2"]
    broken += broken_exports
    if not any_cur and not cur2_exports and not broken_exports:
        return no_deliveries_result(
            context, warehouse, RAW_AWS_CUR_TABLE, days, landing.url(CUR_ROOT)
        )
    deliveries: list[CurDelivery | DataExportDelivery] = [*reports, *cur2_exports]
    used: dict[str, list[str]] = defaultdict(list)
    skipped_empty: list[str] = []
    for chunk in month_chunks(days):
        month = month_of(chunk[0])
        # Refunds and credits for this month can be billed in the next months' reports.
        periods = {add_months(month, k) for k in range(correction_months + 1)}
        for period, error in broken:
            if period in periods:
                raise error
        month_deliveries = [d for d in deliveries if d.billing_period in periods]
        if not any(d.billing_period == month for d in month_deliveries):
            raise dg.Failure(
                f"No CUR manifest covers {month} under {landing.url(CUR_ROOT)} (expected "
                f"aws-cur/<report>/{month.replace('-', '')}01-..../<report>-Manifest.json) or "
                f"{landing.url(EXPORT_ROOT)} (expected <export>/metadata/BILLING_PERIOD={month}/"
                "<export>-Manifest.json). Wait for AWS's next delivery, or check "
                "FINOPS_LANDING_URL."
            )
        keys = [f.key for d in month_deliveries for f in d.files]
        describe = {key: landing.url(key) for key in keys}
        with landing.local_files(keys) as paths, warehouse.get_connection() as con:
            per_file: dict[str, str] = {}
            for delivery in month_deliveries:
                delivery_id, dataset = lineage(delivery)
                context.log.info(
                    f"{month}: {dataset} billing period {delivery.billing_period}, delivery "
                    f"{delivery_id} ({len(delivery.files)} file(s))"
                )
                per_file.update(staging_sql(con, delivery, paths, describe, chunk))
            wh.replace_partitions(
                con,
                RAW_AWS_CUR_TABLE,
                "\n UNION ALL BY NAME \n".join(per_file.values()),
                [chunk[0] + timedelta(days=i) for i in range((chunk[1] - chunk[0]).days + 1)],
                validate=lambda con, chunk=chunk, describe=describe: validate_loaded_rows(
                    con, RAW_AWS_CUR_TABLE, chunk, describe, CUR_ROW_CHECKS
                ),
                describe_error=lambda con, error, per_file=per_file, describe=describe: (
                    None
                    if isinstance(error, DeliveryError)
                    else diagnose_by_file(con, per_file, describe)
                ),
            )
        for delivery in month_deliveries:
            delivery_id, dataset = lineage(delivery)
            if delivery_id not in used[dataset]:
                used[dataset].append(delivery_id)
            if isinstance(delivery, DataExportDelivery) and delivery.skipped_empty:
                skipped_empty.extend(delivery.skipped_empty)
                context.log.warning(
                    f"{dataset} {delivery.billing_period}: skipped zero-byte leftover file(s) "
                    + ", ".join(delivery.skipped_empty)
                )
    # Per day: the report's own invoice basis (unblended, split rows excluded) and amortized basis.
    # Month finality: a day is final once AWS has invoiced it (bill/InvoiceId on every row).
    invoice_status = {
        row["charge_date"]: {
            "invoice_final": dg.MetadataValue.bool(bool(row["final"])),
            "invoice_ids": dg.MetadataValue.text(row["invoices"] or ""),
        }
        for row in warehouse.query(cur_invoice_status_sql(RAW_AWS_CUR_TABLE, days)).to_pylist()
    }
    add_daily_money_metadata(
        context,
        warehouse.totals(day_totals_sql(cur_basis_totals_sql(RAW_AWS_CUR_TABLE, days))),
        days,
        extra=invoice_status,
    )
    return dg.MaterializeResult(
        metadata={
            "assemblies": dg.MetadataValue.text(
                "; ".join(f"{d}: {', '.join(ids)}" for d, ids in sorted(used.items()))
            ),
            "zero_byte_files_skipped": dg.MetadataValue.int(len(set(skipped_empty))),
        }
    )
