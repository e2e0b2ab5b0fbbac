"""Monitors over an allocated-costs table: series per key and currency, completeness per source,
the charge-category rules and root causes (lib/monitors.py, lib/completeness.py)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pytest

from finops_assets.lib import anomalies as an
from finops_assets.lib.monitors import (
    KIND_CORRECTION,
    KIND_CREDIT,
    KIND_NEW,
    KIND_SPIKE,
    run_monitors,
)
from finops_assets.lib.rules import AnomalyRules, CompletenessRules
from finops_assets_tests.insights import synthetic

START = date(2026, 1, 1)
DAYS = 150
END = START + timedelta(days=DAYS - 1)
TABLE = "allocated"


def frame(rng, spikes=(), extra=()):
    return synthetic.frame(rng, START, DAYS, spikes, extra)


def warehouse(rows):
    con = duckdb.connect()
    synthetic.create_table(con, TABLE, rows)
    return con


def run(con, write_start=START + timedelta(days=100), through=END, rules=None):
    return run_monitors(
        con, rules or AnomalyRules(), CompletenessRules(), TABLE, write_start, through
    )


def events_of(result, monitor=None, kind=None):
    return [
        e
        for e in result.events
        if (monitor is None or e.series.monitor == monitor) and (kind is None or e.kind == kind)
    ]


def test_a_spike_is_one_event_per_monitor_with_its_resource_as_root_cause():
    at = 120
    con = warehouse(frame(np.random.default_rng(1), spikes=[(at, "i-pay-1", 2500.0)]))
    result = run(con)
    spikes = [e for e in result.events if e.kind == KIND_SPIKE]
    monitors = sorted(e.series.monitor for e in spikes)
    assert monitors == ["service_category", "sub_account", "team", "team_service", "total"], [
        (e.series.label, e.start, e.kind) for e in result.events
    ]
    day = START + timedelta(days=at)
    for e in spikes:
        assert e.start == e.end == day
        assert e.impact == pytest.approx(2500, rel=0.1)
    team = next(e for e in spikes if e.series.monitor == "team")
    assert team.series.key == {"team": "payments"} and team.series.currency == "USD"
    top = max(team.root_causes, key=lambda c: c["change"])
    assert top["value"] in ("i-pay-1", "Amazon EC2") and top["share"] == pytest.approx(1, abs=0.1)
    assert {c["value"] for c in team.root_causes if c["dimension"] == "ResourceId"} >= {"i-pay-1"}
    # The id is stable: scoring again, or in a run that starts elsewhere, finds the same event.
    again = run(con, write_start=START + timedelta(days=110))
    assert {e.anomaly_id for e in again.events} == {e.anomaly_id for e in result.events}
    # Day rows: the spike day carries the event id; every day of the written range is there.
    days = result.day_rows().to_pylist()
    marked = [r for r in days if r["anomaly_id"] == team.anomaly_id]
    assert [(r["charge_date"], r["monitor"]) for r in marked] == [(day, "team")]
    assert min(r["charge_date"] for r in days) == START + timedelta(days=100)


def test_currencies_are_separate_series_and_never_summed():
    con = warehouse(frame(np.random.default_rng(2)))
    result = run(con)
    totals = [r for r in result.results if r.series.monitor == "total"]
    assert sorted(r.series.currency for r in totals) == ["EUR", "USD"]
    eur = next(r for r in totals if r.series.currency == "EUR")
    assert eur.series.usage.max() < 600  # only the EUR line, never USD added in


def test_newest_days_are_incomplete_per_source_and_never_alert():
    # A huge spike on the newest day: AWS's newest day is still filling in (settle 1 day).
    con = warehouse(frame(np.random.default_rng(3), spikes=[(DAYS - 1, "i-pay-1", 9000.0)]))
    result = run(con)
    assert not events_of(result, kind=KIND_SPIKE)
    rows = result.day_rows().to_pylist()
    last = [r for r in rows if r["charge_date"] == END and r["monitor"] == "team"]
    by_team = {r["series"]: r for r in last}
    assert by_team["team=payments"]["status"] == an.INCOMPLETE
    assert "aws_cur delivered through 2026-05-30" in by_team["team=payments"]["waiting_on"]
    # Azure settles over two days: the EUR series is incomplete on the last two days.
    eur = [r for r in rows if r["monitor"] == "total" and r["BillingCurrency"] == "EUR"]
    assert [r["status"] for r in eur[-3:]][1:] == [an.INCOMPLETE, an.INCOMPLETE]
    assert eur[-3]["status"] != an.INCOMPLETE


def test_a_late_source_holds_back_only_the_series_it_feeds():
    rows = [
        r
        for r in frame(np.random.default_rng(4))
        if not (r[4] == "gcp_billing" and r[0] > END - timedelta(days=5))
    ]
    con = warehouse(rows)
    result = run(con)
    day = END - timedelta(days=2)
    team_rows = {
        (r["series"], r["BillingCurrency"]): r
        for r in result.day_rows().to_pylist()
        if r["charge_date"] == day and r["monitor"] == "team"
    }
    assert team_rows[("team=payments", "USD")]["status"] == an.OK
    held = team_rows[("team=search", "USD")]
    assert held["status"] == an.INCOMPLETE and "gcp_billing" in held["waiting_on"]


def test_a_month_start_purchase_is_not_an_anomaly_and_a_new_service_is_new_spend():
    purchases = [
        (date(2026, m, 1), "USD", 20000.0, "Purchase", "aws_cur", "payments", "Savings Plans", "sp")
        for m in (2, 3, 4, 5)
    ]
    at = 125
    new = [
        (
            START + timedelta(days=i),
            "USD",
            400.0,
            "Usage",
            "aws_cur",
            "payments",
            "Amazon Bedrock",
            "model-1",
        )
        for i in range(at, DAYS)
    ]
    con = warehouse(frame(np.random.default_rng(5), extra=purchases + new))
    result = run(con)
    assert not [e for e in result.events if e.start.day == 1 and e.kind == KIND_SPIKE]
    fresh = events_of(result, monitor="team_service", kind=KIND_NEW)
    assert [(e.series.key["ServiceName"], e.start) for e in fresh] == [
        ("Amazon Bedrock", START + timedelta(days=at))
    ]
    assert fresh[0].status == an.LEVEL_SHIFT  # spent every day since: a new normal, alerted once


def test_a_credit_that_stops_is_an_anomaly_and_a_large_correction_is_reported():
    stop = 118
    credits = [
        (
            START + timedelta(days=i),
            "USD",
            -250.0,
            "Credit",
            "aws_cur",
            "payments",
            "Amazon EC2",
            "i-pay-1",
        )
        for i in range(0, stop)
    ] + [  # a second credit that goes on: the root cause is the one that stopped
        (
            START + timedelta(days=i),
            "USD",
            -40.0,
            "Credit",
            "aws_cur",
            "payments",
            "Amazon S3",
            "pay-bucket",
        )
        for i in range(0, DAYS)
    ]
    correction = [
        (
            START + timedelta(days=130),
            "USD",
            -1800.0,
            "Adjustment",
            "aws_cur",
            "payments",
            "Amazon EC2",
            "i-pay-1",
        )
    ]
    con = warehouse(frame(np.random.default_rng(6), extra=credits + correction))
    result = run(con)
    lost = events_of(result, monitor="team", kind=KIND_CREDIT)
    assert len(lost) == 1 and lost[0].start == START + timedelta(days=stop)
    assert lost[0].status == an.LEVEL_SHIFT and lost[0].impact == pytest.approx(250 * 5)
    top = max(lost[0].root_causes, key=lambda c: c["change"])
    assert top["value"] in ("Amazon EC2", "i-pay-1") and top["share"] == pytest.approx(1)
    fixes = events_of(result, monitor="team", kind=KIND_CORRECTION)
    assert [(e.start, e.impact) for e in fixes] == [(START + timedelta(days=130), -1800.0)]


def test_root_causes_measure_a_monday_against_mondays():
    """A batch job that runs only on weekdays is no cause of a Monday spike: against the 28-day
    mean (weekends at zero) it looked 171 USD up every weekday."""
    monday = START + timedelta(days=123)
    assert monday.weekday() == 0
    batch = [
        (day, "USD", 600.0, "Usage", "aws_cur", "payments", "AWS Batch", "batch-1")
        for day in (START + timedelta(days=i) for i in range(DAYS))
        if day.weekday() < 5
    ]
    con = warehouse(frame(np.random.default_rng(3), spikes=[(123, "i-pay-1", 2500.0)], extra=batch))
    result = run(con)
    team = next(e for e in result.events if e.kind == KIND_SPIKE and e.series.monitor == "team")
    assert team.start == monday
    resources = {c["value"]: c for c in team.root_causes if c["dimension"] == "ResourceId"}
    assert "batch-1" not in resources, resources
    assert resources["i-pay-1"]["change"] == pytest.approx(2500, rel=0.05)
