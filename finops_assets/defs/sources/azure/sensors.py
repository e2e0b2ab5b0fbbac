"""Azure delivery sensor: export runs (manifest.json per run) and classic export files (no
manifest, settled by deliveries.settle_minutes)."""

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.azure.deliveries import RAW_AZURE, scan_azure
from finops_assets.defs.sources.shared import build_delivery_sensor


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_delivery_sensor(
            "azure_deliveries",
            scan_azure,
            [RAW_AZURE],
            "Azure exports: loads a month's days when a run's manifest.json (new runId) lists "
            "only present blobs, or when a classic export's newest file (no manifest) has not "
            "changed for deliveries.settle_minutes.",
            ctx.partitions,
        )
    )
