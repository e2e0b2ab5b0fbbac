"""The delivery sensors on real landing layouts: what they request, once, and what they skip."""

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_assets.cli import main
from finops_assets.defs.sources.aws.deliveries import scan_aws_cur, scan_aws_data_exports
from finops_assets.defs.sources.azure.deliveries import scan_azure
from finops_assets.defs.sources.focus.deliveries import scan_focus
from finops_assets.defs.sources.gcp.deliveries import scan_gcp
from finops_assets.defs.sources.shared import evaluate
from finops_assets.lib.delivery_watch import recency_incomplete_days
from finops_assets.lib.rules import load_rules
from finops_assets.partitions import build_daily_partitions
from finops_assets.resources.landing import LocalLandingZone
from finops_assets_tests.conftest import failure_messages

NOW = datetime(2025, 2, 10, 12, tzinfo=UTC)
FOCUS_AWS = "focus/aws/aws-focus/billing_period=2025-01"
PARTITIONS = build_daily_partitions("2023-01-01")


@pytest.fixture(scope="module")
def every_layout(tmp_path_factory) -> Path:
    """A month of every supported layout (FOCUS, legacy CUR, Data Exports, Azure, GCP), small."""
    out = tmp_path_factory.mktemp("every_layout")
    argv = ["sample-data", "--out", str(out), "--start", "2025-01-01", "--days", "31"]
    argv += ["--rows-per-day", "150", "--seed", "5"]
    assert main([*argv, "--sources", "focus,aws-cur,azure,gcp,aws-exports"]) == 0
    return out


@pytest.fixture
def landing(tmp_path, every_layout) -> Path:
    root = tmp_path / "drop"
    shutil.copytree(every_layout, root)
    return root


def tick(scan, root: Path, cursor=None, now=NOW, rules=None):
    return evaluate(
        scan,
        LocalLandingZone(root=str(root)),
        rules or load_rules(None),
        cursor,
        dg.get_dagster_logger(),
        partitions=PARTITIONS,
        now=now,
    )


def requested(result) -> list[tuple[str, str, str]]:
    out = []
    for r in result.run_requests or []:
        start = r.partition_key or r.tags["dagster/asset_partition_range_start"]
        end = r.partition_key or r.tags["dagster/asset_partition_range_end"]
        out.append((r.asset_selection[0].to_user_string(), start, end))
    return sorted(out)


def skip(result) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def observed(result, delivery_id: str) -> dict:
    return next(
        e.metadata for e in result.asset_events if e.metadata["delivery_id"].value == delivery_id
    )


def newest_focus_delivery(root: Path) -> Path:
    return sorted((root / FOCUS_AWS).iterdir())[-1]


def redeliver(root: Path, new_id: str, created_at: str, manifest: bool = True) -> Path:
    """A copy of the newest AWS FOCUS delivery under a new id (a provider restatement)."""
    source = newest_focus_delivery(root)
    target = root / FOCUS_AWS / new_id
    shutil.copytree(source, target)
    data = json.loads((target / "manifest.json").read_text())
    data.update(deliveryId=new_id, createdAt=created_at)
    if manifest:
        (target / "manifest.json").write_text(json.dumps(data))
    else:
        (target / "manifest.json").unlink()
    return target


def test_every_source_requests_its_newest_complete_deliveries_once(landing):
    expected = {
        scan_aws_cur: [("raw/aws_cur", "2025-01-01", "2025-01-31")],
        scan_azure: [("raw/azure_cost", "2025-01-01", "2025-01-31")],
        scan_focus: [("raw/focus", "2025-01-01", "2025-01-31")],
        scan_gcp: [("raw/gcp_billing", "2025-01-01", "2025-01-31")],
        scan_aws_data_exports: [("raw/aws_cur", "2025-01-01", "2025-01-31")],
    }
    for scan, runs in expected.items():
        first = tick(scan, landing)
        assert requested(first) == runs, scan.__name__
        assert len({r.run_key for r in first.run_requests}) == len(runs)
        statuses = [e.metadata["completeness"].value for e in first.asset_events]
        assert "complete" in statuses
        # The restated month's older deliveries are listed, not loaded.
        if scan in (scan_focus, scan_azure):
            assert "superseded" in statuses
        again = tick(scan, landing, first.cursor)
        assert requested(again) == []
        assert "No new complete delivery" in skip(again)
        assert again.asset_events == []  # nothing changed: no new observation


def test_a_restated_month_requests_every_day_it_covers_again(landing):
    first = tick(scan_focus, landing)
    redeliver(landing, "20250205T060000Z-restated", "2025-02-05T06:00:00Z")
    second = tick(scan_focus, landing, first.cursor)
    assert requested(second) == [("raw/focus", "2025-01-01", "2025-01-31")]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert "20250205T060000Z-restated" in second.run_requests[0].tags["finops/deliveries"]


