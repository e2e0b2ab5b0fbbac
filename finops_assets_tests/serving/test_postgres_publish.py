"""FINOPS_PUBLISH_URL against a real PostgreSQL server on 127.0.0.1 (Debian's binaries, started
and stopped by the test session): the marts arrive per day, partitioned by charge month and
indexed, equal to the warehouse to the cent; a failed publish leaves the previous day."""

import contextlib
from datetime import date

import psycopg2
import pytest

from finops_assets.definitions import build_defs
from finops_assets.defs.serving.sensors import PUBLISH_JOB, PUBLISH_OP
from finops_assets.samples.focus import generate_sample_exports
from finops_assets.settings import Settings
from finops_assets_tests.conftest import failure_messages
from finops_assets_tests.servers import postgres_url_fixture  # noqa: F401 - the fixture

MARTS = (
    "mart.commitment_coverage",
    "mart.commitment_utilization",
    "mart.daily_cost_by_team",
    "mart.untagged_spend",
)
MONEY = {
    "mart.daily_cost_by_team": ("billed_cost", "effective_cost"),
    "mart.untagged_spend": ("untagged_effective_cost", "total_effective_cost"),
}


@pytest.fixture
def loaded(pipeline):
    generate_sample_exports(pipeline.landing, date(2025, 1, 1), 5, 300, 9)
    result = pipeline.materialize("2025-01-01", "2025-01-03")
    assert result.success, failure_messages(result)
    return pipeline


def publish(pipeline, url, days=()):
    settings = Settings(
        landing_url=str(pipeline.landing),
        warehouse=pipeline.warehouse,
        start_date="2023-01-01",
        publish_url=url,
    )
    job = build_defs(settings).resolve_job_def(PUBLISH_JOB)
    config = {"ops": {PUBLISH_OP: {"config": {"schemas": ["mart"], "days": list(days)}}}}
    return job.execute_in_process(
        instance=pipeline.instance, run_config=config, raise_on_error=False
    )


def pg_query(url, sql, params=()):
    """Run ``sql`` in its own committed transaction; its last statement's rows."""
    with contextlib.closing(psycopg2.connect(url)) as con, con, con.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def per_day(rows):
    return {tuple(str(v) for v in row[:2]): tuple(row[2:]) for row in rows}


def totals_sql(table, placeholder):
    # PostgreSQL keeps the warehouse's column names; FOCUS's mixed-case ones are quoted there.
    money = ", ".join(f"sum({c})" for c in MONEY[table])
    return (
        f'SELECT charge_date, "BillingCurrency", count(*), {money} FROM {table} '
        f"WHERE charge_date BETWEEN {placeholder} AND {placeholder} GROUP BY 1, 2 ORDER BY 1, 2"
    )


def test_marts_replicate_per_day_partitioned_by_month_to_the_cent(loaded, postgres_url):
    url = postgres_url
    pg_query(url, "DROP SCHEMA IF EXISTS mart CASCADE; SELECT 1")
    result = publish(loaded, url)
    assert result.success, failure_messages(result)
    window = (date(2025, 1, 1), date(2025, 1, 3))
    for table in MONEY:
        warehouse = per_day(loaded.query(totals_sql(table, "?"), list(window)))
        replica = per_day(pg_query(url, totals_sql(table, "%s"), window))
        assert warehouse and replica == warehouse, table
    for table in MARTS:
        (count,) = loaded.query(f"SELECT count(*) FROM {table}")[0]
        assert pg_query(url, f"SELECT count(*) FROM {table}") == [(count,)], table

    # Partitioned by charge month, indexed for the dashboards' filters.
    assert pg_query(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'daily_cost_by_team'",
    ) == [("daily_cost_by_team_2025_01",)]
    indexes = {
        name
        for (name,) in pg_query(
            url, "SELECT indexname FROM pg_indexes WHERE tablename = 'daily_cost_by_team'"
        )
    }
    assert {
        "daily_cost_by_team_charge_date_idx",
        "daily_cost_by_team_team_idx",
        "daily_cost_by_team_department_idx",
        "daily_cost_by_team_billingcurrency_idx",
    } <= indexes
    # Exact money: numeric(38, 12), not floats.
    assert pg_query(
        url,
        "SELECT data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_name = 'daily_cost_by_team' AND column_name = 'billed_cost'",
    ) == [("numeric", 38, 12)]


def test_a_failed_publish_leaves_the_previous_day(loaded, postgres_url):
    url = postgres_url
    pg_query(url, "DROP SCHEMA IF EXISTS mart CASCADE; SELECT 1")
    assert publish(loaded, url).success
    day = date(2025, 1, 2)
    sql = totals_sql("mart.daily_cost_by_team", "%s")
    before = pg_query(url, sql, (day, day))

    # The warehouse's day changes; PostgreSQL refuses the new rows (a trigger stands in for a
    # full disk or a constraint) after the day's old rows were already deleted in the same
    # transaction.
    import duckdb

    with duckdb.connect(loaded.warehouse) as con:
        con.execute(
            "UPDATE mart.daily_cost_by_team SET billed_cost = billed_cost + 1 "
            "WHERE charge_date = '2025-01-02'"
        ).fetchall()
    with contextlib.closing(psycopg2.connect(url)) as con, con, con.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION mart.refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'no space left on device (test)'; END $$ LANGUAGE plpgsql;"
            "CREATE TRIGGER refuse BEFORE INSERT ON mart.daily_cost_by_team_2025_01 "
            "FOR EACH ROW EXECUTE FUNCTION mart.refuse()"
        )
    failed = publish(loaded, url, days=[day.isoformat()])
    assert not failed.success
    message = failure_messages(failed)
    assert "mart.daily_cost_by_team 2025-01-02: no space left on device (test)" in message
    assert "rolled back, PostgreSQL keeps the day as it was" in message
    assert "finops@" not in message  # the URL's user (and any password) never shows
    assert pg_query(url, sql, (day, day)) == before

    pg_query(url, "DROP TRIGGER refuse ON mart.daily_cost_by_team_2025_01; SELECT 1")
    assert publish(loaded, url, days=[day.isoformat()]).success
    after = pg_query(url, sql, (day, day))
    assert after == loaded.query(totals_sql("mart.daily_cost_by_team", "?"), [day, day])
    assert after != before
