"""The condition that rebuilds restated days downstream, evaluated against a real (ephemeral)
Dagster instance on a small raw -> facts -> mart chain with the same daily partitions."""

import dagster as dg
import pytest

from finops_assets.automation import RESTATED_DAYS_PROPAGATE

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-11")
D3, D4 = "2026-11-03", "2026-11-04"


@dg.asset(key="raw", partitions_def=DAYS)
def raw() -> None: ...


@dg.asset(
    key="facts", deps=[raw], partitions_def=DAYS, automation_condition=RESTATED_DAYS_PROPAGATE
)
def facts() -> None: ...


@dg.asset(
    key="mart", deps=[facts], partitions_def=DAYS, automation_condition=RESTATED_DAYS_PROPAGATE
)
def mart() -> None: ...


DEFS = dg.Definitions(assets=[raw, facts, mart])


def _materialized(instance: dg.DagsterInstance, key: str, *days: str) -> None:
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))


class Ticks:
    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.cursor = instance, None

    def __call__(self) -> dict[str, set[str]]:
        result = dg.evaluate_automation_conditions(
            defs=DEFS, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        return {
            key: result.get_requested_partitions(dg.AssetKey(key))
            for key in ("facts", "mart")
            if result.get_requested_partitions(dg.AssetKey(key))
        }


@pytest.fixture
def tick():
    with dg.instance_for_test() as instance:
        t = Ticks(instance)
        _materialized(instance, "raw", *DAYS.get_partition_keys())
        _materialized(instance, "facts", *DAYS.get_partition_keys())
        _materialized(instance, "mart", *DAYS.get_partition_keys())
        t.instance = instance
        yield t


def test_history_is_not_built_on_the_first_tick_and_a_restated_day_goes_down_the_chain(tick):
    assert tick() == {}
    assert tick() == {}
    _materialized(tick.instance, "raw", D3, D4)
    # One tick requests the restated days in every layer: one backfill, not one per layer.
    assert tick() == {"facts": {D3, D4}, "mart": {D3, D4}}
    # Built by that request (facts before mart, as a run does): nothing more to do.
    _materialized(tick.instance, "facts", D3, D4)
    _materialized(tick.instance, "mart", D3, D4)
    assert tick() == {}
    assert tick() == {}


def test_a_restatement_landing_right_after_a_rebuild_is_not_lost(tick):
    """The race the end-to-end test met: the downstream day finishes a rebuild, then the restated
    raw day lands, both between two ticks. The raw day is newer, so the day is rebuilt again."""
    tick()
    _materialized(tick.instance, "raw", D3)
    assert tick() == {"facts": {D3}, "mart": {D3}}
    _materialized(tick.instance, "facts", D3)
    _materialized(tick.instance, "mart", D3)
    _materialized(tick.instance, "raw", D3)  # the restatement, after the rebuild
    assert tick() == {"facts": {D3}, "mart": {D3}}


def test_a_run_that_built_raw_and_facts_together_leaves_nothing_to_do(tick):
    tick()
    _materialized(tick.instance, "raw", D4)
    _materialized(tick.instance, "facts", D4)  # the same run, after raw
    assert tick() == {"mart": {D4}}


def test_a_failed_rebuild_is_not_retried_every_tick_but_the_next_delivery_retries(tick):
    tick()
    _materialized(tick.instance, "raw", D3)
    assert tick() == {"facts": {D3}, "mart": {D3}}

    @dg.asset(key="facts", deps=["raw"], partitions_def=DAYS)
    def broken_facts() -> None:
        raise RuntimeError("contract failed")

    dg.materialize([broken_facts], partition_key=D3, instance=tick.instance, raise_on_error=False)
    assert tick() == {}
    assert tick() == {}
    _materialized(tick.instance, "raw", D3)  # a corrected delivery
    assert tick() == {"facts": {D3}, "mart": {D3}}
