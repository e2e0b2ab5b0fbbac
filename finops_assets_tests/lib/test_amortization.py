"""Amortization on hand-written facts and on the FOCUS specification's golden examples.

Every expected figure is worked out by hand in the comment next to it.
"""

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib.amortization import (
    AMORTIZATION_COLUMNS,
    amortization_conservation_sql,
    amortized_costs_sql,
    commitment_balance_sql,
    commitment_coverage_sql,
    commitment_utilization_sql,
    spread_schedule_sql,
)
from finops_assets.lib.focus import FOCUS_COLUMNS
from finops_assets.lib.rules import AmortizationRules
from finops_assets_tests.paths import SPEC_EXAMPLES

D = Decimal
FACTS = "core.cost_facts"
AMORTIZED = "core.amortized_costs"

PLATFORM_COLUMNS = {
    "charge_date": "DATE",
    "x_DeliveryId": "VARCHAR",
    "x_SourceFile": "VARCHAR",
    "x_Dataset": "VARCHAR",
    "x_BillingPeriod": "VARCHAR",
    "x_Source": "VARCHAR",
}

CENTRAL = AmortizationRules()
REDISTRIBUTE = AmortizationRules(unused_commitment_cost="redistribute")
NO_SPREAD = AmortizationRules(spread_purchases="none")


