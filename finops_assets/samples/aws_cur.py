"""Synthetic AWS legacy Cost and Usage Report (CUR) deliveries, in the layout AWS writes to S3.

The loaders of `raw/aws_cur` must be exercised on data that looks like a real legacy CUR: slash
column names (`lineItem/UnblendedCost`) or their Athena snake-case twins, Java-style numbers
(`6.71E-8`), `.000Z` timestamps, 12-digit account ids with leading zeros, case-sensitive tag
columns (`resourceTags/user:Team` beside `resourceTags/user:team`), every commitment line item
type with internally consistent numbers, split-cost-allocation rows that double count, and a
restated month whose manifest moves to a new assembly. Everything derives from the seed, never
from the wall clock, so the same arguments always produce byte-identical files.

Layout, one billing period per month (`<period>` is `yyyymmdd-yyyymmdd`, start to next start)::

    <out>/aws-cur/<report>/<period>/<assemblyId>/<report>-00001.csv.gz   (or .snappy.parquet)
    <out>/aws-cur/<report>/<period>/<report>-Manifest.json                (written last)

The manifest follows AWS's format; its `reportKeys` carry the S3 report path prefix (`cur/...`),
not the landing folder name, so readers resolve them by their `<report>/<period>/<assemblyId>/
<file>` suffix. The first month is delivered twice: an old assembly, then a new one whose
manifest replaces the old manifest; the old assembly's files stay on disk, as AWS leaves them.

Generation is vectorized with numpy/pyarrow: per-resource strings are built once and rows only
hold codes into per-column vocabularies. Rows are written in parts of at most `PART_ROWS` rows;
CSV text is produced in slices and compressed on a background thread per assembly.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_assets.samples.focus import ENVIRONMENTS, TEAM_COST_CENTER, TEAM_DEPARTMENT, TEAMS

LANDING_DIR = "aws-cur"
S3_PREFIX = "cur"  # report path prefix in the bucket: deliberately not the landing folder name
BUCKET = "example-cur-bucket"
FLAVOURS = ("csv", "parquet")
PART_ROWS = 500_000
CHUNK_ROWS = 250_000  # usage rows generated at once (bounds memory)
CSV_SLICE_ROWS = 50_000  # rows turned into CSV text at once
GZIP_LEVEL = 1
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR
HOURS_PER_YEAR = 8760
NAT = np.iinfo(np.int64).min  # null timestamp

# Economics, relative to the expected on-demand usage cost of a day.
TAX_RATE = 0.05
EDP_RATE = 0.03
CREDIT_RATE = 0.01
REFUND_RATE = 0.002
BUNDLED_RATE = 0.004
SP_SHARE = 0.12  # Compute Savings Plan commitment per day
SP_MONTHLY_SHARE = (
    0.0005  # small EC2 Instance Savings Plan bought every month (upfront ≈ 9% of a day)
)
COVERED_ROW_SHARE = 0.04  # rows per day covered by each of Savings Plans and RIs
SPLIT_ROW_SHARE = 0.003  # EKSPod-EC2 / ECSTask-EC2 rows
USAGE_NOISE_SIGMA = 0.35

# --------------------------------------------------------------------------------------------
# Columns: legacy name, kind, manifest type. Kinds: "s" text, "f" number, "t" timestamp, "id".

_S, _F, _T, _ID = "s", "f", "t", "id"

_PRODUCT_TEXT = [
    "availability",
    "durability",
    "eventType",
    "feeCode",
    "feeDescription",
    "fromLocation",
    "fromLocationType",
    "fromRegionCode",
    "group",
    "groupDescription",
    "instanceFamily",
    "instanceType",
    "location",
    "locationType",
    "memory",
    "messageDeliveryFrequency",
    "messageDeliveryOrder",
    "operatingSystem",
    "operation",
    "overhead",
    "productFamily",
    "productType",
    "queueType",
    "region",
    "regionCode",
    "servicecode",
    "servicename",
    "sku",
    "storageClass",
    "storageMedia",
    "tenancy",
    "toLocation",
    "toLocationType",
    "toRegionCode",
    "transferType",
    "usagetype",
    "vcpu",
    "version",
    "volumeType",
]


def _column_specs() -> tuple[tuple[str, str, str], ...]:
    s = [
        ("identity/LineItemId", _ID, "String"),
        ("identity/TimeInterval", _S, "Interval"),
        ("bill/InvoiceId", _S, "String"),
        ("bill/InvoicingEntity", _S, "String"),
        ("bill/BillingEntity", _S, "String"),
        ("bill/BillType", _S, "String"),
        ("bill/PayerAccountId", _S, "String"),
        ("bill/BillingPeriodStartDate", _T, "DateTime"),
        ("bill/BillingPeriodEndDate", _T, "DateTime"),
        ("lineItem/UsageAccountId", _S, "String"),
        ("lineItem/LineItemType", _S, "String"),
        ("lineItem/UsageStartDate", _T, "DateTime"),
        ("lineItem/UsageEndDate", _T, "DateTime"),
        ("lineItem/ProductCode", _S, "String"),
        ("lineItem/UsageType", _S, "String"),
        ("lineItem/Operation", _S, "String"),
        ("lineItem/AvailabilityZone", _S, "String"),
        ("lineItem/ResourceId", _S, "String"),
        ("lineItem/UsageAmount", _F, "BigDecimal"),
        ("lineItem/NormalizationFactor", _F, "OptionalBigDecimal"),
        ("lineItem/NormalizedUsageAmount", _F, "OptionalBigDecimal"),
        ("lineItem/CurrencyCode", _S, "String"),
        ("lineItem/UnblendedRate", _F, "String"),
        ("lineItem/UnblendedCost", _F, "BigDecimal"),
        ("lineItem/BlendedRate", _F, "String"),
        ("lineItem/BlendedCost", _F, "BigDecimal"),
        ("lineItem/LineItemDescription", _S, "String"),
        ("lineItem/TaxType", _S, "String"),
        ("lineItem/LegalEntity", _S, "String"),
        ("product/ProductName", _S, "String"),
        *((f"product/{name}", _S, "String") for name in _PRODUCT_TEXT),
        ("pricing/LeaseContractLength", _S, "String"),
        ("pricing/OfferingClass", _S, "String"),
        ("pricing/PurchaseOption", _S, "String"),
        ("pricing/RateCode", _S, "String"),
        ("pricing/RateId", _S, "String"),
        ("pricing/currency", _S, "String"),
        ("pricing/publicOnDemandCost", _F, "BigDecimal"),
        ("pricing/publicOnDemandRate", _F, "String"),
        ("pricing/term", _S, "String"),
        ("pricing/unit", _S, "String"),
        ("reservation/AmortizedUpfrontCostForUsage", _F, "OptionalBigDecimal"),
        ("reservation/AmortizedUpfrontFeeForBillingPeriod", _F, "OptionalBigDecimal"),
        ("reservation/EffectiveCost", _F, "OptionalBigDecimal"),
        ("reservation/EndTime", _S, "OptionalString"),
        ("reservation/ModificationStatus", _S, "OptionalString"),
        ("reservation/NormalizedUnitsPerReservation", _F, "String"),
        ("reservation/NumberOfReservations", _F, "String"),
        ("reservation/RecurringFeeForUsage", _F, "OptionalBigDecimal"),
        ("reservation/ReservationARN", _S, "String"),
        ("reservation/StartTime", _S, "OptionalString"),
        ("reservation/SubscriptionId", _S, "String"),
        ("reservation/TotalReservedNormalizedUnits", _F, "String"),
        ("reservation/TotalReservedUnits", _F, "String"),
        ("reservation/UnitsPerReservation", _F, "String"),
        ("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", _F, "OptionalBigDecimal"),
        ("reservation/UnusedNormalizedUnitQuantity", _F, "OptionalBigDecimal"),
        ("reservation/UnusedQuantity", _F, "OptionalBigDecimal"),
        ("reservation/UnusedRecurringFee", _F, "OptionalBigDecimal"),
        ("reservation/UpfrontValue", _F, "OptionalBigDecimal"),
        ("savingsPlan/TotalCommitmentToDate", _F, "OptionalBigDecimal"),
        ("savingsPlan/SavingsPlanARN", _S, "OptionalString"),
        ("savingsPlan/SavingsPlanRate", _F, "OptionalBigDecimal"),
        ("savingsPlan/UsedCommitment", _F, "OptionalBigDecimal"),
        ("savingsPlan/SavingsPlanEffectiveCost", _F, "OptionalBigDecimal"),
        ("savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod", _F, "OptionalBigDecimal"),
        ("savingsPlan/RecurringCommitmentForBillingPeriod", _F, "OptionalBigDecimal"),
        ("savingsPlan/StartTime", _S, "OptionalString"),
        ("savingsPlan/EndTime", _S, "OptionalString"),
        ("savingsPlan/OfferingType", _S, "OptionalString"),
        ("savingsPlan/PaymentOption", _S, "OptionalString"),
        ("savingsPlan/PurchaseTerm", _S, "OptionalString"),
        ("savingsPlan/Region", _S, "OptionalString"),
        ("savingsPlan/InstanceTypeFamily", _S, "OptionalString"),
        ("resourceTags/aws:createdBy", _S, "String"),
        ("resourceTags/user:CostCenter", _S, "String"),
        ("resourceTags/user:Environment", _S, "String"),
        ("resourceTags/user:Name", _S, "String"),
        ("resourceTags/user:Team", _S, "String"),
        ("resourceTags/user:team", _S, "String"),
        ("costCategory/BusinessUnit", _S, "OptionalString"),
        ("costCategory/Workload", _S, "OptionalString"),
        ("splitLineItem/ActualUsage", _F, "OptionalBigDecimal"),
        ("splitLineItem/ParentResourceId", _S, "OptionalString"),
        ("splitLineItem/PublicOnDemandSplitCost", _F, "OptionalBigDecimal"),
        ("splitLineItem/PublicOnDemandUnusedCost", _F, "OptionalBigDecimal"),
        ("splitLineItem/ReservedUsage", _F, "OptionalBigDecimal"),
        ("splitLineItem/SplitCost", _F, "OptionalBigDecimal"),
        ("splitLineItem/SplitUsage", _F, "OptionalBigDecimal"),
        ("splitLineItem/SplitUsageRatio", _F, "OptionalBigDecimal"),
        ("splitLineItem/UnusedCost", _F, "OptionalBigDecimal"),
    ]
    return tuple(s)


COLUMNS: tuple[tuple[str, str, str], ...] = _column_specs()
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in COLUMNS)
_KIND = {name: kind for name, kind, _ in COLUMNS}
# Columns that share one vocabulary (the same kind of value).
_VOCAB_OF = {
    "bill/PayerAccountId": "lineItem/UsageAccountId",
    "bill/InvoicingEntity": "lineItem/LegalEntity",
    "product/usagetype": "lineItem/UsageType",
    "splitLineItem/ParentResourceId": "lineItem/ResourceId",
}


def athena_column_name(legacy: str) -> str:
    """The Athena/Parquet name AWS derives from a legacy CUR column name.

    Each capital letter starts a new word, anything not alphanumeric becomes `_`, repeats
    collapse: `lineItem/UnblendedCost` → `line_item_unblended_cost`,
    `savingsPlan/SavingsPlanARN` → `savings_plan_savings_plan_a_r_n`,
    `resourceTags/user:Team` → `resource_tags_user_team`.
    """
    spaced = re.sub(r"([A-Z])", r"_\1", legacy).lower()
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", spaced)).strip("_")


def athena_column_names(legacy_names: Sequence[str]) -> list[str]:
    """Athena names for a header; names that collide (`user:Team`/`user:team`) get `_1`, `_2`."""
    seen: dict[str, int] = {}
    names = []
    for legacy in legacy_names:
        name = athena_column_name(legacy)
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}_{count}")
    return names


ATHENA_NAMES: tuple[str, ...] = tuple(athena_column_names(COLUMN_NAMES))


# --------------------------------------------------------------------------------------------
# Public results and path helpers


@dataclass
class CurSampleSummary:
    """What `generate_aws_cur` wrote, so tests and the CLI can check it without rescanning."""

    report: str
    assemblies: list[str]  # assembly folders relative to `out` (posix), in write order
    manifests: list[str]  # period manifests relative to `out` (posix), in write order
    total_rows: int  # rows over all assemblies (the restated month counts twice)
    restated_days: list[date]  # days whose rows differ between the old and new assembly
    seconds: float
    files: list[str] = field(default_factory=list)  # every file written, relative to `out`
    rows_by_assembly: dict[str, int] = field(default_factory=dict)
    restated_period: str = ""  # `yyyymmdd-yyyymmdd` of the month delivered twice


def billing_period_folder(month_start: date) -> str:
    """`yyyymmdd-yyyymmdd`: billing month start to next month start."""
    return f"{month_start:%Y%m%d}-{_next_month(month_start):%Y%m%d}"


def manifest_name(report: str) -> str:
    return f"{report}-Manifest.json"


def part_name(report: str, index: int, flavour: str) -> str:
    """`<report>-00001.csv.gz` / `<report>-00001.snappy.parquet` (numbered from 1)."""
    suffix = "csv.gz" if flavour == "csv" else "snappy.parquet"
    return f"{report}-{index:05d}.{suffix}"


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _day_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * MICROS_PER_DAY


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _hex(rng: np.random.Generator, digits: int) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=digits))


def _iso_ms(micros: int) -> str:
    """`2025-01-01T00:00:00.000Z`, the legacy CUR timestamp format."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _iso_s(micros: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


