"""Synthetic FOCUS 1.2 exports from three producers, written in the landing layout loaders read.

The platform has to be exercised on data that behaves like real deliveries (provider id styles,
drifting tag keys, commitments, corrections, two currencies, a restated month) at realistic
volume, without cloud credentials. Everything derives from the seed and the billing month, never
from the wall clock, so the same arguments always produce byte-identical files.

Layout (one delivery per producer and billing month, plus a restatement of the first month)::

    <out>/focus/<provider_slug>/<dataset>/billing_period=YYYY-MM/<delivery_id>/part-00000.<ext>
    <out>/focus/<provider_slug>/<dataset>/billing_period=YYYY-MM/<delivery_id>/manifest.json

``manifest.json`` is written last and is the completeness marker. Generation is vectorized with
numpy/pyarrow and streamed part by part, so memory stays flat with the number of rows.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from finops_assets.lib.focus import (
    CHARGE_CATEGORIES,
    CHARGE_FREQUENCIES,
    COMMITMENT_DISCOUNT_STATUSES,
    FOCUS_COLUMNS,
    MONEY,
    PRICING_CATEGORIES,
    QUANTITY,
    SERVICE_CATEGORIES,
    TIMESTAMP,
)

FOCUS_VERSION = "1.2"
PART_ROWS = 500_000
MANIFEST_NAME = "manifest.json"
SUPPORTED_FORMATS = ("parquet", "csv")
FILE_FORMATS = ("parquet", "csv", "csv.gz")

# Fixed writer options: changing any of them changes the bytes of every generated file.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 1,
    "write_statistics": True,
    "version": "2.6",
    "store_schema": False,
}
GZIP_LEVEL = 1  # speed over size: these files are rewritten often
CSV_SLICE_ROWS = 100_000

TEAMS = ("payments", "search", "data-platform", "mobile", "checkout", "ml-infra")
TEAM_DEPARTMENT = {
    "payments": "product",
    "search": "engineering",
    "data-platform": "data",
    "mobile": "product",
    "checkout": "product",
    "ml-infra": "engineering",
}
TEAM_COST_CENTER = {team: f"CC-{1001 + i}" for i, team in enumerate(TEAMS)}
ENVIRONMENTS = ("prod", "staging", "dev")
ENVIRONMENT_SPELLINGS = {
    "prod": ("prod", "production", "Prod"),
    "staging": ("staging",),
    "dev": ("dev",),
}
# Commitments are bought centrally; their purchase and unused rows carry the platform owner's tags.
COMMITMENT_OWNER_TAGS = {
    "Team": "platform",
    "Department": "engineering",
    "CostCenter": "CC-1000",
    "Environment": "prod",
}

USAGE_NOISE_SIGMA = 0.35
COMMITMENT_COST_SHARE = 0.18  # daily commitment fees relative to expected on-demand usage cost
UNTAGGED_COST_TARGET = 0.10  # share of |cost| without a team tag (tax, credits, untagged usage)
MICROS_PER_DAY = 86_400_000_000
MICROS_PER_HOUR = 3_600_000_000

_TEXT_TYPE = pa.dictionary(pa.int32(), pa.string())
_TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


def focus_arrow_schema() -> pa.Schema:
    """Arrow schema of generated tables: text dictionary-encoded, money float64, UTC timestamps."""
    fields = []
    for name, kind in FOCUS_COLUMNS.items():
        if kind in (MONEY, QUANTITY):
            fields.append(pa.field(name, pa.float64()))
        elif kind == TIMESTAMP:
            fields.append(pa.field(name, _TIMESTAMP_TYPE))
        else:
            fields.append(pa.field(name, _TEXT_TYPE))
    return pa.schema(fields)


FOCUS_ARROW_SCHEMA = focus_arrow_schema()


# --------------------------------------------------------------------------------------------
# Public results and helpers


@dataclass
class SampleSummary:
    """What `generate_sample_exports` wrote, so tests and the CLI can check it without rescanning."""

    deliveries: list[Path]  # delivery folders, relative to `out`, in write order
    total_rows: int  # rows written over all deliveries (a restatement counts again)
    restated_month: str  # "YYYY-MM": the month delivered twice
    restated_days: list[date]  # charge days whose rows differ between the two deliveries
    seconds: float
    files: list[Path] = field(default_factory=list)  # every file written, relative to `out`
    rows_by_delivery: dict[str, int] = field(default_factory=dict)  # key: delivery path (posix)


def _utc(value: datetime) -> datetime:
    """Aware datetimes converted to UTC; naive ones are taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 UTC with a Z suffix, as in manifests and CSV files (naive means UTC)."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_delivery_id(created_at: datetime, token: int) -> str:
    """`<yyyymmddThhmmssZ>-<8 hex>`: sorting ids lexically sorts deliveries by creation time."""
    return f"{_utc(created_at):%Y%m%dT%H%M%SZ}-{token & 0xFFFFFFFF:08x}"


def delivery_path(
    out: Path, provider_slug: str, dataset: str, billing_period: str, delivery_id: str
) -> Path:
    """Folder of one delivery in the FOCUS landing layout."""
    return (
        Path(out)
        / "focus"
        / provider_slug
        / dataset
        / f"billing_period={billing_period}"
        / delivery_id
    )


def part_file_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


def write_delivery(
    delivery_dir: Path,
    table: pa.Table,
    provider: str,
    dataset: str,
    billing_period: str,
    created_at: datetime,
    fmt: str,
    delivery_id: str | None = None,
    part_rows: int = PART_ROWS,
) -> Path:
    """Write `table` as one delivery: part files, then manifest.json. Returns `delivery_dir`.

    `delivery_dir` is the delivery folder itself (see `delivery_path`). `delivery_id` defaults to
    the folder name; pass another value to craft a manifest that disagrees with its folder. The
    table is written as given, never validated, so tests can build deliveries that loaders must
    reject. An empty table still writes one (empty) part so the delivery is complete.
    """
    writer = _PartWriter(Path(delivery_dir), fmt, part_rows)
    writer.write(table)
    files = writer.close(table.schema)
    _write_manifest(
        Path(delivery_dir),
        delivery_id if delivery_id is not None else Path(delivery_dir).name,
        provider,
        dataset,
        billing_period,
        created_at,
        files,
    )
    return Path(delivery_dir)


# --------------------------------------------------------------------------------------------
# Writing parts and manifests


def _write_manifest(
    delivery_dir: Path,
    delivery_id: str,
    provider: str,
    dataset: str,
    billing_period: str,
    created_at: datetime,
    files: Sequence[str],
) -> Path:
    manifest = {
        "deliveryId": delivery_id,
        "provider": provider,
        "dataset": dataset,
        "billingPeriod": billing_period,
        "createdAt": format_timestamp(created_at),
        "focusVersion": FOCUS_VERSION,
        "files": list(files),
    }
    path = delivery_dir / MANIFEST_NAME
    temporary = delivery_dir / f".{MANIFEST_NAME}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # a reader sees no manifest or the complete one, never half
    return path


class _Background:
    """A small pool that writes part files while the next rows are generated.

    pyarrow's Parquet/CSV writers and zlib release the GIL, so on two cores writing overlaps with
    generation. At most `max_pending` parts are in flight, which bounds memory. Each file is
    written whole by one thread, so output bytes do not depend on scheduling.
    """

    def __init__(self, workers: int = 2, max_pending: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sample-parts")
        self._max_pending = max_pending
        self._pending: deque[Future[None]] = deque()

    def submit(self, function: Callable[..., None], *args: object) -> Future[None]:
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        future = self._executor.submit(function, *args)
        self._pending.append(future)
        return future

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)


class _PartWriter:
    """Buffers tables and writes them as parts of exactly `part_rows` rows (the last may be short)."""

    def __init__(
        self,
        delivery_dir: Path,
        fmt: str,
        part_rows: int,
        background: _Background | None = None,
    ) -> None:
        if fmt not in FILE_FORMATS:
            raise ValueError(f"unknown delivery format {fmt!r}; use one of {FILE_FORMATS}")
        if part_rows < 1:
            raise ValueError(f"part_rows must be at least 1, got {part_rows}")
        self.delivery_dir = delivery_dir
        self.fmt = fmt
        self.part_rows = part_rows
        self.files: list[str] = []
        self.rows = 0
        self._background = background
        self._futures: list[Future[None]] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        delivery_dir.mkdir(parents=True, exist_ok=True)
        # A rewrite must not leave an old manifest (it would mark the half-written delivery
        # complete) or stale parts the new manifest does not list.
        (delivery_dir / MANIFEST_NAME).unlink(missing_ok=True)
        for stale in delivery_dir.glob("part-*"):
            stale.unlink()

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.part_rows:
            self._flush(self.part_rows)

    def finish(self, schema: pa.Schema | None = None) -> None:
        """Hand the buffered rows to the last part (an empty part when nothing was written)."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        if not self.files:
            if schema is None:
                raise ValueError("cannot write an empty delivery without a schema")
            self._write_part(schema.empty_table())

    def wait(self) -> list[str]:
        """Block until every part is on disk; returns the file names in order."""
        for future in self._futures:
            future.result()
        return self.files

    def done(self) -> bool:
        return all(future.done() for future in self._futures)

    def close(self, schema: pa.Schema | None = None) -> list[str]:
        self.finish(schema)
        return self.wait()

    def _flush(self, rows: int) -> None:
        buffered = pa.concat_tables(self._pending)
        self._write_part(buffered.slice(0, rows))
        rest = buffered.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _write_part(self, table: pa.Table) -> None:
        name = part_file_name(len(self.files), self.fmt)
        self.files.append(name)
        self.rows += table.num_rows
        path = self.delivery_dir / name
        if self._background is None:
            _write_part_file(path, table, self.fmt, self.part_rows)
        else:
            self._futures.append(
                self._background.submit(_write_part_file, path, table, self.fmt, self.part_rows)
            )


def _write_part_file(path: Path, table: pa.Table, fmt: str, part_rows: int) -> None:
    if fmt == "parquet":
        text_columns = [
            f.name
            for f in table.schema
            if pa.types.is_dictionary(f.type)
            or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
        ]
        pq.write_table(
            table,
            path,
            row_group_size=max(part_rows, 1),
            use_dictionary=text_columns,
            **PARQUET_OPTIONS,
        )
    elif fmt == "csv":
        with pa.OSFile(str(path), "wb") as sink:  # native file: no GIL round trips per batch
            _write_csv(table, sink)
    else:
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
            ) as sink,
        ):
            _write_csv(table, sink)


def _write_csv(table: pa.Table, sink: BinaryIO | pa.NativeFile) -> None:
    """Header row, ISO-8601 Z timestamps, plain decimals, empty field for null, quoted text.

    Converted slice by slice, so decoded text never holds more than `CSV_SLICE_ROWS` rows.
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(table.column_names)
    sink.write(header.getvalue().encode("utf-8"))
    scales = _decimal_scales(table)
    options = pa_csv.WriteOptions(include_header=False)
    for offset in range(0, table.num_rows, CSV_SLICE_ROWS):
        pa_csv.write_csv(_csv_ready(table.slice(offset, CSV_SLICE_ROWS), scales), sink, options)