def utc(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def charge(day: date = date(2025, 1, 1), **columns) -> dict:
    """A facts row: a one-day USD Usage charge unless ``columns`` say otherwise. EffectiveCost,
    ListCost and ContractedCost default to BilledCost; charge_date follows ChargePeriodStart."""
    billed = D(columns.pop("BilledCost", "0"))
    start = columns.pop("ChargePeriodStart", utc(day))
    month = date(start.year, start.month, 1)
    next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    row = {
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ListCost": billed,
        "ContractedCost": billed,
        "BillingCurrency": "USD",
        "BillingAccountId": "account-1",
        "BillingPeriodStart": utc(month),
        "BillingPeriodEnd": utc(next_month),
        "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(days=1),
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ProviderName": "TestCloud",
        "PublisherName": "TestCloud",
        "InvoiceIssuerName": "TestCloud",
        "ServiceName": "Virtual Machines",
        "ServiceCategory": "Compute",
        "Tags": "{}",
        "x_DeliveryId": "delivery-1",
        "x_SourceFile": "focus/testcloud/part-0.csv",
        "x_Dataset": "testcloud/focus",
        "x_BillingPeriod": f"{month:%Y-%m}",
        "x_Source": "focus",
    }
    for column, value in columns.items():
        row[column] = D(value) if FOCUS_COLUMNS.get(column, "").startswith("DECIMAL") else value
    if row["ChargeCategory"] == "Purchase" and "ChargeFrequency" not in columns:
        row["ChargeFrequency"] = "One-Time"
    row["charge_date"] = row["ChargePeriodStart"].astimezone(UTC).date()
    return row


def purchase(amount: str, start: date, days: int, **columns) -> dict:
    """A purchase the source did not amortize (EffectiveCost = BilledCost) over ``days`` days."""
    return charge(
        ChargeCategory="Purchase",
        BilledCost=amount,
        ChargePeriodStart=utc(start),
        ChargePeriodEnd=utc(start + timedelta(days=days)),
        **columns,
    )


def load_facts(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """core.cost_facts with the FOCUS 1.2 columns, lineage, and any extra x_ column of ``rows``
    (VARCHAR, the way producer-specific columns arrive)."""
    extra = sorted({c for r in rows for c in r} - set(FOCUS_COLUMNS) - set(PLATFORM_COLUMNS))
    types = {**FOCUS_COLUMNS, **PLATFORM_COLUMNS, **dict.fromkeys(extra, "VARCHAR")}
    con.execute("CREATE SCHEMA IF NOT EXISTS core")
    con.execute(
        f"CREATE OR REPLACE TABLE {FACTS} ("
        + ", ".join(f'"{c}" {t}' for c, t in types.items())
        + ")"
    )
    columns = list(types)
    con.executemany(
        f"INSERT INTO {FACTS} VALUES ({', '.join('?' for _ in columns)})",
        [[row.get(c) for c in columns] for row in rows],
    )


def amortize(
    con: duckdb.DuckDBPyConnection, rules: AmortizationRules, days: tuple[date, date]
) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {AMORTIZED} AS {amortized_costs_sql(rules, FACTS, days)}")


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


@pytest.fixture
def con():
    con = duckdb.connect()
    # As the warehouse does: charge_date and term days are UTC dates.
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


# --- The FOCUS specification's examples -------------------------------------------------------

# The examples carry only the columns each scenario is about; these stand in for the rest.
SPEC_PLACEHOLDERS = {
    "BillingCurrency": "USD",
    "BillingAccountId": "<my-billing-account-id>",
    "ProviderName": "TinyCloud",
    "PublisherName": "TinyCloud",
    "InvoiceIssuerName": "TinyCloud",
    "ServiceName": "Compute",
    "ServiceCategory": "Compute",
    "Tags": "{}",
    "x_DeliveryId": "focus-spec-examples",
    "x_Dataset": "focus/spec-examples",
    "x_Source": "focus",
}
FOCUS_BY_LOWER = {c.lower(): c for c in FOCUS_COLUMNS}


class SpecExampleError(ValueError):
    pass


def read_spec_example(
    name: str, correct: Callable[[dict[str, str | None]], None] | None = None
) -> list[dict]:
    """Rows of one example CSV as facts rows. The literal ``null`` is NULL, blank lines are
    skipped, column names are matched to FOCUS case-insensitively (``SkuPriceid``), and a
    value that is not a timestamp or a number fails with the file, line, column and value.
    ``correct`` may fix a row's raw values first (the test says which correction and why)."""
    path = SPEC_EXAMPLES / name
    result = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [FOCUS_BY_LOWER.get(c.strip().lower(), c.strip()) for c in next(reader)]
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise SpecExampleError(
                    f"{name} line {reader.line_num}: {len(values)} values for {len(header)} columns"
                )
            raw = {
                c: (None if v.strip() == "null" else v.strip())
                for c, v in zip(header, values, strict=True)
            }
            if correct is not None:
                correct(raw)
            row: dict = {c: None for c in FOCUS_COLUMNS if FOCUS_COLUMNS[c] != "VARCHAR"}
            row |= SPEC_PLACEHOLDERS | {"x_SourceFile": name}
            for column, value in raw.items():
                kind = FOCUS_COLUMNS.get(column, "VARCHAR")
                try:
                    if value is None:
                        row[column] = None
                    elif kind == "TIMESTAMPTZ":
                        row[column] = datetime.fromisoformat(value).astimezone(UTC)
                    elif kind.startswith("DECIMAL"):
                        row[column] = D(value)
                    else:
                        row[column] = value
                except (ValueError, ArithmeticError):
                    expected = "an ISO 8601 timestamp" if kind == "TIMESTAMPTZ" else "a number"
                    raise SpecExampleError(
                        f"{name} line {reader.line_num}: {column} {value!r} is not {expected}"
                    ) from None
            row["charge_date"] = row["ChargePeriodStart"].date()
            row["x_BillingPeriod"] = f"{row['BillingPeriodStart']:%Y-%m}"
            result.append(row)
    return result


def hourly_recurring(raw: dict[str, str | None]) -> None:
    """Purchase scenarios 2 and 3: the specification describes the recurring purchases as
    hourly charge periods ("$1.00 allocated to each charge period", its JSON shows
    2023-01-01T00:00:00Z -> 2023-01-01T01:00:00Z), but the CSV's ChargePeriodEnd values are
    garbled (2023-02-01T10:00:00Z, ..., 2023-02-01T30:00:00Z, which is no time at all). Apply the
    specification's statement: each recurring row ends one hour after it starts."""
    if raw["ChargeFrequency"] == "Recurring":
        start = datetime.fromisoformat(raw["ChargePeriodStart"])
        raw["ChargePeriodEnd"] = (start + timedelta(hours=1)).isoformat()


def not_amortized(raw: dict[str, str | None]) -> None:
    """The same purchase from a source that does not amortize: EffectiveCost = BilledCost."""
    raw["EffectiveCost"] = raw["BilledCost"]


@pytest.mark.parametrize(
    ("example", "line"),
    [
        ("commitment_discount_purchase_scenario_2.csv", 4),
        ("commitment_discount_purchase_scenario_3.csv", 5),
    ],
)
def test_spec_example_loader_names_the_invalid_timestamp(example, line):
    with pytest.raises(SpecExampleError) as error:
        read_spec_example(example)
    assert str(error.value) == (
        f"{example} line {line}: ChargePeriodEnd '2023-02-01T30:00:00Z' is not an ISO 8601 "
        "timestamp"
    )


def test_spec_examples_all_load():
    loaded = {
        p.name: len(read_spec_example(p.name, hourly_recurring))
        for p in SPEC_EXAMPLES.glob("*.csv")
    }
    assert loaded == {
        "commitment_discount_purchase_scenario_1.csv": 1,
        "commitment_discount_purchase_scenario_2.csv": 3,
        "commitment_discount_purchase_scenario_3.csv": 4,
        "commitment_discount_usage_scenario_1.csv": 1,
        "commitment_discount_usage_scenario_2.csv": 1,
        "commitment_discount_usage_scenario_3.csv": 2,
        "commitment_discount_usage_scenario_4.csv": 2,
        "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource.csv": 3,
        "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources.csv": 3,
        "one_hundred_percent_utilization_without_commitment_discount_flexibility.csv": 2,
        "zero_percent_utilization_without_commitment_discount_flexibility.csv": 3,
    }


def test_purchase_scenario_1_amortized_by_the_provider_is_kept_as_principal(con):
    load_facts(con, read_spec_example("commitment_discount_purchase_scenario_1.csv"))
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 12, 31)))
    assert rows(
        con,
        f"""SELECT charge_date, BilledCost, EffectiveCost, x_SourceEffectiveCost,
                   x_AmortizationClass, x_AmortizedBy, x_CommitmentPool, x_AmortizedFromDate
            FROM {AMORTIZED}""",
    ) == [(date(2023, 1, 1), D("8760.00"), D("0"), D("0"), "Principal", "provider", False, None)]


