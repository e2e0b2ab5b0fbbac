"""AWS Cost and Usage Reports (legacy CSV, CUR 1 Athena/Parquet, CUR 2.0) to typed raw rows and
to FOCUS 1.2, as DuckDB SQL text.

Three flavours reach us and they name the same facts differently:

* ``legacy``: CUR CSV with slash names (``lineItem/UnblendedCost``) and one column per tag
  (``resourceTags/user:Team``; keys are case-sensitive, so ``user:team`` can exist too);
* ``athena``: CUR 1 in Parquet with Athena names (``line_item_unblended_cost``,
  ``resource_tags_user_team``);
* ``cur2``: Data Exports CUR 2.0 with snake names, ``product_region_code``, and the map columns
  ``product``, ``resource_tags``, ``cost_category`` and ``discount`` (JSON text in CSV exports).

``resolve_cur_layout`` maps a file's columns onto one canonical snake-case set
(``RAW_CUR_COLUMNS``), ``cur_staging_select`` types them (strict casts: a bad number fails the
load instead of vanishing) and ``cur_focus_sql`` turns the typed rows into FOCUS 1.2 with the
amortization formula of the AWS Cloud Intelligence Dashboards. ``cur_basis_totals_sql`` recomputes
the billed and amortized totals on a separate code path, for reconciliation.

Rules chosen where the sources leave room (DOMAIN §3-§4):

* Split-cost-allocation detail rows (``line_item_operation`` ``EKSPod-EC2``/``ECSTask-EC2``) are
  kept in raw but never reach FOCUS or the totals: they repeat cost already on the instance rows.
* BilledCost = net unblended cost when the row has one, else unblended; NULL counts as 0.
* ChargeCategory: Usage, DiscountedUsage, SavingsPlanCoveredUsage and SavingsPlanNegation are
  Usage (the negation is the billed-basis offset of covered usage, not a credit: classing it as a
  credit would show a fake credit as large as the covered on-demand cost); SavingsPlanUpfrontFee,
  SavingsPlanRecurringFee, RIFee and Fee are Purchase; Tax is Tax; Credit, Refund and the
  discount types are Credit. Unknown types are Usage at unblended cost, flagged in
  ``x_UnknownLineItemType`` so they can be counted.
* ChargeClass is 'Correction' on any row whose usage starts before its billing period starts: it
  fixes an earlier period (in practice refunds and credits for past months). Otherwise NULL.
* ChargeFrequency: usage-like types and the unknown ones are Usage-Based; RIFee and
  SavingsPlanRecurringFee are Recurring; SavingsPlanUpfrontFee and an RI Fee (reservation ARN
  set) are One-Time; any other Fee is Recurring when it spans its whole billing period (support
  plans, subscriptions) and One-Time otherwise; Tax and the discount types follow usage, so
  Usage-Based; Credit and Refund are One-Time.
* Commitments: CommitmentDiscountId is the reservation ARN (DiscountedUsage, RIFee, RI Fee) or
  the Savings Plan ARN (SavingsPlan* types); Type 'Reserved Instance' / 'Savings Plan'; Category
  Usage (RI) / Spend (SP). Status is 'Used' on the Usage rows that carry an id (covered usage and
  the SP negation) and NULL on Purchase rows. We keep one FOCUS row per CUR row, so the unused
  part of a commitment is the EffectiveCost of its RIFee / SavingsPlanRecurringFee Purchase row
  (``x_LineItemType`` tells them apart) instead of a separate "Unused" row.
* ListCost = public on-demand cost; when AWS left it empty it is 0 on rows that are not
  consumption and stays NULL on consumption rows (FOCUS tolerates empty here, we never invent).
  The SP negation has ListCost and ContractedCost 0 so covered usage is not cancelled out.
* ContractedCost = the billed basis (net or unblended), except DiscountedUsage (AWS writes 0
  unblended there; the public on-demand cost is the only undiscounted figure) and the negation.
* PricingQuantity = usage amount, except NULL on Tax (FOCUS 1.2 PricingQuantity-C-004-C) and
  on credits and discounts without a pricing unit; PricingUnit = pricing unit when the row has a
  PricingQuantity (FOCUS: unit null iff quantity null).
* ChargePeriodEnd = usage end, except on rows AWS dates at an instant (an RI upfront Fee has
  usage end = usage start): the end of the start's UTC day, so FOCUS's end > start holds.
* ServiceCategory: a lookup on ``product_servicecode`` then ``line_item_product_code``
  (``_SERVICE_CATEGORIES``), 'Other' when neither is known; Tax rows are 'Other'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from finops_assets.lib.facts import FactSource
from finops_assets.lib.focus import FOCUS_COLUMNS, MONEY, QUANTITY, TEXT, TIMESTAMP
from finops_assets.lib.focus_taxonomy import subcategory_candidate_sql
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import utc_date, utc_instant, utc_month, utc_naive

FLAVOURS = ("legacy", "athena", "cur2")
RATE = "DECIMAL(38, 12)"
LINEAGE_PASSTHROUGH = ("x_DeliveryId", "x_SourceFile")

# Canonical raw.aws_cur columns (CUR 1 Athena spelling) -> DuckDB type. Account ids stay text so
# their leading zeros survive; money and quantities are exact decimals; timestamps are UTC.
_SOURCE_COLUMNS: dict[str, str] = {
    "identity_line_item_id": TEXT,
    "identity_time_interval": TEXT,
    "bill_invoice_id": TEXT,
    "bill_invoicing_entity": TEXT,
    "bill_billing_entity": TEXT,
    "bill_bill_type": TEXT,
    "bill_payer_account_id": TEXT,
    "bill_payer_account_name": TEXT,
    "bill_billing_period_start_date": TIMESTAMP,
    "bill_billing_period_end_date": TIMESTAMP,
    "line_item_usage_account_id": TEXT,
    "line_item_usage_account_name": TEXT,
    "line_item_line_item_type": TEXT,
    "line_item_usage_start_date": TIMESTAMP,
    "line_item_usage_end_date": TIMESTAMP,
    "line_item_product_code": TEXT,
    "line_item_usage_type": TEXT,
    "line_item_operation": TEXT,
    "line_item_availability_zone": TEXT,
    "line_item_resource_id": TEXT,
    "line_item_usage_amount": QUANTITY,
    "line_item_normalization_factor": QUANTITY,
    "line_item_normalized_usage_amount": QUANTITY,
    "line_item_currency_code": TEXT,
    "line_item_unblended_rate": RATE,
    "line_item_unblended_cost": MONEY,
    "line_item_blended_rate": RATE,
    "line_item_blended_cost": MONEY,
    "line_item_net_unblended_rate": RATE,
    "line_item_net_unblended_cost": MONEY,
    "line_item_line_item_description": TEXT,
    "line_item_tax_type": TEXT,
    "line_item_legal_entity": TEXT,
    "product_product_name": TEXT,
    "product_servicecode": TEXT,
    "product_servicename": TEXT,
    "product_product_family": TEXT,
    "product_region": TEXT,
    "product_region_code": TEXT,
    "product_location": TEXT,
    "product_instance_type": TEXT,
    "product_sku": TEXT,
    "pricing_rate_code": TEXT,
    "pricing_rate_id": TEXT,
    "pricing_currency": TEXT,
    "pricing_public_on_demand_cost": MONEY,
    "pricing_public_on_demand_rate": RATE,
    "pricing_term": TEXT,
    "pricing_unit": TEXT,
    "pricing_purchase_option": TEXT,
    "reservation_reservation_a_r_n": TEXT,
    "reservation_effective_cost": MONEY,
    "reservation_net_effective_cost": MONEY,
    "reservation_amortized_upfront_fee_for_billing_period": MONEY,
    "reservation_net_amortized_upfront_fee_for_billing_period": MONEY,
    "reservation_amortized_upfront_cost_for_usage": MONEY,
    "reservation_recurring_fee_for_usage": MONEY,
    "reservation_unused_amortized_upfront_fee_for_billing_period": MONEY,
    "reservation_net_unused_amortized_upfront_fee_for_billing_period": MONEY,
    "reservation_unused_recurring_fee": MONEY,
    "reservation_net_unused_recurring_fee": MONEY,
    "reservation_unused_quantity": QUANTITY,
    "savings_plan_savings_plan_a_r_n": TEXT,
    "savings_plan_savings_plan_rate": RATE,
    "savings_plan_savings_plan_effective_cost": MONEY,
    "savings_plan_net_savings_plan_effective_cost": MONEY,
    "savings_plan_total_commitment_to_date": MONEY,
    "savings_plan_used_commitment": MONEY,
    "savings_plan_amortized_upfront_commitment_for_billing_period": MONEY,
    "savings_plan_net_amortized_upfront_commitment_for_billing_period": MONEY,
    "savings_plan_recurring_commitment_for_billing_period": MONEY,
    "savings_plan_net_recurring_commitment_for_billing_period": MONEY,
}

RAW_CUR_COLUMNS: dict[str, str] = {
    **_SOURCE_COLUMNS,
    # JSON object text of the non-empty tags, keyed exactly as delivered ('{}' when none).
    "x_ResourceTags": TEXT,
    # JSON object text of the cost categories ('{}' when none).
    "x_CostCategories": TEXT,
    # JSON object text of the AWS account's tags (CUR 2.0 `tags` map, `accountTag/` keys, prefix
    # removed; '{}' when none): what allocation inherits for untagged resources of the account.
    "x_AccountTags": TEXT,
    # Which flavour the row was read from: legacy | athena | cur2.
    "x_Flavour": TEXT,
    # UTC date of line_item_usage_start_date: the partition key.
    "charge_date": "DATE",
}

# Without these a row's money cannot be placed (who, when, how much, in what): refuse the file.
_ESSENTIAL: tuple[tuple[str, ...], ...] = (
    ("line_item_line_item_type",),
    ("line_item_unblended_cost",),
    ("line_item_usage_start_date",),
    ("line_item_usage_end_date",),
    ("line_item_usage_account_id", "bill_payer_account_id"),
    ("line_item_currency_code",),
)
_LEGACY_SPELLING = {
    "line_item_line_item_type": "lineItem/LineItemType",
    "line_item_unblended_cost": "lineItem/UnblendedCost",
    "line_item_usage_start_date": "lineItem/UsageStartDate",
    "line_item_usage_end_date": "lineItem/UsageEndDate",
    "line_item_usage_account_id": "lineItem/UsageAccountId",
    "bill_payer_account_id": "bill/PayerAccountId",
    "line_item_currency_code": "lineItem/CurrencyCode",
}
_FLAVOUR_DESCRIPTION = {
    "legacy": "legacy CUR (slash names such as lineItem/UnblendedCost)",
    "athena": "CUR 1 Athena/Parquet (snake names such as line_item_unblended_cost)",
    "cur2": "CUR 2.0 Data Export (snake names with product/resource_tags map columns)",
}
_ACCOUNT_ID_COLUMNS = ("bill_payer_account_id", "line_item_usage_account_id")
_MAP_COLUMNS = ("product", "resource_tags", "cost_category", "discount", "tags")

SPLIT_COST_OPERATIONS = ("EKSPod-EC2", "ECSTask-EC2")
SAVINGS_PLAN_TYPES = (
    "SavingsPlanCoveredUsage",
    "SavingsPlanNegation",
    "SavingsPlanUpfrontFee",
    "SavingsPlanRecurringFee",
)
USAGE_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")
DISCOUNT_TYPES = (
    "BundledDiscount",
    "Discount",
    "EdpDiscount",
    "PrivateRateDiscount",
    "SppDiscount",
    "DistributorDiscount",
    "RiVolumeDiscount",
)
KNOWN_LINE_ITEM_TYPES = (
    *USAGE_TYPES,
    "SavingsPlanNegation",
    "SavingsPlanUpfrontFee",
    "SavingsPlanRecurringFee",
    "RIFee",
    "Fee",
    "Tax",
    "Credit",
    "Refund",
    *DISCOUNT_TYPES,
)

# AWS service code (product_servicecode or line_item_product_code, compared lower-case) -> FOCUS
# ServiceCategory. Anything not listed is 'Other'.
_SERVICE_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "AmazonEC2",
            "AWSLambda",
            "AmazonECS",
            "AmazonEKS",
            "AmazonLightsail",
            "AWSBatch",
            "AWSOutposts",
            "AWSElasticBeanstalk",
            "AmazonWorkSpaces",
            "AmazonAppStream",
            "AWSCloudShell",
            "AmazonEC2CapacityBlocks",
        ),
        "Compute",
    ),
    **dict.fromkeys(
        (
            "AmazonS3",
            "AmazonS3GlacierDeepArchive",
            "AmazonGlacier",
            "AmazonEFS",
            "AmazonFSx",
            "AWSBackup",
            "AWSStorageGateway",
            "AmazonS3Tables",
        ),
        "Storage",
    ),
    **dict.fromkeys(
        (
            "AmazonRDS",
            "AmazonDynamoDB",
            "AmazonElastiCache",
            "AmazonDocDB",
            "AmazonNeptune",
            "AmazonMemoryDB",
            "AmazonMCS",
            "AmazonKeyspaces",
            "AmazonTimestream",
            "AmazonQLDB",
            "AmazonDAX",
        ),
        "Databases",
    ),
    **dict.fromkeys(
        (
            "AWSDataTransfer",
            "AmazonVPC",
            "AmazonCloudFront",
            "AmazonRoute53",
            "AWSELB",
            "AWSDirectConnect",
            "AWSGlobalAccelerator",
            "AWSCloudMap",
            "AWSPrivateLink",
            "AmazonVPCLattice",
        ),
        "Networking",
    ),
    **dict.fromkeys(
        (
            "AmazonSQS",
            "AWSQueueService",
            "AmazonSNS",
            "AWSEvents",
            "AmazonEventBridge",
            "AmazonMQ",
            "AmazonStates",
            "AWSStepFunctions",
            "AmazonAppFlow",
            "AmazonMSK",
        ),
        "Integration",
    ),
    **dict.fromkeys(
        (
            "AmazonCloudWatch",
            "AWSCloudTrail",
            "AWSConfig",
            "AWSSystemsManager",
            "AWSCostExplorer",
            "AWSCloudFormation",
            "AWSServiceCatalog",
            "AWSOrganizations",
            "AWSXRay",
            "AWSControlTower",
            "AWSBudgets",
            "AWSSupportBusiness",
            "AWSSupportEnterprise",
            "AWSSupportDeveloper",
            "AWSDeveloperSupport",
            "OCBPremiumSupport",
            "AmazonManagedGrafana",
            "AmazonPrometheus",
        ),
        "Management and Governance",
    ),
    **dict.fromkeys(
        (
            "AWSKMS",
            "AWSSecretsManager",
            "AmazonGuardDuty",
            "AWSShield",
            "AWSWAF",
            "AmazonInspector",
            "AmazonInspectorV2",
            "AWSSecurityHub",
            "AmazonMacie",
            "AWSCertificateManager",
            "AmazonDetective",
            "AWSFMS",
            "AWSNetworkFirewall",
            "AWSCloudHSM",
        ),
        "Security",
    ),
    **dict.fromkeys(
        ("AWSDirectoryService", "AmazonCognito", "AWSSSO", "AWSIdentityCenter"), "Identity"
    ),
    **dict.fromkeys(
        (
            "AmazonKinesis",
            "AmazonKinesisFirehose",
            "AmazonKinesisAnalytics",
            "AmazonAthena",
            "AWSGlue",
            "ElasticMapReduce",
            "AmazonES",
            "AmazonOpenSearchService",
            "AmazonRedshift",
            "AmazonQuickSight",
            "AWSLakeFormation",
            "AWSDataExchange",
        ),
        "Analytics",
    ),
    **dict.fromkeys(
        (
            "AmazonSageMaker",
            "AmazonBedrock",
            "AmazonRekognition",
            "AmazonComprehend",
            "AmazonTextract",
            "AmazonTranslate",
            "AmazonPolly",
            "transcribe",
            "AmazonLex",
            "AmazonKendra",
            "AmazonPersonalize",
            "AmazonForecast",
            "AmazonQ",
        ),
        "AI and Machine Learning",
    ),
    **dict.fromkeys(
        (
            "AWSCodeCommit",
            "CodeBuild",
            "AWSCodeBuild",
            "AWSCodePipeline",
            "AWSCodeDeploy",
            "AWSCodeArtifact",
            "AmazonECR",
            "AmazonECRPublic",
            "AWSCloud9",
            "AmazonCodeGuru",
            "AWSCodeStar",
        ),
        "Developer Tools",
    ),
    **dict.fromkeys(
        ("AWSIoT", "AWSIoTAnalytics", "AWSGreengrass", "AWSIoTSiteWise"), "Internet of Things"
    ),
    **dict.fromkeys(
        (
            "AmazonElasticTranscoder",
            "AWSElementalMediaConvert",
            "AWSElementalMediaLive",
            "AWSElementalMediaPackage",
            "AmazonIVS",
            "AmazonKinesisVideo",
        ),
        "Media",
    ),
    **dict.fromkeys(
        (
            "AWSDatabaseMigrationSvc",
            "AWSApplicationMigrationSvc",
            "AWSMigrationHub",
            "AWSMigrationHubRefactorSpaces",
            "AWSDataSync",
            "AWSTransfer",
            "AWSSnowball",
        ),
        "Migration",
    ),
    **dict.fromkeys(("AWSDeviceFarm", "AmazonPinpoint"), "Mobile"),
    **dict.fromkeys(("AmazonApiGateway", "AWSAppSync", "AWSAmplify"), "Web"),
    **dict.fromkeys(
        ("AmazonConnect", "AmazonChime", "AmazonWorkMail", "AmazonSES", "AmazonWorkDocs"),
        "Business Applications",
    ),
}


class CurFormatError(ValueError):
    """The file is not a usable AWS CUR: the message names the flavour, the columns and the fix."""


@dataclass(frozen=True)
class CurLayout:
    """Where each canonical column comes from in one file.

    ``columns`` maps canonical name -> actual column (only those present; also the map columns
    ``product``, ``resource_tags``, ``cost_category``, ``discount`` under their own names when a
    CUR 2.0 file has them). ``tag_columns`` / ``cost_category_columns`` map actual column -> key
    as delivered. ``source_types`` is the DuckDB type per actual column, which decides the cast.
    """

    flavour: str
    columns: dict[str, str]
    tag_columns: dict[str, str]
    has_tag_map: bool
    cost_category_columns: dict[str, str] = field(default_factory=dict)
    has_cost_category_map: bool = False
    has_product_map: bool = False
    source_types: dict[str, str] = field(default_factory=dict)


def _snake(name: str) -> str:
    """The Athena spelling of a legacy CUR name: lineItem/UsageAccountId -> line_item_usage_account_id."""
    snake = re.sub(r"([A-Z])", r"_\1", name).lower().replace("/", "_")
    return re.sub(r"_+", "_", snake).strip("_")


def _athena_tag_key(rest: str) -> str:
    """Athena names lose case and the colon: user_team -> 'user:team' (best recoverable key)."""
    for prefix in ("user", "aws"):
        if rest.startswith(prefix + "_"):
            return f"{prefix}:{rest[len(prefix) + 1 :]}"
    return rest


def _delivered_names(names: Sequence[str], header: Sequence[str] | None) -> dict[str, str]:
    """Actual column -> name as delivered. DuckDB renames a column whose name equals an earlier one
    ignoring case (``resourceTags/user:team`` after ``resourceTags/user:Team`` becomes
    ``resourceTags/user:team_1``); undo that, from the file's header row when the caller has it."""
    if header is not None and len(header) <= len(names):
        # The file's columns come first in the relation; accept the header only if it lines up.
        pairs = list(zip(names, header, strict=False))
        if all(
            actual.lower() == delivered.lower()
            or re.fullmatch(re.escape(delivered) + r"_\d+", actual)
            for actual, delivered in pairs
        ):
            return {**{name: name for name in names}, **dict(pairs)}
    delivered: dict[str, str] = {}
    seen_lower: set[str] = set()
    for name in names:
        match = re.fullmatch(r"(.+)_(\d+)", name)
        if match and match.group(1).lower() in seen_lower and match.group(1) not in names:
            delivered[name] = match.group(1)
        else:
            delivered[name] = name
        seen_lower.add(delivered[name].lower())
    return delivered


