"""Delivery discovery, manifest validation and newest-wins selection."""

import json
from datetime import UTC, datetime

import pytest

from finops_assets.defs.sources.aws.deliveries import (
    export_kind,
    find_cur_manifests,
    find_data_export_manifests,
    parse_cur_manifest,
    parse_data_export_manifest,
)
from finops_assets.defs.sources.focus.deliveries import (
    deliveries_for_month,
    group_focus_folders,
    newest_per_period,
    parse_focus_manifest,
)
from finops_assets.lib.deliveries import DeliveryError, add_months, parse_timestamp
from finops_assets.resources.landing import LandingObject

T0 = datetime(2025, 2, 1, tzinfo=UTC)
PREFIX = "focus/aws/aws-focus/billing_period=2025-01"


def obj(key, size=100):
    return LandingObject(key=key, size=size, modified=T0)


def folder_with(files, delivery="d1", period="2025-01"):
    prefix = f"focus/aws/aws-focus/billing_period={period}/{delivery}"
    objects = [obj(f"{prefix}/{name}", size) for name, size in files] + [
        obj(f"{prefix}/manifest.json")
    ]
    (folder,) = group_focus_folders(objects)
    return folder


def manifest(files, **extra):
    return json.dumps({"files": files, **extra}).encode()


def test_groups_folders_and_ignores_unrelated_keys():
    objects = [
        obj(f"{PREFIX}/d1/part-00000.parquet"),
        obj(f"{PREFIX}/d1/manifest.json"),
        obj(f"{PREFIX}/d2/part-00000.parquet"),  # no manifest yet
        obj("focus/README.txt"),
        obj("aws-cur/report/20250101-20250201/report-Manifest.json"),
    ]
    folders = group_focus_folders(objects)
    assert [(f.delivery_id, f.manifest is not None) for f in folders] == [
        ("d1", True),
        ("d2", False),
    ]
    assert folders[0].provider == "aws" and folders[0].billing_period == "2025-01"


def test_manifest_is_parsed_against_present_files():
    folder = folder_with([("part-00000.parquet", 10), ("part-00001.csv.gz", 5)])
    delivery = parse_focus_manifest(
        folder,
        manifest(["part-00000.parquet", "part-00001.csv.gz"], createdAt="2025-02-03T04:05:06Z"),
        "where",
    )
    assert [(f.key.rsplit("/", 1)[1], f.format) for f in delivery.files] == [
        ("part-00000.parquet", "parquet"),
        ("part-00001.csv.gz", "csv"),
    ]
    assert delivery.created_at == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("files", "listed", "message"),
    [
        ([("a.parquet", 10)], ["b.parquet"], "'b.parquet' but the file is missing"),
        ([("a.parquet", 0)], ["a.parquet"], "is empty \\(0 bytes\\)"),
        ([("a.parquet", 10)], ["../../other/a.parquet"], "escapes the delivery folder"),
        ([("a.parquet", 10)], ["/etc/passwd"], "must be a relative file name"),
        ([("a.parquet", 10)], ["a.parquet", "a.parquet"], "listed twice"),
        ([("a.txt", 10)], ["a.txt"], "neither Parquet nor CSV"),
    ],
)
def test_manifest_problems_name_the_file_and_fix(files, listed, message):
    with pytest.raises(DeliveryError, match=message):
        parse_focus_manifest(folder_with(files), manifest(listed), "landing/x/manifest.json")


def test_manifest_that_is_not_json_is_refused():
    with pytest.raises(DeliveryError, match="not valid JSON"):
        parse_focus_manifest(folder_with([("a.parquet", 1)]), b"{truncated", "m")


def test_manifest_period_must_match_folder():
    with pytest.raises(DeliveryError, match="does not match its folder"):
        parse_focus_manifest(
            folder_with([("a.parquet", 1)]), manifest(["a.parquet"], billingPeriod="2025-02"), "m"
        )


def test_newest_delivery_per_period_wins_and_corrections_window():
    def delivery(did, period, created):
        folder = folder_with([("a.parquet", 1)], delivery=did, period=period)
        return parse_focus_manifest(folder, manifest(["a.parquet"], createdAt=created), "m")

    old = delivery("d1", "2025-01", "2025-02-01T00:00:00Z")
    restated = delivery("d2", "2025-01", "2025-02-05T00:00:00Z")
    february = delivery("d3", "2025-02", "2025-03-01T00:00:00Z")
    march = delivery("d4", "2025-03", "2025-04-01T00:00:00Z")
    newest = newest_per_period([restated, old, february, march])
    assert [d.delivery_id for d in newest] == ["d2", "d3", "d4"]
    assert [d.delivery_id for d in deliveries_for_month(newest, "2025-01", 1)] == ["d2", "d3"]
    assert [d.delivery_id for d in deliveries_for_month(newest, "2025-01", 0)] == ["d2"]
    assert add_months("2025-12", 1) == "2026-01"


