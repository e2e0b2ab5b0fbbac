"""Service level indicators of the pipeline itself, from what the instance already records.

``compute`` turns a ``Signals`` bundle (gathered from the Dagster event log by the
``ops/pipeline_health`` sensor) into one ``Sli`` per source and indicator over a window of
charge days, each with its objective from the rules' ``slos:`` section:

=========================  ======================================================================
delivery_success_rate      due days whose first delivery (provider timestamp) came by the
                           source's freshness deadline (day end + ``freshness.<source>.sla_hours``)
                           / due days; a due day nothing delivered counts as missed
delivery_latency_hours     max over days of: provider timestamp of the day's first delivery ->
                           the day loaded in raw
mart_latency_hours         max over days of: loaded in raw -> mart/daily_cost_by_team (all
                           sources together, the mart is shared)
data_to_display_hours      max over days of: provider timestamp -> published for readers
duplicate_line_rate        rows no_duplicate_charges found delivered twice / fact rows
overlapping_deliveries     days the same charges came from two datasets (overlapping exports)
backfill_backlog           days whose upstream is newer than the downstream
schema_failures            failed loads and contract checks of the source, counted by cause
silent_zero_loads          deliveries whose manifest row count differs from the rows loaded,
                           and delivered days whose newest load wrote no rows
unallocated_share          Σ unallocated / Σ total effective cost, per currency (never summed
                           across currencies: the worst currency is the value)
alert_delivery_success     alerts delivered / alerts attempted
=========================  ======================================================================

An indicator with nothing to measure (no due day, no alert sent) has value None and never
breaches. Nothing here imports Dagster or reads the clock: ``Signals.now`` is given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from finops_assets.lib.rules import SloRules

ALL = "all"  # indicators of the shared stages, not of one source


@dataclass(frozen=True)
class DeliverySeen:
    """A delivery a delivery sensor requested days of (its observation on raw/<source>)."""

    source: str
    stream: str
    delivery_id: str
    created_at: datetime | None
    days: tuple[date, ...]


@dataclass(frozen=True)
class DayEvent:
    """A day materialized (loaded, rolled up or published) at ``at``."""

    day: date
    at: datetime
    rows: int | None = None


@dataclass(frozen=True)
class Failure:
    """A failed load step or contract check of a source, with its message."""

    source: str
    message: str
    at: datetime


@dataclass(frozen=True)
class RowCountMismatch:
    source: str
    delivery_id: str
    declared: int
    loaded: int


@dataclass
class Signals:
    now: datetime
    sla_hours: Mapping[str, float]  # monitored sources and their freshness deadlines
    deliveries: Sequence[DeliverySeen] = ()
    raw_loads: Mapping[str, Sequence[DayEvent]] = field(default_factory=dict)
    mart_loads: Sequence[DayEvent] = ()
    published: Sequence[DayEvent] = ()
    fact_rows: Mapping[date, int] = field(default_factory=dict)
    duplicate_rows: Mapping[date, int] = field(default_factory=dict)
    overlapping_days: Iterable[date] = ()
    backlog: Mapping[str, int] = field(default_factory=dict)  # source or ALL -> days
    failures: Sequence[Failure] = ()
    row_count_mismatches: Sequence[RowCountMismatch] = ()
    unallocated: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    alerts_attempted: int = 0
    alerts_delivered: int = 0


@dataclass(frozen=True)
class Sli:
    source: str
    name: str
    value: float | None
    objective: float
    kind: Literal["min", "max"]
    detail: str = ""

    @property
    def breached(self) -> bool:
        if self.value is None:
            return False
        return self.value < self.objective if self.kind == "min" else self.value > self.objective

    def describe(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:g}"
        bound = ">=" if self.kind == "min" else "<="
        state = "BREACHED" if self.breached else "ok"
        text = (
            f"{self.source} {self.name} = {shown} (objective {bound} {self.objective:g}): {state}"
        )
        return f"{text}; {self.detail}" if self.detail else text


_CAUSES = (
    ("missing column", re.compile(r"missing (mandatory )?(FOCUS )?column|has no .* column", re.I)),
    ("bad value", re.compile(r"not a (number|timestamp|date)|not an ISO|unknown currency", re.I)),
    ("unreadable file", re.compile(r"cannot read|truncated|zero-byte|not a parquet", re.I)),
    ("contract", re.compile(r"contract", re.I)),
)


def failure_cause(message: str) -> str:
    """The cause of a schema failure from its message (the loaders name file, column, fix)."""
    return next((cause for cause, pattern in _CAUSES if pattern.search(message)), "other")


def window(now: datetime, days: int) -> tuple[date, date]:
    """The charge days looked at: the ``days`` days before ``now``'s UTC day."""
    today = now.date()
    return today - timedelta(days=days), today - timedelta(days=1)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _in(day: date, span: tuple[date, date]) -> bool:
    return span[0] <= day <= span[1]


