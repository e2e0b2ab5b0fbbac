"""Dagster entry point: ``finops_assets.definitions:defs`` (also loaded by workspace.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_gcp import BigQueryResource

from finops_assets.lib.rules import load_rules
from finops_assets.resources.landing import landing_zone_from_url
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse
from finops_assets.settings import Settings


def default_resources(settings: Settings) -> dict[str, Any]:
    rules = load_rules(settings.config_path)  # fail fast on a broken rules file
    return {
        "landing": landing_zone_from_url(settings.landing_url, dict(settings.landing_routes)),
        "warehouse": Warehouse(
            database=str(Path(settings.warehouse).absolute()),
            connection_config={
                "memory_limit": rules.warehouse.memory_limit,
                "threads": rules.warehouse.threads,
            },
            lock_timeout_seconds=rules.warehouse.lock_timeout_seconds,
        ),
        "rules": RulesResource(path=settings.config_path),
        # Used only when the rules name a GCP billing export table (gcp.bigquery_table);
        # credentials and project come from the Google SDK chain, never from code.
        "bigquery": BigQueryResource(),
    }


def build_defs(
    settings: Settings | None = None, resources: Mapping[str, Any] | None = None
) -> dg.Definitions:
    """All definitions, with resources from ``settings`` (default: the environment) and any
    ``resources`` given replacing them. Tests swap resources here instead of patching modules."""
    settings = settings or Settings.from_env()
    folder_defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    from finops_assets.partitions import daily_partitions  # loaded with the defs folder

    if daily_partitions.start.date().isoformat() != settings.start_date:
        raise ValueError(
            f"Partitions start on {daily_partitions.start.date()} (FINOPS_START_DATE when the "
            f"definitions were first loaded) but settings ask for {settings.start_date}; set "
            "FINOPS_START_DATE before loading the definitions."
        )
    return dg.Definitions.merge(
        folder_defs,
        dg.Definitions(
            resources={**default_resources(settings), **(resources or {})},
            # Every step takes the one warehouse pool slot, so steps cannot overlap anyway; one
            # process per run avoids paying ~5 s of interpreter and import start-up per step.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
