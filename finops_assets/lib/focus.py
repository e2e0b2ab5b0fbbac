"""The FOCUS columns we rely on, their types, and their allowed values.

Everything here is data about the specification (FOCUS 1.2, with the 1.0/1.1 names that moved),
so loaders, contracts and the sample-data generator agree on one list.
"""

from __future__ import annotations

# DuckDB type per FOCUS 1.2 column. Money and quantities are exact decimals so sums are exact to
# the cent over millions of rows; timestamps are UTC.
MONEY = "DECIMAL(38, 12)"
QUANTITY = "DECIMAL(38, 12)"
TIMESTAMP = "TIMESTAMPTZ"
TEXT = "VARCHAR"

FOCUS_COLUMNS: dict[str, str] = {
    "AvailabilityZone": TEXT,
    "BilledCost": MONEY,
    "BillingAccountId": TEXT,
    "BillingAccountName": TEXT,
    "BillingAccountType": TEXT,
    "BillingCurrency": TEXT,
    "BillingPeriodEnd": TIMESTAMP,
    "BillingPeriodStart": TIMESTAMP,
    "CapacityReservationId": TEXT,
    "CapacityReservationStatus": TEXT,
    "ChargeCategory": TEXT,
    "ChargeClass": TEXT,
    "ChargeDescription": TEXT,
    "ChargeFrequency": TEXT,
    "ChargePeriodEnd": TIMESTAMP,
    "ChargePeriodStart": TIMESTAMP,
    "CommitmentDiscountCategory": TEXT,
    "CommitmentDiscountId": TEXT,
    "CommitmentDiscountName": TEXT,
    "CommitmentDiscountQuantity": QUANTITY,
    "CommitmentDiscountStatus": TEXT,
    "CommitmentDiscountType": TEXT,
    "CommitmentDiscountUnit": TEXT,
    "ConsumedQuantity": QUANTITY,
    "ConsumedUnit": TEXT,
    "ContractedCost": MONEY,
    "ContractedUnitPrice": MONEY,
    "EffectiveCost": MONEY,
    "InvoiceId": TEXT,
    "InvoiceIssuerName": TEXT,
    "ListCost": MONEY,
    "ListUnitPrice": MONEY,
    "PricingCategory": TEXT,
    "PricingCurrency": TEXT,
    "PricingCurrencyContractedUnitPrice": MONEY,
    "PricingCurrencyEffectiveCost": MONEY,
    "PricingCurrencyListUnitPrice": MONEY,
    "PricingQuantity": QUANTITY,
    "PricingUnit": TEXT,
    "ProviderName": TEXT,
    "PublisherName": TEXT,
    "RegionId": TEXT,
    "RegionName": TEXT,
    "ResourceId": TEXT,
    "ResourceName": TEXT,
    "ResourceType": TEXT,
    "ServiceCategory": TEXT,
    "ServiceName": TEXT,
    "ServiceSubcategory": TEXT,
    "SkuId": TEXT,
    "SkuMeter": TEXT,
    "SkuPriceDetails": TEXT,
    "SkuPriceId": TEXT,
    "SubAccountId": TEXT,
    "SubAccountName": TEXT,
    "SubAccountType": TEXT,
    "Tags": TEXT,
}

# Columns a delivery must carry (FOCUS "Mandatory, non-null" for the cost model we need). A file
# without one of these is rejected with the column named.
MANDATORY_COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "InvoiceIssuerName",
    "ProviderName",
    "PublisherName",
    "ServiceName",
    "ServiceCategory",
)

# FOCUS requires these to be filled, but real producers leave some empty (e.g. Oracle's
# ContractedCost). Rows missing them are kept as delivered (never invented) and counted in the
# raw/focus metadata; every other mandatory column must have a value or the load fails.
KEPT_WHEN_EMPTY: tuple[str, ...] = (
    "ListCost",
    "ContractedCost",
    "InvoiceIssuerName",
    "PublisherName",
    "ServiceName",
    "ServiceCategory",
)
REQUIRED_VALUES: tuple[str, ...] = tuple(c for c in MANDATORY_COLUMNS if c not in KEPT_WHEN_EMPTY)

# FOCUS 1.3 renamed ProviderName/PublisherName; accept the new names as substitutes.
COLUMN_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "ProviderName": ("ServiceProviderName",),
    "PublisherName": ("HostProviderName", "ServiceProviderName"),
}


CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_CLASSES = ("Correction",)
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
COMMITMENT_DISCOUNT_STATUSES = ("Used", "Unused")
COMMITMENT_DISCOUNT_CATEGORIES = ("Spend", "Usage")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")
SERVICE_CATEGORIES = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)

# Enumerated columns and their allowed values; producers vary the case ("Usage-based"), which
# core.cost_facts maps back to the specification's spelling.
ENUMERATED_COLUMNS: dict[str, tuple[str, ...]] = {
    "ChargeCategory": CHARGE_CATEGORIES,
    "ChargeClass": CHARGE_CLASSES,
    "ChargeFrequency": CHARGE_FREQUENCIES,
    "CommitmentDiscountStatus": COMMITMENT_DISCOUNT_STATUSES,
    "CommitmentDiscountCategory": COMMITMENT_DISCOUNT_CATEGORIES,
    "PricingCategory": PRICING_CATEGORIES,
    "ServiceCategory": SERVICE_CATEGORIES,
}

# Lineage and platform columns every daily table carries (DESIGN §1).
PARTITION_COLUMN = "charge_date"
LINEAGE_COLUMNS = ("x_DeliveryId", "x_SourceFile")
