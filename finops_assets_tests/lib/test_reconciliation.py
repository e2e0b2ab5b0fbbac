"""lib/reconciliation and lib/invoices on hand-written rows whose totals are worked out by hand."""

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib import invoices as inv
from finops_assets.lib import reconciliation as rec

D = Decimal
JAN = date(2025, 1, 1)


def test_tolerance_is_focus_rounding_or_half_a_percent():
    assert rec.tolerance("USD", 10, D("100")) == D("1.00")  # 100 cents beats √10 × ½ cent
    assert rec.tolerance("USD", 40_000_000, D("10")) == D("31.622777")  # √4e7 × 0.005
    assert rec.tolerance("USD", 10, D("1000000")) == D("5000")  # 0.5% of the invoice
    assert rec.tolerance("JPY", 40_000, D("10000")) == D("100")  # 100 yen = √40000 × ½ yen
    assert rec.tolerance("KWD", 1, None) == D("0.1")  # 100 fils


def test_explain_finds_the_smallest_set_of_parts():
    parts = {"rounding rows": D("0.04"), "rows delivered twice": D("12.30"), "late": D("7")}
    assert rec.explain(D("12.34"), D("0.005"), parts) == (
        D("12.34"),
        "rounding rows 0.04; rows delivered twice 12.30",
    )
    # Late usage can be missing from the cost side as well: it counts negatively.
    assert rec.explain(D("-7.00"), D("0.005"), parts) == (D("-7"), "late missing 7.00")
    assert rec.explain(D("3.21"), D("0.005"), parts) == (D(0), "")


def fact(account, key, pre_tax, rows=100, tax="0", **parts):
    return {
        "ProviderName": "Google Cloud",
        "BillingAccountId": account,
        "BillingCurrency": "USD",
        "invoice_key": key,
        "rows": rows,
        "facts_pre_tax": D(pre_tax),
        "facts_tax": D(tax),
        "rounding_cost": D(parts.get("rounding", "0")),
        "late_usage_cost": D(parts.get("late", "0")),
        "other_period_credit_cost": D(0),
    }


def invoice(account, invoice_id, pre_tax, status="issued", tax="0"):
    return {
        "ProviderName": "Google Cloud",
        "BillingAccountId": account,
        "BillingCurrency": "USD",
        "InvoiceId": invoice_id,
        "status": status,
        "pre_tax_amount": D(pre_tax),
        "tax_amount": D(tax),
        "source": "invoices_csv",
    }


def test_each_status_and_account_level_matching():
    facts = [
        fact("A", "*", "1000.004"),  # GCP rows carry no invoice id: matched per account
        fact("B", "*", "1000.60"),
        fact("C", "*", "1500.00", late="300.00"),
        fact("D", "*", "50.00"),
        fact("E", "*", "10.00"),
    ]
    invoices = [
        invoice("A", "G-A", "1000.00"),
        invoice("B", "G-B", "1000.00"),
        invoice("C", "G-C", "1200.00"),
        invoice("D", "G-D", "20.00", status="open"),
        invoice("F", "G-F", "5.00", status="voided"),
    ]
    lines = {line.BillingAccountId: line for line in rec.reconcile(JAN, facts, invoices)}
    assert {k: line.status for k, line in lines.items()} == {
        "A": "match",
        "B": "within rounding",
        "C": "mismatch",
        "D": "invoice open",
        "E": "no invoice",
        "F": "voided",
    }
    assert lines["A"].InvoiceId == "G-A" and lines["A"].delta == D("0.004")
    assert (lines["C"].delta, lines["C"].explained_delta, lines["C"].unexplained_delta) == (
        D("300.00"),
        D("300.00"),
        D("0.00"),
    )
    assert lines["C"].explanation == "late usage (used in an earlier month) 300.00"
    assert [line.BillingAccountId for line in rec.failing_lines(list(lines.values()))] == ["C"]


def test_invoice_ids_the_cost_data_names_are_matched_one_by_one():
    facts = [fact("A", "INV-1", "10.00"), fact("A", "INV-2", "20.00")]
    invoices = [invoice("A", "INV-1", "10.00"), invoice("A", "INV-2", "25.00")]
    lines = rec.reconcile(JAN, facts, invoices)
    assert [(x.InvoiceId, x.status, x.delta) for x in lines] == [
        ("INV-1", "match", D("0.00")),
        ("INV-2", "mismatch", D("-5.00")),
    ]


