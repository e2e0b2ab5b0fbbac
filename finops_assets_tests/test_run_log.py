"""Structured run logs: every partition write prints one JSON line a log shipper can index."""

import json
from datetime import UTC, date, datetime

from finops_assets.lib import run_log
from finops_assets.samples.focus import generate_sample_exports
from finops_assets_tests.conftest import failure_messages


def test_the_record_names_table_days_rows_and_money_per_currency():
    record = run_log.partition_write_record(
        table="raw.focus",
        days=[date(2025, 1, 2), date(2025, 1, 1)],
        rows_in=10,
        rows_out=12,
        cost_in={"USD": "1.50", "EUR": 2},
        cost_out={"USD": "1.75"},
        duration_seconds=0.12345,
        run_id="r-1",
        job="__ASSET_JOB",
        tags={"finops/deliveries": "focus/aws/aws-focus@d1"},
        now=datetime(2025, 1, 3, 6, tzinfo=UTC),
    )
    assert record == {
        "event": "partition_write",
        "ts": "2025-01-03T06:00:00Z",
        "table": "raw.focus",
        "source": "focus",
        "deliveries": "focus/aws/aws-focus@d1",
        "partition": "2025-01-01..2025-01-02",
        "days": 2,
        "rows_in": 10,
        "rows_out": 12,
        "cost_in": {"EUR": "2", "USD": "1.50"},
        "cost_out": {"USD": "1.75"},
        "duration_seconds": 0.123,
        "run_id": "r-1",
        "job": "__ASSET_JOB",
    }
    assert json.loads(run_log.emit(record)) == record


def test_a_load_prints_one_json_line_per_table_write(pipeline, capfd):
    generate_sample_exports(pipeline.landing, date(2025, 1, 1), 3, 60, 4)
    capfd.readouterr()
    result = pipeline.materialize("2025-01-01", "2025-01-02")
    assert result.success, failure_messages(result)
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith('{"')]
    writes = {line["table"]: line for line in lines if line.get("event") == "partition_write"}
    assert {"raw.focus", "core.cost_facts", "core.allocated_costs"} <= set(writes)
    assert {"mart.daily_cost_by_team", "mart.untagged_spend"} <= set(writes)
    facts = writes["core.cost_facts"]
    assert facts["partition"] == "2025-01-01..2025-01-02" and facts["days"] == 2
    assert facts["run_id"] == result.run_id and facts["rows_in"] == 0
    (rows,) = pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE charge_date <= '2025-01-02'"
    )[0]
    assert facts["rows_out"] == rows
    for currency, billed in pipeline.query(
        "SELECT BillingCurrency, CAST(sum(BilledCost) AS VARCHAR) FROM core.cost_facts GROUP BY 1"
    ):
        assert facts["cost_out"][currency] == billed  # exact, per currency
    assert writes["raw.focus"]["source"] == "focus"
    assert writes["raw.focus"]["deliveries"] is None  # loaded by hand, not by a sensor
