"""Contract on raw/azure_cost."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawAzureCost
from finops_assets.defs.sources.azure.assets import RAW_AZURE_COST_TABLE
from finops_assets.partitions import daily_partitions

raw_azure_cost_contract = build_contract_check(
    RawAzureCost, dg.AssetKey(["raw", "azure_cost"]), RAW_AZURE_COST_TABLE, daily_partitions
)