def _detect_flavour(names: Sequence[str]) -> str:
    if any("/" in name for name in names):
        return "legacy"
    lower = {name.lower() for name in names}
    if lower & set(_MAP_COLUMNS) or "line_item_usage_account_name" in lower:
        return "cur2"
    if "product_region_code" in lower and "product_servicename" not in lower:
        return "cur2"
    return "athena"


def resolve_cur_layout(
    described: Mapping[str, str], header: Sequence[str] | None = None
) -> CurLayout:
    """Map a CUR file's columns (name -> DuckDB type, from DESCRIBE) onto the canonical set.

    ``header``: optional raw header row of a CSV, in order, to restore tag keys DuckDB renamed
    because they differ from another only by case (without it the ``_1`` suffix is undone by rule).
    Raises CurFormatError when a column needed to place money is missing.
    """
    names = [
        name
        for name in described
        if name not in LINEAGE_PASSTHROUGH and name.lower() not in ("filename", "x_flavour")
    ]
    flavour = _detect_flavour(names)
    delivered = _delivered_names(list(described), header)
    columns: dict[str, str] = {}
    tag_columns: dict[str, str] = {}
    cost_category_columns: dict[str, str] = {}
    for name in names:
        original = delivered.get(name, name)
        if flavour == "legacy":
            if original.startswith("resourceTags/"):
                tag_columns[name] = original[len("resourceTags/") :]
                continue
            if original.startswith("costCategory/"):
                cost_category_columns[name] = original[len("costCategory/") :]
                continue
            canonical = _snake(original)
        else:
            lower = name.lower()
            if lower in _MAP_COLUMNS:
                columns.setdefault(lower, name)
                continue
            if lower.startswith("resource_tags_"):
                tag_columns[name] = _athena_tag_key(name[len("resource_tags_") :])
                continue
            if lower.startswith("cost_category_"):
                cost_category_columns[name] = name[len("cost_category_") :]
                continue
            canonical = lower
        if canonical in _SOURCE_COLUMNS:
            columns.setdefault(canonical, name)
    missing = [alts for alts in _ESSENTIAL if not any(c in columns for c in alts)]
    if missing:
        spell = (lambda c: _LEGACY_SPELLING.get(c, c)) if flavour == "legacy" else (lambda c: c)
        wanted = "; ".join(" or ".join(spell(c) for c in alternatives) for alternatives in missing)
        raise CurFormatError(
            f"AWS CUR file detected as {_FLAVOUR_DESCRIPTION[flavour]} is missing column(s) "
            f"{wanted}: without them its cost cannot be placed by type, amount, time, account and "
            "currency. Fix: deliver the full report (legacy CUR or CUR 2.0 with the standard "
            "line item, bill and pricing columns, not a column subset or a FOCUS export), or "
            "check that this file really is an AWS Cost and Usage Report."
        )
    return CurLayout(
        flavour=flavour,
        columns=columns,
        tag_columns=tag_columns,
        has_tag_map="resource_tags" in columns,
        cost_category_columns=cost_category_columns,
        has_cost_category_map="cost_category" in columns,
        has_product_map="product" in columns,
        source_types={name: str(described[name]).upper() for name in names},
    )


