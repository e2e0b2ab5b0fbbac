"""lib/azure_cost and the Azure part of lib/deliveries on small hand-written frames."""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest

from finops_assets.defs.sources.azure.cost_details import (
    AzureFormatError,
    azure_basis_totals_sql,
    azure_focus_sql,
    azure_staging_select,
    resolve_azure_layout,
)
from finops_assets.defs.sources.azure.deliveries import (
    azure_scope_months,
    newest_azure_runs,
    parse_azure_manifest,
)
from finops_assets.lib.deliveries import DeliveryError

DAYS = (date(2025, 3, 1), date(2025, 3, 31))
RI = "/providers/Microsoft.Capacity/reservationOrders/o1/reservations/r1"
SP = "/providers/Microsoft.BillingBenefits/savingsPlanOrders/o2/savingsPlans/s2"
EA_HEADER = (
    "Date,BillingAccountId,BillingCurrencyCode,SubscriptionGuid,CostInBillingCurrency,"
    "ChargeType,PricingModel,benefitId,MeterCategory,Quantity,Tags"
)


def load(con, rows_by_export: dict[str, tuple[str, list[str]]], basis: str) -> None:
    """Stage hand-written CSV text per export type into raw.azure_cost."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    selects = []
    for export_type, (header, rows) in rows_by_export.items():
        name = f"/tmp/azure_unit_{export_type}_{basis}.csv"
        with open(name, "w") as f:
            f.write(header + "\n" + "\n".join(rows) + "\n")
        source = (
            f"(SELECT *, 'run' AS x_DeliveryId, '{export_type}.csv' AS x_SourceFile "
            f"FROM read_csv('{name}', header = true, all_varchar = true))"
        )
        columns = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        layout = resolve_azure_layout(columns, export_type)
        selects.append(
            f"SELECT *, 'azure/s/e' AS x_Dataset, '2025-03' AS x_BillingPeriod FROM "
            f"({azure_staging_select(source, layout, export_type, basis)})"
        )
    con.execute(f"CREATE OR REPLACE TABLE raw.azure_cost AS {' UNION ALL BY NAME '.join(selects)}")


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


ACTUAL = [
    '2025-03-02,1001,EUR,sub-a,10.00,Usage,OnDemand,,Virtual Machines,5,"{""team"": ""a""}"',
    f"2025-03-02,1001,EUR,sub-a,0,Usage,Reservation,{RI},Virtual Machines,8,",
    f"2025-03-02,1001,EUR,sub-a,0,Usage,SavingsPlan,{SP},Storage,3,",
    f"2025-03-01,1001,EUR,sub-a,62.00,Purchase,Reservation,{RI},,1,",
    f"2025-03-01,1001,EUR,sub-a,31.00,Purchase,SavingsPlan,{SP},,1,",
    f"2025-03-02,1001,EUR,sub-a,-4.00,Refund,Reservation,{RI},,1,",
]
AMORTIZED = [
    '2025-03-02,1001,EUR,sub-a,10.00,Usage,OnDemand,,Virtual Machines,5,"{""team"": ""a""}"',
    f"2025-03-02,1001,EUR,sub-a,1.50,Usage,Reservation,{RI},Virtual Machines,8,",
    f"2025-03-02,1001,EUR,sub-a,0.80,Usage,SavingsPlan,{SP},Storage,3,",
    f"2025-03-02,1001,EUR,sub-a,0.50,UnusedReservation,Reservation,{RI},,0,",
    f"2025-03-02,1001,EUR,sub-a,0.20,UnusedSavingsPlan,SavingsPlan,{SP},,0,",
]


def focus_rows(con) -> list[tuple]:
    return con.execute(
        f"SELECT x_LineItemType, PricingCategory, ChargeCategory, ChargeClass, BilledCost, "
        f"EffectiveCost, CommitmentDiscountType, CommitmentDiscountCategory, "
        f"CommitmentDiscountStatus FROM ({azure_focus_sql('raw.azure_cost', DAYS)}) "
        "ORDER BY 1, 2, 5, 6"
    ).fetchall()


def test_merge_keeps_amortized_rows_and_actual_commitment_purchases(con):
    load(
        con, {"ActualCost": (EA_HEADER, ACTUAL), "AmortizedCost": (EA_HEADER, AMORTIZED)}, "merged"
    )
    d = Decimal
    assert focus_rows(con) == [
        ("Purchase", "Standard", "Purchase", None, d("31"), d("0"), "Savings Plan", "Spend", None),
        ("Purchase", "Standard", "Purchase", None, d("62"), d("0"), "Reservation", "Usage", None),
        (
            "Refund",
            "Other",
            "Purchase",
            "Correction",
            d("-4"),
            d("0"),
            "Reservation",
            "Usage",
            None,
        ),
        (
            "UnusedReservation",
            "Committed",
            "Usage",
            None,
            d("0"),
            d("0.5"),
            "Reservation",
            "Usage",
            "Unused",
        ),
        (
            "UnusedSavingsPlan",
            "Committed",
            "Usage",
            None,
            d("0"),
            d("0.2"),
            "Savings Plan",
            "Spend",
            "Unused",
        ),
        ("Usage", "Committed", "Usage", None, d("0"), d("0.8"), "Savings Plan", "Spend", "Used"),
        ("Usage", "Committed", "Usage", None, d("0"), d("1.5"), "Reservation", "Usage", "Used"),
        ("Usage", "Standard", "Usage", None, d("10"), d("10"), None, None, None),
    ]
    # Σ BilledCost = the ActualCost export's Σ (99), Σ EffectiveCost = the AmortizedCost Σ (13).
    totals = con.execute(
        f"SELECT sum(BilledCost), sum(EffectiveCost), count(*) FROM ({azure_focus_sql('raw.azure_cost', DAYS)})"
    ).fetchall()
    assert totals == [(Decimal("99"), Decimal("13"), 8)]
    basis = con.execute(
        f'SELECT sum(billed), sum(effective), sum("rows") FROM ({azure_basis_totals_sql("raw.azure_cost", DAYS)})'
    ).fetchall()
    assert basis == [(Decimal("99"), Decimal("13"), 8)]


def test_actual_only_is_cash_basis(con):
    load(con, {"ActualCost": (EA_HEADER, ACTUAL)}, "actual_only")
    totals = con.execute(
        f"SELECT sum(BilledCost), sum(EffectiveCost), count(*) FROM ({azure_focus_sql('raw.azure_cost', DAYS)})"
    ).fetchall()
    # Every actual row; purchases keep their cost in EffectiveCost (nothing to amortize over).
    assert totals == [(Decimal("99"), Decimal("99"), 6)]
    basis = con.execute(
        f"SELECT sum(billed), sum(effective) FROM ({azure_basis_totals_sql('raw.azure_cost', DAYS)})"
    ).fetchall()
    assert basis == [(Decimal("99"), Decimal("99"))]


def test_amortized_only_has_no_purchases_in_billed_cost(con):
    load(con, {"AmortizedCost": (EA_HEADER, AMORTIZED)}, "amortized_only")
    query = f"SELECT sum(BilledCost), sum(EffectiveCost) FROM ({azure_focus_sql('raw.azure_cost', DAYS)})"
    assert con.execute(query).fetchall() == [(Decimal("10"), Decimal("13"))]
    basis = con.execute(
        f"SELECT sum(billed), sum(effective) FROM ({azure_basis_totals_sql('raw.azure_cost', DAYS)})"
    ).fetchall()
    assert basis == [(Decimal("10"), Decimal("13"))]


def test_braces_less_tags_old_dates_and_charge_period(con):
    rows = [
        '3/2/2025,1001,EUR,sub-a,1.25,Usage,OnDemand,,Storage,1,"""CostCenter"": ""1234"",""env"": ""prod"""',
        "03/05/2025,1001,EUR,sub-a,2.50,Usage,OnDemand,,Storage,1,",
    ]
    load(con, {"ActualCost": (EA_HEADER, rows)}, "actual_only")
    assert con.execute(
        f"SELECT charge_date::VARCHAR, ChargePeriodStart::VARCHAR, ChargePeriodEnd::VARCHAR, Tags, "
        f"json_extract_string(Tags, '$.CostCenter') FROM ({azure_focus_sql('raw.azure_cost', DAYS)}) ORDER BY 1"
    ).fetchall() == [
        (
            "2025-03-02",
            "2025-03-02 00:00:00+00",
            "2025-03-03 00:00:00+00",
            '{"CostCenter": "1234","env": "prod"}',
            "1234",
        ),
        ("2025-03-05", "2025-03-05 00:00:00+00", "2025-03-06 00:00:00+00", "{}", None),
    ]


def test_ea_and_mca_names_resolve_to_the_same_columns():
    ea = resolve_azure_layout(
        {
            "Date": "VARCHAR",
            "BillingCurrencyCode": "VARCHAR",
            "Cost": "VARCHAR",
            "SubscriptionGuid": "VARCHAR",
        },
        "ActualCost",
    )
    mca = resolve_azure_layout(
        {
            "date": "VARCHAR",
            "billingCurrency": "VARCHAR",
            "costInBillingCurrency": "VARCHAR",
            "billingAccountId": "VARCHAR",
            "subscriptionId": "VARCHAR",
        },
        "AmortizedCost",
    )
    assert (ea.schema, mca.schema) == ("EA", "MCA")
    assert ea.columns == {
        "Date": "Date",
        "BillingCurrency": "BillingCurrencyCode",
        "CostInBillingCurrency": "Cost",
        "SubscriptionId": "SubscriptionGuid",
    }
    assert mca.columns == {
        "Date": "date",
        "BillingAccountId": "billingAccountId",
        "BillingCurrency": "billingCurrency",
        "CostInBillingCurrency": "costInBillingCurrency",
        "SubscriptionId": "subscriptionId",
    }


def test_renamed_cost_column_names_the_lookalikes_and_the_fix():
    with pytest.raises(AzureFormatError) as error:
        resolve_azure_layout(
            {
                "Date": "VARCHAR",
                "BillingCurrencyCode": "VARCHAR",
                "SubscriptionId": "VARCHAR",
                "CostInBillingCurrencyEUR": "VARCHAR",
                "PaygCostInBillingCurrency": "VARCHAR",
            },
            "ActualCost",
        )
    message = str(error.value)
    assert "missing column(s) CostInBillingCurrency" in message
    assert "accepted names: CostInBillingCurrency, Cost, PreTaxCost" in message
    assert "look like it: CostInBillingCurrencyEUR, PaygCostInBillingCurrency" in message
    assert "Fix:" in message


@dataclass(frozen=True)
class Obj:
    key: str
    size: int
    modified: datetime


def manifest_for(run: str, export_type: str, blobs: list[str], submitted: str) -> bytes:
    return json.dumps(
        {
            "exportConfig": {"type": export_type},
            "runInfo": {
                "runId": run,
                "startDate": "2025-03-01T00:00:00",
                "submittedTime": submitted,
            },
            "blobs": [{"blobName": b} for b in blobs],
            "dataRowCount": 999,
        }
    ).encode()


def run_of(export: str, export_type: str, run: str, submitted: str):
    folder = f"azure/s1/{export}/20250301-20250331/{run}"
    present = {
        f"{folder}/part_0_0001.csv.gz": Obj(
            f"{folder}/part_0_0001.csv.gz", 10, datetime(2025, 3, 2, tzinfo=UTC)
        )
    }
    manifest = Obj(f"{folder}/manifest.json", 10, datetime(2025, 3, 2, tzinfo=UTC))
    blob = f"root/{export}/20250301-20250331/{run}/part_0_0001.csv.gz"
    return parse_azure_manifest(
        manifest, manifest_for(run, export_type, [blob], submitted), present, "m.json"
    )


def test_newest_run_wins_and_actual_amortized_pair():
    runs = [
        run_of("act", "ActualCost", "r1", "2025-03-10T00:00:00Z"),
        run_of("act", "ActualCost", "r2", "2025-03-11T00:00:00Z"),
        run_of("amo", "AmortizedCost", "r3", "2025-03-11T00:00:00Z"),
    ]
    assert runs[0].files[0].key == "azure/s1/act/20250301-20250331/r1/part_0_0001.csv.gz"
    assert runs[0].declared_rows == 999  # recorded, never used as the row count
    (scope_month,) = azure_scope_months(newest_azure_runs(runs), "2025-03")
    assert (scope_month.cost_basis, [r.run_id for r in scope_month.runs]) == (
        "merged",
        ["r2", "r3"],
    )
    (alone,) = azure_scope_months(newest_azure_runs(runs[:2]), "2025-03")
    assert (alone.cost_basis, [r.run_id for r in alone.runs]) == ("actual_only", ["r2"])
    focus = run_of("foc", "FocusCost", "r4", "2025-03-11T00:00:00Z")
    (with_focus,) = azure_scope_months(newest_azure_runs([*runs, focus]), "2025-03")
    assert (with_focus.cost_basis, [r.run_id for r in with_focus.ignored]) == (
        "focus",
        ["r2", "r3"],
    )
    twice = run_of("act2", "ActualCost", "r5", "2025-03-11T00:00:00Z")
    with pytest.raises(DeliveryError, match="would count its cost twice"):
        azure_scope_months(newest_azure_runs([*runs, twice]), "2025-03")


def test_blob_escaping_its_run_folder_is_refused():
    folder = "azure/s1/act/20250301-20250331/r1"
    manifest = Obj(f"{folder}/manifest.json", 10, datetime(2025, 3, 2, tzinfo=UTC))
    for blob in ("../../../../etc/passwd.csv", "/etc/passwd.csv", "a/../../b.csv"):
        with pytest.raises(DeliveryError, match="escapes its run folder"):
            parse_azure_manifest(
                manifest,
                manifest_for("r1", "ActualCost", [blob], "2025-03-02T00:00:00Z"),
                {},
                "m.json",
            )
