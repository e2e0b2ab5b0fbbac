"""Anomaly monitors over core.allocated_costs: their series, scores, events and root causes.

What belongs here: turning the rules YAML's ``anomalies:`` monitors into daily series (SQL),
scoring them with ``lib/anomalies`` on complete days only (``lib/completeness``), the simple
rules for the charges a usage model must not score, and the root causes of each event (SQL).
What does not: Dagster, the clock, writing tables (``defs/insights``).

- **Usage** (EffectiveCost of ``ChargeCategory = 'Usage'``) is scored by the model. A series with
  no usage on the complete days of its baseline that starts spending is ``new spend``; otherwise a
  flagged run of days is a ``spike`` (or closes as a ``level shift``).
- **Purchases** are never anomalies by themselves (a commitment bought on the 1st is planned;
  its amortized cost shows in usage, where the model sees it).
- **Credits**: a series whose credits came on at least ``credit_presence`` of the last 14
  complete days and then bring less than half the usual daily credit for ``close_after`` complete
  days in a row is ``credit stopped``; the impact is the credit that did not come.
- **Corrections** (``Adjustment``): a day whose corrections exceed the impact floor either way is
  reported, as a closed one-day event.
- **Tax**: a day whose tax exceeds its usual share of the day's usage and purchases (median of the
  last 28 complete days with tax) by both the impact floor and ``min_pct`` is ``tax``. Tax charged
  on fewer than half the days (monthly, on the invoice) is not scored.

Every series is one currency: money is never summed across currencies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from finops_assets.lib import anomalies as an
from finops_assets.lib.completeness import Completeness, SourceDays, loaded_days_sql
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.rules import AnomalyMonitor, AnomalyRules
from finops_assets.lib.warehouse import quote_identifier as q

NONE_VALUE = "(none)"  # a NULL key column (e.g. no SubAccountId) is a series of its own
KIND_SPIKE, KIND_NEW, KIND_CREDIT, KIND_TAX, KIND_CORRECTION = (
    "spike",
    "new spend",
    "credit stopped",
    "tax",
    "correction",
)
CATEGORY_OF_KIND = {
    KIND_SPIKE: "Usage",
    KIND_NEW: "Usage",
    KIND_CREDIT: "Credit",
    KIND_TAX: "Tax",
    KIND_CORRECTION: "Adjustment",
}
ROOT_CAUSE_COLUMNS = ("ServiceName", "SubAccountId", "RegionId", "ResourceId")
ROOT_CAUSES_PER_COLUMN = 3
BASELINE_WEEKS = 4
BASELINE_DAYS_FOR_CAUSES = 7 * BASELINE_WEEKS
BELOW_FLOOR = "below floor"
# A credit day is short when less than this share of the usual daily credit arrived (one of two
# credits stopping counts, not only all of them).
CREDIT_SHORT = 0.5  # a series that never reached the impact floor: nothing to score


def series_sql(monitor: AnomalyMonitor, table: str, start: date, end: date) -> str:
    """One row per series key, currency and day with the day's money per charge category."""
    keys = "".join(
        f"coalesce(CAST({q(c)} AS VARCHAR), {sql_literal(NONE_VALUE)}) AS {q(c)}, "
        for c in monitor.by
    )

    def category(name: str) -> str:
        return (
            f"coalesce(CAST(sum(EffectiveCost) FILTER (WHERE ChargeCategory = '{name}') "
            "AS DOUBLE), 0)"
        )

    return f"""
        SELECT {keys}BillingCurrency AS currency, charge_date,
               {category("Usage")} AS usage, {category("Credit")} AS credit,
               {category("Purchase")} AS purchase, {category("Tax")} AS tax,
               {category("Adjustment")} AS adjustment,
               string_agg(DISTINCT x_Source, ',') AS sources
        FROM {table}
        WHERE charge_date BETWEEN DATE '{start.isoformat()}' AND DATE '{end.isoformat()}'
          AND BillingCurrency IS NOT NULL
        GROUP BY ALL
    """


