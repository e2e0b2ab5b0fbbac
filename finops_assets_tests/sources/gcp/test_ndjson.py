"""GCP billing export dumps as newline-delimited JSON (``bq extract --destination_format
NEWLINE_DELIMITED_JSON``), on the hand-made ``gcp_ndjson`` layout fixture: loaded through the
pipeline to the cent, settled by the sensor on their export_time, refused with the line named when
a line is broken, and every object under gcp/ accounted for."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_assets.defs.sources.gcp.billing_export import ndjson_reader_sql
from finops_assets.defs.sources.gcp.deliveries import (
    LAYOUT,
    account_landing,
    dump_name,
    first_malformed_line,
    ndjson_error,
    scan_gcp,
)
from finops_assets.lib.rules import default_rules_path, load_rules
from finops_assets.resources.landing import LocalLandingZone
from finops_assets_tests.conftest import failed_checks, failure_messages
from finops_assets_tests.paths import LAYOUTS

CASE = LAYOUTS / "gcp_ndjson"
EXPECTED = json.loads((CASE / "expected.json").read_text())
ACCOUNT = "012345-6789AB-CDEF01"
DAY1 = f"gcp/{ACCOUNT}/usage_date=2024-03-01"
DAY2 = f"gcp/{ACCOUNT}/usage_date=2024-03-02"
SHARD0 = f"{DAY1}/gcp_billing_export_v1_012345_6789AB_CDEF01-000000000000.json"
SHARD1 = f"{DAY1}/gcp_billing_export_v1_012345_6789AB_CDEF01-000000000001.json"
GZ_SHARD = f"{DAY2}/gcp_billing_export_v1_012345_6789AB_CDEF01-000000000000.json.gz"
ASSETS = ["raw/gcp_billing", "core/cost_facts"]


def expected_by_day(basis: str) -> dict[tuple[str, str], Decimal]:
    """(day, currency) -> the fixture's expected figure (exact: 4 decimals)."""
    return {
        (day, currency): Decimal(amount)
        for day, by_currency in EXPECTED["totals"][basis]["by_day"].items()
        for currency, amount in by_currency.items()
    }


def facts_by_day(pipeline, column: str) -> dict[tuple[str, str], Decimal]:
    return {
        (day.isoformat(), currency): total
        for day, currency, total in pipeline.query(
            f"SELECT charge_date, BillingCurrency, sum({column}) FROM core.cost_facts "
            "WHERE x_Source = 'gcp_billing' GROUP BY 1, 2 ORDER BY 1, 2"
        )
    }


def deliver(landing: Path) -> None:
    shutil.copytree(CASE / "gcp", landing / "gcp", dirs_exist_ok=True)


def with_policy(pipeline, tmp_path: Path, policy: str):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        default_rules_path()
        .read_text()
        .replace("promotion_credits: discount", f"promotion_credits: {policy}")
    )
    pipeline.config_path = str(rules)
    return pipeline


def landing_check(result):
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.to_user_string() == "raw/gcp_billing:landing_accounted_for"
    ]
    return evaluation


