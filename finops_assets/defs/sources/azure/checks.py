"""Checks on raw/azure_cost: its contract, the restatement guard, and every object under azure/
accounted for (loaded, superseded, waiting, metadata, or named as not understood)."""

import dagster as dg

from finops_assets.contracts.models import RawAzureCost
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.azure.assets import RAW_AZURE_COST_TABLE
from finops_assets.defs.sources.azure.deliveries import account_landing
from finops_assets.defs.sources.shared import build_raw_source_checks


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_raw_source_checks(
            "azure_cost",
            RawAzureCost,
            RAW_AZURE_COST_TABLE,
            "azure/",
            account_landing,
            ctx.partitions,
        )
    )