@dataclass
class Series:
    """One monitor series: per day of ``[start, start + len)``, money per charge category."""

    monitor: str
    key: dict[str, str]  # monitor column -> value ({} for the total)
    currency: str
    start: date
    usage: np.ndarray
    credit: np.ndarray
    purchase: np.ndarray
    tax: np.ndarray
    adjustment: np.ndarray
    sources: tuple[str, ...]

    @property
    def label(self) -> str:
        return " · ".join(f"{k}={v}" for k, v in self.key.items()) or "total"

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(len(self.usage))]


def build_series(monitor: AnomalyMonitor, rows: pa.Table, start: date, end: date) -> list[Series]:
    """Dense daily arrays (0 on days without rows) per series key and currency."""
    n = (end - start).days + 1
    if rows.num_rows == 0:
        return []
    frame = rows.to_pandas()
    group = [*monitor.by, "currency"]
    frame["series_index"] = frame.groupby(group, sort=True).ngroup()
    frame["day_index"] = (pd.to_datetime(frame["charge_date"]) - pd.Timestamp(start)).dt.days
    count = int(frame["series_index"].max()) + 1
    matrices = {}
    for name in ("usage", "credit", "purchase", "tax", "adjustment"):
        matrix = np.zeros((count, n))
        matrix[frame["series_index"].to_numpy(), frame["day_index"].to_numpy()] = frame[
            name
        ].to_numpy()
        matrices[name] = matrix
    firsts = frame.drop_duplicates("series_index").sort_values("series_index")
    sources = frame.groupby("series_index")["sources"].agg(
        lambda values: tuple(sorted({s for v in values if v for s in v.split(",")}))
    )
    result = []
    for row in firsts.itertuples(index=False):
        i = row.series_index
        values = row._asdict()
        result.append(
            Series(
                monitor=monitor.name,
                key={c: values[c] for c in monitor.by},
                currency=values["currency"],
                start=start,
                usage=matrices["usage"][i],
                credit=matrices["credit"][i],
                purchase=matrices["purchase"][i],
                tax=matrices["tax"][i],
                adjustment=matrices["adjustment"][i],
                sources=sources[i],
            )
        )
    return result


def model_for(rules: AnomalyRules, monitor: AnomalyMonitor, currency: str) -> an.AnomalyModel:
    return replace(an.AnomalyModel(), **rules.thresholds(monitor, currency))


@dataclass
class Event:
    """An anomaly of one series: the model's event plus what kind of charge it is."""

    series: Series
    kind: str
    start: date
    end: date
    expected: float
    actual: float
    score: float | None
    days: int
    status: str
    root_causes: list[dict] = field(default_factory=list)

    @property
    def impact(self) -> float:
        return self.actual - self.expected

    @property
    def anomaly_id(self) -> str:
        """Stable across runs: the same series, kind and first day is the same anomaly."""
        text = "|".join(
            [
                self.series.monitor,
                json.dumps(self.series.key, sort_keys=True),
                self.series.currency,
                self.kind,
                self.start.isoformat(),
            ]
        )
        return f"{self.start:%Y%m%d}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


@dataclass
class SeriesResult:
    series: Series
    scores: list[an.DayScore]
    complete: np.ndarray
    events: list[Event]


def score(series: Series, complete: np.ndarray, model: an.AnomalyModel, rules: AnomalyRules):
    """Usage scores per day and every event of the series (usage, credits, corrections, tax)."""
    days = series.days
    usage = series.usage
    events: list[Event] = []
    if not np.any(complete & (usage >= model.min_impact)):
        # No complete day reached the floor: no day can pass the impact gate (impact <= actual).
        scores = [
            an.DayScore(d, float(v), None, None, None, an.OK if c else an.INCOMPLETE)
            for d, v, c in zip(days, usage, complete, strict=True)
        ]
        scores = [s if s.status != an.OK else replace(s, status=BELOW_FLOOR) for s in scores]
    else:
        scores, model_events = an.score_series(days, usage, complete, model)
        window = 7 * model.weeks
        for e in model_events:
            i = (e.start - series.start).days
            before = slice(max(0, i - window), i)
            new = not np.any((usage[before] > 0.005) & complete[before])
            events.append(
                Event(
                    series,
                    KIND_NEW if new else KIND_SPIKE,
                    e.start,
                    e.end,
                    e.expected,
                    e.actual,
                    e.score,
                    e.days,
                    e.status,
                )
            )
    if np.any(series.credit < 0):
        events += credit_events(series, complete, model, rules.credit_presence)
    if np.any(series.adjustment != 0):
        events += correction_events(series, complete, model)
    if np.any(series.tax != 0):
        events += tax_events(series, complete, model)
    return SeriesResult(series, scores, complete, events)