@pytest.mark.parametrize(
    ("policy", "basis", "first_day_net"),
    [
        ("discount", "net_cost", "1.50"),  # 2.20 cost - 0.30 sustained use - 0.40 promotion
        ("payment", "net_cost_excluding_promotion", "1.90"),  # the promotion pays, not discounts
    ],
)
def test_ndjson_dumps_load_to_the_cent_per_day_and_currency(
    pipeline, tmp_path, policy, basis, first_day_net
):
    deliver(pipeline.landing)
    with_policy(pipeline, tmp_path, policy)
    result = pipeline.materialize("2024-03-01", "2024-03-02", assets=ASSETS)
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []

    expected = expected_by_day(basis)
    assert expected == {
        ("2024-03-01", "EUR"): Decimal(first_day_net),
        ("2024-03-02", "EUR"): Decimal("1.10"),  # 1.40 cost - 0.30 sustained use
    }
    assert facts_by_day(pipeline, "BilledCost") == expected
    assert facts_by_day(pipeline, "EffectiveCost") == expected
    assert facts_by_day(pipeline, "ListCost") == expected_by_day("cost_at_list")
    raw = pipeline.query(
        "SELECT charge_date, currency, count(*), sum(cost), "
        "sum(list_sum(list_transform(credits, lambda c: c.amount))) "
        "FROM raw.gcp_billing GROUP BY 1, 2 ORDER BY 1"
    )
    assert [(d.isoformat(), c, n) for d, c, n, _, _ in raw] == [
        ("2024-03-01", "EUR", EXPECTED["row_counts"]["2024-03-01"]),
        ("2024-03-02", "EUR", EXPECTED["row_counts"]["2024-03-02"]),
    ]
    assert {(d.isoformat(), c): cost for d, c, _, cost, _ in raw} == (expected_by_day("cost"))
    assert {(d.isoformat(), c): credit for d, c, _, _, credit in raw} == (
        expected_by_day("credits")
    )
    # Text as exported (\u0026 is '&'), fractional-second timestamps, absent fields as NULL, the
    # tax and adjustment rows mapped, the day's watermark recorded.
    assert pipeline.query(
        "SELECT count(*) FROM raw.gcp_billing WHERE sku_description = "
        "'Analysis & Querying (on-demand)'"
    ) == [(1,)]
    assert pipeline.query(
        "SELECT charge_date, max(x_ExportWatermark) FROM raw.gcp_billing GROUP BY 1 ORDER BY 1"
    ) == [
        (date(2024, 3, 1), datetime(2024, 3, 2, 3, 12, 55, 104412, tzinfo=UTC)),
        (date(2024, 3, 2), datetime(2024, 3, 3, 2, 58, 31, 667240, tzinfo=UTC)),
    ]
    assert pipeline.query(
        "SELECT count(*) FILTER (WHERE location_zone IS NULL), "
        "count(*) FILTER (WHERE adjustment_id = 'adj-7d3c2b1a'), count(resource_name) "
        "FROM raw.gcp_billing"
    ) == [(3, 1, 0)]
    assert dict(
        pipeline.query("SELECT ChargeCategory, count(*) FROM core.cost_facts GROUP BY 1")
    ) == {"Usage": 4, "Tax": 1, "Adjustment": 1}
    assert pipeline.query(
        "SELECT DISTINCT x_PromotionPolicy, x_DeliveryId FROM raw.gcp_billing ORDER BY 2"
    ) == [
        (policy, f"{ACCOUNT}/usage_date=2024-03-01/gcp_billing_export_v1_012345_6789AB_CDEF01"),
        (policy, f"{ACCOUNT}/usage_date=2024-03-02/gcp_billing_export_v1_012345_6789AB_CDEF01"),
    ]
    check = landing_check(result)
    assert check.passed
    assert check.description == "All 3 object(s) under gcp/ accounted for."


def test_parquet_and_ndjson_dumps_of_one_day_merge_and_strays_are_reported(pipeline):
    deliver(pipeline.landing)
    # A later incremental dump of 2024-03-02 written as Parquet: the day's Compute Engine row
    # again (cost 1.50, sustained-use credit -0.30) in a newer export_time batch.
    parquet = pipeline.landing / DAY2 / "incremental-20240303T050000-000000000000.parquet"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "COPY (SELECT * REPLACE ("
            "CAST(usage_start_time AS TIMESTAMPTZ) AS usage_start_time, "
            "CAST(usage_end_time AS TIMESTAMPTZ) AS usage_end_time, "
            "TIMESTAMPTZ '2024-03-03 05:00:00+00' AS export_time) "
            f"FROM {ndjson_reader_sql([str(pipeline.landing / GZ_SHARD)])} "
            f"WHERE cost_type = 'regular') TO '{parquet}' (FORMAT parquet)"
        )
    stray = pipeline.landing / DAY1 / "gcp_billing_export_v1_012345_6789AB_CDEF01-000000000000.avro"
    stray.write_bytes(b"Obj\x01")
    result = pipeline.materialize("2024-03-01", "2024-03-02", assets=ASSETS)
    assert result.success, failure_messages(result)
    assert facts_by_day(pipeline, "BilledCost") == {
        ("2024-03-01", "EUR"): Decimal("1.50"),
        ("2024-03-02", "EUR"): Decimal("2.30"),  # 1.10 + 1.50 - 0.30
    }
    assert pipeline.query(
        "SELECT count(*), max(x_ExportWatermark) FROM raw.gcp_billing "
        "WHERE charge_date = '2024-03-02'"
    ) == [(3, datetime(2024, 3, 3, 5, tzinfo=UTC))]
    (second_day,) = [
        c
        for c in scan_gcp(
            LocalLandingZone(root=str(pipeline.landing)),
            load_rules(None),
            datetime(2024, 3, 4, tzinfo=UTC),
        )
        if c.period == "2024-03-02"
    ]
    assert (second_day.delivery_id, second_day.complete, second_day.files) == (
        "export_time=2024-03-03T05:00:00+00:00",
        True,
        2,
    )
    # The Avro file is not read: the warning check names it with the layout expected.
    assert failed_checks(result) == ["raw/gcp_billing:landing_accounted_for"]
    check = landing_check(result)
    assert check.severity.value == "WARN"
    assert check.description == (
        f"1 object(s) under gcp/ are not understood; e.g. {stray.resolve()}: "
        "an Avro dump, which is not read here; dump the export as Parquet (EXPORT DATA format "
        "PARQUET, bq extract --destination_format PARQUET) or newline-delimited JSON (bq extract "
        f"--destination_format NEWLINE_DELIMITED_JSON). Expected layout: {LAYOUT}"
    )
    assert check.metadata["objects_loaded"].value == 4


