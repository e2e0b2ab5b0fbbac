"""Schema contracts: one pandera DataFrameModel per warehouse table.

Money arrives here as float64 (the check reads DECIMAL columns as DOUBLE): contracts check shape
and allowed values; exact money conservation is checked separately, in SQL, to the cent.
"""

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from finops_assets.lib.allocation import ALLOCATION_RULES
from finops_assets.lib.focus import (
    CHARGE_CATEGORIES,
    CHARGE_CLASSES,
    CHARGE_FREQUENCIES,
    COMMITMENT_DISCOUNT_CATEGORIES,
    COMMITMENT_DISCOUNT_STATUSES,
    SERVICE_CATEGORIES,
)
from finops_assets.lib.loading import ISO_CURRENCIES
from finops_assets.lib.warehouse import utc_date

UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]


class _Lineage(pa.DataFrameModel):
    charge_date: Series[pd.Timestamp] = pa.Field(nullable=False)
    x_DeliveryId: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    x_SourceFile: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})

    class Config:
        coerce = True
        strict = False


class RawFocus(_Lineage):
    """raw.focus: the day's rows from the newest complete FOCUS delivery, typed."""

    BilledCost: Series[float] = pa.Field(nullable=False)
    EffectiveCost: Series[float] = pa.Field(nullable=False)
    # FOCUS requires these, but real producers leave them empty (kept as delivered, counted).
    ListCost: Series[float] = pa.Field(nullable=True)
    ContractedCost: Series[float] = pa.Field(nullable=True)
    BillingAccountId: Series[str] = pa.Field(nullable=False)
    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    ChargeCategory: Series[str] = pa.Field(nullable=False, isin=list(CHARGE_CATEGORIES))
    ChargePeriodStart: Series[UtcTimestamp] = pa.Field(nullable=False)
    ChargePeriodEnd: Series[UtcTimestamp] = pa.Field(nullable=False)
    BillingPeriodStart: Series[UtcTimestamp] = pa.Field(nullable=False)
    BillingPeriodEnd: Series[UtcTimestamp] = pa.Field(nullable=False)
    ProviderName: Series[str] = pa.Field(nullable=False)
    PublisherName: Series[str] = pa.Field(nullable=True)
    InvoiceIssuerName: Series[str] = pa.Field(nullable=True)
    ServiceName: Series[str] = pa.Field(nullable=True)
    ServiceCategory: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(
        error="ChargePeriodEnd must be after ChargePeriodStart (periods are [start, end))"
    )
    def charge_period_is_ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["ChargePeriodEnd"] > df["ChargePeriodStart"]

    @pa.dataframe_check(error="charge_date must be the UTC date of ChargePeriodStart")
    def partition_matches_charge_start(cls, df: pd.DataFrame) -> Series[bool]:
        return (
            df["ChargePeriodStart"].dt.tz_convert("UTC").dt.normalize().dt.tz_localize(None)
            == df["charge_date"]
        )


class RawAwsCur(_Lineage):
    """raw.aws_cur: CUR line items of the current assembly, typed; tags as JSON."""

    line_item_line_item_type: Series[str] = pa.Field(nullable=False)
    line_item_unblended_cost: Series[float] = pa.Field(nullable=False)
    line_item_currency_code: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    line_item_usage_start_date: Series[UtcTimestamp] = pa.Field(nullable=False)
    line_item_usage_end_date: Series[UtcTimestamp] = pa.Field(nullable=False)
    # AWS account ids are 12-digit strings; a number-typed export would drop leading zeros.
    line_item_usage_account_id: Series[str] = pa.Field(nullable=False, str_matches=r"^\d{12}$")
    bill_payer_account_id: Series[str] = pa.Field(nullable=True, str_matches=r"^\d{12}$")
    x_ResourceTags: Series[str] = pa.Field(nullable=False, str_startswith="{")


class RawAzureCost(_Lineage):
    """raw.azure_cost: rows of the newest Azure export runs (cost details or FocusCost), typed;
    tags as JSON."""

    x_ExportType: Series[str] = pa.Field(
        nullable=False, isin=["ActualCost", "AmortizedCost", "FocusCost"]
    )
    x_CostBasis: Series[str] = pa.Field(
        nullable=False, isin=["merged", "actual_only", "amortized_only", "focus"]
    )
    # Cost details carry CostInBillingCurrency, FocusCost rows BilledCost/EffectiveCost.
    CostInBillingCurrency: Series[float] = pa.Field(nullable=True)
    BilledCost: Series[float] = pa.Field(nullable=True)
    EffectiveCost: Series[float] = pa.Field(nullable=True)
    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    # Account ids are text (GUIDs, enrollment numbers): never numbers.
    SubscriptionId: Series[str] = pa.Field(nullable=True)
    BillingAccountId: Series[str] = pa.Field(nullable=True)
    Tags: Series[str] = pa.Field(nullable=False, str_startswith="{")

    @pa.dataframe_check(
        error="a row must carry its cost: CostInBillingCurrency (cost details) "
        "or BilledCost and EffectiveCost (FocusCost)"
    )
    def cost_present(cls, df: pd.DataFrame) -> Series[bool]:
        focus = df["x_ExportType"] == "FocusCost"
        details_ok = ~focus & df["CostInBillingCurrency"].notna()
        focus_ok = focus & df["BilledCost"].notna() & df["EffectiveCost"].notna()
        return details_ok | focus_ok

    @pa.dataframe_check(error="a row needs a billing account or a subscription")
    def has_account(cls, df: pd.DataFrame) -> Series[bool]:
        return df["BillingAccountId"].notna() | df["SubscriptionId"].notna()


