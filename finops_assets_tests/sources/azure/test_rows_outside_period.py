"""Azure rows dated outside their run's month: a month's load reads only that month's runs, so a
row an export run dates in another month (a custom date range across months) would fall on no
day. It is counted per file with its cost and fails the load, or with
``rules.deliveries.rows_outside_period = drop`` is left out with a warning and metadata."""

from finops_assets_tests.conftest import (
    failed_checks,
    failure_messages,
    run_metadata,
    with_rows_outside_period,
)
from finops_assets_tests.sources.azure.test_assets import deliver_azure

# Cost details columns as an ActualCost export writes them (MCA PascalCase subset).
RUN = (
    "Date,BillingAccountId,BillingCurrencyCode,SubscriptionId,CostInBillingCurrency,ChargeType\n"
    "2024-03-02,555,CAD,sub-c,3.25,Usage\n"
    "2024-03-31,555,CAD,sub-c,1.00,Usage\n"
    "2024-04-01,555,CAD,sub-c,1.10,Usage\n"
    "2024-04-02,555,CAD,sub-c,0.40,Usage\n"
)


def deliver(landing):
    folder = deliver_azure(
        landing,
        "run-range",
        {"part_0_0001.csv": RUN.encode()},
        export="cad-actual",
        date_range="20240301-20240331",
        submitted="2024-04-03T06:00:00Z",
    )
    return folder / "part_0_0001.csv"


def load(pipeline):
    return pipeline.materialize("2024-03-01", "2024-03-31", ["raw/azure_cost", "core/cost_facts"])


def test_rows_outside_the_runs_month_fail_naming_file_rows_and_cost(pipeline):
    part = deliver(pipeline.landing)
    result = load(pipeline)
    assert not result.success
    assert (
        "Rows dated outside their export run's billing period (rules.deliveries."
        f"rows_outside_period = fail): {part}: 2 row(s) of billing period 2024-03 dated "
        "2024-04-01..2024-04-02, Σ cost CAD 1.50. Only rows dated in their run's own month are "
        "loaded into their own days; these would be lost. Fix: export one calendar month per run "
        "(a run is loaded for the month its runInfo.startDate or date folder names), or set "
        "deliveries.rows_outside_period to drop in the rules YAML (FINOPS_CONFIG); nothing was "
        "written."
    ) in failure_messages(result)


def test_drop_leaves_them_out_and_counts_them(pipeline, tmp_path):
    with_rows_outside_period(pipeline, tmp_path, "drop")
    deliver(pipeline.landing)
    result = load(pipeline)
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert pipeline.query(
        "SELECT charge_date::VARCHAR, sum(BilledCost)::VARCHAR FROM core.cost_facts "
        "GROUP BY ALL ORDER BY ALL"
    ) == [("2024-03-02", "3.250000000000"), ("2024-03-31", "1.000000000000")]
    assert run_metadata(result, "raw/azure_cost", "rows_outside_period") == {2}
    assert run_metadata(result, "raw/azure_cost", "rows_outside_period_cost") == {"CAD 1.50"}
