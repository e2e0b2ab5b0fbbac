"""Dagster entry point: ``finops_assets.definitions:defs`` (also loaded by workspace.yaml).

``build_defs(settings, resources)`` is the one seam: it reads the rules named by the settings,
builds the daily partitions from ``settings.start_date`` and calls ``build(context)`` of every
definitions module: each source folder of the registry (``finops_assets.sources``) and each
domain folder below. Nothing is read at import, so tests build definitions from their own
settings and get exactly those rules and partitions.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_gcp import BigQueryResource

from finops_assets.defs.context import DefsContext
from finops_assets.lib.rules import load_rules
from finops_assets.partitions import build_daily_partitions
from finops_assets.resources.aws_invoicing import AwsInvoicingResource
from finops_assets.resources.landing import landing_zone_from_url
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse
from finops_assets.settings import Settings
from finops_assets.sources import SOURCES

# Domain folders under finops_assets/defs/, in data-flow order (DESIGN §1).
DOMAINS = (
    "core",
    "marts",
    "insights",
    "finance",
    "freshness",
    "alerts",
    "automation",
    "serving",
    "ops",
)
DEFINITION_MODULES = ("assets", "checks", "sensors")


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
        # finance/invoices: the AWS Invoicing API, called only for finance.aws_invoicing.accounts.
        "aws_invoicing": AwsInvoicingResource(region_name=rules.finance.aws_invoicing.region),
    }


def definition_packages() -> list[str]:
    """Every package whose assets/checks/sensors modules make up the definitions."""
    return [spec.package for spec in SOURCES] + [f"finops_assets.defs.{d}" for d in DOMAINS]


def build_defs(
    settings: Settings | None = None, resources: Mapping[str, Any] | None = None
) -> dg.Definitions:
    """All definitions, with resources from ``settings`` (default: the environment) and any
    ``resources`` given replacing them. Tests swap resources here instead of patching modules."""
    settings = settings or Settings.from_env()
    context = DefsContext(
        settings=settings,
        rules=load_rules(settings.config_path),
        partitions=build_daily_partitions(settings.start_date),
    )
    parts = []
    for package in definition_packages():
        for name in DEFINITION_MODULES:
            try:
                module = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name == f"{package}.{name}":
                    continue
                raise
            parts.append(module.build(context))
    return dg.Definitions.merge(
        *parts,
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