def _decimal_scales(table: pa.Table) -> dict[str, int | None]:
    """Per float column, the fewest decimals (2, 6 or 10) that keep every value; None when the
    column cannot be written as a plain decimal (NaN, infinity, beyond 28 integer digits)."""
    scales: dict[str, int | None] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not pa.types.is_floating(column.type):
            continue
        finite = pc.all(pc.is_finite(column)).as_py() is not False
        small = (pc.max(pc.abs(column)).as_py() or 0.0) < 1e27
        if not (finite and small):
            scales[name] = None
            continue
        for scale in (2, 6, 10):
            exact = pc.all(pc.equal(pc.round(column, scale), column)).as_py()
            if exact is None or exact or scale == 10:
                scales[name] = scale
                break
    return scales


def _csv_ready(table: pa.Table, scales: dict[str, int | None]) -> pa.Table:
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            # Decoding first is much faster than letting the CSV writer handle dictionaries.
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_timestamp(kind):
            column = _timestamp_text(column)
        elif pa.types.is_floating(kind) and scales.get(name) is not None:
            column = column.cast(pa.decimal128(38, scales[name]))
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _timestamp_text(column: pa.ChunkedArray) -> pa.Array:
    """ISO 8601 text; formats each distinct instant once (a day of charges has few of them)."""
    kind = column.type
    suffix = "Z" if kind.tz is not None else ""
    encoded = column.combine_chunks().dictionary_encode()
    instants = encoded.dictionary
    with contextlib.suppress(pa.ArrowInvalid):  # sub-second values keep their fraction
        instants = instants.cast(pa.timestamp("s", tz=kind.tz))
    text = pc.strftime(instants, format=f"%Y-%m-%dT%H:%M:%S{suffix}")
    return pa.DictionaryArray.from_arrays(encoded.indices, text).cast(pa.string())


# --------------------------------------------------------------------------------------------
# Producer descriptions


@dataclass(frozen=True)
class _Service:
    kind: str
    name: str
    category: str
    subcategory: str
    resource_type: str
    unit: str
    skus: tuple[tuple[str, float], ...]  # (label, list unit price in billing currency)
    quantity_per_row: float  # typical quantity of one row (per day, or per hour when hourly)
    placement: str  # "zonal", "regional" or "global"
    weight: float
    hourly: bool = False
    spot_share: float = 0.0  # share of resources billed at Dynamic (spot) prices


@dataclass(frozen=True)
class _Commitment:
    commitment_type: str
    category: str  # "Usage" (unit Hours) or "Spend" (unit = currency)
    service_kind: str
    fee_share: float
    discount: float  # effective rate = list rate * (1 - discount)


@dataclass(frozen=True)
class _Producer:
    slug: str
    provider_name: str
    publisher_name: str
    invoice_issuer: str
    dataset: str
    native_format: str
    currency: str
    row_share: float
    billing_account_type: str
    sub_account_type: str
    billing_account_name: str
    regions: tuple[tuple[str, str], ...]
    services: tuple[_Service, ...]
    commitments: tuple[_Commitment, ...]
    tax_rate: float
    credit_rate: float
    negotiated_discount: float
    team_keys: tuple[tuple[str, float], ...]
    department_keys: tuple[str, ...]
    environment_keys: tuple[str, ...]
    cost_center_keys: tuple[str, ...]
    lowercase_tags: bool
    sub_account_count: int
    created_hour: int


_AWS = _Producer(
    slug="aws",
    provider_name="AWS",
    publisher_name="AWS",
    invoice_issuer="AWS",
    dataset="aws-focus",
    native_format="parquet",
    currency="USD",
    row_share=0.5,
    billing_account_type="Management Account",
    sub_account_type="Member Account",
    billing_account_name="Example Corp",
    regions=(
        ("us-east-1", "US East (N. Virginia)"),
        ("us-west-2", "US West (Oregon)"),
        ("eu-west-1", "Europe (Ireland)"),
        ("eu-central-1", "Europe (Frankfurt)"),
    ),
    services=(
        _Service(
            "ec2",
            "Amazon Elastic Compute Cloud",
            "Compute",
            "Virtual Machines",
            "Instance",
            "Hours",
            (
                ("m5.large", 0.096),
                ("c6g.xlarge", 0.136),
                ("r5.2xlarge", 0.504),
                ("t3.medium", 0.0416),
            ),
            24.0,
            "zonal",
            0.36,
            spot_share=0.08,
        ),
        _Service(
            "s3",
            "Amazon Simple Storage Service",
            "Storage",
            "Object Storage",
            "Bucket",
            "GB-Months",
            (("TimedStorage-ByteHrs", 0.023), ("TimedStorage-INT-FA-ByteHrs", 0.0125)),
            90.0,
            "regional",
            0.18,
        ),
        _Service(
            "rds",
            "Amazon Relational Database Service",
            "Databases",
            "Relational Databases",
            "DB Instance",
            "Hours",
            (("db.r6g.large", 0.225), ("db.m5.xlarge", 0.342)),
            24.0,
            "zonal",
            0.14,
        ),
        _Service(
            "lambda",
            "AWS Lambda",
            "Compute",
            "Serverless Compute",
            "Function",
            "GB-Seconds",
            (("Lambda-GB-Second", 0.0000166667),),
            9000.0,
            "regional",
            0.12,
            hourly=True,
        ),
        _Service(
            "cloudfront",
            "Amazon CloudFront",
            "Networking",
            "Content Delivery",
            "Distribution",
            "GB",
            (("DataTransfer-Out-Bytes", 0.085),),
            40.0,
            "global",
            0.08,
        ),
        _Service(
            "cloudwatch",
            "AmazonCloudWatch",
            "Management and Governance",
            "Observability",
            "Log Group",
            "GB",
            (("DataProcessing-Bytes", 0.5),),
            4.0,
            "regional",
            0.08,
        ),
        _Service(
            "sagemaker",
            "Amazon SageMaker",
            "AI and Machine Learning",
            "Machine Learning",
            "Endpoint",
            "Hours",
            (("ml.g5.xlarge", 1.408),),
            24.0,
            "regional",
            0.04,
        ),
    ),
    commitments=(
        _Commitment("Savings Plan", "Spend", "ec2", 0.5, 0.28),
        _Commitment("Reserved Instance", "Usage", "ec2", 0.3, 0.36),
        _Commitment("Reserved Instance", "Usage", "rds", 0.2, 0.32),
    ),
    tax_rate=0.03,
    credit_rate=0.01,
    negotiated_discount=0.0,
    team_keys=(("Team", 0.55), ("team", 0.2), ("squad", 0.15), (" Team ", 0.1)),
    department_keys=("Department", "dept", "business-unit"),
    environment_keys=("Environment", "env"),
    cost_center_keys=("CostCenter", "cost-center", "costcenter"),
    lowercase_tags=False,
    sub_account_count=10,
    created_hour=6,
)

_AZURE = _Producer(
    slug="azure",
    provider_name="Microsoft",
    publisher_name="Microsoft",
    invoice_issuer="Microsoft",
    dataset="azure-focus-eu",
    native_format="csv",
    currency="EUR",
    row_share=0.3,
    billing_account_type="Billing Profile",
    sub_account_type="Subscription",
    billing_account_name="Example Corp EU",
    regions=(
        ("westeurope", "West Europe"),
        ("northeurope", "North Europe"),
        ("germanywestcentral", "Germany West Central"),
    ),
    services=(
        _Service(
            "vm",
            "Virtual Machines",
            "Compute",
            "Virtual Machines",
            "Virtual machine",
            "Hours",
            (("D2s v5", 0.089), ("E4s v5", 0.232), ("F8s v2", 0.338)),
            24.0,
            "zonal",
            0.38,
            spot_share=0.05,
        ),
        _Service(
            "storage",
            "Storage",
            "Storage",
            "Object Storage",
            "Storage account",
            "GB-Months",
            (("Hot LRS Data Stored", 0.0184), ("Cool LRS Data Stored", 0.0092)),
            120.0,
            "regional",
            0.2,
        ),
        _Service(
            "sql",
            "SQL Database",
            "Databases",
            "Relational Databases",
            "SQL database",
            "Hours",
            (("vCore General Purpose", 0.2331), ("vCore Business Critical", 0.6272)),
            24.0,
            "regional",
            0.16,
        ),
        _Service(
            "aks",
            "Azure Kubernetes Service",
            "Compute",
            "Containers",
            "Managed cluster",
            "Hours",
            (("Standard Uptime SLA", 0.0912),),
            24.0,
            "regional",
            0.1,
        ),
        _Service(
            "bandwidth",
            "Bandwidth",
            "Networking",
            "Network Connectivity",
            "Public IP address",
            "GB",
            (("Standard Data Transfer Out", 0.0797),),
            35.0,
            "regional",
            0.08,
        ),
        _Service(
            "loganalytics",
            "Log Analytics",
            "Management and Governance",
            "Observability",
            "Log Analytics workspace",
            "GB",
            (("Analytics Logs Data Ingestion", 2.14),),
            3.0,
            "regional",
            0.08,
        ),
    ),
    commitments=(
        _Commitment("Reserved Instance", "Usage", "vm", 0.6, 0.38),
        _Commitment("Savings Plan", "Spend", "vm", 0.4, 0.24),
    ),
    tax_rate=0.04,
    credit_rate=0.012,
    negotiated_discount=0.08,
    team_keys=(("Team", 0.5), ("team", 0.35), (" Team ", 0.15)),
    department_keys=("Department", "dept", "business-unit"),
    environment_keys=("Environment", "env"),
    cost_center_keys=("CostCenter", "cost-center"),
    lowercase_tags=False,
    sub_account_count=8,
    created_hour=7,
)

