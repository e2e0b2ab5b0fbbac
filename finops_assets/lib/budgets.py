"""Budgets: actual and forecast against an amount, thresholds with hysteresis, burn rate.

What belongs here: a budget's figures as of each day and the threshold crossings they make. What
does not: Dagster, the clock, alert delivery (``defs/insights``, ``defs/alerts``).

- A budget covers a scope (column values, a tag), a period (month, quarter, year), an amount in
  one currency and a basis (EffectiveCost or BilledCost). Cost in other currencies is never
  converted or added: it is reported beside the budget as not counted.
- **Actual** is every delivered day of the period through the as-of day; **forecast** is
  ``lib/forecasts`` for the period (complete days + projection, with its 80% interval).
- **Thresholds** (% of the amount) on actual (default 50/80/100) and on forecast (80/100). Each
  fires once when crossed and stays quiet until the figure falls ``rearm_points`` below it
  (AWS re-alerts when a forecast dips and re-crosses; this does not). A new period re-arms all.
- **Burn rate**: the newest delivered day's cost against the forecast model's expected cost for
  that day; at ``multiple`` × or more the budget pages (something is running away).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from finops_assets.lib import forecasts as fc
from finops_assets.lib import warehouse as wh
from finops_assets.lib.completeness import Completeness
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.rules import Budget
from finops_assets.lib.warehouse import quote_identifier as q

BURN_RATE_MULTIPLE = 3.0
ON_TRACK, AT_RISK, OVER, INSUFFICIENT = "on track", "at risk", "over budget", fc.INSUFFICIENT


def scope_filter_sql(budget: Budget, dimensions: set[str]) -> str:
    """The WHERE condition of a budget's scope (the currency is filtered separately)."""
    parts = []
    for column, value in sorted(budget.scope.items()):
        if column == "tag":
            for key, tag_value in sorted(value.items()):
                parts.append(
                    f"json_extract_string(Tags, {sql_literal('$.' + json.dumps(str(key)))}) = "
                    f"{sql_literal(str(tag_value))}"
                )
        else:
            text = _scope_text(column, value, dimensions)
            parts.append(f"CAST({q(column)} AS VARCHAR) = {sql_literal(text)}")
    return " AND ".join(parts) or "true"


def _scope_text(column: str, value, dimensions: set[str]) -> str:
    """A scope value as the warehouse holds it (dimension values are trimmed and case-folded)."""
    text = str(value)
    return text.strip().casefold() if column in dimensions else text


def _json_list(values: list[float]) -> str:
    """json.dumps of a list of finite floats, without its per-call overhead (a year of 1,000
    budgets writes 730,000 of them)."""
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def _by_scope_columns(budgets: list[Budget]) -> dict[tuple[str, ...], list[int]]:
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, budget in enumerate(budgets):
        groups.setdefault(tuple(sorted(budget.scope)), []).append(i)
    return groups


def scope_label(budget: Budget) -> str:
    items = []
    for column, value in sorted(budget.scope.items()):
        if column == "tag":
            items += [f"tag {k}={v}" for k, v in sorted(value.items())]
        else:
            items.append(f"{column}={value}")
    return " · ".join(items) or "all cost"


@dataclass(frozen=True)
class Crossing:
    kind: str  # actual | forecast | burn rate
    threshold: float  # % (burn rate: the multiple)
    value: float  # % reached (burn rate: the multiple reached)


@dataclass
class BudgetDay:
    as_of: date
    period: tuple[date, date]
    actual: float
    forecast: float | None
    lower: float | None
    upper: float | None
    status: str
    crossings: list[Crossing] = field(default_factory=list)
    fired_actual: list[float] = field(default_factory=list)  # thresholds fired, not re-armed
    fired_forecast: list[float] = field(default_factory=list)
    burn_rate: float | None = None  # newest day's cost / its expected cost
    newest_day: date | None = None
    crosses_on: date | None = None  # the day the projection reaches 100%


def _step(
    fired: list[float], thresholds, value: float | None, rearm: float, kind: str
) -> tuple[list[float], list[Crossing]]:
    """Fire each armed threshold the value reached; re-arm those it fell ``rearm`` below."""
    if value is None:
        return fired, []
    still = [t for t in fired if value >= t - rearm]
    crossings = [
        Crossing(kind, float(t), value) for t in sorted(thresholds) if value >= t and t not in still
    ]
    return sorted(still + [c.threshold for c in crossings]), crossings


