"""raw/focus: FOCUS exports from any producer, loaded per charge day from complete deliveries."""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb

from finops_assets.contracts.checks import partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.aws.deliveries import discover_data_exports
from finops_assets.defs.sources.focus.deliveries import (
    claimed_days_without_rows,
    delivery_days,
    discover_deliveries,
    export_as_focus_delivery,
    select_month_deliveries,
)
from finops_assets.defs.sources.focus.load import (
    outside_period_rows,
    refuse_incomplete_days,
    refuse_recency_incomplete_days,
    typed_select,
)
from finops_assets.defs.sources.shared import (
    no_deliveries_result,
    raw_asset,
    record_restatement,
    restatement_guard,
)
from finops_assets.lib.deliveries import DeliveryError, add_months, month_chunks, month_of
from finops_assets.lib.focus import KEPT_WHEN_EMPTY
from finops_assets.lib.loading import (
    SourceFile,
    diagnose_file_errors,
    probe_file,
    validate_loaded_rows,
)
from finops_assets.lib.period_rows import (
    OutsideRows,
    dropped_message,
    money_text,
    outside_period_error,
)
from finops_assets.lib.restatement import FOCUS_MEASURE, Incoming
from finops_assets.metadata import add_daily_money_metadata
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

RAW_FOCUS_TABLE = "raw.focus"


def report_empty_focus_columns(
    context: dg.AssetExecutionContext, warehouse: Warehouse, days: tuple[date, date]
) -> dict[date, dict[str, dg.MetadataValue]]:
    """Count rows that lack a FOCUS-mandatory column we tolerate (KEPT_WHEN_EMPTY), per day."""
    any_empty = " OR ".join(f"{c} IS NULL" for c in KEPT_WHEN_EMPTY)
    per_column = ", ".join(f"count_if({c} IS NULL)" for c in KEPT_WHEN_EMPTY)
    rows = warehouse.query(
        f"SELECT charge_date, count_if({any_empty}), {per_column} FROM {RAW_FOCUS_TABLE} "
        "WHERE charge_date BETWEEN ? AND ? GROUP BY 1",
        [days[0], days[1]],
    ).to_pylist()
    totals = dict.fromkeys(KEPT_WHEN_EMPTY, 0)
    extra = {}
    for row in rows:
        values = list(row.values())
        extra[values[0]] = {"rows_with_empty_focus_columns": dg.MetadataValue.int(int(values[1]))}
        for column, count in zip(KEPT_WHEN_EMPTY, values[2:], strict=True):
            totals[column] += int(count)
    if any(totals.values()):
        context.log.warning(
            "Rows kept although FOCUS requires these columns to be filled: "
            + ", ".join(f"{c} empty in {n}" for c, n in totals.items() if n)
        )
    return extra


