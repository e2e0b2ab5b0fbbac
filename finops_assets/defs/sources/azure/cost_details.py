"""Azure Cost Management exports (cost details: ActualCost, AmortizedCost; and FocusCost) to typed
raw rows and to FOCUS 1.2, as DuckDB SQL text.

Several header sets reach us for cost details and they spell the same facts differently: EA
(PascalCase: ``BillingCurrencyCode``, ``CostInBillingCurrency``, older ``Cost``/``PreTaxCost``,
``SubscriptionGuid``), pay-as-you-go (legacy ``UsageDateTime``, ``PreTaxCost``, ``Currency``), MCA
(camelCase: ``billingCurrency``, ``costInBillingCurrency``) and MPA/CSP partner (the MCA columns,
pricing model spelled ``PricingModel``, plus ``partnerTenantId``, ``customerTenantId``,
``partnerEarnedCreditRate``...). ``resolve_azure_layout`` matches a file's columns onto one
canonical set case-insensitively (a UTF-8 byte order mark before the first name is ignored) and
records the header set in ``x_Schema`` (EA | MCA | MPA | FOCUS); ``azure_staging_select`` types
them (strict casts: a bad number fails the load instead of vanishing; ``5E-04`` is a number;
dates are ISO, ``M/D/YYYY`` or ``MM/DD/YYYY``) and ``azure_focus_sql`` merges the two cost bases
into FOCUS. A header that is none of these fails naming the file, the missing columns and the
file's columns closest to them.

DOMAIN §6, and the rules chosen where it leaves room:

* An ActualCost export is the billed basis (commitment-covered usage costs 0, commitment purchases
  as billed); an AmortizedCost export is the effective basis (covered usage at its amortized rate,
  UnusedReservation / UnusedSavingsPlan rows, no commitment purchases). raw.azure_cost keeps both
  (``x_ExportType``); the merge happens on the way to FOCUS: every amortized row, plus the actual
  rows with ChargeType Purchase/Refund and PricingModel Reservation/SavingsPlan.
* BilledCost = 0 on amortized rows the commitment pays for (ChargeType Usage, UnusedReservation or
  UnusedSavingsPlan with PricingModel Reservation/SavingsPlan), else CostInBillingCurrency.
  EffectiveCost = 0 on the actual commitment purchases/refunds (their cost is spread over the
  covered usage and the unused rows), else CostInBillingCurrency.
* Only one of the pair delivered for a scope and month (``x_CostBasis``):
  ``actual_only``: every actual row, EffectiveCost = BilledCost (cash basis: nothing to amortize
  purchases over, so a purchase counts on its day instead of disappearing);
  ``amortized_only``: every amortized row with the rule above, so commitment purchases are missing
  from BilledCost (they are not in the file). Both are flagged in the raw/azure_cost metadata.
* Unused* → ChargeCategory Usage with CommitmentDiscountStatus Unused; Refund → Purchase with
  ChargeClass Correction; Tax → Tax; RoundingAdjustment → Adjustment; Credit → Credit. Unknown
  ChargeTypes are Usage at their cost, flagged in ``x_UnknownLineItemType``.
* Commitments: CommitmentDiscountId = BenefitId, else ReservationId. An id containing
  ``/microsoft.capacity/`` is a Reservation (category Usage), ``/microsoft.billingbenefits/`` a
  Savings Plan (category Spend); without an id path PricingModel decides.
* The charge period is ``Date`` to ``Date + 1 day`` (never the billing-period start).
  BillingPeriodEndDate is an inclusive last day in the exports; FOCUS ends are exclusive (+1 day).
* ``Tags`` is JSON, or the legacy braces-less text ``"k": "v","k2": "v2"`` (wrapped in braces);
  empty means ``{}``. Account ids stay text.
* FocusCost exports are FOCUS already: their columns are taken near-directly (case-insensitive).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from finops_assets.lib.facts import FactSource
from finops_assets.lib.focus import FOCUS_COLUMNS, MONEY, QUANTITY, TEXT
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import utc_date, utc_instant, utc_month

RATE = "DECIMAL(38, 12)"
DATE = "DATE"
EXPORT_TYPES = ("ActualCost", "AmortizedCost", "FocusCost")
COST_BASES = ("merged", "actual_only", "amortized_only", "focus")
COMMITMENT_MODELS = ("Reservation", "SavingsPlan")
COMMITMENT_CHARGES = ("Purchase", "Refund")
UNUSED_CHARGES = ("UnusedReservation", "UnusedSavingsPlan")
KNOWN_CHARGE_TYPES = (
    "Usage",
    *UNUSED_CHARGES,
    "Purchase",
    "Refund",
    "Tax",
    "RoundingAdjustment",
    "Credit",
)
LINEAGE_PASSTHROUGH = ("x_DeliveryId", "x_SourceFile")

# Canonical cost-details column -> (DuckDB type, accepted names; compared case-insensitively).
_DETAIL_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Date": (DATE, ("Date", "UsageDateTime", "UsageDate")),
    "BillingAccountId": (TEXT, ("BillingAccountId", "EnrollmentNumber")),
    "BillingAccountName": (TEXT, ("BillingAccountName",)),
    "BillingProfileId": (TEXT, ("BillingProfileId",)),
    "BillingProfileName": (TEXT, ("BillingProfileName",)),
    "InvoiceSectionId": (TEXT, ("InvoiceSectionId",)),
    "InvoiceSectionName": (TEXT, ("InvoiceSectionName", "DepartmentName")),
    "InvoiceId": (TEXT, ("InvoiceId",)),
    "BillingPeriodStartDate": (DATE, ("BillingPeriodStartDate",)),
    "BillingPeriodEndDate": (DATE, ("BillingPeriodEndDate",)),
    "BillingCurrency": (TEXT, ("BillingCurrency", "BillingCurrencyCode", "Currency")),
    "CostInBillingCurrency": (MONEY, ("CostInBillingCurrency", "Cost", "PreTaxCost")),
    "PaygCostInBillingCurrency": (MONEY, ("PaygCostInBillingCurrency",)),
    "SubscriptionId": (TEXT, ("SubscriptionId", "SubscriptionGuid")),
    "SubscriptionName": (TEXT, ("SubscriptionName",)),
    "ResourceGroup": (TEXT, ("ResourceGroup", "ResourceGroupName")),
    "ResourceLocation": (TEXT, ("ResourceLocation", "Location")),
    "ResourceId": (TEXT, ("ResourceId", "InstanceId", "InstanceName")),
    "ResourceName": (TEXT, ("ResourceName",)),
    "ProductName": (TEXT, ("ProductName", "Product")),
    "MeterCategory": (TEXT, ("MeterCategory",)),
    "MeterSubCategory": (TEXT, ("MeterSubCategory", "MeterSubcategory")),
    "MeterId": (TEXT, ("MeterId",)),
    "MeterName": (TEXT, ("MeterName",)),
    "MeterRegion": (TEXT, ("MeterRegion",)),
    "UnitOfMeasure": (TEXT, ("UnitOfMeasure",)),
    "Quantity": (QUANTITY, ("Quantity", "UsageQuantity", "ConsumedQuantity")),
    "EffectivePrice": (RATE, ("EffectivePrice",)),
    "UnitPrice": (RATE, ("UnitPrice", "ResourceRate")),
    "PayGPrice": (RATE, ("PayGPrice",)),
    "ChargeType": (TEXT, ("ChargeType",)),
    "Frequency": (TEXT, ("Frequency",)),
    "PricingModel": (TEXT, ("PricingModel",)),
    "ReservationId": (TEXT, ("ReservationId",)),
    "ReservationName": (TEXT, ("ReservationName",)),
    "BenefitId": (TEXT, ("BenefitId",)),
    "BenefitName": (TEXT, ("BenefitName",)),
    "ProductOrderId": (TEXT, ("ProductOrderId",)),
    "ProductOrderName": (TEXT, ("ProductOrderName",)),
    "PublisherType": (TEXT, ("PublisherType",)),
    "PublisherName": (TEXT, ("PublisherName",)),
    "ConsumedService": (TEXT, ("ConsumedService",)),
    "ServiceFamily": (TEXT, ("ServiceFamily",)),
    "PartNumber": (TEXT, ("PartNumber",)),
    "Term": (TEXT, ("Term",)),
    "AvailabilityZone": (TEXT, ("AvailabilityZone",)),
    "CostCenter": (TEXT, ("CostCenter",)),
    "Tags": (TEXT, ("Tags",)),
}

# raw.azure_cost: the cost-details columns, the FOCUS columns a FocusCost export fills (NULL on
# cost-details rows; shared names such as BillingAccountId, Tags carry both), and lineage.
RAW_AZURE_COLUMNS: dict[str, str] = {
    **{name: spec[0] for name, spec in _DETAIL_COLUMNS.items()},
    **{c: t for c, t in FOCUS_COLUMNS.items() if c not in _DETAIL_COLUMNS},
    # ActualCost | AmortizedCost | FocusCost (the manifest's exportConfig.type).
    "x_ExportType": TEXT,
    # merged | actual_only | amortized_only | focus: which exports of the scope and month exist.
    "x_CostBasis": TEXT,
    # EA | MCA | MPA | FOCUS: which header set the file used.
    "x_Schema": TEXT,
    "charge_date": DATE,
}

# Without these a cost-details row's money cannot be placed (when, how much, in what, whose).
_ESSENTIAL_DETAILS: tuple[tuple[str, ...], ...] = (
    ("CostInBillingCurrency",),
    ("Date",),
    ("BillingCurrency",),
    ("BillingAccountId", "SubscriptionId"),
)
_ESSENTIAL_FOCUS = (
    "BilledCost",
    "EffectiveCost",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingCurrency",
    "BillingAccountId",
)

# Azure MeterCategory (compared lower-case) -> FOCUS ServiceCategory; anything else is 'Other'.
SERVICE_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "virtual machines",
            "virtual machines licenses",
            "azure app service",
            "functions",
            "container instances",
            "azure kubernetes service",
            "cloud services",
            "batch",
            "azure container apps",
        ),
        "Compute",
    ),
    **dict.fromkeys(("storage", "backup", "azure netapp files", "data box"), "Storage"),
    **dict.fromkeys(
        (
            "sql database",
            "azure cosmos db",
            "azure database for postgresql",
            "azure database for mysql",
            "redis cache",
            "sql managed instance",
        ),
        "Databases",
    ),
    **dict.fromkeys(
        (
            "virtual network",
            "bandwidth",
            "load balancer",
            "vpn gateway",
            "application gateway",
            "azure dns",
            "azure front door service",
            "content delivery network",
            "expressroute",
            "network watcher",
            "azure firewall",
            "nat gateway",
            "ip addresses",
        ),
        "Networking",
    ),
    **dict.fromkeys(
        ("event hubs", "service bus", "logic apps", "event grid", "api management"),
        "Integration",
    ),
    **dict.fromkeys(
        (
            "azure data factory v2",
            "azure synapse analytics",
            "azure databricks",
            "hdinsight",
            "stream analytics",
            "azure data explorer",
            "power bi embedded",
        ),
        "Analytics",
    ),
    **dict.fromkeys(
        ("azure monitor", "log analytics", "automation", "azure arc", "advisor"),
        "Management and Governance",
    ),
    **dict.fromkeys(
        ("key vault", "microsoft defender for cloud", "sentinel", "azure ddos protection"),
        "Security",
    ),
    **dict.fromkeys(
        ("cognitive services", "azure machine learning", "azure openai service", "foundry models"),
        "AI and Machine Learning",
    ),
    **dict.fromkeys(("azure devops", "container registry", "visual studio"), "Developer Tools"),
    **dict.fromkeys(("iot hub", "iot central", "azure digital twins"), "Internet of Things"),
    **dict.fromkeys(("media services",), "Media"),
    **dict.fromkeys(("microsoft entra id", "azure active directory b2c"), "Identity"),
}


BOM = "\ufeff"
# Columns only the MPA / CSP partner header set has (compared lower-case).
_PARTNER_COLUMNS = (
    "partnertenantid",
    "partnername",
    "customertenantid",
    "partnerearnedcreditrate",
    "partnerearnedcreditapplied",
)
# A file with these (lower-case) is FOCUS, whatever its export is called.
_FOCUS_HEADER = frozenset({"billedcost", "effectivecost", "chargeperiodstart"})


class AzureFormatError(ValueError):
    """The file is not a usable Azure export: the message names the column and the fix."""


@dataclass(frozen=True)
class AzureLayout:
    """Where each canonical column comes from in one file (only those present) and each actual
    column's DuckDB type, which decides the cast."""

    kind: str  # "details" | "focus"
    schema: str  # "EA" | "MCA" | "FOCUS"
    columns: dict[str, str]
    source_types: dict[str, str] = field(default_factory=dict)


