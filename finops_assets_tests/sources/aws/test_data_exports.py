"""AWS Data Exports (CUR 2.0 and FOCUS 1.0) delivered as AWS delivers them: a manifest per
billing period under metadata/, data files under data/, both casings, zero-byte leftovers."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_assets.samples.aws_data_exports import generate_cur2_export
from finops_assets_tests.conftest import failed_checks, failure_messages, load_once
from finops_assets_tests.paths import REAL_SAMPLES

REAL_FOCUS = REAL_SAMPLES / "focus_1_0_sample_anonymized.csv"
EXPORT = "finops-cur2"
SPLIT = "coalesce(line_item_operation, '') NOT IN ('EKSPod-EC2', 'ECSTask-EC2')"


def listed_files(landing: Path, manifest: str) -> list[str]:
    data = json.loads((landing / manifest).read_text())
    files = []
    for uri in data["dataFiles"]:
        suffix = uri.split(f"/{EXPORT}/data/", 1)[1]
        path = landing / "aws-data-exports" / EXPORT / "data" / suffix
        if path.stat().st_size:  # zero-byte leftovers hold no rows
            files.append(str(path))
    return files


def file_sum(files: list[str], expression: str, where: str = "true") -> Decimal:
    (value,) = duckdb.execute(
        f"SELECT sum({expression}) FROM read_parquet({files}) WHERE {SPLIT} AND {where}"
    ).fetchone()
    return value


@pytest.fixture
def cur2_pipeline(pipeline):
    summary = generate_cur2_export(pipeline.landing, date(2025, 1, 20), 22, 300, 9, export=EXPORT)
    pipeline.summary = summary
    return pipeline


@pytest.fixture(scope="module")
def cur2_loaded_once(tmp_path_factory):
    summaries = []

    def deliver(landing):
        summaries.append(
            generate_cur2_export(landing, date(2025, 1, 20), 22, 300, 9, export=EXPORT)
        )

    state = load_once(tmp_path_factory.mktemp("cur2_loaded"), deliver, "2025-01-20", "2025-01-31")
    return state, summaries[0]


@pytest.fixture
def cur2_loaded(pipeline, cur2_loaded_once):
    """The export's January loaded through every asset (a copy for this test), and its summary."""
    state, summary = cur2_loaded_once
    pipeline.restore(state).summary = summary
    return pipeline


def test_cur2_export_loads_every_cent_across_casings_and_leftovers(cur2_pipeline):
    pipeline, summary = cur2_pipeline, cur2_pipeline.summary
    # January under BILLING_PERIOD=, February under billing_period=; one leftover each.
    assert [m.split("/")[3] for m in summary.manifests] == [
        "BILLING_PERIOD=2025-01",
        "billing_period=2025-02",
    ]
    # February's leftover sits unlisted beside the data; January's manifest even lists its own.
    january = pipeline.landing / summary.manifests[0]
    manifest = json.loads(january.read_text())
    manifest["dataFiles"].append(manifest["dataFiles"][0].replace("-00001.", "-00002."))
    january.write_text(json.dumps(manifest))
    result = pipeline.materialize("2025-01-20", "2025-02-10")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    files = [f for m in summary.manifests for f in listed_files(pipeline.landing, m)]
    expected = file_sum(files, "CAST(line_item_unblended_cost AS DECIMAL(38, 12))")
    assert pipeline.query("SELECT sum(BilledCost) FROM core.cost_facts") == [(expected,)]
    assert pipeline.query("SELECT sum(billed_cost) FROM mart.daily_cost_by_team") == [(expected,)]
    assert pipeline.query("SELECT DISTINCT x_Dataset FROM core.cost_facts") == [
        (f"aws-data-exports/{EXPORT}",)
    ]
    skipped = {
        e.materialization.metadata["zero_byte_files_skipped"].value
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path == ["raw", "aws_cur"]
    }
    assert skipped == {1}  # the listed zero-byte file, reported on every day of the run
    # Month finality from bill_invoice_id: January is invoiced, February still open.
    final = {
        e.materialization.partition: e.materialization.metadata["invoice_final"].value
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path == ["raw", "aws_cur"]
    }
    assert (final["2025-01-31"], final["2025-02-01"]) == (True, False)
    assert (
        sorted(day for day, is_final in final.items() if is_final)
        == [f"2025-01-{d}" for d in range(20, 32)]
        and len(final) == 22
    )
    # product_region_code (CUR 2.0) is the region; every usage row has one.
    assert pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE ChargeCategory = 'Usage' "
        "AND x_LineItemType = 'Usage' AND RegionId IS NULL"
    ) == [(0,)]
    # Tags from the resource_tags map, keys exact ("user_team"), reach the team dimension.
    team_cost = file_sum(
        files,
        "CAST(line_item_unblended_cost AS DECIMAL(38, 12))",
        "resource_tags['user_team'] = 'data-platform'",
    )
    assert team_cost > 0
    assert pipeline.query(
        "SELECT sum(billed_cost) FROM mart.daily_cost_by_team WHERE team = 'data-platform'"
    ) == [(team_cost,)]
    assert pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE json_extract_string(Tags, '$.user_team') "
        "= 'data-platform'"
    )[0][0] == int(
        duckdb.execute(
            f"SELECT count(*) FROM read_parquet({files}) WHERE {SPLIT} "
            "AND resource_tags['user_team'] = 'data-platform'"
        ).fetchone()[0]
    )


