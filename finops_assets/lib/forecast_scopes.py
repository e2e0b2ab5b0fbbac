"""The daily series forecasts and budgets are computed on: per scope value, currency and day, cost
split by how it recurs (``lib/forecasts``), on both bases.

- **usage-like**: everything that accrues day by day: usage, and the daily amortized share of a
  commitment the platform spreads (``x_AmortizationClass = 'Amortized Charge'``);
- **recurring**: ``ChargeFrequency = 'Recurring'`` (support plans, subscriptions, monthly fees and
  credits), projected on their day of the month;
- **one-time**: ``ChargeFrequency = 'One-Time'`` (purchases, refunds), never extrapolated.

Pure SQL builders and numpy; no Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from finops_assets.lib import forecasts as fc
from finops_assets.lib.completeness import Completeness, SourceDays, loaded_days_sql
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.monitors import NONE_VALUE
from finops_assets.lib.warehouse import quote_identifier as q

BASES = ("EffectiveCost", "BilledCost")
PARTS = ("usage", "recurring", "one_time")


def part_of_sql() -> str:
    return """CASE
        WHEN ChargeFrequency = 'Recurring' THEN 'recurring'
        WHEN ChargeFrequency = 'One-Time'
             AND x_AmortizationClass IS DISTINCT FROM 'Amortized Charge' THEN 'one_time'
        ELSE 'usage' END"""


def scope_series_sql(
    by: Sequence[str],
    table: str,
    start: date,
    end: date,
    where: str | None = None,
) -> str:
    """Per value of ``by`` (``[]``: one total), currency and day, each basis split into parts."""
    keys = "".join(
        f"coalesce(CAST({q(c)} AS VARCHAR), {sql_literal(NONE_VALUE)}) AS {q(c)}, " for c in by
    )
    sums = ", ".join(
        f"coalesce(CAST(sum({basis}) FILTER (WHERE part = '{part}') AS DOUBLE), 0) "
        f"AS {q(basis + ':' + part)}"
        for basis in BASES
        for part in PARTS
    )
    return f"""
        SELECT {keys}BillingCurrency AS currency, charge_date, {sums},
               count(*) AS row_count, string_agg(DISTINCT x_Source, ',') AS sources
        FROM (SELECT *, {part_of_sql()} AS part FROM {table}
              WHERE charge_date BETWEEN DATE '{start.isoformat()}' AND DATE '{end.isoformat()}'
                AND BillingCurrency IS NOT NULL {f"AND ({where})" if where else ""})
        GROUP BY ALL
    """


@dataclass
class ScopeMatrices:
    """Rows: one per scope value and currency; columns: days from ``start``."""

    start: date
    keys: list[dict[str, str]]
    currencies: list[str]
    sources: list[tuple[str, ...]]
    money: Mapping[str, np.ndarray]  # "<basis>:<part>" (and "row_count") -> rows × days

    def label(self, i: int) -> str:
        return " · ".join(f"{k}={v}" for k, v in self.keys[i].items()) or "total"

    def key_json(self, i: int) -> str:
        return json.dumps(self.keys[i], sort_keys=True)

    def __len__(self) -> int:
        return len(self.keys)


def build_matrices(by: Sequence[str], rows: pa.Table, start: date, end: date) -> ScopeMatrices:
    n = (end - start).days + 1
    names = [f"{b}:{p}" for b in BASES for p in PARTS] + ["row_count"]
    if rows.num_rows == 0:
        return ScopeMatrices(start, [], [], [], {k: np.zeros((0, n)) for k in names})
    frame = rows.to_pandas()
    group = [*by, "currency"]
    frame["series_index"] = frame.groupby(group, sort=True).ngroup()
    frame["day_index"] = (pd.to_datetime(frame["charge_date"]) - pd.Timestamp(start)).dt.days
    count = int(frame["series_index"].max()) + 1
    money = {}
    for name in names:
        matrix = np.zeros((count, n))
        matrix[frame["series_index"].to_numpy(), frame["day_index"].to_numpy()] = frame[name]
        money[name] = matrix
    firsts = frame.drop_duplicates("series_index").sort_values("series_index")
    sources = frame.groupby("series_index")["sources"].agg(
        lambda values: tuple(sorted({s for v in values if v for s in v.split(",")}))
    )
    return ScopeMatrices(
        start=start,
        keys=[{c: str(r[c]) for c in by} for r in firsts.to_dict("records")],
        currencies=[str(c) for c in firsts["currency"]],
        sources=[sources[i] for i in range(count)],
        money=money,
    )


# --- forecasts of every scope, as of each day ---------------------------------------------
# Days of history read before the first as-of day: 8 weeks of baseline before each of the six
# months of backtests.
HISTORY_DAYS = 250

FORECAST_SCHEMA = pa.schema(
    [
        ("charge_date", pa.date32()),  # the as-of day (the partition)
        ("scope", pa.string()),
        ("series", pa.string()),
        ("series_key", pa.string()),
        ("BillingCurrency", pa.string()),
        ("basis", pa.string()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("status", pa.string()),
        ("actual_to_date", pa.float64()),
        ("projected_usage", pa.float64()),
        ("projected_recurring", pa.float64()),
        ("forecast", pa.float64()),
        ("lower_80", pa.float64()),
        ("upper_80", pa.float64()),
        ("complete_through", pa.date32()),
        ("history_days", pa.int32()),
        ("completeness", pa.string()),
        ("model_version", pa.string()),
    ]
)


def source_days(con, table: str) -> list[SourceDays]:
    return [
        SourceDays(r["source"], r["first_day"], r["newest_day"])
        for r in con.sql(loaded_days_sql(table)).to_arrow_table().to_pylist()
        if r["source"] is not None
    ]


def _money(values: np.ndarray) -> pa.Array:
    """Cents, NaN as null."""
    values = np.asarray(values, dtype=float)
    return pa.array(np.round(values, 2), mask=~np.isfinite(values), type=pa.float64())


def forecast_rows(con, rules, table: str, first: date, last: date) -> pa.Table:
    """Every scope's forecasts as of each day of ``[first, last]``."""
    start = first - timedelta(days=HISTORY_DAYS)
    newest = con.execute(f"SELECT max(charge_date) FROM {table}").fetchall()[0][0]
    through = max(last, newest) if newest else last
    completeness = Completeness.build(start, through, source_days(con, table), rules.completeness)
    model = fc.ForecastModel(coverage=rules.forecasts.coverage)
    batches: list[pa.RecordBatch] = []
    for scope in rules.forecasts.scopes:
        rows = con.sql(scope_series_sql(scope.by, table, start, last)).to_arrow_table()
        matrices = build_matrices(scope.by, rows, start, last)
        if not len(matrices):
            continue
        complete = np.vstack([completeness.for_sources(s) for s in matrices.sources])[
            :, : (last - start).days + 1
        ]
        count = len(matrices)
        labels = pa.array([matrices.label(i) for i in range(count)], pa.string())
        keys = pa.array([matrices.key_json(i) for i in range(count)], pa.string())
        currencies = pa.array(matrices.currencies, pa.string())
        summaries = pa.array([completeness.summary(s) for s in matrices.sources], pa.string())
        backtests = {basis: fc.Backtests() for basis in BASES}
        for as_of in [first + timedelta(days=k) for k in range((last - first).days + 1)]:
            end = (as_of - start).days + 1
            for basis in BASES:
                f = fc.forecast_period(
                    start,
                    matrices.money[f"{basis}:usage"][:, :end],
                    matrices.money[f"{basis}:recurring"][:, :end],
                    matrices.money[f"{basis}:one_time"][:, :end],
                    complete[:, :end],
                    as_of,
                    model=model,
                    backtests=backtests[basis],
                )

                def repeat(value, kind, n=count):
                    return pa.array([value] * n, kind)

                batches.append(
                    pa.RecordBatch.from_arrays(
                        [
                            repeat(as_of, pa.date32()),
                            repeat(scope.name, pa.string()),
                            labels,
                            keys,
                            currencies,
                            repeat(basis, pa.string()),
                            repeat(f.period[0], pa.date32()),
                            repeat(f.period[1], pa.date32()),
                            pa.array(f.status.astype(str), pa.string()),
                            _money(f.actual),
                            _money(f.projected_usage),
                            _money(f.projected_recurring),
                            _money(f.forecast),
                            _money(f.lower),
                            _money(f.upper),
                            pa.array(f.complete_through, pa.date32()),
                            pa.array(f.history_days.astype(np.int32), pa.int32()),
                            summaries,
                            repeat(fc.MODEL_VERSION, pa.string()),
                        ],
                        schema=FORECAST_SCHEMA,
                    )
                )
    return pa.Table.from_batches(batches, schema=FORECAST_SCHEMA)


