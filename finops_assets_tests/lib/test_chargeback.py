"""lib/chargeback on hand-written allocated rows whose lines are worked out by hand."""

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib import chargeback as cb
from finops_assets.lib.rules import GlAccountRule

D = Decimal

COLUMNS = (
    "charge_date DATE, x_BillingPeriod VARCHAR, ProviderName VARCHAR, ServiceName VARCHAR, "
    "ChargeCategory VARCHAR, BillingCurrency VARCHAR, CommitmentDiscountId VARCHAR, "
    "cost_center VARCHAR, team VARCHAR, department VARCHAR, x_AllocationRule VARCHAR, "
    "x_AllocationDetail VARCHAR, EffectiveCost DECIMAL(38, 12), BilledCost DECIMAL(38, 12)"
)


def row(
    effective,
    billed=None,
    *,
    day=date(2025, 1, 15),
    period="2025-01",
    provider="AWS",
    service="Amazon EC2",
    category="Usage",
    currency="USD",
    commitment=None,
    team="checkout",
    rule="resource_tag",
    detail="tag team",
):
    return (
        day,
        period,
        provider,
        service,
        category,
        currency,
        commitment,
        "CC-100",
        team,
        "retail",
        rule,
        detail,
        D(effective),
        D(effective if billed is None else billed),
    )


def table(rows) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE allocated ({COLUMNS})").fetchall()
    placeholders = ", ".join("?" * 14)
    con.executemany(f"INSERT INTO allocated VALUES ({placeholders})", rows)
    return con


def lines(con, query: cb.ChargebackQuery, period: str) -> list[dict]:
    cursor = con.execute(query.sql(), query.params(period))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def source_totals(con, query: cb.ChargebackQuery, period: str) -> dict[str, Decimal]:
    rows = con.execute(query.conservation_sql(), query.params(period)).fetchall()
    return {currency: amount for currency, amount, _ in rows}