def test_rewritten_export_replaces_the_month(cur2_loaded):
    pipeline, summary = cur2_loaded, cur2_loaded.summary
    (january,) = listed_files(pipeline.landing, summary.manifests[0])
    before = file_sum([january], "CAST(line_item_unblended_cost AS DECIMAL(38, 12))")
    tax = file_sum(
        [january],
        "CAST(line_item_unblended_cost AS DECIMAL(38, 12))",
        "line_item_line_item_type = 'Tax'",
    )
    assert tax > 0
    # AWS refreshes the export: new file, same manifest path, new executionId.
    restated = january.replace("-00001.", "-00003.")
    duckdb.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN line_item_line_item_type = 'Tax' "
        f"THEN line_item_unblended_cost * 2 ELSE line_item_unblended_cost END "
        f"AS line_item_unblended_cost) FROM read_parquet('{january}')) TO '{restated}' "
        "(FORMAT parquet)"
    )
    manifest_path = pipeline.landing / summary.manifests[0]
    manifest = json.loads(manifest_path.read_text())
    manifest["dataFiles"] = [manifest["dataFiles"][0].replace("-00001.", "-00003.")]
    manifest["executionId"] = "refresh-2"
    manifest_path.write_text(json.dumps(manifest))
    result = pipeline.materialize("2025-01-20", "2025-01-31")
    assert result.success, failure_messages(result)
    assert pipeline.query("SELECT sum(BilledCost) FROM core.cost_facts") == [(before + tax,)]
    assert pipeline.query("SELECT DISTINCT x_DeliveryId FROM raw.aws_cur") == [("refresh-2",)]


def test_export_manifest_naming_a_missing_file_keeps_the_month(cur2_loaded):
    pipeline, summary = cur2_loaded, cur2_loaded.summary
    before = pipeline.query("SELECT count(*), sum(BilledCost) FROM core.cost_facts")
    manifest_path = pipeline.landing / summary.manifests[0]
    manifest = json.loads(manifest_path.read_text())
    manifest["dataFiles"].append(manifest["dataFiles"][0].replace("-00001.", "-00009."))
    manifest_path.write_text(json.dumps(manifest))
    result = pipeline.materialize("2025-01-20", "2025-01-31")
    assert not result.success
    message = failure_messages(result)
    assert f"{EXPORT}-00009.snappy.parquet but the file is missing" in message
    assert pipeline.query("SELECT count(*), sum(BilledCost) FROM core.cost_facts") == before


