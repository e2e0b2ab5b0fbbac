"""Every object under aws-cur/ and aws-data-exports/ is accounted for: loaded, superseded,
waiting, metadata, or named as not understood by the landing_accounted_for check."""

import gzip
import os
import shutil
from datetime import UTC, datetime

import dagster as dg

from finops_assets.defs.sources.aws.deliveries import account_landing
from finops_assets.lib.rules import load_rules
from finops_assets.resources.landing import LocalLandingZone
from finops_assets_tests.conftest import failure_messages
from finops_assets_tests.paths import LAYOUTS
from finops_assets_tests.sources.aws.test_cur_rows import csv_text, deliver, row

NOW = datetime(2024, 4, 10, tzinfo=UTC)
CUR = "aws-cur/acme/20240301-20240401"
EXPORT = "aws-data-exports/cur2"


def statuses(root) -> dict[str, tuple[str, str]]:
    rows = account_landing(LocalLandingZone(root=str(root)), load_rules(None), NOW)
    return {r.key: (r.status, r.reason) for r in rows}


def test_each_object_gets_its_status(tmp_path):
    text = csv_text([row("2024-03", "2024-03-01", "1.00")])
    deliver(tmp_path, "2024-03", text, assembly="old")
    deliver(tmp_path, "2024-03", text.replace("1.00", "2.00"), assembly="current")
    (tmp_path / CUR / "current" / "acme-Manifest.json").write_text("{}")  # AWS's copy
    os.utime(tmp_path / CUR / "old" / "acme-00001.csv.gz", (1_700_000_000, 1_700_000_000))
    newer = tmp_path / CUR / "newer" / "acme-00001.csv.gz"  # arrived, manifest not rewritten yet
    newer.parent.mkdir()
    with gzip.open(newer, "wt") as f:
        f.write(text)
    os.utime(newer, (2_000_000_000, 2_000_000_000))
    shutil.copytree(
        LAYOUTS / "aws_athena_cur_updating" / "aws-cur", tmp_path / "aws-cur", dirs_exist_ok=True
    )
    data = tmp_path / EXPORT / "data/BILLING_PERIOD=2024-03"
    data.mkdir(parents=True)
    shutil.copy(
        LAYOUTS / "aws_athena_cur/aws-cur/acme-cur/acme-cur/year=2024/month=3/"
        "acme-cur-00001.snappy.parquet",
        data / "cur2-00001.snappy.parquet",
    )
    (data / "cur2-00002.snappy.parquet").write_bytes(b"")  # zero-byte leftover
    (tmp_path / EXPORT / "metadata/BILLING_PERIOD=2024-03").mkdir(parents=True)
    (tmp_path / EXPORT / "metadata/BILLING_PERIOD=2024-03/cur2-Manifest.json").write_text(
        '{"dataFiles": ["s3://b/x/cur2/data/BILLING_PERIOD=2024-03/cur2-00001.snappy.parquet", '
        '"s3://b/x/cur2/data/BILLING_PERIOD=2024-03/cur2-00002.snappy.parquet"]}'
    )
    (tmp_path / "aws-cur/notes.txt").write_text("ask finance")
    found = statuses(tmp_path)
    updating = found.pop(
        "aws-cur/acme-cur/acme-cur/year=2024/month=3/acme-cur-00001.snappy.parquet"
    )
    assert updating[0] == "waiting" and "says 'UPDATING'" in updating[1]
    assert found.pop("aws-cur/notes.txt")[0] == "not_understood"
    assert found == {
        f"{CUR}/acme-Manifest.json": ("metadata", ""),
        f"{CUR}/current/acme-00001.csv.gz": ("loaded", ""),
        f"{CUR}/current/acme-Manifest.json": ("metadata", ""),
        f"{CUR}/newer/acme-00001.csv.gz": (
            "waiting",
            "assembly newer is newer than the one the period's manifest names (current); AWS "
            "writes the manifest last",
        ),
        f"{CUR}/old/acme-00001.csv.gz": ("superseded", ""),
        "aws-cur/acme-cur/20240201-20240301/acme-cur-Manifest.json": ("metadata", ""),
        "aws-cur/acme-cur/20240301-20240401/acme-cur-Manifest.json": ("metadata", ""),
        "aws-cur/acme-cur/acme-cur/year=2024/month=2/acme-cur-00001.snappy.parquet": updating,
        "aws-cur/acme-cur/cost_and_usage_data_status/cost_and_usage_data_status.parquet": (
            "metadata",
            "",
        ),
        f"{EXPORT}/data/BILLING_PERIOD=2024-03/cur2-00001.snappy.parquet": ("loaded", ""),
        f"{EXPORT}/data/BILLING_PERIOD=2024-03/cur2-00002.snappy.parquet": ("superseded", ""),
        f"{EXPORT}/metadata/BILLING_PERIOD=2024-03/cur2-Manifest.json": ("metadata", ""),
    }


def landing_check(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "landing_accounted_for"
    ]
    return evaluation


def test_stray_files_fail_the_check_naming_them(pipeline):
    deliver(pipeline.landing, "2024-03", csv_text([row("2024-03", "2024-03-01", "1.00")]))
    (pipeline.landing / "aws-cur/notes.txt").write_text("ask finance")
    odd = pipeline.landing / "aws-cur/acme/2024-03/acme-00001.csv.gz"  # not an AWS folder shape
    odd.parent.mkdir(parents=True)
    odd.write_bytes(b"")
    result = pipeline.materialize("2024-03-01", "2024-03-31", ["raw/aws_cur"])
    assert result.success, failure_messages(result)
    check = landing_check(result)
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.description.startswith(
        "2 object(s) under aws-cur/ and aws-data-exports/ are not understood; e.g. "
        f"{pipeline.landing / 'aws-cur/acme/2024-03/acme-00001.csv.gz'}: not a layout AWS "
        "delivers; expected aws-cur/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/"
    )
    table = check.metadata["not_understood"].value
    assert str(pipeline.landing / "aws-cur/notes.txt") in table and str(odd) in table
    assert (check.metadata["objects_loaded"].value, check.metadata["objects_metadata"].value) == (
        1,
        1,
    )


def test_a_clean_landing_passes(pipeline):
    deliver(pipeline.landing, "2024-03", csv_text([row("2024-03", "2024-03-01", "1.00")]))
    result = pipeline.materialize("2024-03-01", "2024-03-31", ["raw/aws_cur"])
    assert result.success, failure_messages(result)
    check = landing_check(result)
    assert (check.passed, check.description) == (
        True,
        "All 2 object(s) under aws-cur/ and aws-data-exports/ accounted for.",
    )
