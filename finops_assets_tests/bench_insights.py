"""`make bench-insights`: anomaly detection measured on a seeded, labelled generator.

Our model (``lib/anomalies.py``: weekday-adjusted median/MAD baseline over 8 weeks, three gates,
complete days only, level shifts adopted) against two plain baselines run on the same series in
the same command: a 30-day rolling z-score at 2.5σ, and the "1.25× mean and +$20 and p > 0.995"
three-gate rule. The baselines are run twice: on the usage series as delivered (they cannot know
which days are complete) and on total cost (purchases and credits included, as a tool scoring
everything sees it).

The same series then go through the pipeline: written as rows of ``core.allocated_costs`` (usage,
plus the purchases and credits of the 1st) in a DuckDB file and scored by materializing
``insights/anomalies`` for the whole year in one Dagster run, with one monitor whose series are
the generated ones. Completeness there comes from the warehouse, as in production: the source's
newest two days are still settling. Its events are graded like the model's, and its time is the
"a year of daily history over 1,000 monitor series" figure.

An alert is a run of consecutive flagged days (one notification). It is a true positive when it
overlaps a labelled spike, or starts within the first days of a labelled level shift; every other
alert is a false positive. Recall counts the labelled anomalies some alert overlaps.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from finops_assets.lib.anomalies import (
    AnomalyModel,
    flagged_events,
    rolling_zscore_flags,
    score_series,
    three_gate_flags,
)
from finops_assets.lib.forecasts import (
    ForecastModel,
    forecast_period,
    month_bounds,
    ols_iqr_forecast,
    run_rate_forecast,
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


def allocated_rows(series: list[LabelledSeries]) -> pa.Table:
    """The series as core.allocated_costs rows: usage as final in the warehouse (the newest two
    days as delivered so far), and the difference to total cost as Purchase or Credit rows."""
    columns: dict[str, list] = {
        k: [] for k in ("charge_date", "EffectiveCost", "ChargeCategory", "team", "ResourceId")
    }
    for s in series:
        usage = s.final.copy()
        usage[-2:] = s.usage[-2:]
        other = s.total - s.usage
        for i, day in enumerate(s.days):
            columns["charge_date"].append(day)
            columns["EffectiveCost"].append(round(float(usage[i]), 2))
            columns["ChargeCategory"].append("Usage")
            columns["team"].append(s.name)
            columns["ResourceId"].append(f"{s.name}-r1")
            if abs(other[i]) > 0.005:
                columns["charge_date"].append(day)
                columns["EffectiveCost"].append(round(float(other[i]), 2))
                columns["ChargeCategory"].append("Purchase" if other[i] > 0 else "Credit")
                columns["team"].append(s.name)
                columns["ResourceId"].append(f"{s.name}-commitment")
    return pa.table(columns)


def through_pipeline(series: list[LabelledSeries], model: AnomalyModel, workdir: Path) -> dict:
    """Materialize insights/anomalies for every day of the series in one run; grade its events."""
    import dagster as dg
    import duckdb

    from finops_assets.definitions import build_defs
    from finops_assets.lib.rules import default_rules_path
    from finops_assets.settings import Settings

    first = min(s.days[0] for s in series)
    last = max(s.days[-1] for s in series)
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.register("rows", allocated_rows(series))
        con.execute("CREATE SCHEMA core")
        con.execute(
            "CREATE TABLE core.allocated_costs AS SELECT charge_date, 'USD' AS BillingCurrency, "
            "CAST(EffectiveCost AS DECIMAL(18, 6)) AS EffectiveCost, ChargeCategory, "
            "'focus' AS x_Source, team, 'Generated' AS ServiceName, 'Compute' AS "
            "ServiceCategory, 'acct-1' AS SubAccountId, 'us-east-1' AS RegionId, ResourceId, "
            "CAST(EffectiveCost AS DECIMAL(18, 6)) AS BilledCost, 'Cloud' AS ProviderName, "
            "'cc-1' AS cost_center, '{}' AS Tags, CAST(NULL AS VARCHAR) AS x_AmortizationClass, "
            "CASE ChargeCategory WHEN 'Purchase' THEN 'One-Time' WHEN 'Credit' THEN 'Recurring' "
            "ELSE 'Usage-Based' END AS ChargeFrequency FROM rows"
        )
        rows = con.execute("SELECT count(*) FROM core.allocated_costs").fetchall()[0][0]
    rules = yaml.safe_load(default_rules_path().read_text())
    rules["anomalies"]["monitors"] = [{"name": "series", "by": ["team"]}]
    rules["completeness"]["settle_days"] = {"focus": 2}
    rules["forecasts"] = {"scopes": [{"name": "series", "by": ["team"]}]}
    # One monthly budget per series, about 10% above its median month.
    rules["budgets"] = [
        {
            "name": f"budget-{s.name}",
            "scope": {"team": s.name},
            "amount": round(float(np.median(s.usage)) * 30 * 1.1, 2),
            "currency": "USD",
        }
        for s in series
    ]
    config = workdir / "rules.yaml"
    config.write_text(yaml.safe_dump(rules))
    defs = build_defs(
        Settings(
            landing_url=str(workdir / "landing"),
            warehouse=str(warehouse),
            start_date=first.isoformat(),
            config_path=str(config),
        )
    )
    job = defs.resolve_implicit_global_asset_job_def()

    def timed_run(*key: str) -> float:
        """One run of the asset over every day, on a fresh instance: its seconds."""
        started = time.perf_counter()
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat(),
                },
                asset_selection=[dg.AssetKey(list(key))],
                raise_on_error=True,
            )
        assert result.success
        return time.perf_counter() - started

    seconds = timed_run("insights", "anomalies")
    forecast_seconds = timed_run("insights", "forecasts")
    budget_seconds = timed_run("insights", "budget_status")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        events = con.execute(
            "SELECT series, kind, start_date, end_date FROM insights.anomalies"
        ).fetchall()
        forecast_rows = con.execute("SELECT count(*) FROM insights.forecasts").fetchall()[0][0]
        budget_rows = con.execute("SELECT count(*) FROM insights.budget_status").fetchall()[0][0]
        scored = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'incomplete' AND charge_date >= ?) "
            "FROM insights.anomaly_days",
            [last - timedelta(days=1)],
        ).fetchall()[0]
    by_name = {s.name: s for s in series}
    alerts: dict[str, list[tuple[int, int]]] = {s.name: [] for s in series}
    other_kinds = 0
    new_services = {s.name for s in series if s.days[0] > first}
    new_found = set()
    for label, kind, start, end in events:
        s = by_name[label.removeprefix("team=")]
        if kind not in ("spike", "new spend"):
            other_kinds += 1
            continue
        if kind == "new spend" and s.name in new_services and start == s.days[0]:
            # The warehouse sees a late series start from zero: "new spend", alerted once (the
            # model run on the series alone never sees its start).
            new_found.add(s.name)
            continue
        alerts[s.name].append(((start - s.days[0]).days, (end - s.days[0]).days))
    score = Score()
    for s in series:
        # Only the days the warehouse has still settling are incomplete in the pipeline.
        graded = replace(s, complete=np.concatenate([np.ones(len(s.days) - 2, bool), [False] * 2]))
        grade(graded, alerts[s.name], score, grace=model.level_shift_days)
    return {
        **score.as_dict(),
        "seconds": seconds,
        "rows": int(rows),
        "day_rows": int(scored[0]),
        "newest_days_incomplete_rows": int(scored[1]),
        "credit_or_purchase_events": other_kinds,
        "forecast_seconds": forecast_seconds,
        "forecast_rows": int(forecast_rows),
        "budget_seconds": budget_seconds,
        "budget_rows": int(budget_rows),
        "budgets": len(series),
        "new_services": len(new_services),
        "new_services_alerted": len(new_found),
    }


FORECAST_DAYS = (10, 20)
# As delivered on the as-of day: the day itself and the one before are still filling in.
PARTIAL = (0.9, 0.6)


def forecasts(series: list[LabelledSeries], model: ForecastModel) -> dict:
    """Month-end forecasts on days 10 and 20 of every month with eight weeks of the series'
    history before it, for ours and the two baselines, against the month's final total. Series
    share one calendar (a series that starts late is zero before, as the warehouse sees it); each
    as-of day is one call over all series, as the asset makes it."""
    d0 = min(s.days[0] for s in series)
    n = max((s.days[-1] - d0).days + 1 for s in series)
    usage, purchases, credits = (np.zeros((len(series), n)) for _ in range(3))
    starts = np.zeros(len(series), dtype=int)
    for k, s in enumerate(series):
        i = (s.days[0] - d0).days
        starts[k] = i
        usage[k, i : i + len(s.days)] = s.final
        purchases[k, i : i + len(s.days)] = s.purchases
        credits[k, i : i + len(s.days)] = s.credits
    total = usage + purchases - credits
    errors: dict[str, dict[int, list[float]]] = {
        name: {d: [] for d in FORECAST_DAYS} for name in ("ours", "run rate", "ols iqr")
    }
    covered = {d: 0 for d in FORECAST_DAYS}
    insufficient = 0
    ours_seconds = 0.0
    started = time.perf_counter()
    months = sorted({(d0 + timedelta(days=i)).replace(day=1) for i in range(n)})
    for month_first in months:
        first, last = month_bounds(month_first)
        i_first, i_last = (first - d0).days, (last - d0).days
        if i_last >= n:
            continue
        actual = total[:, i_first : i_last + 1].sum(axis=1)
        eligible = (starts + 56 <= i_first) & (actual > 0)
        for day in FORECAST_DAYS:
            as_of = month_first.replace(day=day)
            i = (as_of - d0).days
            seen_usage = usage[:, : i + 1].copy()
            seen_total = total[:, : i + 1].copy()
            flags = np.ones((len(series), i + 1), dtype=bool)
            for back, share in enumerate(PARTIAL[::-1]):
                seen_total[:, i - back] -= (1 - share) * usage[:, i - back]
                seen_usage[:, i - back] *= share
                flags[:, i - back] = False
            t0 = time.perf_counter()
            f = forecast_period(
                d0,
                seen_usage,
                -credits[:, : i + 1],
                purchases[:, : i + 1],
                flags,
                as_of,
                model=model,
            )
            ours_seconds += time.perf_counter() - t0
            for k in np.flatnonzero(eligible):
                if f.status[k] != "ok":
                    insufficient += 1
                    continue
                a = actual[k]
                errors["ours"][day].append(abs(f.forecast[k] - a) / a)
                covered[day] += int(f.lower[k] <= a <= f.upper[k])
                days = [d0 + timedelta(days=j) for j in range(i + 1)]
                errors["run rate"][day].append(
                    abs(run_rate_forecast(days, seen_total[k], as_of) - a) / a
                )
                errors["ols iqr"][day].append(
                    abs(ols_iqr_forecast(days, seen_total[k], as_of) - a) / a
                )
    result: dict = {"model": model.__dict__, "insufficient": insufficient}
    for name, by_day in errors.items():
        result[name] = {
            f"day_{d}": {
                "forecasts": len(v),
                "median_ape": float(np.median(v)) if v else None,
                "mean_ape": float(np.mean(v)) if v else None,
            }
            for d, v in by_day.items()
        }
    result["ours"]["coverage"] = {
        f"day_{d}": covered[d] / max(len(errors["ours"][d]), 1) for d in FORECAST_DAYS
    }
    result["seconds"] = time.perf_counter() - started
    result["ours_seconds"] = ours_seconds
    return result


BUDGET_HEADROOM = 1.10  # each month's budget: 110% of what it would cost without anomalies


def budgets(series: list[LabelledSeries], model: ForecastModel) -> dict:
    """A monthly budget per series at 110% of its month without the injected anomalies. Each
    day of the month the forecast (the day and the one before still settling) is compared with
    it: the forecast alert is the first day it reaches 100%, the actual crossing the first day
    the month's cost does. Overspend months: lead time of the forecast alert; months that end
    under budget: how many raised a forecast alert anyway."""
    d0 = min(s.days[0] for s in series)
    n = max((s.days[-1] - d0).days + 1 for s in series)
    shape = (len(series), n)
    usage, normal, other = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    purchases, credits = np.zeros(shape), np.zeros(shape)
    starts = np.zeros(len(series), dtype=int)
    for k, s in enumerate(series):
        i = (s.days[0] - d0).days
        starts[k] = i
        usage[k, i : i + len(s.days)] = s.final
        normal[k, i : i + len(s.days)] = s.normal
        purchases[k, i : i + len(s.days)] = s.purchases
        credits[k, i : i + len(s.days)] = s.credits
    other = purchases - credits
    total = usage + other
    leads, missed, false_alerts, months_count, overspent = [], 0, 0, 0, 0
    started = time.perf_counter()
    for month_first in sorted({(d0 + timedelta(days=i)).replace(day=1) for i in range(n)}):
        first, last = month_bounds(month_first)
        i_first, i_last = (first - d0).days, (last - d0).days
        if i_last >= n:
            continue
        eligible = starts + 56 <= i_first
        amount = BUDGET_HEADROOM * (normal + other)[:, i_first : i_last + 1].sum(axis=1)
        month_total = total[:, i_first : i_last + 1].sum(axis=1)
        cumulative = np.cumsum(total[:, i_first : i_last + 1], axis=1)
        alert_day = np.full(len(series), -1)
        for d in range(i_last - i_first + 1):
            i = i_first + d
            seen = usage[:, : i + 1].copy()
            flags = np.ones((len(series), i + 1), dtype=bool)
            for back, share in enumerate(PARTIAL[::-1]):
                seen[:, i - back] *= share
                flags[:, i - back] = False
            f = forecast_period(
                d0,
                seen,
                -credits[:, : i + 1],
                purchases[:, : i + 1],
                flags,
                d0 + timedelta(i),
                model=model,
            )
            hit = (alert_day < 0) & (f.status == "ok") & (f.forecast >= amount)
            alert_day[hit] = d
        for k in np.flatnonzero(eligible & (amount > 0)):
            months_count += 1
            if month_total[k] > amount[k]:
                overspent += 1
                crossed = int(np.argmax(cumulative[k] >= amount[k]))
                if alert_day[k] >= 0 and alert_day[k] <= crossed:
                    leads.append(crossed - alert_day[k])
                else:
                    missed += 1
            elif alert_day[k] >= 0:
                false_alerts += 1
    return {
        "budget_months": months_count,
        "overspent": overspent,
        "median_lead_days": float(np.median(leads)) if leads else None,
        "forecast_alerted_before_actual": len(leads),
        "not_alerted_before_actual": missed,
        "false_forecast_alerts": false_alerts,
        "false_alert_rate": false_alerts / max(months_count, 1),
        "seconds": time.perf_counter() - started,
    }


def run(seed: int, count: int, days: int, pipeline: bool = True) -> dict:
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
    forecast_figures = forecasts(series, ForecastModel())
    budget_figures = budgets(series, ForecastModel())
    if pipeline:
        with tempfile.TemporaryDirectory(prefix="bench-insights-") as workdir:
            results["pipeline: insights/anomalies, one run"] = through_pipeline(
                series, model, Path(workdir)
            )
    return {
        "seed": seed,
        "series": count,
        "days": days,
        "series_days": int(sum(len(s.days) for s in series)),
        "model": model.__dict__,
        "detectors": results,
        "forecasts": forecast_figures,
        "budgets": budget_figures,
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
    baselines = [
        (n, r) for n, r in figures["detectors"].items() if not n.startswith(("ours", "pipeline"))
    ]
    for name, r in baselines:
        ratio = r["false_positives"] / max(ours_fp, 1)
        lines.append(f"false positives of {name} / ours: {ratio:.1f}x (target >= 2x)")
    f = figures.get("forecasts")
    if f:
        lines += [
            "",
            "## Month-end forecasts (median absolute % error; 80% interval coverage)",
            f"{'forecaster':<16}" + "".join(f"{'day ' + str(d):>12}" for d in FORECAST_DAYS),
        ]
        for name in ("ours", "run rate", "ols iqr"):
            lines.append(
                f"{name:<16}"
                + "".join(
                    f"{100 * f[name][f'day_{d}']['median_ape']:>11.2f}%" for d in FORECAST_DAYS
                )
            )
        lines.append(
            f"{'coverage':<16}"
            + "".join(f"{100 * f['ours']['coverage'][f'day_{d}']:>11.1f}%" for d in FORECAST_DAYS)
        )
        for name in ("run rate", "ols iqr"):
            for d in FORECAST_DAYS:
                ours_e, theirs = (
                    f["ours"][f"day_{d}"]["median_ape"],
                    f[name][f"day_{d}"]["median_ape"],
                )
                lines.append(
                    f"day {d}: ours {100 * (1 - ours_e / theirs):.0f}% lower error than {name} "
                    "(target >= 30%)"
                )
        lines.append(
            f"forecasts: {f['ours']['day_10']['forecasts']:,} per day, "
            f"{f['insufficient']} insufficient history, ours {f['ours_seconds']:.1f} s"
        )
    b = figures.get("budgets")
    if b:
        lines += [
            "",
            f"## Budgets (monthly, {100 * (BUDGET_HEADROOM - 1):.0f}% above the month without "
            "anomalies)",
            f"budget-months {b['budget_months']:,}, overspent {b['overspent']:,}: forecast alert "
            f"a median {b['median_lead_days']} days before actual crosses 100% (target >= 7); "
            f"{b['not_alerted_before_actual']} overspends not alerted before",
            f"false forecast alerts: {b['false_forecast_alerts']} = "
            f"{100 * b['false_alert_rate']:.1f}% of budget-months (target <= 5%); "
            f"{b['seconds']:.1f} s",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--json", type=Path, default=Path("bench-insights.json"))
    parser.add_argument(
        "--no-pipeline", action="store_true", help="only the model and the baselines"
    )
    args = parser.parse_args(argv)
    figures = run(args.seed, args.series, args.days, pipeline=not args.no_pipeline)
    print(report(figures), flush=True)
    pipeline = figures["detectors"].get("pipeline: insights/anomalies, one run")
    if pipeline:
        print(
            f"pipeline: {pipeline['rows']:,} allocated rows, {pipeline['day_rows']:,} day rows "
            f"written, materialized in {pipeline['seconds']:.1f} s (target <= 60 s); "
            f"{pipeline['credit_or_purchase_events']} credit/purchase events; new services "
            f"alerted as new spend on their first day: {pipeline['new_services_alerted']} of "
            f"{pipeline['new_services']}"
        )
        print(
            f"pipeline: insights/forecasts for every day of the year, one run: "
            f"{pipeline['forecast_rows']:,} forecasts (both bases) in "
            f"{pipeline['forecast_seconds']:.1f} s"
        )
        print(
            f"pipeline: insights/budget_status for every day of the year, one run: "
            f"{pipeline['budgets']:,} budgets, {pipeline['budget_rows']:,} rows in "
            f"{pipeline['budget_seconds']:.1f} s"
        )
        total = pipeline["seconds"] + pipeline["forecast_seconds"] + pipeline["budget_seconds"]
        print(f"pipeline: the three insight assets over the year: {total:.1f} s (target <= 60 s)")
    args.json.write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