# --------------------------------------------------------------------------------------------
# Vocabularies and blocks of rows


class _Vocab:
    """Distinct text values of a column; rows hold int32 codes (-1 = null)."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._array: pa.Array | None = None
        self._escaped: pa.Array | None = None

    def code(self, value: str | None) -> int:
        if value is None or value == "":
            return -1
        code = self._index.get(value)
        if code is None:
            code = self._index[value] = len(self._index)
            self._array = self._escaped = None
        return code

    def codes(self, values: Sequence[str | None]) -> np.ndarray:
        return np.array([self.code(v) for v in values], dtype=np.int32)

    def array(self) -> pa.Array:
        if self._array is None:
            self._array = pa.array(list(self._index), type=pa.string())
        return self._array

    def escaped(self) -> pa.Array:
        """Values as CSV fields: quoted only when they hold a comma, quote or line break."""
        if self._escaped is None:
            self._escaped = pa.array([_csv_field(v) for v in self._index], type=pa.string())
        return self._escaped


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


class _Vocabs:
    def __init__(self) -> None:
        self._vocabs: dict[str, _Vocab] = {}

    def __getitem__(self, column: str) -> _Vocab:
        key = _VOCAB_OF.get(column, column)
        vocab = self._vocabs.get(key)
        if vocab is None:
            vocab = self._vocabs[key] = _Vocab()
        return vocab


Value = np.ndarray | int | float


@dataclass
class _Block:
    """Rows of one kind: column name → codes / floats / micros (array, or a scalar for all)."""

    n: int
    cols: dict[str, Value] = field(default_factory=dict)

    def put(self, name: str, value: Value) -> None:
        if name not in _KIND:
            raise KeyError(name)
        self.cols[name] = value

    def update(self, values: dict[str, Value]) -> None:
        for name, value in values.items():
            self.put(name, value)

    def full(self, name: str) -> np.ndarray:
        """The column as an array of length n (nulls filled in when absent)."""
        kind = _KIND[name]
        value = self.cols.get(name)
        dtype = {_S: np.int32, _F: np.float64, _T: np.int64}[kind]
        null = {_S: -1, _F: np.nan, _T: NAT}[kind]
        if value is None:
            return np.full(self.n, null, dtype=dtype)
        if np.ndim(value) == 0:
            return np.full(self.n, value, dtype=dtype)
        return np.asarray(value, dtype=dtype)

    def take(self, start: int, stop: int) -> _Block:
        cols = {k: (v[start:stop] if np.ndim(v) else v) for k, v in self.cols.items() if k in _KIND}
        return _Block(stop - start, cols)


def _concat(blocks: Sequence[_Block]) -> _Block:
    blocks = [b for b in blocks if b.n]
    names = [n for n in COLUMN_NAMES if _KIND[n] != _ID and any(n in b.cols for b in blocks)]
    out = _Block(sum(b.n for b in blocks))
    for name in names:
        out.put(name, np.concatenate([b.full(name) for b in blocks]))
    return out


# --------------------------------------------------------------------------------------------
# Catalogue: what the sample account runs


@dataclass(frozen=True)
class _Template:
    kind: str
    product_code: str
    servicecode: str
    product_name: str
    servicename: str
    family: str
    usage: str  # usage type without the region prefix
    operation: str
    unit: str
    rate: float  # public on-demand USD per unit
    quantity: float  # typical usage amount of one row
    hourly: bool
    zonal: bool
    weight: float
    description: str  # may use {rate} and {location}
    instance_type: str = ""
    attrs: tuple[tuple[str, str], ...] = ()


def _instance(it: str, rate: float, family: str, vcpu: str, memory: str, weight: float):
    return _Template(
        "ec2",
        "AmazonEC2",
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "Amazon Elastic Compute Cloud",
        "Compute Instance",
        f"BoxUsage:{it}",
        "RunInstances",
        "Hrs",
        rate,
        1.0,
        True,
        True,
        weight,
        "${rate} per On Demand Linux " + it + " Instance Hour",
        it,
        (
            ("instanceFamily", family),
            ("instanceType", it),
            ("vcpu", vcpu),
            ("memory", memory),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
        ),
    )


_TEMPLATES: tuple[_Template, ...] = (
    _instance("m5.large", 0.096, "General purpose", "2", "8 GiB", 0.12),
    _instance("m6i.xlarge", 0.192, "General purpose", "4", "16 GiB", 0.08),
    _instance("c6g.xlarge", 0.136, "Compute optimized", "4", "8 GiB", 0.07),
    _instance("r5.2xlarge", 0.504, "Memory optimized", "8", "64 GiB", 0.04),
    _instance("t3.medium", 0.0416, "General purpose", "2", "4 GiB", 0.06),
    _Template(
        "ebs",
        "AmazonEC2",
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "Amazon Elastic Compute Cloud",
        "Storage",
        "EBS:VolumeUsage.gp3",
        "CreateVolume-Gp3",
        "GB-Mo",
        0.08,
        6.0,
        False,
        True,
        0.07,
        "${rate} per GB-month of General Purpose (gp3) provisioned storage - {location}",
        attrs=(("volumeType", "General Purpose"), ("storageMedia", "SSD-backed")),
    ),
    _Template(
        "transfer",
        "AmazonEC2",
        "AWSDataTransfer",
        "Amazon Elastic Compute Cloud",
        "AWS Data Transfer",
        "Data Transfer",
        "DataTransfer-Out-Bytes",
        "RunInstances",
        "GB",
        0.09,
        2.0,
        True,
        False,
        0.06,
        "${rate} per GB - first 10 TB / month data transfer out beyond the global free tier",
        attrs=(
            ("transferType", "AWS Outbound"),
            ("toLocation", "External"),
            ("toLocationType", "Other"),
        ),
    ),
    _Template(
        "s3",
        "AmazonS3",
        "AmazonS3",
        "Amazon Simple Storage Service",
        "Amazon Simple Storage Service",
        "Storage",
        "TimedStorage-ByteHrs",
        "StandardStorage",
        "GB-Mo",
        0.023,
        40.0,
        False,
        False,
        0.06,
        "${rate} per GB - first 50 TB / month of storage used",
        attrs=(
            ("availability", "99.99%"),
            ("durability", "99.999999999%"),
            ("storageClass", "General Purpose"),
            ("volumeType", "Standard"),
        ),
    ),
    _Template(
        "s3",
        "AmazonS3",
        "AmazonS3",
        "Amazon Simple Storage Service",
        "Amazon Simple Storage Service",
        "API Request",
        "Requests-Tier1",
        "PutObject",
        "Requests",
        0.000005,
        3000.0,
        True,
        False,
        0.05,
        "$0.005 per 1,000 PUT, COPY, POST, or LIST requests",
        attrs=(("group", "S3-API-Tier1"), ("groupDescription", "PUT/COPY/POST or LIST requests")),
    ),
    _Template(
        "s3",
        "AmazonS3",
        "AmazonS3",
        "Amazon Simple Storage Service",
        "Amazon Simple Storage Service",
        "API Request",
        "Requests-Tier2",
        "GetObject",
        "Requests",
        0.0000004,
        30000.0,
        True,
        False,
        0.07,
        "$0.004 per 10,000 GET and all other requests",
        attrs=(("group", "S3-API-Tier2"), ("groupDescription", "GET and all other requests")),
    ),
    _Template(
        "rds",
        "AmazonRDS",
        "AmazonRDS",
        "Amazon Relational Database Service",
        "Amazon Relational Database Service",
        "Database Instance",
        "InstanceUsage:db.r6g.large",
        "CreateDBInstance:0014",
        "Hrs",
        0.225,
        1.0,
        True,
        True,
        0.08,
        "${rate} per RDS db.r6g.large Single-AZ instance hour (or partial hour) running PostgreSQL",
        "db.r6g.large",
        (("instanceType", "db.r6g.large"), ("vcpu", "2"), ("memory", "16 GiB")),
    ),
    _Template(
        "lambda",
        "AWSLambda",
        "AWSLambda",
        "AWS Lambda",
        "AWS Lambda",
        "Serverless",
        "Lambda-GB-Second",
        "Invoke",
        "Lambda-GB-Second",
        0.0000166667,
        6000.0,
        True,
        False,
        0.08,
        "AWS Lambda - Total Compute - {location}",
        attrs=(("group", "AWS-Lambda-Duration"),),
    ),
    _Template(
        "logs",
        "AmazonCloudWatch",
        "AmazonCloudWatch",
        "AmazonCloudWatch",
        "AmazonCloudWatch",
        "Data Payload",
        "DataProcessing-Bytes",
        "PutLogEvents",
        "GB",
        0.5,
        0.4,
        True,
        False,
        0.06,
        "${rate} per GB - Custom Log Data Ingested",
        attrs=(("group", "Ingested Logs"),),
    ),
    _Template(
        "eks",
        "AmazonEKS",
        "AmazonEKS",
        "Amazon Elastic Container Service for Kubernetes",
        "Amazon Elastic Container Service for Kubernetes",
        "Compute",
        "AmazonEKS-Hours:perCluster",
        "CreateOperation",
        "Hours",
        0.1,
        1.0,
        True,
        False,
        0.03,
        "Amazon EKS cluster usage in {location}",
    ),
)

_REGIONS = (
    ("us-east-1", "", "US East (N. Virginia)", 0.5),
    ("us-west-2", "USW2-", "US West (Oregon)", 0.25),
    ("eu-west-1", "EU-", "EU (Ireland)", 0.15),
    ("eu-central-1", "EUC1-", "EU (Frankfurt)", 0.10),
)
_NORMALIZATION = {"medium": 2.0, "large": 4.0, "xlarge": 8.0, "2xlarge": 16.0}
_LEGAL_ENTITY = "Amazon Web Services, Inc."
_EDP_DESCRIPTION = "Enterprise Program Discount"
_PRODUCTS = sorted({(t.product_code, t.product_name) for t in _TEMPLATES})
_TAX_TYPE = "Sales Tax"
_ON_DEMAND_OFFER = "JRTCKXETXF"
_RATE_CODE_SUFFIX = "6YS6EN2CT7"


def _usage_type(prefix: str, template: _Template) -> str:
    if template.kind == "eks":
        return f"{prefix or 'USE1-'}{template.usage}"
    return f"{prefix}{template.usage}"


def _money(x: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(x, dtype=np.float64), 10) + 0.0  # +0.0 turns -0.0 into 0.0


# --------------------------------------------------------------------------------------------
# Commitments


@dataclass
class _Reservation:
    index: int
    arn: str
    template: int  # catalogue index of the covered instance type
    region: int
    candidates: np.ndarray  # resources whose usage it covers
    count: int  # number of reservations
    od_rate: float
    upfront_hourly: float  # per reservation
    recurring_hourly: float
    start: date
    end: date
    term: str
    purchase_option: str
    subscription: str
    purchased_in_window: bool

    @property
    def upfront_value(self) -> float:
        years = 3 if self.term == "3yr" else 1
        return float(_money(self.upfront_hourly * HOURS_PER_YEAR * years * self.count))


@dataclass
class _SavingsPlan:
    index: int
    arn: str
    commitment_hourly: float
    upfront_share: float
    discount: float
    candidates: np.ndarray
    start: date
    end: date
    offering: str
    payment: str
    term: str
    region: str
    family: str
    purchased_in_window: bool

    @property
    def upfront_hourly(self) -> float:
        return self.commitment_hourly * self.upfront_share

    @property
    def recurring_hourly(self) -> float:
        return self.commitment_hourly - self.upfront_hourly


# --------------------------------------------------------------------------------------------
# The pool: accounts, resources, commitments, built once per run


@dataclass
class _Pool:
    vocabs: _Vocabs
    payer: str
    accounts: list[str]
    res_text: dict[str, np.ndarray]  # column → code per resource
    res_template: np.ndarray
    res_region: np.ndarray
    res_account: np.ndarray
    res_product: np.ndarray  # index into _PRODUCTS
    res_quantity: np.ndarray
    res_rate: np.ndarray
    res_hourly: np.ndarray
    res_norm: np.ndarray  # normalization factor (NaN when not an instance)
    res_instance: np.ndarray  # EC2 instance resources
    res_unit: np.ndarray  # usage is whole hours (instances, databases, clusters)
    res_sku: list[str]
    res_count: int
    cdf: np.ndarray
    expected_row_cost: float
    usage_rows_nominal: int
    rows_per_day: int
    reservations: list[_Reservation]
    savings_plans: list[_SavingsPlan]
    sp_rows: int
    split_rows: int
    credit_rows: int
    pods: np.ndarray  # ResourceId codes of pods / tasks
    product_codes: dict[str, np.ndarray]  # column → code per product (tax/edp/credit rows)


def _accounts(rng: np.random.Generator, count: int) -> tuple[str, list[str]]:
    payer = f"{int(rng.integers(10**9, 10**11)):012d}"  # at least one leading zero
    accounts = [payer]
    for i in range(1, count):
        number = int(rng.integers(10**10, 10**12))
        if i % 3 == 1:
            number //= 100  # AWS account ids are strings: keep the leading zeros
        accounts.append(f"{number:012d}")
    return payer, accounts


def _build_pool(seed: int, rows_per_day: int, months: Sequence[date], first_day: date) -> _Pool:
    rng = _rng(seed, 1)
    vocabs = _Vocabs()
    n = int(np.clip(rows_per_day // 20, 60, 50_000))
    account_count = int(np.clip(rows_per_day // 400, 3, 12))
    payer, accounts = _accounts(rng, account_count)
    account_team = np.arange(account_count) % len(TEAMS)
    account_env = np.where(
        np.arange(account_count) < len(TEAMS), 0, 1 + np.arange(account_count) % 2
    )

    t_count = len(_TEMPLATES)
    weights = np.array([t.weight for t in _TEMPLATES])
    res_template = rng.choice(t_count, size=n, p=weights / weights.sum())
    res_template[:t_count] = np.arange(t_count)  # every template at least once
    region_weights = np.array([r[3] for r in _REGIONS])
    res_region = rng.choice(len(_REGIONS), size=n, p=region_weights / region_weights.sum())
    res_region[:t_count] = 0
    res_account = rng.integers(0, account_count, size=n)
    res_account[:t_count] = 0
    res_team = np.where(rng.random(n) < 0.85, account_team[res_account], rng.integers(0, 6, n))
    res_env = account_env[res_account]
    res_zone = rng.integers(0, 3, size=n)
    tag_draw = rng.random((n, 6))
    tokens = rng.integers(0, 2**62, size=n, dtype=np.int64)

    templates = [_TEMPLATES[i] for i in res_template]
    res_rate = np.array([t.rate for t in templates])
    res_hourly = np.array([t.hourly for t in templates])
    base = np.array([t.quantity for t in templates])
    unit_rows = np.array([t.kind in ("ec2", "rds", "eks") for t in templates])
    res_quantity = np.where(unit_rows, 1.0, base * rng.lognormal(0.0, 0.8, size=n))
    res_instance = np.array([t.kind == "ec2" for t in templates])
    res_norm = np.array(
        [_NORMALIZATION.get(t.instance_type.split(".")[-1], np.nan) for t in templates]
    )
    res_norm[~res_instance] = np.nan
    product_index = {p[0]: i for i, p in enumerate(_PRODUCTS)}
    res_product = np.array([product_index[t.product_code] for t in templates])

    # Strings per resource, once.
    columns: dict[str, list[str | None]] = {}

    def put(name: str, i: int, value: str | None) -> None:
        column = columns.get(name)
        if column is None:
            column = columns[name] = [None] * n
        column[i] = value

    sku_cache: dict[tuple[int, int], tuple[str, str, str]] = {}
    subscription = {p[0]: f"{int(rng.integers(10**8, 10**9))}" for p in _PRODUCTS}
    for i, template in enumerate(templates):
        region, prefix, location, _ = _REGIONS[res_region[i]]
        account = accounts[res_account[i]]
        team = TEAMS[res_team[i]]
        env = ENVIRONMENTS[res_env[i]]
        token = f"{int(tokens[i]):016x}"
        key = (int(res_template[i]), int(res_region[i]))
        if key not in sku_cache:
            sku = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"), size=16))
            sku_cache[key] = (
                sku,
                f"{sku}.{_ON_DEMAND_OFFER}.{_RATE_CODE_SUFFIX}",
                str(int(rng.integers(10**10, 10**11))),
            )
        sku, rate_code, rate_id = sku_cache[key]
        name = f"{team}-{template.kind}-{env}-{i}"
        resource = {
            "ec2": f"i-0{token}",
            "ebs": f"vol-0{token}",
            "transfer": f"i-0{token}",
            "s3": f"{team}-{env}-data-{token[:6]}",
            "rds": f"arn:aws:rds:{region}:{account}:db:{name}",
            "lambda": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "logs": f"arn:aws:logs:{region}:{account}:log-group:/aws/{team}/{name}",
            "eks": f"arn:aws:eks:{region}:{account}:cluster/{team}-{env}",
        }[template.kind]
        usage_type = _usage_type(prefix, template)
        put("lineItem/UsageAccountId", i, account)
        put("lineItem/ProductCode", i, template.product_code)
        put("lineItem/UsageType", i, usage_type)
        put("lineItem/Operation", i, template.operation)
        put(
            "lineItem/AvailabilityZone",
            i,
            f"{region}{'abc'[res_zone[i]]}" if template.zonal else None,
        )
        put("lineItem/ResourceId", i, resource)
        put(
            "lineItem/LineItemDescription",
            i,
            template.description.format(rate=f"{template.rate:g}", location=location),
        )
        put("product/ProductName", i, template.product_name)
        put("product/servicecode", i, template.servicecode)
        put("product/servicename", i, template.servicename)
        put("product/productFamily", i, template.family)
        put("product/usagetype", i, usage_type)
        put("product/region", i, region)
        put("product/regionCode", i, region)
        put("product/location", i, location)
        put("product/locationType", i, "AWS Region")
        put("product/sku", i, sku)
        for attr, value in template.attrs:
            put(f"product/{attr}", i, value)
        if template.kind == "transfer":
            put("product/fromLocation", i, location)
            put("product/fromLocationType", i, "AWS Region")
            put("product/fromRegionCode", i, region)
        put("pricing/RateCode", i, rate_code)
        put("pricing/RateId", i, rate_id)
        put("pricing/currency", i, "USD")
        put("pricing/term", i, "OnDemand")
        put("pricing/unit", i, template.unit)
        put("reservation/SubscriptionId", i, subscription[template.product_code])
        # Tags: `user:Team` and `user:team` are different columns; resources use one or the other.
        draw = tag_draw[i]
        tagged = draw[0] < 0.86
        if tagged:
            put("resourceTags/user:Team" if draw[1] < 0.6 else "resourceTags/user:team", i, team)
            put("costCategory/BusinessUnit", i, TEAM_DEPARTMENT[team])
            put("costCategory/Workload", i, f"{team}-{env}")
        if draw[2] < 0.9:
            spelling = {"prod": ("prod", "production", "Prod")}.get(env, (env,))
            put("resourceTags/user:Environment", i, spelling[int(draw[5] * len(spelling))])
        if tagged and draw[3] < 0.7:
            put("resourceTags/user:CostCenter", i, TEAM_COST_CENTER[team])
        if template.kind in ("ec2", "rds", "s3") and draw[4] < 0.6:
            put("resourceTags/user:Name", i, name)
        if draw[4] > 0.8:
            put("resourceTags/aws:createdBy", i, f"AssumedRole:AROA{token[:12].upper()}:deployer")
    res_text = {name: vocabs[name].codes(values) for name, values in columns.items()}

    # Pick probabilities and the expected cost of a usage row.
    pick = rng.lognormal(0.0, 1.0, size=n)
    probability = pick / pick.sum()
    noise_mean = float(np.exp(USAGE_NOISE_SIGMA**2 / 2))
    row_cost = res_quantity * res_rate * np.where(unit_rows, 1.0, noise_mean)
    expected_row_cost = float(np.dot(probability, row_cost))

    # Fixed rows of a day, sized from rows_per_day so the mix is volume independent.
    sp_rows = max(1, round(rows_per_day * COVERED_ROW_SHARE))
    ri_rows = max(24, round(rows_per_day * COVERED_ROW_SHARE))
    split_rows = max(2, round(rows_per_day * SPLIT_ROW_SHARE))
    credit_rows = max(1, rows_per_day // 200_000)
    usage_rows_nominal = max(10, rows_per_day - 2 * sp_rows - ri_rows - split_rows)
    expected_usage = usage_rows_nominal * expected_row_cost

    # Commitments. Long-running ones bought before the window, plus one small RI and one small
    # Savings Plan bought on the first generated day of every month (so each month has an RI
    # upfront Fee and a SavingsPlanUpfrontFee).
    reservations: list[_Reservation] = []
    savings_plans: list[_SavingsPlan] = []
    month_first_days = [max(m, first_day) for m in months]
    long_start = months[0] - timedelta(days=200)  # 1-year terms still run 165 days

    def template_index(kind: str, instance: str) -> int:
        return next(
            i for i, t in enumerate(_TEMPLATES) if t.kind == kind and t.instance_type == instance
        )

    def add_reservation(
        kind: str,
        instance: str,
        count: int,
        discount: float,
        upfront: float,
        start: date,
        term: str,
    ) -> None:
        t = template_index(kind, instance)
        candidates = np.flatnonzero((res_template == t) & (res_region == 0))
        template = _TEMPLATES[t]
        effective = template.rate * (1.0 - discount)
        years = 3 if term == "3yr" else 1
        region = _REGIONS[0][0]
        if kind == "rds":
            arn = f"arn:aws:rds:{region}:{payer}:ri:ri-{_hex(rng, 12)}"
        else:
            arn = f"arn:aws:ec2:{region}:{payer}:reserved-instances/{_uuid(rng)}"
        option = {0.0: "No Upfront", 1.0: "All Upfront"}.get(upfront, "Partial Upfront")
        reservations.append(
            _Reservation(
                index=len(reservations),
                arn=arn,
                template=t,
                region=0,
                candidates=candidates,
                count=count,
                od_rate=template.rate,
                upfront_hourly=effective * upfront,
                recurring_hourly=effective * (1.0 - upfront),
                start=start,
                end=start + timedelta(days=365 * years),
                term=term,
                purchase_option=option,
                subscription=f"{int(rng.integers(10**9, 10**10))}",
                purchased_in_window=start >= first_day,
            )
        )

    utilization = 0.93
    add_reservation(
        "ec2",
        "m5.large",
        max(1, round(ri_rows * 0.7 / 24 / utilization)),
        0.4,
        0.5,
        long_start,
        "3yr",
    )
    add_reservation(
        "rds", "db.r6g.large", max(1, round(ri_rows * 0.3 / 24 / utilization)), 0.35, 0.0,
        long_start, "1yr"
    )  # fmt: skip
    for first in month_first_days:
        add_reservation("ec2", "t3.medium", 1, 0.38, 0.5, first, "1yr")

    instance_resources = np.flatnonzero(res_instance)

    def add_plan(commitment: float, upfront: float, discount: float, start: date, term: str,
                 offering: str, family: str) -> None:  # fmt: skip
        if family:
            fam = [i for i, t in enumerate(_TEMPLATES) if t.instance_type.startswith(family + ".")]
            candidates = np.flatnonzero(np.isin(res_template, fam) & (res_region == 0))
        else:
            candidates = instance_resources
        years = 3 if term == "3yr" else 1
        savings_plans.append(
            _SavingsPlan(
                index=len(savings_plans),
                arn=f"arn:aws:savingsplans::{payer}:savingsplan/{_uuid(rng)}",
                commitment_hourly=float(_money(commitment)),
                upfront_share=upfront,
                discount=discount,
                candidates=candidates,
                start=start,
                end=start + timedelta(days=365 * years),
                offering=offering,
                payment={0.0: "No Upfront", 1.0: "All Upfront"}.get(upfront, "Partial Upfront"),
                term=term,
                region=_REGIONS[0][0] if family else "",
                family=family,
                purchased_in_window=start >= first_day,
            )
        )

    add_plan(
        SP_SHARE * expected_usage / 24, 0.0, 0.28, long_start, "3yr", "ComputeSavingsPlans", ""
    )
    for first in month_first_days:
        add_plan(
            SP_MONTHLY_SHARE * expected_usage / 24, 0.5, 0.3, first, "1yr", "EC2InstanceSavingsPlans",
            "m6i",
        )  # fmt: skip

    # Pods / tasks of split cost allocation, as pseudo-resources.
    pod_count = max(4, min(split_rows, 5000))
    pods = []
    for j in range(pod_count):
        team = TEAMS[j % len(TEAMS)]
        if j % 2 == 0:
            pods.append(
                f"arn:aws:eks:us-east-1:{payer}:pod/{team}-cluster/{team}/{team}-api-{_hex(rng, 10)}"
                f"/{_uuid(rng)}"
            )
        else:
            pods.append(f"arn:aws:ecs:us-east-1:{payer}:task/{team}-ecs/{_hex(rng, 32)}")
    pod_codes = vocabs["lineItem/ResourceId"].codes(pods)

    product_codes = {
        "lineItem/ProductCode": vocabs["lineItem/ProductCode"].codes([p[0] for p in _PRODUCTS]),
        "product/ProductName": vocabs["product/ProductName"].codes([p[1] for p in _PRODUCTS]),
        "reservation/SubscriptionId": vocabs["reservation/SubscriptionId"].codes(
            [subscription[p[0]] for p in _PRODUCTS]
        ),
    }
    return _Pool(
        vocabs=vocabs,
        payer=payer,
        accounts=accounts,
        res_text=res_text,
        res_template=res_template,
        res_region=res_region,
        res_account=res_account,
        res_product=res_product,
        res_quantity=res_quantity,
        res_rate=res_rate,
        res_hourly=res_hourly,
        res_norm=res_norm,
        res_instance=res_instance,
        res_unit=unit_rows,
        res_sku=columns["product/sku"],  # type: ignore[arg-type]
        res_count=n,
        cdf=np.cumsum(probability),
        expected_row_cost=expected_row_cost,
        usage_rows_nominal=usage_rows_nominal,
        rows_per_day=rows_per_day,
        reservations=reservations,
        savings_plans=savings_plans,
        sp_rows=sp_rows,
        split_rows=split_rows,
        credit_rows=credit_rows,
        pods=pod_codes,
        product_codes=product_codes,
    )


# --------------------------------------------------------------------------------------------
# Rows of a day


@dataclass
class _Month:
    start: date
    end: date
    invoice_id: str
    days: list[date]  # generated days of the month


def _common(pool: _Pool, month: _Month, day: date) -> dict[str, Value]:
    """Columns every row of a day shares."""
    v = pool.vocabs
    day_us = _day_us(day)
    return {
        "identity/TimeInterval": v["identity/TimeInterval"].code(
            f"{_iso_s(day_us)}/{_iso_s(day_us + MICROS_PER_DAY)}"
        ),
        "bill/InvoiceId": v["bill/InvoiceId"].code(month.invoice_id),
        "bill/InvoicingEntity": v["bill/InvoicingEntity"].code(_LEGAL_ENTITY),
        "bill/BillingEntity": v["bill/BillingEntity"].code("AWS"),
        "bill/BillType": v["bill/BillType"].code("Anniversary"),
        "bill/PayerAccountId": v["bill/PayerAccountId"].code(pool.payer),
        "bill/BillingPeriodStartDate": _day_us(month.start),
        "bill/BillingPeriodEndDate": _day_us(month.end),
        "lineItem/CurrencyCode": v["lineItem/CurrencyCode"].code("USD"),
        "lineItem/LegalEntity": v["lineItem/LegalEntity"].code(_LEGAL_ENTITY),
    }


def _resource_block(pool: _Pool, res: np.ndarray, line_item_type: str) -> _Block:
    block = _Block(res.size)
    for name, codes in pool.res_text.items():
        block.put(name, codes[res])
    block.put("lineItem/LineItemType", pool.vocabs["lineItem/LineItemType"].code(line_item_type))
    return block


def _hours(rng: np.random.Generator, pool: _Pool, res: np.ndarray, day_us: int):
    hourly = pool.res_hourly[res]
    hour = rng.integers(0, 24, size=res.size)
    start = np.where(hourly, day_us + hour * MICROS_PER_HOUR, day_us)
    end = np.where(hourly, start + MICROS_PER_HOUR, day_us + MICROS_PER_DAY)
    return start, end


@dataclass
class _UsageSums:
    """On-demand usage cost per (account, product), summed over a day's chunks."""

    cost: np.ndarray

    @classmethod
    def empty(cls, pool: _Pool) -> _UsageSums:
        return cls(np.zeros(len(pool.accounts) * len(_PRODUCTS)))

    def add(self, pool: _Pool, res: np.ndarray, cost: np.ndarray) -> None:
        key = pool.res_account[res] * len(_PRODUCTS) + pool.res_product[res]
        self.cost += np.bincount(key, weights=cost, minlength=self.cost.size)