_GCP = _Producer(
    slug="gcp",
    provider_name="Google Cloud",
    publisher_name="Google Cloud",
    invoice_issuer="Google Cloud",
    dataset="gcp-focus",
    native_format="parquet",
    currency="USD",
    row_share=0.2,
    billing_account_type="Billing Account",
    sub_account_type="Project",
    billing_account_name="Example Corp billing",
    regions=(
        ("europe-west1", "Belgium"),
        ("europe-west4", "Netherlands"),
        ("us-central1", "Iowa"),
    ),
    services=(
        _Service(
            "gce",
            "Compute Engine",
            "Compute",
            "Virtual Machines",
            "Instance",
            "Hours",
            (("n2-standard-4", 0.1942), ("e2-standard-8", 0.2681), ("c3-highcpu-22", 1.0012)),
            24.0,
            "zonal",
            0.36,
            spot_share=0.1,
        ),
        _Service(
            "gcs",
            "Cloud Storage",
            "Storage",
            "Object Storage",
            "Bucket",
            "GB-Months",
            (("Standard Storage Europe Multi-region", 0.026),),
            110.0,
            "regional",
            0.18,
        ),
        _Service(
            "bigquery",
            "BigQuery",
            "Databases",
            "Data Warehouses",
            "Dataset",
            "Tebibytes",
            (("Analysis", 6.25),),
            0.02,
            "regional",
            0.14,
            hourly=True,
        ),
        _Service(
            "cloudsql",
            "Cloud SQL",
            "Databases",
            "Relational Databases",
            "Instance",
            "Hours",
            (("DB custom CORE running", 0.0413), ("DB custom RAM running", 0.007)),
            96.0,
            "regional",
            0.14,
        ),
        _Service(
            "gke",
            "Kubernetes Engine",
            "Compute",
            "Containers",
            "Cluster",
            "Hours",
            (("Regional Kubernetes Clusters", 0.1),),
            24.0,
            "regional",
            0.1,
        ),
        _Service(
            "vertex",
            "Vertex AI",
            "AI and Machine Learning",
            "Machine Learning",
            "Endpoint",
            "Hours",
            (("Online prediction n1-standard-4", 0.2185),),
            24.0,
            "regional",
            0.08,
        ),
    ),
    commitments=(
        _Commitment("Committed Use Discount", "Usage", "gce", 0.65, 0.37),
        _Commitment("Committed Use Discount", "Spend", "cloudsql", 0.35, 0.25),
    ),
    tax_rate=0.025,
    credit_rate=0.015,
    negotiated_discount=0.05,
    team_keys=(("team", 0.75), ("squad", 0.25)),
    department_keys=("dept", "business-unit"),
    environment_keys=("env",),
    cost_center_keys=("cost-center", "costcenter"),
    lowercase_tags=True,
    sub_account_count=7,
    created_hour=5,
)

PRODUCERS: tuple[_Producer, ...] = (_AWS, _AZURE, _GCP)


# --------------------------------------------------------------------------------------------
# Resource pools: every string is built once per resource, rows only hold indices into them


@dataclass
class _Pool:
    producer: _Producer
    resource_count: int  # real resources; commitments follow as pseudo-resources
    cdf: np.ndarray  # cumulative pick probability over real resources
    # per resource (real + commitment pseudo-resources)
    res_service: np.ndarray
    res_sku: np.ndarray
    res_region: np.ndarray
    res_zone: np.ndarray
    res_sub: np.ndarray
    res_type: np.ndarray
    res_tags: np.ndarray
    res_unit: np.ndarray
    res_base_quantity: np.ndarray
    res_list_price: np.ndarray
    res_contracted_price: np.ndarray
    res_dynamic: np.ndarray
    res_hourly: np.ndarray
    res_tagged: np.ndarray
    expected_row_cost: float
    # dictionaries
    resource_ids: _Lookup
    resource_names: _Lookup
    resource_types: _Lookup
    tags: _Lookup
    zones: _Lookup
    units: _Lookup
    service_names: _Lookup
    service_categories: _Lookup
    service_subcategories: _Lookup
    region_ids: _Lookup
    region_names: _Lookup
    sub_ids: _Lookup
    sub_names: _Lookup
    sku_ids: _Lookup
    sku_price_ids: _Lookup
    sku_meters: _Lookup
    sku_price_details: _Lookup
    descriptions: _Lookup
    commitment_ids: _Lookup
    commitment_names: _Lookup
    commitment_types: _Lookup
    commitment_categories: _Lookup
    commitment_units: _Lookup
    # codes of special rows
    tax_service: int
    main_service: int
    description_tax: int
    description_credit: int
    description_correction: int
    description_adjustment: int
    description_commitment_purchase: list[int]
    description_commitment_unused: list[int]
    # commitment economics (per commitment)
    commitment_fee_micros: np.ndarray
    commitment_rate: np.ndarray  # effective price per committed unit (Usage) or 1.0 (Spend)
    commitment_list_rate: np.ndarray
    commitment_is_usage: np.ndarray
    commitment_discount: np.ndarray
    commitment_candidates: list[np.ndarray]
    covered_rows_per_commitment: int
    usage_rows_nominal: int
    billing_account_id: str
    rows_per_day: int
    tax_rows: int
    credit_rows: int
    correction_rows: int


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _hex(rng: np.random.Generator, count: int, digits: int) -> list[str]:
    values = rng.integers(0, 2**62, size=count, dtype=np.int64)
    return [format(int(v), "016x")[-digits:].rjust(digits, "0") for v in values]


def _guid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _billing_account_id(producer: _Producer, rng: np.random.Generator) -> str:
    if producer.slug == "aws":
        return f"0{int(rng.integers(10**10, 10**11)):011d}"
    if producer.slug == "azure":
        account = f"{_guid(rng)}:{_guid(rng)}_2019-05-31"
        profile = "-".join(
            "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"), size=n))
            for n in (4, 4, 3, 3)
        )
        return f"/providers/Microsoft.Billing/billingAccounts/{account}/billingProfiles/{profile}"
    groups = ["".join(rng.choice(list("0123456789ABCDEF"), size=6)) for _ in range(3)]
    return f"01{groups[0][2:]}-{groups[1]}-{groups[2]}"


def _sub_accounts(producer: _Producer, rng: np.random.Generator) -> list[tuple[str, str, int, int]]:
    """(id, name, team index, environment index) per sub-account."""
    accounts = []
    for i in range(producer.sub_account_count):
        team = i % len(TEAMS)
        environment = 0 if i < len(TEAMS) else 1 + (i % 2)
        label = f"{TEAMS[team]}-{ENVIRONMENTS[environment]}"
        if producer.slug == "aws":
            number = int(rng.integers(10**10, 10**12))
            if i % 3 == 0:
                number //= 10  # AWS account ids are strings: keep the leading zeros
            accounts.append((f"{number:012d}", label, team, environment))
        elif producer.slug == "azure":
            accounts.append((_guid(rng), f"sub-{label}", team, environment))
        else:
            project = f"{label}-{int(rng.integers(1000, 9999))}"
            accounts.append((project, label, team, environment))
    return accounts