def build(ctx: DefsContext) -> dg.Definitions:
    @raw_asset(
        ctx,
        "focus",
        kinds={"duckdb", "parquet", "csv"},
        description=(
            "FOCUS export rows for each charge day, from the newest complete delivery of every "
            "provider dataset (any folder layout), typed, with the delivery and file each row "
            "came from."
        ),
    )
    def raw_focus(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        warehouse: Warehouse,
        rules: RulesResource,
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        loaded_rules = rules.load()
        correction_months = loaded_rules.correction_months
        outside_mode = loaded_rules.deliveries.rows_outside_period
        guard = restatement_guard(context, FOCUS_MEASURE, loaded_rules)
        surveyed = discover_deliveries(landing, loaded_rules, datetime.now(UTC))
        complete, broken = list(surveyed.complete), surveyed.broken
        for waiting in surveyed.waiting:
            context.log.info(
                f"Not loaded yet: {waiting.where} ({waiting.provider}/{waiting.dataset} billing "
                f"period {waiting.billing_period}): {waiting.reason}."
            )
        exports, broken_exports = discover_data_exports(landing)
        complete += [export_as_focus_delivery(e) for e in exports if e.kind == "focus"]
        if not complete and not broken and not broken_exports and not surveyed.waiting:
            return no_deliveries_result(
                context, warehouse, RAW_FOCUS_TABLE, days, landing.url("focus")
            )
        used: set[str] = set()
        empty_days: list[str] = []
        unloaded: list[str] = []  # deliveries whose files carry days the load did not store
        files_loaded = 0
        outside: dict[str, OutsideRows] = {}  # per file, counted once a run
        checked: set[tuple[tuple[str, str], str]] = set()
        for chunk in month_chunks(days):
            periods = {add_months(month_of(chunk[0]), k) for k in range(correction_months + 1)}
            for period, error in broken_exports:
                if period in periods:
                    raise error
            deliveries = select_month_deliveries(
                month_of(chunk[0]),
                complete,
                broken,
                correction_months,
                earlier=correction_months if outside_mode == "load" else 0,
            )
            if not deliveries:
                waiting = "; ".join(f"{w.where}: {w.reason}" for w in surveyed.waiting[:3])
                raise dg.Failure(
                    f"No complete FOCUS delivery covers {chunk[0]}..{chunk[1]} under "
                    f"{landing.url('focus')} (expected FOCUS files with billing period "
                    f"{month_of(chunk[0])} under focus/<provider>/<dataset>/, settled or marked "
                    "complete, or billing_period=YYYY-MM/<delivery_id>/ with a manifest.json)."
                    + (f" Waiting: {waiting}." if waiting else "")
                    + " Wait for the provider's export, or check FINOPS_LANDING_URL.",
                )
            claimed = [(d, delivery_days(landing, d)[0]) for d in deliveries]
            refuse_recency_incomplete_days(claimed, chunk)
            for d in deliveries:
                context.log.info(
                    f"{chunk[0]}..{chunk[1]}: using delivery {d.delivery_id} of {d.provider}/{d.dataset} "
                    f"billing period {d.billing_period} ({len(d.files)} file(s), created {d.created_at:%Y-%m-%d %H:%M}Z)"
                )
            keys = [f.key for d in deliveries for f in d.files]
            with landing.local_files(keys) as paths, warehouse.get_connection() as con:
                describe = {key: landing.url(key) for key in keys}
                selects, sources, delivered = [], [], []
                month_outside: list[OutsideRows] = []
                for d, claimed_days in claimed:
                    by_format: dict[str, list[SourceFile]] = defaultdict(list)
                    for f in d.files:
                        by_format[f.format].append(
                            probe_file(con, f.key, paths[f.key], f.format, describe[f.key])
                        )
                    whole = []
                    for files in by_format.values():
                        selects.append(typed_select(files, d, chunk))
                        whole.append(typed_select(files, d, (date.min, date.max)))
                        sources.extend(files)
                    delivered += whole
                    if (d.stream, d.delivery_id) not in checked:
                        checked.add((d.stream, d.delivery_id))
                        month_outside += outside_period_rows(
                            con,
                            d,
                            "\n UNION ALL BY NAME \n".join(whole),
                            claimed_days,
                            outside_mode,
                            correction_months,
                        )
                if month_outside and outside_mode != "drop":
                    raise outside_period_error(
                        month_outside,
                        describe,
                        outside_mode,
                        correction_months,
                        measure="BilledCost",
                        what="export",
                    )
                for found in month_outside:
                    outside[found.key] = found
                    context.log.warning(dropped_message(found, describe[found.key], "BilledCost"))
                select_sql = "\n UNION ALL BY NAME \n".join(selects)

                def describe_error(
                    con: duckdb.DuckDBPyConnection,
                    error: Exception,
                    sources=sources,
                    describe=describe,
                ) -> Exception | None:
                    if isinstance(error, DeliveryError):
                        return None
                    return diagnose_file_errors(con, sources, describe)

                write = guard.replace_partitions(
                    con,
                    RAW_FOCUS_TABLE,
                    select_sql,
                    [chunk[0] + timedelta(days=i) for i in range((chunk[1] - chunk[0]).days + 1)],
                    validate=lambda con, chunk=chunk, describe=describe: (
                        validate_loaded_rows(con, RAW_FOCUS_TABLE, chunk, describe),
                        refuse_incomplete_days(con, RAW_FOCUS_TABLE, chunk, describe),
                    ),
                    describe_error=describe_error,
                    incoming=[
                        Incoming(f"{d.provider}/{d.dataset}", d.billing_period, d.delivery_id)
                        for d in deliveries
                    ],
                    delivered_sql="\n UNION ALL BY NAME \n".join(delivered),
                )
                stored = con.execute(
                    "SELECT DISTINCT x_Dataset, x_DeliveryId, charge_date FROM raw.focus "
                    "WHERE charge_date BETWEEN ? AND ?",
                    [chunk[0], chunk[1]],
                ).fetchall()
                loaded_days = {row[2] for row in stored}
            if write is not None:
                by_delivery: dict[tuple[str, str], set[date]] = defaultdict(set)
                for dataset, delivery_id, day in stored:
                    by_delivery[(dataset, delivery_id)].add(day)
                for d, claimed_days in claimed:
                    missing = claimed_days_without_rows(
                        claimed_days,
                        by_delivery.get((f"{d.provider}/{d.dataset}", d.delivery_id), ()),
                        chunk,
                    )
                    if missing:
                        line = (
                            f"Delivery {d.delivery_id} of {d.provider}/{d.dataset} (billing period "
                            f"{d.billing_period}) claims {len(missing)} charge day(s) its files "
                            f"carry rows for, but the load stored none of its rows for them: "
                            f"{', '.join(x.isoformat() for x in missing[:10])}"
                            f"{' ...' if len(missing) > 10 else ''}. Files: "
                            + ", ".join(landing.url(f.key) for f in d.files[:5])
                            + ". The files changed during the load, or ChargePeriodStart / "
                            "BillingPeriodStart read differently; re-run the days, and check the "
                            "files if it happens again."
                        )
                        unloaded.append(line)
                        context.log.warning(line)
            files_loaded += len(keys)
            used.update(d.delivery_id for d in deliveries if write is not None)
            if write is not None and write.schema_change.added_columns:
                context.log.info(f"raw.focus gained columns {write.schema_change.added_columns}")
            day = chunk[0]
            while day <= chunk[1]:
                if day not in loaded_days:
                    empty_days.append(day.isoformat())
                    context.log.warning(
                        f"{day}: the deliveries covering it have no charges for this day; the "
                        "partition is stored empty."
                    )
                day += timedelta(days=1)
        record_restatement(context, guard)
        add_daily_money_metadata(
            context,
            warehouse.partition_totals(RAW_FOCUS_TABLE, days),
            days,
            extra=report_empty_focus_columns(context, warehouse, days),
        )
        return dg.MaterializeResult(
            metadata={
                "deliveries": dg.MetadataValue.text(", ".join(sorted(used))),
                "files": dg.MetadataValue.int(files_loaded),
                "empty_days": dg.MetadataValue.int(len(empty_days)),
                "deliveries_with_unloaded_days": dg.MetadataValue.int(len(unloaded)),
                "rows_outside_period": dg.MetadataValue.int(sum(o.rows for o in outside.values())),
                "rows_outside_period_billed": dg.MetadataValue.text(money_text(outside.values())),
                "unloaded_claimed_days": dg.MetadataValue.md("\n\n".join(unloaded) or "(none)"),
            }
        )

    return definitions_of(raw_focus)
