"""Checks on raw/focus: its contract, the restatement guard, and every object under focus/
accounted for (loaded, superseded, waiting, metadata, or named as not understood)."""

import dagster as dg

from finops_assets.contracts.models import RawFocus
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.focus.assets import RAW_FOCUS_TABLE
from finops_assets.defs.sources.focus.deliveries import account_landing
from finops_assets.defs.sources.shared import build_raw_source_checks


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(
        build_raw_source_checks(
            "focus", RawFocus, RAW_FOCUS_TABLE, "focus/", account_landing, ctx.partitions
        )
    )