def _first_loads(events: Iterable[DayEvent], span: tuple[date, date]) -> dict[date, datetime]:
    first: dict[date, datetime] = {}
    for event in events:
        if _in(event.day, span) and (event.rows is None or event.rows > 0):
            first[event.day] = min(first.get(event.day, event.at), event.at)
    return first


def _first_delivered(signals: Signals, source: str, span) -> dict[date, datetime]:
    first: dict[date, datetime] = {}
    for delivery in signals.deliveries:
        if delivery.source != source or delivery.created_at is None:
            continue
        for day in delivery.days:
            if _in(day, span):
                first[day] = min(first.get(day, delivery.created_at), delivery.created_at)
    return first


def _source_slis(signals: Signals, slos: SloRules, source: str, span) -> list[Sli]:
    delivered = _first_delivered(signals, source, span)
    loaded = _first_loads(signals.raw_loads.get(source, ()), span)
    sla = timedelta(hours=signals.sla_hours[source])

    def deadline(day: date) -> datetime:  # the day's end (UTC) plus the source's SLA
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + sla

    days = (span[0] + timedelta(days=i) for i in range((span[1] - span[0]).days + 1))
    due = [d for d in days if deadline(d) <= signals.now]
    monitored = bool(delivered or loaded)
    on_time = [d for d in due if d in delivered and delivered[d] <= deadline(d)]
    late = sorted(set(due) - set(on_time))
    rate = len(on_time) / len(due) if (due and monitored) else None
    latencies = {d: loaded[d] - delivered[d] for d in loaded if d in delivered}
    worst = max(latencies, key=lambda d: latencies[d], default=None)
    failures = [f for f in signals.failures if f.source == source]
    causes = Counter(failure_cause(f.message) for f in failures)
    mismatches = [m for m in signals.row_count_mismatches if m.source == source]
    # A day a delivery was loaded for whose newest load wrote no rows: files there, nothing in.
    newest: dict[date, DayEvent] = {}
    for event in signals.raw_loads.get(source, ()):
        if _in(event.day, span) and (event.day not in newest or event.at > newest[event.day].at):
            newest[event.day] = event
    empty = sorted(
        d for d, e in newest.items() if e.rows == 0 and d in delivered and delivered[d] <= e.at
    )
    return [
        Sli(
            source,
            "delivery_success_rate",
            None if rate is None else round(rate, 4),
            slos.delivery_success_rate_min,
            "min",
            f"late or missing: {', '.join(d.isoformat() for d in late[:5])}" if late else "",
        ),
        Sli(
            source,
            "delivery_latency_hours",
            None if worst is None else _hours(latencies[worst]),
            slos.delivery_latency_hours_max,
            "max",
            f"worst day {worst.isoformat()}" if worst else "",
        ),
        Sli(
            source,
            "schema_failures",
            float(len(failures)) if monitored or failures else None,
            slos.schema_failures_max,
            "max",
            ", ".join(f"{cause}: {n}" for cause, n in sorted(causes.items())),
        ),
        Sli(
            source,
            "silent_zero_loads",
            float(len(mismatches) + len(empty)) if monitored or mismatches else None,
            slos.silent_zero_loads_max,
            "max",
            "; ".join(
                [
                    *(
                        f"{m.delivery_id}: manifest {m.declared} rows, loaded {m.loaded}"
                        for m in mismatches[:3]
                    ),
                    *(f"{d.isoformat()}: delivered, loaded 0 rows" for d in empty[:3]),
                ]
            ),
        ),
        Sli(
            source,
            "backfill_backlog",
            float(signals.backlog.get(source, 0)) if monitored else None,
            slos.backfill_backlog_max,
            "max",
        ),
    ]


