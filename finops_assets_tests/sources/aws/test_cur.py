"""AWS CUR (legacy CSV, CUR 1 Athena Parquet, CUR 2.0 Parquet) -> raw.aws_cur -> FOCUS 1.2.

Real DuckDB on real and hand-written files; every expected figure is worked out by hand in the
comments next to it.
"""

from __future__ import annotations

import csv
import json
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_assets.defs.sources.aws.cur import (
    FACT_SOURCE,
    RAW_CUR_COLUMNS,
    CurFormatError,
    CurLayout,
    cur_basis_totals_sql,
    cur_focus_sql,
    cur_staging_select,
    resolve_cur_layout,
)
from finops_assets.lib.facts import (
    account_totals_sql,
    day_totals_sql,
    facts_account_totals_sql,
    with_source_sql,
)
from finops_assets.lib.focus import ENUMERATED_COLUMNS, FOCUS_COLUMNS
from finops_assets.lib.totals import compare_totals, to_keyed_totals
from finops_assets_tests.paths import REAL_SAMPLES

REAL_LEGACY_CUR = REAL_SAMPLES / "aws_legacy_cur_anonymized.csv"

FOCUS_EXTRAS = ("charge_date", "x_DeliveryId", "x_SourceFile", "x_LineItemType")
FOCUS_OUTPUT = (*FOCUS_COLUMNS, *FOCUS_EXTRAS, "x_UnknownLineItemType", "x_AccountTags")
D = Decimal


def _source(reader: str) -> str:
    return f"(SELECT *, 'delivery-1' AS x_DeliveryId, 'cur-00001' AS x_SourceFile FROM {reader})"


def _csv_reader(path: Path) -> str:
    return f"read_csv('{path.as_posix()}', all_varchar = true, header = true)"


def _parquet_reader(path: Path) -> str:
    return f"read_parquet('{path.as_posix()}')"


def _stage(con: duckdb.DuckDBPyConnection, reader: str) -> CurLayout:
    source = _source(reader)
    described = {
        row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    }
    layout = resolve_cur_layout(described)
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("DROP TABLE IF EXISTS raw.aws_cur")
    con.execute(f"CREATE TABLE raw.aws_cur AS {cur_staging_select(source, layout)}")
    return layout


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --------------------------------------------------------------------------------------------
# The real anonymized legacy CUR
# --------------------------------------------------------------------------------------------


