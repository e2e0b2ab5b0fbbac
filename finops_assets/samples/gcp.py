"""Synthetic Google Cloud Billing export dumps, in the layout teams dump them from BigQuery.

Layout (one folder per billing account and UTC usage day; one ``EXPORT DATA`` run writes the
shards ``<dump>-000000000000.parquet``, ``<dump>-000000000001.parquet``, ...)::

    <out>/gcp/<billing_account>/usage_date=YYYY-MM-DD/<dump>-<shard>.parquet

Files carry the export's real nested types (``service``/``sku``/``project``/``location``/
``usage``/``invoice``/``adjustment_info``/``resource`` structs, ``labels``/``system_labels``/
``tags``/``credits`` lists of structs, FLOAT64 money, UTC timestamps). Rows cover several
services, SKUs and projects with resource labels, project labels, user and inherited tags,
credits of every common type (committed use, sustained use, free tier, promotion, discount), a
committed-use fee, tax rows and a rounding error per day. The first day is dumped twice: a full
re-export several days later adds a usage correction that negates part of one original row
(``cost_type`` adjustment with ``adjustment_info``) under a newer ``export_time``.

Everything derives from the seed: the same arguments write the same rows. Generation is
vectorized with numpy and pyarrow (rows hold codes into small vocabularies).
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
CURRENCY = "USD"
SHARD_ROWS = 50_000
TAX_RATE = 0.08
CORRECTION_SHARE = 0.4  # the later correction negates this share of one original row
MICROS_PER_HOUR = 3_600_000_000

# (service id, service description, sku id, sku description, usage unit, pricing unit,
#  units per pricing unit, list price per pricing unit, contract discount, region-bound)
SKUS = [
    (
        "6F81-5844-456A",
        "Compute Engine",
        "CP-COMPUTEENGINE-N2-CORE",
        "N2 Instance Core running in Americas",
        "seconds",
        "hour",
        3600.0,
        0.031611,
        0.0,
        True,
    ),
    (
        "6F81-5844-456A",
        "Compute Engine",
        "CP-COMPUTEENGINE-N2-RAM",
        "N2 Instance Ram running in Americas",
        "byte-seconds",
        "gibibyte hour",
        3600.0 * 2**30,
        0.004237,
        0.0,
        True,
    ),
    (
        "6F81-5844-456A",
        "Compute Engine",
        "CP-COMPUTEENGINE-PD-SSD",
        "SSD backed PD Capacity",
        "byte-seconds",
        "gibibyte month",
        2.63e6 * 2**30,
        0.17,
        0.0,
        True,
    ),
    (
        "95FF-2EF5-5EA1",
        "Cloud Storage",
        "CP-GCS-STANDARD",
        "Standard Storage US Multi-region",
        "byte-seconds",
        "gibibyte month",
        2.63e6 * 2**30,
        0.026,
        0.05,
        False,
    ),
    (
        "24E6-581D-38E5",
        "BigQuery",
        "CP-BQ-ANALYSIS",
        "Analysis",
        "bytes",
        "tebibyte",
        float(2**40),
        6.25,
        0.0,
        False,
    ),
    (
        "9662-B51E-5089",
        "Cloud SQL",
        "CP-CLOUDSQL-PG-CORE",
        "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas",
        "seconds",
        "hour",
        3600.0,
        0.0413,
        0.0,
        True,
    ),
    (
        "E505-1604-58F8",
        "Networking",
        "CP-NET-EGRESS",
        "Network Internet Data Transfer Out from Americas",
        "bytes",
        "gibibyte",
        float(2**30),
        0.12,
        0.0,
        True,
    ),
    (
        "CCD8-9BF1-090E",
        "Kubernetes Engine",
        "CP-GKE-CLUSTER",
        "Regional Kubernetes Clusters",
        "seconds",
        "hour",
        3600.0,
        0.10,
        0.0,
        True,
    ),
    (
        "5490-F7B7-8DF6",
        "Cloud Logging",
        "CP-LOGGING-INGEST",
        "Log Volume",
        "bytes",
        "gibibyte",
        float(2**30),
        0.50,
        0.0,
        False,
    ),
    (
        "C7E2-9256-1C43",
        "Vertex AI",
        "CP-VERTEX-PRED",
        "Vertex AI: Online/Batch Prediction N1 Core",
        "seconds",
        "hour",
        3600.0,
        0.0436,
        0.0,
        True,
    ),
]
COMMITMENT_FEE_SKU = (
    "6F81-5844-456A",
    "Compute Engine",
    "CP-COMPUTEENGINE-CUD-CPU-1Y",
    "Commitment v1: Cpu in Americas for 1 Year",
)
REGIONS = [
    ("us-central1", "us-central1", "US"),
    ("us-east1", "us-east1", "US"),
    ("europe-west1", "europe-west1", "BE"),
]
PROJECTS = [
    # (id, number, name, project labels)
    (
        "payments-prod",
        "104839201",
        "Payments Production",
        {"department": "finance", "cost-center": "cc-100", "env": "prod"},
    ),
    (
        "payments-dev",
        "104839202",
        "Payments Dev",
        {"department": "finance", "cost-center": "cc-100", "env": "dev"},
    ),
    (
        "search-prod",
        "104839203",
        "Search Production",
        {"department": "product", "cost-center": "cc-200"},
    ),
    ("data-platform", "104839204", "Data Platform", {"department": "platform"}),
    ("ml-research", "104839205", "ML Research", {}),
    (
        "shared-infra",
        "104839206",
        "Shared Infrastructure",
        {"department": "platform", "cost-center": "cc-900"},
    ),
]
ORGANIZATION = ("organizations/1234567890", "example.com")
FOLDERS = {
    "payments-prod": ("folders/111", "payments"),
    "payments-dev": ("folders/111", "payments"),
    "search-prod": ("folders/222", "search"),
}
# Resource label sets (None = unlabelled): keys as engineers write them, drift included.
LABEL_SETS = [
    None,
    {"team": "checkout", "env": "prod"},
    {"team": "checkout", "env": "dev"},
    {"Team": "search", "environment": "production"},
    {"squad": "ranking", "env": "prod"},
    {"team": "data-eng", "env": "prod", "goog-k8s-cluster-name": "main"},
    {"owner_team": "ml", "stage": "stg"},
    {"app": "ledger"},
]
# (key, value, inherited, namespace) per tag set.
TAG_SETS = [
    [],
    [("cost-center", "cc-100", True, "1234567890")],
    [("env", "prod", False, "payments-prod"), ("cost-center", "cc-100", True, "1234567890")],
    [("team", "search", False, "search-prod")],
]
CREDIT_TYPES = {
    "COMMITTED_USAGE_DISCOUNT": ("Committed use discount: CPU", "CommittedUsageDiscountCpu"),
    "SUSTAINED_USAGE_DISCOUNT": ("Sustained Usage Discount", "SustainedUsageDiscount"),
    "FREE_TIER": ("Free tier", "FreeTier"),
    "PROMOTION": ("Free trial and promotional credit", "promo-2025-startup"),
    "DISCOUNT": ("Spending based discounts (contractual)", "SpendingBasedDiscount"),
}

_KV = pa.struct([("key", pa.string()), ("value", pa.string())])
_TAG = pa.struct(
    [
        ("key", pa.string()),
        ("value", pa.string()),
        ("inherited", pa.bool_()),
        ("namespace", pa.string()),
    ]
)
_CREDIT = pa.struct(
    [
        ("name", pa.string()),
        ("amount", pa.float64()),
        ("full_name", pa.string()),
        ("id", pa.string()),
        ("type", pa.string()),
    ]
)
_ANCESTOR = pa.struct([("resource_name", pa.string()), ("display_name", pa.string())])
TS = pa.timestamp("us", tz="UTC")


@dataclass
class GcpSampleSummary:
    billing_account: str
    files: list[Path] = field(default_factory=list)
    rows_by_day: dict[date, int] = field(default_factory=dict)
    total_rows: int = 0
    correction_day: date | None = None
    correction_dump: Path | None = None  # the later full re-export holding the correction
    correction_amount: float = 0.0  # its net (cost + credits) change of the day, negative
    seconds: float = 0.0


def _take(values: list, codes: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(values, type=typ).take(pa.array(codes))


def _list_of(sets: list[list[dict] | list[tuple]], codes: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Lists picked per row from a small vocabulary of lists (built once, taken by code)."""
    vocabulary = pa.array(sets, type=pa.list_(typ))
    return vocabulary.take(pa.array(codes))


