"""Contract on raw/azure_cost."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawAzureCost
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.azure.assets import RAW_AZURE_COST_TABLE


def build(ctx: DefsContext) -> dg.Definitions:
    raw_azure_cost_contract = build_contract_check(
        RawAzureCost, dg.AssetKey(["raw", "azure_cost"]), RAW_AZURE_COST_TABLE, ctx.partitions
    )

    return definitions_of(raw_azure_cost_contract)
