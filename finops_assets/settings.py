"""Environment settings (DESIGN §2). Read when definitions are built, never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

DEFAULT_LANDING_URL = "data/landing"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_START_DATE = "2025-01-01"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    landing_url: str = DEFAULT_LANDING_URL
    warehouse: str = DEFAULT_WAREHOUSE
    start_date: str = DEFAULT_START_DATE
    config_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            landing_url=env.get("FINOPS_LANDING_URL") or DEFAULT_LANDING_URL,
            warehouse=env.get("FINOPS_WAREHOUSE") or DEFAULT_WAREHOUSE,
            start_date=env.get("FINOPS_START_DATE") or DEFAULT_START_DATE,
            config_path=env.get("FINOPS_CONFIG") or None,
        )
        try:
            date.fromisoformat(settings.start_date)
        except ValueError:
            raise SettingsError(
                f"FINOPS_START_DATE={settings.start_date!r} is not a date; use YYYY-MM-DD"
            ) from None
        if settings.warehouse.startswith(("s3://", "gs://", "md:")):
            raise SettingsError(
                f"FINOPS_WAREHOUSE={settings.warehouse!r}: the embedded warehouse is a local DuckDB "
                "file path (e.g. data/warehouse.duckdb)"
            )
        return settings
