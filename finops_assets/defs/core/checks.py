"""Checks on the core tables: contracts, money conserved at every stage, no duplicate charges,
cent-exact amortization schedules and balanced commitments."""

import dagster as dg

from finops_assets.contracts.amortization import (
    build_amortization_conservation_check,
    build_commitment_balance_check,
    build_spread_schedule_check,
)
from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import AllocatedCosts, AmortizedCosts, CostFacts
from finops_assets.contracts.money import (
    build_conservation_check,
    build_duplicate_charges_check,
    build_reconciliation_check,
)
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.core.assets import (
    ALLOCATED_COSTS_TABLE,
    AMORTIZED_COSTS_TABLE,
    COST_FACTS_TABLE,
)
from finops_assets.lib.facts import fact_sources

COST_FACTS = dg.AssetKey(["core", "cost_facts"])


AMORTIZED_COSTS = dg.AssetKey(["core", "amortized_costs"])
ALLOCATED_COSTS = dg.AssetKey(["core", "allocated_costs"])


def build(ctx: DefsContext) -> dg.Definitions:
    cost_facts_contract = build_contract_check(
        CostFacts, COST_FACTS, COST_FACTS_TABLE, ctx.partitions
    )

    cost_facts_conserved = build_conservation_check(
        asset_key=COST_FACTS,
        table=COST_FACTS_TABLE,
        sources=fact_sources(),
        partitions_def=ctx.partitions,
        name="money_conserved_from_sources",
    )

    cost_facts_unique = build_duplicate_charges_check(
        asset_key=COST_FACTS, table=COST_FACTS_TABLE, partitions_def=ctx.partitions
    )

    # One reconciliation check per source: per billing account and invoice month, against the
    # source's own invoice and amortized basis.
    cost_facts_reconciliations = [
        build_reconciliation_check(
            asset_key=COST_FACTS,
            table=COST_FACTS_TABLE,
            source=source,
            partitions_def=ctx.partitions,
        )
        for source in fact_sources()
    ]

    amortized_costs_contract = build_contract_check(
        AmortizedCosts, AMORTIZED_COSTS, AMORTIZED_COSTS_TABLE, ctx.partitions
    )

    amortized_costs_conserved = build_amortization_conservation_check(
        asset_key=AMORTIZED_COSTS,
        table=AMORTIZED_COSTS_TABLE,
        facts_table=COST_FACTS_TABLE,
        partitions_def=ctx.partitions,
    )

    amortized_costs_spread_exact = build_spread_schedule_check(
        asset_key=AMORTIZED_COSTS,
        table=AMORTIZED_COSTS_TABLE,
        facts_table=COST_FACTS_TABLE,
        partitions_def=ctx.partitions,
    )

    amortized_costs_commitments_balance = build_commitment_balance_check(
        asset_key=AMORTIZED_COSTS, table=AMORTIZED_COSTS_TABLE, partitions_def=ctx.partitions
    )

    allocated_costs_contract = build_contract_check(
        AllocatedCosts, ALLOCATED_COSTS, ALLOCATED_COSTS_TABLE, ctx.partitions
    )

    allocated_costs_conserved = build_conservation_check(
        asset_key=ALLOCATED_COSTS,
        table=ALLOCATED_COSTS_TABLE,
        source_table=AMORTIZED_COSTS_TABLE,
        partitions_def=ctx.partitions,
    )

    return definitions_of(
        cost_facts_contract,
        cost_facts_conserved,
        cost_facts_unique,
        cost_facts_reconciliations,
        amortized_costs_contract,
        amortized_costs_conserved,
        amortized_costs_spread_exact,
        amortized_costs_commitments_balance,
        allocated_costs_contract,
        allocated_costs_conserved,
    )
