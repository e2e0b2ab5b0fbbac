"""Checks on raw/azure_cost: its contract, the restatement guard, every object under azure/
accounted for (loaded, superseded, waiting, metadata, or named as not understood), and the
ActualCost and AmortizedCost exports agreeing on their on-demand rows (an input fault that would
otherwise surface downstream as a bare conservation failure)."""

import dagster as dg

from finops_assets.contracts.checks import partition_window
from finops_assets.contracts.models import RawAzureCost
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.sources.azure.assets import RAW_AZURE_COST_TABLE
from finops_assets.defs.sources.azure.cost_details import bases_disagree_sql
from finops_assets.defs.sources.azure.deliveries import account_landing
from finops_assets.defs.sources.shared import build_raw_source_checks
from finops_assets.resources.warehouse import Warehouse

BASES_CHECK = "actual_and_amortized_agree"


def bases_disagree_message(rows: list[dict]) -> str:
    lines = [
        f"{r['charge_date']} {r['account']} {r['currency']}: ActualCost Σ {r['actual']:.2f}, "
        f"AmortizedCost Σ {r['amortized']:.2f} (delta {r['delta']:+.2f}); ActualCost files: "
        f"{r['actual_files']}; AmortizedCost files: {r['amortized_files']}"
        for r in rows[:10]
    ]
    more = f" (+{len(rows) - 10} more)" if len(rows) > 10 else ""
    return (
        "The ActualCost and AmortizedCost exports disagree on rows no commitment is involved in "
        "(PricingModel not Reservation/SavingsPlan), which cost the same in both bases: "
        + "; ".join(lines)
        + more
        + ". The two runs saw different usage (run at different times, or of different "
        "scopes), so billed and amortized cost would not tie. Fix: re-run both exports of the "
        "scope for the same month (Azure portal: Cost Management > Exports > Run now), then "
        "re-materialize these days."
    )


def build(ctx: DefsContext) -> dg.Definitions:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", "azure_cost"]),
        name=BASES_CHECK,
        blocking=True,
        partitions_def=ctx.partitions,
        description=(
            "A scope's ActualCost and AmortizedCost exports agree (within 0.01 per day, billing "
            "account and currency) on their on-demand rows; otherwise the merge into FOCUS "
            "cannot conserve money, and this check names the days, both sums and the files."
        ),
    )
    def actual_and_amortized_agree(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        rows = (
            warehouse.query(
                bases_disagree_sql(RAW_AZURE_COST_TABLE, partition_window(context))
            ).to_pylist()
            if warehouse.has_table(RAW_AZURE_COST_TABLE)
            else []
        )
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.ERROR,
            description=bases_disagree_message(rows) if rows else "The bases agree.",
            metadata={
                "days_disagreeing": dg.MetadataValue.int(len({r["charge_date"] for r in rows})),
            },
        )

    return definitions_of(
        build_raw_source_checks(
            "azure_cost",
            RawAzureCost,
            RAW_AZURE_COST_TABLE,
            "azure/",
            account_landing,
            ctx.partitions,
        ),
        actual_and_amortized_agree,
    )