def _usage_block(
    pool: _Pool, rng: np.random.Generator, rows: int, day_us: int, scale: float
) -> _Block:
    res = np.searchsorted(pool.cdf, rng.random(rows), side="right")
    np.minimum(res, pool.res_count - 1, out=res)
    start, end = _hours(rng, pool, res, day_us)
    noise = rng.lognormal(0.0, USAGE_NOISE_SIGMA, size=rows)
    unit = pool.res_unit[res]
    # Late usage in a restatement raises metered usage; instance hours stay whole hours.
    amount = np.where(unit, 1.0, _money(pool.res_quantity[res] * noise * scale))
    rate = pool.res_rate[res]
    cost = _money(amount * rate)
    block = _resource_block(pool, res, "Usage")
    norm = pool.res_norm[res]
    block.update(
        {
            "lineItem/UsageStartDate": start,
            "lineItem/UsageEndDate": end,
            "lineItem/UsageAmount": amount,
            "lineItem/NormalizationFactor": norm,
            "lineItem/NormalizedUsageAmount": _money(norm * amount),
            "lineItem/UnblendedRate": rate,
            "lineItem/UnblendedCost": cost,
            "lineItem/BlendedRate": rate,
            "lineItem/BlendedCost": cost,
            "pricing/publicOnDemandCost": cost,
            "pricing/publicOnDemandRate": rate,
        }
    )
    block.cols["_res"] = res  # kept for split rows and sums, dropped on write
    return block