def credit_events(
    series: Series, complete: np.ndarray, model: an.AnomalyModel, presence: float
) -> list[Event]:
    credit = -series.credit  # credits are negative cost
    events: list[Event] = []
    current: Event | None = None
    returned = 0
    adopted = 0  # after a level shift, only days from here on are the credit's normal
    for i in np.flatnonzero(complete):
        past = np.flatnonzero(complete[adopted:i])[-14:] + adopted
        if current is None:
            if len(past) < 14:
                continue
            present = credit[past] > 0.005
            if present.mean() < presence:
                continue
            usual = float(np.median(credit[past][present]))
            if credit[i] >= CREDIT_SHORT * usual:
                continue
            day = series.start + timedelta(days=int(i))
            current = Event(series, KIND_CREDIT, day, day, 0.0, 0.0, None, 0, an.OPEN)
            current_usual = usual
            events.append(current)
            returned = 0
        if credit[i] >= CREDIT_SHORT * current_usual:
            returned += 1
            if returned >= model.close_after:
                current.status = an.CLOSED
                current = None
            continue
        returned = 0
        current.end = series.start + timedelta(days=int(i))
        current.days += 1
        current.expected += current_usual  # the credit that should have come, as a saving lost
        current.actual += float(credit[i])
        if current.days >= model.level_shift_days:
            current.status = an.LEVEL_SHIFT
            current = None
            adopted = int(i) + 1
    # Impact of a lost credit is cost the credit no longer offsets: expected - received.
    kept = []
    for e in events:
        lost = e.expected - e.actual
        if e.days >= model.close_after and lost >= model.min_impact:
            e.expected, e.actual = e.actual, e.expected  # impact = actual - expected = lost
            kept.append(e)
    return kept


def correction_events(series: Series, complete: np.ndarray, model: an.AnomalyModel) -> list[Event]:
    events = []
    for i in np.flatnonzero(complete & (np.abs(series.adjustment) >= model.min_impact)):
        day = series.start + timedelta(days=int(i))
        amount = float(series.adjustment[i])
        events.append(Event(series, KIND_CORRECTION, day, day, 0.0, amount, None, 1, an.CLOSED))
    return events


def tax_events(series: Series, complete: np.ndarray, model: an.AnomalyModel) -> list[Event]:
    base = series.usage + series.purchase
    taxed = complete & (series.tax != 0)
    events = []
    for i in np.flatnonzero(taxed):
        past = np.flatnonzero(complete[:i])[-28:]
        if len(past) < 14 or (series.tax[past] != 0).mean() < 0.5:
            continue
        with_tax = past[(series.tax[past] != 0) & (base[past] > 0)]
        if len(with_tax) < 7:
            continue
        rate = float(np.median(series.tax[with_tax] / base[with_tax]))
        expected = rate * max(float(base[i]), 0.0)
        impact = float(series.tax[i]) - expected
        if impact >= model.min_impact and impact >= model.min_pct * max(expected, 0.0):
            day = series.start + timedelta(days=int(i))
            events.append(
                Event(
                    series, KIND_TAX, day, day, expected, float(series.tax[i]), None, 1, an.CLOSED
                )
            )
    return events


def score_monitor(
    monitor: AnomalyMonitor,
    rows: pa.Table,
    start: date,
    end: date,
    completeness: Completeness,
    rules: AnomalyRules,
) -> list[SeriesResult]:
    results = []
    for series in build_series(monitor, rows, start, end):
        complete = completeness.for_sources(series.sources)
        results.append(score(series, complete, model_for(rules, monitor, series.currency), rules))
    return results


