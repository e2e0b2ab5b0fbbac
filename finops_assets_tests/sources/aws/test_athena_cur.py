"""Legacy CUR with the Athena integration (Parquet under year=/month=, rewritten in place, status
table READY/UPDATING), from the hand-made layout fixtures written from AWS's documentation."""

import json
import os
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from finops_assets.defs.sources.aws.deliveries import discover_cur, scan_aws_cur
from finops_assets.lib.rules import load_rules
from finops_assets.resources.landing import LocalLandingZone
from finops_assets_tests.conftest import failed_checks, failure_messages
from finops_assets_tests.paths import LAYOUTS

READY = LAYOUTS / "aws_athena_cur"
UPDATING = LAYOUTS / "aws_athena_cur_updating"
STATUS = "aws-cur/acme-cur/cost_and_usage_data_status"
MONTH_3 = "aws-cur/acme-cur/acme-cur/year=2024/month=3/acme-cur-00001.snappy.parquet"
NOW = datetime(2024, 4, 10, 12, tzinfo=UTC)
ASSEMBLIES = {
    "2024-02": "ee9a6708-9e58-1980-de54-0f237624575d",
    "2024-03": "b465225b-b55e-1a43-25c4-5242c31a1ce7",
}
UPDATING_REASON = (
    "cost_and_usage_data_status says 'UPDATING', not 'READY': AWS is rewriting the report's "
    "year=/month= files in place. It loads once the status table says READY; until then the "
    "days keep their previous data"
)


def deliver(case: Path, landing: Path) -> None:
    shutil.copytree(case / "aws-cur", landing / "aws-cur", dirs_exist_ok=True)


def expected_by_day(case: Path) -> list[tuple[str, str, Decimal, Decimal]]:
    totals = json.loads((case / "expected.json").read_text())["totals"]
    return sorted(
        (day, currency, Decimal(billed), Decimal(totals["effective"]["by_day"][day][currency]))
        for day, by_currency in totals["billed"]["by_day"].items()
        for currency, billed in by_currency.items()
    )


def facts_by_day(pipeline) -> list[tuple[str, str, Decimal, Decimal]]:
    return [
        (day, currency, round(billed, 4), round(effective, 4))
        for day, currency, billed, effective in pipeline.query(
            "SELECT charge_date::VARCHAR, BillingCurrency, sum(BilledCost), sum(EffectiveCost) "
            "FROM core.cost_facts GROUP BY ALL ORDER BY ALL"
        )
    ]


def load(pipeline):
    return pipeline.materialize("2024-02-01", "2024-03-31", ["raw/aws_cur", "core/cost_facts"])


def test_athena_months_load_every_cent_when_ready(pipeline):
    deliver(READY, pipeline.landing)
    result = load(pipeline)
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert facts_by_day(pipeline) == expected_by_day(READY)
    assert pipeline.query(
        "SELECT x_BillingPeriod, x_DeliveryId, count(*) FROM raw.aws_cur GROUP BY ALL ORDER BY 1"
    ) == [("2024-02", ASSEMBLIES["2024-02"], 7), ("2024-03", ASSEMBLIES["2024-03"], 9)]


def test_updating_status_refuses_the_load_and_keeps_the_previous_data(pipeline):
    deliver(READY, pipeline.landing)
    assert load(pipeline).success
    # AWS starts rewriting the report in place: the status table says UPDATING.
    shutil.copytree(UPDATING / STATUS, pipeline.landing / STATUS, dirs_exist_ok=True)
    result = load(pipeline)
    assert not result.success
    assert (
        f"Not loading 2024-02-01..2024-02-29: aws-cur/acme-cur billing period 2024-02 (delivery "
        f"{ASSEMBLIES['2024-02']}) is not ready: {pipeline.landing / STATUS}: {UPDATING_REASON}."
    ) in failure_messages(result)
    assert facts_by_day(pipeline) == expected_by_day(READY)


def test_updating_case_loads_nothing(pipeline):
    deliver(UPDATING, pipeline.landing)
    result = load(pipeline)
    assert not result.success
    assert UPDATING_REASON in failure_messages(result)
    # Nothing was written (the run stopped before opening the warehouse for writing).
    assert not Path(pipeline.warehouse).exists() or pipeline.query(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw'"
    ) == [(0,)]


@pytest.mark.parametrize(
    ("case", "complete", "reason"),
    [(READY, True, ""), (UPDATING, False, UPDATING_REASON)],
)
def test_sensor_scan_reports_the_status_table(tmp_path, case, complete, reason):
    deliver(case, tmp_path)
    candidates = scan_aws_cur(LocalLandingZone(root=str(tmp_path)), load_rules(None), NOW)
    assert [
        (c.stream, c.period, c.delivery_id, c.complete, len(c.days), c.days[0], c.target)
        for c in candidates
    ] == [
        (
            "aws-cur/acme-cur",
            "2024-02",
            ASSEMBLIES["2024-02"],
            complete,
            29,
            date(2024, 2, 1),
            "raw/aws_cur",
        ),
        (
            "aws-cur/acme-cur",
            "2024-03",
            ASSEMBLIES["2024-03"],
            complete,
            31,
            date(2024, 3, 1),
            "raw/aws_cur",
        ),
    ]
    expected = f"{tmp_path / STATUS}: {reason}" if reason else ""
    assert [c.reason for c in candidates] == [expected, expected]


def test_a_month_without_manifest_is_identified_by_its_files(tmp_path):
    """No period manifest: the month folder is the delivery, and a rewrite in place (same key,
    new size or mtime) is a new delivery."""
    deliver(READY, tmp_path)
    for manifest in (tmp_path / "aws-cur/acme-cur").glob("2024*/acme-cur-Manifest.json"):
        manifest.unlink()
    landing = LocalLandingZone(root=str(tmp_path))

    def march():
        reports, broken, _ = discover_cur(landing)
        assert broken == []
        (delivery,) = [d for d in reports if d.billing_period == "2024-03"]
        return delivery

    first = march()
    assert first.assembly_id.startswith("files-") and first.not_ready == ""
    assert [f.key for f in first.files] == [MONTH_3]
    os.utime(tmp_path / MONTH_3, (1_712_000_000, 1_712_000_000))
    second = march()
    assert second.assembly_id != first.assembly_id
    assert second.created_at == datetime.fromtimestamp(1_712_000_000, UTC)


def test_missing_status_table_waits_with_the_fix(tmp_path):
    deliver(READY, tmp_path)
    shutil.rmtree(tmp_path / STATUS)
    candidates = scan_aws_cur(LocalLandingZone(root=str(tmp_path)), load_rules(None), NOW)
    assert [c.complete for c in candidates] == [False, False]
    assert candidates[0].reason == (
        f"{tmp_path / STATUS} (the report's cost_and_usage_data_status table) is missing, so "
        "nothing says AWS has finished rewriting the year=/month= files. Fix: copy the status "
        "table with the report (AWS writes it beside the data)"
    )
