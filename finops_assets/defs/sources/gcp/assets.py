"""raw/gcp_billing: the Google Cloud Billing export per usage day, from the dumps in the landing
zone (gcp/<billing_account>/usage_date=YYYY-MM-DD/*.parquet, or newline-delimited *.json[.gz])
or straight from the BigQuery export table when the rules name one (gcp.bigquery_table)."""

import re
from datetime import date, datetime

import dagster as dg
import duckdb
import pyarrow as pa
from dagster_gcp import BigQueryResource

from finops_assets.contracts.checks import partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.gcp.billing_export import (
    GcpFormatError,
    bigquery_days_query,
    check_export_columns,
    check_ndjson_columns,
    gcp_basis_totals_sql,
    gcp_staging_select,
    latest_dump_rows_sql,
    ndjson_presence_sql,
    ndjson_reader_sql,
)
from finops_assets.defs.sources.gcp.deliveries import (
    GCP_ROOT,
    LAYOUT,
    GcpDumpFile,
    find_gcp_dump_files,
    ndjson_error,
)
from finops_assets.defs.sources.shared import (
    no_deliveries_result,
    raw_asset,
    record_restatement,
    restatement_guard,
)
from finops_assets.lib import run_log
from finops_assets.lib import warehouse as wh
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.facts import day_totals_sql
from finops_assets.lib.loading import (
    ISO_CURRENCIES,
    describe_file,
    reader_sql,
    sql_list,
    sql_literal,
    validate_loaded_rows,
)
from finops_assets.lib.restatement import Incoming, Measure, RestatementGuard
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

RAW_GCP_BILLING_TABLE = "raw.gcp_billing"
BIGQUERY_ROWS_VIEW = "gcp_bigquery_rows"
# What the restatement guard compares: cost net of credits, in the export's currency.
GCP_MEASURE = Measure(
    billed="coalesce(cost, 0) + coalesce(list_sum(list_transform(credits, lambda c: c.amount)), 0)",
    currency="currency",
)
run_log.register_measure("raw.gcp_billing", GCP_MEASURE.billed, GCP_MEASURE.currency)

# Rows an export must never carry (checked inside the write transaction, per file).
GCP_ROW_CHECKS = (
    ("billing_account_id IS NULL", "billing_account_id", "is empty"),
    ("cost IS NULL", "cost", "is empty"),
    ("usage_start_time IS NULL", "usage_start_time", "is empty"),
    ("usage_end_time IS NULL", "usage_end_time", "is empty"),
    ("export_time IS NULL", "export_time", "is empty"),
    (
        f"currency IS NULL OR currency NOT IN (SELECT unnest({sql_list(ISO_CURRENCIES)}))",
        "currency",
        "is not an ISO 4217 currency code",
    ),
    (
        "invoice_month IS NULL OR NOT regexp_full_match(invoice_month, '\\d{6}')",
        "invoice_month",
        "(invoice.month) is not a YYYYMM month",
    ),
    # A credit whose amount is missing is money we cannot place: refuse it rather than count 0.
    (
        "list_bool_or(list_transform(credits, lambda c: c.amount IS NULL))",
        "credits",
        "holds a credit without an amount (credits.amount is empty)",
    ),
    (
        "x_UsageDateFolder IS NOT NULL AND charge_date <> x_UsageDateFolder",
        "usage_start_time",
        "is not on its folder's usage_date (UTC); dump with "
        "WHERE DATE(usage_start_time) = <day> (BigQuery dates are UTC)",
    ),
    (
        "starts_with(x_Dataset, 'gcp/') AND x_Dataset <> 'gcp/' || billing_account_id",
        "billing_account_id",
        "does not match its gcp/<billing_account>/ folder",
    ),
)


