"""Invoice totals as finance/invoices keeps them: one row per invoice or credit memo.

Three inputs feed the table, each through its own reader that returns rows of ``INVOICE_SCHEMA``:

- the AWS Invoicing API (``ListInvoiceSummaries``, ``lib/aws_invoicing``);
- a FOCUS 1.4 Invoice Detail export (line items summed per invoice, ``invoice_detail_rows``);
- a hand-kept ``invoices.csv`` in the landing zone, for issuers without an API (GCP, Azure EA),
  read by ``invoices_csv_rows``.

Money stays exact (``Decimal``, DECIMAL(38, 12) in the warehouse) and in the invoice's currency.
A credit memo is its own row with ``invoice_type = 'credit_memo'``, negative amounts and
``original_invoice_id`` naming the invoice it corrects. Nothing here imports Dagster.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pyarrow as pa

INVOICE_TYPES = ("invoice", "credit_memo")
INVOICE_STATUSES = ("open", "issued", "voided")
INVOICE_SOURCES = ("aws_invoicing_api", "focus_invoice_detail", "invoices_csv")
MONEY_TYPE = pa.decimal128(38, 12)

INVOICE_SCHEMA = pa.schema(
    [
        pa.field("ProviderName", pa.string(), nullable=False),
        pa.field("BillingAccountId", pa.string(), nullable=False),
        pa.field("billing_period", pa.date32(), nullable=False),  # first day of the month
        pa.field("InvoiceId", pa.string(), nullable=False),
        pa.field("invoice_type", pa.string(), nullable=False),  # INVOICE_TYPES
        pa.field("original_invoice_id", pa.string()),  # credit memos: the corrected invoice
        pa.field("status", pa.string(), nullable=False),  # INVOICE_STATUSES
        pa.field("BillingCurrency", pa.string(), nullable=False),
        pa.field("pre_tax_amount", MONEY_TYPE, nullable=False),
        pa.field("tax_amount", MONEY_TYPE, nullable=False),
        pa.field("total_amount", MONEY_TYPE, nullable=False),
        pa.field("issue_date", pa.date32()),
        pa.field("due_date", pa.date32()),
        pa.field("line_count", pa.int64()),  # Invoice Detail: line items summed; else null
        pa.field("source", pa.string(), nullable=False),  # INVOICE_SOURCES
        pa.field("x_SourceFile", pa.string(), nullable=False),  # file, or the API call
    ]
)

# Invoice issuers as the cost data names them (ProviderName of core.cost_facts).
PROVIDER_NAMES = {
    "aws": "AWS",
    "amazon web services": "AWS",
    "gcp": "Google Cloud",
    "google": "Google Cloud",
    "google cloud": "Google Cloud",
    "azure": "Microsoft",
    "microsoft": "Microsoft",
}


class InvoiceInputError(ValueError):
    """An invoice input that cannot be read; the message names the file, row, column and fix."""


@dataclass(frozen=True)
class InvoiceRow:
    ProviderName: str
    BillingAccountId: str
    billing_period: date
    InvoiceId: str
    invoice_type: str
    original_invoice_id: str | None
    status: str
    BillingCurrency: str
    pre_tax_amount: Decimal
    tax_amount: Decimal
    total_amount: Decimal
    issue_date: date | None
    due_date: date | None
    line_count: int | None
    source: str
    x_SourceFile: str


def records(con, sql: str, params: list | None = None) -> list[dict]:
    """Rows of ``sql`` as dicts with DuckDB's own values (DECIMAL stays ``Decimal``; a pandas
    round trip would turn money into floats)."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def invoice_table(rows: Iterable[InvoiceRow]) -> pa.Table:
    """Rows as an Arrow table of ``INVOICE_SCHEMA`` (money quantized to 12 decimals)."""
    rows = list(rows)
    quantum = Decimal("1e-12")
    columns: dict[str, list] = {f.name: [] for f in INVOICE_SCHEMA}
    for row in rows:
        for name in columns:
            value = getattr(row, name)
            if isinstance(value, Decimal):
                value = value.quantize(quantum)
            columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=INVOICE_SCHEMA)


def provider_name(text: str) -> str:
    """The cost data's ProviderName for an issuer written by a person ("gcp", "Azure", "AWS")."""
    return PROVIDER_NAMES.get(text.strip().lower(), text.strip())


def _decimal(text: str | None) -> Decimal | None:
    if text is None or str(text).strip() == "":
        return None
    cleaned = str(text).strip().replace(",", "")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None


def _date(text: str | None) -> date | None:
    if text is None or str(text).strip() == "":
        return None
    value = str(text).strip()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _period(text: str) -> date:
    value = str(text).strip()
    try:
        parsed = datetime.strptime(value[:7], "%Y-%m").date()
    except ValueError:
        raise ValueError(f"{text!r} is not a billing month (YYYY-MM)") from None
    if len(value) not in (7, 10):
        raise ValueError(f"{text!r} is not a billing month (YYYY-MM)")
    return parsed


