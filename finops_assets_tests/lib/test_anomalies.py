"""lib/anomalies.py on hand-made series: weekday shape, growth, spikes, gates, incomplete days,
level shifts; and the labelled generator the benchmark uses."""

from datetime import date, timedelta

import numpy as np
import pytest

from finops_assets.lib.anomalies import (
    ANOMALY,
    CLOSED,
    INCOMPLETE,
    INSUFFICIENT,
    LEVEL_SHIFT,
    OK,
    AnomalyModel,
    flagged_events,
    rolling_zscore_flags,
    score_series,
    three_gate_flags,
)
from finops_assets.samples.insights import labelled_series
from finops_assets_tests.bench_insights import Score, grade

START = date(2025, 1, 6)  # a Monday
WEEK = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.6])  # quiet weekends


def series(n: int = 140, level: float = 1000.0, noise: float = 0.02, growth: float = 0.0, seed=1):
    rng = np.random.default_rng(seed)
    days = [START + timedelta(days=i) for i in range(n)]
    values = (
        level
        * WEEK[[d.weekday() for d in days]]
        * np.exp(growth * np.arange(n))
        * np.exp(rng.normal(0, noise, n))
    )
    return days, values, [True] * n


def test_weekends_and_noise_alone_raise_nothing():
    days, values, complete = series()
    scores, events = score_series(days, values, complete)
    assert events == []
    assert [s.status for s in scores[:28]] == [INSUFFICIENT] * 28
    assert {s.status for s in scores[28:]} == {OK}
    # Saturday is expected at the weekend level, not at Friday's.
    saturday = next(s for s in scores[28:] if s.day.weekday() == 5)
    assert saturday.expected == pytest.approx(600, rel=0.05)


def test_growth_of_four_percent_a_month_is_not_an_anomaly():
    days, values, complete = series(n=240, growth=0.04 / 30)
    assert score_series(days, values, complete)[1] == []


def test_a_two_day_spike_is_one_event_with_its_impact():
    days, values, complete = series()
    values[80:82] *= 2.0
    scores, events = score_series(days, values, complete)
    (event,) = events
    assert (event.start, event.end, event.days) == (days[80], days[81], 2)
    assert event.status == CLOSED
    assert event.impact == pytest.approx(values[80:82].sum() / 2, rel=0.1)
    assert event.score >= 2.5
    assert [s.status for s in scores[79:83]] == [OK, ANOMALY, ANOMALY, OK]


def test_a_spike_below_the_currency_floor_or_the_percentage_is_not_raised():
    days, values, complete = series(level=60.0)
    values[80] *= 2.0  # +$60: far beyond the noise, under the $100 floor
    assert score_series(days, values, complete)[1] == []
    days, values, complete = series(noise=0.005)
    values[80] *= 1.1  # 20σ, but only 10% over normal
    assert score_series(days, values, complete)[1] == []
    model = AnomalyModel(min_impact=50, min_pct=0.05)  # a monitor tuned lower raises both
    assert len(score_series(days, values, complete, model)[1]) == 1


def test_incomplete_days_are_never_scored_nor_in_the_baseline():
    days, values, complete = series()
    complete = list(complete)
    for i in (80, 81, 139):
        values[i] *= 3.0  # a delivery still being restated reads high
        complete[i] = False
    scores, events = score_series(days, values, complete)
    assert events == []
    assert [scores[i].status for i in (80, 81, 139)] == [INCOMPLETE] * 3
    assert scores[80].expected is None and scores[80].z is None


def test_a_level_shift_alerts_once_and_becomes_the_new_normal():
    days, values, complete = series(n=200)
    values[90:] *= 1.6
    scores, events = score_series(days, values, complete)
    (event,) = events
    assert event.start == days[90] and event.status == LEVEL_SHIFT
    assert event.days == AnomalyModel().level_shift_days
    assert {s.status for s in scores[96:]} == {OK}
    assert scores[150].expected == pytest.approx(1600 * WEEK[days[150].weekday()], rel=0.05)


def test_a_quiet_day_inside_a_step_does_not_split_it():
    days, values, complete = series(n=200)
    values[90:] *= 1.6
    values[93] /= 1.6  # one ordinary day three days into the new level
    events = score_series(days, values, complete)[1]
    assert [e.status for e in events] == [LEVEL_SHIFT]


def test_inputs_must_line_up():
    with pytest.raises(ValueError):
        score_series([START], [1.0, 2.0], [True])


def test_the_plain_baselines_flag_an_obvious_spike():
    _, values, _ = series()
    values[80] *= 3
    assert (80, 80) in flagged_events(rolling_zscore_flags(values))
    assert (80, 80) in flagged_events(three_gate_flags(values))
    assert flagged_events(np.array([False, True, True, False, True])) == [(1, 2), (4, 4)]


def test_generator_is_seeded_and_its_labels_are_material():
    a, b = labelled_series(7, 20), labelled_series(7, 20)
    assert all(np.array_equal(x.usage, y.usage) for x, y in zip(a, b, strict=True))
    assert any(s.level_shifts for s in a) and any(s.spikes for s in a)
    for s in a:
        assert not s.complete[-2:].any()  # the last two days are never complete
        for first, last in s.spikes:
            assert 56 <= first <= last < len(s.days)
            assert s.complete[first : last + 1].all()


def test_grading_counts_true_and_false_alerts():
    (s,) = labelled_series(3, 1)
    s.spikes, s.level_shifts = [(100, 101)], [200]
    score = Score()
    grade(s, [(101, 101), (150, 150), (202, 203), (230, 230)], score, grace=5)
    assert (score.alerts, score.true_alerts, score.false_positives) == (4, 2, 2)
    assert (score.labelled, score.found, score.shift_alerts) == (2, 2, 2)


def test_bench_insights_reports_every_detector_on_the_same_series():
    from finops_assets_tests.bench_insights import report, run

    figures = run(seed=5, count=12, days=200)
    assert len(figures["detectors"]) == 8
    pipeline = figures["detectors"]["pipeline: insights/anomalies, one run"]
    # The same series through the asset: the same labels, every day of every series written.
    assert pipeline["labelled"] == figures["detectors"]["ours (usage, complete days)"]["labelled"]
    # Every series on every day (zero before a late series starts), and the 7 days before day 1.
    assert pipeline["day_rows"] == 12 * (200 + 7)
    assert pipeline["alerts_on_incomplete_days"] == 0 and pipeline["recall"] > 0.5
    # Forecasts (both bases) and one budget per series, for every day, through their assets.
    assert pipeline["forecast_rows"] == 12 * 200 * 2
    assert pipeline["budget_rows"] == 12 * 200 and pipeline["budget_seconds"] > 0
    forecasts = figures["forecasts"]
    assert forecasts["ours"]["day_10"]["forecasts"] > 0
    assert 0 <= forecasts["ours"]["coverage"]["day_20"] <= 1
    ours = figures["detectors"]["ours (usage, complete days)"]
    assert ours["alerts_on_incomplete_days"] == 0
    assert {r["labelled"] for r in figures["detectors"].values()} == {ours["labelled"]}
    assert "false positives of" in report(figures)