def _split_block(pool: _Pool, rng: np.random.Generator, usage: _Block) -> _Block:
    """EKSPod-EC2 / ECSTask-EC2 rows: part of an instance's cost again (double counts)."""
    res = usage.cols["_res"]
    rows = np.flatnonzero(pool.res_instance[res])[: pool.split_rows]
    n = rows.size
    parent = res[rows]
    block = _resource_block(pool, parent, "Usage")
    ratio = np.round(rng.uniform(0.1, 0.6, size=n), 4)
    parent_cost = usage.cols["lineItem/UnblendedCost"][rows]
    vcpu = 2.0 * np.maximum(pool.res_norm[parent] / 4.0, 0.5)
    split_cost = _money(parent_cost * ratio)
    unused_cost = _money(parent_cost * (1.0 - ratio) * 0.1)
    is_eks = np.arange(n) % 2 == 0
    v = pool.vocabs
    region_prefix = np.array([_REGIONS[r][1] for r in range(len(_REGIONS))])[
        pool.res_region[parent]
    ]
    usage_types = [
        f"{p}{'EKS' if e else 'ECS'}-EC2-vCPU-Hours"
        for p, e in zip(region_prefix, is_eks, strict=True)
    ]
    block.update(
        {
            "lineItem/UsageStartDate": usage.cols["lineItem/UsageStartDate"][rows],
            "lineItem/UsageEndDate": usage.cols["lineItem/UsageEndDate"][rows],
            "lineItem/Operation": np.where(
                is_eks,
                v["lineItem/Operation"].code("EKSPod-EC2"),
                v["lineItem/Operation"].code("ECSTask-EC2"),
            ).astype(np.int32),
            "lineItem/UsageType": v["lineItem/UsageType"].codes(usage_types),
            "lineItem/ResourceId": pool.pods[np.arange(n) % pool.pods.size],
            "lineItem/UsageAmount": _money(vcpu * ratio),
            "lineItem/UnblendedRate": usage.cols["lineItem/UnblendedRate"][rows],
            "lineItem/UnblendedCost": split_cost,
            "lineItem/BlendedRate": usage.cols["lineItem/UnblendedRate"][rows],
            "lineItem/BlendedCost": split_cost,
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"].code(
                "Split cost allocation of an EC2 instance to a container workload"
            ),
            "pricing/publicOnDemandCost": split_cost,
            "splitLineItem/ParentResourceId": pool.res_text["lineItem/ResourceId"][parent],
            "splitLineItem/SplitUsageRatio": ratio,
            "splitLineItem/SplitUsage": _money(vcpu * ratio),
            "splitLineItem/ActualUsage": _money(vcpu * ratio),
            "splitLineItem/ReservedUsage": _money(vcpu * ratio),
            "splitLineItem/SplitCost": split_cost,
            "splitLineItem/UnusedCost": unused_cost,
            "splitLineItem/PublicOnDemandSplitCost": split_cost,
            "splitLineItem/PublicOnDemandUnusedCost": unused_cost,
        }
    )
    return block