def test_purchase_scenario_1_not_amortized_is_spread_365_days_of_24(con):
    # All Upfront 8760.00 for 2023-01-01 -> 2024-01-01: $1.00 per hour x 24 = 24.00 per day.
    load_facts(con, read_spec_example("commitment_discount_purchase_scenario_1.csv", not_amortized))
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 12, 31)))
    assert rows(
        con,
        f"""SELECT count(*), min(EffectiveCost), max(EffectiveCost), sum(EffectiveCost),
                   sum(BilledCost), min(charge_date), max(charge_date),
                   count(DISTINCT charge_date), bool_and(x_CommitmentPool)
            FROM {AMORTIZED} WHERE x_AmortizedFromDate IS NOT NULL""",
    ) == [
        (
            365,
            D("24.00"),
            D("24.00"),
            D("8760.00"),
            D("0"),
            date(2023, 1, 1),
            date(2023, 12, 31),
            365,
            True,
        )
    ]
    assert rows(
        con,
        f"""SELECT BilledCost, EffectiveCost, x_SourceEffectiveCost, x_AmortizationClass,
                   x_AmortizedBy, x_CommitmentPool
            FROM {AMORTIZED} WHERE x_AmortizedFromDate IS NULL""",
    ) == [(D("8760.00"), D("0"), D("8760.00"), "Principal", "platform", False)]
    # One spread row in full: a whole UTC day, recurring, nothing billed, quantities dropped.
    assert rows(
        con,
        f"""SELECT ChargePeriodStart, ChargePeriodEnd, ChargeFrequency, ChargeCategory,
                   ListCost, ContractedCost, PricingQuantity, CommitmentDiscountQuantity,
                   CommitmentDiscountId, x_AmortizationClass, x_AmortizedBy,
                   x_SourceEffectiveCost, x_AmortizedFromDate, x_SourceFile
            FROM {AMORTIZED} WHERE charge_date = DATE '2023-07-04'
              AND x_AmortizedFromDate IS NOT NULL""",
    ) == [
        (
            utc(date(2023, 7, 4)),
            utc(date(2023, 7, 5)),
            "Recurring",
            "Purchase",
            D("0"),
            D("0"),
            None,
            None,
            "<my-commitment-discount-id>",
            "Amortized Charge",
            "platform",
            None,
            date(2023, 1, 1),
            "commitment_discount_purchase_scenario_1.csv",
        )
    ]
    schedule = spread_schedule_sql(CENTRAL, FACTS)
    assert rows(
        con,
        f"""SELECT count(*), sum(amount), min(amount), max(amount), any_value(term_days),
                   any_value(purchase_amount), any_value(purchase_date), min(day_number),
                   max(day_number), count(DISTINCT purchase_key)
            FROM ({schedule})""",
    ) == [
        (365, D("8760.00"), D("24.00"), D("24.00"), 365, D("8760.00"), date(2023, 1, 1), 1, 365, 1)
    ]


def test_purchase_scenario_2_hourly_recurring_purchases_stay_on_their_hour(con):
    load_facts(
        con, read_spec_example("commitment_discount_purchase_scenario_2.csv", hourly_recurring)
    )
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 1, 31)))
    assert rows(
        con,
        f"""SELECT ChargePeriodStart, ChargePeriodEnd, BilledCost, EffectiveCost,
                   x_AmortizationClass, x_AmortizedBy
            FROM {AMORTIZED} ORDER BY ChargePeriodStart""",
    ) == [
        (
            utc(date(2023, 1, 1), h),
            utc(date(2023, 1, 1), h + 1),
            D("1.00"),
            D("0"),
            "Principal",
            "provider",
        )
        for h in (0, 10, 20)
    ]


def test_purchase_scenario_3_partial_upfront(con):
    # Provider-amortized as in the specification: nothing to spread, four Principal rows.
    load_facts(
        con, read_spec_example("commitment_discount_purchase_scenario_3.csv", hourly_recurring)
    )
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 12, 31)))
    assert rows(
        con,
        f"""SELECT count(*), sum(BilledCost), sum(EffectiveCost), count(x_AmortizedFromDate)
            FROM {AMORTIZED} WHERE x_AmortizationClass = 'Principal'
              AND x_AmortizedBy = 'provider'""",
    ) == [(4, D("4381.50"), D("0"), 0)]

    # From a source that does not amortize: the one-time 4380.00 over 365 days is 12.00 a day
    # (the specification's $0.50 per hour from the one-time part); the 0.50 hourly recurring
    # purchases cover one hour (less than min_term_days) and stay on their day at 0.50 each.
    def partial_upfront_not_amortized(raw):
        hourly_recurring(raw)
        not_amortized(raw)

    load_facts(
        con,
        read_spec_example(
            "commitment_discount_purchase_scenario_3.csv", partial_upfront_not_amortized
        ),
    )
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 12, 31)))
    assert rows(
        con,
        f"""SELECT count(*), min(EffectiveCost), max(EffectiveCost), sum(EffectiveCost)
            FROM {AMORTIZED} WHERE x_AmortizedFromDate IS NOT NULL""",
    ) == [(365, D("12.00"), D("12.00"), D("4380.00"))]
    assert rows(
        con,
        f"""SELECT ChargeFrequency, BilledCost, EffectiveCost, x_AmortizedBy, x_CommitmentPool
            FROM {AMORTIZED} WHERE x_AmortizedFromDate IS NULL
            ORDER BY ChargeFrequency, ChargePeriodStart""",
    ) == [
        ("One-Time", D("4380.00"), D("0"), "platform", False),
        ("Recurring", D("0.50"), D("0.50"), "provider", True),
        ("Recurring", D("0.50"), D("0.50"), "provider", True),
        ("Recurring", D("0.50"), D("0.50"), "provider", True),
    ]
    # 2023-01-01: billed 4380.00 + 3 x 0.50; effective 12.00 spread + 3 x 0.50 recurring.
    assert rows(
        con,
        f"""SELECT sum(BilledCost), sum(EffectiveCost) FROM {AMORTIZED}
            WHERE charge_date = DATE '2023-01-01'""",
    ) == [(D("4381.50"), D("13.50"))]


def utilization(con) -> list[tuple]:
    return rows(
        con,
        f"""SELECT CommitmentDiscountId, amortized_cost, used_cost, unused_cost, utilization_pct
            FROM ({commitment_utilization_sql(AMORTIZED, (date(2023, 1, 1), date(2023, 1, 1)))})""",
    )


@pytest.mark.parametrize(
    ("example", "used", "unused", "pct"),
    [
        ("commitment_discount_usage_scenario_1.csv", "1.00", "0", 100.0),
        ("commitment_discount_usage_scenario_2.csv", "0", "1.00", 0.0),
        ("commitment_discount_usage_scenario_3.csv", "0.75", "0.25", 75.0),
        # The 0.50 on-demand overage has no commitment: not part of the commitment's figures.
        ("commitment_discount_usage_scenario_4.csv", "1.00", "0", 100.0),
    ],
)
def test_spec_usage_scenarios_utilization(con, example, used, unused, pct):
    load_facts(con, read_spec_example(example))
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 1, 1)))
    # No purchase rows: the amortized cost is the used and unused charges, $1.00 an hour.
    assert utilization(con) == [("<my-commitment-discount-id>", D("1.00"), D(used), D(unused), pct)]