def _lookalikes(wanted: str, names: list[str]) -> list[str]:
    """Columns that look like ``wanted``: close spellings or sharing its key word (cost, date...)."""
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(wanted.lower(), list(lowered), n=3, cutoff=0.6)
    word = next(
        (w for w in ("cost", "date", "currency", "subscription", "account") if w in wanted.lower()),
        None,
    )
    related = [n for n in names if word and word in n.lower()]
    return list(dict.fromkeys([lowered[c] for c in close] + related))[:5]


def _closest(alternatives: tuple[str, ...], names: list[str]) -> list[str]:
    """The file's columns closest to a missing canonical column or any name Azure uses for it."""
    found = _lookalikes(alternatives[0], names)
    lowered = {n.lower(): n for n in names}
    for alias in (a for c in alternatives for a in _DETAIL_COLUMNS[c][1]):
        close = difflib.get_close_matches(alias.lower(), list(lowered), n=2, cutoff=0.5)
        found += [lowered[c] for c in close]
    return list(dict.fromkeys(found))[:5]


def resolve_azure_layout(described: Mapping[str, str], export_type: str) -> AzureLayout:
    """Map an export file's columns (name -> DuckDB type, from DESCRIBE) onto the canonical set.

    Raises AzureFormatError when a column needed to place money is missing, naming the columns
    that look like it (a renamed cost column is the usual cause)."""
    names = [
        n for n in described if n not in LINEAGE_PASSTHROUGH and n.lower() not in ("filename",)
    ]
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lstrip(BOM).strip().lower(), name)
    types = {name: str(described[name]).upper() for name in names}
    if export_type == "FocusCost":
        columns = {c: by_lower[c.lower()] for c in FOCUS_COLUMNS if c.lower() in by_lower}
        missing = [c for c in _ESSENTIAL_FOCUS if c not in columns]
        if missing:
            hints = "; ".join(
                f"{m} (columns that look like it: {', '.join(_lookalikes(m, names)) or 'none'})"
                for m in missing
            )
            raise AzureFormatError(
                f"FocusCost export is missing column(s) {hints}. Fix: export the dataset as "
                "'Cost and usage details (FOCUS)' with all columns, or correct the manifest's "
                "exportConfig.type if this is an ActualCost/AmortizedCost export."
            )
        return AzureLayout("focus", "FOCUS", columns, types)
    columns = {}
    for canonical, (_, aliases) in _DETAIL_COLUMNS.items():
        for alias in aliases:
            if alias.lower() in by_lower:
                columns[canonical] = by_lower[alias.lower()]
                break
    missing = [alts for alts in _ESSENTIAL_DETAILS if not any(c in columns for c in alts)]
    if missing:
        parts = []
        for alternatives in missing:
            accepted = [a for c in alternatives for a in _DETAIL_COLUMNS[c][1]]
            look = _closest(alternatives, names)
            parts.append(
                f"{' or '.join(alternatives)} (accepted names: {', '.join(accepted)}; columns "
                f"that look like it: {', '.join(look) if look else 'none'})"
            )
        if set(by_lower) >= _FOCUS_HEADER:
            shape = (
                " The file has FOCUS columns (BilledCost, EffectiveCost, ChargePeriodStart): it "
                "is a FOCUS export, not cost details. Deliver it as an Azure FocusCost export run "
                "with its manifest.json, or under focus/<provider>/<dataset>/."
            )
        elif len(missing) >= len(_ESSENTIAL_DETAILS) - 1:
            shape = (
                " The header matches none of the Azure cost details header sets (EA, MCA, "
                f"MPA/CSP partner, pay-as-you-go); its first columns are: {', '.join(names[:8])}."
            )
        else:
            shape = ""
        raise AzureFormatError(
            f"{export_type} export is missing column(s) {'; '.join(parts)}: without them its "
            f"cost cannot be placed by amount, day, currency and account.{shape} Fix: re-create "
            "the export as a standard Cost Management 'Cost and usage details' export (EA, MCA "
            "or partner column names, all columns), or rename the column back to the name "
            "Azure uses."
        )
    if any(c in by_lower for c in _PARTNER_COLUMNS):
        return AzureLayout("details", "MPA", columns, types)
    schema = (
        "MCA"
        if columns["CostInBillingCurrency"][:1].islower()
        or (
            "BillingCurrency" in columns and columns["BillingCurrency"].lower() == "billingcurrency"
        )
        else "EA"
    )
    return AzureLayout("details", schema, columns, types)