def charged_totals(found: list[dict]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for line in found:
        totals[line["BillingCurrency"]] = totals.get(line["BillingCurrency"], D(0)) + line["amount"]
    return totals


def test_every_row_lands_in_exactly_one_part_in_precedence_order():
    con = table(
        [
            row("10.00"),  # direct (resource_tag)
            row("2.50", rule="inherited", detail="parent i-1"),  # direct
            row("3.333333333333", rule="shared_pool", detail="platform by usage"),  # shared
            row("5.00", commitment="sp-1"),  # commitment: covered by a savings plan
            row("1.25", rule="commitment_pool", detail="unused sp-1"),  # commitment
            # A credit is a credit whatever allocated it: shared pool and commitment alike.
            row("-2.00", category="Credit", rule="shared_pool", detail="support credit"),
            row("-0.75", category="Credit", commitment="sp-1"),
            row("99.00", day=date(2025, 2, 1), period="2025-02"),  # another month: not here
        ]
    )
    found = lines(con, cb.ChargebackQuery("allocated"), "2025-01")
    by_category = {line["ChargeCategory"]: line for line in found}
    assert set(by_category) == {"Usage", "Credit"}
    usage, credit = by_category["Usage"], by_category["Credit"]
    assert usage["direct_amount"] == D("12.50")
    assert usage["shared_amount"] == D("3.333333333333")
    assert usage["commitment_amount"] == D("6.25")
    assert usage["credit_amount"] == D(0)
    assert usage["amount"] == D("22.083333333333")
    assert usage["row_count"] == 5
    assert credit["credit_amount"] == D("-2.75")
    assert credit["direct_amount"] == credit["shared_amount"] == credit["commitment_amount"] == 0
    for line in found:  # the parts add up exactly, not merely to the cent
        parts = ("direct_amount", "shared_amount", "commitment_amount", "credit_amount")
        assert sum(line[p] for p in parts) == line["amount"]
    # Every line names the rules behind it.
    assert usage["allocation_rules"] == (
        "commitment_pool: unused sp-1; inherited: parent i-1; "
        "resource_tag: tag team; shared_pool: platform by usage"
    )
    assert usage["allocation_rule_count"] == 4
    assert credit["allocation_rules"] == "resource_tag: tag team; shared_pool: support credit"


def test_long_rule_lists_are_cut_with_a_count():
    con = table([row("1", rule="shared_pool", detail=f"pool {i}") for i in range(7)])
    (line,) = lines(con, cb.ChargebackQuery("allocated"), "2025-01")
    assert line["allocation_rules"].endswith("shared_pool: pool 4; (+2 more)")
    assert line["allocation_rule_count"] == 7
    assert line["shared_amount"] == D(7)


def test_gl_rules_first_match_wins_and_nothing_is_dropped():
    rules = (
        GlAccountRule(
            account="6110", match={"ProviderName": ("AWS",), "ServiceName": ("Amazon S3",)}
        ),
        GlAccountRule(account="6100", match={"ProviderName": ("AWS",)}),
        GlAccountRule(account="6900", match={"ChargeCategory": ("Tax",)}),
        GlAccountRule(account="never", match={"ServiceName": ()}),  # no allowed value
    )
    con = table(
        [
            row("4.00", service="Amazon S3"),
            row("6.00"),  # EC2: the AWS catch-all
            row("1.00", provider="Microsoft", service="Storage"),
            row("0.80", provider="Microsoft", category="Tax", service=None),
            row("7.00", provider="Google Cloud", service=None),  # NULL never matches a value
        ]
    )
    found = lines(con, cb.ChargebackQuery("allocated", gl_rules=rules), "2025-01")
    accounts = {(line["ProviderName"], line["gl_account"]): line["amount"] for line in found}
    assert accounts == {
        ("AWS", "6100"): D("6.00"),
        ("AWS", "6110"): D("4.00"),
        ("Google Cloud", cb.UNMAPPED): D("7.00"),
        ("Microsoft", "6900"): D("0.80"),
        ("Microsoft", cb.UNMAPPED): D("1.00"),
    }
    # No rules at all: everything is unmapped, nothing is lost.
    found = lines(con, cb.ChargebackQuery("allocated"), "2025-01")
    assert {line["gl_account"] for line in found} == {cb.UNMAPPED}
    assert sum(line["amount"] for line in found) == D("18.80")


def test_an_unknown_gl_column_is_refused_before_any_sql_runs():
    rules = (GlAccountRule(account="6100", match={"Servicename": ("Amazon EC2",)}),)
    with pytest.raises(ValueError, match=r"gl_accounts\[0\] \(account '6100'\).*'Servicename'"):
        cb.ChargebackQuery("allocated", gl_rules=rules)
    with pytest.raises(ValueError, match="unknown chargeback basis 'ListCost'"):
        cb.ChargebackQuery("allocated", basis="ListCost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'2025-13' must be 'YYYY-MM'"):
        cb.ChargebackQuery("allocated").params("2025-13")


def test_two_currencies_are_kept_apart_and_conserved_each():
    con = table(
        [
            row("100.00"),
            row("-10.00", category="Credit"),
            row("80.00", provider="Microsoft", currency="EUR"),
            row("0.01", provider="Microsoft", currency="EUR", rule="shared_pool", detail="p"),
        ]
    )
    query = cb.ChargebackQuery("allocated")
    found = lines(con, query, "2025-01")
    charged = charged_totals(found)
    source = source_totals(con, query, "2025-01")
    assert charged == source == {"EUR": D("80.01"), "USD": D("90.00")}
    assert cb.conservation_problems(charged, source) == []
    assert all(line["BillingCurrency"] in ("EUR", "USD") for line in found)


def test_tampered_lines_fail_conservation_currency_by_currency():
    source = {"EUR": D("80.01"), "USD": D("90.00")}
    # One cent moved from EUR to USD: the grand total is unchanged, both currencies are wrong.
    problems = cb.conservation_problems({"EUR": D("80.00"), "USD": D("90.01")}, source)
    assert len(problems) == 2
    assert problems[0].startswith("EUR: the chargeback lines total 80.00")
    assert "(difference -0.01)" in problems[0]
    assert "(difference +0.01)" in problems[1]
    # A dropped currency counts as zero on its side.
    (problem,) = cb.conservation_problems({"USD": D("90.00")}, source)
    assert "EUR" in problem and "(difference -80.01)" in problem
    # Decimal noise below a millionth is not a problem.
    assert cb.conservation_problems({"EUR": D("80.0100001"), "USD": D("90")}, source) == []


def test_bases_put_late_usage_in_different_months():
    """Usage of 31 December billed on January's invoice: the amortized (EffectiveCost) view
    books it in December, the billed view in January."""
    con = table(
        [
            row("40.00", "38.00", day=date(2024, 12, 31), period="2025-01"),
            row("20.00", "20.00", day=date(2025, 1, 2), period="2025-01"),
            row("5.00", "0.00", day=date(2025, 1, 31), period="2025-02"),
        ]
    )
    effective = cb.ChargebackQuery("allocated", basis="EffectiveCost")
    billed = cb.ChargebackQuery("allocated", basis="BilledCost")
    assert effective.params("2025-01") == ["2025-01", date(2025, 1, 1), date(2025, 1, 31)]
    assert billed.params("2025-01") == ["2025-01"]

    def total(query, period):
        return sum((line["amount"] for line in lines(con, query, period)), D(0))

    assert total(effective, "2024-12") == D("40.00")
    assert total(effective, "2025-01") == D("25.00")
    assert total(billed, "2024-12") == D(0)
    assert total(billed, "2025-01") == D("58.00")
    assert total(billed, "2025-02") == D("0.00")
    for query in (effective, billed):
        for period in ("2024-12", "2025-01", "2025-02"):
            found = lines(con, query, period)
            source = source_totals(con, query, period)
            assert cb.conservation_problems(charged_totals(found), source) == []
