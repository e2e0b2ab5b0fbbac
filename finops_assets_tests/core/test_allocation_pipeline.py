"""The README's worked example, end to end through Dagster: a support plan split proportionally
across three teams, an untagged resource inherited from its account, an unused reservation in
the central pool, and a purchase a source did not amortize spread per day."""

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb

from finops_assets.contracts.amortization import (
    amortization_balance,
    commitment_mart_balance,
    unbalanced,
)
from finops_assets.lib.rules import default_rules_path
from finops_assets.lib.totals import compare_totals
from finops_assets.resources.warehouse import Warehouse
from finops_assets_tests.conftest import Pipeline, failed_checks, failure_messages

RULES = """
owners:
  payments: {dimensions: {department: fintech}}
  search: {dimensions: {department: product}}
  platform: {dimensions: {department: engineering}}
hierarchy:
  "333333333333": {owner: platform}
shared_pools:
  - name: support
    match: {ServiceName: ["AWS Support (Business)"]}
    split: proportional
"""

COLUMNS = [
    "BillingAccountId",
    "SubAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeFrequency",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ServiceName",
    "ServiceCategory",
    "ResourceId",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "CommitmentDiscountId",
    "CommitmentDiscountType",
    "CommitmentDiscountCategory",
    "CommitmentDiscountStatus",
    "Tags",
]
DAY = "2025-03-03"
RI = "arn:aws:ec2:us-east-1:999999999999:reserved-instances/ri-1"


def charge(
    account,
    service,
    category,
    billed,
    effective,
    *,
    tags="{}",
    resource="",
    commitment="",
    status="",
    frequency="Usage-Based",
    start=f"{DAY}T00:00:00Z",
    end="2025-03-04T00:00:00Z",
    service_category="Compute",
):
    return {
        "BillingAccountId": "999999999999",
        "SubAccountId": account,
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2025-03-01T00:00:00Z",
        "BillingPeriodEnd": "2025-04-01T00:00:00Z",
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "ChargeCategory": category,
        "ChargeFrequency": frequency,
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS",
        "ServiceName": service,
        "ServiceCategory": service_category,
        "ResourceId": resource,
        "BilledCost": billed,
        "EffectiveCost": effective,
        "ListCost": billed,
        "ContractedCost": billed,
        "CommitmentDiscountId": commitment,
        "CommitmentDiscountType": "Reservation" if commitment else "",
        "CommitmentDiscountCategory": "Usage" if commitment else "",
        "CommitmentDiscountStatus": status,
        "Tags": tags,
    }


ROWS = [
    # payments: 552.00 on demand + 48.00 covered by the reservation = 600.00 direct
    charge(
        "111111111111",
        "Amazon EC2",
        "Usage",
        "552.00",
        "552.00",
        tags='{"team": "payments"}',
        resource="i-pay",
    ),
    charge(
        "111111111111",
        "Amazon EC2",
        "Usage",
        "0",
        "48.00",
        tags='{"team": "payments"}',
        resource="i-pay-ri",
        commitment=RI,
        status="Used",
    ),
    # search: 300.00 direct
    charge(
        "222222222222",
        "Amazon EC2",
        "Usage",
        "300.00",
        "300.00",
        tags='{"Team": "Search"}',
        resource="i-search",
    ),
    # an untagged bucket in account 333333333333, which the hierarchy gives to platform: 100.00
    charge(
        "333333333333",
        "Amazon S3",
        "Usage",
        "100.00",
        "100.00",
        resource="bucket-logs",
        service_category="Storage",
    ),
    # the support plan: untagged, in the payer account -> the support pool, 150.00
    charge(
        "999999999999",
        "AWS Support (Business)",
        "Purchase",
        "150.00",
        "150.00",
        frequency="Recurring",
        service_category="Management and Governance",
    ),
    # the reservation's daily fee (billed 72.00, amortized onto the used and unused rows)
    charge(
        "999999999999",
        "Amazon EC2",
        "Purchase",
        "72.00",
        "0",
        resource=RI,
        commitment=RI,
        frequency="Recurring",
    ),
    # ...of which 24.00 went unused that day -> the central commitments pool
    charge(
        "999999999999",
        "Amazon EC2",
        "Usage",
        "0",
        "24.00",
        resource=RI,
        commitment=RI,
        status="Unused",
    ),
]