def _date_from_text(expression: str) -> str:
    """ISO (``2025-01-02``, ``2025-01-02T00:00:00Z``) or old CSV ``M/D/YYYY`` text to DATE."""
    text = f"NULLIF(trim({expression}), '')"
    return (
        f"CASE WHEN contains({text}, '/') THEN CAST(strptime({text}, '%m/%d/%Y') AS DATE) "
        f"ELSE CAST(left({text}, 10) AS DATE) END"
    )


def tags_json_sql(expression: str) -> str:
    """Tags text as JSON object text: JSON as is, the legacy braces-less form wrapped in braces,
    empty as '{}'."""
    text = f"trim(CAST({expression} AS VARCHAR))"
    return (
        f"CASE WHEN {expression} IS NULL OR {text} IN ('', 'null', '{{}}') THEN '{{}}' "
        f"WHEN starts_with({text}, '{{') THEN {text} "
        f"ELSE '{{' || {text} || '}}' END"
    )


def _typed(expression: str, source_type: str, target: str) -> str:
    is_text = source_type == "VARCHAR"
    if target == DATE:
        if is_text:
            return _date_from_text(expression)
        return f"CAST({expression} AS DATE)"
    if target == TEXT:
        return f"NULLIF({expression}, '')" if is_text else f"CAST({expression} AS VARCHAR)"
    if target.startswith("TIMESTAMP"):
        if is_text:
            return f"CAST(NULLIF(trim({expression}), '') AS TIMESTAMPTZ)"
        if source_type.startswith("TIMESTAMP") and "TIME ZONE" not in source_type:
            return utc_instant(f"CAST({expression} AS TIMESTAMP)")
        return f"CAST({expression} AS TIMESTAMPTZ)"
    if is_text:
        return f"CAST(NULLIF(trim({expression}), '') AS {target})"
    return f"CAST({expression} AS {target})"


