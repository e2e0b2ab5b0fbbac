"""finance/invoice_reconciliation on three sources' own quirks (DOMAIN §5, §6, §10), each through a
real landing folder, the daily pipeline into a DuckDB warehouse and the monthly finance assets run
in process (no mocks):

1. an Azure MCA cost details month whose rows carry the invoice id, with RoundingAdjustment rows
   and a Tax row, against its invoice in invoices.csv;
2. GCP usage of 31 January billed on February's invoice (``invoice.month = '202502'``): each month
   reconciles on the invoice month, not on the usage day;
3. a FOCUS export delivered twice (copied into a second dataset folder): the daily run's blocking
   ``no_duplicate_charges`` check stops it, and a reconciliation forced through names the copy.

Every row is written here by hand; the expected figures are summed by hand in the comments."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from finops_assets.samples.focus import delivery_path, write_delivery
from finops_assets_tests.conftest import Pipeline, failed_checks, failure_messages
from finops_assets_tests.paths import LAYOUTS

INVOICES = dg.AssetKey(["finance", "invoices"])
RECONCILIATION = dg.AssetKey(["finance", "invoice_reconciliation"])
INVOICES_CSV_HEADER = (
    "provider,billing_account_id,billing_period,invoice_id,currency,pre_tax_amount,tax_amount,"
    "status,issue_date"
)
RECONCILIATION_COLUMNS = (
    "ProviderName",
    "BillingAccountId",
    "InvoiceId",
    "BillingCurrency",
    "invoice_status",
    "rows",
    "facts_pre_tax",
    "invoice_pre_tax",
    "delta",
    "facts_tax",
    "invoice_tax",
    "tolerance",
    "status",
    "explained_delta",
    "unexplained_delta",
    "explanation",
    "rounding_cost",
    "late_usage_cost",
    "other_period_credit_cost",
    "duplicate_cost",
)


def write_invoices(landing: Path, *lines: str) -> None:
    """The hand-kept invoices/invoices.csv, replaced whole (as finance edits it)."""
    folder = landing / "invoices"
    folder.mkdir(exist_ok=True)
    (folder / "invoices.csv").write_text("\n".join([INVOICES_CSV_HEADER, *lines]) + "\n")


def close_books(pipeline: Pipeline, month: str) -> dg.ExecuteInProcessResult:
    """finance/invoices, finance/invoice_reconciliation and its check for one billing month."""
    job = pipeline.defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=pipeline.instance,
        partition_key=f"{month}-01",
        asset_selection=[INVOICES, RECONCILIATION],
        raise_on_error=False,
    )


def reconciliation(pipeline: Pipeline, month: str) -> list[dict]:
    """finance.invoice_reconciliation's rows of one billing month, as dicts."""
    rows = pipeline.query(
        f"SELECT {', '.join(RECONCILIATION_COLUMNS)} FROM finance.invoice_reconciliation "
        "WHERE billing_period = ? ORDER BY ALL",
        [f"{month}-01"],
    )
    return [dict(zip(RECONCILIATION_COLUMNS, row, strict=True)) for row in rows]


def issued_invoices_match(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.to_user_string()
        == "finance/invoice_reconciliation:issued_invoices_match"
    ]
    return check


def table_of(text: str) -> list[list[str]]:
    """Rows of a '|'-separated block (one row a line, cells trimmed)."""
    return [[c.strip() for c in line.split("|")] for line in text.strip().splitlines()]


# --- 1. Azure MCA: invoice ids on the cost rows, rounding rows, tax ----------------------------

