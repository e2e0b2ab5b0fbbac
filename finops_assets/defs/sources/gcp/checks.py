"""Contract on raw/gcp_billing."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawGcpBilling
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.gcp.assets import RAW_GCP_BILLING_TABLE


def build(ctx: DefsContext) -> dg.Definitions:
    raw_gcp_billing_contract = build_contract_check(
        RawGcpBilling, dg.AssetKey(["raw", "gcp_billing"]), RAW_GCP_BILLING_TABLE, ctx.partitions
    )

    return definitions_of(raw_gcp_billing_contract)
