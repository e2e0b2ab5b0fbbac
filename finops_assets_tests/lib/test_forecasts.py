"""Month-end forecasts (lib/forecasts.py): weekday profile, recurring on their day, one-time
never extrapolated, incomplete days projected, insufficient history, intervals, the baselines."""

from datetime import date, timedelta

import numpy as np
import pytest

from finops_assets.lib import forecasts as fc

D0 = date(2026, 1, 1)


def calendar(days: int) -> list[date]:
    return [D0 + timedelta(days=i) for i in range(days)]


def weekday_usage(days: int, weekday=1000.0, weekend=400.0, noise=0.0, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([weekend if d.weekday() >= 5 else weekday for d in calendar(days)])
    return base * np.exp(rng.normal(0, noise, days)) if noise else base


def test_a_weekday_shaped_month_is_forecast_to_the_cent_and_run_rate_is_not():
    n = (date(2026, 4, 10) - D0).days + 1
    usage = weekday_usage(n)
    zeros = np.zeros(n)
    f = fc.forecast_period(D0, usage, zeros, zeros, np.ones(n, bool), date(2026, 4, 10))
    april = [date(2026, 4, d) for d in range(1, 31)]
    truth = sum(400.0 if d.weekday() >= 5 else 1000.0 for d in april)
    assert f.status[0] == fc.OK and f.period == (date(2026, 4, 1), date(2026, 4, 30))
    assert f.forecast[0] == pytest.approx(truth, abs=0.01)
    assert f.lower[0] == pytest.approx(truth) and f.upper[0] == pytest.approx(truth)
    naive = fc.run_rate_forecast(calendar(n), usage, date(2026, 4, 10))
    assert abs(naive - truth) > 100  # 10 days with 2 weekends do not scale to 30


def test_incomplete_days_are_projected_not_taken_as_delivered():
    n = (date(2026, 4, 10) - D0).days + 1
    usage = weekday_usage(n)
    complete = np.ones(n, bool)
    usage[-2:] *= 0.3  # the newest two days are still filling in
    complete[-2:] = False
    zeros = np.zeros(n)
    f = fc.forecast_period(D0, usage, zeros, zeros, complete, date(2026, 4, 10))
    truth = sum(
        400.0 if d.weekday() >= 5 else 1000.0 for d in (date(2026, 4, k) for k in range(1, 31))
    )
    assert f.forecast[0] == pytest.approx(truth, abs=0.01)
    assert f.complete_through == [date(2026, 4, 8)]
    assert f.actual[0] == pytest.approx(sum(usage[(date(2026, 4, 1) - D0).days : n - 2]))


def test_recurring_charges_land_on_their_day_and_purchases_are_not_extrapolated():
    n = (date(2026, 3, 15) - D0).days + 1
    usage = np.full(n, 500.0)
    recurring = np.zeros(n)
    one_time = np.zeros(n)
    for month in (1, 2, 3):
        recurring[(date(2026, month, 1) - D0).days] = 2000.0  # support plan on the 1st
    for month in (1, 2):
        recurring[(date(2026, month, 20) - D0).days] = -300.0  # a credit on the 20th
    one_time[(date(2026, 3, 2) - D0).days] = 50_000.0  # a commitment bought on the 2nd
    f = fc.forecast_period(D0, usage, recurring, one_time, np.ones(n, bool), date(2026, 3, 15))
    # March: 31 days of usage, the plan (already billed), the purchase once, the credit to come.
    assert f.forecast[0] == pytest.approx(31 * 500 + 2000 + 50_000 - 300)
    assert f.projected_recurring[0] == pytest.approx(-300)
    # A quarter: April's and May's... the plan and the credit for each month still to come.
    q = fc.forecast_period(
        D0,
        usage,
        recurring,
        one_time,
        np.ones(n, bool),
        date(2026, 3, 15),
        period=fc.period_bounds(date(2026, 3, 15), "quarter"),
    )
    assert q.period == (date(2026, 1, 1), date(2026, 3, 31))
    assert q.forecast[0] == pytest.approx(90 * 500 + 3 * 2000 + 50_000 - 3 * 300)


def test_under_28_complete_days_there_is_no_number():
    n = 20
    usage = np.full(n, 100.0)
    f = fc.forecast_period(
        D0, usage, np.zeros(n), np.zeros(n), np.ones(n, bool), D0 + timedelta(19)
    )
    assert f.status[0] == fc.INSUFFICIENT and np.isnan(f.forecast[0])
    assert f.actual[0] == pytest.approx(2000)  # what is known is still reported


def test_noisy_series_get_an_interval_that_covers_about_80_percent():
    rng = np.random.default_rng(3)
    hits, total = 0, 0
    for k in range(60):
        n = 310  # through the end of October
        usage = weekday_usage(n, noise=0.06, seed=k) * np.exp(np.arange(n) * rng.uniform(0, 0.001))
        for month in (8, 9, 10):
            as_of = date(2026, month, 10)
            end = (as_of - D0).days + 1
            last = fc.month_bounds(as_of)[1]
            truth = usage[(as_of.replace(day=1) - D0).days : (last - D0).days + 1].sum()
            zeros = np.zeros(end)
            f = fc.forecast_period(D0, usage[:end], zeros, zeros, np.ones(end, bool), as_of)
            hits += int(f.lower[0] <= truth <= f.upper[0])
            total += 1
    assert 0.65 <= hits / total <= 0.95


def test_many_series_at_once_match_one_at_a_time():
    n = 120
    rows = np.vstack([weekday_usage(n, noise=0.05, seed=s) * (s + 1) for s in range(4)])
    zeros = np.zeros_like(rows)
    together = fc.forecast_period(
        D0, rows, zeros, zeros, np.ones_like(rows, bool), D0 + timedelta(n - 1)
    )
    for s in range(4):
        alone = fc.forecast_period(
            D0, rows[s], zeros[s], zeros[s], np.ones(n, bool), D0 + timedelta(n - 1)
        )
        assert together.forecast[s] == pytest.approx(alone.forecast[0])
        assert together.upper[s] == pytest.approx(alone.upper[0])


def test_ols_iqr_baseline_drops_the_outlier_before_fitting():
    n = 60
    total = np.full(n, 100.0)
    total[-5] = 5000  # a purchase
    f = fc.ols_iqr_forecast(calendar(n), total, D0 + timedelta(n - 1))
    as_of = D0 + timedelta(n - 1)
    first, last = fc.month_bounds(as_of)
    mtd = total[(first - D0).days :].sum()
    assert f == pytest.approx(mtd + 100 * (last - as_of).days)


def test_backtests_kept_across_days_give_the_same_forecasts_as_computed_afresh():
    """forecast_rows forecasts day after day with one Backtests per series set: what it keeps
    must be exactly what each day would compute on its own (months of noisy, growing usage)."""
    n = (date(2026, 9, 30) - D0).days + 1
    rng = np.random.default_rng(5)
    usage = np.vstack(
        [weekday_usage(n, noise=0.2, seed=s) * np.linspace(1, 1.5, n) for s in range(4)]
    )
    complete = rng.random((4, n)) > 0.05
    zeros = np.zeros((4, n))
    kept = fc.Backtests()
    for as_of in (date(2026, 8, d) for d in range(1, 32)):
        end = (as_of - D0).days + 1
        args = (D0, usage[:, :end], zeros[:, :end], zeros[:, :end], complete[:, :end], as_of)
        shared = fc.forecast_period(*args, backtests=kept)
        fresh = fc.forecast_period(*args)
        assert np.array_equal(shared.lower, fresh.lower, equal_nan=True)
        assert np.array_equal(shared.upper, fresh.upper, equal_nan=True)
        assert np.all(np.isfinite(fresh.upper))
        assert np.any(fresh.upper > fresh.forecast)  # the backtests widen something
    assert len(kept._errors) < 31 * 18 / 3  # most were reused


def test_a_series_of_purchases_only_says_how_far_its_actual_is_complete():
    """No usage at all (a team that only buys commitments): the actual counts the complete days,
    and complete_through says which (it came from the usage fit and was empty)."""
    n = (date(2026, 3, 10) - D0).days + 1
    one_time = np.zeros(n)
    one_time[(date(2026, 3, 2) - D0).days] = 5000.0
    complete = np.ones(n, bool)
    complete[-1] = False
    zeros = np.zeros(n)
    f = fc.forecast_period(D0, zeros, zeros, one_time, complete, date(2026, 3, 10))
    assert f.actual[0] == 5000.0 and f.status[0] == fc.INSUFFICIENT
    assert f.complete_through == [date(2026, 3, 9)]
