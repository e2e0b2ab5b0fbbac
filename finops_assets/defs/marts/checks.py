"""Checks on the marts: contracts and money conserved from core.allocated_costs."""

import dagster as dg

from finops_assets.contracts.amortization import build_commitment_mart_conservation_check
from finops_assets.contracts.checks import build_contract_check
from finops_assets.contracts.models import (
    CommitmentCoverage,
    CommitmentUtilization,
    DailyCostByTeam,
    UntaggedSpend,
)
from finops_assets.contracts.money import build_conservation_check
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.core.assets import ALLOCATED_COSTS_TABLE, AMORTIZED_COSTS_TABLE
from finops_assets.defs.marts.assets import (
    COMMITMENT_COVERAGE_TABLE,
    COMMITMENT_UTILIZATION_TABLE,
    DAILY_COST_BY_TEAM_TABLE,
    UNTAGGED_SPEND_TABLE,
)

DAILY_COST_BY_TEAM = dg.AssetKey(["mart", "daily_cost_by_team"])
UNTAGGED_SPEND = dg.AssetKey(["mart", "untagged_spend"])


COMMITMENT_UTILIZATION = dg.AssetKey(["mart", "commitment_utilization"])
COMMITMENT_COVERAGE = dg.AssetKey(["mart", "commitment_coverage"])


def build(ctx: DefsContext) -> dg.Definitions:
    daily_cost_by_team_contract = build_contract_check(
        DailyCostByTeam, DAILY_COST_BY_TEAM, DAILY_COST_BY_TEAM_TABLE, ctx.partitions
    )

    daily_cost_by_team_conserved = build_conservation_check(
        asset_key=DAILY_COST_BY_TEAM,
        table=DAILY_COST_BY_TEAM_TABLE,
        source_table=ALLOCATED_COSTS_TABLE,
        partitions_def=ctx.partitions,
        billed="billed_cost",
        effective="effective_cost",
        source_rows_column="row_count",
    )

    untagged_spend_contract = build_contract_check(
        UntaggedSpend, UNTAGGED_SPEND, UNTAGGED_SPEND_TABLE, ctx.partitions
    )

    untagged_spend_conserved = build_conservation_check(
        asset_key=UNTAGGED_SPEND,
        table=UNTAGGED_SPEND_TABLE,
        source_table=ALLOCATED_COSTS_TABLE,
        partitions_def=ctx.partitions,
        billed="total_billed_cost",
        effective="total_effective_cost",
        source_rows_column="total_rows",
    )

    commitment_utilization_contract = build_contract_check(
        CommitmentUtilization,
        COMMITMENT_UTILIZATION,
        COMMITMENT_UTILIZATION_TABLE,
        ctx.partitions,
    )

    commitment_coverage_contract = build_contract_check(
        CommitmentCoverage, COMMITMENT_COVERAGE, COMMITMENT_COVERAGE_TABLE, ctx.partitions
    )

    commitment_utilization_conserved = build_commitment_mart_conservation_check(
        asset_key=COMMITMENT_UTILIZATION,
        table=COMMITMENT_UTILIZATION_TABLE,
        amortized_table=AMORTIZED_COSTS_TABLE,
        partitions_def=ctx.partitions,
    )

    return definitions_of(
        daily_cost_by_team_contract,
        daily_cost_by_team_conserved,
        untagged_spend_contract,
        untagged_spend_conserved,
        commitment_utilization_contract,
        commitment_coverage_contract,
        commitment_utilization_conserved,
    )
