"""An input fault named as such: a scope's ActualCost and AmortizedCost exports must agree on the
rows no commitment is involved in (on-demand usage costs the same in both bases). When they do
not, the blocking ``actual_and_amortized_agree`` check on raw/azure_cost fails naming the day,
account, both sums and the files, before a bare conservation failure downstream could."""

from finops_assets_tests.conftest import failed_checks, failure_messages
from finops_assets_tests.sources.azure.test_assets import deliver_azure

HEADER = (
    "Date,BillingAccountId,BillingCurrencyCode,SubscriptionId,CostInBillingCurrency,ChargeType,"
    "PricingModel\n"
)
ACTUAL = HEADER + (
    "2024-03-02,555,EUR,sub-c,3.25,Usage,OnDemand\n2024-03-03,555,EUR,sub-c,1.10,Usage,OnDemand\n"
)
# The amortized run was exported a day later: it holds a late usage row of 2024-03-02.
AMORTIZED = HEADER + (
    "2024-03-02,555,EUR,sub-c,3.25,Usage,OnDemand\n"
    "2024-03-02,555,EUR,sub-c,0.75,Usage,OnDemand\n"
    "2024-03-03,555,EUR,sub-c,1.10,Usage,OnDemand\n"
)


def deliver_pair(landing, amortized: str) -> tuple:
    actual = deliver_azure(
        landing,
        "run-actual",
        {"part_0_0001.csv": ACTUAL.encode()},
        export="eu-actual",
        date_range="20240301-20240331",
        submitted="2024-03-04T06:00:00Z",
    )
    amortized_run = deliver_azure(
        landing,
        "run-amortized",
        {"part_0_0001.csv": amortized.encode()},
        export="eu-amortized",
        export_type="AmortizedCost",
        date_range="20240301-20240331",
        submitted="2024-03-05T06:00:00Z",
    )
    return actual / "part_0_0001.csv", amortized_run / "part_0_0001.csv"


def load(pipeline):
    return pipeline.materialize("2024-03-01", "2024-03-03", ["raw/azure_cost", "core/cost_facts"])


def check_description(result) -> str:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "actual_and_amortized_agree"
    ]
    return evaluation.description


def test_exports_that_disagree_on_on_demand_rows_fail_naming_the_cause(pipeline):
    deliver_pair(pipeline.landing, AMORTIZED)
    result = load(pipeline)
    assert "raw/azure_cost:actual_and_amortized_agree" in failed_checks(result)
    description = check_description(result)
    assert description.startswith(
        "The ActualCost and AmortizedCost exports disagree on rows no commitment is involved in "
        "(PricingModel not Reservation/SavingsPlan), which cost the same in both bases: "
        "2024-03-02 555 EUR: ActualCost Σ 3.25, AmortizedCost Σ 4.00 (delta +0.75); "
    ), description
    assert "2024-03-03" not in description
    assert "eu-actual/20240301-20240331/run-actual/part_0_0001.csv" in description
    assert "eu-amortized/20240301-20240331/run-amortized/part_0_0001.csv" in description
    assert "Fix: re-run both exports of the scope for the same month" in description
    # Blocking: the facts are not built from inputs that cannot tie.
    assert not any(
        e.asset_key.to_user_string() == "core/cost_facts"
        for e in result.get_asset_materialization_events()
    )


def test_exports_that_agree_pass(pipeline):
    deliver_pair(pipeline.landing, ACTUAL)
    result = load(pipeline)
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert check_description(result) == "The bases agree."