def test_manifest_created_at_is_utc_and_a_bad_one_names_the_manifest():
    def created(value):
        folder = folder_with([("a.parquet", 1)])
        return parse_focus_manifest(
            folder, manifest(["a.parquet"], createdAt=value), "m"
        ).created_at

    assert created("2025-02-03T04:05:06Z") == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert created("2025-02-03T04:05:06") == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert created("2025-02-03T4:05:06z") == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert created("2025-02-03T06:05:06+02:00") == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    with pytest.raises(DeliveryError, match=r"^m: createdAt 'yesterday' is not an ISO-8601"):
        created("yesterday")
    with pytest.raises(DeliveryError, match=r"^m: createdAt must be an ISO-8601 timestamp, got 5"):
        created(5)
    with pytest.raises(ValueError, match=r"TimeSectorEnd .* \(e\.g\. 2025-01-27"):
        parse_timestamp("2025-13-01", "r.json", "TimeSectorEnd", "2025-01-27T00:00:00Z")


CUR_PERIOD = "aws-cur/finops-cur/20250101-20250201"


def cur_manifest(keys, assembly="a1b2"):
    return json.dumps({"assemblyId": assembly, "reportKeys": keys}).encode()


def cur_objects(*names, size=10):
    return {f"{CUR_PERIOD}/{n}": obj(f"{CUR_PERIOD}/{n}", size) for n in names}


def test_cur_manifests_are_found_only_in_period_folders():
    objects = [
        obj(f"{CUR_PERIOD}/finops-cur-Manifest.json"),
        obj(
            f"{CUR_PERIOD}/a1b2/finops-cur-Manifest.json"
        ),  # assembly copy, not the current pointer
        obj(f"{CUR_PERIOD}/other-Manifest.json"),
    ]
    assert [o.key for o in find_cur_manifests(objects)] == [
        f"{CUR_PERIOD}/finops-cur-Manifest.json"
    ]


def test_cur_report_keys_resolve_by_suffix_whatever_the_s3_prefix():
    present = cur_objects("a1b2/finops-cur-00001.csv.gz", "a1b2/finops-cur-00002.snappy.parquet")
    delivery = parse_cur_manifest(
        obj(f"{CUR_PERIOD}/finops-cur-Manifest.json"),
        cur_manifest(
            [
                "billing/cur/finops-cur/20250101-20250201/a1b2/finops-cur-00001.csv.gz",
                "finops-cur/20250101-20250201/a1b2/finops-cur-00002.snappy.parquet",
            ]
        ),
        present,
        "m",
    )
    assert delivery.billing_period == "2025-01" and delivery.assembly_id == "a1b2"
    assert [(f.key.rsplit("/", 1)[1], f.format) for f in delivery.files] == [
        ("finops-cur-00001.csv.gz", "csv"),
        ("finops-cur-00002.snappy.parquet", "parquet"),
    ]


@pytest.mark.parametrize(
    ("keys", "present", "message"),
    [
        (["cur/finops-cur/20250101-20250201/a1b2/x.csv.gz"], (), "the file is missing"),
        (
            ["cur/finops-cur/20250101-20250201/a1b2/x.csv.gz"],
            ("a1b2/x.csv.gz",),
            "empty \\(0 bytes\\)",
        ),
        (["cur/finops-cur/20250101-20250201/a1b2/../../../../etc/passwd.csv"], (), "not inside"),
        (["cur/finops-cur/20250101-20250201/old9/x.csv.gz"], ("old9/x.csv.gz",), "not inside"),
        (["cur/other-report/20250101-20250201/a1b2/x.csv.gz"], (), "not inside"),
        ([], (), "lists no reportKeys"),
    ],
)
def test_cur_manifest_problems(keys, present, message):
    size = 0 if message.startswith("empty") else 10
    with pytest.raises(DeliveryError, match=message):
        parse_cur_manifest(
            obj(f"{CUR_PERIOD}/finops-cur-Manifest.json"),
            cur_manifest(keys),
            cur_objects(*present, size=size),
            "m",
        )


# --- AWS Data Exports -------------------------------------------------------------------------
EXPORT_META = "aws-data-exports/cur2/metadata/BILLING_PERIOD=2025-01"
EXPORT_DATA = "aws-data-exports/cur2/data/BILLING_PERIOD=2025-01"