def _resource_identity(
    producer: _Producer,
    service: _Service,
    number: int,
    token: str,
    region: str | None,
    zone: str | None,
    sub_id: str,
    team: str,
    environment: str,
) -> tuple[str, str]:
    role = {
        "ec2": "api",
        "rds": "db",
        "lambda": "worker",
        "s3": "bucket",
        "cloudfront": "cdn",
        "cloudwatch": "logs",
        "sagemaker": "model",
        "vm": "vm",
        "storage": "st",
        "sql": "sqldb",
        "aks": "aks",
        "bandwidth": "pip",
        "loganalytics": "law",
        "gce": "vm",
        "gcs": "bucket",
        "bigquery": "dataset",
        "cloudsql": "sql",
        "gke": "gke",
        "vertex": "endpoint",
    }[service.kind]
    name = f"{team}-{role}-{environment}-{number}"
    if producer.slug == "aws":
        arn_region = region or ""
        resource = {
            "ec2": f"arn:aws:ec2:{arn_region}:{sub_id}:instance/i-0{token[:16]}",
            "s3": f"arn:aws:s3:::{name}-{token[:6]}",
            "rds": f"arn:aws:rds:{arn_region}:{sub_id}:db:{name}",
            "lambda": f"arn:aws:lambda:{arn_region}:{sub_id}:function:{name}",
            "cloudfront": f"arn:aws:cloudfront::{sub_id}:distribution/E{token[:13].upper()}",
            "cloudwatch": f"arn:aws:logs:{arn_region}:{sub_id}:log-group:/aws/{team}/{name}",
            "sagemaker": f"arn:aws:sagemaker:{arn_region}:{sub_id}:endpoint/{name}",
        }[service.kind]
        return resource, name
    if producer.slug == "azure":
        group = f"/subscriptions/{sub_id}/resourceGroups/rg-{team}-{environment}"
        compact = f"{team.replace('-', '')}{environment}{number}"[:18] + token[:6]
        resource = {
            "vm": f"{group}/providers/Microsoft.Compute/virtualMachines/{name}",
            "storage": f"{group}/providers/Microsoft.Storage/storageAccounts/{compact}",
            "sql": f"{group}/providers/Microsoft.Sql/servers/sql-{team}/databases/{name}",
            "aks": f"{group}/providers/Microsoft.ContainerService/managedClusters/{name}",
            "bandwidth": f"{group}/providers/Microsoft.Network/publicIPAddresses/{name}",
            "loganalytics": f"{group}/providers/Microsoft.OperationalInsights/workspaces/{name}",
        }[service.kind]
        return resource, name
    resource = {
        "gce": f"//compute.googleapis.com/projects/{sub_id}/zones/{zone}/instances/{name}",
        "gcs": f"//storage.googleapis.com/projects/_/buckets/{name}-{token[:6]}",
        "bigquery": f"//bigquery.googleapis.com/projects/{sub_id}/datasets/{name.replace('-', '_')}",
        "cloudsql": f"//cloudsql.googleapis.com/projects/{sub_id}/instances/{name}",
        "gke": f"//container.googleapis.com/projects/{sub_id}/locations/{region}/clusters/{name}",
        "vertex": f"//aiplatform.googleapis.com/projects/{sub_id}/locations/{region}/endpoints/"
        f"{int(token[:12], 16)}",
    }[service.kind]
    return resource, name


@dataclass(frozen=True)
class _TagDraws:
    """Random choices behind every resource's tags, drawn once for the whole pool."""

    environment_spelling: np.ndarray
    environment_key: np.ndarray
    team_key: np.ndarray
    department_key: np.ndarray
    cost_center_key: np.ndarray
    presence: np.ndarray  # (n, 4): department, environment, cost center, provider tag
    untagged_style: np.ndarray

    @classmethod
    def draw(cls, producer: _Producer, rng: np.random.Generator, n: int) -> _TagDraws:
        team_weights = np.array([w for _, w in producer.team_keys])
        return cls(
            environment_spelling=rng.integers(0, 3, size=n),
            environment_key=rng.integers(0, len(producer.environment_keys), size=n),
            team_key=rng.choice(len(team_weights), size=n, p=team_weights / team_weights.sum()),
            department_key=rng.integers(0, len(producer.department_keys), size=n),
            cost_center_key=rng.integers(0, len(producer.cost_center_keys), size=n),
            presence=rng.random((n, 4)),
            untagged_style=rng.random(n),
        )


def _tags_json(
    producer: _Producer,
    draws: _TagDraws,
    i: int,
    tagged: bool,
    team: str,
    environment: str,
    service_kind: str,
    name: str,
) -> str | None:
    """Tag object text for one resource: key spellings drift, values stay with the resource."""

    def value(text: str) -> str:
        return text.lower() if producer.lowercase_tags else text

    spellings = ENVIRONMENT_SPELLINGS[environment]
    env_value = value(spellings[int(draws.environment_spelling[i]) % len(spellings)])
    env_key = producer.environment_keys[int(draws.environment_key[i])]
    if not tagged:
        style = float(draws.untagged_style[i])
        if style < 0.4:
            return None
        if style < 0.7:
            return "{}"
        if producer.slug == "aws" and style < 0.85:
            return json.dumps({"Name": name})
        return json.dumps({env_key: env_value})
    department, has_environment, cost_center, provider_tag = draws.presence[i]
    tags: dict[str, str] = {producer.team_keys[int(draws.team_key[i])][0]: team}
    if department < 0.85:
        key = producer.department_keys[int(draws.department_key[i])]
        tags[key] = TEAM_DEPARTMENT[team]
    if has_environment < 0.9:
        tags[env_key] = env_value
    if cost_center < 0.7:
        key = producer.cost_center_keys[int(draws.cost_center_key[i])]
        tags[key] = value(TEAM_COST_CENTER[team])
    if producer.slug == "aws" and provider_tag < 0.2:
        tags["aws:cloudformation:stack-name"] = f"{team}-{service_kind}-stack"
    if producer.slug == "gcp" and service_kind == "gke":
        tags["goog-k8s-cluster-name"] = name
    return json.dumps(tags)


def _dictionary(values: Sequence[str | None]) -> tuple[pa.Array, np.ndarray]:
    """Distinct non-null values and, per input, its code (-1 for null)."""
    index: dict[str, int] = {}
    codes = np.empty(len(values), dtype=np.int32)
    for i, text in enumerate(values):
        if text is None:
            codes[i] = -1
        else:
            codes[i] = index.setdefault(text, len(index))
    return pa.array(list(index), type=pa.string()), codes


@dataclass(frozen=True)
class _Lookup:
    """Text values addressed by position, stored as distinct values plus a position remap.

    Arrow dictionaries must not repeat a value: the Parquet writer encodes a dictionary with
    duplicates differently from run to run, which would break byte-identical output.
    """

    values: pa.Array
    remap: np.ndarray

    @classmethod
    def of(cls, values: Sequence[str | None]) -> _Lookup:
        distinct, codes = _dictionary(values)
        return cls(distinct, codes)

    def __len__(self) -> int:
        return int(self.remap.size)


