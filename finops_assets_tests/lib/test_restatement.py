"""The restatement guard's decision (lib/restatement.py): totals computed by hand."""

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib.restatement import (
    FOCUS_MEASURE,
    CurrencyTotals,
    Incoming,
    RestatementGuard,
    SliceTotals,
    accepted_deliveries,
    compare_slices,
    decide,
    read_slice_totals,
)
from finops_assets.lib.warehouse import configure_connection

DAYS = (date(2025, 1, 1), date(2025, 1, 31))
OLD, NEW = "run-1", "run-2"


def totals(ids: tuple[str, ...] = (OLD,), **per_currency: tuple[int, str]) -> SliceTotals:
    return SliceTotals(
        {c: CurrencyTotals(rows, Decimal(billed)) for c, (rows, billed) in per_currency.items()},
        ids,
    )


def judge(loaded: SliceTotals, incoming: SliceTotals, bound: float = 50, accepted=frozenset()):
    return decide(
        "azure/ea-1/daily-actual",
        "2025-01",
        DAYS,
        loaded,
        incoming,
        max_drop_pct=bound,
        accepted=accepted,
    )


def test_zero_rows_where_rows_were_loaded_is_held_with_both_deliveries_named():
    decision = judge(totals(USD=(3, "8.55")), SliceTotals({}, (NEW,)))
    assert decision.held
    assert decision.breaches == ("remove all 3 loaded rows",)
    assert decision.message == (
        "Restatement held for azure/ea-1/daily-actual billing period 2025-01: loading "
        "2025-01-01..2025-01-31 from the newer delivery run-2 would take the month from 3 rows, "
        "USD 8.55 (delivery run-1) to 0 rows, i.e. remove all 3 loaded rows (bound: "
        "deliveries.max_restatement_drop_pct = 50%). The loaded rows stay. If the provider "
        "really restated it so, re-launch the run with the tag "
        "finops/accept_restatement=run-2, or set deliveries.max_restatement_drop_pct to 100 "
        "or more in the rules YAML."
    )


def test_zero_rows_where_nothing_was_loaded_is_a_first_load():
    decision = judge(SliceTotals(), totals((NEW,), USD=(2, "4.00")))
    assert not decision.held
    assert decision.message == (
        "azure/ea-1/daily-actual billing period 2025-01, 2025-01-01..2025-01-31: first load "
        "from delivery run-2; month 2 rows, USD 4.00."
    )


@pytest.mark.parametrize(
    ("new_billed", "held", "drop"),
    [
        ("51.00", False, Decimal("49")),
        ("49.00", True, Decimal("51")),
        ("50.00", False, Decimal("50")),
    ],
)
def test_a_drop_beyond_the_bound_is_held(new_billed, held, drop):
    decision = judge(totals(USD=(10, "100.00")), totals((NEW,), USD=(10, new_billed)))
    assert decision.held is held
    (change,) = decision.changes
    assert change.drop_pct == drop
    if held:
        assert decision.breaches == ("cut Σ billed USD by 51.0% (USD 100.00 → 49.00)",)
        assert "set deliveries.max_restatement_drop_pct to 51 or more" in decision.message
    else:
        assert decision.message == (
            "azure/ea-1/daily-actual billing period 2025-01, 2025-01-01..2025-01-31: delivery "
            f"run-1 → delivery run-2; month 10 rows, USD 100.00 → 10 rows, USD {new_billed}."
        )


def test_currencies_are_compared_each_on_its_own():
    # EUR stays, USD collapses 100 → 10: held, although the sum over both (never taken) moved
    # from 1100 to 1010 only.
    decision = judge(
        totals(EUR=(5, "1000.00"), USD=(5, "100.00")),
        totals((NEW,), EUR=(5, "1000.00"), USD=(5, "10.00")),
    )
    assert decision.held
    assert decision.breaches == ("cut Σ billed USD by 90.0% (USD 100.00 → 10.00)",)
    assert (
        "from 10 rows, EUR 1000.00, USD 100.00 (delivery run-1) to 10 rows, EUR 1000.00, "
        "USD 10.00, i.e. cut Σ billed USD by 90.0%" in decision.message
    )


def test_a_currency_that_disappears_is_a_full_drop():
    decision = judge(totals(EUR=(5, "1000.00"), USD=(2, "0.00")), totals((NEW,), EUR=(5, "990.00")))
    assert decision.held
    assert decision.breaches == ("drop USD entirely (2 rows, USD 0.00 loaded)",)
    assert [c.drop_pct for c in decision.changes] == [Decimal(1), Decimal(100)]


