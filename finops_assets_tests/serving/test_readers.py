"""Readers never block the pipeline: a separate process holds the serving catalog open and
queries it in a loop (and reads the Parquet files) while a backfill rewrites the warehouse and
the publish that follows rewrites the serving zone. Both succeed, no reader ever sees an error,
the held connection keeps one consistent snapshot and new connections see the backfill."""

import json
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

import dagster as dg
import duckdb

from finops_assets.defs.serving.sensors import PUBLISH_JOB, PUBLISH_OP, publish_request
from finops_assets.lib import serving
from finops_assets.samples.focus import generate_sample_exports
from finops_assets_tests.conftest import failure_messages

READER = r"""
import json, sys, time, duckdb, pyarrow.parquet as pq
mode, snapshot, stop, log, folder = sys.argv[1:6]
SQL = "SELECT count(*), CAST(sum(BilledCost) AS VARCHAR) FROM core.cost_facts"
held = duckdb.connect(snapshot, read_only=True) if mode == "held" else None


def fresh():
    with duckdb.connect(snapshot, read_only=True) as con:  # a new connection for every query
        return con.execute(SQL).fetchone()


queries = {"held": lambda: held.execute(SQL).fetchone()} if held else {
    "fresh": fresh,
    "files": lambda: (pq.read_table(folder, columns=["BilledCost"]).num_rows, None),
}
with open(log, "a") as out:
    while True:
        line = {}
        for name, query in queries.items():
            try:
                rows, billed = query()
                line[name] = {"rows": rows, "billed": billed}
            except Exception as error:
                line[name] = {"error": f"{type(error).__name__}: {error}"}
        out.write(json.dumps(line) + "\n")
        out.flush()
        try:
            open(stop).close()
            break
        except FileNotFoundError:
            time.sleep(0.02)
"""


def publish(pipeline, run_config=None):
    job = pipeline.defs.resolve_job_def(PUBLISH_JOB)
    result = job.execute_in_process(
        instance=pipeline.instance, run_config=run_config, raise_on_error=False
    )
    assert result.success, failure_messages(result)
    return result


def warehouse_totals(pipeline):
    (rows, billed) = pipeline.query(
        "SELECT count(*), CAST(sum(BilledCost) AS VARCHAR) FROM core.cost_facts"
    )[0]
    return {"rows": rows, "billed": billed}


def reader_lines(log):
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_readers_of_the_serving_zone_never_fail_a_backfill_nor_see_half_a_publish(
    pipeline, tmp_path
):
    generate_sample_exports(pipeline.landing, date(2025, 1, 1), 8, 300, 3)
    first = pipeline.materialize("2025-01-01", "2025-01-03")
    assert first.success, failure_messages(first)
    publish(pipeline)
    before = warehouse_totals(pipeline)
    snapshot = serving.snapshot_path(tmp_path / "serving")
    assert snapshot.exists()

    stop = tmp_path / "stop"
    logs = {mode: tmp_path / f"{mode}.jsonl" for mode in ("held", "fresh")}
    folder = tmp_path / "serving" / "core" / "cost_facts"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, mode, str(snapshot), str(stop), str(log), str(folder)]
        )
        for mode, log in logs.items()
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(log.exists() and reader_lines(log) for log in logs.values()):
            assert time.monotonic() < deadline, "the readers never queried"
            time.sleep(0.1)

        # The backfill rewrites days 1-3 and adds 4-7 while the reader holds its connection.
        backfill = pipeline.materialize("2025-01-01", "2025-01-07")
        assert backfill.success, failure_messages(backfill)
        # What the daemon's sensor would request for this run: its schemas and days.
        records = pipeline.instance.get_records_for_run(
            backfill.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        request = publish_request(records, backfill.run_id)
        config = request.run_config["ops"][PUBLISH_OP]["config"]
        assert config["schemas"] == ["core", "mart"]
        assert config["days"] == [f"2025-01-0{d}" for d in range(1, 8)]
        publish(pipeline, request.run_config)
        after = warehouse_totals(pipeline)
        assert after["rows"] > before["rows"]

        deadline = time.monotonic() + 30
        while (
            reader_lines(logs["fresh"])[-1]["fresh"].get("rows") != after["rows"]
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=30)

    held, fresh = reader_lines(logs["held"]), reader_lines(logs["fresh"])
    errors = [v for line in held + fresh for v in line.values() if "error" in v]
    assert errors == []
    assert len(held) > 10 and len(fresh) > 10  # they really read throughout
    # The held connection reads one consistent snapshot from start to end: what was published
    # when it connected. Connections opened later see the backfill, to the cent.
    assert {(line["held"]["rows"], line["held"]["billed"]) for line in held} == {
        (before["rows"], before["billed"])
    }
    assert fresh[0]["fresh"] == before
    assert fresh[-1]["fresh"] == after
    assert Decimal(fresh[-1]["fresh"]["billed"]) == Decimal(after["billed"])
    # File readers (pyarrow on the Parquet zone) only ever see whole days, old or new.
    assert fresh[-1]["files"]["rows"] == after["rows"]
    assert all(line["files"]["rows"] >= before["rows"] for line in fresh)
    with duckdb.connect(str(snapshot), read_only=True) as reader:
        assert (
            reader.execute("SELECT count(*) FROM mart.daily_cost_by_team").fetchone()[0]
            == (pipeline.query("SELECT count(*) FROM mart.daily_cost_by_team")[0][0])
        )
