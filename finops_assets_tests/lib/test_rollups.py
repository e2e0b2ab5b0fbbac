"""Tag dimensions and marts on a hand-written facts table; every expected figure is by hand."""

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib.allocation import allocated_costs_sql
from finops_assets.lib.rollups import daily_cost_by_team_sql, untagged_spend_sql
from finops_assets.lib.rules import load_rules

DAY = (date(2025, 1, 1), date(2025, 1, 1))

FACTS = [
    # provider, currency, tags, billed, effective, resource, commitment
    (
        "AWS",
        "USD",
        '{"Team": "Payments", "env": "production", "CostCenter": "CC-1"}',
        "10.00",
        "8.00",
        "r1",
        None,
    ),
    ("AWS", "USD", '{" team ": "payments ", "Environment": "prod"}', "5.00", "5.00", "r2", "ri-1"),
    ("AWS", "USD", '{"squad": "search", "team": "payments"}', "1.10", "1.10", "r3", None),
    ("AWS", "USD", "{}", "3.00", "3.00", None, None),
    ("AWS", "USD", '{"owner": "bob"}', "0.90", "0.90", "r4", None),
    (
        "AWS",
        "USD",
        '{"user:Team": "payments", "user:Environment": "Production"}',
        "0.50",
        "0.40",
        "r7",
        None,
    ),
    ("Microsoft", "EUR", '{"squad": "Search", "dept": "Data"}', "7.00", "6.00", "r5", None),
    ("Microsoft", "EUR", '{"team": ""}', "2.00", "2.00", "r6", None),
]


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute(
        "CREATE SCHEMA core; CREATE TABLE core.cost_facts (charge_date DATE, ProviderName VARCHAR, "
        "BillingCurrency VARCHAR, ServiceCategory VARCHAR, Tags VARCHAR, BilledCost DECIMAL(38,12), "
        "EffectiveCost DECIMAL(38,12), ListCost DECIMAL(38,12), ResourceId VARCHAR, "
        "CommitmentDiscountId VARCHAR, x_DeliveryId VARCHAR, x_SourceFile VARCHAR, "
        "ContractedCost DECIMAL(38,12), BillingAccountId VARCHAR, SubAccountId VARCHAR)"
    )
    for provider, currency, tags, billed, effective, resource, commitment in FACTS:
        con.execute(
            "INSERT INTO core.cost_facts VALUES ('2025-01-01', ?, ?, 'Compute', ?, ?, ?, ?, ?, ?, "
            "'d1', 'f1', ?, 'acct', 'sub')",
            [provider, currency, tags, billed, effective, billed, resource, commitment, billed],
        )
    # The marts read core.allocated_costs; with the shipped rules (no hierarchy, no pools) every
    # owner comes from tags, so the expected figures are those of the tags alone.
    columns = [c for c, *_ in con.execute("DESCRIBE core.cost_facts").fetchall()]
    con.execute(
        "CREATE TABLE core.allocated_costs AS "
        + allocated_costs_sql(load_rules(), "core.cost_facts", DAY, columns)
    )
    return con


def test_daily_cost_by_team_resolves_drifting_tags(con):
    rules = load_rules()
    result = con.execute(
        f"SELECT ProviderName, BillingCurrency, department, team, environment, cost_center, "
        f"billed_cost, effective_cost, resource_count, row_count, untagged_rows, committed_rows "
        f"FROM ({daily_cost_by_team_sql(rules, 'core.allocated_costs', DAY)}) ORDER BY ALL"
    ).fetchall()
    D = Decimal
    assert result == [
        # "team" outranks "squad" (alias order), so r3 is payments; values are trimmed and case-folded,
        # "production" maps to "prod"; r1 and r2 differ only in cost center.
        (
            "AWS",
            "USD",
            "__untagged__",
            "__untagged__",
            "__unknown__",
            "__untagged__",
            D("3.000000000000"),
            D("3.000000000000"),
            0,
            1,
            1,
            0,
        ),
        # "owner" is a team alias (DOMAIN §8): r4's Owner tag is team "bob", not untagged.
        (
            "AWS",
            "USD",
            "__untagged__",
            "bob",
            "__unknown__",
            "__untagged__",
            D("0.900000000000"),
            D("0.900000000000"),
            1,
            1,
            0,
            0,
        ),
        (
            "AWS",
            "USD",
            "__untagged__",
            "payments",
            "__unknown__",
            "__untagged__",
            D("1.100000000000"),
            D("1.100000000000"),
            1,
            1,
            0,
            0,
        ),
        (
            "AWS",
            "USD",
            "__untagged__",
            "payments",
            "prod",
            "__untagged__",
            D("5.500000000000"),  # r2 + r7: "user:Team" matches once the AWS prefix is stripped
            D("5.400000000000"),
            2,
            2,
            0,
            1,
        ),
        (
            "AWS",
            "USD",
            "__untagged__",
            "payments",
            "prod",
            "cc-1",
            D("10.000000000000"),
            D("8.000000000000"),
            1,
            1,
            0,
            0,
        ),
        (
            "Microsoft",
            "EUR",
            "__untagged__",
            "__untagged__",
            "__unknown__",
            "__untagged__",
            D("2.000000000000"),
            D("2.000000000000"),
            1,
            1,
            1,
            0,
        ),
        (
            "Microsoft",
            "EUR",
            "data",
            "search",
            "__unknown__",
            "__untagged__",
            D("7.000000000000"),
            D("6.000000000000"),
            1,
            1,
            0,
            0,
        ),
    ]


def test_untagged_spend_per_provider_and_currency(con):
    result = con.execute(
        f"SELECT ProviderName, BillingCurrency, untagged_billed_cost, total_billed_cost, "
        f"untagged_effective_cost, total_effective_cost, untagged_rows, total_rows, untagged_pct "
        f"FROM ({untagged_spend_sql(load_rules(), 'core.allocated_costs', DAY)}) ORDER BY ALL"
    ).fetchall()
    D = Decimal
    assert result == [
        # AWS: untagged 3.00 of billed 20.50 (the Owner-tagged 0.90 is team bob); effective 3.00
        # of 18.40 = 16.3043 %
        (
            "AWS",
            "USD",
            D("3.000000000000"),
            D("20.500000000000"),
            D("3.000000000000"),
            D("18.400000000000"),
            1,
            6,
            16.3043,
        ),
        # Microsoft: an empty team value is untagged: 2.00 of effective 8.00 = 25 %
        (
            "Microsoft",
            "EUR",
            D("2.000000000000"),
            D("9.000000000000"),
            D("2.000000000000"),
            D("8.000000000000"),
            1,
            2,
            25.0,
        ),
    ]


def test_currencies_are_never_added_together(con):
    totals = con.execute(
        f"SELECT BillingCurrency, sum(billed_cost) FROM ({daily_cost_by_team_sql(load_rules(), 'core.allocated_costs', DAY)}) "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert totals == [("EUR", Decimal("9.000000000000")), ("USD", Decimal("20.500000000000"))]