def test_real_focus_1_0_sample_as_an_aws_focus_export(pipeline):
    """The real FOCUS 1.0 sample's AWS rows, delivered as an AWS Data Exports FOCUS export
    (Parquet, Tags as a map), load into raw/focus with every cent and every tag."""
    folder = pipeline.landing / "aws-data-exports" / "focus" / "data" / "BILLING_PERIOD=2024-09"
    folder.mkdir(parents=True)
    part = folder / "focus-00001.snappy.parquet"
    csv = f"read_csv('{REAL_FOCUS}', all_varchar = true)"
    typed = f"read_csv('{REAL_FOCUS}', nullstr = 'NULL')"  # Parquet carries types and nulls
    duckdb.execute(
        f"""COPY (SELECT * REPLACE (
                CAST(CASE WHEN Tags IS NULL THEN MAP {{}}
                     ELSE CAST(CAST(Tags AS JSON) AS MAP(VARCHAR, VARCHAR)) END
                     AS MAP(VARCHAR, VARCHAR)) AS Tags)
            FROM {typed} WHERE ProviderName = 'AWS') TO '{part}' (FORMAT parquet)"""
    )
    meta = pipeline.landing / "aws-data-exports" / "focus" / "metadata" / "BILLING_PERIOD=2024-09"
    meta.mkdir(parents=True)
    (meta / "focus-Manifest.json").write_text(
        json.dumps(
            {
                "executionId": "focus-exec-1",
                "billingPeriod": "2024-09",
                "dataFiles": [
                    "s3://bucket/focus/data/BILLING_PERIOD=2024-09/focus-00001.snappy.parquet"
                ],
            }
        )
    )
    (expected_rows, expected_billed, tagged) = duckdb.execute(
        f"SELECT count(*), sum(CAST(BilledCost AS DECIMAL(38, 12))), "
        f"count_if(Tags IS NOT NULL AND Tags <> 'NULL') FROM {csv} WHERE ProviderName = 'AWS'"
    ).fetchone()
    assert (expected_rows, expected_billed) == (942, Decimal("18.006638618400"))
    result = pipeline.materialize("2024-09-01", "2024-09-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert pipeline.query(
        "SELECT count(*), sum(BilledCost), count_if(Tags <> '{}') FROM core.cost_facts"
    ) == [(942, expected_billed, tagged)]
    assert pipeline.query(
        "SELECT DISTINCT x_Source, x_Dataset, x_DeliveryId FROM core.cost_facts"
    ) == [("focus", "aws-data-exports/focus", "focus-exec-1")]
    # The map came through as the same JSON object the CSV carried.
    assert (
        pipeline.query(
            "SELECT json_extract_string(Tags, '$.application') FROM core.cost_facts "
            "WHERE Tags <> '{}' ORDER BY ChargePeriodStart, ResourceId LIMIT 1"
        )[0][0]
        is not None
    )


def test_sample_data_cli_writes_the_data_exports_layout(tmp_path, capsys):
    from finops_assets.cli import main

    code = main(
        [
            "sample-data",
            *("--out", str(tmp_path), "--start", "2025-03-30", "--days", "3"),
            *("--rows-per-day", "200", "--seed", "4", "--sources", "aws-exports"),
        ]
    )
    assert code == 0
    assert "Wrote AWS Data Exports CUR 2.0 export finops-cur2" in capsys.readouterr().out
    manifests = sorted(
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*-Manifest.json")
    )
    assert manifests == [
        "aws-data-exports/finops-cur2/metadata/BILLING_PERIOD=2025-03/finops-cur2-Manifest.json",
        "aws-data-exports/finops-cur2/metadata/billing_period=2025-04/finops-cur2-Manifest.json",
    ]
    assert not (tmp_path / "aws-cur").exists() and not (tmp_path / "focus").exists()
    columns = {
        name
        for (name, *_) in duckdb.execute(
            "DESCRIBE SELECT * FROM read_parquet('"
            + str(tmp_path / "aws-data-exports/finops-cur2/data/BILLING_PERIOD=2025-03")
            + "/finops-cur2-00001.snappy.parquet')"
        ).fetchall()
    }
    assert {
        "product",
        "resource_tags",
        "cost_category",
        "discount",
        "product_region_code",
    } <= columns
    assert not {"product_region", "product_servicename", "resource_tags_user_team"} & columns