# --- invoices.csv -------------------------------------------------------------------------------
# The hand-kept file: one row per invoice or credit memo, as finance reads them off the PDF.
INVOICES_CSV_COLUMNS = {
    "provider": "the issuer: AWS, Google Cloud (gcp) or Microsoft (azure)",
    "billing_account_id": "the billing account the invoice is for",
    "billing_period": "the billing month, YYYY-MM",
    "invoice_id": "the invoice or credit memo number",
    "currency": "ISO 4217 code, e.g. USD",
    "pre_tax_amount": "the invoice subtotal before tax (negative on a credit memo)",
}
INVOICES_CSV_OPTIONAL = {
    "tax_amount": "tax on the invoice (default 0)",
    "total_amount": "pre-tax + tax (checked when given)",
    "type": "invoice or credit_memo (default invoice)",
    "original_invoice_id": "for a credit memo: the invoice it corrects",
    "status": "open, issued or voided (default issued)",
    "issue_date": "YYYY-MM-DD",
    "due_date": "YYYY-MM-DD",
}


def invoices_csv_rows(text: str, source_file: str) -> list[InvoiceRow]:
    """Parse a hand-kept invoices.csv. Every problem names the file, the line, the column, the
    value and what to write instead; nothing is skipped silently."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in INVOICES_CSV_COLUMNS if c not in header]
    if missing:
        wanted = ", ".join(f"{c} ({INVOICES_CSV_COLUMNS[c]})" for c in missing)
        raise InvoiceInputError(
            f"{source_file}: missing column(s) {wanted}. The header must have "
            f"{', '.join(INVOICES_CSV_COLUMNS)} (optional: {', '.join(INVOICES_CSV_OPTIONAL)})."
        )
    rows: list[InvoiceRow] = []
    seen: dict[tuple, int] = {}
    for line, raw in enumerate(reader, start=2):
        record = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        if not any(record.values()):
            continue

        def field(name: str, parse, record=record, line=line):
            try:
                return parse(record.get(name))
            except ValueError as error:
                hint = INVOICES_CSV_COLUMNS.get(name) or INVOICES_CSV_OPTIONAL.get(name)
                raise InvoiceInputError(
                    f"{source_file} line {line}, column {name}: {error}; write {hint}."
                ) from None

        def required(name: str, record=record, line=line) -> str:
            value = record.get(name, "")
            if not value:
                raise InvoiceInputError(
                    f"{source_file} line {line}, column {name}: empty; write "
                    f"{INVOICES_CSV_COLUMNS[name]}."
                )
            return value

        provider = provider_name(required("provider"))
        account = required("billing_account_id")
        period = field("billing_period", lambda v: _period(v or ""))
        invoice_id = required("invoice_id")
        currency = required("currency").upper()
        if len(currency) != 3 or not currency.isalpha():
            raise InvoiceInputError(
                f"{source_file} line {line}, column currency: {currency!r} is not an ISO 4217 "
                "code; write e.g. USD."
            )
        pre_tax = field("pre_tax_amount", _decimal)
        if pre_tax is None:
            required("pre_tax_amount")
        tax = field("tax_amount", _decimal) or Decimal(0)
        total = field("total_amount", _decimal)
        if total is not None and total != pre_tax + tax:
            raise InvoiceInputError(
                f"{source_file} line {line}, column total_amount: {total} is not pre_tax_amount "
                f"+ tax_amount = {pre_tax + tax}; correct one of the three."
            )
        kind = (record.get("type") or "invoice").lower().replace(" ", "_").replace("-", "_")
        if kind not in INVOICE_TYPES:
            raise InvoiceInputError(
                f"{source_file} line {line}, column type: {record.get('type')!r}; write invoice "
                "or credit_memo."
            )
        status = (record.get("status") or "issued").lower()
        if status not in INVOICE_STATUSES:
            raise InvoiceInputError(
                f"{source_file} line {line}, column status: {record.get('status')!r}; write "
                "open, issued or voided."
            )
        original = record.get("original_invoice_id") or None
        if kind == "credit_memo" and not original:
            raise InvoiceInputError(
                f"{source_file} line {line}, column original_invoice_id: empty on a credit memo; "
                "write the number of the invoice it corrects."
            )
        key = (provider, account, invoice_id, currency)
        if key in seen:
            raise InvoiceInputError(
                f"{source_file} line {line}: invoice {invoice_id} of {provider} account {account} "
                f"({currency}) is already on line {seen[key]}; keep one row per invoice."
            )
        seen[key] = line
        rows.append(
            InvoiceRow(
                ProviderName=provider,
                BillingAccountId=account,
                billing_period=period,
                InvoiceId=invoice_id,
                invoice_type=kind,
                original_invoice_id=original,
                status=status,
                BillingCurrency=currency,
                pre_tax_amount=pre_tax,
                tax_amount=tax,
                total_amount=pre_tax + tax,
                issue_date=field("issue_date", _date),
                due_date=field("due_date", _date),
                line_count=None,
                source="invoices_csv",
                x_SourceFile=source_file,
            )
        )
    return rows


# --- FOCUS 1.4 Invoice Detail ------------------------------------------------------------------
INVOICE_DETAIL_REQUIRED = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "ChargeCategory",
    "InvoiceId",
    "InvoiceIssueStatus",
    "InvoiceIssuerName",
)


def invoice_detail_sql(relation: str) -> str:
    """Invoice Detail line items (FOCUS 1.4) summed per invoice: pre-tax = Σ BilledCost of the
    non-Tax lines, tax = Σ of the Tax lines. ReferenceInvoiceId names the invoice a line adjusts;
    an invoice whose lines all reference another invoice is a credit memo of it."""
    return f"""
        SELECT InvoiceIssuerName, BillingAccountId::VARCHAR AS BillingAccountId,
               CAST(date_trunc('month', min(BillingPeriodStart::TIMESTAMP)) AS DATE) AS billing_period,
               InvoiceId::VARCHAR AS InvoiceId, upper(BillingCurrency) AS BillingCurrency,
               CASE WHEN bool_and(coalesce(ReferenceInvoiceId, InvoiceId) <> InvoiceId)
                    THEN 'credit_memo' ELSE 'invoice' END AS invoice_type,
               min(NULLIF(ReferenceInvoiceId, InvoiceId)) AS original_invoice_id,
               lower(max(InvoiceIssueStatus)) AS status,
               count(DISTINCT lower(InvoiceIssueStatus)) AS statuses,
               count(DISTINCT CAST(date_trunc('month', BillingPeriodStart::TIMESTAMP) AS DATE))
                   AS periods,
               sum(CAST(BilledCost AS DECIMAL(38, 12))) FILTER (WHERE ChargeCategory <> 'Tax')
                   AS pre_tax_amount,
               sum(CAST(BilledCost AS DECIMAL(38, 12))) FILTER (WHERE ChargeCategory = 'Tax')
                   AS tax_amount,
               CAST(min(InvoiceIssueDate::TIMESTAMP) AS DATE) AS issue_date,
               CAST(min(PaymentDueDate::TIMESTAMP) AS DATE) AS due_date,
               count(*) AS line_count
        FROM {relation}
        GROUP BY InvoiceIssuerName, BillingAccountId, InvoiceId, upper(BillingCurrency)
        ORDER BY ALL
    """


def invoice_detail_rows(records: Iterable[Mapping], source_file: str) -> list[InvoiceRow]:
    """Rows of ``invoice_detail_sql`` (as dicts) to invoice rows, with the checks a person needs:
    one status and one billing month per invoice, statuses FOCUS allows."""
    rows = []
    for r in records:
        where = f"{source_file}: invoice {r['InvoiceId']} of account {r['BillingAccountId']}"
        if r["statuses"] != 1:
            raise InvoiceInputError(
                f"{where} has lines with different InvoiceIssueStatus values; an invoice has one "
                "status (Open, Issued or Voided): re-export the Invoice Detail dataset."
            )
        if r["periods"] != 1:
            raise InvoiceInputError(
                f"{where} has lines in {r['periods']} billing periods (BillingPeriodStart); FOCUS "
                "requires one billing period per invoice."
            )
        if r["status"] not in INVOICE_STATUSES:
            raise InvoiceInputError(
                f"{where}: InvoiceIssueStatus {r['status']!r} is not Open, Issued or Voided."
            )
        pre_tax = r["pre_tax_amount"] or Decimal(0)
        tax = r["tax_amount"] or Decimal(0)
        rows.append(
            InvoiceRow(
                ProviderName=provider_name(r["InvoiceIssuerName"]),
                BillingAccountId=r["BillingAccountId"],
                billing_period=r["billing_period"],
                InvoiceId=r["InvoiceId"],
                invoice_type=r["invoice_type"],
                original_invoice_id=r["original_invoice_id"],
                status=r["status"],
                BillingCurrency=r["BillingCurrency"],
                pre_tax_amount=pre_tax,
                tax_amount=tax,
                total_amount=pre_tax + tax,
                issue_date=r["issue_date"],
                due_date=r["due_date"],
                line_count=int(r["line_count"]),
                source="focus_invoice_detail",
                x_SourceFile=source_file,
            )
        )
    return rows
