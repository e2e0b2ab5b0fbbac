"""Budgets (lib/budgets.py): thresholds fire once and re-arm only 5 points below, a new period
re-arms them, burn rate pages at 3x, scope filters follow the dimension normalization."""

from datetime import date, timedelta

import numpy as np

from finops_assets.lib import budgets as bd
from finops_assets.lib.rules import Budget

D0 = date(2026, 1, 1)


def budget(**kw) -> Budget:
    return Budget(
        name="b", scope={"team": "Payments "}, amount=kw.pop("amount", 31_000), currency="USD", **kw
    )


def run(usage, first, last, b=None, previous=None):
    n = len(usage)
    zeros = np.zeros((1, n))
    return bd.evaluate(
        [b or budget()],
        D0,
        usage[None, :],
        zeros,
        zeros,
        np.ones((1, n), bool),
        np.ones((1, n), bool),
        first,
        last,
        [previous],
        rearm_points=5,
    )[0]


def test_step_fires_once_and_rearms_only_five_points_below():
    fired, crossed = bd._step([], (80, 100), 101, 5, "forecast")
    assert fired == [80, 100] and [c.threshold for c in crossed] == [80, 100]
    fired, crossed = bd._step(fired, (80, 100), 97, 5, "forecast")  # dips, stays armed-off
    assert fired == [80, 100] and crossed == []
    fired, crossed = bd._step(fired, (80, 100), 101, 5, "forecast")  # re-crosses: quiet
    assert crossed == []
    fired, crossed = bd._step(fired, (80, 100), 94, 5, "forecast")  # 6 below: re-armed
    assert fired == [80]
    fired, crossed = bd._step(fired, (80, 100), 100.5, 5, "forecast")
    assert [c.threshold for c in crossed] == [100]


def test_a_month_at_1000_a_day_crosses_each_actual_threshold_once_then_a_new_month_rearms():
    n = (date(2026, 5, 31) - D0).days + 1
    usage = np.full(n, 1000.0)
    days = run(usage, date(2026, 3, 1), date(2026, 4, 30))
    crossings = [(d.as_of, c.kind, c.threshold) for d in days for c in d.crossings]
    march = [c for c in crossings if c[0].month == 3]
    # 31,000 USD a month at 1,000 a day: forecast 100% from day 1, actual 50% on the 16th...
    assert (date(2026, 3, 1), "forecast", 100.0) in march
    assert (date(2026, 3, 16), "actual", 50.0) in march
    assert (date(2026, 3, 25), "actual", 80.0) in march
    assert (date(2026, 3, 31), "actual", 100.0) in march
    assert len([c for c in march if c[1] == "forecast"]) == 2  # 80 and 100, once each
    april = [c for c in crossings if c[0].month == 4]
    assert (date(2026, 4, 1), "forecast", 80.0) in april  # April: armed again (30,000 = 97%)
    assert not [c for c in april if c[1] == "forecast" and c[2] == 100.0]
    assert days[-1].status == bd.ON_TRACK and days[-1].forecast == 30_000


def test_fired_thresholds_carry_over_from_the_stored_day_before():
    n = (date(2026, 5, 31) - D0).days + 1
    usage = np.full(n, 1000.0)
    first = run(usage, date(2026, 3, 1), date(2026, 3, 10))
    rest = run(usage, date(2026, 3, 11), date(2026, 3, 31), previous=first[-1])
    assert not [c for d in rest for c in d.crossings if c.kind == "forecast"]
    assert [c.threshold for d in rest for c in d.crossings] == [50.0, 80.0, 100.0]


def test_a_runaway_day_pages_and_the_projection_says_when_100_is_reached():
    n = (date(2026, 3, 10) - D0).days + 1
    usage = np.full(n, 1000.0)
    usage[-1] = 3500.0
    (day,) = run(usage, date(2026, 3, 10), date(2026, 3, 10), b=budget(amount=40_000))
    assert day.burn_rate == 3.5 and day.newest_day == date(2026, 3, 10)
    assert [(c.kind, c.threshold) for c in day.crossings if c.kind == "burn rate"] == [
        ("burn rate", 3.0)
    ]
    # 12,500 spent; 1,000 a day more reaches 40,000 on day 10 + 28 = April... not in March.
    assert day.crosses_on is None
    (soon,) = run(usage, date(2026, 3, 10), date(2026, 3, 10), b=budget(amount=20_000))
    assert soon.crosses_on == date(2026, 3, 10) + timedelta(days=8)