# A trailing UTC designator or offset after a time of day: such text already names its instant.
_HAS_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([zZ]|[+-]\d\d(:?\d\d)?)$"


def _timestamp_from_text(expression: str) -> str:
    """Text to TIMESTAMPTZ; naive text is UTC whatever the session time zone is."""
    text = f"NULLIF(trim({expression}), '')"
    return (
        f"CASE WHEN suffix({text}, 'Z') OR regexp_matches({text}, {sql_literal(_HAS_OFFSET)}) "
        f"THEN CAST({text} AS TIMESTAMPTZ) "
        f"ELSE {utc_instant(f'CAST({text} AS TIMESTAMP)')} END"
    )


def _typed(canonical: str, expression: str, source_type: str) -> str:
    target = _SOURCE_COLUMNS[canonical]
    is_text = source_type == "VARCHAR"
    if target == TIMESTAMP:
        if is_text:
            return _timestamp_from_text(expression)
        if "TIME ZONE" in source_type or source_type == "TIMESTAMPTZ":
            return f"CAST({expression} AS TIMESTAMPTZ)"
        if source_type.startswith("TIMESTAMP") or source_type == "DATE":
            return utc_instant(f"CAST({expression} AS TIMESTAMP)")
        return f"CAST({expression} AS TIMESTAMPTZ)"
    if target == TEXT:
        if is_text:
            return f"NULLIF({expression}, '')"
        if canonical in _ACCOUNT_ID_COLUMNS and "INT" in source_type:
            # Account ids are 12 digits; a numeric column has already dropped the leading zeros.
            return f"lpad(CAST({expression} AS VARCHAR), 12, '0')"
        return f"CAST({expression} AS VARCHAR)"
    if is_text:
        return f"CAST(NULLIF(trim({expression}), '') AS {target})"
    return f"CAST({expression} AS {target})"