def _project_struct(codes: np.ndarray) -> pa.Array:
    labels = [[{"key": k, "value": v} for k, v in p[3].items()] for p in PROJECTS]
    ancestors = []
    for project in PROJECTS:
        chain = [{"resource_name": f"projects/{project[1]}", "display_name": project[0]}]
        if project[0] in FOLDERS:
            folder = FOLDERS[project[0]]
            chain.append({"resource_name": folder[0], "display_name": folder[1]})
        chain.append({"resource_name": ORGANIZATION[0], "display_name": ORGANIZATION[1]})
        ancestors.append(chain)
    return pa.StructArray.from_arrays(
        [
            _take([p[0] for p in PROJECTS], codes, pa.string()),
            _take([p[1] for p in PROJECTS], codes, pa.string()),
            _take([p[2] for p in PROJECTS], codes, pa.string()),
            _list_of(labels, codes, _KV),
            _take(
                [f"/{ORGANIZATION[0].split('/')[1]}/{p[1]}/" for p in PROJECTS], codes, pa.string()
            ),
            _list_of(ancestors, codes, _ANCESTOR),
        ],
        names=["id", "number", "name", "labels", "ancestry_numbers", "ancestors"],
    )


def _credits(rng: np.random.Generator, cost: np.ndarray, sku: np.ndarray) -> pa.Array:
    """0-2 credits per row, amounts negative and never above the row's cost in total."""
    n = len(cost)
    compute_core = sku == 0
    cud = compute_core & (rng.random(n) < 0.35)
    sud = (sku <= 1) & ~cud & (rng.random(n) < 0.3)
    free = (sku == 8) & (rng.random(n) < 0.5)
    promo = (sku >= 0) & (rng.random(n) < 0.12)
    discount = (sku == 3) | ((sku >= 0) & (rng.random(n) < 0.05))
    columns = [
        ("COMMITTED_USAGE_DISCOUNT", cud, 0.55),
        ("SUSTAINED_USAGE_DISCOUNT", sud, 0.20),
        ("FREE_TIER", free, 0.10),
        ("DISCOUNT", discount, 0.03),
        ("PROMOTION", promo, 0.15),
    ]
    counts = np.zeros(n, dtype=np.int64)
    for _, mask, _ in columns:
        counts += mask
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    names = np.empty(total, dtype=object)
    ids = np.empty(total, dtype=object)
    types = np.empty(total, dtype=object)
    amounts = np.zeros(total)
    position = offsets[:-1].copy()
    for credit_type, mask, share in columns:
        rows = np.nonzero(mask)[0]
        slots = position[rows]
        names[slots] = CREDIT_TYPES[credit_type][0]
        ids[slots] = CREDIT_TYPES[credit_type][1]
        types[slots] = credit_type
        amounts[slots] = -np.round(cost[rows] * share, 6)
        position[rows] += 1
    values = pa.StructArray.from_arrays(
        [
            pa.array(names, type=pa.string()),
            pa.array(amounts, type=pa.float64()),
            pa.array(names, type=pa.string()),
            pa.array(ids, type=pa.string()),
            pa.array(types, type=pa.string()),
        ],
        fields=list(_CREDIT),
    )
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values)