def _reservation_hours(seed: int, ri: _Reservation, day: date) -> int:
    """Instance hours the reservation covers on `day` (0 when inactive); a pure function of the
    seed, so a month's RIFee row knows the usage of days that are not generated."""
    if not (ri.start <= day < ri.end):
        return 0
    u = float(_rng(seed, 11, ri.index, day.toordinal()).uniform(0.86, 1.0))
    return round(ri.count * 24 * u)


def _ri_label(ri: _Reservation) -> tuple[str, str, str]:
    """Product code, usage type and product name of a reservation's fee rows."""
    template = _TEMPLATES[ri.template]
    return template.product_code, f"HeavyUsage:{template.instance_type}", template.product_name


def _reservation_fields(pool: _Pool, ri: _Reservation) -> dict[str, Value]:
    v = pool.vocabs
    return {
        "reservation/ReservationARN": v["reservation/ReservationARN"].code(ri.arn),
        "reservation/StartTime": v["reservation/StartTime"].code(_iso_ms(_day_us(ri.start))),
        "reservation/EndTime": v["reservation/EndTime"].code(_iso_ms(_day_us(ri.end))),
        "reservation/ModificationStatus": v["reservation/ModificationStatus"].code("Original"),
        "pricing/LeaseContractLength": v["pricing/LeaseContractLength"].code(ri.term),
        "pricing/OfferingClass": v["pricing/OfferingClass"].code("standard"),
        "pricing/PurchaseOption": v["pricing/PurchaseOption"].code(ri.purchase_option),
    }


def _discounted_usage(
    pool: _Pool, rng: np.random.Generator, ri: _Reservation, hours: int, day_us: int
) -> _Block:
    res = ri.candidates[rng.integers(0, ri.candidates.size, size=hours)]
    block = _resource_block(pool, res, "DiscountedUsage")
    start = day_us + (np.arange(hours) % 24) * MICROS_PER_HOUR
    norm = pool.res_norm[res]
    v = pool.vocabs
    block.update(_reservation_fields(pool, ri))
    block.update(
        {
            "lineItem/UsageStartDate": start,
            "lineItem/UsageEndDate": start + MICROS_PER_HOUR,
            "lineItem/UsageAmount": 1.0,
            "lineItem/NormalizationFactor": norm,
            "lineItem/NormalizedUsageAmount": norm,
            "lineItem/UnblendedRate": 0.0,
            "lineItem/UnblendedCost": 0.0,
            "lineItem/BlendedRate": 0.0,
            "lineItem/BlendedCost": 0.0,
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"].code(
                f"USD {ri.recurring_hourly:.4f} hourly fee per {_TEMPLATES[ri.template].instance_type}"
                " reserved instance"
            ),
            "pricing/term": v["pricing/term"].code("Reserved"),
            "pricing/publicOnDemandCost": ri.od_rate,
            "pricing/publicOnDemandRate": ri.od_rate,
            "reservation/EffectiveCost": float(_money(ri.upfront_hourly + ri.recurring_hourly)),
            "reservation/AmortizedUpfrontCostForUsage": float(_money(ri.upfront_hourly)),
            "reservation/RecurringFeeForUsage": float(_money(ri.recurring_hourly)),
        }
    )
    return block


def _ri_fee(pool: _Pool, seed: int, ri: _Reservation, month: _Month, day_us: int) -> _Block:
    """The month's RIFee row: recurring fee for the period plus the unused amounts."""
    active_start = max(month.start, ri.start)
    active_end = min(month.end, ri.end)
    days = [active_start + timedelta(days=i) for i in range((active_end - active_start).days)]
    total = float(ri.count * 24 * len(days))
    used = float(sum(_reservation_hours(seed, ri, d) for d in days))
    unused = total - used
    v = pool.vocabs
    product, usage, product_name = _ri_label(ri)
    block = _Block(1)
    block.update(_reservation_fields(pool, ri))
    block.update(
        {
            "lineItem/UsageAccountId": v["lineItem/UsageAccountId"].code(pool.payer),
            "lineItem/LineItemType": v["lineItem/LineItemType"].code("RIFee"),
            "lineItem/UsageStartDate": day_us,
            "lineItem/UsageEndDate": _day_us(month.end),
            "lineItem/ProductCode": v["lineItem/ProductCode"].code(product),
            "product/ProductName": v["product/ProductName"].code(product_name),
            "lineItem/UsageType": v["lineItem/UsageType"].code(usage),
            "lineItem/Operation": v["lineItem/Operation"].code("RunInstances"),
            "lineItem/UsageAmount": total,
            "lineItem/UnblendedRate": float(_money(ri.recurring_hourly)),
            "lineItem/UnblendedCost": float(_money(ri.recurring_hourly * total)),
            "lineItem/BlendedRate": float(_money(ri.recurring_hourly)),
            "lineItem/BlendedCost": float(_money(ri.recurring_hourly * total)),
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"].code(
                f"USD {ri.recurring_hourly:.4f} hourly fee per {_TEMPLATES[ri.template].instance_type}"
                " reserved instance"
            ),
            "pricing/term": v["pricing/term"].code("Reserved"),
            "pricing/unit": v["pricing/unit"].code("Hrs"),
            "pricing/publicOnDemandCost": 0.0,
            "reservation/SubscriptionId": v["reservation/SubscriptionId"].code(ri.subscription),
            "reservation/NumberOfReservations": float(ri.count),
            "reservation/UnitsPerReservation": float(24 * len(days)),
            "reservation/TotalReservedUnits": total,
            "reservation/AmortizedUpfrontFeeForBillingPeriod": float(
                _money(ri.upfront_hourly * total)
            ),
            "reservation/UnusedQuantity": unused,
            "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod": float(
                _money(ri.upfront_hourly * unused)
            ),
            "reservation/UnusedRecurringFee": float(_money(ri.recurring_hourly * unused)),
            "reservation/UpfrontValue": ri.upfront_value,
        }
    )
    return block