def _try_timestamp_from_text(expression: str) -> str:
    """NULL where ``_timestamp_from_text`` would fail (the diagnosis after a failed load)."""
    text = f"NULLIF(trim({expression}), '')"
    return (
        f"CASE WHEN suffix({text}, 'Z') OR regexp_matches({text}, {sql_literal(_HAS_OFFSET)}) "
        f"THEN TRY_CAST({text} AS TIMESTAMPTZ) "
        f"ELSE {utc_instant(f'TRY_CAST({text} AS TIMESTAMP)')} END"
    )


def _is_time_type(source_type: str) -> bool:
    return source_type.startswith("TIMESTAMP") or source_type == "DATE"


def cast_failures(layout: CurLayout) -> list[tuple[str, str, str]]:
    """(column as delivered, condition true on a row whose value the strict cast of
    ``cur_staging_select`` rejects, what the value should be) for every typed column of a file,
    so a failed load can name the column, a sample value and the number of rows."""
    out = []
    for canonical, actual in layout.columns.items():
        target = _SOURCE_COLUMNS.get(canonical)
        if target in (None, TEXT):
            continue
        column = q(actual)
        if layout.source_types.get(actual, "VARCHAR") == "VARCHAR":
            present = f"NULLIF(trim({column}), '') IS NOT NULL"
            parsed = (
                _try_timestamp_from_text(column)
                if target == TIMESTAMP
                else f"TRY_CAST(trim({column}) AS {target})"
            )
        elif target == TIMESTAMP and _is_time_type(layout.source_types[actual]):
            continue  # a typed timestamp or date always has an instant
        else:
            present = f"{column} IS NOT NULL"
            parsed = f"TRY_CAST({column} AS {'TIMESTAMPTZ' if target == TIMESTAMP else target})"
        expected = "a timestamp (ISO 8601)" if target == TIMESTAMP else "a number"
        out.append((actual, f"({present} AND ({parsed}) IS NULL)", expected))
    # CUR 2.0 map columns delivered as JSON text (CSV exports): read as MAP(VARCHAR, VARCHAR).
    for canonical in ("product", "resource_tags", "cost_category", "tags"):
        actual = layout.columns.get(canonical)
        if actual is None or layout.source_types.get(actual, "").startswith("MAP"):
            continue
        text = f"NULLIF(trim(CAST({q(actual)} AS VARCHAR)), '')"
        if canonical == "product":  # read key by key with json_extract_string
            rejected = f"NOT json_valid({text})"
        else:
            rejected = f"TRY_CAST(TRY_CAST({text} AS JSON) AS MAP(VARCHAR, VARCHAR)) IS NULL"
        out.append((actual, f"({text} IS NOT NULL AND {rejected})", "a JSON object"))
    return out