class CostFacts(RawFocus):
    """core.cost_facts: FOCUS 1.2 charges with lineage; allowed values enforced."""

    ServiceCategory: Series[str] = pa.Field(nullable=True, isin=list(SERVICE_CATEGORIES))
    ChargeClass: Series[str] = pa.Field(nullable=True, isin=list(CHARGE_CLASSES))
    ChargeFrequency: Series[str] = pa.Field(nullable=True, isin=list(CHARGE_FREQUENCIES))
    CommitmentDiscountId: Series[str] = pa.Field(nullable=True)
    CommitmentDiscountStatus: Series[str] = pa.Field(
        nullable=True, isin=list(COMMITMENT_DISCOUNT_STATUSES)
    )
    CommitmentDiscountCategory: Series[str] = pa.Field(
        nullable=True, isin=list(COMMITMENT_DISCOUNT_CATEGORIES)
    )
    Tags: Series[str] = pa.Field(nullable=False, str_startswith="{")

    @pa.dataframe_check(
        error="CommitmentDiscountStatus is null when CommitmentDiscountId is null, and set on "
        "every Usage row that has a CommitmentDiscountId (FOCUS 1.2)"
    )
    def commitment_status_follows_id(cls, df: pd.DataFrame) -> Series[bool]:
        has_id = df["CommitmentDiscountId"].notna()
        has_status = df["CommitmentDiscountStatus"].notna()
        usage = df["ChargeCategory"] == "Usage"
        return (has_id | ~has_status) & ~(has_id & usage & ~has_status)


class DailyCostByTeam(_Lineage):
    """mart.daily_cost_by_team: cost per day, provider, currency, owner and service category."""

    ProviderName: Series[str] = pa.Field(nullable=False)
    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    department: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    team: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    environment: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    cost_center: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    ServiceCategory: Series[str] = pa.Field(nullable=False)
    billed_cost: Series[float] = pa.Field(nullable=False)
    effective_cost: Series[float] = pa.Field(nullable=False)
    resource_count: Series[int] = pa.Field(ge=0)
    row_count: Series[int] = pa.Field(gt=0)
    untagged_rows: Series[int] = pa.Field(ge=0)
    committed_rows: Series[int] = pa.Field(ge=0)

    @pa.dataframe_check(error="untagged_rows and committed_rows cannot exceed row_count")
    def counts_within_rows(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["untagged_rows"] <= df["row_count"]) & (df["committed_rows"] <= df["row_count"])

    allocation_rule: Series[str] = pa.Field(nullable=False, isin=list(ALLOCATION_RULES))


class AmortizedCosts(CostFacts):
    """core.amortized_costs: the facts with amortization classes; spread rows are whole days."""

    x_AmortizationClass: Series[str] = pa.Field(
        nullable=True, isin=["Principal", "Amortized Charge"]
    )
    x_AmortizedBy: Series[str] = pa.Field(nullable=True, isin=["provider", "platform"])
    x_AmortizedFromDate: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check(error="a platform-spread row must be marked as an Amortized Charge")
    def spread_rows_are_classified(cls, df: pd.DataFrame) -> Series[bool]:
        spread = df["x_AmortizedFromDate"].notna()
        return ~spread | (
            (df["x_AmortizationClass"] == "Amortized Charge") & (df["x_AmortizedBy"] == "platform")
        )


class AllocatedCosts(_Lineage):
    """core.allocated_costs: every row has an owner (or a sentinel) and the rule that set it."""

    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    ProviderName: Series[str] = pa.Field(nullable=False)
    department: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    team: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    environment: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    cost_center: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    x_AllocationRule: Series[str] = pa.Field(nullable=False, isin=list(ALLOCATION_RULES))
    x_AllocationDetail: Series[str] = pa.Field(nullable=False)
    x_AllocationShare: Series[float] = pa.Field(nullable=False, gt=0, le=1)

    @pa.dataframe_check(error="only shared_pool rows are shares of a pool")
    def shares_only_in_pools(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["x_AllocationRule"] == "shared_pool") | (df["x_AllocationShare"] == 1)


class CommitmentUtilization(_Lineage):
    """mart.commitment_utilization: per commitment and day, amortized, used and unused cost."""

    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    CommitmentDiscountId: Series[str] = pa.Field(nullable=False)
    utilization_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)


