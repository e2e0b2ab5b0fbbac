"""The daily UTC partitions every table shares (DESIGN §1: a key is the charge day).

Built by ``build_defs`` from ``Settings.start_date``, never at import: each build of the
definitions carries its own partitions.
"""

from __future__ import annotations

import dagster as dg


def build_daily_partitions(start_date: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC", end_offset=0)
