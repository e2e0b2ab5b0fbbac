"""GCP delivery sensor: billing export dumps, settled by their export_time watermark."""

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.gcp.deliveries import RAW_GCP, scan_gcp
from finops_assets.defs.sources.shared import build_delivery_sensor


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_delivery_sensor(
            "gcp_deliveries",
            scan_gcp,
            [RAW_GCP],
            "GCP billing export dumps: loads a usage day when its max(export_time) watermark "
            "moved and then stayed put for deliveries.gcp_settle_minutes.",
            ctx.partitions,
        )
    )