def azure_staging_select(
    source_sql: str, layout: AzureLayout, export_type: str, cost_basis: str
) -> str:
    """SELECT over ``source_sql`` returning RAW_AZURE_COLUMNS (missing ones as typed NULL) plus
    x_DeliveryId and x_SourceFile passed through. Strict casts: a bad value fails the statement."""
    expressions = []
    for column, target in RAW_AZURE_COLUMNS.items():
        if column in ("charge_date", "x_ExportType", "x_CostBasis", "x_Schema"):
            continue
        actual = layout.columns.get(column)
        if actual is None:
            expression = "'{}'" if column == "Tags" else f"CAST(NULL AS {target})"
        elif column == "Tags":
            expression = tags_json_sql(q(actual))
        else:
            expression = _typed(q(actual), layout.source_types.get(actual, "VARCHAR"), target)
        expressions.append(f"{expression} AS {q(column)}")
    charge_date = utc_date("ChargePeriodStart") if layout.kind == "focus" else "Date"
    typed = ",\n            ".join(expressions)
    outputs = ", ".join(
        q(c)
        for c in RAW_AZURE_COLUMNS
        if c not in ("charge_date", "x_ExportType", "x_CostBasis", "x_Schema")
    )
    return f"""
        SELECT {outputs},
               {sql_literal(export_type)} AS x_ExportType,
               {sql_literal(cost_basis)} AS x_CostBasis,
               {sql_literal(layout.schema)} AS x_Schema,
               {charge_date} AS charge_date,
               x_DeliveryId, x_SourceFile
        FROM (
            SELECT {typed},
            x_DeliveryId, x_SourceFile
            FROM {source_sql}
        ) AS typed_azure
    """