def export_manifest(files, **extra):
    return json.dumps({"exportName": "cur2", "dataFiles": files, **extra}).encode()


def test_data_export_manifests_are_found_in_both_casings():
    objects = [
        obj(f"{EXPORT_META}/cur2-Manifest.json"),
        obj("aws-data-exports/cur2/metadata/billing_period=2025-02/cur2-Manifest.json"),
        obj("aws-data-exports/cur2/metadata/BILLING_PERIOD=2025-03/other-Manifest.json"),
        obj("aws-data-exports/cur2/data/BILLING_PERIOD=2025-01/cur2-Manifest.json"),
    ]
    assert [o.key for o in find_data_export_manifests(objects)] == [
        f"{EXPORT_META}/cur2-Manifest.json",
        "aws-data-exports/cur2/metadata/billing_period=2025-02/cur2-Manifest.json",
    ]


def test_data_export_files_resolve_by_suffix_and_skip_zero_byte_leftovers():
    present = {
        o.key: o
        for o in [
            obj(f"{EXPORT_DATA}/cur2-00001.snappy.parquet"),
            obj(f"{EXPORT_DATA}/cur2-00002.snappy.parquet", size=0),
            # the manifest says BILLING_PERIOD, the landing copy is lower case: still found
            obj("aws-data-exports/cur2/data/billing_period=2025-01/cur2-00003.snappy.parquet"),
        ]
    }
    delivery = parse_data_export_manifest(
        obj(f"{EXPORT_META}/cur2-Manifest.json"),
        export_manifest(
            [
                "s3://bucket/exports/cur2/data/BILLING_PERIOD=2025-01/cur2-00001.snappy.parquet",
                "s3://bucket/exports/cur2/data/BILLING_PERIOD=2025-01/cur2-00002.snappy.parquet",
                "exports/cur2/data/BILLING_PERIOD=2025-01/cur2-00003.snappy.parquet",
            ],
            executionId="exec-7",
            billingPeriod="2025-01",
            columns=[{"name": "line_item_unblended_cost"}, {"name": "product"}],
        ),
        present,
        "m",
    )
    assert (delivery.billing_period, delivery.execution_id, delivery.kind) == (
        "2025-01",
        "exec-7",
        "cur2",
    )
    assert [f.key for f in delivery.files] == [
        f"{EXPORT_DATA}/cur2-00001.snappy.parquet",
        "aws-data-exports/cur2/data/billing_period=2025-01/cur2-00003.snappy.parquet",
    ]
    assert delivery.skipped_empty == (f"{EXPORT_DATA}/cur2-00002.snappy.parquet",)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["s3://b/p/cur2/data/BILLING_PERIOD=2025-01/gone.parquet"], "the file is missing"),
        (["s3://b/p/cur2/data/BILLING_PERIOD=2025-01/../../../../etc/x.parquet"], "not inside"),
        (["s3://b/p/cur2/data/BILLING_PERIOD=2024-12/old.parquet"], "not inside"),
        (["s3://b/p/other/data/BILLING_PERIOD=2025-01/x.parquet"], "not inside"),
        (["s3://b/p/cur2/data/BILLING_PERIOD=2025-01/empty.parquet"], "no non-empty data file"),
        (["s3://b/p/cur2/data/BILLING_PERIOD=2025-01/notes.txt"], "neither Parquet nor CSV"),
    ],
)
def test_data_export_manifest_problems(files, message):
    present = {
        o.key: o
        for o in [obj(f"{EXPORT_DATA}/empty.parquet", size=0), obj(f"{EXPORT_DATA}/notes.txt")]
    }
    with pytest.raises(DeliveryError, match=message):
        parse_data_export_manifest(
            obj(f"{EXPORT_META}/cur2-Manifest.json"), export_manifest(files), present, "m"
        )


def test_data_export_manifest_for_another_month_is_refused():
    with pytest.raises(DeliveryError, match="does not match its folder"):
        parse_data_export_manifest(
            obj(f"{EXPORT_META}/cur2-Manifest.json"),
            export_manifest([], billingPeriod="2025-02"),
            {},
            "m",
        )


@pytest.mark.parametrize(
    ("columns", "kind"),
    [
        (["BilledCost", "ChargePeriodStart", "x_Discounts"], "focus"),
        (["line_item_unblended_cost", "product"], "cur2"),
        (["lineItem/UnblendedCost"], "cur2"),
        (["cost", "usage_start_time"], None),
    ],
)
def test_export_kind_from_columns(columns, kind):
    assert export_kind(columns) == kind