# --- root causes ---------------------------------------------------------------------------------
def root_causes_sql(monitor: AnomalyMonitor, table: str, events_relation: str) -> str:
    """Per event and root-cause column, the values whose cost moved most: Σ over the event's days
    minus, for each of its days, the mean of the same weekday in the 4 weeks before it (a Monday
    spike is measured against Mondays, not against a mean that weekends pull down). A column with one value
    in the series (all of a team in one region) explains nothing and is left out. ``events_relation`` has
    anomaly_id, category, currency, start_date, end_date, base_start and the monitor's columns."""
    key_match = "".join(
        f" AND coalesce(CAST(t.{q(c)} AS VARCHAR), {sql_literal(NONE_VALUE)}) = e.{q(c)}"
        for c in monitor.by
    )
    unions = " UNION ALL ".join(
        f"""SELECT anomaly_id, '{column}' AS dimension,
                   coalesce(CAST({q(column)} AS VARCHAR), {sql_literal(NONE_VALUE)}) AS value,
                   sum(in_event) - sum(weekday_days * in_base) / {BASELINE_WEEKS} AS change,
                   sum(in_event) AS actual
            FROM moved GROUP BY anomaly_id, days, {q(column)}"""
        for column in ROOT_CAUSE_COLUMNS
    )
    return f"""
        WITH moved AS (
            SELECT e.anomaly_id, e.days, {", ".join(f"t.{q(c)}" for c in ROOT_CAUSE_COLUMNS)},
                   -- the event's days that fall on this row's weekday
                   CASE WHEN (dayofweek(t.charge_date) - dayofweek(e.start_date) + 7) % 7 < e.days
                        THEN (e.days - 1 - (dayofweek(t.charge_date) - dayofweek(e.start_date)
                              + 7) % 7) // 7 + 1
                        ELSE 0 END AS weekday_days,
                   CAST(coalesce(sum(t.EffectiveCost) FILTER (
                       WHERE t.charge_date >= e.start_date), 0) AS DOUBLE) AS in_event,
                   CAST(coalesce(sum(t.EffectiveCost) FILTER (
                       WHERE t.charge_date < e.base_end), 0) AS DOUBLE) AS in_base
            FROM {events_relation} AS e
            JOIN {table} AS t
              ON t.charge_date BETWEEN e.base_start AND e.end_date
             AND t.BillingCurrency = e.currency AND t.ChargeCategory = e.category{key_match}
            GROUP BY ALL
        ),
        changes AS ({unions})
        SELECT anomaly_id, dimension, value, change, actual FROM (
            SELECT *, row_number() OVER (
                PARTITION BY anomaly_id, dimension ORDER BY sign * change DESC, value
            ) AS rank,
            count(*) OVER (PARTITION BY anomaly_id, dimension) AS distinct_values
            FROM changes JOIN (SELECT anomaly_id, sign FROM {events_relation}) USING (anomaly_id)
        )
        WHERE rank <= {ROOT_CAUSES_PER_COLUMN} AND sign * change > 0 AND distinct_values > 1
        ORDER BY anomaly_id, dimension, rank
    """


def events_relation(monitor: AnomalyMonitor, events: Sequence[Event]) -> pa.Table:
    """The events as the Arrow table ``root_causes_sql`` joins (credits move negative)."""
    columns: dict[str, list] = {c: [] for c in monitor.by}
    rest: dict[str, list] = {
        k: []
        for k in (
            "anomaly_id",
            "category",
            "currency",
            "start_date",
            "end_date",
            "base_start",
            "base_end",
            "days",
            "sign",
        )
    }
    for e in events:
        for c in monitor.by:
            columns[c].append(e.series.key[c])
        rest["anomaly_id"].append(e.anomaly_id)
        rest["category"].append(CATEGORY_OF_KIND[e.kind])
        rest["currency"].append(e.series.currency)
        rest["start_date"].append(e.start)
        rest["end_date"].append(e.end)
        rest["base_start"].append(e.start - timedelta(days=BASELINE_DAYS_FOR_CAUSES))
        rest["base_end"].append(e.start)
        rest["days"].append((e.end - e.start).days + 1)
        # A lost credit shows as cost rising toward zero (less negative); a negative correction
        # moves down.
        rest["sign"].append(-1.0 if e.kind == KIND_CORRECTION and e.impact < 0 else 1.0)
    return pa.table(
        {
            **{c: pa.array(v, pa.string()) for c, v in columns.items()},
            **{k: pa.array(v) for k, v in rest.items()},
        }
    )


