"""Checks on raw/gcp_billing: its contract, the restatement guard, and every object under gcp/
accounted for (loaded, superseded, waiting, metadata, or named as not understood)."""

import dagster as dg

from finops_assets.contracts.models import RawGcpBilling
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.gcp.assets import RAW_GCP_BILLING_TABLE
from finops_assets.defs.sources.gcp.deliveries import account_landing
from finops_assets.defs.sources.shared import build_raw_source_checks


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_raw_source_checks(
            "gcp_billing",
            RawGcpBilling,
            RAW_GCP_BILLING_TABLE,
            "gcp/",
            account_landing,
            ctx.partitions,
        )
    )
