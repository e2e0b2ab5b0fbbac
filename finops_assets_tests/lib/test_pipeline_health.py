"""lib/pipeline_health on hand-built signals: a clean week breaches nothing, and each fault
breaches exactly its indicator."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from finops_assets.lib import pipeline_health as ph
from finops_assets.lib.rules import SloRules

NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
DAYS = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]  # the window: 3..9 March
SLOS = SloRules()


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def clean() -> ph.Signals:
    """Daily deliveries 4 h after each day ends, loaded 20 min later, rolled up and published."""
    deliveries = [
        ph.DeliverySeen(
            "focus", "focus/aws/aws-focus", f"d{d:%d}", end_of(d) + timedelta(hours=4), (d,)
        )
        for d in DAYS
    ]
    loads = [ph.DayEvent(d, end_of(d) + timedelta(hours=4, minutes=20), 100) for d in DAYS]
    return ph.Signals(
        now=NOW,
        sla_hours={"focus": 24},
        deliveries=deliveries,
        raw_loads={"focus": loads},
        mart_loads=[replace(e, at=e.at + timedelta(minutes=5)) for e in loads],
        published=[replace(e, at=e.at + timedelta(minutes=6)) for e in loads],
        fact_rows={d: 100 for d in DAYS},
        unallocated={"USD": (Decimal("10"), Decimal("100")), "EUR": (Decimal("1"), Decimal("50"))},
        alerts_attempted=2,
        alerts_delivered=2,
    )


def breached(signals: ph.Signals) -> set[tuple[str, str]]:
    return {(s.source, s.name) for s in ph.breaches(ph.compute(signals, SLOS))}


def test_a_clean_week_breaches_nothing_and_measures_everything():
    slis = {(s.source, s.name): s for s in ph.compute(clean(), SLOS)}
    assert ph.breaches(slis.values()) == []
    assert slis["focus", "delivery_success_rate"].value == 1.0
    assert slis["focus", "delivery_latency_hours"].value == 0.33
    assert slis["all", "mart_latency_hours"].value == 0.08
    assert slis["all", "data_to_display_hours"].value == 0.43
    assert slis["all", "unallocated_share"].value == 0.1  # USD; EUR is 2%
    assert slis["all", "alert_delivery_success"].value == 1.0
    assert slis["all", "duplicate_line_rate"].value == 0


def test_a_30_hour_late_delivery_misses_its_deadline():
    signals = clean()
    late = DAYS[2]
    signals.deliveries = [
        replace(d, created_at=end_of(late) + timedelta(hours=30)) if d.days == (late,) else d
        for d in signals.deliveries
    ]
    signals.raw_loads = {
        "focus": [
            replace(e, at=end_of(late) + timedelta(hours=30, minutes=20)) if e.day == late else e
            for e in signals.raw_loads["focus"]
        ]
    }
    loads = signals.raw_loads["focus"]
    signals.mart_loads = [replace(e, at=e.at + timedelta(minutes=5)) for e in loads]
    signals.published = [replace(e, at=e.at + timedelta(minutes=6)) for e in loads]
    # Loaded and shown promptly once it came: only the cadence is broken.
    assert breached(signals) == {("focus", "delivery_success_rate")}
    (rate,) = [s for s in ph.compute(signals, SLOS) if s.name == "delivery_success_rate"]
    # Due: 3..8 March (9 March has until 11 March 00:00); 5 of the 6 came on time.
    assert rate.value == round(5 / 6, 4) and "2025-03-05" in rate.detail


def test_a_day_nothing_delivered_counts_as_missed():
    signals = clean()
    signals.deliveries = [d for d in signals.deliveries if d.days != (DAYS[0],)]
    assert ("focus", "delivery_success_rate") in breached(signals)


def test_each_fault_breaches_its_indicator():
    missing_column = "focus/x.csv: missing mandatory FOCUS column(s) BilledCost"
    cases = [
        (("all", "duplicate_line_rate"), {"duplicate_rows": {DAYS[1]: 10}}),
        (("all", "overlapping_deliveries"), {"overlapping_days": [DAYS[4]]}),
        (("focus", "schema_failures"), {"failures": [ph.Failure("focus", missing_column, NOW)]}),
        (
            ("focus", "silent_zero_loads"),
            {"row_count_mismatches": [ph.RowCountMismatch("focus", "d1", 120, 100)]},
        ),
        # Delivered, then a later load of the same day that wrote nothing.
        (
            ("focus", "silent_zero_loads"),
            {
                "raw_loads": {
                    "focus": [
                        *clean().raw_loads["focus"],
                        ph.DayEvent(DAYS[2], NOW - timedelta(hours=1), 0),
                    ]
                }
            },
        ),
        (("focus", "backfill_backlog"), {"backlog": {"focus": 2}}),
        (("all", "unallocated_share"), {"unallocated": {"USD": (Decimal(30), Decimal(100))}}),
        (("all", "alert_delivery_success"), {"alerts_attempted": 3, "alerts_delivered": 2}),
        (
            ("all", "mart_latency_hours"),
            {"mart_loads": [ph.DayEvent(d, end_of(d) + timedelta(hours=20)) for d in DAYS]},
        ),
    ]
    for expected, change in cases:
        assert breached(replace(clean(), **change)) == {expected}, expected


def test_failures_are_counted_by_cause():
    assert ph.failure_cause("x.csv: missing mandatory FOCUS column(s) BilledCost") == (
        "missing column"
    )
    assert ph.failure_cause("column EffectiveCost has 1 value(s) that are not a number") == (
        "bad value"
    )
    assert ph.failure_cause("x.parquet: cannot read Parquet file") == "unreadable file"
    assert ph.failure_cause("3 contract violation(s) in 10 rows") == "contract"
    assert ph.failure_cause("disk full") == "other"
    signals = replace(
        clean(),
        failures=[
            ph.Failure("focus", "missing mandatory FOCUS column(s) BilledCost", NOW),
            ph.Failure("focus", "value(s) that are not a number", NOW),
            ph.Failure("focus", "missing mandatory FOCUS column(s) ChargePeriodStart", NOW),
        ],
    )
    (sli,) = [s for s in ph.compute(signals, SLOS) if s.name == "schema_failures"]
    assert sli.value == 3 and sli.detail == "bad value: 1, missing column: 2"


def test_nothing_to_measure_never_breaches():
    quiet = ph.Signals(now=NOW, sla_hours={"focus": 24})
    slis = ph.compute(quiet, SLOS)
    assert ph.breaches(slis) == []
    assert all(s.value is None for s in slis)
