"""ops/pipeline_health through a real Dagster instance: the events the pipeline records for a
clean week trip no SLO, and each injected fault (a duplicate delivery, overlapping exports, a
manifest whose row count disagrees with its files, a renamed column, a 30-hour-late delivery,
a failed alert target) fails its check on the very next sensor tick.

Events are recorded at chosen times (Dagster's clock frozen), as the delivery sensors, the
loads and the alerts sensor write them; the renamed column is a real failed load and the failed
alert target a real alerts-sensor tick against a closed port."""

import gzip
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from finops_assets.defs.alerts.sensors import alerts_sensor
from finops_assets.defs.ops.sensors import PIPELINE_HEALTH, SLI_NAMES, health_tick
from finops_assets.lib.alerts import DeliveryCursor
from finops_assets.lib.rules import Rules, default_rules_path, load_rules
from finops_assets.resources.rules import RulesResource
from finops_assets.samples.focus import generate_sample_exports
from finops_assets_tests.conftest import Pipeline

DAYS = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
FIRST_DAY = date(2025, 1, 1)
CHAIN = [
    ("core", "cost_facts", 1),
    ("core", "amortized_costs", 2),
    ("core", "allocated_costs", 3),
    ("mart", "daily_cost_by_team", 4),
]


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def record(instance, event, at: datetime) -> None:
    with freeze_time(at):
        instance.report_runless_asset_event(event)


def delivered(instance, source: str, day: date, created: datetime, delivery: str) -> None:
    """What a delivery sensor records when it requests a day of a delivery."""
    record(
        instance,
        dg.AssetObservation(
            asset_key=dg.AssetKey(["raw", source]),
            metadata={
                "delivery_id": delivery,
                "stream": f"{source}/acme/costs",
                "completeness": "complete",
                "created_at": created.isoformat(),
                "days_requested": 1,
                "requested_days": dg.MetadataValue.json([day.isoformat()]),
            },
        ),
        created + timedelta(minutes=1),
    )


def loaded(instance, source: str, day: date, at: datetime, **metadata) -> None:
    record(
        instance,
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(["raw", source]),
            partition=day.isoformat(),
            metadata={"dagster/row_count": 100, **metadata},
        ),
        at,
    )
    for schema, name, minutes in CHAIN:
        record(
            instance,
            dg.AssetMaterialization(
                asset_key=dg.AssetKey([schema, name]),
                partition=day.isoformat(),
                metadata={"dagster/row_count": 100},
            ),
            at + timedelta(minutes=minutes),
        )
    record(
        instance,
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(["mart", "untagged_spend"]),
            partition=day.isoformat(),
            metadata={
                "unallocated_effective_USD": dg.MetadataValue.text("10.00"),
                "total_effective_USD": dg.MetadataValue.text("100.00"),
            },
        ),
        at + timedelta(minutes=4),
    )


def clean_week(instance, sources=("focus", "azure_cost")) -> None:
    for day in DAYS:
        for source in sources:
            created = end_of(day) + timedelta(hours=2)
            delivered(instance, source, day, created, f"{source}-{day:%d}")
            loaded(instance, source, day, created + timedelta(minutes=10))


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def rules() -> Rules:
    return load_rules(None)


def tick(instance, rules, cursor=None, now=NOW, first_day=FIRST_DAY):
    result = health_tick(instance, rules, cursor, now, first_day)
    checks = {
        e.check_name: e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)
    }
    return result, checks


def failing(checks) -> set[str]:
    return {name.removeprefix("slo_") for name, e in checks.items() if not e.passed}


