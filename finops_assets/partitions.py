"""The daily UTC partitions every table shares (DESIGN §1: a key is the charge day)."""

from __future__ import annotations

import dagster as dg

from finops_assets.settings import Settings


def build_daily_partitions(start_date: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC", end_offset=0)


# Built when the defs folder loads (at definitions-load time), from FINOPS_START_DATE.
daily_partitions = build_daily_partitions(Settings.from_env().start_date)