def deliver(landing: Path) -> None:
    folder = landing / "focus" / "aws" / "example" / "billing_period=2025-03" / "d1"
    folder.mkdir(parents=True)
    with open(folder / "part-00000.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(ROWS)
    (folder / "manifest.json").write_text(
        json.dumps({"files": ["part-00000.csv"], "createdAt": "2025-03-05T00:00:00Z"})
    )


def test_worked_example_in_the_readme(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(default_rules_path().read_text() + RULES)
    landing = tmp_path / "landing"
    deliver(landing)
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(landing, str(tmp_path / "warehouse.duckdb"), instance, str(rules))
        result = pipeline.materialize(DAY)
        assert result.success, failure_messages(result)
        assert failed_checks(result) == []
        by_team = pipeline.query(
            "SELECT team, department, sum(billed_cost), sum(effective_cost) "
            "FROM mart.daily_cost_by_team GROUP BY ALL ORDER BY ALL"
        )
        D = Decimal
        # Support 150.00 by direct effective cost payments 600 : search 300 : platform 100
        # -> 90.00 / 45.00 / 15.00. Effective: payments 600 + 90, search 300 + 45, platform
        # 100 + 15, unused 24.00 central; the reservation fee (billed 72.00, effective 0) has no
        # owner and stays visible as __untagged__. Both columns add up to 1174.00.
        assert [(t, d, b, e) for t, d, b, e in by_team] == [
            ("__commitments__", "__untagged__", D("0E-12"), D("24.000000000000")),
            ("__untagged__", "__untagged__", D("72.000000000000"), D("0E-12")),
            ("payments", "fintech", D("642.000000000000"), D("690.000000000000")),
            ("platform", "engineering", D("115.000000000000"), D("115.000000000000")),
            ("search", "product", D("345.000000000000"), D("345.000000000000")),
        ]
        rules_used = pipeline.query(
            "SELECT x_AllocationRule, count(*), sum(EffectiveCost) FROM core.allocated_costs "
            "GROUP BY 1 ORDER BY 1"
        )
        assert rules_used == [
            ("commitment_pool", 1, D("24.000000000000")),
            ("default_pool", 1, D("0E-12")),
            ("inherited", 1, D("100.000000000000")),
            ("resource_tag", 3, D("900.000000000000")),
            ("shared_pool", 3, D("150.000000000000")),
        ]
        assert pipeline.query(
            "SELECT CommitmentDiscountId, used_cost, unused_cost, utilization_pct "
            "FROM mart.commitment_utilization"
        ) == [(RI, D("48.000000000000"), D("24.000000000000"), 66.6667)]
        # The rules in effect are shown next to the asset in the UI (materialization metadata).
        (allocated,) = [
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.materialization.asset_key == dg.AssetKey(["core", "allocated_costs"])
        ]
        assert allocated["shared_pools"].value == [
            {"name": "support", "match": {"ServiceName": ["AWS Support (Business)"]}}
        ]
        assert allocated["hierarchy"].value == {"333333333333": {"owner": "platform"}}
        assert allocated["rows_shared_pool"].value == 3


def test_redistributed_unused_cost_lands_on_the_reservation_user(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        default_rules_path().read_text()
        + RULES
        + "amortization: {unused_commitment_cost: redistribute}\n"
    )
    landing = tmp_path / "landing"
    deliver(landing)
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(landing, str(tmp_path / "warehouse.duckdb"), instance, str(rules))
        result = pipeline.materialize(DAY)
        assert result.success, failure_messages(result)
        assert failed_checks(result) == []
        D = Decimal
        # The unused 24.00 moves to ri-1's only user (payments: 48 + 24 = 72), so the support
        # weights are payments 624 : search 300 : platform 100 of 1024. 15000 cents split:
        # 9140.625, 4394.53, 1464.84 -> floors 9140 + 4394 + 1464 = 14998, the 2 cents left go to
        # the largest remainders (platform .84, payments .625): 91.41, 43.94, 14.65.
        assert pipeline.query(
            "SELECT team, sum(effective_cost) FROM mart.daily_cost_by_team GROUP BY ALL ORDER BY ALL"
        ) == [
            ("__untagged__", D("0E-12")),
            ("payments", D("715.410000000000")),
            ("platform", D("114.650000000000")),
            ("search", D("343.940000000000")),
        ]
        # Utilization is measured on what was delivered, not inflated by the redistribution.
        assert pipeline.query(
            "SELECT used_cost, unused_cost, utilization_pct FROM mart.commitment_utilization"
        ) == [(D("48.000000000000"), D("24.000000000000"), 66.6667)]


def test_conservation_checks_catch_a_cent_that_moved(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(default_rules_path().read_text() + RULES)
    landing = tmp_path / "landing"
    deliver(landing)
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(landing, str(tmp_path / "warehouse.duckdb"), instance, str(rules))
        assert pipeline.materialize(DAY).success
        # One cent appears on the unused reservation row after amortization and allocation ran.
        with duckdb.connect(pipeline.warehouse) as con:
            con.execute(
                "UPDATE core.amortized_costs SET EffectiveCost = EffectiveCost + 0.01 "
                "WHERE CommitmentDiscountStatus = 'Unused'"
            )
            con.execute(
                "UPDATE core.allocated_costs SET BilledCost = BilledCost - 0.01 "
                "WHERE x_AllocationRule = 'shared_pool' AND team = 'search'"
            )
        # The checks' own evaluation over the tampered warehouse (a checks-only Dagster job over
        # partitioned checks is not possible without their assets, which would rewrite the data).
        warehouse = Warehouse(database=pipeline.warehouse)
        days = (date.fromisoformat(DAY), date.fromisoformat(DAY))
        broken = unbalanced(
            amortization_balance(warehouse, "core.cost_facts", "core.amortized_costs", days)
        )
        assert broken[["currency", "expected_effective", "amortized_effective"]].astype(
            str
        ).values.tolist() == [["USD", "1174.000000000000", "1174.010000000000"]]
        mart = commitment_mart_balance(
            warehouse, "mart.commitment_utilization", "core.amortized_costs", days
        )
        # ri-1's rows carry 48.00 used + 24.00 unused (+ 0.01 tampered); the mart still says 72.00
        assert mart[["expected", "actual"]].astype(str).values.tolist() == [
            ["72.010000000000", "72.000000000000"]
        ]
        allocated = compare_totals(
            warehouse.partition_totals("core.amortized_costs", days),
            warehouse.partition_totals("core.allocated_costs", days),
        )
        assert [(m["measure"], m["difference"]) for m in allocated] == [
            ("billed", "-0.010000000000"),
            ("effective", "-0.010000000000"),
        ]