def test_real_legacy_cur_keeps_every_cent_and_speaks_focus():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tokyo'")  # naive or 'Z' times must still be UTC
    layout = _stage(con, _csv_reader(REAL_LEGACY_CUR))
    assert layout.flavour == "legacy"
    raw_columns = [row[0] for row in con.execute("DESCRIBE raw.aws_cur").fetchall()]
    assert raw_columns == [*RAW_CUR_COLUMNS, "x_DeliveryId", "x_SourceFile"]

    days = (date(2023, 11, 1), date(2023, 11, 30))
    focus = cur_focus_sql("raw.aws_cur", days)
    described = con.execute(f"DESCRIBE {focus}").fetchall()
    assert [row[0] for row in described] == list(FOCUS_OUTPUT)
    types = {row[0]: row[1].replace(" ", "") for row in described}
    for column, data_type in FOCUS_COLUMNS.items():
        expected = {"TIMESTAMPTZ": "TIMESTAMPWITHTIMEZONE"}.get(data_type, data_type)
        assert types[column] == expected.replace(" ", ""), column
    assert types["x_UnknownLineItemType"] == "BOOLEAN"

    count, billed, effective, unknown = con.execute(
        f"SELECT count(*), sum(BilledCost), sum(EffectiveCost), count_if(x_UnknownLineItemType) "
        f"FROM ({focus})"
    ).fetchall()[0]
    assert count == 1281
    assert billed == D("1.682308697400")  # Σ lineItem/UnblendedCost, exactly
    assert effective == D("1.682308697400")  # no commitments: amortized = unblended
    assert unknown == 0

    # 1,269 Usage rows and 12 Tax rows (one per product code); 14 usage days, 1-14 Nov.
    assert con.execute(
        f"SELECT ChargeCategory, count(*) FROM ({focus}) GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("Tax", 12), ("Usage", 1269)]
    assert con.execute(f"SELECT min(charge_date), max(charge_date) FROM ({focus})").fetchall() == [
        (date(2023, 11, 1), date(2023, 11, 14))
    ]

    for column, allowed in ENUMERATED_COLUMNS.items():
        values = {
            row[0] for row in con.execute(f"SELECT DISTINCT {column} FROM ({focus})").fetchall()
        }
        assert values <= {*allowed, None}, column
    # Mandatory FOCUS columns are never empty here.
    assert con.execute(
        f"SELECT count(*) FROM ({focus}) WHERE BillingAccountId IS NULL OR BillingCurrency IS NULL "
        "OR ChargeCategory IS NULL OR ServiceName IS NULL OR ServiceCategory IS NULL "
        "OR ChargePeriodStart IS NULL OR BillingPeriodStart IS NULL OR ListCost IS NULL "
        "OR ContractedCost IS NULL OR Tags <> '{}'"
    ).fetchall() == [(0,)]

    accounts = con.execute(
        f"SELECT DISTINCT BillingAccountId, SubAccountId, InvoiceId FROM ({focus})"
    ).fetchall()
    assert accounts == [("123412340534", "123412340534", None)]  # strings; InvoiceId is empty
    assert all(isinstance(value, str) for value in accounts[0][:2])
    # The file's periods are 'Z' times: Nov 2023 billing period, in UTC.
    assert con.execute(
        f"SELECT DISTINCT CAST(timezone('UTC', BillingPeriodStart) AS VARCHAR), "
        f"CAST(timezone('UTC', BillingPeriodEnd) AS VARCHAR) FROM ({focus})"
    ).fetchall() == [("2023-11-01 00:00:00", "2023-12-01 00:00:00")]

    totals = con.execute(
        f"SELECT sum(rows), sum(billed), sum(effective) FROM ({cur_basis_totals_sql('raw.aws_cur', days)})"
    ).fetchall()
    assert totals == [(1281, D("1.682308697400"), D("1.682308697400"))]


# --------------------------------------------------------------------------------------------
# Hand-written rows, one per line item type, in all three flavours
# --------------------------------------------------------------------------------------------

PAYER = "000123456789"  # leading zeros must survive
USAGE_ACCOUNT = "012345678901"
RI_ARN = "arn:aws:ec2:us-east-1:012345678901:reserved-instances/ri-1"
SP_ARN = "arn:aws:savingsplans::000123456789:savingsplan/sp-1"
MARCH = ("2024-03-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z")

# Canonical (Athena) name -> legacy CSV name, for the columns the hand-written rows use.
LEGACY_NAMES = {
    "bill_invoice_id": "bill/InvoiceId",
    "bill_invoicing_entity": "bill/InvoicingEntity",
    "bill_billing_entity": "bill/BillingEntity",
    "bill_payer_account_id": "bill/PayerAccountId",
    "bill_billing_period_start_date": "bill/BillingPeriodStartDate",
    "bill_billing_period_end_date": "bill/BillingPeriodEndDate",
    "line_item_usage_account_id": "lineItem/UsageAccountId",
    "line_item_line_item_type": "lineItem/LineItemType",
    "line_item_usage_start_date": "lineItem/UsageStartDate",
    "line_item_usage_end_date": "lineItem/UsageEndDate",
    "line_item_product_code": "lineItem/ProductCode",
    "line_item_operation": "lineItem/Operation",
    "line_item_resource_id": "lineItem/ResourceId",
    "line_item_usage_amount": "lineItem/UsageAmount",
    "line_item_currency_code": "lineItem/CurrencyCode",
    "line_item_unblended_cost": "lineItem/UnblendedCost",
    "product_product_name": "product/ProductName",
    "product_servicecode": "product/servicecode",
    "product_region": "product/region",
    "pricing_public_on_demand_cost": "pricing/publicOnDemandCost",
    "pricing_unit": "pricing/unit",
    "reservation_reservation_a_r_n": "reservation/ReservationARN",
    "reservation_effective_cost": "reservation/EffectiveCost",
    "reservation_unused_amortized_upfront_fee_for_billing_period": (
        "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"
    ),
    "reservation_unused_recurring_fee": "reservation/UnusedRecurringFee",
    "savings_plan_savings_plan_a_r_n": "savingsPlan/SavingsPlanARN",
    "savings_plan_savings_plan_effective_cost": "savingsPlan/SavingsPlanEffectiveCost",
    "savings_plan_total_commitment_to_date": "savingsPlan/TotalCommitmentToDate",
    "savings_plan_used_commitment": "savingsPlan/UsedCommitment",
}
MONEY_COLUMNS = {
    "line_item_usage_amount",
    "line_item_unblended_cost",
    "pricing_public_on_demand_cost",
    "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
}
TIME_COLUMNS = {
    "bill_billing_period_start_date",
    "bill_billing_period_end_date",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
}


def _row(resource: str, line_type: str, start: str, end: str, cost: str, **extra: str) -> dict:
    row = dict.fromkeys(LEGACY_NAMES, "")
    row.update(
        bill_invoicing_entity="Amazon Web Services, Inc.",
        bill_billing_entity="AWS",
        bill_payer_account_id=PAYER,
        bill_billing_period_start_date=MARCH[0],
        bill_billing_period_end_date=MARCH[1],
        line_item_usage_account_id=USAGE_ACCOUNT,
        line_item_line_item_type=line_type,
        line_item_usage_start_date=start,
        line_item_usage_end_date=end,
        line_item_product_code="AmazonEC2",
        line_item_operation="RunInstances",
        line_item_resource_id=resource,
        line_item_usage_amount="1",
        line_item_currency_code="USD",
        line_item_unblended_cost=cost,
        product_product_name="Amazon Elastic Compute Cloud",
        product_servicecode="AmazonEC2",
        product_region="us-east-1",
        pricing_unit="Hrs",
    )
    row.update(extra)
    return row


H0, H1, H2 = "2024-03-01T00:00:00.000Z", "2024-03-01T01:00:00.000Z", "2024-03-01T02:00:00.000Z"
D2, D2H1 = "2024-03-02T00:00:00Z", "2024-03-02T01:00:00Z"  # the other legacy time spelling
TAGS = {"r01": ("payments", "search")}  # resourceTags/user:Team, resourceTags/user:team

CUR_ROWS = [
    # On-demand usage: billed = effective = 1.50.
    _row("r01", "Usage", H0, H1, "1.50", pricing_public_on_demand_cost="1.50"),
    # SP-covered usage: billed at on-demand 2.00, amortized at the SP effective cost 1.20.
    _row(
        "r02",
        "SavingsPlanCoveredUsage",
        H1,
        H2,
        "2.00",
        pricing_public_on_demand_cost="2.00",
        savings_plan_savings_plan_a_r_n=SP_ARN,
        savings_plan_savings_plan_effective_cost="1.20",
    ),
    # The negation takes the covered on-demand cost off the bill: billed -2.00, amortized 0.
    _row("r03", "SavingsPlanNegation", H1, H2, "-2.00", savings_plan_savings_plan_a_r_n=SP_ARN),
    # SP recurring fee 10.00 of which 7.25 used: amortized = unused = 10.00 - 7.25 = 2.75.
    _row(
        "r04",
        "SavingsPlanRecurringFee",
        H0,
        H1,
        "10.00",
        line_item_product_code="ComputeSavingsPlans",
        product_servicecode="",
        product_product_name="Savings Plans for AWS Compute usage",
        savings_plan_savings_plan_a_r_n=SP_ARN,
        savings_plan_total_commitment_to_date="10.00",
        savings_plan_used_commitment="7.25",
    ),
    # SP upfront fee: billed 100.00, amortized 0 (spread over the covered usage instead).
    _row(
        "r05",
        "SavingsPlanUpfrontFee",
        D2,
        D2,
        "100.00",
        line_item_product_code="ComputeSavingsPlans",
        product_servicecode="",
        product_product_name="Savings Plans for AWS Compute usage",
        savings_plan_savings_plan_a_r_n=SP_ARN,
    ),
    # RI-covered usage: billed 0, amortized at the reservation effective cost 0.80.
    _row(
        "r06",
        "DiscountedUsage",
        D2,
        D2H1,
        "0",
        pricing_public_on_demand_cost="1.10",
        reservation_reservation_a_r_n=RI_ARN,
        reservation_effective_cost="0.80",
    ),
    # RI monthly fee 30.00: amortized = unused upfront 3.00 + unused recurring 1.50 = 4.50.
    _row(
        "r07",
        "RIFee",
        D2,
        MARCH[1],
        "30.00",
        reservation_reservation_a_r_n=RI_ARN,
        reservation_unused_amortized_upfront_fee_for_billing_period="3.00",
        reservation_unused_recurring_fee="1.50",
    ),
    # RI upfront fee (Fee with a reservation ARN): billed 500.00, amortized 0.
    _row("r08", "Fee", D2, D2, "500.00", reservation_reservation_a_r_n=RI_ARN),
    # Support fee for the whole month (Fee without ARN): billed = amortized = 29.00, Recurring.
    _row(
        "r09",
        "Fee",
        MARCH[0],
        MARCH[1],
        "29.00",
        line_item_product_code="AWSSupportBusiness",
        product_servicecode="AWSSupportBusiness",
        product_product_name="AWS Support (Business)",
    ),
    # Tax 3.10 for the month.
    _row("r10", "Tax", MARCH[0], MARCH[1], "3.10", line_item_operation=""),
    # Credit -5.00 and a refund -1.00 inside March; a refund -2.00 for February's usage.
    _row("r11", "Credit", D2, D2H1, "-5.00"),
    _row("r12", "Refund", D2, D2H1, "-1.00"),
    _row("r13", "Refund", "2024-02-10T00:00:00.000Z", "2024-02-11T00:00:00.000Z", "-2.00"),
    # EDP discount -0.30.
    _row("r14", "EdpDiscount", H0, H1, "-0.30"),
    # A type we do not know, billed in EUR: kept at unblended 0.40, flagged.
    _row("r15", "FutureLineItemType", D2, D2H1, "0.40", line_item_currency_code="EUR"),
    # EKS split-cost-allocation detail: repeats the instance cost, must not be counted.
    _row("r16", "Usage", H0, H1, "0.70", line_item_operation="EKSPod-EC2"),
    # Naive time (no 'Z'): UTC, so 2024-03-02 even in a Tokyo session.
    _row("r17", "Usage", "2024-03-02T02:00:00", "2024-03-02T03:00:00", "0.25"),
]

# resource -> (BilledCost, EffectiveCost, ChargeCategory), by hand from the comments above.
EXPECTED = {
    "r01": (D("1.50"), D("1.50"), "Usage"),
    "r02": (D("2.00"), D("1.20"), "Usage"),
    "r03": (D("-2.00"), D("0"), "Usage"),
    "r04": (D("10.00"), D("2.75"), "Purchase"),
    "r05": (D("100.00"), D("0"), "Purchase"),
    "r06": (D("0"), D("0.80"), "Usage"),
    "r07": (D("30.00"), D("4.50"), "Purchase"),
    "r08": (D("500.00"), D("0"), "Purchase"),
    "r09": (D("29.00"), D("29.00"), "Purchase"),
    "r10": (D("3.10"), D("3.10"), "Tax"),
    "r11": (D("-5.00"), D("-5.00"), "Credit"),
    "r12": (D("-1.00"), D("-1.00"), "Credit"),
    "r13": (D("-2.00"), D("-2.00"), "Credit"),
    "r14": (D("-0.30"), D("-0.30"), "Credit"),
    "r15": (D("0.40"), D("0.40"), "Usage"),
    "r17": (D("0.25"), D("0.25"), "Usage"),
}
# Per charge day and currency (rows, billed, effective):
#   2024-02-10 USD: r13                         billed -2.00, effective -2.00
#   2024-03-01 USD: r01 r02 r03 r04 r09 r10 r14 billed 1.50+2.00-2.00+10.00+29.00+3.10-0.30
#                   = 43.30; effective 1.50+1.20+0+2.75+29.00+3.10-0.30 = 37.25 (r16 excluded)
#   2024-03-02 USD: r05 r06 r07 r08 r11 r12 r17 billed 100+0+30+500-5-1+0.25 = 624.25;
#                   effective 0+0.80+4.50+0-5-1+0.25 = -0.45
#   2024-03-02 EUR: r15                         billed 0.40, effective 0.40
EXPECTED_TOTALS = [
    (date(2024, 2, 10), "USD", 1, D("-2.00"), D("-2.00")),
    (date(2024, 3, 1), "USD", 7, D("43.30"), D("37.25")),
    (date(2024, 3, 2), "EUR", 1, D("0.40"), D("0.40")),
    (date(2024, 3, 2), "USD", 7, D("624.25"), D("-0.45")),
]
DAYS = (date(2024, 2, 1), date(2024, 3, 31))


def _write_legacy_csv(path: Path) -> Path:
    header = [*LEGACY_NAMES.values(), "resourceTags/user:Team", "resourceTags/user:team"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in CUR_ROWS:
            tags = TAGS.get(row["line_item_resource_id"], ("", ""))
            writer.writerow([*(row[c] for c in LEGACY_NAMES), *tags])
    return path


def _parquet_value(column: str, value: str):
    if value == "":
        return None
    if column in MONEY_COLUMNS:
        return float(value)  # Athena/Data Exports Parquet carries money as DOUBLE
    if column in TIME_COLUMNS:
        return datetime.fromisoformat(value.replace("Z", "").replace(".000", ""))  # naive UTC
    return value


def _arrow_column(column: str, values: list):
    if column in MONEY_COLUMNS:
        return pa.array(values, pa.float64())
    if column in TIME_COLUMNS:
        return pa.array(values, pa.timestamp("ms"))
    return pa.array(values, pa.string())


def _write_athena_parquet(path: Path) -> Path:
    data = {
        column: _arrow_column(column, [_parquet_value(column, row[column]) for row in CUR_ROWS])
        for column in LEGACY_NAMES
    }
    # Athena folds tag names to lower case: only one team tag column can exist.
    data["resource_tags_user_team"] = pa.array(
        [TAGS.get(row["line_item_resource_id"], (None,))[0] for row in CUR_ROWS], pa.string()
    )
    pq.write_table(pa.table(data), path)
    return path


def _write_cur2_parquet(path: Path) -> Path:
    moved = {"product_product_name", "product_region"}  # CUR 2.0: in the map / renamed
    data = {
        column: _arrow_column(column, [_parquet_value(column, row[column]) for row in CUR_ROWS])
        for column in LEGACY_NAMES
        if column not in moved
    }
    data["product_region_code"] = pa.array([row["product_region"] for row in CUR_ROWS])
    string_map = pa.map_(pa.string(), pa.string())
    data["product"] = pa.array(
        [[("product_name", row["product_product_name"])] for row in CUR_ROWS], string_map
    )
    data["resource_tags"] = pa.array(
        [
            [("user:Team", "payments"), ("user_team", "search"), ("user:empty", "")]
            if row["line_item_resource_id"] == "r01"
            else []
            for row in CUR_ROWS
        ],
        string_map,
    )
    data["cost_category"] = pa.array(
        [
            [("Product", "checkout")] if row["line_item_resource_id"] == "r01" else None
            for row in CUR_ROWS
        ],
        string_map,
    )
    data["discount"] = pa.array([[] for _ in CUR_ROWS], string_map)
    pq.write_table(pa.table(data), path)
    return path


@pytest.fixture(params=["legacy", "athena", "cur2"])
def staged(request, tmp_path):
    writers = {
        "legacy": lambda: _csv_reader(_write_legacy_csv(tmp_path / "cur-00001.csv")),
        "athena": lambda: _parquet_reader(_write_athena_parquet(tmp_path / "cur-00001.parquet")),
        "cur2": lambda: _parquet_reader(_write_cur2_parquet(tmp_path / "cur2-00001.parquet")),
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tokyo'")
    layout = _stage(con, writers[request.param]())
    assert layout.flavour == request.param
    return con, layout


def test_each_line_item_type_costs_what_the_formula_says(staged):
    con, _ = staged
    rows = {
        row["ResourceId"]: row
        for row in _rows(con, f"SELECT * FROM ({cur_focus_sql('raw.aws_cur', DAYS)})")
    }
    assert sorted(rows) == sorted(EXPECTED)  # 16 rows: the EKSPod-EC2 split row r16 is gone
    for resource, (billed, effective, category) in EXPECTED.items():
        row = rows[resource]
        assert (row["BilledCost"], row["EffectiveCost"], row["ChargeCategory"]) == (
            billed,
            effective,
            category,
        ), resource

    # Only the unknown type is flagged, and it stays at its unblended cost.
    assert {r for r, row in rows.items() if row["x_UnknownLineItemType"]} == {"r15"}
    assert rows["r15"]["x_LineItemType"] == "FutureLineItemType"

    # Correction only for the refund of February usage billed in March.
    assert {r for r, row in rows.items() if row["ChargeClass"] == "Correction"} == {"r13"}
    assert rows["r13"]["charge_date"] == date(2024, 2, 10)
    assert rows["r17"]["charge_date"] == date(2024, 3, 2)  # naive time read as UTC

    frequencies = {r: row["ChargeFrequency"] for r, row in rows.items()}
    assert frequencies == {
        "r01": "Usage-Based",
        "r02": "Usage-Based",
        "r03": "Usage-Based",
        "r04": "Recurring",
        "r05": "One-Time",
        "r06": "Usage-Based",
        "r07": "Recurring",
        "r08": "One-Time",
        "r09": "Recurring",  # a Fee spanning the whole billing period
        "r10": "Usage-Based",
        "r11": "One-Time",
        "r12": "One-Time",
        "r13": "One-Time",
        "r14": "Usage-Based",
        "r15": "Usage-Based",
        "r17": "Usage-Based",
    }

    commitments = {
        r: (
            row["CommitmentDiscountId"],
            row["CommitmentDiscountType"],
            row["CommitmentDiscountCategory"],
            row["CommitmentDiscountStatus"],
        )
        for r, row in rows.items()
        if row["CommitmentDiscountId"] is not None
    }
    assert commitments == {
        "r02": (SP_ARN, "Savings Plan", "Spend", "Used"),
        "r03": (SP_ARN, "Savings Plan", "Spend", "Used"),
        "r04": (SP_ARN, "Savings Plan", "Spend", None),
        "r05": (SP_ARN, "Savings Plan", "Spend", None),
        "r06": (RI_ARN, "Reserved Instance", "Usage", "Used"),
        "r07": (RI_ARN, "Reserved Instance", "Usage", None),
        "r08": (RI_ARN, "Reserved Instance", "Usage", None),
    }

    # List/contracted cost: on-demand where consumption; the negation does not cancel r02.
    assert (rows["r02"]["ListCost"], rows["r02"]["ContractedCost"]) == (D("2.00"), D("2.00"))
    assert (rows["r03"]["ListCost"], rows["r03"]["ContractedCost"]) == (D("0"), D("0"))
    assert (rows["r06"]["ListCost"], rows["r06"]["ContractedCost"]) == (D("1.10"), D("1.10"))
    assert (rows["r10"]["ListCost"], rows["r10"]["ContractedCost"]) == (D("0"), D("3.10"))
    assert rows["r17"]["ListCost"] is None  # consumption without a public price: not invented
    assert rows["r03"]["ConsumedQuantity"] is None
    assert rows["r01"]["ConsumedQuantity"] == D("1")

    assert {row["ServiceCategory"] for row in rows.values()} == {
        "Compute",
        "Other",
        "Management and Governance",
    }
    assert rows["r09"]["ServiceCategory"] == "Management and Governance"
    # Tax is billed per service and keeps the service's category: one category per ServiceName.
    assert rows["r10"]["ServiceCategory"] == "Compute"
    by_name: dict[str, set] = {}
    for row in rows.values():
        by_name.setdefault(row["ServiceName"], set()).add(row["ServiceCategory"])
    assert all(len(categories) == 1 for categories in by_name.values()), by_name
    assert rows["r01"]["ServiceName"] == "Amazon Elastic Compute Cloud"
    assert rows["r01"]["RegionId"] == "us-east-1"
    assert rows["r01"]["PricingCategory"] == "Standard"
    assert rows["r02"]["PricingCategory"] == "Committed"
    assert {(row["BillingAccountId"], row["SubAccountId"]) for row in rows.values()} == {
        (PAYER, USAGE_ACCOUNT)
    }
    assert {row["InvoiceIssuerName"] for row in rows.values()} == {"Amazon Web Services, Inc."}
    assert {row["BillingCurrency"] for row in rows.values()} == {"USD", "EUR"}
    assert {row["Tags"] for r, row in rows.items() if r != "r01"} == {"{}"}

    for column, allowed in ENUMERATED_COLUMNS.items():
        assert {row[column] for row in rows.values()} <= {*allowed, None}, column


def test_tags_keep_the_keys_as_delivered(staged):
    con, layout = staged
    tags = con.execute(
        f"SELECT Tags FROM ({cur_focus_sql('raw.aws_cur', DAYS)}) WHERE ResourceId = 'r01'"
    ).fetchall()[0][0]
    expected = {
        # Legacy: user:Team and user:team are two tags, both kept (case-sensitive keys).
        "legacy": {"user:Team": "payments", "user:team": "search"},
        # Athena names are lower-cased by AWS: the best recoverable key is user:team.
        "athena": {"user:team": "payments"},
        # CUR 2.0 map keys as delivered, empty values dropped.
        "cur2": {"user:Team": "payments", "user_team": "search"},
    }[layout.flavour]
    assert json.loads(tags) == expected
    categories = con.execute(
        "SELECT x_CostCategories FROM raw.aws_cur WHERE line_item_resource_id = 'r01'"
    ).fetchall()[0][0]
    assert json.loads(categories) == ({"Product": "checkout"} if layout.flavour == "cur2" else {})


def test_basis_totals_reconcile_with_focus_per_day_and_currency(staged):
    con, _ = staged
    totals = con.execute(day_totals_sql(cur_basis_totals_sql("raw.aws_cur", DAYS))).fetchall()
    assert totals == EXPECTED_TOTALS
    from_focus = con.execute(
        f"""SELECT charge_date, BillingCurrency, count(*), sum(BilledCost), sum(EffectiveCost)
            FROM ({cur_focus_sql("raw.aws_cur", DAYS)}) GROUP BY ALL ORDER BY 1, 2"""
    ).fetchall()
    assert from_focus == EXPECTED_TOTALS


def test_reconciliation_per_account_and_invoice_month_catches_a_cent(staged):
    """The reconciliation check's two sides: the CUR's own basis per payer account and invoice
    month, and the FOCUS facts tagged with the source. Equal as loaded; one cent moved on one
    row is reported against that account and month."""
    con, _ = staged
    con.execute("CREATE SCHEMA core")
    con.execute("ALTER TABLE raw.aws_cur ADD COLUMN x_Dataset VARCHAR DEFAULT 'aws-cur/r'")
    con.execute("ALTER TABLE raw.aws_cur ADD COLUMN x_BillingPeriod VARCHAR DEFAULT '2024-03'")
    con.execute(f"CREATE TABLE core.cost_facts AS {with_source_sql(FACT_SOURCE, DAYS)}")
    basis = to_keyed_totals(
        con.execute(account_totals_sql(cur_basis_totals_sql("raw.aws_cur", DAYS))).fetchall()
    )
    facts = to_keyed_totals(
        con.execute(facts_account_totals_sql("core.cost_facts", "aws_cur", DAYS)).fetchall()
    )
    # 43.30 + 0.40 + 624.25 billed in March; the -2.00 February credit is billed in March too.
    assert {k: (t.billed, t.effective) for k, t in basis.items()} == {
        ("000123456789", "2024-03", "EUR"): (D("0.40"), D("0.40")),
        ("000123456789", "2024-03", "USD"): (D("665.55"), D("34.80")),
    }
    assert compare_totals(basis, facts, ("account", "month", "currency")) == []
    con.execute(
        "UPDATE core.cost_facts SET BilledCost = BilledCost + 0.01 WHERE BillingCurrency = 'EUR'"
    )
    facts = to_keyed_totals(
        con.execute(facts_account_totals_sql("core.cost_facts", "aws_cur", DAYS)).fetchall()
    )
    assert compare_totals(basis, facts, ("account", "month", "currency")) == [
        {
            "account": "000123456789",
            "month": "2024-03",
            "currency": "EUR",
            "measure": "billed",
            "expected": "0.400000000000",
            "actual": "0.410000000000",
            "difference": "0.010000000000",
        }
    ]


def test_one_day_window_selects_only_that_day(staged):
    con, _ = staged
    one_day = (date(2024, 3, 1), date(2024, 3, 1))
    assert con.execute(
        f"SELECT count(*), sum(BilledCost) FROM ({cur_focus_sql('raw.aws_cur', one_day)})"
    ).fetchall() == [(7, D("43.30"))]


def test_raw_keeps_account_ids_as_strings_and_lineage(staged):
    con, _ = staged
    rows = con.execute(
        "SELECT DISTINCT bill_payer_account_id, line_item_usage_account_id, x_DeliveryId, "
        "x_SourceFile FROM raw.aws_cur"
    ).fetchall()
    assert rows == [(PAYER, USAGE_ACCOUNT, "delivery-1", "cur-00001")]
    # Raw keeps the split row (17 rows); only FOCUS and the totals drop it.
    assert con.execute("SELECT count(*) FROM raw.aws_cur").fetchall() == [(17,)]


def test_net_unblended_cost_is_the_billed_basis_when_present(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text(
        "lineItem/LineItemType,lineItem/UnblendedCost,lineItem/NetUnblendedCost,"
        "lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/UsageAccountId,"
        "lineItem/CurrencyCode,lineItem/ResourceId,savingsPlan/SavingsPlanEffectiveCost,"
        "savingsPlan/NetSavingsPlanEffectiveCost,savingsPlan/SavingsPlanARN\n"
        # net 9.00 of unblended 10.00 -> billed = effective = 9.00
        "Usage,10.00,9.00,2024-03-01T00:00:00Z,2024-03-01T01:00:00Z,000000000001,USD,a,,,\n"
        # no net figure on this row -> unblended 4.00
        "Usage,4.00,,2024-03-01T00:00:00Z,2024-03-01T01:00:00Z,000000000001,USD,b,,,\n"
        # SP covered: billed net 1.80, effective = net SP effective cost 0.90 (gross 1.00)
        "SavingsPlanCoveredUsage,2.00,1.80,2024-03-01T00:00:00Z,2024-03-01T01:00:00Z,"
        "000000000001,USD,c,1.00,0.90,arn:sp\n"
    )
    con = duckdb.connect()
    _stage(con, _csv_reader(path))
    rows = con.execute(
        f"SELECT ResourceId, BilledCost, EffectiveCost, BillingAccountId, "
        f"CAST(timezone('UTC', BillingPeriodStart) AS VARCHAR) "
        f"FROM ({cur_focus_sql('raw.aws_cur', (date(2024, 3, 1), date(2024, 3, 1)))}) ORDER BY 1"
    ).fetchall()
    # No bill/ columns: the billing account falls back to the usage account, the billing period
    # to the calendar month of the usage.
    assert rows == [
        ("a", D("9.00"), D("9.00"), "000000000001", "2024-03-01 00:00:00"),
        ("b", D("4.00"), D("4.00"), "000000000001", "2024-03-01 00:00:00"),
        ("c", D("1.80"), D("0.90"), "000000000001", "2024-03-01 00:00:00"),
    ]
    assert con.execute(
        f"SELECT billed, effective FROM ({cur_basis_totals_sql('raw.aws_cur', (date(2024, 3, 1), date(2024, 3, 1)))})"
    ).fetchall() == [(D("14.80"), D("13.90"))]  # 9.00 + 4.00 + 1.80; 9.00 + 4.00 + 0.90


def test_cur2_csv_carries_its_maps_as_json_text(tmp_path):
    path = tmp_path / "cur2.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "line_item_line_item_type",
                "line_item_unblended_cost",
                "line_item_usage_start_date",
                "line_item_usage_end_date",
                "line_item_usage_account_id",
                "line_item_currency_code",
                "line_item_product_code",
                "product",
                "resource_tags",
                "cost_category",
            ]
        )
        writer.writerow(
            [
                "Usage",
                "0.125",
                "2024-03-01T23:00:00Z",
                "2024-03-02T00:00:00Z",
                "001122334455",
                "USD",
                "AmazonS3",
                '{"product_name": "Amazon Simple Storage Service", "region": "eu-west-1"}',
                '{"user:Team": "payments", "user_team": "", "aws:createdBy": "root"}',
                "",
            ]
        )
    con = duckdb.connect()
    assert _stage(con, _csv_reader(path)).flavour == "cur2"
    rows = con.execute(
        "SELECT charge_date, BilledCost, SubAccountId, ServiceName, ServiceCategory, RegionId, "
        f"Tags FROM ({cur_focus_sql('raw.aws_cur', (date(2024, 3, 1), date(2024, 3, 1)))})"
    ).fetchall()
    assert rows == [
        (
            date(2024, 3, 1),
            D("0.125"),
            "001122334455",
            "Amazon Simple Storage Service",
            "Storage",
            "eu-west-1",
            '{"user:Team":"payments","aws:createdBy":"root"}',
        )
    ]


# --------------------------------------------------------------------------------------------
# Refusing bad files
# --------------------------------------------------------------------------------------------


def test_missing_unblended_cost_is_refused_with_the_column_named(tmp_path):
    path = _write_legacy_csv(tmp_path / "cur.csv")
    con = duckdb.connect()
    described = {
        row[0]: row[1]
        for row in con.execute(f"DESCRIBE SELECT * FROM {_csv_reader(path)}").fetchall()
        if row[0] != "lineItem/UnblendedCost"
    }
    with pytest.raises(CurFormatError, match=r"legacy CUR.*lineItem/UnblendedCost.*Fix:") as error:
        resolve_cur_layout(described)
    assert isinstance(error.value, ValueError)
    assert "lineItem/UsageStartDate" not in str(error.value)  # only what is missing


def test_missing_accounts_in_cur2_names_both_alternatives():
    described = {
        "line_item_line_item_type": "VARCHAR",
        "line_item_unblended_cost": "DOUBLE",
        "line_item_usage_start_date": "TIMESTAMP",
        "line_item_usage_end_date": "TIMESTAMP",
        "line_item_currency_code": "VARCHAR",
        "product": "MAP(VARCHAR, VARCHAR)",
    }
    with pytest.raises(
        CurFormatError, match=r"CUR 2\.0.*line_item_usage_account_id or bill_payer_account_id"
    ):
        resolve_cur_layout(described)


def test_a_bad_number_fails_the_load_instead_of_becoming_null(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "lineItem/LineItemType,lineItem/UnblendedCost,lineItem/UsageStartDate,"
        "lineItem/UsageEndDate,lineItem/UsageAccountId,lineItem/CurrencyCode\n"
        "Usage,$1.00,2024-03-01T00:00:00Z,2024-03-01T01:00:00Z,000000000001,USD\n"
    )
    con = duckdb.connect()
    with pytest.raises(duckdb.ConversionException, match=r"\$1\.00"):
        _stage(con, _csv_reader(path))


def test_header_row_restores_tag_keys_duckdb_renamed():
    described = {
        "lineItem/LineItemType": "VARCHAR",
        "lineItem/UnblendedCost": "VARCHAR",
        "lineItem/UsageStartDate": "VARCHAR",
        "lineItem/UsageEndDate": "VARCHAR",
        "lineItem/UsageAccountId": "VARCHAR",
        "lineItem/CurrencyCode": "VARCHAR",
        "resourceTags/user:Team": "VARCHAR",
        "resourceTags/user:team_1": "VARCHAR",  # DuckDB's rename of user:team
        "resourceTags/user:env_2": "VARCHAR",  # a real key that only looks renamed
    }
    by_rule = resolve_cur_layout(described).tag_columns
    assert by_rule == {
        "resourceTags/user:Team": "user:Team",
        "resourceTags/user:team_1": "user:team",
        "resourceTags/user:env_2": "user:env_2",
    }
    # The file's own header row settles it: here "user:team_1" really is the delivered key.
    # The lineage column the caller appended after the file's columns is not in the header.
    header = list(described)
    with_lineage = {**described, "x_DeliveryId": "VARCHAR"}
    assert resolve_cur_layout(with_lineage, header=header).tag_columns == {
        "resourceTags/user:Team": "user:Team",
        "resourceTags/user:team_1": "user:team_1",
        "resourceTags/user:env_2": "user:env_2",
    }
    # A header that does not line up with the columns is not trusted: the rule applies.
    assert resolve_cur_layout(described, header=list(reversed(header))).tag_columns == by_rule


# --------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------

SYNTHETIC_ROWS = 1_000_000


@pytest.mark.timing
def test_one_million_rows_stage_and_convert_in_under_ten_seconds(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    # A legacy CUR as read_csv(all_varchar) delivers it: text everywhere, slash names, two tags.
    con.execute(
        f"""
        CREATE TABLE landing AS
        SELECT
            'id' || i AS "identity/LineItemId",
            '' AS "bill/InvoiceId",
            'Amazon Web Services, Inc.' AS "bill/InvoicingEntity",
            'AWS' AS "bill/BillingEntity",
            '000123456789' AS "bill/PayerAccountId",
            '2024-03-01T00:00:00.000Z' AS "bill/BillingPeriodStartDate",
            '2024-04-01T00:00:00.000Z' AS "bill/BillingPeriodEndDate",
            lpad(CAST(i % 7 AS VARCHAR), 12, '0') AS "lineItem/UsageAccountId",
            ['Usage', 'Usage', 'Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage',
             'SavingsPlanNegation', 'Tax', 'Credit', 'RIFee', 'Fee'][1 + i % 10]
                AS "lineItem/LineItemType",
            strftime(TIMESTAMP '2024-03-01' + to_hours(CAST(i % 720 AS BIGINT)),
                     '%Y-%m-%dT%H:%M:%S.000Z') AS "lineItem/UsageStartDate",
            strftime(TIMESTAMP '2024-03-01' + to_hours(CAST(i % 720 AS BIGINT) + 1),
                     '%Y-%m-%dT%H:%M:%S.000Z') AS "lineItem/UsageEndDate",
            ['AmazonEC2', 'AmazonS3', 'AmazonRDS', 'AWSLambda'][1 + i % 4] AS "lineItem/ProductCode",
            CASE WHEN i % 97 = 0 THEN 'EKSPod-EC2' ELSE 'RunInstances' END AS "lineItem/Operation",
            'i-' || (i % 5000) AS "lineItem/ResourceId",
            CAST((i % 100) / 10 AS VARCHAR) AS "lineItem/UsageAmount",
            'USD' AS "lineItem/CurrencyCode",
            CAST(round((i % 1000) * 0.0123456, 7) AS VARCHAR) AS "lineItem/UnblendedCost",
            CAST(round((i % 1000) * 0.02, 7) AS VARCHAR) AS "pricing/publicOnDemandCost",
            'Hrs' AS "pricing/unit",
            'us-east-1' AS "product/region",
            'Amazon Elastic Compute Cloud' AS "product/ProductName",
            CASE WHEN i % 10 IN (3, 8, 9) THEN 'arn:ri' ELSE '' END AS "reservation/ReservationARN",
            CASE WHEN i % 10 = 3 THEN '0.5' ELSE '' END AS "reservation/EffectiveCost",
            CASE WHEN i % 10 IN (4, 5) THEN 'arn:sp' ELSE '' END AS "savingsPlan/SavingsPlanARN",
            CASE WHEN i % 10 = 4 THEN '0.25' ELSE '' END AS "savingsPlan/SavingsPlanEffectiveCost",
            CASE WHEN i % 3 = 0 THEN 'payments' ELSE '' END AS "resourceTags/user:Team",
            CASE WHEN i % 5 = 0 THEN 'search' ELSE '' END AS "resourceTags/user:team_1",
            'delivery-1' AS x_DeliveryId,
            'cur-00001.csv.gz' AS x_SourceFile
        FROM range({SYNTHETIC_ROWS}) AS t(i)
        """
    )
    described = {row[0]: row[1] for row in con.execute("DESCRIBE landing").fetchall()}
    layout = resolve_cur_layout(described)

    started = time.perf_counter()
    con.execute("CREATE SCHEMA raw")
    con.execute(f"CREATE TABLE raw.aws_cur AS {cur_staging_select('landing', layout)}")
    staged = time.perf_counter()
    days = (date(2024, 3, 1), date(2024, 3, 31))
    con.execute(f"CREATE TABLE focus AS {cur_focus_sql('raw.aws_cur', days)}")
    finished = time.perf_counter()
    print(
        f"\n1M CUR rows: staging {staged - started:.2f} s, FOCUS {finished - staged:.2f} s, "
        f"total {finished - started:.2f} s"
    )

    split_rows = len(range(0, SYNTHETIC_ROWS, 97))  # i % 97 = 0: 10,310 rows
    assert con.execute("SELECT count(*) FROM focus").fetchall() == [(SYNTHETIC_ROWS - split_rows,)]
    assert con.execute(
        'SELECT count(*) FROM focus WHERE Tags = \'{"user:Team":"payments","user:team":"search"}\''
    ).fetchall() == [(len(range(0, SYNTHETIC_ROWS, 15)) - len(range(0, SYNTHETIC_ROWS, 15 * 97)),)]
    assert finished - started < 10.0


def test_tax_has_no_pricing_quantity_and_unit_follows_quantity(staged):
    """FOCUS 1.2 PricingQuantity-C-004-C (null on Tax) and PricingUnit-C-005/006-C (unit null
    iff quantity null), as the FinOps Foundation validator checks them."""
    con, _ = staged
    rows = {
        row["ResourceId"]: row
        for row in _rows(con, f"SELECT * FROM ({cur_focus_sql('raw.aws_cur', DAYS)})")
    }
    assert (rows["r10"]["PricingQuantity"], rows["r10"]["PricingUnit"]) == (None, None)  # Tax
    assert (rows["r01"]["PricingQuantity"], rows["r01"]["PricingUnit"]) == (D("1"), "Hrs")
    # A credit that AWS gave a pricing unit keeps its quantity.
    assert (rows["r11"]["PricingQuantity"], rows["r11"]["PricingUnit"]) == (D("1"), "Hrs")
    assert [
        r
        for r, row in rows.items()
        if (row["PricingQuantity"] is None) != (row["PricingUnit"] is None)
    ] == []


def test_cur2_combined_tags_map_splits_resource_and_account_tags(tmp_path):
    """CUR 2.0's `tags` column keys every tag by source (resourceTags/, accountTag/,
    userAttribute/, costCategory/): resource tags become Tags, account tags x_AccountTags (what
    allocation inherits), the others are not resource tags."""
    path = _write_cur2_parquet(tmp_path / "cur2-00001.parquet")
    table = pq.read_table(path).drop_columns(["resource_tags"])
    string_map = pa.map_(pa.string(), pa.string())
    combined = [
        [
            ("resourceTags/user:Team", "payments"),
            ("accountTag/team", "platform"),
            ("accountTag/CostCenter", "CC-7"),
            ("userAttribute/department", "finance"),
            ("costCategory/Product", "checkout"),
            ("accountTag/empty", ""),
        ]
        if row["line_item_resource_id"] == "r01"
        else [("accountTag/team", "platform")]
        for row in CUR_ROWS
    ]
    pq.write_table(table.append_column("tags", pa.array(combined, string_map)), path)
    con = duckdb.connect()
    layout = _stage(con, _parquet_reader(path))
    assert layout.flavour == "cur2"
    rows = {
        resource: (json.loads(tags), json.loads(account))
        for resource, tags, account in con.execute(
            f"SELECT ResourceId, Tags, x_AccountTags FROM ({cur_focus_sql('raw.aws_cur', DAYS)})"
        ).fetchall()
    }
    assert rows["r01"] == ({"user:Team": "payments"}, {"team": "platform", "CostCenter": "CC-7"})
    assert rows["r02"] == ({}, {"team": "platform"})
