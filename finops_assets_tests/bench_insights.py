"""`make bench-insights`: anomaly detection measured on a seeded, labelled generator.

Our model (``lib/anomalies.py``: weekday-adjusted median/MAD baseline over 8 weeks, three gates,
complete days only, level shifts adopted) against two plain baselines run on the same series in
the same command: a 30-day rolling z-score at 2.5σ, and the "1.25× mean and +$20 and p > 0.995"
three-gate rule. The baselines are run twice: on the usage series as delivered (they cannot know
which days are complete) and on total cost (purchases and credits included, as a tool scoring
everything sees it).

An alert is a run of consecutive flagged days (one notification). It is a true positive when it
overlaps a labelled spike, or starts within the first days of a labelled level shift; every other
alert is a false positive. Recall counts the labelled anomalies some alert overlaps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from finops_assets.lib.anomalies import (
    AnomalyModel,
    flagged_events,
    rolling_zscore_flags,
    score_series,
    three_gate_flags,
)
from finops_assets.samples.insights import LabelledSeries, labelled_series

# The same model at stricter z gates: the precision it reaches while recall stays >= 0.85.
SWEEP_Z = (3.0, 3.5)


@dataclass
class Score:
    alerts: int = 0
    true_alerts: int = 0
    labelled: int = 0
    found: int = 0
    alerts_on_incomplete_days: int = 0
    shift_alerts: int = 0  # alerts in a level shift's first 60 days, other than labelled spikes
    shifts: int = 0

    @property
    def false_positives(self) -> int:
        return self.alerts - self.true_alerts

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "false_positives": self.false_positives,
            "precision": self.precision,
            "recall": self.recall,
        }


def grade(series: LabelledSeries, alerts: list[tuple[int, int]], score: Score, grace: int) -> None:
    """Add one series' alerts (index ranges) to ``score``."""
    labelled = series.spikes + [(i, i + grace) for i in series.level_shifts]
    hit = [False] * len(labelled)
    for first, last in alerts:
        score.alerts += 1
        if not series.complete[first]:
            score.alerts_on_incomplete_days += 1
        matches = [k for k, (a, b) in enumerate(labelled) if first <= b and last >= a]
        # A level shift's alert must start inside its grace days, not merely overlap the new normal.
        matches = [k for k in matches if k < len(series.spikes) or first <= labelled[k][1]]
        if matches:
            score.true_alerts += 1
            for k in matches:
                hit[k] = True
        spike = any(k < len(series.spikes) for k in matches)
        for at in series.level_shifts:
            if at <= first < at + 60 and not spike:
                score.shift_alerts += 1
    score.labelled += len(labelled)
    score.found += sum(hit)
    score.shifts += len(series.level_shifts)


def ours(series: LabelledSeries, model: AnomalyModel) -> list[tuple[int, int]]:
    _scores, events = score_series(series.days, series.usage, series.complete, model)
    index = {d: i for i, d in enumerate(series.days)}
    return [(index[e.start], index[e.end]) for e in events]


def _with(model: AnomalyModel):
    return lambda s: ours(s, model)


def run(seed: int, count: int, days: int) -> dict:
    model = AnomalyModel()
    series = labelled_series(seed, count, days)
    detectors = {
        "ours (usage, complete days)": lambda s: ours(s, model),
        **{f"ours at z >= {m.z:g}": _with(m) for m in (replace(model, z=z) for z in SWEEP_Z)},
        "rolling z-score 30d 2.5σ (usage)": lambda s: flagged_events(rolling_zscore_flags(s.usage)),
        "three-gate 1.25×/+$20/p>0.995 (usage)": lambda s: flagged_events(
            three_gate_flags(s.usage)
        ),
        "rolling z-score 30d 2.5σ (total)": lambda s: flagged_events(rolling_zscore_flags(s.total)),
        "three-gate 1.25×/+$20/p>0.995 (total)": lambda s: flagged_events(
            three_gate_flags(s.total)
        ),
    }
    results = {}
    for name, detect in detectors.items():
        score = Score()
        started = time.perf_counter()
        for s in series:
            grade(s, detect(s), score, grace=model.level_shift_days)
        results[name] = {**score.as_dict(), "seconds": time.perf_counter() - started}
    return {
        "seed": seed,
        "series": count,
        "days": days,
        "series_days": int(sum(len(s.days) for s in series)),
        "model": model.__dict__,
        "detectors": results,
    }


def report(figures: dict) -> str:
    lines = [
        f"## Anomalies: {figures['series']} labelled series × {figures['days']} days "
        f"(seed {figures['seed']}, {figures['series_days']:,} series-days)",
        f"{'detector':<42}{'alerts':>8}{'FP':>7}{'precision':>11}{'recall':>8}"
        f"{'on incomplete':>15}{'per shift':>11}{'seconds':>9}",
    ]
    ours_fp = None
    for name, r in figures["detectors"].items():
        per_shift = r["shift_alerts"] / r["shifts"] if r["shifts"] else float("nan")
        lines.append(
            f"{name:<42}{r['alerts']:>8}{r['false_positives']:>7}{r['precision']:>11.3f}"
            f"{r['recall']:>8.3f}{r['alerts_on_incomplete_days']:>15}{per_shift:>11.2f}"
            f"{r['seconds']:>9.2f}"
        )
        if ours_fp is None:
            ours_fp = r["false_positives"]
    for name, r in list(figures["detectors"].items())[1 + len(SWEEP_Z) :]:
        ratio = r["false_positives"] / max(ours_fp, 1)
        lines.append(f"false positives of {name} / ours: {ratio:.1f}x (target >= 2x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--json", type=Path, default=Path("bench-insights.json"))
    args = parser.parse_args(argv)
    figures = run(args.seed, args.series, args.days)
    print(report(figures), flush=True)
    args.json.write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
