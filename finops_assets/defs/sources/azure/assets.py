"""raw/azure_cost: Azure Cost Management exports (ActualCost + AmortizedCost cost details, or
FocusCost), per charge day, from the newest run of each export and month: a run with its
manifest.json, or a classic export file (no manifest) once it has settled."""

from datetime import UTC, datetime

import dagster as dg

from finops_assets.contracts.checks import partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.azure.cost_details import (
    azure_basis_totals_sql,
)
from finops_assets.defs.sources.azure.deliveries import (
    AZURE_ROOT,
    azure_scope_months,
    discover_azure,
    newest_azure_runs,
    superseded_by,
)
from finops_assets.defs.sources.azure.load import AZURE_BILLED_SQL, AZURE_ROW_CHECKS, staging_sql
from finops_assets.defs.sources.shared import (
    no_deliveries_result,
    raw_asset,
    record_restatement,
    restatement_guard,
)
from finops_assets.lib import run_log
from finops_assets.lib.deliveries import DeliveryError, month_chunks, month_of
from finops_assets.lib.delivery_watch import month_days
from finops_assets.lib.facts import day_totals_sql
from finops_assets.lib.loading import (
    diagnose_by_file,
    validate_loaded_rows,
)
from finops_assets.lib.period_rows import (
    OutsideRows,
    dropped_message,
    money_text,
    outside_period_error,
)
from finops_assets.lib.restatement import Incoming, Measure
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

RAW_AZURE_COST_TABLE = "raw.azure_cost"
# What the restatement guard compares, per export: the export's own cost in billing currency.
AZURE_MEASURE = Measure(
    billed=AZURE_BILLED_SQL,
    currency="BillingCurrency",
)
run_log.register_measure("raw.azure_cost", AZURE_MEASURE.billed, AZURE_MEASURE.currency)