def test_scope_filter_uses_the_dimension_spelling_and_tags_as_delivered():
    sql = bd.scope_filter_sql(
        Budget(
            name="b", scope={"team": " Payments", "tag": {"env": "Prod"}}, amount=1, currency="usd"
        ),
        {"team"},
    )
    assert "CAST(\"team\" AS VARCHAR) = 'payments'" in sql
    assert "json_extract_string(Tags, '$.\"env\"') = 'Prod'" in sql


def test_budget_rows_read_each_scope_once_and_never_add_other_currencies():
    """Budgets by column (spelled unlike the warehouse), by tag and on all cost, read from a
    DuckDB table holding USD and EUR: each budget's actual is exactly the SQL sum of its scope in
    its currency, EUR is shown beside it and never added."""
    import duckdb
    import yaml

    from finops_assets.lib.rules import default_rules_path, parse_rules

    rules = yaml.safe_load(default_rules_path().read_text())
    rules["budgets"] = [
        {"name": "payments", "scope": {"team": " Payments"}, "amount": 5000, "currency": "USD"},
        {"name": "prod", "scope": {"tag": {"env": "prod"}}, "amount": 9000, "currency": "USD"},
        {"name": "all-eur", "amount": 100, "currency": "EUR", "basis": "BilledCost"},
    ]
    loaded = parse_rules(yaml.safe_dump(rules))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE costs AS SELECT DATE '2026-01-01' + CAST(d AS INTEGER) AS charge_date, "
        "CASE WHEN t = 2 THEN 'EUR' ELSE 'USD' END AS BillingCurrency, "
        "CAST(100 + d + 10 * t AS DECIMAL(18, 6)) AS EffectiveCost, "
        "CAST(90 + d + 10 * t AS DECIMAL(18, 6)) AS BilledCost, "
        "'Usage-Based' AS ChargeFrequency, CAST(NULL AS VARCHAR) AS x_AmortizationClass, "
        "'focus' AS x_Source, CASE WHEN t = 1 THEN 'search' ELSE 'payments' END AS team, "
        "CASE WHEN t = 0 THEN '{\"env\": \"prod\"}' ELSE '{}' END AS Tags "
        "FROM range(70) r(d), range(3) s(t)"
    )
    first = last = date(2026, 3, 10)
    table, _ = bd.budget_rows(con, loaded, "costs", "nowhere.budget_status", first, last)
    got = {r["budget"]: r for r in table.to_pylist()}
    assert set(got) == {"payments", "prod", "all-eur"}

    def total(where: str, column: str = "EffectiveCost") -> float:
        return con.execute(
            f"SELECT CAST(sum({column}) AS DOUBLE) FROM costs WHERE charge_date BETWEEN "
            f"DATE '2026-03-01' AND DATE '2026-03-10' AND {where}"
        ).fetchall()[0][0]

    assert got["payments"]["actual"] == round(
        total("team = 'payments' AND BillingCurrency = 'USD'"), 2
    )
    eur_payments = total("team = 'payments' AND BillingCurrency = 'EUR'")
    assert got["payments"]["other_currencies"] == f"EUR {eur_payments:,.2f} not counted"
    assert got["prod"]["actual"] == round(total("Tags LIKE '%prod%'"), 2)
    assert got["prod"]["other_currencies"] is None
    assert got["all-eur"]["actual"] == round(total("BillingCurrency = 'EUR'", "BilledCost"), 2)
    usd = total("BillingCurrency = 'USD'", "BilledCost")
    assert got["all-eur"]["other_currencies"] == f"USD {usd:,.2f} not counted"
    assert got["all-eur"]["status"] == bd.OVER and got["payments"]["forecast"] is not None