def _list(values) -> str:
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


def _window(days: tuple[date, date]) -> str:
    return f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"


# Which rows of raw reach FOCUS (DOMAIN §6 merge), and which amortized rows a commitment pays for.
_IS_COMMITMENT_PURCHASE = (
    f"(ChargeType IN {_list(COMMITMENT_CHARGES)} AND PricingModel IN {_list(COMMITMENT_MODELS)})"
)
_KEEP = f"""(x_ExportType = 'FocusCost'
        OR (x_ExportType = 'AmortizedCost' AND x_CostBasis IN ('merged', 'amortized_only'))
        OR (x_ExportType = 'ActualCost' AND x_CostBasis = 'actual_only')
        OR (x_ExportType = 'ActualCost' AND x_CostBasis = 'merged' AND {_IS_COMMITMENT_PURCHASE}))"""
_COVERED = (
    f"(x_ExportType = 'AmortizedCost' AND coalesce(ChargeType, 'Usage') IN "
    f"{_list(('Usage', *UNUSED_CHARGES))} AND PricingModel IN {_list(COMMITMENT_MODELS)})"
)


def bases_disagree_sql(table: str, days: tuple[date, date], tolerance: str = "0.01") -> str:
    """Where a scope's ActualCost and AmortizedCost exports disagree on what they must share: the
    rows no commitment is involved in (PricingModel not Reservation / SavingsPlan) cost the same
    in both bases. Per charge day, billing account and currency: each export's Σ, the delta and
    the files, for merged months only. A difference means the two runs saw different usage (run
    at different times, or of different scopes) and the merge would not conserve money."""
    on_demand = f"coalesce(PricingModel, '') NOT IN {_list(COMMITMENT_MODELS)}"
    return f"""
        WITH sides AS (
            SELECT charge_date, {billing_account_sql()} AS account, BillingCurrency AS currency,
                   sum(CostInBillingCurrency) FILTER (WHERE x_ExportType = 'ActualCost') AS actual,
                   sum(CostInBillingCurrency) FILTER (WHERE x_ExportType = 'AmortizedCost')
                       AS amortized,
                   string_agg(DISTINCT x_SourceFile, ', ' ORDER BY x_SourceFile)
                       FILTER (WHERE x_ExportType = 'ActualCost') AS actual_files,
                   string_agg(DISTINCT x_SourceFile, ', ' ORDER BY x_SourceFile)
                       FILTER (WHERE x_ExportType = 'AmortizedCost') AS amortized_files
            FROM {table}
            WHERE {_window(days)} AND x_CostBasis = 'merged' AND {on_demand}
            GROUP BY ALL
        )
        SELECT charge_date, account, currency, coalesce(actual, 0) AS actual,
               coalesce(amortized, 0) AS amortized,
               coalesce(amortized, 0) - coalesce(actual, 0) AS delta,
               coalesce(actual_files, '(none)') AS actual_files,
               coalesce(amortized_files, '(none)') AS amortized_files
        FROM sides
        WHERE abs(coalesce(amortized, 0) - coalesce(actual, 0)) > {tolerance}
        ORDER BY charge_date, account, currency
    """