def test_scan_settles_ndjson_days_by_their_export_time(tmp_path):
    deliver(tmp_path)
    landing = LocalLandingZone(root=str(tmp_path))
    rules = load_rules(None)  # deliveries.gcp_settle_minutes: 60
    assert rules.deliveries.gcp_settle_minutes == 60

    def scanned(now):
        return [
            (c.period, c.delivery_id, c.complete, c.reason, c.files)
            for c in scan_gcp(landing, rules, now)
        ]

    first_settles = "2024-03-02T04:12:55.104412+00:00"
    second_settles = "2024-03-03T03:58:31.667240+00:00"
    waiting = (
        "export_time watermark {} is recent: the day may still change; loaded once it settles "
        "at {} (deliveries.gcp_settle_minutes)"
    )
    assert scanned(datetime(2024, 3, 2, 4, tzinfo=UTC)) == [
        (
            "2024-03-01",
            "export_time=2024-03-02T03:12:55.104412+00:00",
            False,
            waiting.format("2024-03-02T03:12:55.104412+00:00", first_settles),
            2,
        ),
        (
            "2024-03-02",
            "export_time=2024-03-03T02:58:31.667240+00:00",
            False,
            waiting.format("2024-03-03T02:58:31.667240+00:00", second_settles),
            1,
        ),
    ]
    at = datetime(2024, 3, 3, 3, 30, tzinfo=UTC)
    assert [(p, complete) for p, _, complete, _, _ in scanned(at)] == [
        ("2024-03-01", True),
        ("2024-03-02", False),
    ]
    assert [
        complete for _, _, complete, _, _ in scanned(datetime.fromisoformat(second_settles))
    ] == [
        True,
        True,
    ]


def test_account_landing_sorts_every_object_under_gcp(tmp_path):
    deliver(tmp_path)
    (tmp_path / "gcp" / "README.txt").write_text("dumps go here")
    (tmp_path / DAY1 / "notes.csv").write_text("a,b\n")
    (tmp_path / DAY2 / "retry-000000000000.json").write_bytes(b"")
    landing = LocalLandingZone(root=str(tmp_path))
    rows = account_landing(landing, load_rules(None), datetime(2024, 3, 3, 3, 30, tzinfo=UTC))
    expected_layout = f"Expected layout: {LAYOUT}"
    assert [(r.key, r.status, r.reason) for r in rows] == [
        (SHARD0, "loaded", ""),
        (SHARD1, "loaded", ""),
        (
            f"{DAY1}/notes.csv",
            "not_understood",
            "not a Parquet or newline-delimited JSON file; dump the export as Parquet (EXPORT "
            "DATA format PARQUET, bq extract --destination_format PARQUET) or newline-delimited "
            f"JSON (bq extract --destination_format NEWLINE_DELIMITED_JSON). {expected_layout}",
        ),
        (
            GZ_SHARD,
            "waiting",
            "export_time watermark 2024-03-03T02:58:31.667240+00:00 is recent: the day may "
            "still change; loaded once it settles at 2024-03-03T03:58:31.667240+00:00 "
            "(deliveries.gcp_settle_minutes)",
        ),
        (
            f"{DAY2}/retry-000000000000.json",
            "not_understood",
            f"empty file (0 bytes), a cut upload; re-run the dump. {expected_layout}",
        ),
        (
            "gcp/README.txt",
            "not_understood",
            "not in the GCP layout (a file in a usage_date=YYYY-MM-DD folder of an account). "
            + expected_layout,
        ),
    ]
    assert rows[0].delivery_id == "export_time=2024-03-02T03:12:55.104412+00:00"
    assert dump_name("gcp_billing_export_v1_X-000000000003.ndjson.gz") == "gcp_billing_export_v1_X"