def _build_pool(producer: _Producer, producer_index: int, rows_per_day: int, seed: int) -> _Pool:
    """The producer's accounts, resources, SKUs and commitments for the whole run.

    Built once, so a resource keeps its ids and tags on every day and in every delivery.
    `rows_per_day` is this producer's share; it sizes the pool and the fixed rows of a day.
    """
    rng = _rng(seed, producer_index, 1)
    services = producer.services
    service_count = len(services)
    n = int(np.clip(rows_per_day // 20, 40, 12_000))

    # Fixed rows of a day, sized from the producer's daily rows so the mix is volume-independent.
    commitment_count = len(producer.commitments)
    covered = max(1, round(rows_per_day * 0.04 / commitment_count))
    tax_rows = min(producer.sub_account_count, max(1, rows_per_day // 500))
    credit_rows = max(1, rows_per_day // 50_000)
    correction_rows = min(50, max(1, rows_per_day // 2_000))
    fixed = commitment_count * (2 + covered) + tax_rows + credit_rows + correction_rows
    usage_rows = max(1, rows_per_day - fixed)

    billing_account_id = _billing_account_id(producer, rng)
    subs = _sub_accounts(producer, rng)

    # Vectorized per-resource attributes; the first resources cover every service once.
    weights = np.array([s.weight for s in services])
    res_service = rng.choice(service_count, size=n, p=weights / weights.sum())
    res_service[:service_count] = np.arange(service_count)
    sku_offsets = np.cumsum([0] + [len(s.skus) for s in services])
    sku_counts = np.array([len(s.skus) for s in services])
    res_sku = sku_offsets[res_service] + (rng.random(n) * sku_counts[res_service]).astype(np.int64)
    region_count = len(producer.regions)
    region_weights = np.array([0.5, 0.3, 0.15, 0.05][:region_count])
    res_region = rng.choice(region_count, size=n, p=region_weights / region_weights.sum())
    res_zone_letter = rng.integers(0, 3, size=n)
    res_sub = rng.integers(0, len(subs), size=n)
    sub_team = np.array([s[2] for s in subs])
    sub_env = np.array([s[3] for s in subs])
    res_team = np.where(rng.random(n) < 0.85, sub_team[res_sub], rng.integers(0, len(TEAMS), n))
    res_env = sub_env[res_sub]
    spot_share = np.array([s.spot_share for s in services])
    res_dynamic = rng.random(n) < spot_share[res_service]
    quantity_per_row = np.array([s.quantity_per_row for s in services])
    res_base_quantity = quantity_per_row[res_service] * rng.lognormal(0.0, 0.6, size=n)
    sku_prices = np.array([price for s in services for _, price in s.skus])
    res_list_price = sku_prices[res_sku]
    res_contracted_price = np.round(res_list_price * (1.0 - producer.negotiated_discount), 10)
    spot_factor = np.where(res_dynamic, 0.35, 1.0)
    res_hourly = np.array([s.hourly for s in services])[res_service]
    pick_weight = rng.lognormal(0.0, 1.0, size=n)
    pick_probability = pick_weight / pick_weight.sum()
    noise_mean = float(np.exp(USAGE_NOISE_SIGMA**2 / 2))
    res_expected_cost = res_base_quantity * noise_mean * res_contracted_price * spot_factor
    expected_row_cost = float(np.dot(pick_probability, res_expected_cost))
    expected_usage = usage_rows * expected_row_cost

    # Untagged resources: enough expected cost that tax + credits + untagged usage is ~10% of all.
    total = 1.0 + COMMITMENT_COST_SHARE + producer.tax_rate + producer.credit_rate
    untagged_share = UNTAGGED_COST_TARGET * total - producer.tax_rate - producer.credit_rate
    target = untagged_share * float(np.dot(pick_probability, res_expected_cost))
    res_tagged = np.ones(n, dtype=bool)
    accumulated = 0.0
    contributions = pick_probability * res_expected_cost
    for i in rng.permutation(np.arange(service_count, n)):
        if accumulated + contributions[i] <= target * 1.02:
            res_tagged[i] = False
            accumulated += contributions[i]
            if accumulated >= target * 0.98:
                break

    # Strings, once per resource.
    tokens = _hex(rng, n, 16)
    draws = _TagDraws.draw(producer, rng, n)
    resource_ids: list[str | None] = []
    resource_names: list[str | None] = []
    tags: list[str | None] = []
    zone_labels: list[str | None] = []
    for i in range(n):
        service = services[res_service[i]]
        region = producer.regions[res_region[i]][0] if service.placement != "global" else None
        zone = None
        if service.placement == "zonal":
            letter = int(res_zone_letter[i])
            zone = {
                "aws": f"{region}{'abc'[letter]}",
                "azure": str(letter + 1),
                "gcp": f"{region}-{'bcd'[letter]}",
            }[producer.slug]
        team = TEAMS[res_team[i]]
        environment = ENVIRONMENTS[res_env[i]]
        resource_id, name = _resource_identity(
            producer, service, i, tokens[i], region, zone, subs[res_sub[i]][0], team, environment
        )
        resource_ids.append(resource_id)
        resource_names.append(name)
        zone_labels.append(zone)
        tags.append(
            _tags_json(
                producer, draws, i, bool(res_tagged[i]), team, environment, service.kind, name
            )
        )

    # Commitments become pseudo-resources appended after the real ones.
    currency = producer.currency
    commitment_ids, commitment_names, commitment_units = [], [], []
    commitment_candidates = []
    commitment_sku_names, commitment_sku_prices = [], []
    fee_micros, rates, list_rates, is_usage, discounts = [], [], [], [], []
    commitment_service, commitment_region = [], []
    for c_index, commitment in enumerate(producer.commitments):
        service_index = next(i for i, s in enumerate(services) if s.kind == commitment.service_kind)
        eligible = np.flatnonzero((res_service == service_index) & res_tagged & ~res_dynamic)
        if eligible.size == 0:
            eligible = np.flatnonzero(res_service == service_index)
        anchor = int(eligible[0])
        region_index = int(res_region[anchor])
        if commitment.category == "Usage":
            same_region = eligible[res_region[eligible] == region_index]
            eligible = same_region if same_region.size else eligible
        commitment_candidates.append(eligible)
        commitment_service.append(service_index)
        commitment_region.append(region_index if commitment.category == "Usage" else -1)
        region = producer.regions[region_index][0]
        token = _hex(rng, 1, 16)[0]
        payer = billing_account_id
        if producer.slug == "aws":
            if commitment.commitment_type == "Savings Plan":
                cid = f"arn:aws:savingsplans::{payer}:savingsplan/{_guid(rng)}"
            elif commitment.service_kind == "rds":
                cid = f"arn:aws:rds:{region}:{payer}:ri:ri-{token[:12]}"
            else:
                cid = f"arn:aws:ec2:{region}:{payer}:reserved-instances/{_guid(rng)}"
        elif producer.slug == "azure":
            if commitment.commitment_type == "Savings Plan":
                cid = (
                    f"/providers/Microsoft.BillingBenefits/savingsPlanOrders/{_guid(rng)}"
                    f"/savingsPlans/{_guid(rng)}"
                )
            else:
                cid = (
                    f"/providers/Microsoft.Capacity/reservationOrders/{_guid(rng)}"
                    f"/reservations/{_guid(rng)}"
                )
        else:
            first_project = subs[0][0]
            cid = f"projects/{first_project}/regions/{region}/commitments/commitment-{token[:8]}"
        sku_label, sku_price = services[service_index].skus[
            int(res_sku[anchor] - sku_offsets[service_index])
        ]
        commitment_ids.append(cid)
        commitment_names.append(
            f"{commitment.commitment_type} {sku_label} {region}"
            if commitment.category == "Usage"
            else f"{commitment.commitment_type} {services[service_index].name} {c_index + 1}"
        )
        unit = "Hours" if commitment.category == "Usage" else currency
        commitment_units.append(unit)
        commitment_sku_names.append(f"{commitment.commitment_type} {sku_label}")
        commitment_sku_prices.append(sku_price)
        fee = COMMITMENT_COST_SHARE * expected_usage * commitment.fee_share
        fee_micros.append(max(1_000_000, round(fee * 1_000_000)))
        effective_rate = sku_price * (1.0 - commitment.discount)
        is_usage.append(commitment.category == "Usage")
        rates.append(effective_rate if commitment.category == "Usage" else 1.0)
        list_rates.append(sku_price if commitment.category == "Usage" else 1.0)
        discounts.append(commitment.discount)

    m = commitment_count
    all_units = sorted({s.unit for s in services} | set(commitment_units))
    unit_code = {u: i for i, u in enumerate(all_units)}
    service_unit = np.array([unit_code[s.unit] for s in services])
    res_unit = np.concatenate([service_unit[res_service], [unit_code[u] for u in commitment_units]])

    type_names = sorted({s.resource_type for s in services}) + sorted(
        {c.commitment_type for c in producer.commitments}
    )
    type_code = {t: i for i, t in enumerate(type_names)}
    service_type = np.array([type_code[s.resource_type] for s in services])
    res_type = np.concatenate(
        [service_type[res_service], [type_code[c.commitment_type] for c in producer.commitments]]
    )

    owner = dict(COMMITMENT_OWNER_TAGS)
    if producer.lowercase_tags:
        owner = {"team": "platform", "dept": "engineering", "cost-center": "cc-1000", "env": "prod"}
    tag_dictionary, tag_codes = _dictionary(tags + [json.dumps(owner)] * m)

    zone_dictionary, zone_codes = _dictionary(zone_labels + [None] * m)

    # SKUs: per service SKU, then one per commitment.
    sku_labels = [label for s in services for label, _ in s.skus] + commitment_sku_names
    sku_count = len(sku_labels)
    sku_tokens = _hex(rng, sku_count, 16)
    if producer.slug == "aws":
        sku_ids = [t[:16].upper() for t in sku_tokens]
        sku_price_ids = [f"{t[:16].upper()}.JRTCKXETXF.6YS6EN2CT7" for t in sku_tokens]
    elif producer.slug == "azure":
        sku_ids = [f"DZH318Z0{t[:4].upper()}/000{i % 10}" for i, t in enumerate(sku_tokens)]
        sku_price_ids = [
            f"{sid}_{t[4:12].upper()}" for sid, t in zip(sku_ids, sku_tokens, strict=True)
        ]
    else:
        sku_ids = [f"{t[0:4]}-{t[4:8]}-{t[8:12]}".upper() for t in sku_tokens]
        sku_price_ids = [f"{sid}/standard" for sid in sku_ids]
    sku_details = [json.dumps({"Label": label}) for label in sku_labels]
    all_prices = list(sku_prices) + commitment_sku_prices
    descriptions = [
        f"{currency} {price:g} per {unit_label} {label}"
        for label, price, unit_label in zip(
            sku_labels,
            all_prices,
            [s.unit for s in services for _ in s.skus] + commitment_units,
            strict=True,
        )
    ]
    description_purchase = []
    description_unused = []
    for commitment, name in zip(producer.commitments, commitment_names, strict=True):
        description_purchase.append(len(descriptions))
        descriptions.append(f"{commitment.commitment_type} daily fee: {name}")
        description_unused.append(len(descriptions))
        descriptions.append(f"Unused {commitment.commitment_type}: {name}")
    description_tax = len(descriptions)
    descriptions.append("Tax")
    description_credit = len(descriptions)
    descriptions.append("Promotional credit")
    description_correction = len(descriptions)
    descriptions.append("Usage correction for an earlier day")
    description_adjustment = len(descriptions)
    descriptions.append("Billing adjustment")

    # Commitment pseudo-resources: extend per-resource arrays.
    res_sku_all = np.concatenate([res_sku, np.arange(sku_count - m, sku_count)])
    res_region_all = np.concatenate([res_region, commitment_region])

    service_names = [s.name for s in services] + ["Tax"]
    service_categories = [s.category for s in services] + ["Other"]
    service_subcategories = [s.subcategory for s in services] + ["Other (Other)"]
    unknown = [c for c in service_categories if c not in SERVICE_CATEGORIES]
    if unknown:
        raise ValueError(f"service categories {unknown} are not FOCUS ServiceCategory values")

    def with_commitments(values: np.ndarray, extra: Sequence[float | int | bool]) -> np.ndarray:
        return np.concatenate([values, np.asarray(extra, dtype=values.dtype)])

    return _Pool(
        producer=producer,
        resource_count=n,
        cdf=np.cumsum(pick_probability),
        res_service=with_commitments(res_service.astype(np.int32), commitment_service),
        res_sku=res_sku_all.astype(np.int32),
        res_region=res_region_all.astype(np.int32),
        res_zone=zone_codes,
        res_sub=with_commitments(res_sub.astype(np.int32), [0] * m),
        res_type=res_type.astype(np.int32),
        res_tags=tag_codes,
        res_unit=res_unit.astype(np.int32),
        res_base_quantity=with_commitments(res_base_quantity, [0.0] * m),
        res_list_price=with_commitments(res_list_price, commitment_sku_prices),
        res_contracted_price=with_commitments(res_contracted_price * spot_factor, [0.0] * m),
        res_dynamic=with_commitments(res_dynamic, [False] * m),
        res_hourly=with_commitments(res_hourly, [False] * m),
        res_tagged=with_commitments(res_tagged, [True] * m),
        expected_row_cost=expected_row_cost,
        resource_ids=_Lookup.of(resource_ids + commitment_ids),
        resource_names=_Lookup.of(resource_names + commitment_names),
        resource_types=_Lookup.of(type_names),
        tags=_Lookup.of(tag_dictionary.to_pylist()),
        zones=_Lookup.of(zone_dictionary.to_pylist()),
        units=_Lookup.of(all_units),
        service_names=_Lookup.of(service_names),
        service_categories=_Lookup.of(service_categories),
        service_subcategories=_Lookup.of(service_subcategories),
        region_ids=_Lookup.of([r[0] for r in producer.regions]),
        region_names=_Lookup.of([r[1] for r in producer.regions]),
        sub_ids=_Lookup.of([s[0] for s in subs]),
        sub_names=_Lookup.of([s[1] for s in subs]),
        sku_ids=_Lookup.of(sku_ids),
        sku_price_ids=_Lookup.of(sku_price_ids),
        sku_meters=_Lookup.of(sku_labels),
        sku_price_details=_Lookup.of(sku_details),
        descriptions=_Lookup.of(descriptions),
        commitment_ids=_Lookup.of(commitment_ids),
        commitment_names=_Lookup.of(commitment_names),
        commitment_types=_Lookup.of([c.commitment_type for c in producer.commitments]),
        commitment_categories=_Lookup.of([c.category for c in producer.commitments]),
        commitment_units=_Lookup.of(commitment_units),
        tax_service=len(services),
        main_service=0,
        description_tax=description_tax,
        description_credit=description_credit,
        description_correction=description_correction,
        description_adjustment=description_adjustment,
        description_commitment_purchase=description_purchase,
        description_commitment_unused=description_unused,
        commitment_fee_micros=np.array(fee_micros, dtype=np.int64),
        commitment_rate=np.array(rates),
        commitment_list_rate=np.array(list_rates),
        commitment_is_usage=np.array(is_usage),
        commitment_discount=np.array(discounts),
        commitment_candidates=commitment_candidates,
        covered_rows_per_commitment=covered,
        usage_rows_nominal=usage_rows,
        billing_account_id=billing_account_id,
        rows_per_day=rows_per_day,
        tax_rows=tax_rows,
        credit_rows=credit_rows,
        correction_rows=correction_rows,
    )


# --------------------------------------------------------------------------------------------
# Row blocks: numpy arrays of codes and amounts, turned into Arrow tables


_CATEGORY = {name: i for i, name in enumerate(CHARGE_CATEGORIES)}
_FREQUENCY = {name: i for i, name in enumerate(CHARGE_FREQUENCIES)}
_PRICING = {name: i for i, name in enumerate(PRICING_CATEGORIES)}
_STATUS = {name: i for i, name in enumerate(COMMITMENT_DISCOUNT_STATUSES)}
_CATEGORIES_ARRAY = _Lookup.of(CHARGE_CATEGORIES)
_FREQUENCIES_ARRAY = _Lookup.of(CHARGE_FREQUENCIES)
_PRICING_ARRAY = _Lookup.of(PRICING_CATEGORIES)
_STATUS_ARRAY = _Lookup.of(COMMITMENT_DISCOUNT_STATUSES)
_CORRECTION_ARRAY = _Lookup.of(["Correction"])


@dataclass
class _Block:
    """Rows of one kind as parallel numpy arrays; -1 codes and NaN amounts mean null."""

    res: np.ndarray
    service: np.ndarray
    sub: np.ndarray
    region: np.ndarray
    sku: np.ndarray
    description: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    category: np.ndarray
    charge_class: np.ndarray
    frequency: np.ndarray
    pricing_category: np.ndarray
    commitment: np.ndarray
    status: np.ndarray
    billed: np.ndarray
    effective: np.ndarray
    list_cost: np.ndarray
    contracted_cost: np.ndarray
    list_unit_price: np.ndarray
    contracted_unit_price: np.ndarray
    pricing_quantity: np.ndarray
    consumed_quantity: np.ndarray
    commitment_quantity: np.ndarray
    pricing_unit: np.ndarray
    consumed_unit: np.ndarray


def _block(
    n: int,
    *,
    res: np.ndarray | int = -1,
    service: np.ndarray | int = -1,
    sub: np.ndarray | int = -1,
    region: np.ndarray | int = -1,
    sku: np.ndarray | int = -1,
    **columns: np.ndarray | int | float,
) -> _Block:
    """A block of `n` rows; scalars broadcast, missing amounts are null, missing codes are null."""

    def codes(value: np.ndarray | int | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.int32), (n,))

    def amounts(value: np.ndarray | int | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))

    def times(value: np.ndarray | int | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.int64), (n,))

    nan = float("nan")
    return _Block(
        res=codes(res),
        service=codes(service),
        sub=codes(sub),
        region=codes(region),
        sku=codes(sku),
        description=codes(columns.get("description", -1)),
        start_us=times(columns["start_us"]),
        end_us=times(columns["end_us"]),
        category=codes(columns["category"]),
        charge_class=codes(columns.get("charge_class", -1)),
        frequency=codes(columns["frequency"]),
        pricing_category=codes(columns.get("pricing_category", -1)),
        commitment=codes(columns.get("commitment", -1)),
        status=codes(columns.get("status", -1)),
        billed=amounts(columns["billed"]),
        effective=amounts(columns["effective"]),
        list_cost=amounts(columns["list_cost"]),
        contracted_cost=amounts(columns["contracted_cost"]),
        list_unit_price=amounts(columns.get("list_unit_price", nan)),
        contracted_unit_price=amounts(columns.get("contracted_unit_price", nan)),
        pricing_quantity=amounts(columns.get("pricing_quantity", nan)),
        consumed_quantity=amounts(columns.get("consumed_quantity", nan)),
        commitment_quantity=amounts(columns.get("commitment_quantity", nan)),
        pricing_unit=codes(columns.get("pricing_unit", -1)),
        consumed_unit=codes(columns.get("consumed_unit", -1)),
    )


def _text(codes: np.ndarray, lookup: _Lookup) -> pa.DictionaryArray:
    """Dictionary-encoded text from codes into `lookup` (-1 means null)."""
    codes = np.asarray(codes)
    if lookup.remap.size == 0:
        mapped = np.full(codes.shape, -1, dtype=np.int32)
    else:
        valid = codes >= 0
        mapped = np.where(valid, lookup.remap[np.where(valid, codes, 0)], -1)
    nulls = mapped < 0
    if nulls.any():
        indices = pa.array(np.where(nulls, 0, mapped).astype(np.int32), mask=nulls)
    else:
        indices = pa.array(mapped.astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, lookup.values)


def _number(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values), type=pa.float64(), from_pandas=True)


def _timestamps(values_us: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values_us, dtype=np.int64)).view(_TIMESTAMP_TYPE)


@dataclass
class _Month:
    """Constants of one producer delivery month."""

    billing_period: str
    start_us: int
    end_us: int
    invoice_id: str


def _block_table(pool: _Pool, month: _Month, block: _Block) -> pa.Table:
    n = len(block.res)
    real = block.res >= 0
    res = np.where(real, block.res, 0)

    def from_resource(per_resource: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        return np.where(real, per_resource[res], fallback)

    service = from_resource(pool.res_service, block.service)
    sub = from_resource(pool.res_sub, block.sub)
    region = from_resource(pool.res_region, block.region)
    sku = from_resource(pool.res_sku, block.sku)
    none = np.full(n, -1, dtype=np.int32)
    zone = from_resource(pool.res_zone, none)
    tags = from_resource(pool.res_tags, none)
    resource_type = from_resource(pool.res_type, none)
    resource = np.where(real, block.res, -1)
    zeros = np.zeros(n, dtype=np.int32)
    producer = pool.producer

    def constant(value: str) -> pa.DictionaryArray:
        return _text(zeros, _Lookup.of([value]))

    nulls = pa.nulls(n, type=_TEXT_TYPE)
    columns: dict[str, pa.Array] = {
        "AvailabilityZone": _text(zone, pool.zones),
        "BilledCost": _number(block.billed),
        "BillingAccountId": constant(pool.billing_account_id),
        "BillingAccountName": constant(producer.billing_account_name),
        "BillingAccountType": constant(producer.billing_account_type),
        "BillingCurrency": constant(producer.currency),
        "BillingPeriodEnd": _timestamps(np.full(n, month.end_us, dtype=np.int64)),
        "BillingPeriodStart": _timestamps(np.full(n, month.start_us, dtype=np.int64)),
        "CapacityReservationId": nulls,
        "CapacityReservationStatus": nulls,
        "ChargeCategory": _text(block.category, _CATEGORIES_ARRAY),
        "ChargeClass": _text(block.charge_class, _CORRECTION_ARRAY),
        "ChargeDescription": _text(block.description, pool.descriptions),
        "ChargeFrequency": _text(block.frequency, _FREQUENCIES_ARRAY),
        "ChargePeriodEnd": _timestamps(block.end_us),
        "ChargePeriodStart": _timestamps(block.start_us),
        "CommitmentDiscountCategory": _text(block.commitment, pool.commitment_categories),
        "CommitmentDiscountId": _text(block.commitment, pool.commitment_ids),
        "CommitmentDiscountName": _text(block.commitment, pool.commitment_names),
        "CommitmentDiscountQuantity": _number(block.commitment_quantity),
        "CommitmentDiscountStatus": _text(block.status, _STATUS_ARRAY),
        "CommitmentDiscountType": _text(block.commitment, pool.commitment_types),
        "CommitmentDiscountUnit": _text(block.commitment, pool.commitment_units),
        "ConsumedQuantity": _number(block.consumed_quantity),
        "ConsumedUnit": _text(block.consumed_unit, pool.units),
        "ContractedCost": _number(block.contracted_cost),
        "ContractedUnitPrice": _number(block.contracted_unit_price),
        "EffectiveCost": _number(block.effective),
        "InvoiceId": constant(month.invoice_id),
        "InvoiceIssuerName": constant(producer.invoice_issuer),
        "ListCost": _number(block.list_cost),
        "ListUnitPrice": _number(block.list_unit_price),
        "PricingCategory": _text(block.pricing_category, _PRICING_ARRAY),
        "PricingCurrency": constant(producer.currency),
        "PricingCurrencyContractedUnitPrice": _number(block.contracted_unit_price),
        "PricingCurrencyEffectiveCost": _number(block.effective),
        "PricingCurrencyListUnitPrice": _number(block.list_unit_price),
        "PricingQuantity": _number(block.pricing_quantity),
        "PricingUnit": _text(block.pricing_unit, pool.units),
        "ProviderName": constant(producer.provider_name),
        "PublisherName": constant(producer.publisher_name),
        "RegionId": _text(region, pool.region_ids),
        "RegionName": _text(region, pool.region_names),
        "ResourceId": _text(resource, pool.resource_ids),
        "ResourceName": _text(resource, pool.resource_names),
        "ResourceType": _text(resource_type, pool.resource_types),
        "ServiceCategory": _text(service, pool.service_categories),
        "ServiceName": _text(service, pool.service_names),
        "ServiceSubcategory": _text(service, pool.service_subcategories),
        "SkuId": _text(sku, pool.sku_ids),
        "SkuMeter": _text(sku, pool.sku_meters),
        "SkuPriceDetails": _text(sku, pool.sku_price_details),
        "SkuPriceId": _text(sku, pool.sku_price_ids),
        "SubAccountId": _text(sub, pool.sub_ids),
        "SubAccountName": _text(sub, pool.sub_names),
        "SubAccountType": _text(np.where(sub >= 0, 0, -1), _Lookup.of([producer.sub_account_type])),
        "Tags": _text(tags, pool.tags),
    }
    return pa.Table.from_arrays(
        [columns[name] for name in FOCUS_ARROW_SCHEMA.names], schema=FOCUS_ARROW_SCHEMA
    )


def _concat_blocks(blocks: Sequence[_Block]) -> _Block:
    return _Block(
        **{
            name: np.concatenate([getattr(b, name) for b in blocks])
            for name in _Block.__dataclass_fields__
        }
    )


def _day_start_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * MICROS_PER_DAY


def _usage_block(
    pool: _Pool, rng: np.random.Generator, n: int, day_us: int, scale: float
) -> _Block:
    """On-demand (Standard) and spot (Dynamic) usage rows, vectorized."""
    res = np.searchsorted(pool.cdf, rng.random(n), side="right").astype(np.int32)
    np.minimum(res, pool.resource_count - 1, out=res)
    noise = rng.lognormal(0.0, USAGE_NOISE_SIGMA, size=n)
    hour = rng.integers(0, 24, size=n)
    hourly = pool.res_hourly[res]
    quantity = np.round(pool.res_base_quantity[res] * noise * scale, 6)
    list_price = pool.res_list_price[res]
    contracted_price = pool.res_contracted_price[res]
    list_cost = np.round(quantity * list_price, 10)
    cost = np.round(quantity * contracted_price, 10)
    start = day_us + np.where(hourly, hour * MICROS_PER_HOUR, 0)
    end = start + np.where(hourly, MICROS_PER_HOUR, MICROS_PER_DAY)
    pricing = np.where(pool.res_dynamic[res], _PRICING["Dynamic"], _PRICING["Standard"])
    unit = pool.res_unit[res]
    return _block(
        n,
        res=res,
        description=pool.res_sku[res],
        start_us=start,
        end_us=end,
        category=_CATEGORY["Usage"],
        frequency=_FREQUENCY["Usage-Based"],
        pricing_category=pricing,
        billed=cost,
        effective=cost,
        list_cost=list_cost,
        contracted_cost=cost,
        list_unit_price=list_price,
        contracted_unit_price=contracted_price,
        pricing_quantity=quantity,
        consumed_quantity=quantity,
        pricing_unit=unit,
        consumed_unit=unit,
    )


def _split_exactly(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """Split an integer amount (micro-units, cents) into `parts` non-negative integers that sum
    to it exactly."""
    weights = rng.random(parts) + 0.25
    shares = (total * (weights / weights.sum())).astype(np.int64)
    shares = np.minimum(shares, total)
    shares[0] += total - int(shares.sum())
    return shares


def _commitment_blocks(pool: _Pool, rng: np.random.Generator, day_us: int) -> list[_Block]:
    """Per commitment: one Purchase row, covered Used rows and one Unused row for the day.

    Amounts are split in integer micro-units so that, per commitment and day,
    Σ BilledCost(Purchase) == Σ EffectiveCost(Used) + Σ EffectiveCost(Unused) exactly.
    """
    blocks = []
    end_us = day_us + MICROS_PER_DAY
    k = pool.covered_rows_per_commitment
    for c, fee in enumerate(pool.commitment_fee_micros.tolist()):
        pseudo = pool.resource_count + c
        usage_based = bool(pool.commitment_is_usage[c])
        rate = float(pool.commitment_rate[c])
        list_rate = float(pool.commitment_list_rate[c])
        discount = float(pool.commitment_discount[c])
        unit = int(pool.res_unit[pseudo])
        utilization_permille = int(rng.integers(720, 990))
        used = fee * utilization_permille // 1000
        unused = fee - used
        fee_amount = fee / 1_000_000
        committed_quantity = round(fee_amount / rate, 6) if usage_based else fee_amount
        blocks.append(
            _block(
                1,
                res=pseudo,
                description=pool.description_commitment_purchase[c],
                start_us=day_us,
                end_us=end_us,
                category=_CATEGORY["Purchase"],
                frequency=_FREQUENCY["Recurring"],
                pricing_category=_PRICING["Standard"],
                commitment=c,
                billed=fee_amount,
                effective=0.0,
                list_cost=round(committed_quantity * list_rate, 10),
                contracted_cost=round(committed_quantity * list_rate, 10),
                list_unit_price=list_rate,
                contracted_unit_price=list_rate,
                pricing_quantity=committed_quantity,
                commitment_quantity=committed_quantity,
                pricing_unit=unit,
            )
        )
        covered_res = rng.choice(pool.commitment_candidates[c], size=k).astype(np.int32)
        effective = _split_exactly(rng, used, k) / 1_000_000
        list_price = pool.res_list_price[covered_res]
        contracted_price = pool.res_contracted_price[covered_res]
        quantity = np.round(effective / (list_price * (1.0 - discount)), 6)
        resource_unit = pool.res_unit[covered_res]
        blocks.append(
            _block(
                k,
                res=covered_res,
                description=pool.res_sku[covered_res],
                start_us=day_us,
                end_us=end_us,
                category=_CATEGORY["Usage"],
                frequency=_FREQUENCY["Usage-Based"],
                pricing_category=_PRICING["Committed"],
                commitment=c,
                status=_STATUS["Used"],
                billed=0.0,
                effective=effective,
                list_cost=np.round(quantity * list_price, 10),
                contracted_cost=np.round(quantity * contracted_price, 10),
                list_unit_price=list_price,
                contracted_unit_price=contracted_price,
                pricing_quantity=quantity,
                consumed_quantity=quantity,
                commitment_quantity=np.round(effective / rate, 6) if usage_based else effective,
                pricing_unit=resource_unit,
                consumed_unit=resource_unit,
            )
        )
        unused_amount = unused / 1_000_000
        unused_quantity = round(unused_amount / rate, 6) if usage_based else unused_amount
        blocks.append(
            _block(
                1,
                res=pseudo,
                description=pool.description_commitment_unused[c],
                start_us=day_us,
                end_us=end_us,
                category=_CATEGORY["Usage"],
                frequency=_FREQUENCY["Usage-Based"],
                pricing_category=_PRICING["Committed"],
                commitment=c,
                status=_STATUS["Unused"],
                billed=0.0,
                effective=unused_amount,
                list_cost=round(unused_quantity * list_rate, 10),
                contracted_cost=round(unused_quantity * list_rate, 10),
                list_unit_price=list_rate,
                contracted_unit_price=list_rate,
                pricing_quantity=unused_quantity,
                commitment_quantity=unused_quantity,
                pricing_unit=unit,
            )
        )
    return blocks


def _other_blocks(
    pool: _Pool,
    rng: np.random.Generator,
    day_us: int,
    usage_billed: float,
    earlier_days_us: Sequence[int],
) -> list[_Block]:
    """Tax, credits and corrections of earlier days of the month."""
    end_us = day_us + MICROS_PER_DAY
    producer = pool.producer
    sub_count = len(pool.sub_ids)
    blocks = []

    tax_cents = round(usage_billed * producer.tax_rate * 100)
    tax = _split_exactly(rng, tax_cents, pool.tax_rows) / 100
    tax_subs = rng.permutation(sub_count)[: pool.tax_rows]
    blocks.append(
        _block(
            pool.tax_rows,
            service=pool.tax_service,
            sub=tax_subs,
            description=pool.description_tax,
            start_us=day_us,
            end_us=end_us,
            category=_CATEGORY["Tax"],
            frequency=_FREQUENCY["Usage-Based"],
            billed=tax,
            effective=tax,
            list_cost=tax,
            contracted_cost=tax,
        )
    )

    credit_cents = round(usage_billed * producer.credit_rate * 100)
    credit = -_split_exactly(rng, credit_cents, pool.credit_rows) / 100
    blocks.append(
        _block(
            pool.credit_rows,
            service=pool.main_service,
            sub=rng.integers(0, sub_count, size=pool.credit_rows),
            description=pool.description_credit,
            start_us=day_us,
            end_us=end_us,
            category=_CATEGORY["Credit"],
            frequency=_FREQUENCY["One-Time"],
            billed=credit,
            effective=credit,
            list_cost=0.0,
            contracted_cost=0.0,
        )
    )

    if earlier_days_us:
        n = pool.correction_rows
        usage_share = rng.random(n) < 0.67
        res = np.searchsorted(pool.cdf, rng.random(n), side="right").astype(np.int32)
        np.minimum(res, pool.resource_count - 1, out=res)
        magnitude = pool.expected_row_cost * rng.uniform(0.2, 2.0, size=n)
        sign = np.where(usage_share | (rng.random(n) < 0.5), -1.0, 1.0)
        amount = np.round(sign * magnitude, 10)
        day = np.asarray(earlier_days_us, dtype=np.int64)[
            rng.integers(0, len(earlier_days_us), size=n)
        ]
        blocks.append(
            _block(
                n,
                res=np.where(usage_share, res, -1),
                service=pool.main_service,
                sub=rng.integers(0, sub_count, size=n),
                description=np.where(
                    usage_share, pool.description_correction, pool.description_adjustment
                ),
                start_us=day,
                end_us=day + MICROS_PER_DAY,
                category=np.where(usage_share, _CATEGORY["Usage"], _CATEGORY["Adjustment"]),
                charge_class=0,
                frequency=np.where(usage_share, _FREQUENCY["Usage-Based"], _FREQUENCY["One-Time"]),
                pricing_category=np.where(usage_share, _PRICING["Standard"], -1),
                billed=amount,
                effective=amount,
                list_cost=amount,
                contracted_cost=amount,
            )
        )
    return blocks


def _day_tables(
    pool: _Pool,
    month: _Month,
    seed: int,
    producer_index: int,
    day: date,
    usage_scale: float,
    earlier_days: Sequence[date],
    chunk_rows: int,
) -> Iterator[pa.Table]:
    """All rows of one producer and charge day, in chunks of at most `chunk_rows` usage rows.

    Random streams are keyed by (seed, producer, day, chunk), so a day's rows do not depend on
    which other days are generated: the restatement reproduces untouched days exactly.
    """
    day_us = _day_start_us(day)
    ordinal = day.toordinal()
    usage_rows = pool.usage_rows_nominal
    if not earlier_days:
        usage_rows += pool.correction_rows  # keep the daily row count constant
    usage_billed = 0.0
    chunk_count = max(1, -(-usage_rows // chunk_rows))
    for chunk in range(chunk_count):
        rows = min(chunk_rows, usage_rows - chunk * chunk_rows)
        rng = _rng(seed, producer_index, ordinal, chunk, 2)
        block = _usage_block(pool, rng, rows, day_us, usage_scale)
        usage_billed += float(block.billed.sum())
        yield _block_table(pool, month, block)
    rng = _rng(seed, producer_index, ordinal, 0, 3)
    blocks = _commitment_blocks(pool, rng, day_us)
    earlier_us = [_day_start_us(d) for d in earlier_days]
    blocks += _other_blocks(pool, rng, day_us, usage_billed, earlier_us)
    yield _block_table(pool, month, _concat_blocks(blocks))


# --------------------------------------------------------------------------------------------
# Orchestration


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _delivery_format(producer: _Producer, formats: tuple[str, ...]) -> str:
    if set(SUPPORTED_FORMATS) <= set(formats):
        return producer.native_format
    return formats[0]


def _restated_days(seed: int, first_month_days: Sequence[date]) -> list[date]:
    rng = _rng(seed, 99, 1)
    wanted = int(rng.integers(2, 4))
    # Leave at least one day of the month untouched so "only these days changed" is observable.
    count = min(wanted, max(1, len(first_month_days) - 1))
    chosen = rng.choice(len(first_month_days), size=count, replace=False)
    return sorted(first_month_days[int(i)] for i in chosen)


def _invoice_id(producer: _Producer, rng: np.random.Generator, month: date) -> str:
    number = int(rng.integers(10**8, 10**9))
    if producer.slug == "aws":
        return f"{number}{month:%m}"
    if producer.slug == "azure":
        return f"E0{month:%y%m}{number:09d}"[:12]
    return f"{3_000_000_000 + number}"


def generate_sample_exports(
    out: Path,
    start: date,
    days: int,
    rows_per_day: int,
    seed: int,
    formats: tuple[str, ...] = SUPPORTED_FORMATS,
) -> SampleSummary:
    """Write FOCUS deliveries from AWS, Azure and GCP for [start, start + days).

    `rows_per_day` is the total over all producers (about 50% AWS, 30% Azure, 20% GCP). Each
    producer writes one delivery per billing month; the first month is delivered twice, and the
    second (newer) delivery changes the rows of `SampleSummary.restated_days` only. `formats`
    restricts every producer to Parquet or CSV; with both, each uses its native format (Azure CSV).
    Very small `rows_per_day` (under ~100) still writes the minimum charge mix per producer, so
    `total_rows` can exceed `days * rows_per_day`.
    """
    began = time.perf_counter()
    out = Path(out)
    formats = tuple(formats)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be at least 1, got {rows_per_day}")
    unknown = [f for f in formats if f not in SUPPORTED_FORMATS]
    if not formats or unknown:
        raise ValueError(
            f"formats must be a non-empty subset of {SUPPORTED_FORMATS}, got {formats}"
        )

    all_days = [start + timedelta(days=i) for i in range(days)]
    months: dict[date, list[date]] = {}
    for day in all_days:
        months.setdefault(_month_start(day), []).append(day)
    first_month = next(iter(months))
    restated = _restated_days(seed, months[first_month])
    restated_set = set(restated)

    producer_rows = [round(rows_per_day * p.row_share) for p in PRODUCERS]
    producer_rows[0] += rows_per_day - sum(producer_rows)

    summary = SampleSummary(
        deliveries=[],
        total_rows=0,
        restated_month=f"{first_month:%Y-%m}",
        restated_days=restated,
        seconds=0.0,
    )
    background = _Background()
    unfinished: list[_UnfinishedDelivery] = []
    try:
        for p_index, producer in enumerate(PRODUCERS):
            pool = _build_pool(producer, p_index, max(1, producer_rows[p_index]), seed)
            fmt = _delivery_format(producer, formats)
            for month_start, month_days in months.items():
                unfinished += _write_producer_month(
                    out,
                    background,
                    pool,
                    p_index,
                    seed,
                    fmt,
                    month_start,
                    month_days,
                    restated_set if month_start == first_month else None,
                )
                # Parts are still being written in the background while the next producer
                # generates; a manifest is written only once all its parts are on disk.
                unfinished = _complete_finished(out, summary, unfinished, block=False)
        _complete_finished(out, summary, unfinished, block=True)
    finally:
        background.close()
    summary.seconds = time.perf_counter() - began
    return summary


@dataclass
class _UnfinishedDelivery:
    writer: _PartWriter
    delivery_id: str
    provider: str
    dataset: str
    billing_period: str
    created_at: datetime


def _complete_finished(
    out: Path, summary: SampleSummary, unfinished: list[_UnfinishedDelivery], block: bool
) -> list[_UnfinishedDelivery]:
    """Write manifests, in order, for deliveries whose parts are all on disk; return the rest."""
    while unfinished:
        delivery = unfinished[0]
        if not block and not delivery.writer.done():
            break
        files = delivery.writer.wait()
        _write_manifest(
            delivery.writer.delivery_dir,
            delivery.delivery_id,
            delivery.provider,
            delivery.dataset,
            delivery.billing_period,
            delivery.created_at,
            files,
        )
        relative = delivery.writer.delivery_dir.relative_to(out)
        summary.deliveries.append(relative)
        summary.files.extend(relative / name for name in files)
        summary.files.append(relative / MANIFEST_NAME)
        summary.rows_by_delivery[relative.as_posix()] = delivery.writer.rows
        summary.total_rows += delivery.writer.rows
        unfinished = unfinished[1:]
    return unfinished


def _write_producer_month(
    out: Path,
    background: _Background,
    pool: _Pool,
    p_index: int,
    seed: int,
    fmt: str,
    month_start: date,
    month_days: Sequence[date],
    restated_days: set[date] | None,
) -> list[_UnfinishedDelivery]:
    """One producer's deliveries of one billing month: the original, and a restatement when
    `restated_days` is given (same rows except on those days, created later)."""
    producer = pool.producer
    billing_period = f"{month_start:%Y-%m}"
    month_rng = _rng(seed, p_index, month_start.toordinal(), 5)
    month = _Month(
        billing_period=billing_period,
        start_us=_day_start_us(month_start),
        end_us=_day_start_us(_next_month(month_start)),
        invoice_id=_invoice_id(producer, month_rng, month_start),
    )
    created = datetime.combine(_next_month(month_start), datetime.min.time(), UTC)
    created += timedelta(
        hours=producer.created_hour,
        minutes=int(month_rng.integers(0, 60)),
        seconds=int(month_rng.integers(0, 60)),
    )
    versions = [(created, fmt)]
    if restated_days is not None:
        later = created + timedelta(
            days=2,
            hours=int(month_rng.integers(1, 10)),
            minutes=int(month_rng.integers(0, 60)),
        )
        # The restatement of a CSV producer is gzip-compressed, as Azure exports can be.
        versions.append((later, "csv.gz" if fmt == "csv" else fmt))
    writers = []
    for created_at, version_fmt in versions:
        delivery_id = make_delivery_id(created_at, int(month_rng.integers(0, 2**32)))
        directory = delivery_path(out, producer.slug, producer.dataset, billing_period, delivery_id)
        writer = _PartWriter(directory, version_fmt, PART_ROWS, background)
        writers.append((writer, created_at, delivery_id))

    for day in month_days:
        earlier = [d for d in month_days if d < day]
        restate_here = restated_days is not None and day in restated_days
        targets = [writers[0][0]] if restate_here else [w for w, _, _ in writers]
        for table in _day_tables(pool, month, seed, p_index, day, 1.0, earlier, PART_ROWS):
            for writer in targets:
                writer.write(table)
        if restate_here:
            # Late usage: the restatement bills 4-12% more on-demand usage for this day.
            scale = 1.0 + float(_rng(seed, p_index, day.toordinal(), 0, 4).uniform(0.04, 0.12))
            for table in _day_tables(pool, month, seed, p_index, day, scale, earlier, PART_ROWS):
                writers[1][0].write(table)

    unfinished = []
    for writer, created_at, delivery_id in writers:
        writer.finish(FOCUS_ARROW_SCHEMA)
        unfinished.append(
            _UnfinishedDelivery(
                writer,
                delivery_id,
                producer.provider_name,
                producer.dataset,
                billing_period,
                created_at,
            )
        )
    return unfinished