def attach_root_causes(events: Sequence[Event], causes: pa.Table) -> None:
    """Each event's top contributors as dicts (dimension, value, change, share of impact)."""
    by_id = {e.anomaly_id: e for e in events}
    for row in causes.to_pylist():
        event = by_id.get(row["anomaly_id"])
        if event is None:
            continue
        share = row["change"] / event.impact if event.impact else None
        event.root_causes.append(
            {
                "dimension": row["dimension"],
                "value": row["value"],
                "change": round(row["change"], 2),
                "share": round(share, 3) if share is not None else None,
            }
        )


def root_cause_text(event: Event, limit: int = 3, min_share: float = 0.1) -> str:
    """The largest contributors, one line: 'ServiceName=Amazon EC2 / ResourceId=i-0abc
    +2,572.96 USD (104%)'. The same money seen through two columns (one resource of one
    service) is one cause; contributors under ``min_share`` of the impact are left out."""
    ranked = sorted(
        event.root_causes,
        key=lambda c: (-abs(c["change"]), ROOT_CAUSE_COLUMNS.index(c["dimension"])),
    )
    groups: list[tuple[list[str], dict]] = []
    for cause in ranked:
        if cause["value"] == NONE_VALUE or (
            cause["share"] is not None and abs(cause["share"]) < min_share
        ):
            continue
        for names, first in groups:
            if abs(cause["change"] - first["change"]) <= 0.005 * abs(first["change"]) + 0.01:
                names.append(f"{cause['dimension']}={cause['value']}")
                break
        else:
            groups.append(([f"{cause['dimension']}={cause['value']}"], cause))
    parts = []
    for names, cause in groups[:limit]:
        share = f" ({cause['share']:.0%})" if cause["share"] is not None else ""
        parts.append(f"{' / '.join(names)} {cause['change']:+,.2f} {event.series.currency}{share}")
    return "; ".join(parts)


# --- one run over every monitor ------------------------------------------------------------------
# Days of history scored before the first day written: scores depend on the 8-week baseline and
# on the σ of the model's own errors over the 8 weeks before that, so 120 days make a day's score
# the same whether it is computed in a daily run or inside a year's backfill.
HISTORY_DAYS = 120
DAY_COLUMNS = (
    "charge_date",
    "monitor",
    "series",
    "series_key",
    "BillingCurrency",
    "actual",
    "expected",
    "sigma",
    "z",
    "status",
    "anomaly_id",
    "waiting_on",
    "model_version",
)


