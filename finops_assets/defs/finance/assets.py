"""finance/invoices and finance/invoice_reconciliation (monthly partitions: the billing period).

``finance/invoices`` gathers the period's invoice totals from every input that has them: the AWS
Invoicing API for the payer accounts listed under ``finance.aws_invoicing.accounts``, FOCUS 1.4
Invoice Detail exports and the hand-kept ``invoices.csv``, both under the landing zone's
``invoices/`` folder. The same invoice from two inputs is kept once (API, then Invoice Detail,
then the CSV); if they disagree on its amounts the run fails naming both.

``finance/invoice_reconciliation`` compares them with ``core.cost_facts`` (``lib/reconciliation``);
its blocking check ``issued_invoices_match`` fails on an issued invoice outside tolerance.
"""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa

from finops_assets.contracts.checks import WAREHOUSE_POOL, markdown_table
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.lib import invoices as inv
from finops_assets.lib import month_close as mc
from finops_assets.lib import reconciliation as rec
from finops_assets.lib.alerts import DeliveryError
from finops_assets.lib.alerts import send as send_alert
from finops_assets.lib.chargeback import ChargebackQuery, conservation_problems
from finops_assets.lib.completeness import Completeness, SourceDays, loaded_days_sql
from finops_assets.lib.focus import FOCUS_COLUMNS
from finops_assets.lib.report_figures import collect_figures
from finops_assets.lib.report_html import render_report, report_alert, report_figures_index
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

INVOICES = dg.AssetKey(["finance", "invoices"])
RECONCILIATION = dg.AssetKey(["finance", "invoice_reconciliation"])
CHARGEBACK = dg.AssetKey(["finance", "chargeback"])
MONTH_CLOSE = dg.AssetKey(["finance", "month_close"])
MONTHLY_REPORT = dg.AssetKey(["finance", "monthly_report"])
CHARGEBACK_TABLE = "finance.chargeback"
ALLOCATED_TABLE = "core.allocated_costs"
CLOSE_JOB = "close_month"
INVOICES_TABLE = "finance.invoices"
RECONCILIATION_TABLE = "finance.invoice_reconciliation"
COST_FACTS_TABLE = "core.cost_facts"
SOURCE_PRIORITY = {"aws_invoicing_api": 0, "focus_invoice_detail": 1, "invoices_csv": 2}
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def build_monthly_partitions(start_date: str) -> dg.MonthlyPartitionsDefinition:
    """Billing periods from the month of ``start_date`` through the current, still open month."""
    first = date.fromisoformat(start_date).replace(day=1)
    return dg.MonthlyPartitionsDefinition(
        start_date=first.isoformat(), timezone="UTC", end_offset=1
    )


def period_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key[:10]).replace(day=1)


def replace_period(
    con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, period: date
) -> None:
    """Replace one billing period of ``table`` with ``rows`` in one transaction."""
    schema, _ = table.split(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}").fetchall()
    con.register("incoming_rows", rows)
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM incoming_rows LIMIT 0"
        ).fetchall()
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            con.execute(f"DELETE FROM {table} WHERE billing_period = ?", [period]).fetchall()
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows").fetchall()
            con.execute("COMMIT").fetchall()
        except Exception:
            con.execute("ROLLBACK").fetchall()
            raise
    finally:
        con.unregister("incoming_rows")


def _reader(path: str) -> str:
    if path.endswith(".parquet"):
        return f"read_parquet('{path}', union_by_name = true)"
    return f"read_csv('{path}', header = true, all_varchar = true)"