def test_spec_usage_scenario_4_coverage_leaves_the_overage_uncovered(con):
    load_facts(con, read_spec_example("commitment_discount_usage_scenario_4.csv"))
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 1, 1)))
    # No ListCost in the example: covered 1.00 (EffectiveCost), on demand 0.50; 1.00 / 1.50.
    assert rows(
        con,
        f"""SELECT ServiceName, covered_cost, on_demand_cost, eligible_cost, coverage_pct
            FROM ({commitment_coverage_sql(AMORTIZED, (date(2023, 1, 1), date(2023, 1, 1)))})""",
    ) == [("Compute", D("1.00"), D("0.50"), D("1.50"), 66.6667)]


@pytest.mark.parametrize(
    ("example", "purchased", "used", "unused", "pct"),
    [
        (
            "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource.csv",
            "0.50",
            "0.50",
            "0",
            100.0,
        ),
        (
            "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources.csv",
            "2.00",
            "2.00",
            "0",
            100.0,
        ),
        (
            "one_hundred_percent_utilization_without_commitment_discount_flexibility.csv",
            "1.50",
            "1.50",
            "0",
            100.0,
        ),
        (
            "zero_percent_utilization_without_commitment_discount_flexibility.csv",
            "1.50",
            "0",
            "1.50",
            0.0,
        ),
    ],
)
def test_spec_utilization_examples(con, example, purchased, used, unused, pct):
    load_facts(con, read_spec_example(example))
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 1, 1)))
    # The hourly purchase is amortized by the provider (EffectiveCost 0): amortized = used + unused.
    assert utilization(con) == [
        ("<my-commitment-discount-id>", D(used) + D(unused), D(used), D(unused), pct)
    ]
    # FOCUS: Σ BilledCost of the purchases = Σ EffectiveCost of the Used and Unused rows.
    assert rows(
        con,
        f"""SELECT sum(BilledCost) FILTER (WHERE ChargeCategory = 'Purchase'),
                   sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus IN ('Used', 'Unused'))
            FROM {AMORTIZED}""",
    ) == [(D(purchased), D(purchased))]
    # The extra x_ column of the examples passes through.
    assert rows(con, f"SELECT count(x_CommitmentDiscountUnitPrice) FROM {AMORTIZED}")[0][0] >= 2


def test_spec_flexibility_coverage(con):
    load_facts(
        con,
        read_spec_example(
            "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource.csv"
        ),
    )
    amortize(con, CENTRAL, (date(2023, 1, 1), date(2023, 1, 1)))
    # Covered usage lists at 3.00, the on-demand remainder at 2.25: 3.00 / 5.25 = 57.1429 %.
    assert rows(
        con,
        f"""SELECT covered_cost, on_demand_cost, eligible_cost, coverage_pct
            FROM ({commitment_coverage_sql(AMORTIZED, (date(2023, 1, 1), date(2023, 1, 1)))})""",
    ) == [(D("3.00"), D("2.25"), D("5.25"), 57.1429)]


# --- Spreading --------------------------------------------------------------------------------


def spread_amounts(con, days: tuple[date, date]) -> list[tuple]:
    return rows(
        con,
        f"""SELECT ResourceId, charge_date, EffectiveCost FROM {AMORTIZED}
            WHERE x_AmortizedFromDate IS NOT NULL ORDER BY ResourceId, charge_date""",
    )


def test_spread_is_cent_exact(con):
    load_facts(
        con,
        [
            purchase("100.00", date(2025, 1, 1), 3, ResourceId="a-even-thirds"),
            purchase("10.005", date(2025, 1, 1), 2, ResourceId="b-sub-cent"),
            purchase("-100.00", date(2025, 1, 1), 3, ResourceId="c-refund"),
            purchase("-10.005", date(2025, 1, 1), 2, ResourceId="d-sub-cent-refund"),
        ],
    )
    amortize(con, CENTRAL, (date(2025, 1, 1), date(2025, 1, 3)))
    jan = [date(2025, 1, d) for d in (1, 2, 3)]
    assert spread_amounts(con, (jan[0], jan[2])) == [
        # 10000 cents / 3 = 3333 each, 1 cent left -> day 1.
        ("a-even-thirds", jan[0], D("33.34")),
        ("a-even-thirds", jan[1], D("33.33")),
        ("a-even-thirds", jan[2], D("33.33")),
        # floor(1000.5) = 1000 cents / 2 = 500 each; the 0.005 rest -> day 1.
        ("b-sub-cent", jan[0], D("5.005")),
        ("b-sub-cent", jan[1], D("5.00")),
        # -10000 cents: floor(-10000 / 3) = -3334, -10000 - 3 x -3334 = 2 days get +1 cent.
        ("c-refund", jan[0], D("-33.33")),
        ("c-refund", jan[1], D("-33.33")),
        ("c-refund", jan[2], D("-33.34")),
        # floor(-1000.5) = -1001 cents: floor(-1001 / 2) = -501, 1 day gets +1 cent (-500);
        # the rest -10.005 - (-10.01) = +0.005 goes to day 1: -4.995 and -5.01.
        ("d-sub-cent-refund", jan[0], D("-4.995")),
        ("d-sub-cent-refund", jan[1], D("-5.01")),
    ]
    assert rows(
        con,
        f"""SELECT ResourceId, sum(amount), any_value(purchase_amount), count(*),
                   bool_and(abs(amount - purchase_amount / term_days) < 0.01 + CASE WHEN day_number = 1 THEN 0.01 ELSE 0 END)
            FROM ({spread_schedule_sql(CENTRAL, FACTS)}) GROUP BY ALL ORDER BY ALL""",
    ) == [
        ("a-even-thirds", D("100.00"), D("100.00"), 3, True),
        ("b-sub-cent", D("10.005"), D("10.005"), 2, True),
        ("c-refund", D("-100.00"), D("-100.00"), 3, True),
        ("d-sub-cent-refund", D("-10.005"), D("-10.005"), 2, True),
    ]