MCA_ACCOUNT = "7d3c2b1a-0000-4000-8000-0000000000aa:1f2e3d4c-0000-4000-8000-0000000000bb_2019-05-31"
MCA_PROFILE = "AB12-CD34-EF5-GH6"
MCA_EXPORT = "contoso-mca-actual"
MCA_RUN = "5c9d6f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
MCA_INVOICE = "G087654321"
MCA_DAYS = ("03/01/2025", "03/02/2025", "03/03/2025", "03/04/2025")
# The MCA cost details header (camelCase, with the few PascalCase names the export really has).
MCA_HEADER = (
    "invoiceId,billingAccountId,billingAccountName,billingProfileId,billingProfileName,"
    "invoiceSectionId,invoiceSectionName,billingPeriodStartDate,billingPeriodEndDate,date,"
    "serviceFamily,consumedService,meterId,meterName,meterCategory,meterSubCategory,meterRegion,"
    "ProductName,SubscriptionId,subscriptionName,publisherType,publisherName,resourceGroupName,"
    "ResourceId,resourceLocation,effectivePrice,quantity,unitOfMeasure,chargeType,"
    "billingCurrency,pricingCurrency,costInBillingCurrency,costInPricingCurrency,"
    "paygCostInBillingCurrency,tags,PayGPrice,frequency,pricingModel,unitPrice"
)
MCA_COLUMNS = MCA_HEADER.split(",")
# One day's usage: team (subscription) | meter category | meter | product | quantity | unit |
# price | cost. 9.216 + 0.654321 + 0.087 + 0.123456 + 14.4 + 0.333333 + 2.3 + 0.01339 = 27.1275.
MCA_USAGE = table_of("""
    app | Virtual Machines | D4s v5 | Virtual Machines Dsv5 | 24 | 1 Hour | 0.384 | 9.216
    app | Storage | P10 LRS Disk | Premium SSD Disks | 1 | 1/Month | 0.654321 | 0.654321
    app | Bandwidth | Data Transfer | Bandwidth Inter-Region | 1.0875 | 1 GB | 0.08 | 0.087
    app | Storage | Hot LRS Data | Blob Storage | 6.1728 | 1 GB/Month | 0.02 | 0.123456
    data | SQL Database | vCore | SQL Database GP | 24 | 1 Hour | 0.6 | 14.4
    data | Storage | Hot LRS Data | Blob Storage | 16.66665 | 1 GB/Month | 0.02 | 0.333333
    data | Log Analytics | Ingestion | Log Analytics | 1 | 1 GB | 2.3 | 2.3
    data | Key Vault | Operations | Key Vault | 0.446333 | 10K | 0.03 | 0.01339
""")
# 4 days × 27.1275 = 108.51 EUR of usage, 32 rows.
MCA_USAGE_TOTAL = Decimal("108.51")
# Microsoft's two rounding rows (first-party and marketplace): -0.03 + 0.01 = -0.02 EUR.
MCA_ROUNDING = ("-0.03", "0.01")
MCA_ROUNDING_TOTAL = Decimal("-0.02")
# The invoice subtotal: 108.51 - 0.02 = 108.49 EUR before tax.
MCA_PRE_TAX = Decimal("108.49")
MCA_TAX = Decimal("21.70")  # 20% VAT on 108.49 = 21.698, invoiced as 21.70


def mca_row(day: str, charge_type: str, cost: str, **cells: str) -> dict[str, str]:
    row = dict.fromkeys(MCA_COLUMNS, "")
    row.update(
        invoiceId=MCA_INVOICE,
        billingAccountId=MCA_ACCOUNT,
        billingAccountName="Contoso Ltd",
        billingProfileId=MCA_PROFILE,
        billingProfileName="Contoso EU",
        billingPeriodStartDate="03/01/2025",
        billingPeriodEndDate="03/31/2025",
        date=day,
        chargeType=charge_type,
        billingCurrency="EUR",
        pricingCurrency="EUR",
        costInBillingCurrency=cost,
        costInPricingCurrency=cost,
        frequency="OneTime",
    )
    row.update(cells)
    return row


