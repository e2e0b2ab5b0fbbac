"""What every definitions module is built from: the settings, the rules YAML and the partitions.

Each module under ``defs/`` exposes ``build(context) -> dg.Definitions``; ``build_defs`` makes one
``DefsContext`` and calls them. Nothing reads the environment or the rules file at import, so
definitions built from ``Settings(config_path=...)`` use exactly those rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from finops_assets.lib.rules import Rules
from finops_assets.settings import Settings


@dataclass(frozen=True)
class DefsContext:
    settings: Settings
    rules: Rules
    partitions: dg.DailyPartitionsDefinition

    def freshness_policy(self, source: str) -> dg.FreshnessPolicy | None:
        """The UI's freshness policy for a raw asset: some day must be loaded at least once per
        day plus the SLA. (The partition-aware rule is the ``delivered_on_time`` check.)"""
        sla = self.rules.freshness.get(source)
        if sla is None:
            return None
        return dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=sla.sla_hours + 24),
            warn_window=timedelta(hours=sla.sla_hours),
        )


def definitions_of(*objects: object) -> dg.Definitions:
    """A Definitions object holding ``objects`` (assets, checks, sensors, or lists of them)."""
    assets, checks, sensors = [], [], []

    def add(obj: object) -> None:
        if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
            for item in obj:
                add(item)
        elif isinstance(obj, dg.AssetChecksDefinition):
            checks.append(obj)
        elif isinstance(obj, dg.AssetsDefinition):
            assets.append(obj)
        elif isinstance(obj, dg.SensorDefinition):
            sensors.append(obj)
        else:
            raise TypeError(f"not a definition: {obj!r}")

    add(objects)
    return dg.Definitions(assets=assets, asset_checks=checks, sensors=sensors)
