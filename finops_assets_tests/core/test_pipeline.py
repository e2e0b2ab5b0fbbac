"""The whole chain over a generated month and the real FOCUS sample, checked against sums computed
here directly from the delivered files (not through the loader)."""

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb

from finops_assets_tests.conftest import failed_checks, failure_messages
from finops_assets_tests.paths import REAL_SAMPLES

REAL_FOCUS = REAL_SAMPLES / "focus_1_0_sample_anonymized.csv"
# contracts on 11 tables, 6 conservation checks, duplicate charges, 4 reconciliations (one per
# source), the spread schedules, the commitment balance, and delivered_on_time per raw source
# (not monitored here: no sensor has observed a delivery, so they pass), restatement_guard and
# landing_accounted_for per raw source, Azure's actual_and_amortized_agree, the anomalies'
# new_anomalies and usage_conserved, the forecasts' actual_conserved, and budget_thresholds
ALL_CHECKS = 41


def newest_delivery_dirs(landing: Path) -> list[Path]:
    """Per provider dataset and billing period, the lexically last delivery folder with a manifest
    (the generator names deliveries by creation time)."""
    newest = {}
    for manifest in sorted(landing.glob("focus/*/*/billing_period=*/*/manifest.json")):
        newest[manifest.parent.parent] = manifest.parent
    return sorted(newest.values())


