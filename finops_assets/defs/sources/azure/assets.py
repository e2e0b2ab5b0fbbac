"""raw/azure_cost: Azure Cost Management exports (ActualCost + AmortizedCost cost details, or
FocusCost), per charge day, from the newest run of each export and month."""

from datetime import date, datetime

import dagster as dg
import duckdb

from finops_assets.contracts.checks import WAREHOUSE_POOL, partition_window
from finops_assets.defs.sources.focus.assets import month_chunks
from finops_assets.defs.sources.shared import no_deliveries_result
from finops_assets.freshness import freshness_policy
from finops_assets.lib import warehouse as wh
from finops_assets.lib.azure_cost import (
    AzureFormatError,
    azure_basis_totals_sql,
    azure_staging_select,
    resolve_azure_layout,
)
from finops_assets.lib.deliveries import (
    AZURE_ROOT,
    AzureRun,
    AzureScopeMonth,
    DeliveryError,
    azure_run_time,
    azure_scope_months,
    find_azure_manifests,
    month_of,
    newest_azure_runs,
    parse_azure_manifest,
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
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.partitions import daily_partitions
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.warehouse import Warehouse

RAW_AZURE_COST_TABLE = "raw.azure_cost"

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


def discover_azure(
    landing: LandingZone,
) -> tuple[list[AzureRun], list[tuple[str, tuple[str, str], datetime, DeliveryError]], bool]:
    """Complete export runs, manifests that cannot be loaded (month, (scope, export), manifest
    time, error), and whether the landing zone carries Azure exports at all."""
    objects = landing.list(AZURE_ROOT)
    present = {o.key: o for o in objects}
    runs, broken = [], []
    for manifest in find_azure_manifests(objects):
        manifest_bytes = landing.read_bytes(manifest.key)
        try:
            runs.append(
                parse_azure_manifest(manifest, manifest_bytes, present, landing.url(manifest.key))
            )
        except DeliveryError as error:
            _, scope, export, period, _ = manifest.key.split("/", 4)
            month = f"{period[:4]}-{period[4:6]}"
            broken.append((month, (scope, export), azure_run_time(manifest, manifest_bytes), error))
    return runs, broken, bool(objects)


def staging_sql(
    con: duckdb.DuckDBPyConnection,
    scope_month: AzureScopeMonth,
    paths: dict[str, str],
    describe: dict[str, str],
    days: tuple[date, date],
) -> tuple[dict[str, str], dict[str, int]]:
    """One staging SELECT per file of the scope's runs, limited to ``days``, and each file's row
    count (counted here: the manifest's dataRowCount is never trusted)."""
    per_file, counted = {}, {}
    for run in scope_month.runs:
        for file in run.files:
            where = describe[file.key]
            columns = describe_file(con, paths[file.key], file.format, where)
            try:
                layout = resolve_azure_layout(columns, run.export_type)
            except AzureFormatError as error:
                raise DeliveryError(f"{where}: {error}") from None
            reader = reader_sql(file.format, [paths[file.key]])
            counted[file.key] = con.execute(f"SELECT count(*) FROM {reader}").fetchone()[0]
            source = (
                f"(SELECT *, {sql_literal(run.run_id)} AS x_DeliveryId, "
                f"{sql_literal(file.key)} AS x_SourceFile FROM {reader})"
            )
            per_file[file.key] = f"""
                SELECT *, {sql_literal(run.dataset)} AS x_Dataset,
                       {sql_literal(run.billing_period)} AS x_BillingPeriod
                FROM ({azure_staging_select(source, layout, run.export_type, scope_month.cost_basis)})
                WHERE charge_date BETWEEN DATE '{days[0].isoformat()}'
                                      AND DATE '{days[1].isoformat()}'
            """
    return per_file, counted


@dg.asset(
    key=["raw", "azure_cost"],
    freshness_policy=freshness_policy("azure_cost"),
    group_name="raw",
    kinds={"duckdb", "azure"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    description=(
        "Azure Cost Management export rows for each charge day, from the newest run of each "
        "export and month (a newer run restates the whole month): ActualCost and AmortizedCost "
        "cost details (EA or MCA columns) kept side by side for the billed/amortized merge, or "
        "FocusCost rows, typed, with tags as JSON and the run and file each row came from."
    ),
)
def raw_azure_cost(
    context: dg.AssetExecutionContext, landing: LandingZone, warehouse: Warehouse
) -> dg.MaterializeResult:
    days = partition_window(context)
    runs, broken, any_azure = discover_azure(landing)
    if not any_azure:
        return no_deliveries_result(
            context, warehouse, RAW_AZURE_COST_TABLE, days, landing.url(AZURE_ROOT)
        )
    newest = newest_azure_runs(runs)
    used: list[str] = []
    bases: list[str] = []
    row_counts: dict[str, int] = {}
    for chunk in month_chunks(days):
        month = month_of(chunk[0])
        for period, stream, modified, error in broken:
            # A broken run fails its month unless a good run of the same export is newer (an
            # old run whose blobs were cleaned up does not matter any more).
            if period == month and not any(
                r.stream == stream and r.billing_period == month and r.submitted_at > modified
                for r in newest
            ):
                raise error
        scope_months = azure_scope_months(newest, month)
        if not scope_months:
            raise dg.Failure(
                f"No Azure export run covers {month} under {landing.url(AZURE_ROOT)} (expected "
                f"azure/<scope>/<export>/{month.replace('-', '')}01-..../<runId>/manifest.json). "
                "Wait for the export's next run, or check FINOPS_LANDING_URL."
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
                selects, counted = staging_sql(con, scope_month, paths, describe, chunk)
                per_file.update(selects)
                for run in scope_month.runs:
                    rows = sum(counted[f.key] for f in run.files)
                    row_counts[f"{run.scope}/{run.export}/{run.run_id}"] = rows
                    if run.declared_rows is not None and run.declared_rows != rows:
                        context.log.warning(
                            f"{landing.url(run.manifest_key)}: dataRowCount says "
                            f"{run.declared_rows} rows, the files hold {rows}; using the files."
                        )
                    used.append(f"{run.scope}/{run.export} ({run.export_type}): {run.run_id}")
                bases.append(f"{month} {scope_month.scope}: {scope_month.cost_basis}")
            wh.replace_partitions(
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
            )
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
        }
    )