def test_term_days_of_half_open_periods(con):
    noon = {
        "ChargePeriodStart": utc(date(2025, 1, 1), 12),
        "ChargePeriodEnd": utc(date(2025, 1, 3), 12),
    }
    load_facts(
        con,
        [
            purchase("30.00", date(2025, 1, 1), 2, ResourceId="two-days"),
            # 12:00 -> 12:00 two days later touches three UTC days.
            charge(
                ChargeCategory="Purchase", BilledCost="30.00", ResourceId="noon-to-noon", **noon
            ),
            # One day is a day's fee, not a prepayment: below min_term_days.
            purchase("30.00", date(2025, 1, 1), 1, ResourceId="one-day"),
        ],
    )
    assert rows(
        con,
        f"""SELECT ResourceId, term_days, list(amount ORDER BY day_number)
            FROM ({spread_schedule_sql(CENTRAL, FACTS)}) GROUP BY ALL ORDER BY ALL""",
    ) == [
        ("noon-to-noon", 3, [D("10.00"), D("10.00"), D("10.00")]),
        ("two-days", 2, [D("15.00"), D("15.00")]),
    ]
    three_days = AmortizationRules(min_term_days=3)
    assert rows(
        con, f"SELECT DISTINCT ResourceId FROM ({spread_schedule_sql(three_days, FACTS)})"
    ) == [("noon-to-noon",)]


def test_purchase_before_the_window_spreads_into_it(con):
    load_facts(
        con,
        [
            # 100.00 over 2025-01-01..2025-01-10: 10.00 a day.
            purchase("100.00", date(2025, 1, 1), 10, ResourceId="support-plan"),
            charge(date(2025, 1, 6), BilledCost="2.00", ResourceId="vm"),
        ],
    )
    amortize(con, CENTRAL, (date(2025, 1, 5), date(2025, 1, 7)))
    assert rows(
        con,
        f"""SELECT ResourceId, charge_date, BilledCost, EffectiveCost, x_AmortizationClass,
                   x_AmortizedBy, x_AmortizedFromDate, x_CommitmentPool
            FROM {AMORTIZED} ORDER BY ResourceId, charge_date""",
    ) == [
        # No CommitmentDiscountId: a prepaid fee, spread but not commitment pool cost.
        (
            "support-plan",
            date(2025, 1, d),
            D("0"),
            D("10.00"),
            "Amortized Charge",
            "platform",
            date(2025, 1, 1),
            False,
        )
        for d in (5, 6, 7)
    ] + [("vm", date(2025, 1, 6), D("2.00"), D("2.00"), None, None, None, False)]
    # After the term: nothing.
    amortize(con, CENTRAL, (date(2025, 1, 11), date(2025, 1, 20)))
    assert rows(con, f"SELECT count(*) FROM {AMORTIZED}") == [(0,)]


def test_spread_none_leaves_purchases_untouched(con):
    load_facts(
        con,
        [
            purchase("100.00", date(2025, 1, 1), 10, ResourceId="support-plan"),
            purchase("365.00", date(2025, 1, 1), 365, ResourceId="ri", CommitmentDiscountId="ri"),
        ],
    )
    amortize(con, NO_SPREAD, (date(2025, 1, 1), date(2025, 1, 10)))
    assert rows(
        con,
        f"""SELECT ResourceId, charge_date, BilledCost, EffectiveCost, x_AmortizationClass,
                   x_AmortizedBy, x_CommitmentPool
            FROM {AMORTIZED} ORDER BY ResourceId""",
    ) == [
        ("ri", date(2025, 1, 1), D("365.00"), D("365.00"), "Principal", "provider", True),
        ("support-plan", date(2025, 1, 1), D("100.00"), D("100.00"), None, None, False),
    ]
    assert rows(con, f"SELECT count(*) FROM ({spread_schedule_sql(NO_SPREAD, FACTS)})") == [(0,)]


def test_output_columns_and_types_pass_extra_columns_through(con):
    load_facts(
        con,
        [
            purchase("100.00", date(2025, 1, 1), 10, ResourceId="support-plan", x_Note="prepaid"),
            charge(BilledCost="1.00", ResourceId="vm", x_Note="usage"),
        ],
    )
    amortize(con, CENTRAL, (date(2025, 1, 1), date(2025, 1, 2)))
    facts = rows(con, f"DESCRIBE {FACTS}")
    described = rows(con, f"DESCRIBE {AMORTIZED}")
    assert [(c[0], c[1]) for c in described] == [(c[0], c[1]) for c in facts] + [
        ("x_AmortizationClass", "VARCHAR"),
        ("x_AmortizedBy", "VARCHAR"),
        ("x_SourceEffectiveCost", "DECIMAL(38,12)"),
        ("x_CommitmentPool", "BOOLEAN"),
        ("x_AmortizedFromDate", "DATE"),
    ]
    assert list(AMORTIZATION_COLUMNS) == [c[0] for c in described[-5:]]
    assert rows(con, f"SELECT x_Note, count(*) FROM {AMORTIZED} GROUP BY ALL ORDER BY ALL") == [
        ("prepaid", 3),
        ("usage", 1),
    ]