def _ri_purchase(pool: _Pool, ri: _Reservation, day_us: int) -> _Block:
    """The one-time upfront `Fee` of a reservation bought in the window (amortized cost 0)."""
    v = pool.vocabs
    product, usage, product_name = _ri_label(ri)
    block = _Block(1)
    block.update(
        {
            "lineItem/UsageAccountId": v["lineItem/UsageAccountId"].code(pool.payer),
            "lineItem/LineItemType": v["lineItem/LineItemType"].code("Fee"),
            "lineItem/UsageStartDate": day_us,
            "lineItem/UsageEndDate": day_us + MICROS_PER_DAY,
            "lineItem/ProductCode": v["lineItem/ProductCode"].code(product),
            "product/ProductName": v["product/ProductName"].code(product_name),
            "lineItem/UsageType": v["lineItem/UsageType"].code(usage),
            "lineItem/Operation": v["lineItem/Operation"].code("RunInstances"),
            "lineItem/UsageAmount": float(ri.count),
            "lineItem/UnblendedRate": ri.upfront_value / ri.count,
            "lineItem/UnblendedCost": ri.upfront_value,
            "lineItem/BlendedRate": ri.upfront_value / ri.count,
            "lineItem/BlendedCost": ri.upfront_value,
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"].code(
                f"Sign up charge for subscription: {ri.subscription}, planId: {ri.index + 2000000}"
            ),
            "reservation/ReservationARN": v["reservation/ReservationARN"].code(ri.arn),
            "reservation/SubscriptionId": v["reservation/SubscriptionId"].code(ri.subscription),
            "reservation/UpfrontValue": ri.upfront_value,
            "pricing/publicOnDemandCost": 0.0,
        }
    )
    return block


def _sp_fields(pool: _Pool, sp: _SavingsPlan) -> dict[str, Value]:
    v = pool.vocabs
    return {
        "savingsPlan/SavingsPlanARN": v["savingsPlan/SavingsPlanARN"].code(sp.arn),
        "savingsPlan/StartTime": v["savingsPlan/StartTime"].code(_iso_ms(_day_us(sp.start))),
        "savingsPlan/EndTime": v["savingsPlan/EndTime"].code(_iso_ms(_day_us(sp.end))),
        "savingsPlan/OfferingType": v["savingsPlan/OfferingType"].code(sp.offering),
        "savingsPlan/PaymentOption": v["savingsPlan/PaymentOption"].code(sp.payment),
        "savingsPlan/PurchaseTerm": v["savingsPlan/PurchaseTerm"].code(sp.term),
        "savingsPlan/Region": v["savingsPlan/Region"].code(sp.region),
        "savingsPlan/InstanceTypeFamily": v["savingsPlan/InstanceTypeFamily"].code(sp.family),
    }


def _sp_label(sp: _SavingsPlan) -> str:
    kind = "ComputeSP" if not sp.family else "EC2InstanceSP"
    return f"{kind}:{sp.term}{sp.payment.replace(' ', '')}"


def _sp_description(sp: _SavingsPlan) -> str:
    years = sp.term.replace("yr", " year")
    kind = "Compute" if not sp.family else f"EC2 Instance ({sp.family})"
    return f"{years} {sp.payment} {kind} Savings Plan"


def _sp_covered(
    pool: _Pool, rng: np.random.Generator, sp: _SavingsPlan, rows: int, day_us: int
) -> tuple[_Block, _Block, float]:
    """Covered usage, its negation and the used commitment of one Savings Plan and day."""
    target = sp.commitment_hourly * 24 * float(rng.uniform(0.88, 1.0))
    res = sp.candidates[rng.integers(0, sp.candidates.size, size=rows)]
    weights = rng.uniform(0.5, 1.5, size=rows)
    effective = _money(target * weights / weights.sum())
    od_rate = pool.res_rate[res]
    sp_rate = _money(od_rate * (1.0 - sp.discount))
    amount = _money(effective / sp_rate)
    od_cost = _money(amount * od_rate)
    start = day_us + rng.integers(0, 24, size=rows) * MICROS_PER_HOUR
    v = pool.vocabs
    norm = pool.res_norm[res]
    shared = {
        "lineItem/UsageStartDate": start,
        "lineItem/UsageEndDate": start + MICROS_PER_HOUR,
        "lineItem/UsageAmount": amount,
        "lineItem/NormalizationFactor": norm,
        "lineItem/NormalizedUsageAmount": _money(norm * amount),
        "pricing/publicOnDemandRate": od_rate,
        "savingsPlan/SavingsPlanRate": sp_rate,
        **_sp_fields(pool, sp),
    }
    covered = _resource_block(pool, res, "SavingsPlanCoveredUsage")
    covered.update(shared)
    covered.update(
        {
            "lineItem/UnblendedRate": od_rate,
            "lineItem/UnblendedCost": od_cost,
            "lineItem/BlendedRate": od_rate,
            "lineItem/BlendedCost": od_cost,
            "pricing/publicOnDemandCost": od_cost,
            "savingsPlan/SavingsPlanEffectiveCost": effective,
        }
    )
    negation = _resource_block(pool, res, "SavingsPlanNegation")
    negation.update(shared)
    distinct, inverse = np.unique(res, return_inverse=True)
    texts = [
        f"SavingsPlanNegation used by AccountId : {pool.accounts[pool.res_account[r]]} and "
        f"UsageSku : {pool.res_sku[r]}"
        for r in distinct
    ]
    negation.update(
        {
            "lineItem/UnblendedRate": -od_rate,
            "lineItem/UnblendedCost": -od_cost,
            "lineItem/BlendedRate": -od_rate,
            "lineItem/BlendedCost": -od_cost,
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"]
            .codes(texts)[inverse.reshape(-1)]
            .astype(np.int32),
            "pricing/publicOnDemandCost": 0.0,
        }
    )
    return covered, negation, float(effective.sum())


def _sp_fee(pool: _Pool, sp: _SavingsPlan, used: float, day_us: int) -> _Block:
    v = pool.vocabs
    commitment = float(_money(sp.commitment_hourly * 24))
    recurring = float(_money(sp.recurring_hourly * 24))
    block = _Block(1)
    block.update(_sp_fields(pool, sp))
    block.update(
        {
            "lineItem/UsageAccountId": v["lineItem/UsageAccountId"].code(pool.payer),
            "lineItem/LineItemType": v["lineItem/LineItemType"].code("SavingsPlanRecurringFee"),
            "lineItem/UsageStartDate": day_us,
            "lineItem/UsageEndDate": day_us + MICROS_PER_DAY,
            "lineItem/ProductCode": v["lineItem/ProductCode"].code("ComputeSavingsPlans"),
            "lineItem/UsageType": v["lineItem/UsageType"].code(_sp_label(sp)),
            "lineItem/UsageAmount": 24.0,
            "lineItem/UnblendedRate": float(_money(sp.recurring_hourly)),
            "lineItem/UnblendedCost": recurring,
            "lineItem/BlendedRate": float(_money(sp.recurring_hourly)),
            "lineItem/BlendedCost": recurring,
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"].code(
                _sp_description(sp)
            ),
            "product/ProductName": v["product/ProductName"].code(
                "Savings Plans for AWS Compute usage"
            ),
            "pricing/publicOnDemandCost": 0.0,
            "savingsPlan/TotalCommitmentToDate": commitment,
            "savingsPlan/UsedCommitment": float(_money(min(used, commitment))),
            "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod": float(
                _money(sp.upfront_hourly * 24)
            ),
            "savingsPlan/RecurringCommitmentForBillingPeriod": recurring,
        }
    )
    return block


def _sp_purchase(pool: _Pool, sp: _SavingsPlan, day_us: int) -> _Block:
    v = pool.vocabs
    years = 3 if sp.term == "3yr" else 1
    upfront = float(_money(sp.upfront_hourly * HOURS_PER_YEAR * years))
    block = _Block(1)
    block.update(_sp_fields(pool, sp))
    block.update(
        {
            "lineItem/UsageAccountId": v["lineItem/UsageAccountId"].code(pool.payer),
            "lineItem/LineItemType": v["lineItem/LineItemType"].code("SavingsPlanUpfrontFee"),
            "lineItem/UsageStartDate": day_us,
            "lineItem/UsageEndDate": day_us + MICROS_PER_DAY,
            "lineItem/ProductCode": v["lineItem/ProductCode"].code("ComputeSavingsPlans"),
            "lineItem/UsageType": v["lineItem/UsageType"].code(_sp_label(sp)),
            "lineItem/UsageAmount": 1.0,
            "lineItem/UnblendedRate": upfront,
            "lineItem/UnblendedCost": upfront,
            "lineItem/BlendedRate": upfront,
            "lineItem/BlendedCost": upfront,
            "lineItem/LineItemDescription": v["lineItem/LineItemDescription"].code(
                f"{_sp_description(sp)} upfront fee"
            ),
            "product/ProductName": v["product/ProductName"].code(
                "Savings Plans for AWS Compute usage"
            ),
            "pricing/publicOnDemandCost": 0.0,
        }
    )
    return block