def _day_table(
    rng: np.random.Generator, day: date, rows: int, export_base: datetime, detailed: bool
) -> pa.Table:
    """One usage day: ``rows`` usage rows plus a commitment fee, tax per project and rounding."""
    n_usage = max(1, rows - len(PROJECTS) - 2)
    sku = rng.integers(0, len(SKUS), n_usage)
    project = rng.integers(0, len(PROJECTS), n_usage)
    label_set = rng.integers(0, len(LABEL_SETS), n_usage)
    tag_set = rng.integers(0, len(TAG_SETS), n_usage)
    region = rng.integers(0, len(REGIONS), n_usage)
    hour = rng.integers(0, 24, n_usage)
    pricing_units = np.round(rng.lognormal(1.0, 1.0, n_usage), 6)
    list_price = np.array([s[7] for s in SKUS])[sku]
    contract = np.array([s[8] for s in SKUS])[sku]
    cost_at_list = np.round(pricing_units * list_price, 6)
    cost = np.round(cost_at_list * (1 - contract), 6)
    usage_amount = pricing_units * np.array([s[6] for s in SKUS])[sku]

    # Commitment fee (one row, a day's share of a 1-year CUD), taxes per project, rounding.
    fee_cost = round(float(cost[sku == 0].sum()) * 0.3 + 1.0, 6)
    per_project = np.bincount(project, weights=cost, minlength=len(PROJECTS))
    tax_cost = np.round(per_project * TAX_RATE, 6)
    n = n_usage + 1 + len(PROJECTS) + 1
    kind = np.array(
        ["regular"] * (n_usage + 1) + ["tax"] * len(PROJECTS) + ["rounding_error"], dtype=object
    )
    sku_codes = np.concatenate([sku, [len(SKUS)], [len(SKUS) + 1] * len(PROJECTS), [len(SKUS) + 2]])
    project_codes = np.concatenate([project, [5], np.arange(len(PROJECTS)), [5]])
    label_codes = np.concatenate([label_set, [0] * (1 + len(PROJECTS) + 1)])
    tag_codes = np.concatenate([tag_set, [0] * (1 + len(PROJECTS) + 1)])
    region_codes = np.concatenate([region, [0], [0] * len(PROJECTS), [0]])
    hours = np.concatenate([hour, [0], [0] * len(PROJECTS), [0]])
    costs = np.concatenate(
        [cost, [fee_cost], tax_cost, [round(float(rng.uniform(-0.01, 0.01)), 6)]]
    )
    list_costs = np.concatenate([cost_at_list, [fee_cost], tax_cost, [costs[-1]]])
    amounts = np.concatenate([usage_amount, [86400.0], [0.0] * len(PROJECTS), [0.0]])
    pricing = np.concatenate([pricing_units, [24.0], [0.0] * len(PROJECTS), [0.0]])
    day_start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1e6)
    is_usage = np.arange(n) < n_usage
    starts = day_start + hours * MICROS_PER_HOUR
    ends = np.where(is_usage, starts + MICROS_PER_HOUR, day_start + 24 * MICROS_PER_HOUR)
    # Rows are written in four export batches during the following day.
    batch = rng.integers(0, 4, n)
    export = int(export_base.timestamp() * 1e6) + batch * 5 * MICROS_PER_HOUR + 37_000_000

    sku_vocab = [
        *SKUS,
        COMMITMENT_FEE_SKU,
        ("", "Tax", "", "Tax"),
        ("", "Invoice", "", "Rounding error"),
    ]
    units_vocab = [(s[4], s[5]) for s in SKUS] + [("seconds", "hour"), (None, None), (None, None)]
    credits = _credits(rng, costs, np.where(is_usage, sku_codes, -1))
    label_vocab = [[{"key": k, "value": v} for k, v in (s or {}).items()] for s in LABEL_SETS]
    tag_vocab = [
        [{"key": k, "value": v, "inherited": i, "namespace": ns} for k, v, i, ns in s]
        for s in TAG_SETS
    ]
    system_labels = [
        [{"key": "compute.googleapis.com/machine_spec", "value": "n2-standard-4"}],
        [],
    ]
    month = f"{day.year:04d}{day.month:02d}"
    columns = {
        "billing_account_id": pa.array([BILLING_ACCOUNT] * n, type=pa.string()),
        "service": pa.StructArray.from_arrays(
            [
                _take([s[0] for s in sku_vocab], sku_codes, pa.string()),
                _take([s[1] for s in sku_vocab], sku_codes, pa.string()),
            ],
            names=["id", "description"],
        ),
        "sku": pa.StructArray.from_arrays(
            [
                _take([s[2] for s in sku_vocab], sku_codes, pa.string()),
                _take([s[3] for s in sku_vocab], sku_codes, pa.string()),
            ],
            names=["id", "description"],
        ),
        "usage_start_time": pa.array(starts, type=pa.int64()).cast(TS),
        "usage_end_time": pa.array(ends, type=pa.int64()).cast(TS),
        "project": _project_struct(project_codes),
        "labels": _list_of(label_vocab, label_codes, _KV),
        "system_labels": _list_of(system_labels, (sku_codes != 0).astype(np.int64), _KV),
        "location": pa.StructArray.from_arrays(
            [
                _take([r[0] for r in REGIONS], region_codes, pa.string()),
                _take([r[2] for r in REGIONS], region_codes, pa.string()),
                _take([r[1] for r in REGIONS], region_codes, pa.string()),
                _take([f"{r[1]}-a" for r in REGIONS], region_codes, pa.string()),
            ],
            names=["location", "country", "region", "zone"],
        ),
        "tags": _list_of(tag_vocab, tag_codes, _TAG),
        "export_time": pa.array(export, type=pa.int64()).cast(TS),
        "cost": pa.array(costs, type=pa.float64()),
        "currency": pa.array([CURRENCY] * n, type=pa.string()),
        "currency_conversion_rate": pa.array(np.ones(n), type=pa.float64()),
        "usage": pa.StructArray.from_arrays(
            [
                pa.array(amounts, type=pa.float64()),
                _take([u[0] for u in units_vocab], sku_codes, pa.string()),
                pa.array(pricing, type=pa.float64()),
                _take([u[1] for u in units_vocab], sku_codes, pa.string()),
            ],
            names=["amount", "unit", "amount_in_pricing_units", "pricing_unit"],
        ),
        "credits": credits,
        "invoice": pa.StructArray.from_arrays(
            [pa.array([month] * n, type=pa.string())], names=["month"]
        ),
        "cost_type": pa.array(kind, type=pa.string()),
        "adjustment_info": pa.StructArray.from_arrays(
            [pa.nulls(n, pa.string())] * 4, names=["id", "description", "mode", "type"]
        ),
        "cost_at_list": pa.array(list_costs, type=pa.float64()),
    }
    if detailed:
        resource_codes = np.where(is_usage, rng.integers(0, 400, n), -1)
        names = np.array(
            [f"instance-{c:04d}" if c >= 0 else None for c in range(-1, 400)], dtype=object
        )
        global_names = np.array(
            [
                f"//compute.googleapis.com/projects/p/zones/z/instances/instance-{c:04d}"
                if c >= 0
                else None
                for c in range(-1, 400)
            ],
            dtype=object,
        )
        columns["resource"] = pa.StructArray.from_arrays(
            [
                pa.array(names[resource_codes + 1], type=pa.string()),
                pa.array(global_names[resource_codes + 1], type=pa.string()),
            ],
            names=["name", "global_name"],
        )
    return pa.table(columns)


