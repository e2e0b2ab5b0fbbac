"""raw/aws_cur: AWS Cost and Usage Reports per charge day: legacy CUR (CSV or Parquet) from the
assembly each month's manifest currently points at, and CUR 2.0 from AWS Data Exports from the
files the month's export manifest lists."""

import functools
from collections import defaultdict
from datetime import timedelta

import dagster as dg

from finops_assets.contracts.checks import partition_window
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
from finops_assets.defs.sources.aws.load import (
    CUR_ROW_CHECKS,
    StagedFile,
    check_delivery_rows,
    diagnose_type_errors,
    file_rows,
    lineage,
    stage_delivery,
    typed_sql,
    window_sql,
)
from finops_assets.defs.sources.shared import (
    no_deliveries_result,
    raw_asset,
    record_restatement,
    restatement_guard,
)
from finops_assets.lib import run_log
from finops_assets.lib.deliveries import DeliveryError, add_months, month_chunks, month_of
from finops_assets.lib.facts import day_totals_sql
from finops_assets.lib.loading import (
    diagnose_by_file,
    validate_loaded_rows,
)
from finops_assets.lib.period_rows import (
    MonthRows,
    OutsideRows,
    dropped_message,
    money_text,
    outside_period_error,
)
from finops_assets.lib.restatement import Incoming, Measure
from finops_assets.lib.snapshots import SnapshotEntry, replace_snapshot_partitions
from finops_assets.metadata import add_daily_money_metadata
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

RAW_AWS_CUR_TABLE = "raw.aws_cur"
# What the restatement guard compares: the invoice basis of a line item, in its currency.
CUR_MEASURE = Measure(
    billed="coalesce(line_item_net_unblended_cost, line_item_unblended_cost, 0)",
    currency="line_item_currency_code",
)
run_log.register_measure("raw.aws_cur", CUR_MEASURE.billed, CUR_MEASURE.currency)


def build(ctx: DefsContext) -> dg.Definitions:
    @raw_asset(
        ctx,
        "aws_cur",
        kinds={"duckdb", "aws"},
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
        loaded_rules = rules.load()
        correction_months = loaded_rules.correction_months
        outside_mode = loaded_rules.deliveries.rows_outside_period
        guard = restatement_guard(context, CUR_MEASURE, rules.load())
        reports, broken, any_cur = discover_cur(landing)
        exports, broken_exports = discover_data_exports(landing)
        cur2_exports = [e for e in exports if e.kind == "cur2"]
        broken += broken_exports
        if not any_cur and not cur2_exports and not broken_exports:
            return no_deliveries_result(
                context, warehouse, RAW_AWS_CUR_TABLE, days, landing.url(CUR_ROOT)
            )
        deliveries: list[CurDelivery | DataExportDelivery] = [*reports, *cur2_exports]
        zone = warehouse.raw_zone(RAW_AWS_CUR_TABLE)
        used: dict[str, list[str]] = defaultdict(list)
        skipped_empty: list[str] = []
        rows_by_file: dict[str, list[MonthRows]] = {}  # every row of a file, counted once a run
        outside: dict[str, OutsideRows] = {}
        for chunk in month_chunks(days):
            month = month_of(chunk[0])
            # Refunds and credits for this month can be billed in the next months' reports; with
            # rows_outside_period = load, rows of the previous months' reports dated in this month
            # are read too (default.yaml says what each mode does).
            periods = {add_months(month, k) for k in range(correction_months + 1)}
            if outside_mode == "load":
                periods |= {add_months(month, -k) for k in range(1, correction_months + 1)}
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
            for delivery in month_deliveries:
                if isinstance(delivery, CurDelivery) and delivery.not_ready:
                    raise dg.Failure(
                        f"Not loading {chunk[0]}..{chunk[1]}: {CUR_ROOT}/{delivery.report} "
                        f"billing period {delivery.billing_period} (delivery "
                        f"{delivery.assembly_id}) is not ready: {delivery.not_ready}."
                    )
            keys = [f.key for d in month_deliveries for f in d.files]
            describe = {key: landing.url(key) for key in keys}
            with landing.local_files(keys) as paths, warehouse.get_connection() as con:
                per_file: dict[str, str] = {}
                entries: list[SnapshotEntry] = []
                month_staged: list[StagedFile] = []
                month_outside: list[OutsideRows] = []
                for delivery in month_deliveries:
                    delivery_id, dataset = lineage(delivery)
                    context.log.info(
                        f"{month}: {dataset} billing period {delivery.billing_period}, delivery "
                        f"{delivery_id} ({len(delivery.files)} file(s))"
                    )
                    staged = stage_delivery(con, delivery, paths, describe, zone)
                    month_staged += staged
                    entries += [
                        SnapshotEntry(f.snapshot, typed_sql(f, delivery), chunk[0], chunk[1])
                        for f in staged
                    ]
                    for file in staged:
                        if file.key not in rows_by_file:
                            rows_by_file[file.key] = file_rows(con, file, describe[file.key])
                    month_outside += check_delivery_rows(
                        delivery,
                        {file.key: rows_by_file[file.key] for file in staged},
                        describe,
                        outside_mode,
                        correction_months,
                        staged[0].layout.flavour if staged else "athena",
                    )
                    per_file.update({f.key: window_sql(f, delivery, chunk) for f in staged})
                if month_outside and outside_mode != "drop":
                    raise outside_period_error(
                        month_outside, describe, outside_mode, correction_months
                    )
                for found in month_outside:
                    if found.key not in outside:
                        outside[found.key] = found
                        context.log.warning(
                            dropped_message(found, describe[found.key], "unblended")
                        )
                chunk_days = [
                    chunk[0] + timedelta(days=i) for i in range((chunk[1] - chunk[0]).days + 1)
                ]
                guard.replace_partitions(
                    con,
                    RAW_AWS_CUR_TABLE,
                    "\n UNION ALL BY NAME \n".join(per_file.values()),
                    chunk_days,
                    writer=functools.partial(
                        replace_snapshot_partitions,
                        table=RAW_AWS_CUR_TABLE,
                        zone=zone,
                        entries=entries,
                        days=chunk_days,
                    ),
                    validate=lambda con, chunk=chunk, describe=describe: validate_loaded_rows(
                        con, RAW_AWS_CUR_TABLE, chunk, describe, CUR_ROW_CHECKS
                    ),
                    describe_error=functools.partial(
                        _explain_failed_write,
                        files=month_staged,
                        per_file=per_file,
                        describe=describe,
                    ),
                    incoming=[
                        Incoming(lineage(d)[1], d.billing_period, lineage(d)[0])
                        for d in month_deliveries
                    ],
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
        record_restatement(context, guard)
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
                "rows_outside_period": dg.MetadataValue.int(sum(o.rows for o in outside.values())),
                "rows_outside_period_unblended": dg.MetadataValue.text(
                    money_text(outside.values())
                ),
            }
        )

    return definitions_of(raw_aws_cur)


def _explain_failed_write(con, error, *, files, per_file, describe) -> DeliveryError | None:
    """A failed write blamed on a file: the values its strict casts reject (column as delivered,
    samples, rows), else the engine's message for the first file that fails alone."""
    if isinstance(error, DeliveryError):
        return None
    return diagnose_type_errors(con, files, describe) or diagnose_by_file(con, per_file, describe)