def test_a_clean_week_trips_nothing_and_records_every_indicator(instance, rules):
    clean_week(instance)
    result, checks = tick(instance, rules)
    assert set(checks) == {f"slo_{name}" for name in SLI_NAMES}
    assert failing(checks) == set(), [c.description for c in checks.values()]
    (values,) = [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert values.asset_key == PIPELINE_HEALTH and values.partition == "2025-03-09"
    assert values.metadata["focus/delivery_success_rate"].value == 1.0
    assert values.metadata["focus/delivery_latency_hours"].value == 0.17
    assert values.metadata["all/unallocated_share"].value == 0.1
    # The next tick with nothing new records nothing.
    again, checks = tick(instance, rules, result.cursor)
    assert checks == {} and again.skip_reason is not None


def test_each_fault_trips_its_slo_on_the_next_tick(instance, rules, tmp_path):
    clean_week(instance)
    cursor = tick(instance, rules)[0].cursor

    def after(fault) -> set[str]:
        nonlocal cursor
        fault()
        result, checks = tick(instance, rules, cursor)
        cursor = result.cursor
        return failing(checks)

    # A 30-hour-late delivery: 9 March's first delivery comes 30 h after its deadline passed.
    late_day = DAYS[-2]  # 8 March: due 10 March 00:00 with the 24 h SLA

    def late_delivery():
        created = end_of(late_day) + timedelta(hours=30)
        delivered(instance, "gcp_billing", late_day, created, "gcp-late")
        loaded(instance, "gcp_billing", late_day, created + timedelta(minutes=5))
        for day in DAYS[:-2]:
            created = end_of(day) + timedelta(hours=2)
            delivered(instance, "gcp_billing", day, created, f"gcp-{day:%d}")
            loaded(instance, "gcp_billing", day, created + timedelta(minutes=5))

    assert after(late_delivery) == {"delivery_success_rate"}

    # A duplicate delivery (the same files twice) and overlapping exports (the same charges in
    # two datasets), as no_duplicate_charges reports them.
    def duplicate(reason: str, day: date):
        def inject():
            record(
                instance,
                dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey(["core", "cost_facts"]),
                    check_name="no_duplicate_charges",
                    passed=False,
                    metadata={
                        "duplicate_rows": 10,
                        "details": dg.MetadataValue.md(
                            "| charge_date | BillingCurrency | reason | duplicate_rows |\n"
                            "| --- | --- | --- | --- |\n"
                            f"| {day} | USD | {reason} | 10 |"
                        ),
                    },
                ),
                NOW,
            )

        return inject

    # (delivery_success_rate stays failed: a check is recorded again only when it changes.)
    assert after(duplicate("identical files a/1.csv and a/1 (copy).csv", DAYS[1])) == {
        "duplicate_line_rate"
    }
    assert "overlapping_deliveries" in after(
        duplicate("same charge in focus/aws/cur and focus/aws/focus", DAYS[2])
    )

    # An Azure manifest whose dataRowCount disagrees with its files.
    def row_count():
        loaded(
            instance,
            "azure_cost",
            DAYS[3],
            NOW,
            manifest_row_count_mismatches=dg.MetadataValue.json(
                {"sub/daily/run-7": {"declared": 120, "loaded": 100}}
            ),
        )

    assert "silent_zero_loads" in after(row_count)

    # A renamed column: a real load of a FOCUS export whose BilledCost column was renamed.
    def renamed_column():
        landing = tmp_path / "landing"
        generate_sample_exports(landing, DAYS[0], 2, 30, 5, formats=("csv",))
        for export in landing.rglob("*.csv*"):
            opener = gzip.open if export.suffix == ".gz" else open
            with opener(export, "rt") as handle:
                text = handle.read()
            with opener(export, "wt") as handle:
                handle.write(text.replace("BilledCost", "Billed_Cost", 1))
        pipeline = Pipeline(landing, str(tmp_path / "warehouse.duckdb"), instance)
        result = pipeline.materialize(DAYS[0].isoformat(), DAYS[1].isoformat())
        assert not result.success

    broken = after(renamed_column)
    assert "schema_failures" in broken
    (check,) = [
        c for c in tick(instance, rules)[1].values() if c.check_name == "slo_schema_failures"
    ]
    assert "missing column: 1" in check.description

    # A failed alert target: the alerts sensor tries a dead webhook for the failed check above.
    def dead_target():
        config = tmp_path / "rules.yaml"
        config.write_text(
            default_rules_path()
            .read_text()
            .replace(
                "alerts:\n  webhooks: []",
                "alerts:\n  webhooks:\n    - {name: dead, url_env: DEAD_HOOK}",
            )
        )
        import os

        os.environ["DEAD_HOOK"] = "http://127.0.0.1:9/hook"
        try:
            context = dg.build_sensor_context(
                instance=instance,
                cursor=DeliveryCursor(after=0).dumps(),  # every failure so far
                resources={"rules": RulesResource(path=str(config))},
            )
            result = alerts_sensor(context)
            for event in result.asset_events:
                record(instance, event, NOW)
        finally:
            del os.environ["DEAD_HOOK"]

    assert "alert_delivery_success" in after(dead_target)


def test_a_real_duplicate_delivery_trips_duplicates_and_overlaps(instance, rules, tmp_path):
    """The same FOCUS export copied into a second dataset folder, loaded for real: the blocking
    no_duplicate_charges check stops it, and the next tick counts both signs."""
    from finops_assets_tests.finance.test_reconciliation_sources import deliver_acme_twice

    landing = tmp_path / "landing"
    landing.mkdir()
    deliver_acme_twice(landing)
    pipeline = Pipeline(landing, str(tmp_path / "warehouse.duckdb"), instance)
    assert not pipeline.materialize("2024-03-05", "2024-03-06").success
    now = datetime(2024, 3, 8, 12, tzinfo=UTC)
    _, checks = tick(instance, rules, now=now, first_day=date(2024, 1, 1))
    assert {"duplicate_line_rate", "overlapping_deliveries"} <= failing(checks)
    rate = checks["slo_duplicate_line_rate"]
    assert "10 of 10 rows" in rate.description  # every row of the two days has its twin
    assert "2024-03-05, 2024-03-06" in checks["slo_overlapping_deliveries"].description