def test_credits_have_no_percentage_to_drop():
    decision = judge(totals(USD=(2, "-5.00")), totals((NEW,), USD=(2, "-50.00")))
    assert not decision.held
    assert decision.changes[0].drop_pct is None


def test_accepted_by_the_run_tag_naming_the_newer_delivery():
    tags = {"finops/accept_restatement": " other , run-2"}
    assert accepted_deliveries(tags) == frozenset({"other", "run-2"})
    decision = judge(
        totals(USD=(10, "100.00")),
        totals((NEW,), USD=(2, "20.00")),
        accepted=accepted_deliveries(tags),
    )
    assert not decision.held
    assert decision.message == (
        "azure/ea-1/daily-actual billing period 2025-01, 2025-01-01..2025-01-31: delivery "
        "run-1 → delivery run-2; month 10 rows, USD 100.00 → 2 rows, USD 20.00; accepted by the "
        "run tag finops/accept_restatement=run-2 although it would cut Σ billed USD by 80.0% "
        "(USD 100.00 → 20.00)."
    )


def test_a_tag_naming_another_delivery_does_not_accept():
    decision = judge(
        totals(USD=(10, "100.00")),
        totals((NEW,), USD=(2, "20.00")),
        accepted=accepted_deliveries({"finops/accept_restatement": "run-3"}),
    )
    assert decision.held


def test_accepted_by_star_and_by_the_bound_of_100():
    loaded, removed = totals(USD=(3, "8.55")), SliceTotals({}, (NEW,))
    by_star = judge(
        loaded, removed, accepted=accepted_deliveries({"finops/accept_restatement": "*"})
    )
    assert not by_star.held
    assert by_star.accepted_by == "the run tag finops/accept_restatement=*"
    by_rules = judge(loaded, removed, bound=100)
    assert not by_rules.held
    assert by_rules.accepted_by == (
        "the rules (deliveries.max_restatement_drop_pct = 100: guard off)"
    )


def test_a_slice_the_newer_deliveries_leave_empty_still_names_them():
    loaded = {("azure/ea-1/daily-actual", "2025-01"): totals(USD=(3, "8.55"))}
    (decision,) = compare_slices(
        loaded,
        {},
        DAYS,
        incoming=[Incoming("azure/ea-1/daily-actual", "2025-01", NEW)],
        max_drop_pct=50,
    )
    assert decision.held
    assert decision.incoming.delivery_ids == (NEW,)
    assert "from the newer delivery run-2 would take the month from 3 rows" in decision.message


def test_a_newer_delivery_without_one_day_of_a_month_is_a_small_drop():
    """Loading one day (the run's window) that the newer delivery no longer charges: the month
    keeps its other 30 days, so it loses 10.00 of 310.00 USD (3.2%), not everything."""
    key = ("aws/ds", "2025-01")
    day = (date(2025, 1, 5), date(2025, 1, 5))
    (decision,) = compare_slices(
        {key: totals(USD=(1, "10.00"))},
        {},
        day,
        untouched={key: totals(USD=(30, "300.00"))},
        incoming=[Incoming("aws/ds", "2025-01", NEW)],
        max_drop_pct=50,
    )
    assert not decision.held
    assert decision.changes[0].drop_pct.quantize(Decimal("0.01")) == Decimal("3.23")
    assert decision.message == (
        "aws/ds billing period 2025-01, 2025-01-05..2025-01-05: delivery run-1 → delivery "
        "run-2; month 31 rows, USD 310.00 → 30 rows, USD 300.00."
    )


@pytest.fixture
def con():
    con = duckdb.connect()
    configure_connection(con)
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.focus AS SELECT * FROM (VALUES "
        "(DATE '2025-01-01', 'aws/ds', '2025-01', 'USD', 60.25::DECIMAL(38, 12), 'd1', 'f'), "
        "(DATE '2025-01-02', 'aws/ds', '2025-01', 'USD', 39.75::DECIMAL(38, 12), 'd1', 'f'), "
        "(DATE '2025-01-02', 'aws/ds', '2025-01', 'EUR', 7.10::DECIMAL(38, 12), 'd1', 'f')) "
        "AS t(charge_date, x_Dataset, x_BillingPeriod, BillingCurrency, BilledCost, "
        "x_DeliveryId, x_SourceFile)"
    )
    yield con
    con.close()