def _staged_file_sql(
    con: duckdb.DuckDBPyConnection, file: GcpDumpFile, path: str, where: str, policy: str
) -> str:
    try:
        if file.format == "ndjson":
            # The export's documented schema, not types guessed from the first lines; one pass
            # finds the columns no line carries (and a malformed line, before anything is written).
            reader = ndjson_reader_sql([path])
            presence, checked = ndjson_presence_sql(reader)
            try:
                described_file = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
                counts = con.execute(presence).fetchone()
            except duckdb.Error as error:
                raise ndjson_error(error, path, where) from None
            columns = {row[0]: row[1] for row in described_file}
            check_ndjson_columns(counts, checked, where)
        else:
            reader = reader_sql("parquet", [path])
            columns = describe_file(con, path, "parquet", where)
            check_export_columns(columns, where)
    except GcpFormatError as error:
        raise DeliveryError(str(error)) from None
    source = (
        f"(SELECT *, {sql_literal(file.delivery_id)} AS x_DeliveryId, "
        f"{sql_literal(file.key)} AS x_SourceFile, {sql_literal(file.dataset)} AS x_Dataset, "
        f"DATE '{file.usage_date.isoformat()}' AS x_UsageDateFolder, "
        f"{sql_literal(file.dump)} AS x_Dump "
        f"FROM {reader})"
    )
    described = {
        **columns,
        "x_DeliveryId": "VARCHAR",
        "x_SourceFile": "VARCHAR",
        "x_Dataset": "VARCHAR",
        "x_UsageDateFolder": "DATE",
        "x_Dump": "VARCHAR",
    }
    return gcp_staging_select(source, described, policy)


def _final_select(staged: list[str]) -> str:
    """Merge dumps (each export_time batch once), add x_BillingPeriod; drop loader helpers."""
    merged = latest_dump_rows_sql("\n UNION ALL BY NAME \n".join(staged))
    return f"""
        SELECT * EXCLUDE (x_Dump),
               substr(invoice_month, 1, 4) || '-' || substr(invoice_month, 5, 2)
                   AS x_BillingPeriod
        FROM ({merged})
    """


def diagnose_files(
    con: duckdb.DuckDBPyConnection, staged: dict[str, str], describe: dict[str, str]
) -> DeliveryError | None:
    """After a failed load: evaluate every column of each file's staging alone (a plain count
    would let the engine skip the casts) and blame the first file that fails."""
    for key, sql in staged.items():
        try:
            con.execute(
                f"SELECT count(*) FROM ({sql}) WHERE hash(COLUMNS(*)) IS NOT NULL"
            ).fetchall()
        except duckdb.Error as error:
            # The engine names the local copy it read; the landing URL is named instead.
            reason = re.sub(r' in file "[^"]*"', "", str(error).splitlines()[0])
            return DeliveryError(
                f"{describe.get(key, key)}: {reason}. Fix: correct the export "
                "(numbers must be numbers, e.g. credits.amount) or re-run the dump; nothing was "
                "written."
            )
    return None


def _write(
    con: duckdb.DuckDBPyConnection,
    days: tuple[date, date],
    staged: dict[str, str],
    describe: dict[str, str],
    guard: RestatementGuard,
    incoming: list[Incoming] | None = None,
) -> wh.PartitionWrite | None:
    # x_UsageDateFolder stays in raw (NULL for BigQuery rows): the validation compares it.
    return guard.replace_partitions(
        con,
        RAW_GCP_BILLING_TABLE,
        _final_select(list(staged.values())),
        days_between(days),
        validate=lambda con: validate_loaded_rows(
            con, RAW_GCP_BILLING_TABLE, days, describe, GCP_ROW_CHECKS
        ),
        describe_error=lambda con, error: (
            None if isinstance(error, DeliveryError) else diagnose_files(con, staged, describe)
        ),
        incoming=incoming or (),
    )


def load_from_landing(
    context: dg.AssetExecutionContext,
    landing: LandingZone,
    warehouse: Warehouse,
    days: tuple[date, date],
    policy: str,
    files: list[GcpDumpFile],
    guard: RestatementGuard,
) -> list[str]:
    """Load the window's days from the dumps; returns the dumps used."""
    wanted = set(days_between(days))
    day_files = [f for f in files if f.usage_date in wanted]
    missing = sorted(wanted - {f.usage_date for f in day_files})
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise dg.Failure(
            f"No GCP billing dump for usage day(s) {shown} under {landing.url(GCP_ROOT)} "
            f"(expected {LAYOUT}). Dump those days "
            "from the BigQuery export (see README), or check FINOPS_LANDING_URL."
        )
    keys = [f.key for f in day_files]
    describe = {key: landing.url(key) for key in keys}
    with landing.local_files(keys) as paths, warehouse.get_connection() as con:
        staged = {
            f.key: _staged_file_sql(con, f, paths[f.key], describe[f.key], policy)
            for f in day_files
        }
        incoming = [Incoming(f.dataset, None, f.delivery_id) for f in day_files]
        write = _write(con, days, staged, describe, guard, incoming)
    if write is not None:  # None: held by the restatement guard (recorded by the asset)
        context.log.info(
            f"Loaded {write.rows_inserted} rows from {len(day_files)} file(s) of "
            f"{len({(f.usage_date, f.dump) for f in day_files})} dump(s)."
        )
    return sorted({f.delivery_id for f in day_files})


