"""Checks on core/cost_facts: contract, money conserved from raw, no duplicate charges."""

import dagster as dg

from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import CostFacts
from finops_assets.contracts.money import (
    build_conservation_check,
    build_duplicate_charges_check,
    build_reconciliation_check,
)
from finops_assets.defs.core.assets import COST_FACTS_TABLE
from finops_assets.lib.facts import FACT_SOURCES
from finops_assets.partitions import daily_partitions

COST_FACTS = dg.AssetKey(["core", "cost_facts"])

cost_facts_contract = build_contract_check(
    CostFacts, COST_FACTS, COST_FACTS_TABLE, daily_partitions
)
cost_facts_conserved = build_conservation_check(
    asset_key=COST_FACTS,
    table=COST_FACTS_TABLE,
    sources=FACT_SOURCES,
    partitions_def=daily_partitions,
    name="money_conserved_from_sources",
)
cost_facts_unique = build_duplicate_charges_check(
    asset_key=COST_FACTS, table=COST_FACTS_TABLE, partitions_def=daily_partitions
)
# One reconciliation check per source: per billing account and invoice month, against the
# source's own invoice and amortized basis.
for _source in FACT_SOURCES:
    globals()[f"cost_facts_reconciles_with_{_source.name}"] = build_reconciliation_check(
        asset_key=COST_FACTS,
        table=COST_FACTS_TABLE,
        source=_source,
        partitions_def=daily_partitions,
    )
