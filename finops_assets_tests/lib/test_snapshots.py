"""lib/snapshots: a raw table kept as immutable snapshot files behind a typed view, replaced
day-window by day-window in one transaction, exactly like a table write.

Hand-made Parquet files with a few rows each; expected rows are listed by hand."""

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from finops_assets.lib import snapshots as sn
from finops_assets.lib.warehouse import configure_connection, table_exists

TABLE = "raw.things"


def deliver(folder: Path, name: str, rows: list[tuple[str, int]]) -> Path:
    """A delivered Parquet file of (day text, cost) rows."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    values = ", ".join(f"('{day}', {cost})" for day, cost in rows)
    duckdb.sql(
        f"COPY (SELECT * FROM (VALUES {values}) AS t(day, cost)) TO '{path}' (FORMAT parquet)"
    )
    return path


def typed(snapshot: Path, delivery: str) -> str:
    return (
        f"SELECT CAST(day AS DATE) AS charge_date, CAST(cost AS DECIMAL(18, 2)) AS cost, "
        f"'{delivery}' AS x_DeliveryId FROM {sn.snapshot_reader(snapshot)}"
    )


@pytest.fixture
def con(tmp_path):
    database = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(database) as connection:
        configure_connection(connection)
        yield connection, database


def load(con, database, path: Path, delivery: str, first: date, last: date, **kwargs):
    zone = sn.raw_zone(database, TABLE)
    snapshot = sn.take_snapshot(con, zone, str(path), "parquet", ("things", delivery, path.name))
    entry = sn.SnapshotEntry(str(snapshot), typed(snapshot, delivery), first, last)
    days = [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]
    return sn.replace_snapshot_partitions(con, TABLE, zone, [entry], days, **kwargs)


def rows(con) -> list[tuple]:
    return con.execute(
        f"SELECT charge_date::VARCHAR, cost::VARCHAR, x_DeliveryId FROM {TABLE} ORDER BY ALL"
    ).fetchall()


MONTH = [("2025-01-01", 1), ("2025-01-02", 2), ("2025-01-03", 3)]


def test_days_come_from_the_snapshot_loaded_for_them(con, tmp_path):
    con, database = con
    first = deliver(tmp_path / "landing", "a.parquet", MONTH)
    write = load(con, database, first, "d1", date(2025, 1, 1), date(2025, 1, 3))
    assert (write.rows_deleted, write.rows_inserted, write.schema_change.created) == (0, 3, True)
    # The provider restates the month; only the middle day is reloaded from it.
    restated = deliver(tmp_path / "landing", "b.parquet", [(d, c * 10) for d, c in MONTH])
    write = load(con, database, restated, "d2", date(2025, 1, 2), date(2025, 1, 2))
    assert (write.rows_deleted, write.rows_inserted) == (1, 1)
    assert rows(con) == [
        ("2025-01-01", "1.00", "d1"),
        ("2025-01-02", "20.00", "d2"),
        ("2025-01-03", "3.00", "d1"),
    ]
    # The first snapshot serves two ranges now; the registry keeps file names, not paths.
    registry = con.execute(
        f"SELECT snapshot, first_day::VARCHAR, last_day::VARCHAR FROM {TABLE}__snapshots ORDER BY 2"
    ).fetchall()
    assert [(r[1], r[2]) for r in registry] == [
        ("2025-01-01", "2025-01-01"),
        ("2025-01-02", "2025-01-02"),
        ("2025-01-03", "2025-01-03"),
    ]
    assert all("/" not in r[0] for r in registry)
    # Reloading the rest of the month from the restatement merges it into one range and removes
    # the first snapshot, which no day uses any more.
    load(con, database, restated, "d2", date(2025, 1, 1), date(2025, 1, 3))
    assert rows(con) == [
        ("2025-01-01", "10.00", "d2"),
        ("2025-01-02", "20.00", "d2"),
        ("2025-01-03", "30.00", "d2"),
    ]
    assert con.execute(f"SELECT count(*) FROM {TABLE}__snapshots").fetchone() == (1,)
    zone = sn.raw_zone(database, TABLE)
    assert len(list(zone.glob("*.parquet"))) == 1


def test_a_refused_write_leaves_the_previous_days_and_no_new_file(con, tmp_path):
    con, database = con
    load(con, database, deliver(tmp_path / "l", "a.parquet", MONTH), "d1", *_jan(1, 3))
    before = rows(con)
    zone = sn.raw_zone(database, TABLE)
    files = sorted(zone.iterdir())

    def refuse(con):
        # The new rows are visible inside the transaction; raising rolls everything back.
        assert con.execute(f"SELECT sum(cost) FROM {TABLE}").fetchone()[0] == 600
        raise ValueError("the contract says no")

    bad = deliver(tmp_path / "l", "b.parquet", [(d, c * 100) for d, c in MONTH])
    with pytest.raises(ValueError, match="the contract says no"):
        load(con, database, bad, "d2", *_jan(1, 3), validate=refuse)
    assert rows(con) == before
    assert sorted(zone.iterdir()) == files


def test_snapshots_do_not_follow_the_landing_zone(con, tmp_path):
    """The provider overwrites or deletes its files later: raw keeps what was loaded."""
    con, database = con
    path = deliver(tmp_path / "l", "a.parquet", MONTH)
    load(con, database, path, "d1", *_jan(1, 3))
    deliver(tmp_path / "l", "a.parquet", [(d, 999) for d, _ in MONTH])
    assert con.execute(f"SELECT sum(cost) FROM {TABLE}").fetchone()[0] == 6
    shutil.rmtree(tmp_path / "l")
    assert con.execute(f"SELECT sum(cost) FROM {TABLE}").fetchone()[0] == 6


def test_a_moved_warehouse_finds_its_snapshots(con, tmp_path):
    con, database = con
    load(con, database, deliver(tmp_path / "l", "a.parquet", MONTH), "d1", *_jan(1, 3))
    con.close()
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(database, moved / "warehouse.duckdb")
    shutil.move(str(Path(database).with_suffix(".raw")), moved / "warehouse.raw")
    with duckdb.connect(str(moved / "warehouse.duckdb")) as other:
        assert sn.refresh_views(other, str(moved / "warehouse.duckdb")) == [TABLE]
        assert other.execute(f"SELECT sum(cost) FROM {TABLE}").fetchone()[0] == 6
        assert sn.refresh_views(other, str(moved / "warehouse.duckdb")) == []


def test_a_typed_table_from_before_snapshots_becomes_one(con, tmp_path):
    con, database = con
    con.execute("CREATE SCHEMA raw")
    con.execute(
        f"CREATE TABLE {TABLE} AS SELECT DATE '2025-01-01' + i::INT AS charge_date, "
        "CAST(i AS DECIMAL(18, 2)) AS cost, 'old' AS x_DeliveryId FROM range(3) t(i)"
    )
    path = deliver(tmp_path / "l", "b.parquet", [("2025-01-02", 7)])
    load(con, database, path, "d2", *_jan(2, 2))
    assert rows(con) == [
        ("2025-01-01", "0.00", "old"),
        ("2025-01-02", "7.00", "d2"),
        ("2025-01-03", "2.00", "old"),
    ]
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'things'"
    ).fetchone()
    assert kind == ("VIEW",)


def test_clearing_days(con, tmp_path):
    con, database = con
    load(con, database, deliver(tmp_path / "l", "a.parquet", MONTH), "d1", *_jan(1, 3))
    zone = sn.raw_zone(database, TABLE)
    days = [date(2025, 1, 1), date(2025, 1, 2)]
    assert sn.clear_snapshot_partitions(con, TABLE, zone, days) == 2
    assert rows(con) == [("2025-01-03", "3.00", "d1")]
    assert sn.clear_snapshot_partitions(con, TABLE, zone, [date(2025, 1, 3)]) == 1
    assert rows(con) == [] and table_exists(con, TABLE)
    assert list(zone.glob("*.parquet")) == []


def test_trim_and_merge():
    e = sn.SnapshotEntry("a", "s", date(2025, 1, 1), date(2025, 1, 31))
    parts = sn.trim([e], date(2025, 1, 10), date(2025, 1, 12))
    assert [(p.first.day, p.last.day) for p in parts] == [(1, 9), (13, 31)]
    back = sn.merge([*parts, sn.SnapshotEntry("a", "s", date(2025, 1, 10), date(2025, 1, 12))])
    assert back == [e]
    other = sn.SnapshotEntry("b", "s", date(2025, 1, 10), date(2025, 1, 12))
    assert len(sn.merge([*parts, other])) == 3


def _jan(first: int, last: int) -> tuple[date, date]:
    return date(2025, 1, first), date(2025, 1, last)