def actual_conserved_sql(
    by: Sequence[str], scope: str, forecasts_table: str, table: str, first: date, last: date
) -> str:
    """Forecast rows of ``scope`` as of ``[first, last]`` whose ``actual_to_date`` is not the
    cost of ``table`` for the same series, currency and basis over the period's days through
    ``complete_through``, beyond the half cent its rounding may take."""
    label = (
        " || ' · ' || ".join(
            f"{sql_literal(c + '=')} || coalesce(CAST({q(c)} AS VARCHAR), "
            f"{sql_literal(NONE_VALUE)})"
            for c in by
        )
        if by
        else "'total'"
    )
    sums = ", ".join(f"CAST(sum({basis}) AS DOUBLE) AS {q(basis)}" for basis in BASES)
    return f"""
        WITH f AS (
            SELECT charge_date, series, BillingCurrency, basis, period_start, complete_through,
                   actual_to_date
            FROM {forecasts_table}
            WHERE scope = {sql_literal(scope)}
              AND charge_date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'
        ),
        u AS (
            SELECT {label} AS series, BillingCurrency, charge_date, {sums}
            FROM {table}
            WHERE BillingCurrency IS NOT NULL AND charge_date BETWEEN
                  (SELECT min(period_start) FROM f) AND DATE '{last.isoformat()}'
            GROUP BY ALL
        )
        SELECT f.charge_date AS as_of, f.series, f.BillingCurrency, f.basis,
               f.actual_to_date,
               coalesce(sum(CASE f.basis WHEN 'BilledCost' THEN u.BilledCost
                            ELSE u.EffectiveCost END), 0) AS upstream
        FROM f LEFT JOIN u ON u.series = f.series AND u.BillingCurrency = f.BillingCurrency
             AND u.charge_date BETWEEN f.period_start AND f.complete_through
        GROUP BY ALL
        HAVING abs(f.actual_to_date - upstream) > 0.005 + 1e-6
        ORDER BY 1, 2, 3, 4
    """
