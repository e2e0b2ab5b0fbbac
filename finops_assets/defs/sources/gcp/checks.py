"""Contract on raw/gcp_billing."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawGcpBilling
from finops_assets.defs.sources.gcp.assets import RAW_GCP_BILLING_TABLE
from finops_assets.partitions import daily_partitions

raw_gcp_billing_contract = build_contract_check(
    RawGcpBilling, dg.AssetKey(["raw", "gcp_billing"]), RAW_GCP_BILLING_TABLE, daily_partitions
)