def mca_rows() -> list[dict[str, str]]:
    rows = []
    for day in MCA_DAYS:
        for team, category, meter, product, quantity, unit, price, cost in MCA_USAGE:
            subscription = f"0000000{1 if team == 'app' else 2}-aaaa-4bbb-8ccc-000000000000"
            slug = meter.replace(" ", "-").lower()
            rows.append(
                mca_row(
                    day,
                    "Usage",
                    cost,
                    invoiceSectionId="IJ78-KL90-MN1-OP2",
                    invoiceSectionName="Platform",
                    serviceFamily=category,
                    meterId=f"{category.replace(' ', '-').lower()}-{slug}",
                    meterName=meter,
                    meterCategory=category,
                    meterRegion="EU West",
                    ProductName=product,
                    SubscriptionId=subscription,
                    subscriptionName=f"contoso-{team}",
                    publisherType="Microsoft",
                    publisherName="Microsoft",
                    resourceGroupName=f"rg-{team}",
                    ResourceId=f"/subscriptions/{subscription}/resourceGroups/rg-{team}/{slug}",
                    resourceLocation="westeurope",
                    effectivePrice=price,
                    unitPrice=price,
                    PayGPrice=price,
                    quantity=quantity,
                    unitOfMeasure=unit,
                    paygCostInBillingCurrency=cost,
                    tags=json.dumps({"team": team, "env": "prod"}),
                    frequency="UsageBased",
                    pricingModel="OnDemand",
                )
            )
    # Once the invoice is issued Microsoft adds rounding rows at billing profile scope (no
    # subscription, meter or product: only the charge type says what they are), and the VAT.
    rows += [mca_row("03/04/2025", "RoundingAdjustment", cost) for cost in MCA_ROUNDING]
    rows.append(mca_row("03/04/2025", "Tax", str(MCA_TAX)))
    return rows