def evaluate(
    budgets: list[Budget],
    d0: date,
    usage: np.ndarray,
    recurring: np.ndarray,
    one_time: np.ndarray,
    complete: np.ndarray,
    delivered: np.ndarray,
    first: date,
    last: date,
    previous: list[BudgetDay | None],
    rearm_points: float,
    model: fc.ForecastModel | None = None,
    burn_multiple: float = BURN_RATE_MULTIPLE,
) -> list[list[BudgetDay]]:
    """Each budget (row ``i`` of the budgets × days matrices from ``d0``) as of each day of
    ``[first, last]``, in order. ``previous[i]`` is budget i's stored day before ``first`` (its
    fired thresholds carry over within a period); ``delivered`` marks days with rows at all.
    One forecast call per day and kind of period covers every budget of that kind."""
    model = model or fc.ForecastModel()
    total = usage + recurring + one_time
    results: list[list[BudgetDay]] = [[] for _ in budgets]
    state = list(previous)
    kinds = sorted({b.period for b in budgets})
    backtests = {kind: fc.Backtests() for kind in kinds}
    burn = _BurnRates(d0, usage, complete, model)
    for k in range((last - first).days + 1):
        as_of = first + timedelta(days=k)
        end = (as_of - d0).days
        # The newest delivered day through as_of per budget (-1: none yet).
        seen = delivered[:, : end + 1]
        newest = np.where(seen.any(axis=1), end - np.argmax(seen[:, ::-1], axis=1), -1)
        for kind in kinds:
            rows = np.array([i for i, b in enumerate(budgets) if b.period == kind])
            period = fc.period_bounds(as_of, kind)
            f = fc.forecast_period(
                d0,
                usage[rows, : end + 1],
                recurring[rows, : end + 1],
                one_time[rows, : end + 1],
                complete[rows, : end + 1],
                as_of,
                period=period,
                model=model,
                backtests=backtests[kind],
            )
            lo = max(0, (period[0] - d0).days)
            actuals = total[rows, lo : end + 1].sum(axis=1)
            columns = np.arange(end + 1, (period[1] - d0).days + 1)
            daily = (
                fc.expected_usage(
                    d0, usage[rows, : end + 1], complete[rows, : end + 1], columns, model
                )
                if len(columns)
                else np.zeros((len(rows), 0))
            )
            # The first remaining day the projection reaches the amount (-1: not this period).
            amounts = np.array([float(budgets[i].amount) for i in rows])
            reach = (actuals[:, None] + np.cumsum(daily, axis=1)) >= amounts[:, None]
            first_reach = (
                np.where(reach.any(axis=1), np.argmax(reach, axis=1), -1)
                if reach.shape[1]
                else np.full(len(rows), -1)
            )
            for j, i in enumerate(rows):
                day = _day(
                    budgets[i], as_of, period, float(actuals[j]), f, j, state[i], rearm_points
                )
                if f.status[j] == fc.OK:
                    if day.actual < amounts[j] and first_reach[j] >= 0:
                        day.crosses_on = d0 + timedelta(days=int(columns[first_reach[j]]))
                    rate = burn.rate(i, int(newest[i]))
                    if rate is not None:
                        day.newest_day = d0 + timedelta(days=int(newest[i]))
                        day.burn_rate = rate
                        if rate >= burn_multiple:
                            day.crossings.append(Crossing("burn rate", burn_multiple, rate))
                results[i].append(day)
                state[i] = day
    return results


def _day(budget, as_of, period, actual, f, j, state, rearm_points) -> BudgetDay:
    amount = float(budget.amount)
    ok = f.status[j] == fc.OK
    forecast = float(f.forecast[j]) if ok else None
    carried = state is not None and state.period == period
    fired_actual, crossed = _step(
        state.fired_actual if carried else [],
        budget.thresholds.actual,
        100 * actual / amount,
        rearm_points,
        "actual",
    )
    fired_forecast, crossed_forecast = _step(
        state.fired_forecast if carried else [],
        budget.thresholds.forecast,
        100 * forecast / amount if forecast is not None else None,
        rearm_points,
        "forecast",
    )
    if actual >= amount:
        status = OVER
    elif forecast is None:
        status = INSUFFICIENT
    elif forecast >= amount:
        status = AT_RISK
    else:
        status = ON_TRACK
    return BudgetDay(
        as_of=as_of,
        period=period,
        actual=actual,
        forecast=forecast,
        lower=float(f.lower[j]) if ok else None,
        upper=float(f.upper[j]) if ok else None,
        status=status,
        crossings=crossed + crossed_forecast,
        fired_actual=fired_actual,
        fired_forecast=fired_forecast,
    )