# --- Unused commitment cost ---------------------------------------------------------------------


def used(day: date, commitment: str, resource: str, amount: str, currency: str = "USD") -> dict:
    return charge(
        day,
        BilledCost="0",
        EffectiveCost=amount,
        ListCost=amount,
        ResourceId=resource,
        BillingCurrency=currency,
        PricingCategory="Committed",
        CommitmentDiscountId=commitment,
        CommitmentDiscountStatus="Used",
        CommitmentDiscountType="Reserved Instance",
        CommitmentDiscountCategory="Usage",
    )


def unused(day: date, commitment: str, amount: str, currency: str = "USD") -> dict:
    return charge(
        day,
        BilledCost="0",
        EffectiveCost=amount,
        ListCost="0",
        ResourceId=commitment,
        BillingCurrency=currency,
        PricingCategory="Committed",
        CommitmentDiscountId=commitment,
        CommitmentDiscountStatus="Unused",
        CommitmentDiscountType="Reserved Instance",
        CommitmentDiscountCategory="Usage",
    )


DAY1, DAY2, DAY3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)

REDISTRIBUTION_FACTS = [
    # Day 1: 1.00 unused over used 6.00 and 3.00: 100 cents x 6/9 = 66.67, x 3/9 = 33.33;
    # floors 66 + 33 leave 1 cent for the largest remainder (0.67): 6.67 and 3.33.
    used(DAY1, "ri-1", "vm-a", "6.00"),
    used(DAY1, "ri-1", "vm-b", "3.00"),
    unused(DAY1, "ri-1", "1.00"),
    # Day 2: 0.02 unused over 5.00 and 4.00: 2 x 5/9 = 1.11, 2 x 4/9 = 0.89; floors 1 + 0 leave
    # 1 cent for the largest remainder, the smaller consumer (0.89): 5.01 and 4.01.
    used(DAY2, "ri-1", "vm-a", "5.00"),
    used(DAY2, "ri-1", "vm-b", "4.00"),
    unused(DAY2, "ri-1", "0.02"),
    # Day 3: 0.505 unused over 4.00, 2.00, 1.00: 50 cents x 4/7, 2/7, 1/7 = 28.57, 14.29, 7.14;
    # floors 28 + 14 + 7 = 49 leave 1 cent (largest remainder 0.57, vm-a); the 0.005 rest goes
    # to the largest consumer (vm-a): 4.295, 2.14, 1.07.
    used(DAY3, "ri-1", "vm-a", "4.00"),
    used(DAY3, "ri-1", "vm-b", "2.00"),
    used(DAY3, "ri-1", "vm-c", "1.00"),
    unused(DAY3, "ri-1", "0.505"),
    # Day 1, another commitment with nothing running: its waste stays in the pool.
    unused(DAY1, "ri-idle", "4.00"),
    # Day 1, the same commitment id billed in two currencies: EUR waste goes to EUR users only.
    used(DAY1, "sp-multi", "vm-eur", "8.00", "EUR"),
    unused(DAY1, "sp-multi", "2.00", "EUR"),
    used(DAY1, "sp-multi", "vm-usd", "10.00", "USD"),
]


def test_redistribute_moves_unused_cost_to_consumers_in_whole_cents(con):
    load_facts(con, REDISTRIBUTION_FACTS)
    amortize(con, REDISTRIBUTE, (DAY1, DAY3))
    assert rows(
        con,
        f"""SELECT charge_date, CommitmentDiscountId, BillingCurrency, CommitmentDiscountStatus,
                   ResourceId, EffectiveCost, x_SourceEffectiveCost, x_AmortizedBy,
                   x_CommitmentPool
            FROM {AMORTIZED} ORDER BY ALL""",
    ) == [
        (DAY1, "ri-1", "USD", "Unused", "ri-1", D("0"), D("1.00"), "platform", False),
        (DAY1, "ri-1", "USD", "Used", "vm-a", D("6.67"), D("6.00"), "platform", False),
        (DAY1, "ri-1", "USD", "Used", "vm-b", D("3.33"), D("3.00"), "platform", False),
        (DAY1, "ri-idle", "USD", "Unused", "ri-idle", D("4.00"), D("4.00"), "provider", True),
        (DAY1, "sp-multi", "EUR", "Unused", "sp-multi", D("0"), D("2.00"), "platform", False),
        (DAY1, "sp-multi", "EUR", "Used", "vm-eur", D("10.00"), D("8.00"), "platform", False),
        (DAY1, "sp-multi", "USD", "Used", "vm-usd", D("10.00"), D("10.00"), "provider", False),
        (DAY2, "ri-1", "USD", "Unused", "ri-1", D("0"), D("0.02"), "platform", False),
        (DAY2, "ri-1", "USD", "Used", "vm-a", D("5.01"), D("5.00"), "platform", False),
        (DAY2, "ri-1", "USD", "Used", "vm-b", D("4.01"), D("4.00"), "platform", False),
        (DAY3, "ri-1", "USD", "Unused", "ri-1", D("0"), D("0.505"), "platform", False),
        (DAY3, "ri-1", "USD", "Used", "vm-a", D("4.295"), D("4.00"), "platform", False),
        (DAY3, "ri-1", "USD", "Used", "vm-b", D("2.14"), D("2.00"), "platform", False),
        (DAY3, "ri-1", "USD", "Used", "vm-c", D("1.07"), D("1.00"), "platform", False),
    ]
    # Utilization reads the delivered amounts: day 1 ri-1 used 9.00 of 10.00 = 90 %.
    assert rows(
        con,
        f"""SELECT charge_date, CommitmentDiscountId, BillingCurrency, amortized_cost,
                   used_cost, unused_cost, utilization_pct
            FROM ({commitment_utilization_sql(AMORTIZED, (DAY1, DAY1))})""",
    ) == [
        (DAY1, "sp-multi", "EUR", D("10.00"), D("8.00"), D("2.00"), 80.0),
        (DAY1, "ri-1", "USD", D("10.00"), D("9.00"), D("1.00"), 90.0),
        (DAY1, "ri-idle", "USD", D("4.00"), D("0"), D("4.00"), 0.0),
        (DAY1, "sp-multi", "USD", D("10.00"), D("10.00"), D("0"), 100.0),
    ]


