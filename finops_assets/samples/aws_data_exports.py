"""Synthetic AWS Data Exports CUR 2.0 deliveries (DESIGN §3), built from the legacy CUR sample.

Layout::

    aws-data-exports/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.snappy.parquet
    aws-data-exports/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json

The rows are the legacy CUR sample's current assemblies (`generate_aws_cur`, Athena Parquet),
reshaped the way CUR 2.0 differs from CUR 1 (DOMAIN §4): `product_region` gone (only
`product_region_code`), `product_servicename` and the other product attributes folded into the
`product` map, tags into the `resource_tags` map (keys `user_<name>`, as CUR 2.0 writes them),
cost categories into `cost_category`, and an empty `discount` map. Each month also carries a
zero-byte leftover Parquet file that the manifest does not list (AWS leaves those behind when an
export overwrites itself); the last month uses the lower-case `billing_period=` casing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from finops_assets.defs.sources.aws.deliveries import EXPORT_ROOT
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.samples.aws_cur import ATHENA_NAMES, generate_aws_cur

EXPORT_BUCKET = "example-data-exports-bucket"
EXPORT_PREFIX = "exports"  # S3 prefix in the bucket: deliberately not the landing folder name
# Product attributes CUR 2.0 keeps as columns; the rest go into the `product` map.
CUR2_PRODUCT_COLUMNS = {
    "product_fee_code",
    "product_fee_description",
    "product_from_location",
    "product_from_location_type",
    "product_from_region_code",
    "product_instance_family",
    "product_instance_type",
    "product_location",
    "product_location_type",
    "product_operation",
    "product_product_family",
    "product_region_code",
    "product_servicecode",
    "product_sku",
    "product_to_location",
    "product_to_location_type",
    "product_to_region_code",
    "product_usagetype",
}


@dataclass
class DataExportSummary:
    export: str
    manifests: list[str] = field(default_factory=list)  # relative to `out`
    files: list[str] = field(default_factory=list)  # data files listed by the manifests
    leftovers: list[str] = field(default_factory=list)  # zero-byte files, not listed
    rows_by_period: dict[str, int] = field(default_factory=dict)


def _map_sql(columns: dict[str, str]) -> str:
    """A MAP(VARCHAR, VARCHAR) of the non-empty values of ``columns`` (map key -> column)."""
    if not columns:
        return "CAST(MAP {} AS MAP(VARCHAR, VARCHAR))"
    entries = ", ".join(
        f"struct_pack(k := '{key}', v := CAST({q(column)} AS VARCHAR))"
        for key, column in columns.items()
    )
    return (
        f"CAST(map_from_entries(list_filter([{entries}], "
        "lambda e: e.v IS NOT NULL AND e.v <> '')) AS MAP(VARCHAR, VARCHAR))"
    )


def cur2_select(source: str) -> str:
    """SELECT reshaping Athena-named CUR 1 rows from ``source`` into CUR 2.0 columns."""
    product = {
        name.removeprefix("product_"): name
        for name in ATHENA_NAMES
        if name.startswith("product_")
        and name not in CUR2_PRODUCT_COLUMNS
        and name != "product_region"
    }
    tags = {
        name.removeprefix("resource_tags_"): name
        for name in ATHENA_NAMES
        if name.startswith("resource_tags_")
    }
    categories = {
        name.removeprefix("cost_category_"): name
        for name in ATHENA_NAMES
        if name.startswith("cost_category_")
    }
    dropped = [*product.values(), *tags.values(), *categories.values(), "product_region"]
    return f"""
        SELECT * EXCLUDE ({", ".join(q(c) for c in dropped)}),
               {_map_sql(product)} AS product,
               {_map_sql(tags)} AS resource_tags,
               {_map_sql(categories)} AS cost_category,
               CAST(MAP {{}} AS MAP(VARCHAR, VARCHAR)) AS discount
        FROM {source}
    """


def generate_cur2_export(
    out: Path,
    start: date,
    days: int,
    rows_per_day: int,
    seed: int,
    export: str = "finops-cur2",
) -> DataExportSummary:
    """Write a CUR 2.0 Data Export for [start, start + days) under ``out/aws-data-exports/``."""
    out = Path(out)
    summary = DataExportSummary(export=export)
    with tempfile.TemporaryDirectory(prefix="cur1-") as scratch:
        cur = generate_aws_cur(Path(scratch), start, days, rows_per_day, seed, flavour="parquet")
        current: dict[str, str] = {}  # period folder -> current assembly folder
        for manifest in cur.manifests:
            data = json.loads((Path(scratch) / manifest).read_text())
            current[manifest.split("/")[2]] = str(
                Path(scratch) / Path(manifest).parent / data["assemblyId"]
            )
        periods = sorted(current)
        with duckdb.connect() as con:
            for index, period_folder in enumerate(periods):
                period = f"{period_folder[:4]}-{period_folder[4:6]}"
                casing = (
                    "billing_period"
                    if index == len(periods) - 1 and index > 0
                    else ("BILLING_PERIOD")
                )
                data_dir = out / EXPORT_ROOT / export / "data" / f"{casing}={period}"
                meta_dir = out / EXPORT_ROOT / export / "metadata" / f"{casing}={period}"
                data_dir.mkdir(parents=True, exist_ok=True)
                meta_dir.mkdir(parents=True, exist_ok=True)
                name = f"{export}-00001.snappy.parquet"
                parts = sorted(Path(current[period_folder]).glob("*.parquet"))
                source = f"read_parquet({[str(p) for p in parts]})"
                con.execute(
                    f"COPY ({cur2_select(source)}) TO '{data_dir / name}' "
                    "(FORMAT parquet, COMPRESSION snappy)"
                )
                (rows,) = con.execute(
                    f"SELECT count(*) FROM read_parquet('{data_dir / name}')"
                ).fetchone()
                leftover = data_dir / f"{export}-00002.snappy.parquet"
                leftover.write_bytes(b"")
                execution = hashlib.sha256(f"{export}:{seed}:{period}".encode()).hexdigest()[:32]
                manifest = {
                    "version": "1.0",
                    "executionId": execution,
                    "exportArn": f"arn:aws:bcm-data-exports:us-east-1:000000000000:export/{export}",
                    "exportName": export,
                    "billingPeriod": period,
                    "bucket": EXPORT_BUCKET,
                    "dataFiles": [
                        f"s3://{EXPORT_BUCKET}/{EXPORT_PREFIX}/{export}/data/{casing}={period}/{name}"
                    ],
                }
                manifest_path = meta_dir / f"{export}-Manifest.json"
                temporary = meta_dir / f".{export}-Manifest.json.tmp"
                temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
                os.replace(temporary, manifest_path)
                summary.manifests.append(manifest_path.relative_to(out).as_posix())
                summary.files.append((data_dir / name).relative_to(out).as_posix())
                summary.leftovers.append(leftover.relative_to(out).as_posix())
                summary.rows_by_period[period] = int(rows)
    return summary