class _BurnRates:
    """The newest delivered day's cost against what the model expected for it from the complete
    days before it. The expectation of a day depends only on the days before it: kept per day
    for every budget at once, so a year of as-of days costs one fit per delivered day."""

    def __init__(self, d0: date, usage: np.ndarray, complete: np.ndarray, model) -> None:
        self.d0, self.usage, self.complete, self.model = d0, usage, complete, model
        self._expected: dict[int, np.ndarray] = {}

    def rate(self, i: int, newest: int) -> float | None:
        if newest < 0:
            return None
        if newest not in self._expected:
            before = self.complete[:, :newest]
            expected = np.full(len(self.usage), np.nan)
            enough = before.sum(axis=1) >= self.model.min_history
            if enough.any():
                expected[enough] = fc.expected_usage(
                    self.d0,
                    self.usage[enough, :newest],
                    before[enough],
                    np.array([newest]),
                    self.model,
                )[:, 0]
            self._expected[newest] = expected
        expected = self._expected[newest][i]
        if not expected > 0:
            return None
        return float(self.usage[i, newest] / expected)


# --- every budget of the rules, read from the warehouse -------------------------------------
BUDGET_SCHEMA = pa.schema(
    [
        ("charge_date", pa.date32()),  # as of
        ("budget", pa.string()),
        ("scope", pa.string()),
        ("owner", pa.string()),
        ("period", pa.string()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("BillingCurrency", pa.string()),
        ("basis", pa.string()),
        ("amount", pa.float64()),
        ("actual", pa.float64()),
        ("actual_pct", pa.float64()),
        ("forecast", pa.float64()),
        ("forecast_lower_80", pa.float64()),
        ("forecast_upper_80", pa.float64()),
        ("forecast_pct", pa.float64()),
        ("status", pa.string()),
        ("crosses_100_on", pa.date32()),
        ("crossed", pa.string()),
        ("fired_actual", pa.string()),
        ("fired_forecast", pa.string()),
        ("burn_rate", pa.float64()),
        ("burn_rate_day", pa.date32()),
        ("other_currencies", pa.string()),
        ("completeness", pa.string()),
        ("model_version", pa.string()),
    ]
)


def budget_rows(con, rules, table: str, status_table: str, first: date, last: date):
    """Every budget as of each day of the window, and its crossings as (alert key, row,
    crossing)."""
    from finops_assets.lib.forecast_scopes import (
        HISTORY_DAYS,
        PARTS,
        build_matrices,
        scope_series_sql,
        source_days,
    )

    budgets = list(rules.budgets)

    start = min(
        [first - timedelta(days=HISTORY_DAYS)]
        + [fc.period_bounds(first, b.period)[0] for b in budgets]
    )
    completeness = Completeness.build(start, last, source_days(con, table), rules.completeness)
    n = (last - start).days + 1
    dims = set(rules.dimensions)
    usage, recurring, one_time, complete, delivered = (
        np.zeros((len(budgets), n)) for _ in range(5)
    )
    complete = complete.astype(bool)
    delivered = delivered.astype(bool)
    summaries = [""] * len(budgets)
    # Per budget: currency -> cost per day in other currencies (shown, never added).
    others: list[dict[str, np.ndarray]] = [{} for _ in budgets]
    for columns, members in _by_scope_columns(budgets).items():
        if "tag" in columns:  # tag scopes: one query each
            groups = [
                (
                    [i],
                    con.sql(
                        scope_series_sql([], table, start, last, scope_filter_sql(budgets[i], dims))
                    ).to_arrow_table(),
                    [],
                )
                for i in members
            ]
        else:  # column scopes: one query per set of columns, every value and currency at once
            rows = con.sql(scope_series_sql(list(columns), table, start, last)).to_arrow_table()
            groups = [(members, rows, list(columns))]
        for group, rows, by in groups:
            m = build_matrices(by, rows, start, last)
            index: dict[tuple, list[int]] = {}
            for r in range(len(m)):
                index.setdefault(tuple(m.keys[r][c] for c in by), []).append(r)
            for i in group:
                budget = budgets[i]
                wanted = tuple(_scope_text(c, budget.scope[c], dims) for c in by)
                for r in index.get(wanted, []):
                    money = sum(m.money[f"{budget.basis}:{part}"][r] for part in PARTS)
                    if m.currencies[r] != budget.currency:
                        others[i][m.currencies[r]] = money
                        continue
                    usage[i] = m.money[f"{budget.basis}:usage"][r]
                    recurring[i] = m.money[f"{budget.basis}:recurring"][r]
                    one_time[i] = m.money[f"{budget.basis}:one_time"][r]
                    delivered[i] = m.money["row_count"][r] > 0
                    complete[i] = completeness.for_sources(m.sources[r])
                    summaries[i] = completeness.summary(m.sources[r])
    previous = []
    if wh.table_exists(con, status_table):
        stored = {
            r[0]: r[1:]
            for r in con.execute(
                f"SELECT budget, period_start, period_end, fired_actual, fired_forecast "
                f"FROM {status_table} WHERE charge_date = ?",
                [first - timedelta(days=1)],
            ).fetchall()
        }
    else:
        stored = {}
    for budget in budgets:
        s = stored.get(budget.name)
        previous.append(
            BudgetDay(
                as_of=first - timedelta(days=1),
                period=(s[0], s[1]),
                actual=0.0,
                forecast=None,
                lower=None,
                upper=None,
                status="",
                fired_actual=json.loads(s[2] or "[]"),
                fired_forecast=json.loads(s[3] or "[]"),
            )
            if s
            else None
        )
    model = fc.ForecastModel(coverage=rules.forecasts.coverage)
    results = evaluate(
        budgets,
        start,
        usage,
        recurring,
        one_time,
        complete,
        delivered,
        first,
        last,
        previous,
        rules.budget_alerts.rearm_points,
        model,
    )
    columns: dict[str, list] = {name: [] for name in BUDGET_SCHEMA.names}
    crossings = []

    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    for i, (budget, days) in enumerate(zip(budgets, results, strict=True)):
        amount = float(budget.amount)
        label = scope_label(budget)
        for day in days:
            lo, hi = (max(day.period[0], start) - start).days, (day.as_of - start).days
            other = {c: float(v[lo : hi + 1].sum()) for c, v in others[i].items()}
            values = (
                day.as_of,
                budget.name,
                label,
                budget.owner,
                budget.period,
                day.period[0],
                day.period[1],
                budget.currency,
                budget.basis,
                amount,
                round(day.actual, 2),
                round(100 * day.actual / amount, 1),
                rounded(day.forecast, 2),
                rounded(day.lower, 2),
                rounded(day.upper, 2),
                None if day.forecast is None else round(100 * day.forecast / amount, 1),
                day.status,
                day.crosses_on,
                "; ".join(
                    f"{c.kind} {c.threshold:g}{'x' if c.kind == 'burn rate' else '%'}"
                    for c in day.crossings
                )
                or None,
                _json_list(day.fired_actual),
                _json_list(day.fired_forecast),
                rounded(day.burn_rate, 2),
                day.newest_day,
                "; ".join(f"{c} {v:,.2f} not counted" for c, v in sorted(other.items()) if v)
                or None,
                summaries[i],
                fc.MODEL_VERSION,
            )
            for name, value in zip(BUDGET_SCHEMA.names, values, strict=True):
                columns[name].append(value)
            if day.crossings:
                row = dict(zip(BUDGET_SCHEMA.names, values, strict=True))
                for c in day.crossings:
                    key = (
                        f"{budget.name}|{day.period[0]}|{c.kind}|{c.threshold:g}|"
                        f"{day.newest_day if c.kind == 'burn rate' else day.as_of}"
                    )
                    crossings.append((key, row, c))
    return pa.table(columns, schema=BUDGET_SCHEMA), crossings