def read_landing_invoices(
    landing: LandingZone, prefix: str, period: date
) -> tuple[list[inv.InvoiceRow], list[str]]:
    """Invoice Detail exports and hand-kept CSVs under ``prefix``, for ``period``; the keys read."""
    keys = sorted(
        o.key for o in landing.list(prefix) if o.key.lower().endswith(DATA_SUFFIXES) and o.size
    )
    rows: list[inv.InvoiceRow] = []
    if not keys:
        return rows, keys
    with landing.local_files(keys) as paths, duckdb.connect() as con:
        for key in keys:
            path = paths[key]
            columns = {c[0] for c in con.sql(f"DESCRIBE SELECT * FROM {_reader(path)}").fetchall()}
            if "InvoiceIssueStatus" in columns or "InvoiceDetailId" in columns:
                missing = [c for c in inv.INVOICE_DETAIL_REQUIRED if c not in columns]
                if missing:
                    raise inv.InvoiceInputError(
                        f"{landing.url(key)}: a FOCUS Invoice Detail file without the mandatory "
                        f"column(s) {', '.join(missing)}; re-export the Invoice Detail dataset."
                    )
                optional = {
                    c: f"NULL AS {c}"
                    for c in ("ReferenceInvoiceId", "InvoiceIssueDate", "PaymentDueDate")
                    if c not in columns
                }
                extra = ", ".join(optional.values())
                relation = (
                    f"(SELECT *{', ' + extra if extra else ''} FROM {_reader(path)} "
                    f"WHERE strftime(BillingPeriodStart::TIMESTAMP, '%Y-%m') = '{period:%Y-%m}')"
                )
                try:
                    records = inv.records(con, inv.invoice_detail_sql(relation))
                except duckdb.Error as error:
                    raise inv.InvoiceInputError(
                        f"{landing.url(key)}: cannot read the Invoice Detail lines ({error}); "
                        "BilledCost must be a number and BillingPeriodStart a date/time."
                    ) from error
                rows += inv.invoice_detail_rows(records, landing.url(key))
            else:
                text = landing.read_bytes(key).decode("utf-8-sig")
                rows += [
                    r
                    for r in inv.invoices_csv_rows(text, landing.url(key))
                    if r.billing_period == period
                ]
    return rows, keys


def merge_sources(rows: list[inv.InvoiceRow]) -> list[inv.InvoiceRow]:
    """One row per invoice: the most authoritative input wins; disagreeing amounts fail."""
    chosen: dict[tuple, inv.InvoiceRow] = {}
    for row in sorted(rows, key=lambda r: SOURCE_PRIORITY[r.source]):
        key = (row.ProviderName, row.BillingAccountId, row.InvoiceId, row.BillingCurrency)
        kept = chosen.get(key)
        if kept is None:
            chosen[key] = row
        elif (kept.pre_tax_amount, kept.tax_amount) != (row.pre_tax_amount, row.tax_amount):
            raise inv.InvoiceInputError(
                f"invoice {row.InvoiceId} of {row.ProviderName} account {row.BillingAccountId}: "
                f"{kept.source} ({kept.x_SourceFile}) says {kept.pre_tax_amount} + tax "
                f"{kept.tax_amount} {row.BillingCurrency}, {row.source} ({row.x_SourceFile}) says "
                f"{row.pre_tax_amount} + tax {row.tax_amount}; correct the hand-kept copy."
            )
    return sorted(chosen.values(), key=lambda r: (r.ProviderName, r.BillingAccountId, r.InvoiceId))


def _lines_frame(lines: list[rec.Line]) -> pd.DataFrame:
    return pd.DataFrame([line.__dict__ for line in lines])


RECONCILIATION_SCHEMA = pa.schema(
    [
        ("ProviderName", pa.string()),
        ("BillingAccountId", pa.string()),
        ("billing_period", pa.date32()),
        ("InvoiceId", pa.string()),
        ("BillingCurrency", pa.string()),
        ("invoice_status", pa.string()),
        ("rows", pa.int64()),
        *[
            (name, inv.MONEY_TYPE)
            for name in (
                "facts_pre_tax",
                "invoice_pre_tax",
                "delta",
                "facts_tax",
                "invoice_tax",
                "tax_delta",
                "tolerance",
            )
        ],
        ("status", pa.string()),
        ("explained_delta", inv.MONEY_TYPE),
        ("unexplained_delta", inv.MONEY_TYPE),
        ("explanation", pa.string()),
        *[
            (name, inv.MONEY_TYPE)
            for name in (
                "rounding_cost",
                "late_usage_cost",
                "other_period_credit_cost",
                "duplicate_cost",
            )
        ],
        ("invoice_sources", pa.string()),
    ]
)