def fetch_from_bigquery(bigquery: BigQueryResource, table_id: str, days) -> pa.Table:
    query = bigquery_days_query(table_id, days)
    with bigquery.get_client() as client:
        return client.query(query.sql, job_config=query.job_config()).to_arrow()


def load_from_bigquery(
    context: dg.AssetExecutionContext,
    bigquery: BigQueryResource,
    warehouse: Warehouse,
    days: tuple[date, date],
    policy: str,
    table_id: str,
    guard: RestatementGuard,
) -> list[str]:
    """Load the window's days straight from the export table (same staging as the dumps)."""
    rows = fetch_from_bigquery(bigquery, table_id, days)
    context.log.info(f"BigQuery {table_id}: {rows.num_rows} rows for {days[0]}..{days[1]}.")
    where = f"bigquery:{table_id}"
    columns = {field.name: "" for field in rows.schema}
    try:
        check_export_columns(columns, where)
    except GcpFormatError as error:
        raise DeliveryError(str(error)) from None
    with warehouse.get_connection() as con:
        con.register(BIGQUERY_ROWS_VIEW, rows)
        source = (
            f"(SELECT *, {sql_literal(where)} AS x_DeliveryId, {sql_literal(where)} AS x_SourceFile,"
            f" {sql_literal('bigquery/' + table_id)} AS x_Dataset,"
            " CAST(NULL AS DATE) AS x_UsageDateFolder, 'bigquery' AS x_Dump"
            f" FROM {BIGQUERY_ROWS_VIEW})"
        )
        described = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        staged = {where: gcp_staging_select(source, described, policy)}
        _write(con, days, staged, {where: where}, guard)
        con.unregister(BIGQUERY_ROWS_VIEW)
    return [where]


def watermarks_by_day(warehouse: Warehouse, days) -> dict[date, dict[str, dg.MetadataValue]]:
    """Per usage day: the export_time watermark (max over its billing accounts)."""
    rows = warehouse.query(
        f"SELECT charge_date, max(x_ExportWatermark) FROM {RAW_GCP_BILLING_TABLE} "
        "WHERE charge_date BETWEEN ? AND ? GROUP BY 1",
        [days[0], days[1]],
    ).to_pylist()
    out = {}
    for row in rows:
        day, mark = row["charge_date"], row["max(x_ExportWatermark)"]
        if isinstance(mark, datetime):
            out[day] = {
                "export_watermark": dg.MetadataValue.timestamp(mark),
                "export_watermark_iso": dg.MetadataValue.text(mark.isoformat()),
            }
    return out


def build(ctx: DefsContext) -> dg.Definitions:
    @raw_asset(
        ctx,
        "gcp_billing",
        kinds={"duckdb", "gcp"},
        description=(
            "Google Cloud billing export rows for each usage day, typed, with credits, labels and "
            "tags kept; each export batch counted once however often the day was dumped, and the "
            "day's export_time watermark recorded (a moved watermark means the day was restated)."
        ),
    )
    def raw_gcp_billing(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        warehouse: Warehouse,
        rules: RulesResource,
        bigquery: BigQueryResource,
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        settings = rules.load().gcp
        guard = restatement_guard(context, GCP_MEASURE, rules.load())
        if settings.bigquery_table:
            used = load_from_bigquery(
                context,
                bigquery,
                warehouse,
                days,
                settings.promotion_credits,
                settings.bigquery_table,
                guard,
            )
        else:
            objects = landing.list(GCP_ROOT)
            if not objects:
                return no_deliveries_result(
                    context, warehouse, RAW_GCP_BILLING_TABLE, days, landing.url(GCP_ROOT)
                )
            files = find_gcp_dump_files(objects, context.log.info)
            used = load_from_landing(
                context, landing, warehouse, days, settings.promotion_credits, files, guard
            )
        record_restatement(context, guard)
        add_daily_money_metadata(
            context,
            warehouse.totals(day_totals_sql(gcp_basis_totals_sql(RAW_GCP_BILLING_TABLE, days))),
            days,
            extra=watermarks_by_day(warehouse, days),
        )
        return dg.MaterializeResult(
            metadata={
                "deliveries": dg.MetadataValue.text("; ".join(used)),
                "promotion_credits": dg.MetadataValue.text(settings.promotion_credits),
            }
        )

    return definitions_of(raw_gcp_billing)