def test_central_keeps_unused_cost_in_the_pool(con):
    load_facts(con, REDISTRIBUTION_FACTS)
    amortize(con, CENTRAL, (DAY1, DAY3))
    assert rows(
        con,
        f"""SELECT CommitmentDiscountStatus, x_AmortizedBy, x_CommitmentPool, count(*),
                   sum(EffectiveCost), bool_and(EffectiveCost = x_SourceEffectiveCost)
            FROM {AMORTIZED} GROUP BY ALL ORDER BY ALL""",
    ) == [
        # 1.00 + 0.02 + 0.505 + 4.00 + 2.00
        ("Unused", "provider", True, 5, D("7.525"), True),
        # 9.00 + 9.00 + 7.00 + 8.00 + 10.00
        ("Used", "provider", False, 9, D("43.00"), True),
    ]


def test_redistribute_needs_positive_used_amounts(con):
    load_facts(
        con,
        [
            used(DAY1, "sp-1", "negation", "0"),
            used(DAY1, "sp-1", "correction", "-2.00"),
            unused(DAY1, "sp-1", "3.00"),
        ],
    )
    amortize(con, REDISTRIBUTE, (DAY1, DAY1))
    assert rows(
        con,
        f"""SELECT ResourceId, EffectiveCost, x_AmortizedBy, x_CommitmentPool
            FROM {AMORTIZED} ORDER BY ALL""",
    ) == [
        ("correction", D("-2.00"), "provider", False),
        ("negation", D("0"), "provider", False),
        ("sp-1", D("3.00"), "provider", True),
    ]


# --- Conservation ---------------------------------------------------------------------------------


def test_conservation_holds_on_a_mixed_fixture(con):
    window = (DAY2, DAY3)
    load_facts(
        con,
        [
            *REDISTRIBUTION_FACTS,
            # Bought before the window: 90.00 over 2025-02-28..2025-03-08 (9 days) = 10.00 a day.
            purchase(
                "90.00", date(2025, 2, 28), 9, ResourceId="plan", CommitmentDiscountId="sp-up"
            ),
            # Bought in the window, EUR: 100.00 over 3 days = 33.34, 33.33, 33.33.
            purchase("100.00", DAY2, 3, ResourceId="eur-plan", BillingCurrency="EUR"),
            # Amortized by the provider: stays on its day, effective 0.
            charge(
                DAY2,
                ChargeCategory="Purchase",
                BilledCost="50.00",
                EffectiveCost="0",
                CommitmentDiscountId="ri-9",
            ),
            charge(DAY2, ChargeCategory="Credit", BilledCost="-1.50"),
            charge(DAY3, BilledCost="7.25", BillingCurrency="EUR"),
        ],
    )
    amortize(con, REDISTRIBUTE, window)
    result = rows(
        con,
        f"""SELECT charge_date, BillingCurrency, facts_billed, facts_effective, spread_in,
                   principal_moved_out, amortized_billed, amortized_effective, expected_effective,
                   billed_difference, effective_difference, balanced
            FROM ({amortization_conservation_sql(FACTS, AMORTIZED, window)})""",
    )
    # fmt: off
    assert result == [
        # day, currency, facts billed, facts effective, spread in, principal moved out,
        # amortized billed, amortized effective, expected effective, differences, balanced
        # EUR plan bought on day 2: its 100.00 leaves the day, its first share (33.34) arrives.
        (DAY2, "EUR", D("100.00"), D("100.00"), D("33.34"), D("100.00"), D("100.00"), D("33.34"), D("33.34"), D("0"), D("0"), True),
        # Billed 50.00 (ri-9) - 1.50 credit; effective used 9.00 + unused 0.02 - 1.50 = 7.52,
        # plus sp-up's 10.00 (bought 2025-02-28, so nothing moves out this day). The unused
        # 0.02 redistributed onto the Used rows nets to zero.
        (DAY2, "USD", D("48.50"), D("7.52"), D("10.00"), D("0"), D("48.50"), D("17.52"), D("17.52"), D("0"), D("0"), True),
        (DAY3, "EUR", D("7.25"), D("7.25"), D("33.33"), D("0"), D("7.25"), D("40.58"), D("40.58"), D("0"), D("0"), True),
        # Used 7.00 + unused 0.505 + sp-up's 10.00.
        (DAY3, "USD", D("0"), D("7.505"), D("10.00"), D("0"), D("0"), D("17.505"), D("17.505"), D("0"), D("0"), True),
    ]
    # fmt: on


# --- Commitment balance ---------------------------------------------------------------------------

JAN = [date(2025, 1, d) for d in range(1, 32)]


def cur_like_commitment(commitment: str, last_day_used: str) -> list[dict]:
    """A monthly RIFee row (744.00 billed, 44.00 unused left on it, as AWS CUR does) and Used
    rows of 22.00 a day for 28 days and 28.00 for the first two of the last three days."""
    fee = charge(
        JAN[0],
        ChargeCategory="Purchase",
        ChargeFrequency="Recurring",
        BilledCost="744.00",
        EffectiveCost="44.00",
        ChargePeriodEnd=utc(date(2025, 2, 1)),
        ResourceId=commitment,
        CommitmentDiscountId=commitment,
    )
    amounts = ["22.00"] * 28 + ["28.00", "28.00", last_day_used]
    return [fee] + [used(day, commitment, "vm", a) for day, a in zip(JAN, amounts, strict=True)]