def _shared_slis(signals: Signals, slos: SloRules, span) -> list[Sli]:
    raw_first = {}
    for events in signals.raw_loads.values():
        for day, at in _first_loads(events, span).items():
            raw_first[day] = max(raw_first.get(day, at), at)  # the last source to arrive
    mart = _first_loads(signals.mart_loads, span)
    mart_lags = {d: mart[d] - raw_first[d] for d in mart if d in raw_first}
    delivered: dict[date, datetime] = {}
    for source in signals.sla_hours:
        for day, at in _first_delivered(signals, source, span).items():
            delivered[day] = max(delivered.get(day, at), at)
    shown = _first_loads(signals.published, span)
    display = {d: shown[d] - delivered[d] for d in shown if d in delivered}
    facts = sum(n for d, n in signals.fact_rows.items() if _in(d, span))
    duplicates = sum(n for d, n in signals.duplicate_rows.items() if _in(d, span))
    overlapping = sorted({d for d in signals.overlapping_days if _in(d, span)})
    shares = {
        currency: (unallocated / total if total else Decimal(0))
        for currency, (unallocated, total) in signals.unallocated.items()
    }
    worst_currency = max(shares, key=lambda c: shares[c], default=None)

    def worst(lags: Mapping[date, timedelta]) -> float | None:
        return _hours(max(lags.values())) if lags else None

    return [
        Sli(ALL, "mart_latency_hours", worst(mart_lags), slos.mart_latency_hours_max, "max"),
        Sli(ALL, "data_to_display_hours", worst(display), slos.data_to_display_hours_max, "max"),
        Sli(
            ALL,
            "duplicate_line_rate",
            round(duplicates / facts, 6) if facts else None,
            slos.duplicate_line_rate_max,
            "max",
            f"{duplicates} of {facts} rows" if duplicates else "",
        ),
        Sli(
            ALL,
            "overlapping_deliveries",
            float(len(overlapping)) if facts else None,
            slos.overlapping_deliveries_max,
            "max",
            ", ".join(d.isoformat() for d in overlapping[:5]),
        ),
        Sli(
            ALL,
            "backfill_backlog",
            float(signals.backlog.get(ALL, 0)) if facts else None,
            slos.backfill_backlog_max,
            "max",
        ),
        Sli(
            ALL,
            "unallocated_share",
            None if worst_currency is None else round(float(shares[worst_currency]), 4),
            slos.unallocated_share_max,
            "max",
            f"worst currency {worst_currency}" if worst_currency else "",
        ),
        Sli(
            ALL,
            "alert_delivery_success",
            (
                round(signals.alerts_delivered / signals.alerts_attempted, 4)
                if signals.alerts_attempted
                else None
            ),
            slos.alert_delivery_success_min,
            "min",
            f"{signals.alerts_delivered} of {signals.alerts_attempted} delivered"
            if signals.alerts_attempted
            else "",
        ),
    ]


def compute(signals: Signals, slos: SloRules) -> list[Sli]:
    """Every indicator of every monitored source and of the shared stages."""
    span = window(signals.now, slos.window_days)
    out: list[Sli] = []
    for source in sorted(signals.sla_hours):
        out += _source_slis(signals, slos, source, span)
    return out + _shared_slis(signals, slos, span)


def breaches(slis: Iterable[Sli]) -> list[Sli]:
    return [s for s in slis if s.breached]
