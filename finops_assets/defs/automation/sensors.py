"""The automation sensor that rebuilds restated days downstream (see finops_assets.automation)."""

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of

restated_days_downstream = dg.AutomationConditionSensorDefinition(
    "restated_days_downstream",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    # Many days at once (a restated month) become one backfill, run as one ranged run per the
    # assets' single-run backfill policy, instead of a run per day.
    emit_backfills=True,
    description=(
        "Rebuilds core and mart days whose upstream days were (re)loaded by a delivery sensor, "
        "for every partition, not only the latest."
    ),
)


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(restated_days_downstream)