def test_commitment_balance(con):
    load_facts(
        con,
        [
            # 616.00 + 84.00 used + 44.00 unused = 744.00.
            *cur_like_commitment("ri-balanced", "28.00"),
            # 616.00 + 79.00 + 44.00 = 739.00: 5.00 short.
            *cur_like_commitment("ri-short", "23.00"),
            # 100.00 over 365 days from 2025-01-01, spread by the platform: 10000 cents / 365 =
            # 27 a day, 145 days with 28: January (31 days x 0.28) = 8.68 by the schedule;
            # pro rata (100 x 31 / 365 = 8.4932) would miss it by 0.19.
            purchase(
                "100.00", JAN[0], 365, ResourceId="sp-upfront", CommitmentDiscountId="sp-upfront"
            ),
            # Bought before the loaded history: only its usage is here.
            used(JAN[14], "sp-old", "vm", "1.00"),
            # AWS-style upfront fee: a one-day charge period amortized by the provider over a
            # term the row does not state.
            charge(
                JAN[9],
                ChargeCategory="Purchase",
                BilledCost="300.00",
                EffectiveCost="0",
                CommitmentDiscountId="ri-upfront",
            ),
            used(JAN[9], "ri-upfront", "vm", "0.82"),
            # Partial upfront bought before the loaded history, AWS style: the RIFee bills the
            # recurring 31.00, covered usage carries recurring + amortized upfront (2.00 a day).
            charge(
                JAN[0],
                ChargeCategory="Purchase",
                ChargeFrequency="Recurring",
                BilledCost="31.00",
                EffectiveCost="0",
                ChargePeriodEnd=utc(date(2025, 2, 1)),
                CommitmentDiscountId="ri-old-upfront",
            ),
            *[used(day, "ri-old-upfront", "vm", "2.00") for day in JAN],
            # Spread by the platform (31.00 over January, 1.00 a day) plus a stray 0.50 Used
            # row: more amortized than paid, with the upfront loaded, is judged.
            purchase("31.00", JAN[0], 31, CommitmentDiscountId="sp-extra"),
            used(JAN[4], "sp-extra", "vm", "0.50"),
            # February: three days loaded.
            *[used(date(2025, 2, d), "ri-balanced", "vm", "24.00") for d in (1, 2, 3)],
        ],
    )
    amortize(con, CENTRAL, (JAN[0], date(2025, 2, 3)))
    balance = commitment_balance_sql(AMORTIZED, (JAN[14], date(2025, 2, 2)), D("0.01"))
    # fmt: off
    assert rows(con, f"SELECT * FROM ({balance})") == [
        # id, currency, month, days loaded, days in month, complete, purchase basis, amortized,
        # difference, within tolerance, status
        ("ri-balanced", "USD", "2025-01", 31, 31, True, D("744.00"), D("744.00"), D("0"), True, "balanced"),
        ("ri-balanced", "USD", "2025-02", 3, 28, False, D("0"), D("72.00"), D("72.00"), True, "month incomplete"),
        # 31 x 2.00 = 62.00 amortized against the 31.00 paid in the loaded history.
        ("ri-old-upfront", "USD", "2025-01", 31, 31, False, D("31.00"), D("62.00"), D("31.00"), True, "upfront before history"),
        ("ri-short", "USD", "2025-01", 31, 31, True, D("744.00"), D("739.00"), D("-5.00"), False, "unbalanced"),
        ("ri-upfront", "USD", "2025-01", 31, 31, False, D("300.00"), D("0.82"), D("-299.18"), True, "upfront term unknown"),
        ("sp-extra", "USD", "2025-01", 31, 31, True, D("31.00"), D("31.50"), D("0.50"), False, "unbalanced"),
        ("sp-old", "USD", "2025-01", 31, 31, False, None, D("1.00"), None, True, "no purchase loaded"),
        ("sp-upfront", "USD", "2025-01", 31, 31, True, D("8.68"), D("8.68"), D("0"), True, "balanced"),
        # February: 28 days x 0.28 = 7.84 by the schedule, 3 days (0.84) loaded.
        ("sp-upfront", "USD", "2025-02", 3, 28, False, D("7.84"), D("0.84"), D("-7.00"), True, "month incomplete"),
    ]
    # fmt: on
    loose = commitment_balance_sql(AMORTIZED, (JAN[14], JAN[14]), D("5.00"))
    assert rows(
        con,
        f"SELECT CommitmentDiscountId, within_tolerance, status FROM ({loose}) WHERE CommitmentDiscountId = 'ri-short'",
    ) == [("ri-short", True, "balanced")]


def test_commitment_balance_prorates_provider_amortized_multi_month_purchases(con):
    # A provider-amortized one-time purchase stating its term (FOCUS purchase scenario 1 style):
    # 365.00 over 2025-01-01..2025-12-31, 1.00 a day on Used rows. January basis = 31.00.
    load_facts(
        con,
        [
            charge(
                JAN[0],
                ChargeCategory="Purchase",
                BilledCost="365.00",
                EffectiveCost="0",
                ChargePeriodEnd=utc(date(2026, 1, 1)),
                CommitmentDiscountId="ri-year",
            ),
            *[used(day, "ri-year", "vm", "1.00") for day in JAN],
        ],
    )
    amortize(con, CENTRAL, (JAN[0], JAN[-1]))
    balance = commitment_balance_sql(AMORTIZED, (JAN[0], JAN[0]), D("0.01"))
    assert rows(
        con,
        f"SELECT CommitmentDiscountId, purchase_basis, amortized, difference, status FROM ({balance})",
    ) == [("ri-year", D("31.00"), D("31.00"), D("0"), "balanced")]
