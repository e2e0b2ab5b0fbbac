"""insights/forecasts through Dagster: per scope and currency, actual on complete days, the
projection, the interval; a purchase is not extrapolated; a new scope says insufficient history."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pytest

from finops_assets_tests.insights import synthetic
from finops_assets_tests.insights.test_anomalies_asset import materialize

START = date(2026, 1, 1)
MAY_31 = date(2026, 5, 31)
AS_OF = date(2026, 5, 20)


@pytest.fixture()
def warehouse(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    days = (MAY_31 - START).days + 1
    rows = synthetic.frame(np.random.default_rng(11), START, days)
    purchase = (
        date(2026, 5, 4),
        "USD",
        30_000.0,
        "Purchase",
        "aws_cur",
        "payments",
        "Savings Plans",
        "sp-1",
    )
    # A team that started spending this month: too little history for a number.
    new_team = [
        (date(2026, 5, d), "USD", 200.0, "Usage", "aws_cur", "ml", "Amazon Bedrock", "b-1")
        for d in range(8, 32)
    ]
    everything = [*rows, purchase, *new_team]
    with duckdb.connect(path) as con:
        # The warehouse holds the days through the as-of day; the rest is what May came to.
        synthetic.create_table(
            con, "core.allocated_costs", [r for r in everything if r[0] <= AS_OF]
        )
        synthetic.create_table(con, "main.truth", everything)
    return path


def test_month_end_forecast_per_team_with_an_interval(warehouse, tmp_path):
    with dg.instance_for_test() as instance:
        result = materialize(
            warehouse, tmp_path, instance, AS_OF, AS_OF, assets=("insights/forecasts",)
        )
        assert result.success
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = {
            (r[0], r[1], r[2]): r[3:]
            for r in con.execute(
                "SELECT scope, series, BillingCurrency, status, actual_to_date, forecast, "
                "lower_80, upper_80, complete_through, completeness FROM insights.forecasts "
                "WHERE charge_date = ? AND basis = 'EffectiveCost'",
                [AS_OF],
            ).fetchall()
        }
        truth = dict(
            con.execute(
                "SELECT team || '/' || BillingCurrency, CAST(sum(EffectiveCost) AS DOUBLE) "
                "FROM main.truth WHERE charge_date >= DATE '2026-05-01' GROUP BY 1"
            ).fetchall()
        )
        known = dict(
            con.execute(
                "SELECT team, CAST(sum(EffectiveCost) AS DOUBLE) FROM core.allocated_costs "
                "WHERE charge_date BETWEEN DATE '2026-05-01' AND DATE '2026-05-19' "
                "AND BillingCurrency = 'USD' GROUP BY 1"
            ).fetchall()
        )
    status, actual, forecast, lower, upper, through, completeness = rows[
        ("team", "team=payments", "USD")
    ]
    assert status == "ok" and through == AS_OF - timedelta(days=1)  # AWS settles a day
    assert actual == pytest.approx(known["payments"], abs=0.01)  # the purchase included, once
    assert lower <= truth["payments/USD"] <= upper
    assert forecast == pytest.approx(truth["payments/USD"], rel=0.02)
    assert "aws_cur complete through 2026-05-19" in completeness
    # Currencies stay apart: the EUR total is its own row.
    assert rows[("total", "total", "EUR")][2] == pytest.approx(truth["search/EUR"], rel=0.03)
    assert rows[("team", "team=ml", "USD")][0] == "insufficient history"
    assert rows[("team", "team=ml", "USD")][2] is None


def test_actual_conserved_passes_on_the_run_and_names_a_cent_that_moved(warehouse, tmp_path):
    from finops_assets.lib.forecast_scopes import actual_conserved_sql

    with dg.instance_for_test() as instance:
        result = materialize(
            warehouse, tmp_path, instance, AS_OF, AS_OF, assets=("insights/forecasts",)
        )
        assert result.success
        evaluations = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
        assert evaluations["actual_conserved"].passed
    with duckdb.connect(warehouse) as con:
        for by, scope in ((["team"], "team"), ([], "total")):
            sql = actual_conserved_sql(
                by, scope, "insights.forecasts", "core.allocated_costs", AS_OF, AS_OF
            )
            assert con.execute(sql).fetchall() == []
        con.execute(
            "UPDATE insights.forecasts SET actual_to_date = actual_to_date + 0.01 "
            "WHERE scope = 'team' AND series = 'team=payments' AND BillingCurrency = 'USD' "
            "AND basis = 'BilledCost'"
        )
        sql = actual_conserved_sql(
            ["team"], "team", "insights.forecasts", "core.allocated_costs", AS_OF, AS_OF
        )
        [(as_of, series, currency, basis, actual, upstream)] = con.execute(sql).fetchall()
    assert (as_of, series, currency, basis) == (AS_OF, "team=payments", "USD", "BilledCost")
    assert actual - upstream == pytest.approx(0.01, abs=0.005)