def billing_account_sql() -> str:
    """The billing account a cost-details row belongs to (EA enrollment / MCA billing account;
    the subscription when an export carries no billing account column)."""
    return "coalesce(BillingAccountId, SubscriptionId)"


def _service_category_values() -> str:
    return ", ".join(f"({sql_literal(c)}, {sql_literal(v)})" for c, v in SERVICE_CATEGORIES.items())


def _detail_expressions() -> dict[str, str]:
    """FOCUS column -> expression over cost-details rows of raw.azure_cost."""
    cost = "coalesce(CostInBillingCurrency, 0)"
    charge = "coalesce(ChargeType, 'Usage')"
    billed = f"CASE WHEN {_COVERED} THEN 0 ELSE {cost} END"
    effective = (
        f"CASE WHEN x_ExportType = 'ActualCost' AND x_CostBasis = 'merged' "
        f"AND {_IS_COMMITMENT_PURCHASE} THEN 0 ELSE {cost} END"
    )
    commitment_id = "coalesce(NULLIF(trim(BenefitId), ''), NULLIF(trim(ReservationId), ''))"
    is_commitment = (
        f"(PricingModel IN {_list(COMMITMENT_MODELS)} OR {charge} IN {_list(UNUSED_CHARGES)})"
    )
    discount_id = f"CASE WHEN {is_commitment} THEN {commitment_id} END"
    commitment_type = f"""CASE WHEN ({discount_id}) IS NULL THEN NULL
            WHEN contains(lower({commitment_id}), '/microsoft.capacity/') THEN 'Reservation'
            WHEN contains(lower({commitment_id}), '/microsoft.billingbenefits/') THEN 'Savings Plan'
            WHEN PricingModel = 'SavingsPlan' OR {charge} = 'UnusedSavingsPlan' THEN 'Savings Plan'
            ELSE 'Reservation' END"""
    category = f"""CASE
            WHEN {charge} IN ('Usage', 'UnusedReservation', 'UnusedSavingsPlan') THEN 'Usage'
            WHEN {charge} IN ('Purchase', 'Refund') THEN 'Purchase'
            WHEN {charge} = 'Tax' THEN 'Tax'
            WHEN {charge} = 'RoundingAdjustment' THEN 'Adjustment'
            WHEN {charge} = 'Credit' THEN 'Credit'
            ELSE 'Usage' END"""
    is_usage = (
        f"({charge} NOT IN {_list(('Purchase', 'Refund', 'Tax', 'RoundingAdjustment', 'Credit'))})"
    )
    is_unused = f"({charge} IN {_list(UNUSED_CHARGES)})"
    frequency = f"""CASE lower(replace(coalesce(Frequency, ''), '-', ''))
            WHEN 'usagebased' THEN 'Usage-Based'
            WHEN 'onetime' THEN 'One-Time'
            WHEN 'recurring' THEN 'Recurring'
            ELSE CASE WHEN {is_usage} THEN 'Usage-Based' ELSE 'One-Time' END END"""
    pricing_category = f"""CASE
            WHEN {is_usage} AND PricingModel IN {_list(COMMITMENT_MODELS)} THEN 'Committed'
            WHEN {is_usage} AND PricingModel = 'Spot' THEN 'Dynamic'
            WHEN {is_usage} OR {charge} = 'Purchase' THEN 'Standard'
            ELSE 'Other' END"""
    day = utc_instant("CAST(Date AS TIMESTAMP)")
    month_start = "date_trunc('month', Date)"
    return {
        "AvailabilityZone": "AvailabilityZone",
        "BilledCost": billed,
        "BillingAccountId": billing_account_sql(),
        "BillingAccountName": "BillingAccountName",
        "BillingCurrency": "BillingCurrency",
        "BillingPeriodStart": (
            utc_instant(f"CAST(coalesce(BillingPeriodStartDate, {month_start}) AS TIMESTAMP)")
        ),
        "BillingPeriodEnd": (
            utc_instant(
                "CAST(coalesce(BillingPeriodEndDate + INTERVAL 1 DAY, "
                f"{month_start} + INTERVAL 1 MONTH) AS TIMESTAMP)"
            )
        ),
        "ChargeCategory": category,
        "ChargeClass": f"CASE WHEN {charge} = 'Refund' THEN 'Correction' END",
        "ChargeDescription": (
            f"coalesce(ProductName, MeterName, BenefitName, ReservationName, {charge})"
        ),
        "ChargeFrequency": frequency,
        "ChargePeriodStart": day,
        "ChargePeriodEnd": f"{day} + INTERVAL 1 DAY",
        "CommitmentDiscountCategory": f"""CASE ({commitment_type})
            WHEN 'Reservation' THEN 'Usage' WHEN 'Savings Plan' THEN 'Spend' END""",
        "CommitmentDiscountId": discount_id,
        "CommitmentDiscountName": (
            f"CASE WHEN ({discount_id}) IS NOT NULL THEN coalesce(BenefitName, ReservationName) END"
        ),
        "CommitmentDiscountStatus": f"""CASE WHEN ({discount_id}) IS NOT NULL AND {is_usage}
            THEN CASE WHEN {is_unused} THEN 'Unused' ELSE 'Used' END END""",
        "CommitmentDiscountType": commitment_type,
        "ConsumedQuantity": f"CASE WHEN {is_usage} AND NOT {is_unused} THEN Quantity END",
        "ConsumedUnit": f"CASE WHEN {is_usage} AND NOT {is_unused} THEN UnitOfMeasure END",
        "ContractedCost": f"coalesce(CAST(UnitPrice * Quantity AS {MONEY}), {cost})",
        "ContractedUnitPrice": "UnitPrice",
        "EffectiveCost": effective,
        "InvoiceId": "InvoiceId",
        "InvoiceIssuerName": "'Microsoft'",
        "ListCost": f"coalesce(PaygCostInBillingCurrency, CAST(PayGPrice * Quantity AS {MONEY}))",
        "ListUnitPrice": "PayGPrice",
        "PricingCategory": pricing_category,
        # FOCUS: no pricing quantity on tax, and a quantity always has its unit.
        "PricingQuantity": (
            f"CASE WHEN ({category}) = 'Tax' OR NULLIF(trim(UnitOfMeasure), '') IS NULL "
            "THEN NULL ELSE Quantity END"
        ),
        "PricingUnit": (
            f"CASE WHEN ({category}) = 'Tax' OR Quantity IS NULL THEN NULL "
            "ELSE NULLIF(trim(UnitOfMeasure), '') END"
        ),
        "ProviderName": "'Microsoft'",
        "PublisherName": "coalesce(PublisherName, 'Microsoft')",
        "RegionId": "lower(replace(ResourceLocation, ' ', ''))",
        "RegionName": "ResourceLocation",
        "ResourceId": "ResourceId",
        "ResourceName": "coalesce(ResourceName, regexp_extract(ResourceId, '[^/]+$'))",
        "ServiceCategory": "coalesce(service_categories.category, 'Other')",
        "ServiceName": "coalesce(MeterCategory, ConsumedService, ProductName, 'Unknown')",
        "SkuId": "MeterId",
        "SkuMeter": "MeterName",
        "SubAccountId": "SubscriptionId",
        "SubAccountName": "SubscriptionName",
        "Tags": "coalesce(Tags, '{}')",
    }