CSV = """\ufeffprovider,billing_account_id,billing_period,invoice_id,currency,pre_tax_amount,tax_amount,type,original_invoice_id,status
gcp,01AB-CD,2025-01,G-100,usd,"1,234.50",10.50,,,issued
Azure,EA-1,2025-01,E-7,EUR,-20,0,credit memo,E-5,
"""


def test_invoices_csv_reads_what_finance_types():
    rows = inv.invoices_csv_rows(CSV, "landing/invoices/invoices.csv")
    assert [
        (
            r.ProviderName,
            r.InvoiceId,
            r.BillingCurrency,
            r.pre_tax_amount,
            r.total_amount,
            r.invoice_type,
            r.original_invoice_id,
            r.status,
        )
        for r in rows
    ] == [
        ("Google Cloud", "G-100", "USD", D("1234.50"), D("1245.00"), "invoice", None, "issued"),
        ("Microsoft", "E-7", "EUR", D("-20"), D("-20"), "credit_memo", "E-5", "issued"),
    ]
    assert inv.invoice_table(rows).num_rows == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("2025-01", "January"), "line 2, column billing_period: 'January' is not a billing month"),
        (("1,234.50", "12x"), "line 2, column pre_tax_amount: '12x' is not a number"),
        (("E-5,", ","), "line 3, column original_invoice_id: empty on a credit memo"),
        (("usd", "dollars"), "line 2, column currency: 'DOLLARS' is not an ISO 4217 code"),
    ],
)
def test_invoices_csv_names_line_column_and_fix(edit, message):
    old, new = edit
    with pytest.raises(inv.InvoiceInputError) as error:
        inv.invoices_csv_rows(CSV.replace(old, new, 1), "invoices.csv")
    assert message in str(error.value)


def test_one_row_per_invoice():
    first = CSV.splitlines()[1]
    with pytest.raises(inv.InvoiceInputError) as error:
        inv.invoices_csv_rows(CSV + first + "\n", "invoices.csv")
    assert (
        "invoices.csv line 4: invoice G-100 of Google Cloud account 01AB-CD (USD) is already on line 2"
        in str(error.value)
    )


def test_a_missing_column_is_named_with_its_meaning():
    with pytest.raises(inv.InvoiceInputError) as error:
        inv.invoices_csv_rows("provider,invoice_id\naws,1\n", "invoices.csv")
    assert "missing column(s) billing_account_id (the billing account the invoice is for)" in str(
        error.value
    )


def test_invoice_detail_lines_sum_per_invoice():
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE lines AS SELECT * FROM (VALUES
        ('Microsoft', 'BA-1', 'EUR', TIMESTAMP '2025-01-01', 'Usage', 'I-1', 'I-1', 'Issued', 100.25),
        ('Microsoft', 'BA-1', 'EUR', TIMESTAMP '2025-01-01', 'Adjustment', 'I-1', 'I-1', 'Issued', -0.01),
        ('Microsoft', 'BA-1', 'EUR', TIMESTAMP '2025-01-01', 'Tax', 'I-1', 'I-1', 'Issued', 19.05),
        ('Microsoft', 'BA-1', 'EUR', TIMESTAMP '2025-01-01', 'Credit', 'C-1', 'I-0', 'Issued', -3.00)
        ) AS t(InvoiceIssuerName, BillingAccountId, BillingCurrency, BillingPeriodStart,
               ChargeCategory, InvoiceId, ReferenceInvoiceId, InvoiceIssueStatus, BilledCost)"""
    ).fetchall()
    relation = "(SELECT *, NULL AS InvoiceIssueDate, NULL AS PaymentDueDate FROM lines)"
    records = inv.records(con, inv.invoice_detail_sql(relation))
    rows = inv.invoice_detail_rows(records, "invoice_detail.parquet")
    assert [
        (
            r.InvoiceId,
            r.invoice_type,
            r.original_invoice_id,
            r.pre_tax_amount,
            r.tax_amount,
            r.line_count,
        )
        for r in rows
    ] == [
        ("C-1", "credit_memo", "I-0", D("-3.00"), D("0"), 1),
        ("I-1", "invoice", None, D("100.24"), D("19.05"), 3),
    ]