def test_a_duplicate_delivery_requests_nothing(landing):
    first = tick(scan_focus, landing)
    newest = newest_focus_delivery(landing)
    # The same delivery landed again (files and manifest re-uploaded, same delivery id).
    for path in newest.iterdir():
        path.write_bytes(path.read_bytes())
    second = tick(scan_focus, landing, first.cursor)
    assert requested(second) == []
    assert "all already requested" in skip(second)


def test_a_half_written_delivery_waits_for_its_manifest(landing):
    first = tick(scan_focus, landing)
    manifest = newest_focus_delivery(landing) / "manifest.json"
    folder = redeliver(landing, "20250206T060000Z-writing", "2025-02-06T06:00:00Z", manifest=False)
    second = tick(scan_focus, landing, first.cursor)
    assert requested(second) == []
    assert f"{folder}: 1 file(s) but no manifest.json yet" in skip(second)
    (observation,) = second.asset_events
    assert observation.metadata["completeness"].value == "incomplete"
    # The manifest arrives: the month is requested once.
    data = json.loads(manifest.read_text())
    data.update(deliveryId="20250206T060000Z-writing", createdAt="2025-02-06T06:00:00Z")
    (folder / "manifest.json").write_text(json.dumps(data))
    third = tick(scan_focus, landing, second.cursor)
    assert requested(third) == [("raw/focus", "2025-01-01", "2025-01-31")]


def test_cur_and_azure_runs_without_manifest_are_skipped_with_reason(landing):
    cur = tick(scan_aws_cur, landing)
    period = landing / "aws-cur/finops-cur/20250101-20250201"
    new_assembly = period / "00000000-new-assembly"
    new_assembly.mkdir()
    (new_assembly / "finops-cur-00001.csv.gz").write_bytes(b"partial")
    cur2 = tick(scan_aws_cur, landing, cur.cursor)
    assert requested(cur2) == []
    assert "assembly 00000000-new-assembly has 1 file(s)" in skip(cur2)
    azure = tick(scan_azure, landing)
    run = landing / "azure/ea-100200300/daily-actual/20250101-20250131/new-run"
    run.mkdir()
    (run / "part_0_0001.csv.gz").write_bytes(b"partial")
    azure2 = tick(scan_azure, landing, azure.cursor)
    assert requested(azure2) == []
    assert f"{run}: 1 file(s) but no manifest.json yet" in skip(azure2)


def test_a_manifest_naming_a_missing_file_is_skipped_and_the_loaded_delivery_stays(landing):
    first = tick(scan_focus, landing)
    folder = redeliver(landing, "20250207T060000Z-broken", "2025-02-07T06:00:00Z")
    data = json.loads((folder / "manifest.json").read_text())
    data["files"].append("part-00001.parquet")
    (folder / "manifest.json").write_text(json.dumps(data))
    second = tick(scan_focus, landing, first.cursor)
    assert requested(second) == []
    assert "manifest lists 'part-00001.parquet' but the file is missing" in skip(second)
    assert str(folder / "manifest.json") in skip(second)


def test_a_delivery_older_than_the_loaded_one_is_not_loaded(landing):
    first = tick(scan_focus, landing)
    # The newest delivery disappears (moved away) and an old one is re-dropped under a new id.
    newest = newest_focus_delivery(landing)
    older = redeliver(landing, "20250101T000000Z-old", "2025-01-15T00:00:00Z")
    shutil.rmtree(newest)
    second = tick(scan_focus, landing, first.cursor)
    assert requested(second) == []
    assert "than the delivery already loaded" in skip(second)
    details = {e.metadata["delivery_id"].value: e.metadata for e in second.asset_events}
    assert details["20250101T000000Z-old"]["completeness"].value == "superseded"
    assert older.exists()


def test_days_wait_for_their_partition(landing):
    early = datetime(2025, 1, 15, 8, tzinfo=UTC)
    first = tick(scan_focus, landing, now=early)
    assert requested(first) == [("raw/focus", "2025-01-01", "2025-01-14")]
    second = tick(scan_focus, landing, first.cursor, now=datetime(2025, 1, 20, tzinfo=UTC))
    assert requested(second) == [("raw/focus", "2025-01-15", "2025-01-19")]


def test_gcp_days_wait_until_their_watermark_settles(landing):
    # The sample's newest export_time of 2025-01-31 is on 2025-02-02 (UTC); with a 60-minute
    # settle time the day is not loaded right after that.
    just_after = datetime(2025, 1, 31, 12, tzinfo=UTC)
    first = tick(scan_gcp, landing, now=just_after)
    days = requested(first)
    assert days and days[-1][2] < "2025-01-31"
    assert "export_time watermark" in " ".join(
        e.metadata["detail"].value for e in first.asset_events
    )
    later = tick(scan_gcp, landing, first.cursor)
    assert requested(later)[-1][2] == "2025-01-31"


def with_status(folder: Path, incomplete_days: set[str]) -> None:
    (part,) = folder.glob("*.parquet")
    table = pq.read_table(part)
    if "x_DatasetCompletionStatus" in table.column_names:
        table = table.drop_columns(["x_DatasetCompletionStatus"])
    days = [str(v)[:10] for v in table.column("ChargePeriodStart").to_pylist()]
    status = ["Incomplete" if d in incomplete_days else "Complete" for d in days]
    pq.write_table(table.append_column("x_DatasetCompletionStatus", pa.array(status)), part)


