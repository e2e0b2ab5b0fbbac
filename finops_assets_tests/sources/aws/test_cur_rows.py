"""What a CUR's rows must be before anything is written: null tokens read as empty, values that
do not parse named (file, column as delivered, sample, count), CSVs read in the wrong dialect
explained, rows dated outside the report's billing period counted and handled per
``rules.deliveries.rows_outside_period``, and a month whose rows fall on none of its days refused.

The reports are tiny hand-made legacy CURs (column names from the AWS CUR data dictionary)."""

import csv
import gzip
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from finops_assets_tests.conftest import (
    failed_checks,
    failure_messages,
    run_metadata,
    with_rows_outside_period,
)

REPORT = "acme"
HEADER = [
    "identity/LineItemId",
    "identity/TimeInterval",
    "bill/InvoiceId",
    "bill/BillingEntity",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/Operation",
    "lineItem/ResourceId",
    "lineItem/UsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedRate",
    "lineItem/UnblendedCost",
    "lineItem/BlendedCost",
    "lineItem/LineItemDescription",
    "product/ProductName",
    "product/region",
    "pricing/publicOnDemandCost",
    "pricing/unit",
    "resourceTags/user:team",
]
PERIODS = {
    "2024-02": ("20240201-20240301", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"),
    "2024-03": ("20240301-20240401", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"),
    "2024-04": ("20240401-20240501", "2024-04-01T00:00:00Z", "2024-05-01T00:00:00Z"),
}


def row(period: str, day: str, cost: str, line_type: str = "Usage", **cells: str) -> dict:
    """One CUR line: usage from ``day`` 00:00 to 01:00 UTC in the report of ``period``."""
    _, start, end = PERIODS[period]
    values = {
        "identity/LineItemId": f"{period}-{day}-{cost}",
        "identity/TimeInterval": f"{day}T00:00:00Z/{day}T01:00:00Z",
        "bill/InvoiceId": "",
        "bill/BillingEntity": "AWS",
        "bill/PayerAccountId": "012345678901",
        "bill/BillingPeriodStartDate": start,
        "bill/BillingPeriodEndDate": end,
        "lineItem/UsageAccountId": "012345678901",
        "lineItem/LineItemType": line_type,
        "lineItem/UsageStartDate": f"{day}T00:00:00Z" if day else "",
        "lineItem/UsageEndDate": f"{day}T01:00:00Z" if day else "",
        "lineItem/ProductCode": "AmazonEC2",
        "lineItem/UsageType": "BoxUsage:t3.micro",
        "lineItem/Operation": "RunInstances",
        "lineItem/ResourceId": "i-0abc",
        "lineItem/UsageAmount": "1",
        "lineItem/CurrencyCode": "USD",
        "lineItem/UnblendedRate": cost,
        "lineItem/UnblendedCost": cost,
        "lineItem/BlendedCost": cost,
        "lineItem/LineItemDescription": "t3.micro hours",
        "product/ProductName": "Amazon Elastic Compute Cloud",
        "product/region": "us-east-1",
        "pricing/publicOnDemandCost": cost,
        "pricing/unit": "Hrs",
        "resourceTags/user:team": "web",
    }
    values.update(cells)
    return values


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def deliver(landing: Path, period: str, text: str, assembly: str | None = None) -> str:
    """``text`` as the one gzipped part of an assembly, named by the period's manifest; returns
    the part's landing key."""
    folder, _, _ = PERIODS[period]
    assembly = assembly or f"assembly-{period}"
    part = landing / "aws-cur" / REPORT / folder / assembly / f"{REPORT}-00001.csv.gz"
    part.parent.mkdir(parents=True)
    with gzip.open(part, "wt", newline="") as f:
        f.write(text)
    (part.parent.parent / f"{REPORT}-Manifest.json").write_text(
        json.dumps(
            {
                "assemblyId": assembly,
                "reportKeys": [f"cur/{REPORT}/{folder}/{assembly}/{REPORT}-00001.csv.gz"],
            }
        )
    )
    return part.relative_to(landing).as_posix()


def billed_by_day(pipeline) -> list[tuple[str, str, Decimal]]:
    return pipeline.query(
        "SELECT charge_date::VARCHAR, BillingCurrency, sum(BilledCost) FROM core.cost_facts "
        "GROUP BY ALL ORDER BY ALL"
    )


def load(pipeline, start: str, end: str):
    return pipeline.materialize(start, end, ["raw/aws_cur", "core/cost_facts"])


# --- null tokens and values that do not parse --------------------------------------------------
def test_null_tokens_are_empty_cells(pipeline):
    deliver(
        pipeline.landing,
        "2024-03",
        csv_text(
            [
                row("2024-03", "2024-03-01", "1.25", **{"pricing/publicOnDemandCost": "None"}),
                row("2024-03", "2024-03-01", "0.75", **{"lineItem/UsageAmount": "null"}),
                row("2024-03", "2024-03-02", "2.00", **{"lineItem/UnblendedRate": "\\N"}),
                row("2024-03", "2024-03-02", "0.10", **{"lineItem/BlendedCost": "NULL"}),
                row("2024-03", "2024-03-02", "0.05", **{"resourceTags/user:team": "None"}),
            ]
        ),
    )
    result = load(pipeline, "2024-03-01", "2024-03-31")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert billed_by_day(pipeline) == [
        ("2024-03-01", "USD", Decimal("2.000000000000")),
        ("2024-03-02", "USD", Decimal("2.150000000000")),
    ]
    assert pipeline.query(
        "SELECT count(*) FILTER (pricing_public_on_demand_cost IS NULL), "
        "count(*) FILTER (line_item_usage_amount IS NULL), "
        "count(*) FILTER (line_item_unblended_rate IS NULL), "
        "count(*) FILTER (line_item_blended_cost IS NULL), "
        "count(*) FILTER (x_ResourceTags = '{}') FROM raw.aws_cur"
    ) == [(1, 1, 1, 1, 1)]


def test_raw_keeps_a_snapshot_the_provider_cannot_change(pipeline):
    """raw.aws_cur is a typed view over snapshots of the delivered files (lib.snapshots): once
    loaded, the landing zone may be overwritten or emptied and raw (and a rebuild of the facts
    from it) still holds what was loaded, with its lineage."""
    key = deliver(
        pipeline.landing,
        "2024-03",
        csv_text([row("2024-03", "2024-03-01", "1.25"), row("2024-03", "2024-03-02", "2.00")]),
    )
    result = load(pipeline, "2024-03-01", "2024-03-31")
    assert result.success, failure_messages(result)
    loaded = billed_by_day(pipeline)
    assert pipeline.query(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'aws_cur'"
    ) == [("VIEW",)]
    zone = Path(pipeline.warehouse).with_suffix(".raw") / "raw.aws_cur"
    assert len(list(zone.glob("*.parquet"))) == 1  # the CSV, converted once
    # The provider overwrites the part in place (no new assembly), then the bucket is emptied.
    part = pipeline.landing / key
    with gzip.open(part, "wt", newline="") as f:
        f.write(csv_text([row("2024-03", "2024-03-01", "999")]))
    result = pipeline.materialize("2024-03-01", "2024-03-31", ["core/cost_facts"])
    assert result.success, failure_messages(result)
    assert billed_by_day(pipeline) == loaded
    shutil.rmtree(pipeline.landing / "aws-cur")
    result = pipeline.materialize("2024-03-01", "2024-03-31", ["core/cost_facts"])
    assert result.success, failure_messages(result)
    assert billed_by_day(pipeline) == loaded
    assert pipeline.query("SELECT DISTINCT x_SourceFile, x_DeliveryId FROM raw.aws_cur") == [
        (key, "assembly-2024-03")
    ]


@pytest.mark.parametrize("column", ["lineItem/UnblendedCost", "pricing/publicOnDemandCost"])
def test_a_value_that_is_not_a_number_names_file_column_sample_and_rows(pipeline, column):
    key = deliver(
        pipeline.landing,
        "2024-03",
        csv_text(
            [
                row("2024-03", "2024-03-01", "1.25"),
                row("2024-03", "2024-03-02", "1.00", **{column: "abc"}),
                row("2024-03", "2024-03-03", "1.00", **{column: "abc"}),
            ]
        ),
    )
    result = load(pipeline, "2024-03-01", "2024-03-31")
    assert not result.success
    assert (
        f"{pipeline.landing / key}: column {column} has 2 row(s) whose value is not "
        "a number, e.g. ['abc', 'abc']. Fix: correct the export (no currency symbols, thousands "
        "separators, decimal commas or text in numeric and date columns; empty, None, null, NULL "
        "and \\N are read as empty) and re-deliver it; nothing was written."
    ) in failure_messages(result)
    assert not Path(pipeline.warehouse).exists() or pipeline.query(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw'"
    ) == [(0,)]


def test_a_quoted_header_line_is_reported_as_a_dialect_problem(pipeline):
    text = csv_text([row("2024-03", "2024-03-01", "1.25"), row("2024-03", "2024-03-02", "2")])
    header, rest = text.split("\n", 1)
    key = deliver(pipeline.landing, "2024-03", f'"{header}"\n{rest}')
    result = load(pipeline, "2024-03-01", "2024-03-31")
    assert not result.success
    message = failure_messages(result)
    assert "missing column" not in message
    assert (
        f"{pipeline.landing / key}: the CSV dialect was misdetected: the header line names "
        "lineItem/LineItemType but the file was read with delimiter ',' as 26 column(s) "
        "(2024-03-2024-03-01-1.25, 2024-03-01T00:00:00Z/2024-03-01T01:00:00Z, column02, ...); the "
        "header line is split by ',' and wrapped in quotes as one field. AWS writes CUR files "
        "comma-delimited, with an unquoted header line and '.' as the decimal point. Fix: "
        "re-export the report (or convert the file back: a file re-saved by a spreadsheet is the "
        "usual cause), then re-deliver it; nothing was written."
    ) in message


# --- rows outside the report's billing period --------------------------------------------------
def three_reports(landing: Path) -> str:
    """February, March and April reports; March's also carries a February credit (a correction,
    one month back) and a row dated in April (outside its period). Returns March's part key."""
    deliver(landing, "2024-02", csv_text([row("2024-02", "2024-02-10", "1.00")]))
    march = deliver(
        landing,
        "2024-03",
        csv_text(
            [
                row("2024-03", "2024-03-05", "2.00"),
                row("2024-03", "2024-03-06", "3.00"),
                row("2024-03", "2024-02-20", "-0.50", "Credit"),
                row("2024-03", "2024-04-02", "5.00"),
            ]
        ),
    )
    deliver(landing, "2024-04", csv_text([row("2024-04", "2024-04-01", "4.00")]))
    return march


EVERY_DAY = [
    ("2024-02-10", "USD", Decimal("1.000000000000")),
    ("2024-02-20", "USD", Decimal("-0.500000000000")),
    ("2024-03-05", "USD", Decimal("2.000000000000")),
    ("2024-03-06", "USD", Decimal("3.000000000000")),
    ("2024-04-01", "USD", Decimal("4.000000000000")),
    ("2024-04-02", "USD", Decimal("5.000000000000")),
]


def test_rows_outside_period_fail_by_default_naming_file_count_and_money(pipeline):
    march = three_reports(pipeline.landing)
    result = load(pipeline, "2024-02-01", "2024-04-30")
    assert not result.success
    assert (
        "Rows dated outside their report's billing period (rules.deliveries.rows_outside_period "
        f"= fail): {pipeline.landing / march}: 1 row(s) of billing period 2024-03 dated "
        "2024-04-02..2024-04-02, Σ unblended USD 5.00. Only rows dated in the correction_months "
        "= 1 month(s) before their period are loaded into their own days; these would be lost. "
        "Fix: set deliveries.rows_outside_period to load (rows dated up to correction_months "
        "after their period land in their own days) or drop (left out, counted in the run's "
        "metadata) in the rules YAML (FINOPS_CONFIG), or re-deliver the report; nothing was "
        "written."
    ) in failure_messages(result)


def test_rows_outside_period_load_places_them_in_their_own_days(pipeline, tmp_path):
    three_reports(with_rows_outside_period(pipeline, tmp_path, "load").landing)
    result = load(pipeline, "2024-02-01", "2024-04-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert billed_by_day(pipeline) == EVERY_DAY
    assert pipeline.query(
        "SELECT x_BillingPeriod FROM raw.aws_cur WHERE charge_date = DATE '2024-04-02'"
    ) == [("2024-03",)]
    assert run_metadata(result, "raw/aws_cur", "rows_outside_period") == {0}


def test_rows_outside_period_drop_counts_them_in_the_metadata(pipeline, tmp_path):
    three_reports(with_rows_outside_period(pipeline, tmp_path, "drop").landing)
    result = load(pipeline, "2024-02-01", "2024-04-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert billed_by_day(pipeline) == [d for d in EVERY_DAY if d[0] != "2024-04-02"]
    assert run_metadata(result, "raw/aws_cur", "rows_outside_period") == {1}
    assert run_metadata(result, "raw/aws_cur", "rows_outside_period_unblended") == {"USD 5.00"}


# --- a month whose rows fall on none of its days ------------------------------------------------
@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (
            "2023-11-01",
            "all 2 row(s) are dated outside 2024-03 and the correction_months = 1 month(s) "
            "before it: usage starts run from 2023-11-01 to "
            "2023-11-01 (2023-11: 2 row(s))",
        ),
        ("", "none of its 2 row(s) has a usage start date (lineItem/UsageStartDate is empty)"),
    ],
)
def test_a_month_yielding_no_row_for_its_days_fails_loudly(pipeline, day, reason):
    key = deliver(
        pipeline.landing,
        "2024-03",
        csv_text([row("2024-03", day, "1.00"), row("2024-03", day, "2.00")]),
        assembly="wrong-files",
    )
    result = load(pipeline, "2024-03-01", "2024-03-31")
    assert not result.success
    assert (
        "aws-cur/acme billing period 2024-03 delivery wrong-files claims the days of 2024-03 but "
        f"yields no row for any of them: {reason}. Files: {pipeline.landing / key}. Fix: check "
        "that the report's usage dates parse (ISO 8601, UTC) and that the files belong to this "
        "billing period, then re-deliver it; nothing was written."
    ) in failure_messages(result)