# Names of the columns a CUR cannot do without, in both spellings: a CSV whose header line holds
# one of them but whose parsed columns do not was read in the wrong dialect.
ESSENTIAL_COLUMN_NAMES = (*_LEGACY_SPELLING.values(), *_LEGACY_SPELLING)


def delivered_spelling(canonical: str, flavour: str) -> str:
    """How a canonical column is spelled in a file of ``flavour`` (for messages)."""
    return _LEGACY_SPELLING.get(canonical, canonical) if flavour == "legacy" else canonical


def _map_as_map(column: str, source_type: str) -> str:
    """A CUR 2.0 map column as MAP(VARCHAR, VARCHAR); CSV exports carry it as JSON text."""
    if source_type.startswith("MAP"):
        return q(column)
    return f"CAST(CAST(NULLIF(trim(CAST({q(column)} AS VARCHAR)), '') AS JSON) AS MAP(VARCHAR, VARCHAR))"


def _json_object(columns: Mapping[str, str], source_types: Mapping[str, str]) -> str | None:
    """JSON object text of non-empty values from one column per key (keys as delivered). Keys
    delivered twice (same spelling) keep the first non-empty value."""
    if not columns:
        return None
    by_key: dict[str, list[str]] = {}
    for column, key in columns.items():
        value = (
            q(column) if source_types.get(column) == "VARCHAR" else f"CAST({q(column)} AS VARCHAR)"
        )
        by_key.setdefault(key, []).append(f"NULLIF({value}, '')")
    # String assembly with concat_ws (skips NULLs) is ~7x faster than building a MAP per row
    # and serialising it; keys are JSON-escaped here, values by to_json.
    members = ", ".join(
        f"CASE WHEN {value} IS NOT NULL THEN {sql_literal(json.dumps(key) + ':')} || "
        f"to_json({value}) END"
        for key, values in by_key.items()
        for value in [values[0] if len(values) == 1 else "coalesce(" + ", ".join(values) + ")"]
    )
    return f"('{{' || concat_ws(',', {members}) || '}}')"


def _json_from_map(map_expression: str) -> str:
    return (
        f"CAST(to_json(map_from_entries(list_filter(map_entries({map_expression}), "
        "lambda e: e.value IS NOT NULL AND e.value <> ''))) AS VARCHAR)"
    )


def _json_from_prefixed_map(map_expression: str, prefix: str) -> str:
    """JSON object of the non-empty entries whose key starts with ``prefix`` (removed): CUR 2.0's
    combined ``tags`` map keys every tag by its source (``resourceTags/``, ``accountTag/``,
    ``userAttribute/``, ``costCategory/``)."""
    start = len(prefix) + 1
    return (
        "CAST(to_json(map_from_entries(list_transform(list_filter(map_entries("
        f"{map_expression}), lambda e: starts_with(e.key, {sql_literal(prefix)}) "
        "AND e.value IS NOT NULL AND e.value <> ''), "
        f"lambda e: {{'key': substr(e.key, {start}), 'value': e.value}}))) AS VARCHAR)"
    )


def _tags_map(layout: CurLayout) -> str | None:
    actual = layout.columns.get("tags")
    if actual is None:
        return None
    return _map_as_map(actual, layout.source_types.get(actual, ""))