def azure_focus_sql(raw_table: str, days: tuple[date, date]) -> str:
    """raw.azure_cost rows of ``days`` as FOCUS 1.2 (exactly FOCUS_COLUMNS) plus charge_date,
    lineage (x_DeliveryId, x_SourceFile, x_Dataset, x_BillingPeriod), x_ExportType, x_CostBasis,
    x_LineItemType (the ChargeType) and x_UnknownLineItemType. Cost-details rows are merged per
    DOMAIN §6 (see the module docstring); FocusCost rows pass through near-directly."""
    details = _detail_expressions()
    detail_columns = ",\n            ".join(
        f"CAST({details.get(c, 'NULL')} AS {t}) AS {q(c)}" for c, t in FOCUS_COLUMNS.items()
    )
    focus_passthrough = {
        "Tags": "CASE WHEN Tags IS NULL OR trim(Tags) IN ('', 'null') THEN '{}' ELSE Tags END",
        "ProviderName": "coalesce(ProviderName, 'Microsoft')",
        "InvoiceIssuerName": "coalesce(InvoiceIssuerName, 'Microsoft')",
    }
    focus_columns = ",\n            ".join(
        f"CAST({focus_passthrough.get(c, q(c))} AS {t}) AS {q(c)}" for c, t in FOCUS_COLUMNS.items()
    )
    lineage = "charge_date, x_DeliveryId, x_SourceFile, x_Dataset, x_BillingPeriod, x_ExportType, x_CostBasis"
    return f"""
        WITH service_categories(code, category) AS (VALUES {_service_category_values()}),
        azure AS NOT MATERIALIZED (SELECT * FROM {raw_table} WHERE {_window(days)} AND {_KEEP})
        SELECT {detail_columns},
            {lineage},
            CAST(coalesce(ChargeType, 'Usage') AS VARCHAR) AS x_LineItemType,
            CAST(coalesce(ChargeType, 'Usage') NOT IN {_list(KNOWN_CHARGE_TYPES)} AS BOOLEAN)
                AS x_UnknownLineItemType
        FROM azure
        LEFT JOIN service_categories ON service_categories.code = lower(azure.MeterCategory)
        WHERE x_ExportType <> 'FocusCost'
        UNION ALL BY NAME
        SELECT {focus_columns},
            {lineage},
            CAST(ChargeCategory AS VARCHAR) AS x_LineItemType,
            false AS x_UnknownLineItemType
        FROM azure
        WHERE x_ExportType = 'FocusCost'
    """