def _correction(table: pa.Table, export_time: datetime) -> tuple[pa.Table, float]:
    """A usage correction negating CORRECTION_SHARE of the day's largest usage row: same service,
    SKU, project, labels and usage hour, later export_time, cost_type adjustment."""
    is_usage = pc.and_(
        pc.equal(table["cost_type"], "regular"),
        pc.invert(pc.starts_with(pc.struct_field(table["sku"], "description"), "Commitment")),
    )
    costs = pc.if_else(is_usage, table["cost"], float("-inf"))
    index = pc.index(costs, pc.max(costs)).as_py()
    original = table.slice(index, 1).to_pylist()[0]
    fixed = dict(original)
    fixed["cost"] = -round(original["cost"] * CORRECTION_SHARE, 6)
    fixed["cost_at_list"] = -round(original["cost_at_list"] * CORRECTION_SHARE, 6)
    fixed["credits"] = [
        {**c, "amount": -round(c["amount"] * CORRECTION_SHARE, 6)} for c in original["credits"]
    ]
    fixed["usage"] = {
        **original["usage"],
        "amount": -original["usage"]["amount"] * CORRECTION_SHARE,
        "amount_in_pricing_units": -original["usage"]["amount_in_pricing_units"] * CORRECTION_SHARE,
    }
    fixed["cost_type"] = "adjustment"
    fixed["adjustment_info"] = {
        "id": "adj-usage-correction-0001",
        "description": "Correction of over-reported usage",
        "mode": "PARTIAL_CORRECTION",
        "type": "USAGE_CORRECTION",
    }
    fixed["export_time"] = export_time
    net = fixed["cost"] + sum(c["amount"] for c in fixed["credits"])
    return pa.Table.from_pylist([fixed], schema=table.schema), net