def day_snapshot(pipeline, day: str) -> list[tuple]:
    """Rows and money of one day in raw and in the facts: what a failed load must not touch."""
    return pipeline.query(
        "SELECT (SELECT count(*) FROM raw.gcp_billing WHERE charge_date = $day), "
        "(SELECT sum(cost) FROM raw.gcp_billing WHERE charge_date = $day), "
        "(SELECT count(*) FROM core.cost_facts WHERE charge_date = $day), "
        "(SELECT sum(BilledCost) FROM core.cost_facts WHERE charge_date = $day)",
        {"day": day},
    )


def break_line(path: Path, line: int) -> None:
    """Cut line ``line`` (1-based) of an NDJSON file in half, as a truncated copy would."""
    lines = path.read_text().splitlines()
    lines[line - 1] = lines[line - 1][: len(lines[line - 1]) // 2]
    path.write_text("\n".join(lines) + "\n")


def test_malformed_ndjson_line_fails_naming_the_file_the_line_and_the_fix(pipeline):
    deliver(pipeline.landing)
    first = pipeline.materialize("2024-03-01", assets=ASSETS)
    assert first.success, failure_messages(first)
    good = day_snapshot(pipeline, "2024-03-01")
    assert good == [(4, Decimal("2.200000000000"), 4, Decimal("1.500000000000"))]

    broken = pipeline.landing / SHARD1
    break_line(broken, 2)
    assert first_malformed_line(str(broken))[0] == 2
    result = pipeline.materialize("2024-03-01", assets=ASSETS)
    assert not result.success
    message = failure_messages(result)
    url = str(broken.resolve())
    assert (
        f"{url}: cannot read this newline-delimited JSON dump: line 2 is not valid JSON" in message
    )
    assert "Fix: every line must be one export row as a JSON object" in message
    assert "re-run the extract of this usage day" in message
    assert day_snapshot(pipeline, "2024-03-01") == good

    # The sensor holds the day with the same reason instead of loading it.
    (candidate,) = [
        c
        for c in scan_gcp(
            LocalLandingZone(root=str(pipeline.landing)),
            load_rules(None),
            datetime(2024, 3, 10, tzinfo=UTC),
        )
        if c.period == "2024-03-01"
    ]
    assert (candidate.delivery_id, candidate.complete) == ("unreadable", False)
    assert candidate.reason.startswith(
        f"{url}: cannot read this newline-delimited JSON dump: line 2"
    )

    # Valid JSON whose value does not fit the export's schema (usage.amount is FLOAT): DuckDB
    # names the line, the load names the file.
    rows = [json.loads(line) for line in (CASE / SHARD1).read_text().splitlines()]
    rows[0]["usage"]["amount"] = "lots"
    broken.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    result = pipeline.materialize("2024-03-01", assets=ASSETS)
    assert not result.success
    message = failure_messages(result)
    assert f"{url}: " in message
    assert 'in line 1: Failed to cast value to numerical: "lots"' in message
    assert 'in file "' not in message  # the landing URL is named, not the engine's local copy
    assert day_snapshot(pipeline, "2024-03-01") == good


def test_valid_json_of_the_wrong_type_and_gzip_lines_are_named(tmp_path):
    path = tmp_path / "dump-000000000000.json"
    lines = [json.loads(line) for line in (CASE / SHARD0).read_text().splitlines()]
    lines[1]["cost"] = "zero point five"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert first_malformed_line(str(path)) is None  # valid JSON: DuckDB names the line
    with duckdb.connect() as con, pytest.raises(duckdb.Error) as raised:
        con.execute(f"SELECT count(cost) FROM {ndjson_reader_sql([str(path)])}").fetchall()
    error = ndjson_error(raised.value, str(path), "gs://bucket/gcp/x.json")
    assert str(error).startswith(
        "gs://bucket/gcp/x.json: cannot read this newline-delimited JSON dump: JSON transform "
        'error, in line 2: Failed to cast value to numerical: "zero point five"'
    )

    gz = tmp_path / "dump-000000000001.json.gz"
    gz.write_bytes(gzip.compress(b'{"cost": 1}\n\n{"cost": \n', mtime=0))
    assert first_malformed_line(str(gz)) == (
        3,
        "column 9: Expecting value",
        '{"cost":',
    )
