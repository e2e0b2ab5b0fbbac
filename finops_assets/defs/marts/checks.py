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
from finops_assets.defs.core.assets import ALLOCATED_COSTS_TABLE, AMORTIZED_COSTS_TABLE
from finops_assets.defs.marts.assets import (
    COMMITMENT_COVERAGE_TABLE,
    COMMITMENT_UTILIZATION_TABLE,
    DAILY_COST_BY_TEAM_TABLE,
    UNTAGGED_SPEND_TABLE,
)
from finops_assets.partitions import daily_partitions

DAILY_COST_BY_TEAM = dg.AssetKey(["mart", "daily_cost_by_team"])
UNTAGGED_SPEND = dg.AssetKey(["mart", "untagged_spend"])

daily_cost_by_team_contract = build_contract_check(
    DailyCostByTeam, DAILY_COST_BY_TEAM, DAILY_COST_BY_TEAM_TABLE, daily_partitions
)
daily_cost_by_team_conserved = build_conservation_check(
    asset_key=DAILY_COST_BY_TEAM,
    table=DAILY_COST_BY_TEAM_TABLE,
    source_table=ALLOCATED_COSTS_TABLE,
    partitions_def=daily_partitions,
    billed="billed_cost",
    effective="effective_cost",
    source_rows_column="row_count",
)
untagged_spend_contract = build_contract_check(
    UntaggedSpend, UNTAGGED_SPEND, UNTAGGED_SPEND_TABLE, daily_partitions
)
untagged_spend_conserved = build_conservation_check(
    asset_key=UNTAGGED_SPEND,
    table=UNTAGGED_SPEND_TABLE,
    source_table=ALLOCATED_COSTS_TABLE,
    partitions_def=daily_partitions,
    billed="total_billed_cost",
    effective="total_effective_cost",
    source_rows_column="total_rows",
)

COMMITMENT_UTILIZATION = dg.AssetKey(["mart", "commitment_utilization"])
commitment_utilization_contract = build_contract_check(
    CommitmentUtilization,
    COMMITMENT_UTILIZATION,
    COMMITMENT_UTILIZATION_TABLE,
    daily_partitions,
)
COMMITMENT_COVERAGE = dg.AssetKey(["mart", "commitment_coverage"])
commitment_coverage_contract = build_contract_check(
    CommitmentCoverage, COMMITMENT_COVERAGE, COMMITMENT_COVERAGE_TABLE, daily_partitions
)
commitment_utilization_conserved = build_commitment_mart_conservation_check(
    asset_key=COMMITMENT_UTILIZATION,
    table=COMMITMENT_UTILIZATION_TABLE,
    amortized_table=AMORTIZED_COSTS_TABLE,
    partitions_def=daily_partitions,
)