@dataclass
class MonitorRun:
    start: date  # first day scored (history)
    write_start: date  # first day whose rows are written
    through: date
    completeness: Completeness
    results: list[SeriesResult]
    events: list[Event]  # events that end on or after write_start - EVENT_MARGIN_DAYS

    def day_rows(self) -> pa.Table:
        columns: dict[str, list] = {c: [] for c in DAY_COLUMNS}
        offset = (self.write_start - self.start).days
        for result in self.results:
            s = result.series
            key = json.dumps(s.key, sort_keys=True)
            ids = {}
            model_events = [e for e in result.events if e.kind in (KIND_SPIKE, KIND_NEW)]
            for score in result.scores[offset:]:
                if score.event is not None and score.event < len(model_events):
                    ids[score.day] = model_events[score.event].anomaly_id
                waiting = (
                    "; ".join(self.completeness.waiting_on(s.sources, score.day))
                    if score.status == an.INCOMPLETE
                    else None
                )
                for name, value in (
                    ("charge_date", score.day),
                    ("monitor", s.monitor),
                    ("series", s.label),
                    ("series_key", key),
                    ("BillingCurrency", s.currency),
                    ("actual", round(score.actual, 2)),
                    ("expected", None if score.expected is None else round(score.expected, 2)),
                    ("sigma", None if score.sigma is None else round(score.sigma, 2)),
                    ("z", None if score.z is None else round(score.z, 2)),
                    ("status", score.status),
                    ("anomaly_id", ids.get(score.day)),
                    ("waiting_on", waiting or None),
                    ("model_version", an.MODEL_VERSION),
                ):
                    columns[name].append(value)
        schema = pa.schema(
            [
                ("charge_date", pa.date32()),
                ("monitor", pa.string()),
                ("series", pa.string()),
                ("series_key", pa.string()),
                ("BillingCurrency", pa.string()),
                ("actual", pa.float64()),
                ("expected", pa.float64()),
                ("sigma", pa.float64()),
                ("z", pa.float64()),
                ("status", pa.string()),
                ("anomaly_id", pa.string()),
                ("waiting_on", pa.string()),
                ("model_version", pa.string()),
            ]
        )
        return pa.table(columns, schema=schema)

    def event_rows(self, ownership_dimension: str) -> pa.Table:
        rows = []
        for e in self.events:
            s = e.series
            rows.append(
                {
                    "anomaly_id": e.anomaly_id,
                    "monitor": s.monitor,
                    "series": s.label,
                    "series_key": json.dumps(s.key, sort_keys=True),
                    "BillingCurrency": s.currency,
                    "owner": s.key.get(ownership_dimension),
                    "kind": e.kind,
                    "status": e.status,
                    "start_date": e.start,
                    "end_date": e.end,
                    "days": e.days,
                    "expected": round(e.expected, 2),
                    "actual": round(e.actual, 2),
                    "impact": round(e.impact, 2),
                    "impact_pct": round(100 * e.impact / e.expected, 1) if e.expected > 0 else None,
                    "score": None if e.score is None else round(e.score, 2),
                    "root_causes": root_cause_text(e),
                    "root_causes_json": json.dumps(e.root_causes),
                    "completeness": self.completeness.summary(s.sources),
                    "model_version": an.MODEL_VERSION,
                    "as_of": self.through,
                }
            )
        return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


EVENT_SCHEMA = pa.schema(
    [
        ("anomaly_id", pa.string()),
        ("monitor", pa.string()),
        ("series", pa.string()),
        ("series_key", pa.string()),
        ("BillingCurrency", pa.string()),
        ("owner", pa.string()),
        ("kind", pa.string()),
        ("status", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("days", pa.int32()),
        ("expected", pa.float64()),
        ("actual", pa.float64()),
        ("impact", pa.float64()),
        ("impact_pct", pa.float64()),
        ("score", pa.float64()),
        ("root_causes", pa.string()),
        ("root_causes_json", pa.string()),
        ("completeness", pa.string()),
        ("model_version", pa.string()),
        ("as_of", pa.date32()),
    ]
)
# Events ending this many days before the first day written are rewritten too: an event still
# open at the end of the previous run closes (or grows) in this one.
EVENT_MARGIN_DAYS = 14


def run_monitors(
    con, rules: AnomalyRules, completeness_rules, table: str, write_start: date, through: date
) -> MonitorRun:
    """Score every monitor over ``[write_start - HISTORY_DAYS, through]``; root causes for the
    events that end on or after ``write_start - EVENT_MARGIN_DAYS``."""
    start = write_start - timedelta(days=HISTORY_DAYS)
    sources = [
        SourceDays(r["source"], r["first_day"], r["newest_day"])
        for r in con.sql(loaded_days_sql(table)).to_arrow_table().to_pylist()
        if r["source"] is not None
    ]
    completeness = Completeness.build(start, through, sources, completeness_rules)
    results: list[SeriesResult] = []
    kept: list[Event] = []
    cutoff = write_start - timedelta(days=EVENT_MARGIN_DAYS)
    for monitor in rules.monitors:
        rows = con.sql(series_sql(monitor, table, start, through)).to_arrow_table()
        monitor_results = score_monitor(monitor, rows, start, through, completeness, rules)
        results += monitor_results
        events = [e for r in monitor_results for e in r.events if e.end >= cutoff]
        if events:
            relation = events_relation(monitor, events)
            con.register("_anomaly_events", relation)
            try:
                causes = con.sql(
                    root_causes_sql(monitor, table, "_anomaly_events")
                ).to_arrow_table()
            finally:
                con.unregister("_anomaly_events")
            attach_root_causes(events, causes)
        kept += events
    return MonitorRun(start, write_start, through, completeness, results, kept)