def azure_basis_totals_sql(raw_table: str, days: tuple[date, date]) -> str:
    """Per charge_date, currency, billing account and invoice month: FOCUS rows, the invoice basis
    (Σ CostInBillingCurrency of the ActualCost export) and the amortized basis (Σ of the
    AmortizedCost export), straight from raw on a code path of its own (reconciles
    azure_focus_sql). With only one export of the pair, that export is both bases, except that an
    amortized-only month's invoice basis leaves out the rows a commitment pays for (the purchase
    is not in the file). FocusCost rows count their own BilledCost / EffectiveCost."""
    cost = "coalesce(CostInBillingCurrency, 0)"
    return f"""
        SELECT charge_date,
               BillingCurrency,
               {billing_account_sql()} AS BillingAccountId,
               coalesce(strftime(BillingPeriodStartDate, '%Y-%m'),
                        {utc_month("BillingPeriodStart")},
                        strftime(charge_date, '%Y-%m')) AS billing_period,
               count_if(CASE x_ExportType
                   WHEN 'ActualCost' THEN x_CostBasis = 'actual_only'
                       OR (ChargeType IN ('Purchase', 'Refund')
                           AND PricingModel IN ('Reservation', 'SavingsPlan'))
                   ELSE true END) AS "rows",
               sum(CASE
                   WHEN x_ExportType = 'FocusCost' THEN coalesce(BilledCost, 0)
                   WHEN x_ExportType = 'ActualCost' THEN {cost}
                   WHEN x_CostBasis = 'amortized_only'
                        AND NOT (coalesce(ChargeType, 'Usage') IN
                                     ('Usage', 'UnusedReservation', 'UnusedSavingsPlan')
                                 AND PricingModel IN ('Reservation', 'SavingsPlan'))
                       THEN {cost}
                   ELSE 0 END) AS billed,
               sum(CASE
                   WHEN x_ExportType = 'FocusCost' THEN coalesce(EffectiveCost, 0)
                   WHEN x_ExportType = 'AmortizedCost' THEN {cost}
                   WHEN x_CostBasis = 'actual_only' THEN {cost}
                   ELSE 0 END) AS effective
        FROM {raw_table}
        WHERE {_window(days)}
        GROUP BY ALL
        ORDER BY ALL
    """


FACT_SOURCE = FactSource(
    "azure_cost",
    "raw.azure_cost",
    azure_focus_sql,
    azure_basis_totals_sql,
    "the ActualCost export's Σ CostInBillingCurrency / the AmortizedCost export's Σ",
)