def _json_column(layout: CurLayout, map_column: str, columns: Mapping[str, str]) -> str:
    parts = []
    if map_column in layout.columns:
        actual = layout.columns[map_column]
        parts.append(_json_from_map(_map_as_map(actual, layout.source_types.get(actual, ""))))
    else:
        from_columns = _json_object(columns, layout.source_types)
        if from_columns is not None:
            parts.append(from_columns)
        elif map_column == "resource_tags" and _tags_map(layout) is not None:
            parts.append(_json_from_prefixed_map(_tags_map(layout), "resourceTags/"))
    parts.append("'{}'")
    return f"coalesce({', '.join(parts)})"


def cur_staging_select(source_sql: str, layout: CurLayout) -> str:
    """SELECT over ``source_sql`` returning RAW_CUR_COLUMNS (missing ones as typed NULL) plus
    x_DeliveryId and x_SourceFile passed through. Strict casts: a bad value fails the statement."""
    expressions = []
    product_map = layout.columns.get("product")
    product_type = layout.source_types.get(product_map or "", "")
    for canonical, target in _SOURCE_COLUMNS.items():
        actual = layout.columns.get(canonical)
        if actual is not None:
            expression = _typed(canonical, q(actual), layout.source_types.get(actual, "VARCHAR"))
        elif product_map is not None and canonical.startswith("product_"):
            # CUR 2.0 keeps most product attributes inside the `product` map.
            key = canonical[len("product_") :]
            if product_type.startswith("MAP"):
                expression = _typed(canonical, f"{q(product_map)}[{sql_literal(key)}]", "VARCHAR")
            else:
                path = sql_literal("$." + key)
                expression = _typed(
                    canonical, f"json_extract_string({q(product_map)}, {path})", "VARCHAR"
                )
        else:
            expression = f"CAST(NULL AS {target})"
        expressions.append(f"{expression} AS {q(canonical)}")
    expressions.append(
        f"{_json_column(layout, 'resource_tags', layout.tag_columns)} AS x_ResourceTags"
    )
    expressions.append(
        f"{_json_column(layout, 'cost_category', layout.cost_category_columns)} AS x_CostCategories"
    )
    account_tags = _tags_map(layout)
    expressions.append(
        f"coalesce({_json_from_prefixed_map(account_tags, 'accountTag/')}, '{{}}') AS x_AccountTags"
        if account_tags is not None
        else "'{}' AS x_AccountTags"
    )
    expressions.append(f"{sql_literal(layout.flavour)} AS x_Flavour")
    typed = ",\n            ".join(expressions)
    outputs = ", ".join(q(c) for c in RAW_CUR_COLUMNS if c != "charge_date")
    return f"""
        SELECT {outputs},
               {utc_date("line_item_usage_start_date")} AS charge_date,
               x_DeliveryId, x_SourceFile
        FROM (
            SELECT {typed},
            x_DeliveryId, x_SourceFile
            FROM {source_sql}
        ) AS typed_cur
    """


def _list(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


def _window(days: tuple[date, date]) -> str:
    return (
        f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}' "
        f"AND coalesce(line_item_operation, '') NOT IN {_list(SPLIT_COST_OPERATIONS)}"
    )


def _service_category_values() -> str:
    # Keyed lower-case (AWS spells KMS both AWSKMS and awskms): one row per code, so the lookup
    # join can never duplicate a charge.
    by_code = {code.lower(): category for code, category in _SERVICE_CATEGORIES.items()}
    return ", ".join(f"({sql_literal(c)}, {sql_literal(v)})" for c, v in by_code.items())


def _net(net: str, gross: str) -> str:
    """The net (after private discounts) figure when present, else the gross one; NULL is 0."""
    return f"coalesce({net}, {gross}, 0)"