def _write_dump(folder: Path, dump: str, table: pa.Table) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for shard, offset in enumerate(range(0, max(len(table), 1), SHARD_ROWS)):
        path = folder / f"{dump}-{shard:012d}.parquet"
        pq.write_table(table.slice(offset, SHARD_ROWS), path, compression="snappy")
        written.append(path)
    return written


def generate_gcp_billing(
    out: Path | str,
    start: date,
    days: int,
    rows_per_day: int,
    seed: int,
    *,
    detailed: bool = True,
    billing_account: str = BILLING_ACCOUNT,
) -> GcpSampleSummary:
    """Write ``days`` usage days of GCP billing export dumps under ``out/gcp/<account>/``."""
    began = clock.perf_counter()
    rng = np.random.default_rng(seed)
    root = Path(out) / "gcp" / billing_account
    summary = GcpSampleSummary(billing_account=billing_account)
    for offset in range(days):
        day = start + timedelta(days=offset)
        export_base = datetime(day.year, day.month, day.day, 4, tzinfo=UTC) + timedelta(days=1)
        table = _day_table(rng, day, rows_per_day, export_base, detailed)
        if billing_account != BILLING_ACCOUNT:
            table = table.set_column(
                0, "billing_account_id", pa.array([billing_account] * len(table), pa.string())
            )
        folder = root / f"usage_date={day.isoformat()}"
        dump = f"export-{(export_base + timedelta(hours=20)).strftime('%Y%m%dT%H%M%S')}"
        summary.files += _write_dump(folder, dump, table)
        summary.rows_by_day[day] = len(table)
        if offset == 0:
            # A full re-export of the day five days later, with the correction appended.
            later = export_base + timedelta(days=5)
            correction, net = _correction(table, later)
            redump = f"export-{later.strftime('%Y%m%dT%H%M%S')}"
            summary.files += _write_dump(folder, redump, pa.concat_tables([table, correction]))
            summary.rows_by_day[day] += 1
            summary.correction_day = day
            summary.correction_dump = folder / f"{redump}-{0:012d}.parquet"
            summary.correction_amount = net
    summary.total_rows = sum(summary.rows_by_day.values())
    summary.seconds = clock.perf_counter() - began
    return summary