def expected_totals(delivery_dirs: list[Path]) -> dict[tuple[date, str], tuple[float, float]]:
    """Σ BilledCost and Σ EffectiveCost per UTC charge day and currency, read straight from files."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    totals: dict[tuple[date, str], list[float]] = {}
    for folder in delivery_dirs:
        for part in sorted(folder.glob("part-*")):
            if part.suffix == ".parquet":
                source = f"read_parquet('{part}')"
            else:
                source = f"read_csv('{part}', header = true, all_varchar = true)"
            rows = con.execute(
                f"SELECT CAST(CAST(ChargePeriodStart AS TIMESTAMPTZ) AS DATE), BillingCurrency, "
                f"sum(CAST(BilledCost AS DOUBLE)), sum(CAST(EffectiveCost AS DOUBLE)) FROM {source} GROUP BY 1, 2"
            ).fetchall()
            for day, currency, billed, effective in rows:
                t = totals.setdefault((day, currency), [0.0, 0.0])
                t[0] += billed
                t[1] += effective
    return {k: (round(v[0], 2), round(v[1], 2)) for k, v in totals.items()}


def mart_totals(
    pipeline, table="mart.daily_cost_by_team", billed="billed_cost", effective="effective_cost"
):
    return {
        (day, currency): (round(float(b), 2), round(float(e), 2))
        for day, currency, b, e in pipeline.query(
            f"SELECT charge_date, BillingCurrency, sum({billed}), sum({effective}) FROM {table} GROUP BY 1, 2"
        )
    }


def test_month_backfill_matches_the_delivered_files_to_the_cent(sample_pipeline):
    result = sample_pipeline.materialize("2025-01-01", "2025-01-31", insights=True)
    assert result.success, failure_messages(result)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == ALL_CHECKS and failed_checks(result) == []

    expected = expected_totals(newest_delivery_dirs(sample_pipeline.landing))
    assert len(expected) == 62  # 31 days x (USD, EUR)
    assert {currency for _, currency in expected} == {"USD", "EUR"}
    assert mart_totals(sample_pipeline) == expected
    assert (
        mart_totals(
            sample_pipeline, "mart.untagged_spend", "total_billed_cost", "total_effective_cost"
        )
        == expected
    )

    # No NULL dimension anywhere; untagged cost is visible under the sentinel.
    nulls = sample_pipeline.query(
        "SELECT count(*) FROM mart.daily_cost_by_team WHERE department IS NULL OR team IS NULL "
        "OR environment IS NULL OR cost_center IS NULL"
    )
    assert nulls == [(0,)]
    untagged_share = sample_pipeline.query(
        "SELECT sum(untagged_effective_cost) / sum(total_effective_cost) FROM mart.untagged_spend "
        "WHERE BillingCurrency = 'USD'"
    )[0][0]
    assert Decimal("0.03") < untagged_share < Decimal("0.20")


def test_per_partition_metadata_is_each_days_own_figure(sample_pipeline):
    result = sample_pipeline.materialize("2025-01-01", "2025-01-03")
    assert result.success, failure_messages(result)
    facts_by_day = {
        str(day): (n, round(float(b), 2))
        for day, n, b in sample_pipeline.query(
            "SELECT charge_date, count(*), sum(BilledCost) FROM core.cost_facts WHERE BillingCurrency = 'USD' "
            "OR BillingCurrency IS NULL GROUP BY 1"
        )
    }
    rows_by_day = dict(
        (str(d), n)
        for d, n in sample_pipeline.query(
            "SELECT charge_date, count(*) FROM core.cost_facts GROUP BY 1"
        )
    )
    events = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["core", "cost_facts"])
    ]
    assert sorted(e.partition for e in events) == ["2025-01-01", "2025-01-02", "2025-01-03"]
    for event in events:
        assert event.metadata["dagster/row_count"].value == rows_by_day[event.partition]
        assert event.metadata["billed_cost_USD"].value == facts_by_day[event.partition][1]
    untagged = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["mart", "untagged_spend"])
    ]
    assert all(0 < m["untagged_pct_USD"].value < 100 and "untagged_pct_EUR" in m for m in untagged)


def test_rerunning_a_partition_leaves_the_same_rows(sample_pipeline):
    assert sample_pipeline.materialize("2025-01-10").success
    first = sample_pipeline.snapshot("2025-01-10")
    assert sample_pipeline.materialize("2025-01-10").success
    assert sample_pipeline.snapshot("2025-01-10") == first
    assert first["raw.focus"][0][1] > 0


def test_restated_days_come_from_the_newest_delivery(sample_pipeline, sample_exports):
    _, summary = sample_exports
    restated = summary.restated_days[0].isoformat()
    assert sample_pipeline.materialize(restated).success
    newest = newest_delivery_dirs(sample_pipeline.landing)
    assert sample_pipeline.query(
        "SELECT DISTINCT x_DeliveryId FROM raw.focus ORDER BY 1"
    ) == sorted((d.name,) for d in newest)
    oldest = sorted(
        {
            m.parent.parent: m.parent
            for m in sorted(
                sample_pipeline.landing.glob("focus/*/*/*/*/manifest.json"), reverse=True
            )
        }.values()
    )
    day = summary.restated_days[0]
    old = {k: v for k, v in expected_totals(oldest).items() if k[0] == day}
    new = {k: v for k, v in expected_totals(newest).items() if k[0] == day}
    assert old != new  # the restatement really changed this day
    assert {k: v for k, v in mart_totals(sample_pipeline).items() if k[0] == day} == new


def test_real_focus_sample_keeps_every_cent(pipeline):
    folder = pipeline.landing / "focus" / "mixed" / "sample" / "billing_period=2024-09" / "d1"
    folder.mkdir(parents=True)
    shutil.copy(REAL_FOCUS, folder / "part-00000.csv")
    (folder / "manifest.json").write_text(
        '{"files": ["part-00000.csv"], "createdAt": "2024-10-02T00:00:00Z"}'
    )
    result = pipeline.materialize("2024-09-01", "2024-09-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert pipeline.query(
        "SELECT count(*), sum(BilledCost), sum(EffectiveCost) FROM core.cost_facts"
    ) == [(1000, Decimal("20.520226728990"), Decimal("14.976514185860"))]
    assert pipeline.query(
        "SELECT sum(billed_cost), sum(effective_cost), sum(row_count) FROM mart.daily_cost_by_team"
    ) == [(Decimal("20.520226728990"), Decimal("14.976514185860"), 1000)]
    # Oracle's rows lack ContractedCost: kept as delivered, and counted per day in the metadata.
    raw_events = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["raw", "focus"])
    ]
    assert (
        sum(
            m["rows_with_empty_focus_columns"].value
            for m in raw_events
            if "rows_with_empty_focus_columns" in m
        )
        == 7
    )
    assert pipeline.query("SELECT count(*) FROM core.cost_facts WHERE ContractedCost IS NULL") == [
        (7,)
    ]
    # Producer quirks are normalized, not rejected: "Usage-based" -> "Usage-Based".
    assert pipeline.query("SELECT DISTINCT ChargeFrequency FROM core.cost_facts ORDER BY 1") == [
        ("One-Time",),
        ("Usage-Based",),
    ]
    # Its tags use business_unit, an alias of department in the shipped rules.
    assert (
        pipeline.query(
            "SELECT count(*) FROM mart.daily_cost_by_team WHERE department <> '__untagged__'"
        )[0][0]
        > 0
    )