def deliver_mca_month(landing: Path) -> None:
    """The billing profile's March ActualCost export run, the way Cost Management writes it:
    the part, then manifest.json beside it."""
    date_range = "20250301-20250331"
    folder = landing / "azure" / f"mca-profile-{MCA_PROFILE}" / MCA_EXPORT / date_range / MCA_RUN
    folder.mkdir(parents=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MCA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(mca_rows())
    (folder / "part_0_0001.csv").write_text(text.getvalue())
    manifest = {
        "manifestVersion": "2024-04-01",
        "dataRowCount": None,
        "exportConfig": {"exportName": MCA_EXPORT, "type": "ActualCost"},
        "runInfo": {
            "runId": MCA_RUN,
            "startDate": "2025-03-01T00:00:00",
            "endDate": "2025-03-31T00:00:00",
            "submittedTime": "2025-04-09T06:00:00Z",
        },
        "blobs": [{"blobName": f"costexports/{MCA_EXPORT}/{date_range}/{MCA_RUN}/part_0_0001.csv"}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def mca_invoice(pre_tax: str) -> str:
    return f"azure,{MCA_ACCOUNT},2025-03,{MCA_INVOICE},EUR,{pre_tax},{MCA_TAX},issued,2025-04-09"


def test_azure_mca_month_with_rounding_rows_matches_its_invoice(pipeline):
    deliver_mca_month(pipeline.landing)
    daily = pipeline.materialize("2025-03-01", "2025-03-04")
    assert daily.success, failure_messages(daily)
    assert failed_checks(daily) == []
    # What the reader makes of MCA cost details: BillingAccountId is the MCA *billing account*
    # (billingAccountId "<guid>:<guid>_<date>", not the billing profile AB12-...), so that is the
    # id invoices.csv must name; the invoice id comes from every row, the billing period from
    # the run (runInfo.startDate).
    assert pipeline.query(
        "SELECT DISTINCT ProviderName, BillingAccountId, InvoiceId, BillingCurrency, "
        "x_BillingPeriod FROM core.cost_facts"
    ) == [("Microsoft", MCA_ACCOUNT, MCA_INVOICE, "EUR", "2025-03")]
    # RoundingAdjustment → Adjustment described by its charge type (what reconciliation counts
    # as rounding rows), Tax → Tax: 2 + 1 + 32 rows.
    assert pipeline.query(
        "SELECT ChargeCategory, count(*), sum(BilledCost) FROM core.cost_facts "
        "GROUP BY 1 ORDER BY 1"
    ) == [
        ("Adjustment", 2, MCA_ROUNDING_TOTAL),
        ("Tax", 1, MCA_TAX),
        ("Usage", 32, MCA_USAGE_TOTAL),
    ]
    assert pipeline.query(
        "SELECT DISTINCT ChargeDescription FROM core.cost_facts WHERE ChargeCategory = 'Adjustment'"
    ) == [("RoundingAdjustment",)]

    # The invoice as issued: 108.49 + 21.70 VAT.
    write_invoices(pipeline.landing, mca_invoice("108.49"))
    result = close_books(pipeline, "2025-03")
    assert result.success, failure_messages(result)
    assert pipeline.query(
        "SELECT ProviderName, BillingAccountId, InvoiceId, status, pre_tax_amount, tax_amount, "
        "source FROM finance.invoices"
    ) == [("Microsoft", MCA_ACCOUNT, MCA_INVOICE, "issued", MCA_PRE_TAX, MCA_TAX, "invoices_csv")]
    (line,) = reconciliation(pipeline, "2025-03")
    assert line == {
        "ProviderName": "Microsoft",
        "BillingAccountId": MCA_ACCOUNT,
        "InvoiceId": MCA_INVOICE,
        "BillingCurrency": "EUR",
        "invoice_status": "issued",
        "rows": 35,  # 32 usage + 2 rounding + 1 tax
        # Σ BilledCost without the Tax row, rounding rows included: 108.51 - 0.02 = 108.49.
        "facts_pre_tax": MCA_USAGE_TOTAL + MCA_ROUNDING_TOTAL,
        "invoice_pre_tax": MCA_PRE_TAX,
        "delta": Decimal("0"),
        "facts_tax": MCA_TAX,
        "invoice_tax": MCA_TAX,
        # max(100 × 0.01, √35 × 0.5 × 0.01 = 0.03, 0.5% × 108.49 = 0.54) = 1.00 EUR.
        "tolerance": Decimal("1.00"),
        "status": "match",
        "explained_delta": Decimal("0"),
        "unexplained_delta": Decimal("0"),
        "explanation": "",
        "rounding_cost": Decimal("-0.02"),  # -0.03 + 0.01, exactly
        "late_usage_cost": Decimal("0"),
        "other_period_credit_cost": Decimal("0"),
        "duplicate_cost": Decimal("0"),
    }
    assert line["facts_pre_tax"] == Decimal("108.49")
    check = issued_invoices_match(result)
    assert (check.passed, check.description) == (True, None)

    # The same invoice typed in 10.00 EUR too high (118.49): outside the 1.00 tolerance
    # (0.5% × 118.49 = 0.59 < 1.00), nothing explains it (the rounding rows are ±0.02), and the
    # blocking check fails naming the invoice.
    write_invoices(pipeline.landing, mca_invoice("118.49"))
    result = close_books(pipeline, "2025-03")
    assert not result.success
    (line,) = reconciliation(pipeline, "2025-03")
    assert {k: line[k] for k in ("invoice_pre_tax", "delta", "tolerance", "status")} == {
        "invoice_pre_tax": Decimal("118.49"),
        "delta": Decimal("-10.00"),  # 108.49 - 118.49
        "tolerance": Decimal("1.00"),
        "status": "mismatch",
    }
    assert (line["explanation"], line["unexplained_delta"]) == ("unexplained", Decimal("-10.00"))
    assert line["rounding_cost"] == Decimal("-0.02")
    check = issued_invoices_match(result)
    assert check.passed is False
    assert check.description == (
        f"1 issued invoice(s) outside tolerance: Microsoft account {MCA_ACCOUNT} invoice "
        f"{MCA_INVOICE} (2025-03): cost data 108.49 vs invoice 118.49 EUR before tax, delta "
        "-10.00 EUR (tolerance 1.00; unexplained -10.00 EUR)"
    )


# --- 2. GCP: late usage of 31 January on February's invoice ------------------------------------

GCP_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
GCP_TABLE = "gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
# service id | service | sku id | sku
E2_CORE, E2_RAM, GCS, BQ, EGRESS = table_of("""
    6F81-5844-456A | Compute Engine | CF4E-A0C7-E3BF | E2 Instance Core running in Belgium
    6F81-5844-456A | Compute Engine | F268-6CA1-8E4E | E2 Instance Ram running in Belgium
    95FF-2EF5-5EA1 | Cloud Storage  | E5F0-6A5D-7BAD | Standard Storage Belgium
    24E6-581D-38E5 | BigQuery       | 3362-E469-6BEF | Analysis
    E505-1604-58F8 | Networking     | 9DE9-9092-B3BC | Network Internet Egress from Belgium
""")
GCP_JANUARY_INVOICE = "3912345670"
GCP_FEBRUARY_INVOICE = "3912345671"


def gcp_row(
    day: str,
    sku: list[str],
    cost: str,
    credit: str | None,
    invoice_month: str,
    exported: str,
    hour: int = 0,
) -> str:
    """One billing export row as ``bq extract --destination_format NEWLINE_DELIMITED_JSON``
    writes it (timestamps 'YYYY-MM-DD HH:MM:SS UTC', FLOAT columns as JSON numbers)."""
    service_id, service, sku_id, sku_description = sku
    credits = (
        []
        if credit is None
        else [
            {
                "name": "Sustained usage discount",
                "amount": float(credit),
                "full_name": "Sustained usage discount",
                "id": "",
                "type": "SUSTAINED_USAGE_DISCOUNT",
            }
        ]
    )
    return json.dumps(
        {
            "billing_account_id": GCP_ACCOUNT,
            "service": {"id": service_id, "description": service},
            "sku": {"id": sku_id, "description": sku_description},
            "usage_start_time": f"{day} {hour:02d}:00:00 UTC",
            "usage_end_time": f"{day} {hour:02d}:59:59 UTC",
            "project": {"id": "acme-shop-prod", "number": "123456789012", "name": "Acme Shop"},
            "labels": [{"key": "team", "value": "shop"}],
            "location": {"location": "europe-west1", "country": "BE", "region": "europe-west1"},
            "export_time": f"{exported} UTC",
            "cost": float(cost),
            "cost_at_list": float(cost),
            "currency": "USD",
            "usage": {
                "amount": 1.0,
                "unit": "unit",
                "amount_in_pricing_units": 1.0,
                "pricing_unit": "unit",
            },
            "credits": credits,
            "invoice": {"month": invoice_month},
            "cost_type": "regular",
        }
    )


def gcp_dump(landing: Path, day: str, name: str, rows: list[str]) -> None:
    folder = landing / "gcp" / GCP_ACCOUNT / f"usage_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-000000000000.json").write_text("\n".join(rows) + "\n")


def deliver_gcp_turn_of_month(landing: Path) -> None:
    """Four usage days, 30 January to 2 February, one dump each, and an incremental dump of
    31 January exported on 3 February whose rows Google put on February's invoice."""
    for day, invoice_month, bigquery, exported in (
        # E2 core 4.80 - 0.60 sustained use = 4.20; E2 RAM 1.28 - 0.16 = 1.12; storage 0.52;
        # BigQuery as given.
        ("2025-01-30", "202501", "3.125", "2025-01-31 05:00:00"),  # 4.20+1.12+0.52+3.125 = 8.965
        ("2025-01-31", "202501", "2.505", "2025-02-01 05:00:00"),  # 4.20+1.12+0.52+2.505 = 8.345
        ("2025-02-01", "202502", "1.875", "2025-02-02 05:00:00"),  # 4.20+1.12+0.52+1.875 = 7.715
        ("2025-02-02", "202502", "0.815", "2025-02-03 05:00:00"),  # 4.20+1.12+0.52+0.815 = 6.655
    ):
        gcp_dump(
            landing,
            day,
            GCP_TABLE,
            [
                gcp_row(day, E2_CORE, "4.80", "-0.60", invoice_month, exported),
                gcp_row(day, E2_RAM, "1.28", "-0.16", invoice_month, exported),
                gcp_row(day, GCS, "0.52", None, invoice_month, exported),
                gcp_row(day, BQ, bigquery, None, invoice_month, exported),
            ],
        )
    # Late usage: 31 January's last hour, exported once February had begun and billed on
    # February's invoice: E2 core 4.00 - 0.50 sustained use = 3.50, egress 2.70; 6.20 together.
    late = ("2025-01-31", "202502", "2025-02-03 06:00:00")
    gcp_dump(
        landing,
        "2025-01-31",
        "export-20250203T060000",
        [
            gcp_row(late[0], E2_CORE, "4.00", "-0.50", late[1], late[2], hour=23),
            gcp_row(late[0], EGRESS, "2.70", None, late[1], late[2], hour=23),
        ],
    )


GCP_JANUARY = Decimal("17.31")  # 8.965 + 8.345: January's invoice, without the late rows
GCP_LATE = Decimal("6.20")  # 3.50 + 2.70
GCP_FEBRUARY = Decimal("20.57")  # 7.715 + 6.655 + 6.20 late: February's invoice


def test_gcp_late_usage_reconciles_on_the_next_invoice_month(pipeline):
    deliver_gcp_turn_of_month(pipeline.landing)
    daily = pipeline.materialize("2025-01-30", "2025-02-02")
    assert daily.success, failure_messages(daily)
    assert failed_checks(daily) == []
    # Daily facts are per usage day (31 January holds its late rows too: 8.345 + 6.20), the
    # billing period is invoice.month; GCP rows carry no invoice id (matched per account).
    assert pipeline.query(
        "SELECT charge_date::VARCHAR, x_BillingPeriod, count(*), sum(BilledCost), "
        "count(InvoiceId) FROM core.cost_facts GROUP BY 1, 2 ORDER BY 1, 2"
    ) == [
        ("2025-01-30", "2025-01", 4, Decimal("8.965"), 0),
        ("2025-01-31", "2025-01", 4, Decimal("8.345"), 0),
        ("2025-01-31", "2025-02", 2, GCP_LATE, 0),
        ("2025-02-01", "2025-02", 4, Decimal("7.715"), 0),
        ("2025-02-02", "2025-02", 4, Decimal("6.655"), 0),
    ]

    write_invoices(
        pipeline.landing,
        f"gcp,{GCP_ACCOUNT},2025-01,{GCP_JANUARY_INVOICE},USD,{GCP_JANUARY},0,issued,2025-02-02",
        f"gcp,{GCP_ACCOUNT},2025-02,{GCP_FEBRUARY_INVOICE},USD,{GCP_FEBRUARY},0,issued,2025-03-02",
    )
    common = {
        "ProviderName": "Google Cloud",
        "BillingAccountId": GCP_ACCOUNT,
        "BillingCurrency": "USD",
        "invoice_status": "issued",
        "delta": Decimal("0"),
        "facts_tax": Decimal("0"),
        "invoice_tax": Decimal("0"),
        # max(1.00, √rows × 0.005 ≤ 0.02, 0.5% × the invoice ≤ 0.11) = 1.00 USD.
        "tolerance": Decimal("1.00"),
        "status": "match",
        "explained_delta": Decimal("0"),
        "unexplained_delta": Decimal("0"),
        "explanation": "",
        "rounding_cost": Decimal("0"),
        "other_period_credit_cost": Decimal("0"),
        "duplicate_cost": Decimal("0"),
    }

    january = close_books(pipeline, "2025-01")
    assert january.success, failure_messages(january)
    # 8 rows of invoice month 202501: 17.31, to the cent; by usage month it would be
    # 17.31 + 6.20 = 23.51 against a 17.31 invoice, a mismatch.
    assert reconciliation(pipeline, "2025-01") == [
        {
            **common,
            "InvoiceId": GCP_JANUARY_INVOICE,
            "rows": 8,
            "facts_pre_tax": GCP_JANUARY,
            "invoice_pre_tax": GCP_JANUARY,
            "late_usage_cost": Decimal("0"),
        }
    ]
    assert issued_invoices_match(january).passed

    february = close_books(pipeline, "2025-02")
    assert february.success, failure_messages(february)
    # 8 February rows + the 2 late rows: 14.37 + 6.20 = 20.57; the late part is reported.
    assert reconciliation(pipeline, "2025-02") == [
        {
            **common,
            "InvoiceId": GCP_FEBRUARY_INVOICE,
            "rows": 10,
            "facts_pre_tax": GCP_FEBRUARY,
            "invoice_pre_tax": GCP_FEBRUARY,
            "late_usage_cost": GCP_LATE,  # (4.00 - 0.50) + 2.70, exactly
        }
    ]
    assert issued_invoices_match(february).passed


# --- 3. The same FOCUS export in two dataset folders -------------------------------------------

FOCUS_TEMPLATE = LAYOUTS / "focus_layouts/focus/acme-saas/costs/acme_focus_2024-02.csv"
ACME_ACCOUNT = "acme-saas-7781"
ACME_INVOICE = "ACME-2024-03-0042"
ACME_DELIVERY = "20240405T060000Z-acme"
ACME_MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
# charge day | description | category | cost: 4.20 + 1.35 + 3.90 + 1.35 - 0.50 = 10.30 USD.
ACME_ROWS = table_of("""
    2024-03-05 | Log ingestion  | Usage  | 4.20
    2024-03-05 | Metrics        | Usage  | 1.35
    2024-03-06 | Log ingestion  | Usage  | 3.90
    2024-03-06 | Metrics        | Usage  | 1.35
    2024-03-06 | Service credit | Credit | -0.50
""")
ACME_TOTAL = Decimal("10.30")
NOT_ON_A_CREDIT = ("ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit")


def acme_table() -> pa.Table:
    """Acme SaaS's March FOCUS 1.0 export (the layout fixture's usage line as the template), the
    invoice id on every row as a producer writes it once the month is invoiced."""
    (template,) = csv.DictReader(io.StringIO(FOCUS_TEMPLATE.read_text()))
    rows = []
    for day, description, category, cost in ACME_ROWS:
        row = {
            **template,
            "BillingPeriodStart": "2024-03-01T00:00:00Z",
            "BillingPeriodEnd": "2024-04-01T00:00:00Z",
            "ChargePeriodStart": f"{day}T00:00:00Z",
            "ChargePeriodEnd": f"{day[:8]}{int(day[8:]) + 1:02d}T00:00:00Z",
            "ChargeCategory": category,
            "ChargeDescription": description,
            "InvoiceId": ACME_INVOICE,
            **dict.fromkeys(ACME_MONEY, cost),
        }
        if category == "Credit":
            row.update(dict.fromkeys(NOT_ON_A_CREDIT, ""), ChargeFrequency="One-Time")
            row["PricingCategory"] = ""
        rows.append(row)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return pacsv.read_csv(
        io.BytesIO(text.getvalue().encode()),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(rows[0], pa.string()), strings_can_be_null=True
        ),
    )


def deliver_acme_twice(landing: Path) -> None:
    """March's delivery in acme/costs, and the same delivery folder copied by hand into
    acme/costs-copy (a manual copy beside the scheduled export: DOMAIN §10's first gap)."""
    folder = delivery_path(landing, "acme", "costs", "2024-03", ACME_DELIVERY)
    created = datetime(2024, 4, 5, 6, tzinfo=UTC)
    write_delivery(folder, acme_table(), "Acme SaaS", "costs", "2024-03", created, "csv")
    shutil.copytree(folder, delivery_path(landing, "acme", "costs-copy", "2024-03", ACME_DELIVERY))


@pytest.fixture(scope="module")
def doubled_once(tmp_path_factory) -> tuple[Pipeline, dg.ExecuteInProcessResult]:
    """The doubled landing zone through the daily run once (it fails, see the tests) and its
    run result."""
    root = tmp_path_factory.mktemp("doubled")
    landing = root / "landing"
    landing.mkdir()
    deliver_acme_twice(landing)
    with dg.DagsterInstance.ephemeral() as instance:
        state = Pipeline(
            landing=landing, warehouse=str(root / "warehouse.duckdb"), instance=instance
        )
        daily = state.materialize("2024-03-05", "2024-03-06")
    return state, daily


def duplicate_check(daily: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [
        e
        for e in daily.get_asset_check_evaluations()
        if e.asset_check_key.to_user_string() == "core/cost_facts:no_duplicate_charges"
    ]
    return check


def test_export_delivered_twice_is_stopped_and_named_by_reconciliation(pipeline, doubled_once):
    state, daily = doubled_once
    # The daily run: core/cost_facts is written, its blocking check fails, nothing downstream
    # (amortized, allocated, marts) runs on the doubled data.
    assert not daily.success
    assert failed_checks(daily) == ["core/cost_facts:no_duplicate_charges"]
    assert sorted(
        {
            e.materialization.asset_key.to_user_string()
            for e in daily.get_asset_materialization_events()
        }
    ) == ["core/cost_facts", "raw/aws_cur", "raw/azure_cost", "raw/focus", "raw/gcp_billing"]
    check = duplicate_check(daily)
    details = check.metadata["details"].value
    assert "remove the duplicate export from the landing zone" in check.description
    # Both days' charges are named with the two datasets they came from (and the two identical
    # files); the row counts are both copies, each row once: 2 charges × 2 datasets on 5 March,
    # 3 × 2 on 6 March.
    lines = {line.split(" | ")[0]: line for line in details.splitlines()}
    for day, rows in (("2024-03-05", 4), ("2024-03-06", 6)):
        line = lines[f"| {day}"]
        assert line.startswith(
            f"| {day} | USD | same charge in acme/costs and acme/costs-copy; identical files "
        )
        assert line.endswith(f" | {rows} |")

    # A user forces the doubled facts through finance: 5 rows × 2 datasets = 10.30 × 2 = 20.60.
    pipeline.restore(state)
    assert pipeline.query(
        "SELECT x_Dataset, count(*), sum(BilledCost) FROM core.cost_facts GROUP BY 1 ORDER BY 1"
    ) == [("acme/costs", 5, ACME_TOTAL), ("acme/costs-copy", 5, ACME_TOTAL)]
    write_invoices(
        pipeline.landing,
        f"Acme SaaS,{ACME_ACCOUNT},2024-03,{ACME_INVOICE},USD,{ACME_TOTAL},0,issued,2024-04-05",
    )
    result = close_books(pipeline, "2024-03")
    assert not result.success
    assert reconciliation(pipeline, "2024-03") == [
        {
            "ProviderName": "Acme SaaS",
            "BillingAccountId": ACME_ACCOUNT,
            "InvoiceId": ACME_INVOICE,
            "BillingCurrency": "USD",
            "invoice_status": "issued",
            "rows": 10,
            "facts_pre_tax": Decimal("20.60"),  # 10.30 + 10.30
            "invoice_pre_tax": ACME_TOTAL,
            "delta": Decimal("10.30"),  # 20.60 - 10.30
            "facts_tax": Decimal("0"),
            "invoice_tax": Decimal("0"),
            # max(1.00, √10 × 0.005 = 0.02, 0.5% × 10.30 = 0.05) = 1.00 USD.
            "tolerance": Decimal("1.00"),
            "status": "mismatch",
            "explained_delta": Decimal("10.30"),
            "unexplained_delta": Decimal("0"),
            "explanation": "rows delivered twice 10.30",
            "rounding_cost": Decimal("0"),
            "late_usage_cost": Decimal("0"),
            "other_period_credit_cost": Decimal("0"),
            # Σ BilledCost of the copy's rows (acme/costs-copy sorts after acme/costs).
            "duplicate_cost": ACME_TOTAL,
        }
    ]
    check = issued_invoices_match(result)
    assert check.passed is False
    assert check.description == (
        f"1 issued invoice(s) outside tolerance: Acme SaaS account {ACME_ACCOUNT} invoice "
        f"{ACME_INVOICE} (2024-03): cost data 20.60 vs invoice 10.30 USD before tax, delta "
        "+10.30 USD (tolerance 1.00; explained: rows delivered twice 10.30; unexplained +0.00 USD)"
    )


def test_duplicate_check_counts_each_row_once(doubled_once):
    _, daily = doubled_once
    # 5 charges delivered twice: 10 rows involved, each counted once although both signs (same
    # charge in two datasets, identical files) find every one of them.
    check = duplicate_check(daily)
    assert check.metadata["duplicate_rows"].value == 10
    assert check.description.startswith("10 row(s) look delivered twice")