def build(ctx: DefsContext) -> dg.Definitions:
    @raw_asset(
        ctx,
        "azure_cost",
        kinds={"duckdb", "azure"},
        description=(
            "Azure Cost Management export rows for each charge day, from the newest run of each "
            "export and month (a newer run restates the whole month; classic exports without a "
            "manifest once their newest file has settled): ActualCost and AmortizedCost cost "
            "details (EA, MCA or partner columns) kept side by side for the billed/amortized "
            "merge, or "
            "FocusCost rows, typed, with tags as JSON and the run and file each row came from."
        ),
    )
    def raw_azure_cost(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        warehouse: Warehouse,
        rules: RulesResource,
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        loaded_rules = rules.load()
        guard = restatement_guard(context, AZURE_MEASURE, loaded_rules)
        # Classic exports (no manifest) count once their newest file has settled.
        found = discover_azure(landing, loaded_rules.deliveries.settle_minutes, datetime.now(UTC))
        if not found.any_azure:
            return no_deliveries_result(
                context, warehouse, RAW_AZURE_COST_TABLE, days, landing.url(AZURE_ROOT)
            )
        newest = newest_azure_runs(found.runs)
        used: list[str] = []
        bases: list[str] = []
        row_counts: dict[str, int] = {}
        mismatches: dict[str, dict[str, int]] = {}
        outside_mode = loaded_rules.deliveries.rows_outside_period
        dropped: dict[str, OutsideRows] = {}
        for chunk in month_chunks(days):
            month = month_of(chunk[0])
            for broken in found.broken:
                # A broken run fails its month unless a good run of the same export is newer (an
                # old run whose blobs were cleaned up does not matter any more).
                if broken.billing_period == month and superseded_by(broken, newest) is None:
                    raise broken.error
            waiting = [w for w in found.waiting if w.billing_period == month]
            for w in waiting:
                context.log.info(
                    f"{landing.url(w.obj.key)}: classic export file still settling (until "
                    f"{w.settles_at.isoformat()}); the month keeps its previous settled run."
                )
            scope_months = azure_scope_months(newest, month)
            if not scope_months:
                first, *_, last = month_days(month)
                folder = f"{first:%Y%m%d}-{last:%Y%m%d}"
                raise dg.Failure(
                    f"No Azure export run covers {month} under {landing.url(AZURE_ROOT)} (expected "
                    f"azure/<scope>/<export>/{folder}/<runId>/manifest.json, or a classic export "
                    f"file azure/<directory>/<export>/{folder}/<export>_<guid>.csv). "
                    + (
                        f"{len(waiting)} classic file(s) still settling, the first at "
                        f"{min(w.settles_at for w in waiting).isoformat()} "
                        "(deliveries.settle_minutes): they are loaded then."
                        if waiting
                        else "Wait for the export's next run, or check FINOPS_LANDING_URL."
                    )
                )
            keys = [f.key for sm in scope_months for r in sm.runs for f in r.files]
            describe = {key: landing.url(key) for key in keys}
            with landing.local_files(keys) as paths, warehouse.get_connection() as con:
                per_file: dict[str, str] = {}
                for scope_month in scope_months:
                    for ignored in scope_month.ignored:
                        context.log.info(
                            f"{month} {scope_month.scope}: {ignored.export_type} export "
                            f"{ignored.export!r} ignored, the FocusCost export holds both bases."
                        )
                    if scope_month.cost_basis in ("actual_only", "amortized_only"):
                        context.log.warning(
                            f"{month} {scope_month.scope}: only "
                            f"{scope_month.runs[0].export_type} delivered ({scope_month.cost_basis}); "
                            + (
                                "EffectiveCost = BilledCost (purchases are not amortized)."
                                if scope_month.cost_basis == "actual_only"
                                else "commitment purchases are missing from BilledCost."
                            )
                        )
                    selects, counted, outside = staging_sql(
                        con, scope_month, paths, describe, chunk
                    )
                    if outside and outside_mode != "drop":
                        raise outside_period_error(
                            outside,
                            describe,
                            "fail",
                            0,
                            measure="cost",
                            what="export run",
                            window="in their run's own month",
                            fix=(
                                "Fix: export one calendar month per run (a run is loaded for the "
                                "month its runInfo.startDate or date folder names), or set "
                                "deliveries.rows_outside_period to drop in the rules YAML "
                                "(FINOPS_CONFIG); nothing was written."
                            ),
                        )
                    for found in outside:
                        if found.key not in dropped:
                            dropped[found.key] = found
                            context.log.warning(dropped_message(found, describe[found.key], "cost"))
                    per_file.update(selects)
                    for run in scope_month.runs:
                        rows = sum(counted[f.key] for f in run.files)
                        row_counts[f"{run.scope}/{run.export}/{run.run_id}"] = rows
                        if run.declared_rows is not None and run.declared_rows != rows:
                            mismatches[f"{run.scope}/{run.export}/{run.run_id}"] = {
                                "declared": run.declared_rows,
                                "loaded": rows,
                            }
                            context.log.warning(
                                f"{landing.url(run.manifest_key)}: dataRowCount says "
                                f"{run.declared_rows} rows, the files hold {rows}; using the files."
                            )
                        used.append(f"{run.scope}/{run.export} ({run.export_type}): {run.run_id}")
                    bases.append(f"{month} {scope_month.scope}: {scope_month.cost_basis}")
                guard.replace_partitions(
                    con,
                    RAW_AZURE_COST_TABLE,
                    "\n UNION ALL BY NAME \n".join(per_file.values()),
                    days_between(chunk),
                    validate=lambda con, chunk=chunk, describe=describe: validate_loaded_rows(
                        con, RAW_AZURE_COST_TABLE, chunk, describe, AZURE_ROW_CHECKS
                    ),
                    describe_error=lambda con, error, per_file=per_file, describe=describe: (
                        None
                        if isinstance(error, DeliveryError)
                        else diagnose_by_file(con, per_file, describe)
                    ),
                    incoming=[
                        Incoming(r.dataset, r.billing_period, r.run_id)
                        for sm in scope_months
                        for r in sm.runs
                    ],
                )
        record_restatement(context, guard)
        # Per day: the exports' own bases (ActualCost Σ = invoice, AmortizedCost Σ = amortized).
        add_daily_money_metadata(
            context,
            warehouse.totals(day_totals_sql(azure_basis_totals_sql(RAW_AZURE_COST_TABLE, days))),
            days,
        )
        return dg.MaterializeResult(
            metadata={
                "runs": dg.MetadataValue.text("; ".join(dict.fromkeys(used))),
                "cost_basis": dg.MetadataValue.text("; ".join(bases)),
                "single_export_months": dg.MetadataValue.int(
                    sum(1 for b in bases if b.endswith(("actual_only", "amortized_only")))
                ),
                "rows_counted_by_run": dg.MetadataValue.json(row_counts),
                # Runs whose manifest dataRowCount differs from the rows in their files (the
                # files are loaded; ops/pipeline_health counts these as silent zero loads).
                "manifest_row_count_mismatches": dg.MetadataValue.json(mismatches),
                "rows_outside_period": dg.MetadataValue.int(sum(o.rows for o in dropped.values())),
                "rows_outside_period_cost": dg.MetadataValue.text(money_text(dropped.values())),
            }
        )

    return definitions_of(raw_azure_cost)