def _focus_expressions() -> dict[str, str]:
    """FOCUS column -> expression over the `cur` relation (raw rows + helper columns)."""
    t = "line_item_line_item_type"
    ri_arn = "NULLIF(trim(reservation_reservation_a_r_n), '')"
    sp_arn = "NULLIF(trim(savings_plan_savings_plan_a_r_n), '')"
    billed = _net("line_item_net_unblended_cost", "line_item_unblended_cost")
    sp_used = _net(
        "savings_plan_net_savings_plan_effective_cost", "savings_plan_savings_plan_effective_cost"
    )
    ri_used = _net("reservation_net_effective_cost", "reservation_effective_cost")
    ri_unused = " + ".join(
        (
            _net(
                "reservation_net_unused_amortized_upfront_fee_for_billing_period",
                "reservation_unused_amortized_upfront_fee_for_billing_period",
            ),
            _net("reservation_net_unused_recurring_fee", "reservation_unused_recurring_fee"),
        )
    )
    effective = f"""CASE
            WHEN {t} = 'SavingsPlanCoveredUsage' THEN {sp_used}
            WHEN {t} = 'SavingsPlanRecurringFee'
                THEN coalesce(savings_plan_total_commitment_to_date, 0)
                     - coalesce(savings_plan_used_commitment, 0)
            WHEN {t} IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee') THEN 0
            WHEN {t} = 'DiscountedUsage' THEN {ri_used}
            WHEN {t} = 'RIFee' THEN {ri_unused}
            WHEN {t} = 'Fee' AND {ri_arn} IS NOT NULL THEN 0
            ELSE {billed} END"""
    category = f"""CASE
            WHEN {t} IN {_list((*USAGE_TYPES, "SavingsPlanNegation"))} THEN 'Usage'
            WHEN {t} IN ('SavingsPlanUpfrontFee', 'SavingsPlanRecurringFee', 'RIFee', 'Fee')
                THEN 'Purchase'
            WHEN {t} = 'Tax' THEN 'Tax'
            WHEN {t} IN {_list(("Credit", "Refund", *DISCOUNT_TYPES))} THEN 'Credit'
            ELSE 'Usage' END"""
    frequency = f"""CASE
            WHEN {t} IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Recurring'
            WHEN {t} = 'SavingsPlanUpfrontFee' THEN 'One-Time'
            WHEN {t} = 'Fee' AND {ri_arn} IS NOT NULL THEN 'One-Time'
            WHEN {t} = 'Fee' AND line_item_usage_start_date <= bill_billing_period_start_date
                AND line_item_usage_end_date >= bill_billing_period_end_date THEN 'Recurring'
            WHEN {t} IN ('Fee', 'Credit', 'Refund') THEN 'One-Time'
            ELSE 'Usage-Based' END"""
    is_ri = f"({t} IN ('DiscountedUsage', 'RIFee') OR ({t} = 'Fee' AND {ri_arn} IS NOT NULL))"
    is_sp = f"({t} IN {_list(SAVINGS_PLAN_TYPES)})"
    commitment_id = f"CASE WHEN {is_ri} THEN {ri_arn} WHEN {is_sp} THEN {sp_arn} END"
    commitment_type = f"""CASE
            WHEN {is_ri} AND {ri_arn} IS NOT NULL THEN 'Reserved Instance'
            WHEN {is_sp} AND {sp_arn} IS NOT NULL THEN 'Savings Plan' END"""
    commitment_category = f"""CASE
            WHEN {is_ri} AND {ri_arn} IS NOT NULL THEN 'Usage'
            WHEN {is_sp} AND {sp_arn} IS NOT NULL THEN 'Spend' END"""
    commitment_status = f"""CASE
            WHEN {t} IN ('DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation')
                AND ({commitment_id}) IS NOT NULL THEN 'Used' END"""
    consumption = f"({t} IN {_list(USAGE_TYPES)} OR unknown_type)"
    list_cost = f"""CASE
            WHEN {t} = 'SavingsPlanNegation' THEN 0
            WHEN {consumption} THEN pricing_public_on_demand_cost
            ELSE coalesce(pricing_public_on_demand_cost, 0) END"""
    contracted_cost = f"""CASE
            WHEN {t} = 'SavingsPlanNegation' THEN 0
            WHEN {t} = 'DiscountedUsage' THEN coalesce(pricing_public_on_demand_cost, 0)
            ELSE {billed} END"""
    pricing_category = f"""CASE
            WHEN {t} IN ('DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation')
                THEN 'Committed'
            WHEN ({consumption}) AND (lower(pricing_term) = 'spot'
                OR line_item_usage_type LIKE '%SpotUsage%') THEN 'Dynamic'
            WHEN ({consumption}) OR {t} IN ('SavingsPlanUpfrontFee', 'SavingsPlanRecurringFee',
                'RIFee', 'Fee') THEN 'Standard' END"""
    # FOCUS: no PricingQuantity on Tax; credits and discounts have one only with a pricing unit
    # (AWS writes a usage amount of 1 with no unit there), and PricingUnit only with a quantity.
    pricing_quantity = f"""CASE
            WHEN {t} = 'Tax' THEN NULL
            WHEN {t} IN {_list(("Credit", "Refund", *DISCOUNT_TYPES))} AND pricing_unit IS NULL
                THEN NULL
            ELSE line_item_usage_amount END"""
    # One category per ServiceName (FOCUS ServiceName-C-005-C): the line item's product code names
    # the service (tax and data-transfer rows of EC2 are EC2's), the product's service code only
    # helps when the product code is unknown.
    # AWS writes no pricing/unit on commitment fee rows although they carry a quantity (FOCUS
    # PricingUnit-C-006-C): a recurring fee's usage amount is the hours it covers, a one-time
    # fee's is the number of commitments bought.
    pricing_unit = f"""coalesce(pricing_unit, CASE
            WHEN {t} IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Hours'
            WHEN {t} IN ('SavingsPlanUpfrontFee', 'Fee') THEN 'Units' END)"""
    service_category = "coalesce(by_product_code.category, by_service_code.category, 'Other')"
    service_subcategory = subcategory_candidate_sql("line_item_product_code", "product_servicecode")
    region = "coalesce(product_region_code, product_region)"
    # CUR billing periods are calendar months in UTC; derive them when the bill columns are absent
    # (month arithmetic on naive UTC time, so the session time zone cannot shift it).
    usage_month = f"date_trunc('month', {utc_naive('line_item_usage_start_date')})"
    billing_period_start = f"coalesce(bill_billing_period_start_date, {utc_instant(usage_month)})"
    billing_period_end = f"coalesce(bill_billing_period_end_date, {utc_instant(f'{usage_month} + INTERVAL 1 MONTH')})"
    next_utc_day = utc_instant(
        f"CAST({utc_date('line_item_usage_start_date')} + INTERVAL 1 DAY AS TIMESTAMP)"
    )
    return {
        "AvailabilityZone": "line_item_availability_zone",
        "BilledCost": billed,
        "BillingAccountId": "coalesce(bill_payer_account_id, line_item_usage_account_id)",
        "BillingAccountName": "bill_payer_account_name",
        "BillingCurrency": "line_item_currency_code",
        "BillingPeriodEnd": billing_period_end,
        "BillingPeriodStart": billing_period_start,
        "ChargeCategory": category,
        "ChargeClass": (
            "CASE WHEN line_item_usage_start_date < bill_billing_period_start_date "
            "THEN 'Correction' END"
        ),
        "ChargeDescription": "line_item_line_item_description",
        "ChargeFrequency": frequency,
        # A one-time charge AWS dates at an instant (an RI upfront Fee has end = start) gets the
        # rest of its UTC day, so the period stays half-open [start, end) with end > start.
        "ChargePeriodEnd": (
            "CASE WHEN line_item_usage_end_date > line_item_usage_start_date "
            "THEN line_item_usage_end_date "
            f"ELSE {next_utc_day} END"
        ),
        "ChargePeriodStart": "line_item_usage_start_date",
        "CommitmentDiscountCategory": commitment_category,
        "CommitmentDiscountId": commitment_id,
        "CommitmentDiscountStatus": commitment_status,
        "CommitmentDiscountType": commitment_type,
        "ConsumedQuantity": f"CASE WHEN {consumption} THEN line_item_usage_amount END",
        "ConsumedUnit": f"CASE WHEN {consumption} THEN pricing_unit END",
        "ContractedCost": contracted_cost,
        "EffectiveCost": effective,
        "InvoiceId": "NULLIF(trim(bill_invoice_id), '')",
        "InvoiceIssuerName": "coalesce(NULLIF(trim(bill_invoicing_entity), ''), 'AWS')",
        "ListCost": list_cost,
        "ListUnitPrice": "pricing_public_on_demand_rate",
        "PricingCategory": pricing_category,
        "PricingQuantity": pricing_quantity,
        "PricingUnit": f"CASE WHEN ({pricing_quantity}) IS NOT NULL THEN {pricing_unit} END",
        "ProviderName": "'AWS'",
        "PublisherName": (
            "CASE WHEN bill_billing_entity = 'AWS Marketplace' "
            "THEN coalesce(NULLIF(trim(line_item_legal_entity), ''), 'AWS Marketplace') "
            "ELSE 'AWS' END"
        ),
        "RegionId": region,
        "RegionName": f"CASE WHEN {region} IS NOT NULL THEN product_location END",
        "ResourceId": "line_item_resource_id",
        "ServiceCategory": service_category,
        "ServiceSubcategory": service_subcategory,
        "ServiceName": "coalesce(product_product_name, product_servicename, line_item_product_code)",
        "SkuId": "product_sku",
        "SkuPriceId": "pricing_rate_id",
        "SubAccountId": "line_item_usage_account_id",
        "SubAccountName": "line_item_usage_account_name",
        "Tags": "CASE WHEN x_ResourceTags IS NULL OR trim(x_ResourceTags) = '' THEN '{}' ELSE x_ResourceTags END",
    }