def lines_table(lines: list[rec.Line]) -> pa.Table:
    quantum = Decimal("1e-12")
    columns = {f.name: [] for f in RECONCILIATION_SCHEMA}
    for line in lines:
        for name in columns:
            value = getattr(line, name)
            columns[name].append(value.quantize(quantum) if isinstance(value, Decimal) else value)
    return pa.Table.from_pydict(columns, schema=RECONCILIATION_SCHEMA)


def status_table(lines: list[rec.Line]) -> str:
    if not lines:
        return "(no cost data and no invoices for this billing period)"
    frame = pd.DataFrame(
        [
            {
                "provider": line.ProviderName,
                "account": line.BillingAccountId,
                "invoice": line.InvoiceId,
                "currency": line.BillingCurrency,
                "cost data": f"{line.facts_pre_tax:,.2f}",
                "invoice pre-tax": ""
                if line.invoice_pre_tax is None
                else f"{line.invoice_pre_tax:,.2f}",
                "delta": "" if line.delta is None else f"{line.delta:+,.2f}",
                "tolerance": f"{line.tolerance:,.2f}",
                "status": line.status,
                "explained": line.explanation,
            }
            for line in lines
        ]
    )
    return markdown_table(frame)


def build(ctx: DefsContext) -> dg.Definitions:
    monthly = build_monthly_partitions(ctx.settings.start_date)

    @dg.asset(
        key=INVOICES,
        group_name="finance",
        kinds={"duckdb"},
        partitions_def=monthly,
        pool=WAREHOUSE_POOL,
        description=(
            "Invoice and credit-memo totals per billing period, from the AWS Invoicing API, "
            "FOCUS Invoice Detail exports and the hand-kept invoices.csv."
        ),
    )
    def invoices(
        context: dg.AssetExecutionContext,
        warehouse: Warehouse,
        landing: LandingZone,
        rules: RulesResource,
        aws_invoicing: dg.ResourceParam[object],
    ) -> dg.MaterializeResult:
        period = period_of(context)
        finance = rules.load().finance
        rows, keys = read_landing_invoices(landing, finance.invoices_prefix, period)
        if finance.aws_invoicing.accounts:
            from finops_assets.lib import aws_invoicing as aws

            rows += aws.fetch_aws_invoices(
                aws_invoicing.client(), finance.aws_invoicing.accounts, period
            )
        merged = merge_sources(rows)
        table = inv.invoice_table(merged)
        with warehouse.get_connection() as con:
            replace_period(con, INVOICES_TABLE, table, period)
            known = {
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT InvoiceId FROM {INVOICES_TABLE} WHERE invoice_type = 'invoice'"
                ).fetchall()
            }
        orphans = [
            r.InvoiceId
            for r in merged
            if r.invoice_type == "credit_memo" and r.original_invoice_id not in known
        ]
        if orphans:
            context.log.warning(
                f"credit memo(s) {', '.join(orphans)} correct invoices not in finance.invoices; "
                "materialize their billing periods or add them to invoices.csv"
            )
        frame = table.to_pandas()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(merged)),
                "files_read": dg.MetadataValue.int(len(keys)),
                "credit_memos_without_invoice": dg.MetadataValue.int(len(orphans)),
                "by_source": dg.MetadataValue.json(
                    {s: int((frame["source"] == s).sum()) for s in inv.INVOICE_SOURCES}
                    if len(frame)
                    else {}
                ),
                "invoices": dg.MetadataValue.md(
                    markdown_table(
                        frame[
                            [
                                "ProviderName",
                                "BillingAccountId",
                                "InvoiceId",
                                "invoice_type",
                                "status",
                                "BillingCurrency",
                                "pre_tax_amount",
                                "tax_amount",
                                "source",
                            ]
                        ].head(50)
                    )
                    if len(frame)
                    else "(no invoices for this billing period yet)"
                ),
            }
        )

    @dg.asset(
        key=RECONCILIATION,
        group_name="finance",
        kinds={"duckdb"},
        partitions_def=monthly,
        deps=[INVOICES, dg.AssetKey(["core", "cost_facts"])],
        pool=WAREHOUSE_POOL,
        description=(
            "Per invoice: Σ BilledCost of the cost data before tax against the invoice, with the "
            "FOCUS rounding tolerance, a status and what explains any gap."
        ),
    )
    def invoice_reconciliation(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        period = period_of(context)
        month = f"{period:%Y-%m}"
        with warehouse.get_connection() as con:
            facts = (
                inv.records(con, rec.facts_by_invoice_sql(COST_FACTS_TABLE), [month])
                if _exists(con, COST_FACTS_TABLE)
                else []
            )
            invoice_rows = (
                inv.records(
                    con, f"SELECT * FROM {INVOICES_TABLE} WHERE billing_period = ?", [period]
                )
                if _exists(con, INVOICES_TABLE)
                else []
            )
            lines = rec.reconcile(period, facts, invoice_rows)
            if any(line.status == "mismatch" for line in lines):
                duplicates = inv.records(
                    con, rec.duplicate_cost_sql(COST_FACTS_TABLE, list(FOCUS_COLUMNS)), [month]
                )
                lines = rec.reconcile(period, facts, invoice_rows, duplicates)
            replace_period(con, RECONCILIATION_TABLE, lines_table(lines), period)
        counts = {s: sum(1 for line in lines if line.status == s) for s in rec.STATUSES}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(lines)),
                **{s.replace(" ", "_"): dg.MetadataValue.int(n) for s, n in counts.items()},
                "reconciliation": dg.MetadataValue.md(status_table(lines)),
            }
        )

    @dg.asset_check(
        asset=RECONCILIATION,
        name="issued_invoices_match",
        blocking=True,
        partitions_def=monthly,
        pool=WAREHOUSE_POOL,
        description=(
            "Every issued invoice equals the cost data billed on it before tax, within FOCUS's "
            "rounding tolerance (open invoices and tax are reported, not failed)."
        ),
    )
    def issued_invoices_match(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        period = period_of(context)
        with warehouse.get_connection() as con:
            lines = [
                rec.Line(**r)
                for r in inv.records(
                    con,
                    f"SELECT * FROM {RECONCILIATION_TABLE} WHERE billing_period = ? AND status = "
                    "'mismatch' AND invoice_status LIKE '%issued%' ORDER BY abs(delta) DESC",
                    [period],
                )
            ]
        return dg.AssetCheckResult(
            passed=not lines,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None
            if not lines
            else f"{len(lines)} issued invoice(s) outside tolerance: "
            + " | ".join(rec.describe_failure(line) for line in lines[:5]),
            metadata={
                "mismatches": dg.MetadataValue.int(len(lines)),
                "details": dg.MetadataValue.md(status_table(lines) if lines else "(none)"),
            },
        )

    def chargeback_query() -> ChargebackQuery:
        finance = ctx.rules.finance
        return ChargebackQuery(ALLOCATED_TABLE, finance.basis, tuple(finance.gl_accounts))

    def chargeback_rows(con: duckdb.DuckDBPyConnection, period: str) -> list[dict]:
        query = chargeback_query()
        return inv.records(con, query.sql(), query.params(period))

    @dg.asset(
        key=CHARGEBACK,
        group_name="finance",
        kinds={"duckdb"},
        partitions_def=monthly,
        deps=[dg.AssetKey(["core", "allocated_costs"])],
        pool=WAREHOUSE_POOL,
        description=(
            "What each cost center, team and GL account is charged per month, split into direct, "
            "shared, commitment and credit parts, each line naming the allocation rules behind it."
        ),
    )
    def chargeback(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        period = period_of(context)
        month = f"{period:%Y-%m}"
        query = chargeback_query()
        with warehouse.get_connection() as con:
            if not _exists(con, ALLOCATED_TABLE):
                raise dg.Failure(
                    "core.allocated_costs is empty: materialize the daily assets first"
                )
            table = con.sql(
                f"SELECT * REPLACE (CAST(billing_period || '-01' AS DATE) AS billing_period) "
                f"FROM ({query.sql()})",
                params=query.params(month),
            ).to_arrow_table()
            source = {
                r["BillingCurrency"]: r["amount"]
                for r in inv.records(con, query.conservation_sql(), query.params(month))
            }
            charged: dict[str, object] = {}
            for r in table.select(["BillingCurrency", "amount"]).to_pylist():
                charged[r["BillingCurrency"]] = charged.get(r["BillingCurrency"], 0) + r["amount"]
            problems = conservation_problems(charged, source)
            if problems:
                raise dg.Failure(
                    f"finance/chargeback {month} does not conserve money: " + "; ".join(problems)
                )
            replace_period(con, CHARGEBACK_TABLE, table, period)
        frame = table.to_pandas()
        totals = {str(k): f"{v:,.2f}" for k, v in sorted(charged.items())}
        unmapped = int((frame["gl_account"] == "__unmapped__").sum()) if len(frame) else 0
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(frame)),
                "basis": dg.MetadataValue.text(query.basis),
                "totals": dg.MetadataValue.json(totals),
                "unmapped_gl_lines": dg.MetadataValue.int(unmapped),
                "lines": dg.MetadataValue.md(
                    markdown_table(frame.head(30)) if len(frame) else "(no cost this month)"
                ),
            }
        )

    class MonthCloseConfig(dg.Config):
        new_version: bool = False

    @dg.asset(
        key=MONTH_CLOSE,
        group_name="finance",
        kinds={"duckdb"},
        partitions_def=monthly,
        deps=[CHARGEBACK, RECONCILIATION],
        pool=WAREHOUSE_POOL,
        description=(
            "Closes the month: an immutable, versioned journal snapshot (closed/<period>/v<n>/), "
            "refused while the month is incomplete or an issued invoice does not reconcile."
        ),
    )
    def month_close(
        context: dg.AssetExecutionContext, config: MonthCloseConfig, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        period = period_of(context)
        month = f"{period:%Y-%m}"
        root = ctx.settings.closed_path.absolute()
        finance = ctx.rules.finance
        with warehouse.get_connection() as con:
            refusal = close_refusal(con, month, ctx.rules.completeness)
            if refusal:
                raise dg.Failure(f"close-month {month} refused: {refusal}")
            statuses = {
                status: n
                for status, n in con.execute(
                    f"SELECT status, count(*) FROM {RECONCILIATION_TABLE} "
                    "WHERE billing_period = ? GROUP BY 1 ORDER BY 1",
                    [period],
                ).fetchall()
            }
            amounts = mc.rounded_amounts(chargeback_rows(con, month))
            adjustments = mc.pending_adjustments(
                root, month, lambda closed: mc.rounded_amounts(chargeback_rows(con, closed))
            )
        layout = mc.JournalLayout(
            columns=finance.journal_columns or {c: c for c in mc.JOURNAL_COLUMNS},
            date_format=finance.journal_date_format,
            offset_account=finance.journal_offset_account,
            name=finance.erp_layout,
        )
        try:
            closed = mc.close_month(
                root,
                month,
                amounts,
                adjustments,
                layout,
                {"basis": finance.basis, "reconciliation": statuses},
                new_version=config.new_version,
            )
        except mc.CloseRefused as error:
            raise dg.Failure(f"close-month {month} refused: {error}") from error
        context.log.info(
            f"{month} {'closed as' if closed.changed else 'unchanged, kept'} v{closed.version} "
            f"in {closed.folder}"
        )
        return dg.MaterializeResult(
            metadata={
                "version": dg.MetadataValue.int(closed.version),
                "changed": dg.MetadataValue.bool(closed.changed),
                "folder": dg.MetadataValue.path(str(closed.folder)),
                "journal_lines": dg.MetadataValue.int(closed.rows),
                "adjustment_lines": dg.MetadataValue.int(closed.adjustments),
                "journal_sha256": dg.MetadataValue.text(closed.sha256["journal.csv"]),
                "parquet_sha256": dg.MetadataValue.text(closed.sha256["journal.parquet"]),
            }
        )

    @dg.asset(
        key=MONTHLY_REPORT,
        group_name="finance",
        kinds={"html"},
        partitions_def=monthly,
        deps=[CHARGEBACK, RECONCILIATION, MONTH_CLOSE],
        pool=WAREHOUSE_POOL,
        description=(
            "The month for finance in one self-contained HTML page: spend by department and "
            "team, top services, untagged share, commitments, anomalies, budgets, invoices."
        ),
    )
    def monthly_report(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        period = f"{period_of(context):%Y-%m}"
        root = ctx.settings.closed_path.absolute()
        closed = mc.versions(root, period)
        state = (
            f"closed v{closed[-1]} ({root / period / f'v{closed[-1]}'})"
            if closed
            else "open: figures may still change"
        )
        basis = ctx.rules.finance.basis
        with warehouse.get_connection() as con:
            figures = collect_figures(
                lambda sql, params: inv.records(con, sql, params),
                lambda table: _exists(con, table),
                period,
                basis,
                state,
                footer=f"finops_assets · warehouse {warehouse.database} · basis {basis}",
            )
            expected = (
                {
                    c: a
                    for c, a in con.execute(
                        f"SELECT BillingCurrency, sum({basis}) FROM {ALLOCATED_TABLE} "
                        "WHERE strftime(charge_date, '%Y-%m') = ? GROUP BY 1",
                        [period],
                    ).fetchall()
                }
                if _exists(con, ALLOCATED_TABLE)
                else {}
            )
        page = render_report(figures)
        index = report_figures_index(page)
        wrong = {
            c: (index.get(f"summary|{c}|total"), str(a))
            for c, a in expected.items()
            if Decimal(index.get(f"summary|{c}|total", "NaN")) != a
        }
        if wrong:
            raise dg.Failure(f"the report's totals differ from core.allocated_costs: {wrong}")
        folder = ctx.settings.reports_path.absolute()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{period}.html"
        staging = path.with_suffix(".html.partial")
        staging.write_text(page, encoding="utf-8")
        staging.replace(path)
        sent, errors = _send_report(context, ctx, period, state, page, expected, path)
        return dg.MaterializeResult(
            metadata={
                "report": dg.MetadataValue.path(str(path)),
                "open_in_browser": dg.MetadataValue.url(path.as_uri()),
                "figures": dg.MetadataValue.int(len(index)),
                "state": dg.MetadataValue.text(state),
                "totals": dg.MetadataValue.json({c: f"{a:,.2f}" for c, a in expected.items()}),
                "report_sent_to": dg.MetadataValue.json(sent),
                "report_delivery_errors": dg.MetadataValue.json(errors),
            }
        )

    close_job = dg.define_asset_job(
        CLOSE_JOB,
        selection=[INVOICES, RECONCILIATION, CHARGEBACK, MONTH_CLOSE, MONTHLY_REPORT],
        description="Close a billing month: invoices, reconciliation, chargeback, journal.",
    )
    return dg.Definitions.merge(
        definitions_of(
            invoices,
            invoice_reconciliation,
            issued_invoices_match,
            chargeback,
            month_close,
            monthly_report,
        ),
        dg.Definitions(jobs=[close_job]),
    )


def _send_report(
    context: dg.AssetExecutionContext,
    ctx: DefsContext,
    period: str,
    state: str,
    page: str,
    totals: dict[str, Decimal],
    path: Path,
) -> tuple[list[str], list[str]]:
    """Send the report to ``finance.send_report_to`` when its content changed since it was last
    sent there. ``<period>.sent.json`` beside it records the sha256 sent and the targets that
    took it, so re-closing an unchanged month mails nobody twice and a target that failed gets
    it on the next materialization. A failed target is logged as an error and listed in the
    metadata; it does not undo the close (the report is on disk either way)."""
    wanted = ctx.rules.finance.send_report_to
    if not wanted:
        return [], []
    alerts = ctx.rules.alerts
    link = f"{alerts.ui_base_url}/assets/finance/monthly_report" if alerts.ui_base_url else None
    alert = report_alert(period, state, page, totals, datetime.now(UTC), link)
    sha = alert.attachments[0].sha256
    marker = path.with_suffix(".sent.json")
    try:
        record = json.loads(marker.read_text()) if marker.exists() else {}
    except ValueError:
        context.log.warning(f"{marker} is not JSON: sending the report to every target again")
        record = {}
    already = set(record.get("sent_to", [])) if record.get("sha256") == sha else set()
    targets = {t.name: t for t in alerts.targets}
    sent, errors = sorted(already & set(wanted)), []
    for name in wanted:
        if name in already:
            continue
        try:
            send_alert(alert, targets[name])
            sent.append(name)
        except DeliveryError as error:
            errors.append(str(error))
            context.log.error(f"the {period} report was not sent to {name!r}: {error}")
    staging = marker.with_suffix(".partial")
    staging.write_text(json.dumps({"sha256": sha, "sent_to": sorted(sent)}, indent=2) + "\n")
    staging.replace(marker)
    if sent and not errors:
        context.log.info(f"the {period} report went to {', '.join(sorted(sent))}")
    return sorted(sent), errors


def close_refusal(con: duckdb.DuckDBPyConnection, month: str, completeness_rules) -> str | None:
    """Why ``month`` cannot be closed yet, or None: every source that delivers it must be
    complete on every day of it, and no issued invoice may be outside tolerance."""
    first, last = mc.period_days(month)
    if not _exists(con, COST_FACTS_TABLE):
        return "no cost data is loaded; materialize the daily assets first"
    sources = [
        SourceDays(r["source"], r["first_day"], r["newest_day"])
        for r in inv.records(con, loaded_days_sql(COST_FACTS_TABLE))
    ]
    completeness = Completeness.build(first, last, sources, completeness_rules)
    delivering = [s.source for s in sources if s.first_day <= last]
    if not delivering:
        return f"no cost data for {month}"
    complete = completeness.for_sources(delivering)
    if not complete.all():
        day = completeness.days[int((~complete).argmax())]
        waiting = ", ".join(completeness.waiting_on(delivering, day))
        return (
            f"{month} is not complete: {day} still waits on {waiting} "
            f"({completeness.summary(delivering)}). Close it once every source has delivered "
            "the month."
        )
    if (
        not _exists(con, RECONCILIATION_TABLE)
        or not con.execute(
            f"SELECT count(*) FROM {RECONCILIATION_TABLE} WHERE billing_period = ?", [first]
        ).fetchall()[0][0]
    ):
        return "finance/invoice_reconciliation has not run for it: materialize it first"
    failing = [
        rec.Line(**r)
        for r in inv.records(
            con,
            f"SELECT * FROM {RECONCILIATION_TABLE} WHERE billing_period = ? AND status = "
            "'mismatch' AND invoice_status LIKE '%issued%'",
            [first],
        )
    ]
    if failing:
        return "issued invoice(s) outside tolerance: " + " | ".join(
            rec.describe_failure(line) for line in failing[:5]
        )
    return None


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
            "table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def run_close_month(period: str, *, new_version: bool = False) -> tuple[bool, list[str]]:
    """``finops-assets close-month``: the close_month job in this process, on the instance of
    DAGSTER_HOME (an ephemeral one without it), with the definitions of the environment.
    Returns whether the month is closed and the lines to print."""
    import os

    from finops_assets.definitions import build_defs

    job = build_defs().resolve_job_def(CLOSE_JOB)
    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    with instance:
        result = job.execute_in_process(
            instance=instance,
            partition_key=f"{period}-01",
            run_config={"ops": {"finance__month_close": {"config": {"new_version": new_version}}}},
            raise_on_error=False,
        )
    if not result.success:
        checks = [
            e.description
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.description
        ]
        reasons = [
            e.event_specific_data.error.message.strip()
            for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"
        ]
        return False, [
            f"close-month {period} refused (run {result.run_id}):",
            *[f"  {r}" for r in checks + reasons],
        ]
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == MONTH_CLOSE
    ]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    state = "closed as" if meta["changed"] else "unchanged, kept"
    lines = [
        f"{period} {state} v{meta['version']}: {meta['folder']} ({meta['journal_lines']} journal "
        f"lines, {meta['adjustment_lines']} adjustments; journal.csv sha256 "
        f"{meta['journal_sha256']})"
    ]
    for report in result.get_asset_materialization_events():
        if report.materialization.asset_key != MONTHLY_REPORT:
            continue
        info = {k: v.value for k, v in report.materialization.metadata.items()}
        lines.append(f"report: {info['report']}")
        if info.get("report_sent_to"):
            lines.append(f"  sent to {', '.join(info['report_sent_to'])}")
        lines += [f"  NOT sent: {e}" for e in info.get("report_delivery_errors") or []]
    return True, lines
