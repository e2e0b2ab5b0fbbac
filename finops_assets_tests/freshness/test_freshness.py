"""Delivery deadlines: which day is due, when a source counts as late, one evaluation per change."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import yaml

from finops_assets.defs.freshness.deadlines import CHECK_NAME, due_day, evaluate_freshness
from finops_assets.defs.freshness.sensors import freshness_tick
from finops_assets.lib.rules import SourceFreshness, default_rules_path, load_rules

AZURE = dg.AssetKey(["raw", "azure_cost"])


def test_the_due_day_is_the_newest_day_whose_deadline_passed():
    # Day D is due sla_hours after D ends: at 10:00 on the 23rd, with 48 h, the 20th is due
    # (deadline 23rd 00:00) and the 21st is not (24th 00:00).
    assert due_day(datetime(2026, 11, 23, 10, tzinfo=UTC), 48) == date(2026, 11, 20)
    assert due_day(datetime(2026, 11, 23, 10, tzinfo=UTC), 24) == date(2026, 11, 21)
    assert due_day(datetime(2026, 11, 23, 0, tzinfo=UTC), 24) == date(2026, 11, 21)
    assert due_day(datetime(2026, 11, 22, 23, 59, tzinfo=UTC), 24) == date(2026, 11, 20)


def loaded(instance, day: date, rows: int) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=AZURE, partition=day.isoformat(), metadata={"dagster/row_count": rows}
        )
    )


def test_a_source_is_late_only_once_it_has_delivered_and_until_the_due_day_loads():
    now = datetime(2026, 11, 23, 10, tzinfo=UTC)
    sla = SourceFreshness(sla_hours=24)
    first = date(2026, 11, 1)
    with dg.instance_for_test() as instance:
        unused = evaluate_freshness(instance, "azure_cost", sla, now, first)
        assert unused.passed and not unused.monitored
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=AZURE))
        loaded(instance, date(2026, 11, 17), 40)
        late = evaluate_freshness(instance, "azure_cost", sla, now, first)
        assert not late.passed and late.monitored
        assert late.due == date(2026, 11, 21) and late.latest_loaded == date(2026, 11, 17)
        assert "2026-11-21 was due by 2026-11-23 00:00Z" in late.description
        assert late.metadata(sla)["days_late"].value == 4
        # An empty partition (a backfill with nothing delivered) is not a delivery.
        loaded(instance, date(2026, 11, 21), 0)
        assert not evaluate_freshness(instance, "azure_cost", sla, now, first).passed
        loaded(instance, date(2026, 11, 21), 12)
        on_time = evaluate_freshness(instance, "azure_cost", sla, now, first)
        assert on_time.passed and on_time.latest_loaded == date(2026, 11, 21)


def test_the_sensor_records_each_late_day_once(tmp_path):
    rules = yaml.safe_load(default_rules_path().read_text())
    rules["freshness"] = {"azure_cost": {"sla_hours": 24}}
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules))
    loaded_rules = load_rules(config)
    now = datetime(2026, 11, 23, 10, tzinfo=UTC)  # the 21st is due, the 22nd not yet
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetObservation(asset_key=AZURE))
        loaded(instance, date(2026, 11, 18), 10)

        def tick(cursor, at=now):
            return freshness_tick(instance, loaded_rules, cursor, at, date(2026, 11, 1))

        first = tick(None)
        (evaluation,) = first.asset_events
        assert isinstance(evaluation, dg.AssetCheckEvaluation)
        assert (evaluation.asset_key, evaluation.check_name, evaluation.passed) == (
            AZURE,
            CHECK_NAME,
            False,
        )
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.metadata["due_day"].value == "2026-11-21"
        again = tick(first.cursor)
        assert again.asset_events == [] and "azure_cost: LATE" in again.skip_reason.skip_message
        # Still late a day later: the newly due day is a new (single) alert.
        next_day = tick(again.cursor, at=now + timedelta(days=1))
        assert [(e.passed, e.metadata["due_day"].value) for e in next_day.asset_events] == [
            (False, "2026-11-22")
        ]
        # The late days arrive: one passing evaluation.
        loaded(instance, date(2026, 11, 22), 10)
        recovered = tick(next_day.cursor, at=now + timedelta(days=1))
        assert [e.passed for e in recovered.asset_events] == [True]
