"""The rules YAML as a resource, so tests and deployments swap it like any other resource."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

from finops_assets.lib.rules import Rules, default_rules_path, load_rules


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Rules:
    return load_rules(path)


class RulesResource(dg.ConfigurableResource):
    """Tag dimensions, loader and warehouse settings (FINOPS_CONFIG, or the shipped default)."""

    path: str | None = None

    def resolved_path(self) -> str:
        return str(Path(self.path) if self.path else default_rules_path())

    def load(self) -> Rules:
        path = self.resolved_path()
        return _load(path, Path(path).stat().st_mtime_ns)
