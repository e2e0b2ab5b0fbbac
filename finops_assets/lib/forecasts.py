"""Month-end (quarter-, year-end) cost forecasts of many series at once, and two plain baselines.

What belongs here: the forecasts of series (one currency each) as of one day. What does not:
which series exist, reading the warehouse (``lib/forecast_scopes``), Dagster
(``defs/insights``). Pure numpy; no clock.

The model (``../shared/DOMAIN.md`` §9):

- **Actual** is what complete days of the month already cost, every charge included.
- **Usage** for the rest of the month (the days after the as-of day, and the month's days not yet
  complete) is projected by weekday profile × a damped trend: weekday factors and a robust line
  through the weekday-adjusted complete days of the last ``weeks`` weeks (the medians of the
  older and the newer half, as in ``lib/anomalies``), its slope damped by ``damping`` a day, so a
  trend fades instead of compounding to month-end.
- **Recurring charges** (``ChargeFrequency = 'Recurring'``: support plans, subscriptions, monthly
  credits) are projected on their day: the latest known month's amount on the same day, for the
  days still to come that have not had it yet.
- **One-time charges** (purchases, refunds) are actual only: never extrapolated.
- **Interval** (80% by default): the relative spread of the remaining usage, in log space. Its
  parametric part combines daily noise, the level's and the trend's uncertainty from the
  residuals (MAD × 1.4826); its empirical part is the model's own error when it forecast the
  rest of each of the last six months from the same day (and a week either side). The two are
  pooled (the parametric part counts as one month) and a Student t quantile for that many
  months sets the width: on the labelled generator (seeds 2026, 11, 3) the 80% interval holds
  75.4-75.7% of month-ends as of day 10 and 81.9-82.8% as of day 20, where the parametric part
  alone held 35-43% (spikes and level shifts in the days still to come are what it cannot see).
- Fewer than ``min_history`` complete days of usage: ``insufficient history``, no number.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np

MODEL_VERSION = "weekday-damped-v2"  # v2: backtest errors scale with the horizon
MAD_TO_SIGMA = 1.4826
OK, INSUFFICIENT = "ok", "insufficient history"


@dataclass(frozen=True)
class ForecastModel:
    weeks: int = 8
    min_history: int = 28
    damping: float = 0.97  # per day: a trend's effect over h days is Σ damping^j, j = 1..h
    coverage: float = 0.80
    # Months back at the same day of the month whose forecasts are checked against what happened
    # (the interval's empirical part); their spread is pooled with the parametric one, which
    # counts as ``prior_weight`` such months.
    backtest_months: int = 6
    prior_weight: float = 1.0


@dataclass(frozen=True)
class Forecasts:
    """Forecasts of many series (rows) as of one day for one period (month, quarter, year)."""

    as_of: date
    period: tuple[date, date]
    status: np.ndarray  # str per series
    actual: np.ndarray  # complete days of the period through as_of, every charge
    projected_usage: np.ndarray
    projected_recurring: np.ndarray
    forecast: np.ndarray  # NaN when insufficient history
    lower: np.ndarray
    upper: np.ndarray
    history_days: np.ndarray
    complete_through: list[date | None]
    sigma: np.ndarray  # relative σ of the remaining usage (log space)


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, first.replace(day=calendar.monthrange(day.year, day.month)[1])


def period_bounds(day: date, period: str) -> tuple[date, date]:
    """The calendar month, quarter or year containing ``day``."""
    if period == "month":
        return month_bounds(day)
    if period == "quarter":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        return first, month_bounds(date(first.year, first.month + 2, 1))[1]
    if period == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    raise ValueError(f"period {period!r}: use month, quarter or year")


def _nanmedian(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """Median of each row ignoring NaN (NaN for a row without values). np.nanmedian goes
    through masked arrays for short rows; sorting (NaN sorts last) and picking the middle of
    each row's valid values is about ten times faster here."""
    if axis != 1:
        raise ValueError("rows only")
    ordered = np.sort(x, axis=1)
    count = np.sum(~np.isnan(x), axis=1)
    low = np.maximum((count - 1) // 2, 0)
    high = np.maximum(count // 2, 0)
    rows = np.arange(len(x))
    if ordered.shape[1] == 0:
        return np.full(len(x), np.nan)
    middle = 0.5 * (
        ordered[rows, np.minimum(low, ordered.shape[1] - 1)]
        + ordered[rows, np.minimum(high, ordered.shape[1] - 1)]
    )
    return np.where(count > 0, middle, np.nan)


@dataclass(frozen=True)
class _Fit:
    level: np.ndarray
    slope: np.ndarray
    factors: np.ndarray  # S × 7
    sigma_day: np.ndarray
    history: np.ndarray  # complete days used
    anchor: int  # column index the level is read at
    last_complete: np.ndarray  # column index per series (-1: none)


def _fit(d0: date, usage: np.ndarray, complete: np.ndarray, end: int, model: ForecastModel) -> _Fit:
    """Weekday factors and a robust line through the complete days of the ``weeks`` weeks up to
    column ``end`` (inclusive), per series."""
    lo = max(0, end + 1 - 7 * model.weeks)
    window = usage[:, lo : end + 1].astype(float)
    # A series' history starts with its first cost: the zeros of the days before a new team or
    # service existed are no history of it.
    spent = usage[:, : end + 1] != 0
    began = np.where(spent.any(axis=1), np.argmax(spent, axis=1), end + 1)
    mask = complete[:, lo : end + 1] & (np.arange(lo, end + 1)[None, :] >= began[:, None])
    values = np.where(mask, window, np.nan)
    weekdays = np.array([(d0 + timedelta(days=lo + j)).weekday() for j in range(end + 1 - lo)])
    overall = _nanmedian(values)
    factors = np.ones((len(usage), 7))
    for w in range(7):
        cols = weekdays == w
        if not cols.any():
            continue
        picked = values[:, cols]
        count = np.sum(~np.isnan(picked), axis=1)
        med = _nanmedian(picked)
        ok = (count >= 2) & (overall > 0) & (med > 0)
        factors[ok, w] = med[ok] / overall[ok]
    adjusted = values / factors[:, weekdays]
    t = np.arange(lo, end + 1, dtype=float)[None, :].repeat(len(usage), axis=0)
    t = np.where(mask, t, np.nan)
    half = (end + 1 - lo) // 2
    older, newer = slice(0, half), slice(half, None)
    dt = _nanmedian(t[:, newer]) - _nanmedian(t[:, older])
    counts = np.sum(mask, axis=1)
    slope = (_nanmedian(adjusted[:, newer]) - _nanmedian(adjusted[:, older])) / np.where(
        dt > 0, dt, np.nan
    )
    slope = np.where(np.isfinite(slope) & (counts >= 14), slope, 0.0)
    anchor = end
    level = _nanmedian(adjusted - slope[:, None] * (t - anchor))
    level = np.where(np.isfinite(level), level, 0.0)
    residuals = adjusted - (level[:, None] + slope[:, None] * (t - anchor))
    center = _nanmedian(residuals)
    spread = MAD_TO_SIGMA * _nanmedian(np.abs(residuals - center[:, None]))
    sigma_day = np.where(level > 0, spread / np.maximum(level, 1e-9), 0.0)
    sigma_day = np.where(np.isfinite(sigma_day), sigma_day, 0.0)
    has = mask.any(axis=1)
    last_complete = np.where(has, lo + (mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)), -1)
    return _Fit(level, slope, factors, sigma_day, counts, anchor, last_complete)


def _project(d0: date, fit: _Fit, columns: np.ndarray, model: ForecastModel) -> np.ndarray:
    """Expected usage per series (rows) for the day columns ``columns``."""
    h = columns.astype(float) - fit.anchor
    damped = np.where(
        h > 0,
        model.damping * (1 - model.damping ** np.maximum(h, 0)) / (1 - model.damping)
        if model.damping < 1
        else h,
        h,
    )
    weekdays = np.array([(d0 + timedelta(days=int(c))).weekday() for c in columns])
    trend = fit.level[:, None] + fit.slope[:, None] * damped[None, :]
    return np.maximum(0.0, trend * fit.factors[:, weekdays])


def _parametric_sigma(fit: _Fit, projected: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Relative σ of Σ remaining usage: daily noise (independent), the level's uncertainty
    (shared by every remaining day) and the trend's (growing with the horizon)."""
    total = projected.sum(axis=1)
    with np.errstate(all="ignore"):
        weights = projected / np.where(total > 0, total, np.nan)[:, None]
        noise = fit.sigma_day * np.sqrt(np.nansum(weights**2, axis=1))
        n = np.maximum(fit.history, 1)
        level_sd = 1.25 * fit.sigma_day / np.sqrt(n)
        horizon = np.nansum(weights * (columns[None, :] - fit.anchor), axis=1)
        trend_sd = 1.25 * fit.sigma_day * np.sqrt(12.0 / n) * horizon / (7.0 * 8)
    return np.sqrt(noise**2 + level_sd**2 + trend_sd**2)


def forecast_period(
    d0: date,
    usage: np.ndarray,
    recurring: np.ndarray,
    one_time: np.ndarray,
    complete: np.ndarray,
    as_of: date,
    period: tuple[date, date] | None = None,
    model: ForecastModel = ForecastModel(),
    backtests: Backtests | None = None,
) -> Forecasts:
    """Forecasts of the period containing ``as_of`` (default: its month) for every row of the
    S × n day matrices (column 0 is ``d0``; columns after ``as_of`` are not read).

    ``backtests``: reuse the backtest errors of earlier calls on the same series (the matrices
    of every call must be prefixes of the same days, as when forecasting day after day)."""
    usage = np.atleast_2d(np.asarray(usage, dtype=float))
    recurring = np.atleast_2d(np.asarray(recurring, dtype=float))
    one_time = np.atleast_2d(np.asarray(one_time, dtype=float))
    complete = np.atleast_2d(np.asarray(complete, dtype=bool))
    first, last = period or month_bounds(as_of)
    end = (as_of - d0).days
    s_count = usage.shape[0]
    fit = _fit(d0, usage, complete, end, model)
    # The period's days: done (complete, through as_of) or still to forecast.
    cols = np.arange((first - d0).days, (last - d0).days + 1)
    seen = (cols >= 0) & (cols <= end)
    done = np.zeros((s_count, len(cols)), dtype=bool)
    done[:, seen] = complete[:, cols[seen]]
    total_day = usage + recurring + one_time
    actual = np.zeros(s_count)
    if seen.any():
        actual = np.where(done[:, seen], total_day[:, cols[seen]], 0.0).sum(axis=1)
    remaining = ~done
    projected = _project(d0, fit, cols, model) * remaining
    projected_usage = projected.sum(axis=1)
    projected_recurring = _recurring_to_come(d0, recurring, end, cols, remaining)
    sigma = _parametric_sigma(fit, projected, cols)
    # The newest complete day per series, from completeness alone: a series with no usage (only
    # purchases, say) still has complete days its actual counts.
    through = complete[:, : end + 1]
    last_complete = np.where(through.any(axis=1), end - np.argmax(through[:, ::-1], axis=1), -1)
    settling = end - int(np.median(last_complete)) if s_count else 0
    sigma, dof = _with_backtests(
        d0, usage, complete, as_of, max(settling, 0), sigma, model, backtests or Backtests()
    )
    forecast = actual + projected_usage + projected_recurring
    z = _t_quantile(0.5 + model.coverage / 2, dof)
    lower = forecast - projected_usage * (1 - np.exp(-z * sigma))
    upper = forecast + projected_usage * (np.exp(z * sigma) - 1)
    enough = fit.history >= model.min_history
    nan = np.full(s_count, np.nan)
    return Forecasts(
        as_of=as_of,
        period=(first, last),
        status=np.where(enough, OK, INSUFFICIENT),
        actual=actual,
        projected_usage=np.where(enough, projected_usage, 0.0),
        projected_recurring=np.where(enough, projected_recurring, 0.0),
        forecast=np.where(enough, forecast, nan),
        lower=np.where(enough, lower, nan),
        upper=np.where(enough, upper, nan),
        history_days=fit.history,
        complete_through=[d0 + timedelta(days=int(i)) if i >= 0 else None for i in last_complete],
        sigma=sigma,
    )


def _with_backtests(
    d0: date,
    usage: np.ndarray,
    complete: np.ndarray,
    as_of: date,
    lag: int,
    sigma: np.ndarray,
    model: ForecastModel,
    backtests: Backtests,
) -> tuple[np.ndarray, np.ndarray]:
    """Pool the parametric σ with the model's own errors at the same point of earlier months:
    as of the same day (and a week either side) of each of the last ``backtest_months`` months,
    with the same number of days still settling (``lag``), the forecast of the rest of that
    month's usage against what it came to. Errors are scaled to this forecast's horizon in
    proportion to its days (``HORIZON_EXPONENT``): what the model misses is mostly a level shift
    or a trend that starts in the days still to come, as likely on each of them, not daily noise
    (which would grow like the square root)."""
    errors = []
    horizon = max((month_bounds(as_of)[1] - as_of).days + lag, 1)
    for back in range(1, model.backtest_months + 1):
        month_first = _add_months(as_of.replace(day=1), -back)
        month_last = month_bounds(month_first)[1]
        for offset in BACKTEST_OFFSETS:
            day = min(max(as_of.day + offset, 1), month_last.day - 1)
            end = (month_first.replace(day=day) - d0).days - lag
            if end - 7 * model.weeks < 0 or (month_last - d0).days >= usage.shape[1]:
                continue
            e, days = backtests.error(d0, usage, complete, end, (month_last - d0).days, model)
            errors.append(e * (horizon / days) ** HORIZON_EXPONENT)
    if not errors:
        return sigma, np.full(len(sigma), np.inf)
    e = np.vstack(errors)
    # Three points a month are not independent: they count as one month each.
    count = np.sum(~np.isnan(e), axis=0) / len(BACKTEST_OFFSETS)
    mean_square = np.nansum(e**2, axis=0) / np.maximum(np.sum(~np.isnan(e), axis=0), 1)
    pooled = np.sqrt(
        (count * mean_square + model.prior_weight * sigma**2) / (count + model.prior_weight)
    )
    return pooled, np.where(count > 0, count + model.prior_weight, np.inf)


BACKTEST_OFFSETS = (-7, 0, 7)
# A backtest's error is scaled by (this forecast's days / the backtest's days) ** this: 1 held
# 75-83% in 80% intervals on days 10 and 20 of the labelled generator, 0.5 (noise-like) 74-80%.
HORIZON_EXPONENT = 1.0


class Backtests:
    """The model's log error per series when it forecast the usage of the days after column
    ``end`` through column ``last``, kept by ``(end, last)``: forecasting a year day by day asks
    for the same backtests again and again (the same day of last month for 6 as-of months, the
    same day a week on for 3 offsets), so each is computed once."""

    def __init__(self) -> None:
        self._errors: dict[tuple[int, int], tuple[np.ndarray, int]] = {}

    def error(
        self,
        d0: date,
        usage: np.ndarray,
        complete: np.ndarray,
        end: int,
        last: int,
        model: ForecastModel,
    ) -> tuple[np.ndarray, int]:
        key = (end, last)
        if key not in self._errors:
            fit = _fit(d0, usage, complete, end, model)
            cols = np.arange(end + 1, last + 1)
            projected = _project(d0, fit, cols, model)
            observed = complete[:, cols]
            happened = np.where(observed, usage[:, cols], 0.0).sum(axis=1)
            expected = np.where(observed, projected, 0.0).sum(axis=1)
            with np.errstate(all="ignore"):
                e = np.log(happened / expected)
            valid = (fit.history >= model.min_history) & observed.all(axis=1) & np.isfinite(e)
            self._errors[key] = (np.where(valid, e, np.nan), len(cols))
        return self._errors[key]


def _t_quantile(p: float, dof: np.ndarray) -> np.ndarray:
    """Student's t quantile (Cornish-Fisher expansion, within 1% for dof >= 3): σ estimated from
    a handful of months needs a wider interval than the normal's for the same coverage."""
    z = NormalDist().inv_cdf(p)
    with np.errstate(divide="ignore"):
        inv = np.where(np.isfinite(dof), 1.0 / dof, 0.0)
    return z + (z**3 + z) / 4 * inv + (5 * z**5 + 16 * z**3 + 3 * z) / 96 * inv**2


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _recurring_to_come(
    d0: date, recurring: np.ndarray, end: int, cols: np.ndarray, remaining: np.ndarray
) -> np.ndarray:
    """Each remaining day gets the recurring charges of the same day of the latest month known by
    ``end`` (a day-of-month that month lacks lands on nothing; a longer month's extra days land
    on the month's last day)."""
    total = np.zeros(recurring.shape[0])
    for j, c in enumerate(cols):
        day = d0 + timedelta(days=int(c))
        back = 1
        while (_add_months(day.replace(day=1), -back) - d0).days + day.day - 1 > end:
            back += 1
        prev_first = _add_months(day.replace(day=1), -back)
        prev_last = month_bounds(prev_first)[1]
        sources = [prev_first.replace(day=day.day)] if day.day <= prev_last.day else []
        if day == month_bounds(day)[1] and prev_last.day > day.day:
            sources += [prev_first.replace(day=x) for x in range(day.day + 1, prev_last.day + 1)]
        for s in sources:
            i = (s - d0).days
            if 0 <= i <= end:
                total += np.where(remaining[:, j], recurring[:, i], 0.0)
    return total


# --- the plain baselines the benchmark compares against ----------------------------------------
def run_rate_forecast(days: Sequence[date], total: Sequence[float], as_of: date) -> float:
    """Month-to-date cost (every day through as_of, as delivered) / days elapsed × month days."""
    first, last = month_bounds(as_of)
    d0 = days[0]
    i0, i1 = (first - d0).days, (as_of - d0).days
    mtd = float(np.sum(np.asarray(total)[max(0, i0) : i1 + 1]))
    elapsed = (as_of - first).days + 1
    return mtd / elapsed * last.day


def ols_iqr_forecast(
    days: Sequence[date], total: Sequence[float], as_of: date, window: int = 30
) -> float:
    """Koku's forecast: an ordinary least-squares line through the last ``window`` days of daily
    cost after removing points outside 1.5 × IQR, extended to month-end, added to the
    month-to-date cost."""
    first, last = month_bounds(as_of)
    d0 = days[0]
    i1 = (as_of - d0).days
    x = np.arange(max(0, i1 - window + 1), i1 + 1, dtype=float)
    y = np.asarray(total, dtype=float)[x.astype(int)]
    q1, q3 = np.percentile(y, [25, 75])
    keep = (y >= q1 - 1.5 * (q3 - q1)) & (y <= q3 + 1.5 * (q3 - q1))
    slope, intercept = np.polyfit(x[keep], y[keep], 1) if keep.sum() >= 2 else (0.0, y.mean())
    future = np.arange(i1 + 1, i1 + 1 + (last - as_of).days, dtype=float)
    mtd = float(np.sum(np.asarray(total)[max(0, (first - d0).days) : i1 + 1]))
    return mtd + float(np.sum(intercept + slope * future))


def expected_usage(
    d0: date, usage: np.ndarray, complete: np.ndarray, columns: np.ndarray, model: ForecastModel
) -> np.ndarray:
    """What the model expects each series to use on the day columns ``columns``, fitted on the
    complete days of ``usage`` (series × days from ``d0``)."""
    usage = np.atleast_2d(np.asarray(usage, dtype=float))
    complete = np.atleast_2d(np.asarray(complete, dtype=bool))
    fit = _fit(d0, usage, complete, usage.shape[1] - 1, model)
    return _project(d0, fit, np.asarray(columns), model)