def cur_focus_sql(raw_table: str, days: tuple[date, date], passthrough: Sequence[str] = ()) -> str:
    """raw.aws_cur rows of ``days`` as FOCUS 1.2 (exactly FOCUS_COLUMNS, typed as listed) plus
    charge_date, x_DeliveryId, x_SourceFile, x_LineItemType and x_UnknownLineItemType, and the
    raw columns named in ``passthrough`` (e.g. the loader's x_Dataset)."""
    expressions = _focus_expressions()
    columns = ",\n            ".join(
        f"CAST({expressions.get(column, 'NULL')} AS {data_type}) AS {q(column)}"
        for column, data_type in FOCUS_COLUMNS.items()
    )
    return f"""
        WITH service_categories(code, category) AS (VALUES {_service_category_values()}),
        cur AS (
            SELECT *,
                   line_item_line_item_type IS NULL
                       OR line_item_line_item_type NOT IN {_list(KNOWN_LINE_ITEM_TYPES)}
                       AS unknown_type
            FROM {raw_table}
            WHERE {_window(days)}
        )
        SELECT {columns},
            charge_date, x_DeliveryId, x_SourceFile,{"".join(f" {q(c)}," for c in passthrough)}
            CAST(line_item_line_item_type AS VARCHAR) AS x_LineItemType,
            CAST(unknown_type AS BOOLEAN) AS x_UnknownLineItemType,
            x_AccountTags
        FROM cur
        LEFT JOIN service_categories AS by_service_code
            ON by_service_code.code = lower(cur.product_servicecode)
        LEFT JOIN service_categories AS by_product_code
            ON by_product_code.code = lower(cur.line_item_product_code)
    """


def cur_basis_totals_sql(raw_table: str, days: tuple[date, date]) -> str:
    """Per charge_date, currency, payer account and billing period: rows, the invoice basis
    (Σ net-or-unblended cost) and the amortized basis, straight from raw on a code path of its own
    (reconciles cur_focus_sql)."""
    return f"""
        SELECT charge_date,
               line_item_currency_code AS BillingCurrency,
               coalesce(bill_payer_account_id, line_item_usage_account_id) AS BillingAccountId,
               {utc_month("coalesce(bill_billing_period_start_date, line_item_usage_start_date)")}
                   AS billing_period,
               count(*) AS "rows",
               sum(coalesce(line_item_net_unblended_cost, line_item_unblended_cost, 0)) AS billed,
               sum(CASE line_item_line_item_type
                   WHEN 'SavingsPlanCoveredUsage' THEN coalesce(
                       savings_plan_net_savings_plan_effective_cost,
                       savings_plan_savings_plan_effective_cost, 0)
                   WHEN 'SavingsPlanRecurringFee' THEN
                       coalesce(savings_plan_total_commitment_to_date, 0)
                       - coalesce(savings_plan_used_commitment, 0)
                   WHEN 'SavingsPlanNegation' THEN 0
                   WHEN 'SavingsPlanUpfrontFee' THEN 0
                   WHEN 'DiscountedUsage' THEN coalesce(
                       reservation_net_effective_cost, reservation_effective_cost, 0)
                   WHEN 'RIFee' THEN
                       coalesce(reservation_net_unused_amortized_upfront_fee_for_billing_period,
                                reservation_unused_amortized_upfront_fee_for_billing_period, 0)
                       + coalesce(reservation_net_unused_recurring_fee,
                                  reservation_unused_recurring_fee, 0)
                   WHEN 'Fee' THEN CASE
                       WHEN coalesce(trim(reservation_reservation_a_r_n), '') <> '' THEN 0
                       ELSE coalesce(line_item_net_unblended_cost, line_item_unblended_cost, 0)
                       END
                   ELSE coalesce(line_item_net_unblended_cost, line_item_unblended_cost, 0)
                   END) AS effective
        FROM {raw_table}
        WHERE {_window(days)}
        GROUP BY ALL
        ORDER BY ALL
    """


def cur_invoice_status_sql(raw_table: str, days: tuple[date, date]) -> str:
    """Per charge day: whether every row of it is invoiced (``bill_invoice_id`` set on all rows of
    the billing periods that carry the day). AWS sets the invoice id once the month's bill is
    final; until then the month is open and will be rebuilt (DOMAIN §1-§2)."""
    return f"""
        SELECT charge_date,
               count_if(coalesce(trim(bill_invoice_id), '') = '') = 0 AS final,
               string_agg(DISTINCT NULLIF(trim(bill_invoice_id), ''), ', '
                          ORDER BY NULLIF(trim(bill_invoice_id), '')) AS invoices
        FROM {raw_table}
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
        GROUP BY charge_date ORDER BY charge_date
    """


def aws_cur_facts_sql(raw_table: str, days: tuple[date, date]) -> str:
    return cur_focus_sql(raw_table, days, passthrough=("x_Dataset", "x_BillingPeriod"))


FACT_SOURCE = FactSource(
    "aws_cur",
    "raw.aws_cur",
    aws_cur_facts_sql,
    cur_basis_totals_sql,
    "CUR Σ unblended (net when present, split-cost rows excluded) / the CID amortized formula",
)