def _adjustments(
    pool: _Pool, rng: np.random.Generator, sums: _UsageSums, day_us: int
) -> list[_Block]:
    """Tax and EDP discount per (account, product); credits, a refund and a bundled discount."""
    v = pool.vocabs
    product_count = len(_PRODUCTS)
    keys = np.arange(sums.cost.size)
    account = keys // product_count
    product = keys % product_count
    present = sums.cost > 0
    account, product, base = account[present], product[present], sums.cost[present]
    end = day_us + MICROS_PER_DAY
    account_codes = v["lineItem/UsageAccountId"].codes(pool.accounts)
    blocks = []

    def rows(kind: str, acct: np.ndarray, prod: np.ndarray, cost: np.ndarray, text) -> _Block:
        block = _Block(acct.size)
        block.update(
            {
                "lineItem/UsageAccountId": account_codes[acct],
                "lineItem/LineItemType": v["lineItem/LineItemType"].code(kind),
                "lineItem/UsageStartDate": day_us,
                "lineItem/UsageEndDate": end,
                "lineItem/ProductCode": pool.product_codes["lineItem/ProductCode"][prod],
                "product/ProductName": pool.product_codes["product/ProductName"][prod],
                "lineItem/UsageAmount": 1.0 if kind == "Tax" else 0.0,
                "lineItem/UnblendedCost": cost,
                "lineItem/BlendedCost": cost,
                "lineItem/LineItemDescription": text,
                "reservation/SubscriptionId": pool.product_codes["reservation/SubscriptionId"][
                    prod
                ],
            }
        )
        return block

    tax_text = v["lineItem/LineItemDescription"].codes(
        [f"Tax for product code {p[0]}" for p in _PRODUCTS]
    )
    tax = rows("Tax", account, product, _money(base * TAX_RATE), tax_text[product])
    tax.put("lineItem/TaxType", v["lineItem/TaxType"].code(_TAX_TYPE))
    blocks.append(tax)
    edp = rows(
        "EdpDiscount",
        account,
        product,
        _money(-base * EDP_RATE),
        v["lineItem/LineItemDescription"].code(_EDP_DESCRIPTION),
    )
    edp.put("pricing/currency", v["pricing/currency"].code("USD"))
    blocks.append(edp)

    total = float(base.sum())
    order = np.argsort(-base, kind="stable")
    top = order[: max(1, pool.credit_rows)]
    credit_share = rng.uniform(0.5, 1.5, size=top.size)
    credit = _money(-total * CREDIT_RATE * credit_share / credit_share.sum())
    blocks.append(
        rows(
            "Credit",
            account[top],
            product[top],
            credit,
            v["lineItem/LineItemDescription"].code("AWS Promotional Credit"),
        )
    )
    first = order[:1]
    blocks.append(
        rows(
            "Refund",
            account[first],
            product[first],
            _money(np.array([-total * REFUND_RATE])),
            v["lineItem/LineItemDescription"].code("Refund for an overcharge on usage"),
        )
    )
    logs = next(i for i, p in enumerate(_PRODUCTS) if p[0] == "AmazonCloudWatch")
    logs_cost = sums.cost[logs :: len(_PRODUCTS)]
    busiest = int(np.argmax(logs_cost))
    bundled = rows(
        "BundledDiscount",
        np.array([busiest]),
        np.array([logs]),
        _money(np.array([-max(float(logs_cost[busiest]), total * 0.01) * BUNDLED_RATE * 10])),
        v["lineItem/LineItemDescription"].code(
            "Free CloudWatch Logs ingestion bundled with AWS Lambda"
        ),
    )
    blocks.append(bundled)
    return blocks


def _line_item_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """52-character base32 ids, like the real `identity/LineItemId`."""
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
    raw = alphabet[rng.integers(0, 32, size=(n, 52), dtype=np.uint8)]
    data = pa.py_buffer(np.ascontiguousarray(raw).tobytes())
    offsets = pa.py_buffer(np.arange(0, 52 * (n + 1), 52, dtype=np.int32).tobytes())
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, data])


@dataclass
class _DayPlan:
    ri_hours: list[int]
    sp_rows: list[int]
    month_rows: bool  # RIFee rows of the month belong to this day


def _plan_day(pool: _Pool, seed: int, month: _Month, day: date) -> _DayPlan:
    active = [sp.start <= day < sp.end for sp in pool.savings_plans]
    total = sum(
        sp.commitment_hourly for sp, on in zip(pool.savings_plans, active, strict=True) if on
    )
    sp_rows = [
        max(1, round(pool.sp_rows * sp.commitment_hourly / total)) if on else 0
        for sp, on in zip(pool.savings_plans, active, strict=True)
    ]
    return _DayPlan(
        ri_hours=[_reservation_hours(seed, ri, day) for ri in pool.reservations],
        sp_rows=sp_rows,
        month_rows=day == month.days[0],
    )


def _day_blocks(pool: _Pool, seed: int, month: _Month, day: date, scale: float) -> Iterator[_Block]:
    """All rows of one day: usage chunks, then one block of everything else.

    Random streams are keyed by (seed, day, chunk), so a day's rows do not depend on which other
    days are generated, and a restatement (`scale` ≠ 1) reproduces every row but the metered
    usage amounts and what derives from them (tax, EDP discount, credits, refund).
    """
    ordinal = day.toordinal()
    day_us = _day_us(day)
    plan = _plan_day(pool, seed, month, day)
    common = _common(pool, month, day)
    fixed_rows = 2 * sum(plan.sp_rows) + sum(plan.ri_hours) + pool.split_rows
    usage_rows = max(10, pool.rows_per_day - fixed_rows - 2 * len(_PRODUCTS) - 4)
    sums = _UsageSums.empty(pool)
    split: _Block | None = None
    chunks = -(-usage_rows // CHUNK_ROWS)
    for chunk in range(chunks):
        rows = min(CHUNK_ROWS, usage_rows - chunk * CHUNK_ROWS)
        block = _usage_block(pool, _rng(seed, 2, ordinal, chunk), rows, day_us, scale)
        sums.add(pool, block.cols["_res"], block.cols["lineItem/UnblendedCost"])
        if split is None:
            split = _split_block(pool, _rng(seed, 3, ordinal), block)
        del block.cols["_res"]
        block.update(common)
        yield block

    rng = _rng(seed, 4, ordinal)
    blocks: list[_Block] = [split] if split is not None else []
    for ri, hours in zip(pool.reservations, plan.ri_hours, strict=True):
        if hours:
            blocks.append(_discounted_usage(pool, rng, ri, hours, day_us))
        if plan.month_rows and ri.start < month.end and ri.end > month.start:
            blocks.append(_ri_fee(pool, seed, ri, month, day_us))
        if ri.start == day and ri.purchased_in_window:
            blocks.append(_ri_purchase(pool, ri, day_us))
    for sp, rows in zip(pool.savings_plans, plan.sp_rows, strict=True):
        if not rows:
            continue
        covered, negation, used = _sp_covered(pool, rng, sp, rows, day_us)
        blocks += [covered, negation, _sp_fee(pool, sp, used, day_us)]
        if sp.start == day and sp.purchased_in_window:
            blocks.append(_sp_purchase(pool, sp, day_us))
    blocks += _adjustments(pool, _rng(seed, 5, ordinal), sums, day_us)
    block = _concat(blocks)
    block.update(common)
    yield block


# --------------------------------------------------------------------------------------------
# Encoding: CSV text (Java-style numbers, .000Z timestamps) and Arrow tables


def _java_numbers(values: np.ndarray) -> pa.Array:
    """Numbers as AWS writes them: `0.0`, `1.0`, `0.096`, `6.71E-8`, `1.2345E7`; null for NaN."""
    values = np.asarray(values, dtype=np.float64) + 0.0
    missing = np.isnan(values)
    magnitude = np.abs(values)
    scientific = ~missing & (magnitude != 0) & ((magnitude < 1e-3) | (magnitude >= 1e7))
    text = pa.array(values, mask=missing).cast(pa.string())
    whole = pc.invert(pc.match_substring(text, "."))
    text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    if scientific.any():
        picked = values[scientific]
        exponent = np.floor(np.log10(np.abs(picked))).astype(np.int64)
        mantissa = np.round(picked / np.power(10.0, exponent), 12)
        carry = np.abs(mantissa) >= 10.0
        mantissa[carry] /= 10.0
        exponent[carry] += 1
        m_text = pa.array(mantissa).cast(pa.string())
        m_whole = pc.invert(pc.match_substring(m_text, "."))
        m_text = pc.if_else(m_whole, pc.binary_join_element_wise(m_text, ".0", ""), m_text)
        s_text = pc.binary_join_element_wise(m_text, pa.array(exponent).cast(pa.string()), "E")
        text = pc.replace_with_mask(text, pa.array(scientific), s_text)
    return text


def _timestamps_text(values: np.ndarray) -> pa.Array:
    distinct, inverse = np.unique(values, return_inverse=True)
    labels = pa.array([None if v == NAT else _iso_ms(v) for v in distinct], type=pa.string())
    return pc.take(labels, pa.array(inverse.reshape(-1).astype(np.int32)))


def _codes_array(codes: np.ndarray) -> pa.Array:
    return pa.array(codes, type=pa.int32(), mask=codes < 0)


class _Encoder:
    def __init__(self, pool: _Pool, flavour: str) -> None:
        self.pool = pool
        self.flavour = flavour
        self.header = (",".join(COLUMN_NAMES) + "\n").encode("utf-8")
        self.schema = self._schema()

    def _schema(self) -> pa.Schema:
        fields = []
        for (_name, kind, manifest_type), athena in zip(COLUMNS, ATHENA_NAMES, strict=True):
            if kind == _S:
                kind_type = pa.dictionary(pa.int32(), pa.string())
            elif kind == _ID or manifest_type == "String":
                kind_type = pa.string()
            elif kind == _F:
                kind_type = pa.float64()
            else:
                kind_type = pa.timestamp("ms")
            fields.append(pa.field(athena, kind_type))
        return pa.schema(fields)

    def csv_bytes(self, block: _Block, ids: pa.Array) -> memoryview:
        """CSV lines of the block (no header), fields quoted only when needed.

        A run of columns the block does not have becomes one constant of commas, so the join
        only touches the columns that hold values.
        """
        vocabs = self.pool.vocabs
        parts: list[pa.Array | str] = []
        gap = 0  # absent columns since the last present one

        def close_gap() -> None:
            nonlocal gap
            if gap:
                parts.append("," * (gap - 1))
            gap = 0

        for name, kind, _ in COLUMNS:
            value = block.cols.get(name)
            if kind != _ID and value is None:
                gap += 1
                continue
            close_gap()
            if kind == _ID:
                parts.append(ids)
            elif kind == _S:
                codes = block.full(name)
                dictionary = vocabs[name].escaped()
                parts.append(
                    pa.DictionaryArray.from_arrays(
                        _codes_array(codes), dictionary
                    ).dictionary_decode()
                )
            elif kind == _F:
                parts.append(_java_numbers(block.full(name)))
            else:
                parts.append(_timestamps_text(block.full(name)))
        close_gap()
        lines = pc.binary_join_element_wise(
            *parts, ",", null_handling="replace", null_replacement=""
        )
        lines = pc.binary_join_element_wise(lines, "", "\n")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        return memoryview(lines.buffers()[2])[first:last]

    def table(self, block: _Block, ids: pa.Array) -> pa.Table:
        vocabs = self.pool.vocabs
        arrays = []
        for (name, kind, _), f in zip(COLUMNS, self.schema, strict=True):
            value = block.cols.get(name)
            if kind == _ID:
                arrays.append(ids)
            elif value is None:
                if kind == _S:
                    arrays.append(
                        pa.DictionaryArray.from_arrays(
                            pa.nulls(block.n, pa.int32()), pa.array([], pa.string())
                        )
                    )
                else:
                    arrays.append(pa.nulls(block.n, f.type))
            elif kind == _S:
                codes = block.full(name)
                arrays.append(
                    pa.DictionaryArray.from_arrays(_codes_array(codes), vocabs[name].array())
                )
            elif f.type == pa.string():
                arrays.append(_java_numbers(block.full(name)))
            elif kind == _F:
                values = block.full(name)
                arrays.append(pa.array(values, mask=np.isnan(values)))
            else:
                values = block.full(name)
                missing = values == NAT
                arrays.append(
                    pa.array(
                        np.where(missing, 0, values // 1000), type=pa.timestamp("ms"), mask=missing
                    )
                )
        return pa.Table.from_arrays(arrays, schema=self.schema)


# --------------------------------------------------------------------------------------------
# Writing assemblies and manifests


class _AssemblyWriter:
    """Part files of one assembly. Each part is written by one background thread, in order, so
    the bytes do not depend on scheduling; at most two pieces are in flight (bounded memory)."""

    def __init__(self, folder: Path, report: str, flavour: str, schema: pa.Schema, header: bytes):
        self.folder = folder
        self.report = report
        self.flavour = flavour
        self.schema = schema
        self.header = header
        self.files: list[str] = []
        self.rows = 0
        self.part_rows = 0
        self._sink: object | None = None
        self._raw = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cur-part")
        self._pending: deque[Future[None]] = deque()
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"{report}-*"):
            stale.unlink()

    def room(self) -> int:
        """Rows that still fit in the current part (a new part starts when it is full)."""
        return PART_ROWS - self.part_rows if self._sink is not None else PART_ROWS

    def _submit(self, function: Callable[..., None], *args: object) -> None:
        while len(self._pending) >= 2:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(function, *args))

    def _open(self) -> None:
        name = part_name(self.report, len(self.files) + 1, self.flavour)
        self.files.append(name)
        path = self.folder / name
        self.part_rows = 0
        if self.flavour == "csv":
            raw = open(path, "wb")  # noqa: SIM115 - closed in _close_part
            sink = gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
            )
            self._raw, self._sink = raw, sink
            self._submit(sink.write, self.header)
        else:
            self._raw = None
            self._sink = pq.ParquetWriter(
                path,
                self.schema,
                compression="snappy",
                version="2.6",
                write_statistics=True,
                store_schema=False,
            )

    def write(self, payload: memoryview | pa.Table, rows: int) -> None:
        if self._sink is None:
            self._open()
        if self.flavour == "csv":
            self._submit(self._sink.write, payload)  # type: ignore[union-attr]
        else:
            self._submit(self._sink.write_table, payload, PART_ROWS)  # type: ignore[union-attr]
        self.part_rows += rows
        self.rows += rows
        if self.part_rows >= PART_ROWS:
            self._close_part()

    def _close_part(self) -> None:
        sink, raw = self._sink, self._raw
        self._sink = self._raw = None

        def close() -> None:
            sink.close()  # type: ignore[union-attr]
            if raw is not None:
                raw.close()

        self._submit(close)

    def close(self) -> list[str]:
        try:
            if self._sink is None and not self.files:
                self._open()  # an empty assembly still has one (empty) part
            if self._sink is not None:
                self._close_part()
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._executor.shutdown(wait=True)
        return self.files


