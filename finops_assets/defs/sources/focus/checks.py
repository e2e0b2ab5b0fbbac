"""Contract on raw/focus."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawFocus
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.focus.assets import RAW_FOCUS_TABLE


def build(ctx: DefsContext) -> dg.Definitions:
    raw_focus_contract = build_contract_check(
        RawFocus, dg.AssetKey(["raw", "focus"]), RAW_FOCUS_TABLE, ctx.partitions
    )

    return definitions_of(raw_focus_contract)
