"""FOCUS delivery sensor: deliveries from any producer under focus/<provider>/<dataset>/."""

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.focus.deliveries import RAW_FOCUS, scan_focus
from finops_assets.defs.sources.shared import build_delivery_sensor


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_delivery_sensor(
            "focus_deliveries",
            scan_focus,
            [RAW_FOCUS],
            "FOCUS deliveries in any folder layout: loads a month's days when manifest.json lists "
            "only present files or, without a manifest, once the files have settled; days that "
            "FOCUS 1.3 Recency or x_DatasetCompletionStatus mark incomplete wait.",
            ctx.partitions,
        )
    )