def _emit(
    encoder: _Encoder, block: _Block, ids: pa.Array, writers: Sequence[_AssemblyWriter]
) -> None:
    """Write `block` to every writer (they hold the same number of rows), encoding each slice
    once. Slices never straddle a part boundary."""
    start = 0
    while start < block.n:
        room = writers[0].room()
        stop = min(block.n, start + room, start + CSV_SLICE_ROWS)
        piece = block.take(start, stop)
        piece_ids = ids.slice(start, stop - start)
        if encoder.flavour == "csv":
            payload: memoryview | pa.Table = encoder.csv_bytes(piece, piece_ids)
        else:
            payload = encoder.table(piece, piece_ids)
        for writer in writers:
            writer.write(payload, stop - start)
        start = stop


def _column_entries() -> list[dict[str, str]]:
    entries = []
    for name, _, manifest_type in COLUMNS:
        category, _, column = name.partition("/")
        entries.append({"category": category, "name": column, "type": manifest_type})
    return entries


def _write_manifest(
    period_dir: Path,
    report: str,
    flavour: str,
    assembly_id: str,
    payer: str,
    report_id: str,
    month_start: date,
    files: Sequence[str],
) -> Path:
    period = billing_period_folder(month_start)
    end = _next_month(month_start)
    manifest = {
        "assemblyId": assembly_id,
        "account": payer,
        "columns": _column_entries(),
        "charset": "UTF-8",
        "compression": "GZIP" if flavour == "csv" else "Parquet",
        "contentType": "text/csv" if flavour == "csv" else "Parquet",
        "reportId": report_id,
        "reportName": report,
        "billingPeriod": {
            "start": f"{month_start:%Y%m%d}T000000.000Z",
            "end": f"{end:%Y%m%d}T000000.000Z",
        },
        "bucket": BUCKET,
        "reportKeys": [f"{S3_PREFIX}/{report}/{period}/{assembly_id}/{name}" for name in files],
        "additionalArtifactKeys": [],
    }
    path = period_dir / manifest_name(report)
    temporary = period_dir / f".{manifest_name(report)}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # readers see the old manifest or the new one, never half
    return path


def _restated_days(seed: int, days: Sequence[date]) -> list[date]:
    rng = _rng(seed, 99, 1)
    wanted = int(rng.integers(2, 4))
    count = min(wanted, max(1, len(days) - 1))  # leave a day untouched when there are two
    chosen = rng.choice(len(days), size=count, replace=False)
    return sorted(days[int(i)] for i in chosen)


def generate_aws_cur(
    out: Path,
    start: date,
    days: int,
    rows_per_day: int,
    seed: int,
    flavour: str = "csv",
    report: str = "finops-cur",
) -> CurSampleSummary:
    """Write a legacy CUR for [start, start + days) under `<out>/aws-cur/<report>/`.

    One assembly per billing month, about `rows_per_day` rows per day (very small values still
    write the minimum mix of line item types, so the count can be exceeded). The first month is
    delivered twice: the old assembly, then a new one whose rows differ on
    `CurSampleSummary.restated_days` only (late metered usage, and the tax, EDP discount, credits
    and refund derived from it); the period manifest is rewritten to point at the new one.
    Months before the last one are final (`bill/InvoiceId` set). `flavour` is `csv` (slash
    names, gzip CSV) or `parquet` (Athena snake names, snappy Parquet).
    """
    began = time.perf_counter()
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be at least 1, got {rows_per_day}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", report):
        raise ValueError(f"report name {report!r} must be letters, digits, '.', '_' or '-'")
    out = Path(out)
    all_days = [start + timedelta(days=i) for i in range(days)]
    by_month: dict[date, list[date]] = {}
    for day in all_days:
        by_month.setdefault(day.replace(day=1), []).append(day)
    month_starts = list(by_month)
    pool = _build_pool(seed, rows_per_day, month_starts, start)
    encoder = _Encoder(pool, flavour)
    report_id = hashlib.sha256(f"{report}:{seed}".encode()).hexdigest()
    restated = _restated_days(seed, by_month[month_starts[0]])
    restated_set = set(restated)
    report_dir = out / LANDING_DIR / report

    summary = CurSampleSummary(
        report=report,
        assemblies=[],
        manifests=[],
        total_rows=0,
        restated_days=restated,
        seconds=0.0,
        restated_period=billing_period_folder(month_starts[0]),
    )
    for m_index, month_start in enumerate(month_starts):
        month_rng = _rng(seed, 6, month_start.toordinal())
        final = m_index < len(month_starts) - 1
        month = _Month(
            start=month_start,
            end=_next_month(month_start),
            invoice_id=f"{int(month_rng.integers(10**9, 10**10))}" if final else "",
            days=by_month[month_start],
        )
        restating = m_index == 0
        period_dir = report_dir / billing_period_folder(month_start)
        assembly_ids = [_uuid(month_rng) for _ in range(2 if restating else 1)]
        writers = [
            _AssemblyWriter(period_dir / a, report, flavour, encoder.schema, encoder.header)
            for a in assembly_ids
        ]
        try:
            for day in month.days:
                ordinal = day.toordinal()
                if restating and day in restated_set:
                    scale = 1.0 + float(_rng(seed, 7, ordinal).uniform(0.04, 0.12))
                    old = _day_blocks(pool, seed, month, day, 1.0)
                    new = _day_blocks(pool, seed, month, day, scale)
                    for b_index, (a, b) in enumerate(zip(old, new, strict=True)):
                        ids = _line_item_ids(_rng(seed, 8, ordinal, b_index), a.n)
                        _emit(encoder, a, ids, writers[:1])
                        _emit(encoder, b, ids, writers[1:])
                else:
                    for b_index, block in enumerate(_day_blocks(pool, seed, month, day, 1.0)):
                        ids = _line_item_ids(_rng(seed, 8, ordinal, b_index), block.n)
                        _emit(encoder, block, ids, writers)
        finally:
            files = [w.close() for w in writers]
        for assembly_id, writer, names in zip(assembly_ids, writers, files, strict=True):
            manifest = _write_manifest(
                period_dir, report, flavour, assembly_id, pool.payer, report_id, month_start, names
            )
            relative = writer.folder.relative_to(out).as_posix()
            summary.assemblies.append(relative)
            summary.manifests.append(manifest.relative_to(out).as_posix())
            summary.files.extend(f"{relative}/{name}" for name in names)
            summary.rows_by_assembly[relative] = writer.rows
            summary.total_rows += writer.rows
        summary.files.append(summary.manifests[-1])
    summary.seconds = time.perf_counter() - began
    return summary
