"""A seeded, labelled generator of daily spend series for measuring anomaly detection.

Each series is one monitor's day-by-day spend in one currency, shaped like real cloud cost: a
level between $80 and $8,000 a day, a weekly shape (quieter weekends), growth of 0-4% a month,
multiplicative noise of 3-8%, and what makes detection hard:

- **spikes** of 1-3 days and several sizes, every one of them material (above the default gates:
  at least $100 and 25% over normal, and well clear of the noise): the labelled anomalies;
- **level shifts**, a permanent step up: labelled once, on their first day (alerting every day of
  the new normal is a false alarm);
- **incomplete days**: the last two days of the series and about 2% of the others were not fully
  delivered when scored, and read low or, while a provider is still restating them, high;
- **month-start purchases** (commitments bought on the 1st) and **monthly credits**: charges of
  their own that a tool scoring total cost sees and a usage score does not;
- **new services**: a fifth of the series start late in the year.

``usage`` is what the pipeline scores (EffectiveCost of Usage rows, as delivered so far);
``total`` is what a tool scoring everything sees. No clock, no files: a seed gives the same series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np


@dataclass
class LabelledSeries:
    name: str
    days: list[date]
    usage: np.ndarray
    total: np.ndarray
    complete: np.ndarray
    spikes: list[tuple[int, int]] = field(default_factory=list)  # (first, last) index, labelled
    # Usage once every day is final (what the warehouse holds after the provider settled; the
    # days ``complete`` marks incomplete read differently in ``usage``).
    final: np.ndarray | None = None
    # The charges a usage score leaves out, per day: one-time purchases (positive) and monthly
    # recurring credits (positive amounts, subtracted from total).
    purchases: np.ndarray | None = None
    credits: np.ndarray | None = None
    # Usage without the injected spikes and level shifts: what a budget is planned on.
    normal: np.ndarray | None = None
    level_shifts: list[int] = field(default_factory=list)  # index of the first shifted day

    @property
    def labelled(self) -> list[tuple[int, int]]:
        """Every labelled anomaly as an index range: spikes, and each shift's first day."""
        return [*self.spikes, *((i, i) for i in self.level_shifts)]


def labelled_series(
    seed: int, count: int, days: int = 365, start: date = date(2025, 1, 1)
) -> list[LabelledSeries]:
    rng = np.random.default_rng(seed)
    return [_one(rng, f"series-{k:04d}", days, start) for k in range(count)]


def _one(rng: np.random.Generator, name: str, days: int, start: date) -> LabelledSeries:
    first = int(rng.integers(60, days - 90)) if rng.random() < 0.2 else 0  # a new service
    dates = [start + timedelta(days=i) for i in range(first, days)]
    n = len(dates)
    level = float(np.exp(rng.uniform(np.log(80), np.log(8000))))
    weekend = rng.uniform(0.55, 0.95)
    profile = np.array([*rng.uniform(0.95, 1.05, 5), weekend, weekend * rng.uniform(0.9, 1.1)])
    growth = rng.uniform(0.0, 0.04) / 30
    noise = rng.uniform(0.03, 0.08)
    t = np.arange(n)
    normal = (
        level
        * profile[[d.weekday() for d in dates]]
        * np.exp(growth * t)
        * np.exp(rng.normal(0, noise, n))
    )
    usage = normal.copy()
    taken = np.zeros(n, dtype=bool)
    series = LabelledSeries(name, dates, usage, usage, np.ones(n, dtype=bool))
    series.normal = normal.copy()
    # A level shift in about a third of the series, not in the first or last ten weeks.
    if n > 200 and rng.random() < 0.33:
        at = int(rng.integers(70, n - 70))
        step = rng.uniform(0.4, 0.9)
        usage[at:] *= 1 + step
        taken[at - 7 : at + 21] = True
        series.level_shifts.append(at)
    # About four spikes a year, after the first eight weeks (the baseline must exist).
    for _ in range(int(rng.poisson(4 * n / 365))):
        length = int(rng.integers(1, 4))
        at = int(rng.integers(56, n - length))
        if taken[max(0, at - 10) : at + length + 10].any():
            continue
        size = float(rng.choice([0.35, 0.6, 1.0, 2.5]))
        # Material: clear of the noise and of both default gates ($100, 25%).
        size = max(size, 6 * noise, 1.5 * 100 / (level * min(profile)))
        usage[at : at + length] *= 1 + size
        taken[at - 3 : at + length + 3] = True
        series.spikes.append((at, at + length - 1))
    # Incomplete days: the last two, and about 2% of the others (never a labelled day).
    complete = np.ones(n, dtype=bool)
    complete[-2:] = False
    for i in np.flatnonzero(rng.random(n) < 0.02):
        if not taken[i]:
            complete[i] = False
    series.final = usage.copy()
    reported = usage.copy()
    for i in np.flatnonzero(~complete):
        # Mostly partial; now and then double-counted while a restatement is in flight.
        reported[i] *= rng.uniform(1.3, 1.8) if rng.random() < 0.3 else rng.uniform(0.3, 0.8)
    # Charges a usage score leaves out: purchases on the 1st, monthly credits.
    total = reported.copy()
    buys = rng.random() < 0.4
    credits = rng.random() < 0.3
    series.purchases, series.credits = np.zeros(n), np.zeros(n)
    for i, d in enumerate(dates):
        if d.day == 1 and buys and rng.random() < 0.5:
            series.purchases[i] = level * rng.uniform(5, 20)
            total[i] += series.purchases[i]
        if d.day == 1 and credits:
            series.credits[i] = level * rng.uniform(0.5, 2)
            total[i] -= series.credits[i]
    series.usage, series.total, series.complete = reported, total, complete
    return series