def test_days_marked_incomplete_wait_and_are_refused_by_the_load(landing, pipeline):
    folder = redeliver(landing, "20250208T060000Z-status", "2025-02-08T06:00:00Z")
    with_status(folder, {"2025-01-30", "2025-01-31"})
    first = tick(scan_focus, landing)
    aws = observed(first, "20250208T060000Z-status")
    assert (aws["days_requested"].value, aws["days_incomplete"].value) == (29, 2)
    # The requested days themselves, for ops/pipeline_health (January without 30 and 31).
    assert aws["requested_days"].value == [f"2025-01-{d:02d}" for d in range(1, 30)]
    assert "x_DatasetCompletionStatus is Incomplete" in aws["detail"].value
    # A manual backfill of an incomplete day fails and keeps the previous data.
    shutil.copytree(landing, pipeline.landing, dirs_exist_ok=True)
    result = pipeline.materialize("2025-01-31", assets=["raw/focus"])
    assert not result.success
    assert "x_DatasetCompletionStatus marks these days Incomplete: 2025-01-31" in (
        failure_messages(result)
    )
    # The producer re-delivers the month complete: the two days are requested.
    complete = redeliver(landing, "20250209T060000Z-final", "2025-02-09T06:00:00Z")
    with_status(complete, set())
    second = tick(scan_focus, landing, first.cursor)
    assert requested(second) == [("raw/focus", "2025-01-01", "2025-01-31")]
    assert observed(second, "20250209T060000Z-final")["days_requested"].value == 31


RECENCY = {
    "DatasetInstanceId": "1234-abcde",
    "RecencyLastUpdated": "2025-02-08T12:01:03Z",
    "TimeSectors": [
        # The specification's examples write single-digit hours.
        {
            "TimeSectorStart": "2025-01-01T0:00:00z",
            "TimeSectorEnd": "2025-01-29T00:00:00Z",
            "TimeSectorComplete": True,
            "TimeSectorLastUpdated": "2025-02-08T04:00:00Z",
        },
        {
            "TimeSectorStart": "2025-01-29T00:00:00Z",
            "TimeSectorEnd": "2025-01-30T12:00:00Z",
            "TimeSectorComplete": True,
            "TimeSectorLastUpdated": "2025-02-08T04:00:00Z",
        },
        {
            "TimeSectorStart": "2025-01-30T12:00:00Z",
            "TimeSectorEnd": "2025-01-31T00:00:00Z",
            "TimeSectorComplete": False,
            "TimeSectorLastUpdated": "2025-02-08T04:00:00Z",
        },
    ],
}


def test_recency_metadata_decides_which_days_are_complete(landing):
    days = [date(2025, 1, d) for d in (28, 29, 30, 31)]
    incomplete = recency_incomplete_days(json.dumps(RECENCY).encode(), "recency.json", days)
    assert sorted(incomplete) == [date(2025, 1, 30), date(2025, 1, 31)]
    assert "not complete" in incomplete[date(2025, 1, 30)]
    assert "no complete time sector" in incomplete[date(2025, 1, 31)]
    assert (
        recency_incomplete_days(
            json.dumps({**RECENCY, "DatasetInstanceComplete": True}).encode(), "r", days
        )
        == {}
    )
    # Through the sensor: a recency file beside the dataset's deliveries.
    metadata = landing / "focus/aws/aws-focus/metadata"
    metadata.mkdir()
    (metadata / "recency-1234-abcde.json").write_text(json.dumps(RECENCY))
    first = tick(scan_focus, landing)
    aws = next(
        e.metadata
        for e in first.asset_events
        if e.metadata["stream"].value.endswith("aws-focus")
        and e.metadata["completeness"].value != "superseded"
    )
    assert aws["completeness"].value == "partly complete"
    assert (aws["days_requested"].value, aws["days_incomplete"].value) == (29, 2)
    assert "Recency marks 2025-01-30 12:00..00:00Z not complete" in aws["detail"].value
    # Unreadable Recency: the delivery is not loaded, and the reason names the file.
    (metadata / "recency-1234-abcde.json").write_text("{not json")
    broken = tick(scan_focus, landing)
    assert "raw/focus" not in {
        r.asset_selection[0].to_user_string()
        for r in broken.run_requests or []
        if "aws-focus" in r.tags["finops/streams"]
    }
    assert "Recency metadata is not valid JSON" in (skip(broken) + str(broken.asset_events))


def test_the_sensors_are_in_the_definitions():
    from finops_assets.definitions import build_defs

    names = {s.name for s in build_defs().sensors}
    assert {
        "aws_cur_deliveries",
        "aws_data_exports_deliveries",
        "azure_deliveries",
        "gcp_deliveries",
        "focus_deliveries",
        "freshness",
        "restated_days_downstream",
    } <= names