class CommitmentCoverage(_Lineage):
    """mart.commitment_coverage: per day, provider, service and currency, covered usage."""

    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    covered_cost: Series[float] = pa.Field(nullable=False)
    eligible_cost: Series[float] = pa.Field(nullable=False)
    coverage_pct: Series[float] = pa.Field(nullable=True)


class UntaggedSpend(_Lineage):
    """mart.untagged_spend: per day, provider and currency, cost without an owner tag."""

    ProviderName: Series[str] = pa.Field(nullable=False)
    BillingCurrency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    untagged_billed_cost: Series[float] = pa.Field(nullable=False)
    untagged_effective_cost: Series[float] = pa.Field(nullable=False)
    total_billed_cost: Series[float] = pa.Field(nullable=False)
    total_effective_cost: Series[float] = pa.Field(nullable=False)
    untagged_rows: Series[int] = pa.Field(ge=0)
    total_rows: Series[int] = pa.Field(gt=0)
    untagged_pct: Series[float] = pa.Field(nullable=True)

    @pa.dataframe_check(error="untagged_rows cannot exceed total_rows")
    def untagged_within_total(cls, df: pd.DataFrame) -> Series[bool]:
        return df["untagged_rows"] <= df["total_rows"]


class RawGcpBilling(_Lineage):
    """raw.gcp_billing: Google Cloud billing export rows, typed; each export batch once."""

    # Cloud Billing account ids look like 01A2B3-C4D5E6-F7A8B9.
    billing_account_id: Series[str] = pa.Field(
        nullable=False, str_matches=r"^[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}$"
    )
    cost: Series[float] = pa.Field(nullable=False)
    currency: Series[str] = pa.Field(nullable=False, isin=list(ISO_CURRENCIES))
    cost_type: Series[str] = pa.Field(nullable=False)
    invoice_month: Series[str] = pa.Field(nullable=False, str_matches=r"^\d{6}$")
    usage_start_time: Series[UtcTimestamp] = pa.Field(nullable=False)
    usage_end_time: Series[UtcTimestamp] = pa.Field(nullable=False)
    export_time: Series[UtcTimestamp] = pa.Field(nullable=False)
    x_ExportWatermark: Series[UtcTimestamp] = pa.Field(nullable=False)
    x_PromotionPolicy: Series[str] = pa.Field(nullable=False, isin=["discount", "payment"])

    @pa.dataframe_check(error="charge_date must be the UTC date of usage_start_time")
    def partition_matches_usage_start(cls, df: pd.DataFrame) -> Series[bool]:
        return (
            df["usage_start_time"].dt.tz_convert("UTC").dt.normalize().dt.tz_localize(None)
            == df["charge_date"]
        )

    @pa.dataframe_check(error="export_time cannot be after its day's x_ExportWatermark")
    def watermark_is_the_latest_export(cls, df: pd.DataFrame) -> Series[bool]:
        return df["export_time"] <= df["x_ExportWatermark"]


# The SQL twin of every dataframe check above (TRUE on a passing row), so the contracts run in
# DuckDB (contracts/sql.py). finops_assets_tests/contracts/test_sql.py proves each fails exactly
# the rows its pandas original fails; a check without a twin cannot be compiled.
DATAFRAME_CHECKS_SQL: dict[str, str] = {
    "charge_period_is_ordered": "ChargePeriodEnd > ChargePeriodStart",
    "partition_matches_charge_start": f"{utc_date('ChargePeriodStart')} = charge_date",
    "cost_present": (
        "(coalesce(x_ExportType, '') <> 'FocusCost' AND CostInBillingCurrency IS NOT NULL) OR "
        "(x_ExportType = 'FocusCost' AND BilledCost IS NOT NULL AND EffectiveCost IS NOT NULL)"
    ),
    "has_account": "BillingAccountId IS NOT NULL OR SubscriptionId IS NOT NULL",
    "commitment_status_follows_id": (
        "(CommitmentDiscountId IS NOT NULL OR CommitmentDiscountStatus IS NULL) AND NOT "
        "(CommitmentDiscountId IS NOT NULL AND coalesce(ChargeCategory = 'Usage', FALSE) "
        "AND CommitmentDiscountStatus IS NULL)"
    ),
    "counts_within_rows": "untagged_rows <= row_count AND committed_rows <= row_count",
    "spread_rows_are_classified": (
        "x_AmortizedFromDate IS NULL OR (x_AmortizationClass = 'Amortized Charge' "
        "AND x_AmortizedBy = 'platform')"
    ),
    "shares_only_in_pools": "x_AllocationRule = 'shared_pool' OR x_AllocationShare = 1",
    "untagged_within_total": "untagged_rows <= total_rows",
    "partition_matches_usage_start": f"{utc_date('usage_start_time')} = charge_date",
    "watermark_is_the_latest_export": "export_time <= x_ExportWatermark",
}
