"""Atomic partition replaces on a real DuckDB file."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib import warehouse as wh

DAY1, DAY2 = date(2025, 1, 1), date(2025, 1, 2)


def rows(con, table="core.t"):
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "warehouse.duckdb")


def seed(con):
    wh.replace_partitions(
        con,
        "core.t",
        "SELECT DATE '2025-01-01' AS charge_date, 1.25::DECIMAL(38,12) AS cost, 'a' AS name",
        [DAY1],
    )
    wh.replace_partitions(
        con,
        "core.t",
        "SELECT DATE '2025-01-02' AS charge_date, 2.50::DECIMAL(38,12) AS cost, 'b' AS name",
        [DAY2],
    )


def test_replace_only_touches_its_day(db):
    with wh.connect(db) as con:
        seed(con)
        result = wh.replace_partitions(
            con,
            "core.t",
            "SELECT DATE '2025-01-01' AS charge_date, 9.00::DECIMAL(38,12) AS cost, 'c' AS name",
            [DAY1],
        )
        assert (result.rows_deleted, result.rows_inserted) == (1, 1)
        assert rows(con) == [
            (DAY1, Decimal("9.000000000000"), "c"),
            (DAY2, Decimal("2.500000000000"), "b"),
        ]


def test_insert_matches_columns_by_name_not_position(db):
    with wh.connect(db) as con:
        seed(con)
        # Same columns, different order: a positional insert would put 'z' into cost.
        wh.replace_partitions(
            con,
            "core.t",
            "SELECT 'z' AS name, 7.5::DECIMAL(38,12) AS cost, DATE '2025-01-01' AS charge_date",
            [DAY1],
        )
        assert con.execute(
            "SELECT name, cost FROM core.t WHERE charge_date = ?", [DAY1]
        ).fetchall() == [("z", Decimal("7.500000000000"))]


def test_new_column_is_added_nullable_and_old_partitions_kept(db):
    with wh.connect(db) as con:
        seed(con)
        result = wh.replace_partitions(
            con,
            "core.t",
            "SELECT DATE '2025-01-02' AS charge_date, 3::DECIMAL(38,12) AS cost, 'b' AS name, 'eu' AS region",
            [DAY2],
        )
        assert result.schema_change.added_columns == (("region", "VARCHAR"),)
        assert rows(con) == [
            (DAY1, Decimal("1.250000000000"), "a", None),
            (DAY2, Decimal("3.000000000000"), "b", "eu"),
        ]


def test_failed_insert_rolls_back_delete_and_schema_change(db):
    with wh.connect(db) as con:
        seed(con)
        with pytest.raises(duckdb.ConversionException):
            wh.replace_partitions(
                con,
                "core.t",
                "SELECT DATE '2025-01-01' AS charge_date, 'oops' AS cost, 'x' AS name, 1 AS newcol",
                [DAY1],
            )
        assert rows(con) == [
            (DAY1, Decimal("1.250000000000"), "a"),
            (DAY2, Decimal("2.500000000000"), "b"),
        ]
        assert list(wh.table_columns(con, "core.t")) == ["charge_date", "cost", "name"]


def test_rows_outside_the_window_are_refused(db):
    with wh.connect(db) as con:
        seed(con)
        with pytest.raises(wh.PartitionWriteError, match="1 of 1 rows"):
            wh.replace_partitions(
                con,
                "core.t",
                "SELECT DATE '2025-01-02' AS charge_date, 5::DECIMAL(38,12) AS cost, 'x' AS name",
                [DAY1],
            )
        assert len(rows(con)) == 2


def test_validation_failure_rolls_back(db):
    def refuse(con):
        raise ValueError("contract broken")

    with wh.connect(db) as con:
        seed(con)
        with pytest.raises(ValueError, match="contract broken"):
            wh.replace_partitions(
                con,
                "core.t",
                "SELECT DATE '2025-01-01' AS charge_date, 5::DECIMAL(38,12) AS cost, 'x' AS name",
                [DAY1],
                validate=refuse,
            )
        assert rows(con)[0] == (DAY1, Decimal("1.250000000000"), "a")


def _hold_lock(db, seconds, started):
    with wh.connect(db) as con:
        con.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
        started.set()
        time.sleep(seconds)


def test_second_process_waits_for_the_lock_instead_of_failing(db):
    started = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(db, 1.5, started))
    holder.start()
    assert started.wait(10)
    t0 = time.monotonic()
    with wh.connect(db, lock_timeout_seconds=30) as con:
        waited = time.monotonic() - t0
        assert con.execute("SELECT count(*) FROM held").fetchone() == (0,)
    holder.join(10)
    assert waited >= 0.5  # it queued behind the holder rather than raising a DuckDB lock error


def test_lock_timeout_names_the_lock_file(db):
    started = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(db, 3, started))
    holder.start()
    assert started.wait(10)
    with (
        pytest.raises(wh.WarehouseLockTimeout, match=r"warehouse\.duckdb\.lock"),
        wh.connect(db, lock_timeout_seconds=0.3),
    ):
        pass
    holder.join(10)


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from finops_assets.lib import warehouse as wh
    db = sys.argv[1]
    def validate(con):
        print("INSERTED", flush=True)
        time.sleep(60)  # killed here: after delete + insert, before commit
    with wh.connect(db) as con:
        wh.replace_partitions(
            con, "core.t",
            "SELECT DATE '2025-01-01' AS charge_date, 0::DECIMAL(38,12) AS cost, 'new' || range AS name FROM range(200000)",
            [date(2025, 1, 1)], validate=validate)
    """
)


def test_killed_writer_loses_nothing(db):
    with wh.connect(db) as con:
        seed(con)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, db],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert writer.stdout.readline().strip() == "INSERTED"
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    assert writer.returncode == -signal.SIGKILL
    with wh.connect(db) as con:
        assert rows(con) == [
            (DAY1, Decimal("1.250000000000"), "a"),
            (DAY2, Decimal("2.500000000000"), "b"),
        ]
