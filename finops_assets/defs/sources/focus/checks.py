"""Contract on raw/focus."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import RawFocus
from finops_assets.defs.sources.focus.assets import RAW_FOCUS_TABLE
from finops_assets.partitions import daily_partitions

raw_focus_contract = build_contract_check(
    RawFocus, dg.AssetKey(["raw", "focus"]), RAW_FOCUS_TABLE, daily_partitions
)
