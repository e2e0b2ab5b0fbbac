"""raw/aws_cur: AWS Cost and Usage Reports per charge day: legacy CUR (CSV or Parquet) from the
assembly each month's manifest currently points at, and CUR 2.0 from AWS Data Exports from the
files the month's export manifest lists."""

from collections import defaultdict
from datetime import timedelta

import dagster as dg

from finops_assets.contracts.checks import WAREHOUSE_POOL, partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.aws.cur import (
    cur_basis_totals_sql,
    cur_invoice_status_sql,
)
from finops_assets.defs.sources.aws.deliveries import (
    CUR_ROOT,
    EXPORT_ROOT,
    CurDelivery,
    DataExportDelivery,
    discover_cur,
    discover_data_exports,
)
from finops_assets.defs.sources.aws.load import CUR_ROW_CHECKS, lineage, staging_sql
from finops_assets.defs.sources.focus.assets import month_chunks
from finops_assets.defs.sources.shared import no_deliveries_result
from finops_assets.lib import warehouse as wh
from finops_assets.lib.deliveries import DeliveryError, add_months, month_of
from finops_assets.lib.facts import day_totals_sql
from finops_assets.lib.loading import (
    diagnose_by_file,
    validate_loaded_rows,
)
from finops_assets.metadata import add_daily_money_metadata
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

RAW_AWS_CUR_TABLE = "raw.aws_cur"


def build(ctx: DefsContext) -> dg.Definitions:
    @dg.asset(
        key=["raw", "aws_cur"],
        freshness_policy=ctx.freshness_policy("aws_cur"),
        group_name="raw",
        kinds={"duckdb", "aws"},
        partitions_def=ctx.partitions,
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

    return definitions_of(raw_aws_cur)