NEW_ROWS = (
    "SELECT DATE '2025-01-01' AS charge_date, 'aws/ds' AS x_Dataset, '2025-01' AS x_BillingPeriod,"
    " 'USD' AS BillingCurrency, {usd}::DECIMAL(38, 12) AS BilledCost, 'd2' AS x_DeliveryId,"
    " 'g' AS x_SourceFile UNION ALL SELECT DATE '2025-01-02', 'aws/ds', '2025-01', 'EUR',"
    " 7.10, 'd2', 'g'"
)
JANUARY = [date(2025, 1, 1), date(2025, 1, 2)]


def test_slice_totals_from_the_lineage_columns(con):
    assert read_slice_totals(con, "raw.focus", JANUARY, FOCUS_MEASURE) == {
        ("aws/ds", "2025-01"): SliceTotals(
            {
                "EUR": CurrencyTotals(1, Decimal("7.10")),
                "USD": CurrencyTotals(2, Decimal("100.00")),
            },
            ("d1",),
        )
    }


def test_a_held_write_keeps_the_loaded_rows_and_an_accepted_one_replaces_them(con):
    guard = RestatementGuard(FOCUS_MEASURE, 50)
    assert guard.replace_partitions(con, "raw.focus", NEW_ROWS.format(usd="20.00"), JANUARY) is None
    assert con.execute(
        "SELECT BillingCurrency, count(*), sum(BilledCost), any_value(x_DeliveryId) "
        "FROM raw.focus GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("EUR", 1, Decimal("7.10"), "d1"), ("USD", 2, Decimal("100.00"), "d1")]
    (held,) = guard.held
    assert held.breaches == ("cut Σ billed USD by 80.0% (USD 100.00 → 20.00)",)
    assert guard.metadata_by_day()[date(2025, 1, 2)]["restatement_held"] == held.message

    accepting = RestatementGuard(FOCUS_MEASURE, 50, frozenset({"d2"}))
    write = accepting.replace_partitions(con, "raw.focus", NEW_ROWS.format(usd="20.00"), JANUARY)
    assert write is not None and write.rows_inserted == 2
    assert con.execute(
        "SELECT sum(BilledCost) FROM raw.focus WHERE BillingCurrency = 'USD'"
    ).fetchall() == [(Decimal("20.00"),)]
    assert "restatement_held" not in accepting.metadata_by_day()[date(2025, 1, 1)]


def test_loading_a_day_the_newer_delivery_leaves_empty_is_not_a_removal_of_its_month(con):
    """Only 2025-01-01 and 01-02 are loaded (USD 60.25 + 39.75, EUR 7.10); the newer delivery d2
    has nothing on 01-01 but charges on 01-02 and 01-03. Loading 01-01 alone: held when judged on
    the loaded days only (USD 100.00 → 39.75), replaced once the delivery's day not loaded yet
    counts (01-03: USD 30.00; 01-02 is loaded, so its loaded rows count, not d2's)."""
    delivered = (
        "SELECT * FROM (" + NEW_ROWS.format(usd="30.00") + ") "
        "UNION ALL SELECT DATE '2025-01-02', 'aws/ds', '2025-01', 'USD', 12.00, 'd2', 'g'"
    )
    delivered = delivered.replace(
        "DATE '2025-01-01' AS charge_date", "DATE '2025-01-03' AS charge_date"
    )
    nothing = "SELECT * FROM (" + NEW_ROWS.format(usd="0") + ") WHERE false"
    day = [date(2025, 1, 1)]
    blind = RestatementGuard(FOCUS_MEASURE, 50)
    assert blind.replace_partitions(con, "raw.focus", nothing, day) is None
    assert blind.held[0].breaches == ("cut Σ billed USD by 60.2% (USD 100.00 → 39.75)",)

    guard = RestatementGuard(FOCUS_MEASURE, 50)
    write = guard.replace_partitions(con, "raw.focus", nothing, day, delivered_sql=delivered)
    assert write is not None and write.rows_deleted == 1
    (decision,) = guard.decisions
    assert decision.message == (
        "aws/ds billing period 2025-01, 2025-01-01..2025-01-01: delivery d1 → delivery (none); "
        "month 3 rows, EUR 7.10, USD 100.00 → 3 rows, EUR 7.10, USD 69.75."
    )
    assert con.execute("SELECT count(*), sum(BilledCost) FROM raw.focus").fetchall() == [
        (2, Decimal("46.85"))
    ]
