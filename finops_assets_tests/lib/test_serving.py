"""lib/serving on a small hand-made warehouse: one file per day, whole-table files, the read-only
DuckDB snapshot, removed days, schema growth, and a held snapshot that stays as it was opened."""

from datetime import date
from decimal import Decimal

import duckdb
import pandas as pd

from finops_assets.lib import serving

D1, D2, D3 = date(2025, 1, 30), date(2025, 1, 31), date(2025, 2, 1)


def stable_files(root):
    return list(root.rglob("*.parquet"))


def warehouse(path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute(
        """
        CREATE SCHEMA core; CREATE SCHEMA finance; CREATE SCHEMA raw;
        CREATE TABLE core.cost_facts (charge_date DATE, BilledCost DECIMAL(38, 12),
                                      BillingCurrency VARCHAR);
        INSERT INTO core.cost_facts VALUES
            ('2025-01-30', 1.25, 'USD'), ('2025-01-30', 2.50, 'EUR'),
            ('2025-01-31', 10.00, 'USD'), ('2025-02-01', 0.01, 'USD');
        CREATE TABLE core._bookkeeping (charge_date DATE, note VARCHAR);
        INSERT INTO core._bookkeeping VALUES ('2025-01-30', 'internal');
        CREATE TABLE finance.invoices (InvoiceId VARCHAR, pre_tax_amount DECIMAL(38, 12));
        INSERT INTO finance.invoices VALUES ('INV-1', 11.26);
        CREATE TABLE raw.focus (charge_date DATE, x VARCHAR);
        INSERT INTO raw.focus VALUES ('2025-01-30', 'not served');
        """
    ).fetchall()
    return con


def test_publish_writes_a_file_per_day_and_a_duckdb_snapshot(tmp_path):
    con = warehouse(tmp_path / "warehouse.duckdb")
    root = tmp_path / "serving"
    done = {t.table: t for t in serving.publish(con, root)}
    assert set(done) == {"core.cost_facts", "finance.invoices"}  # not raw, not _bookkeeping
    assert done["core.cost_facts"].days_written == 3 and done["core.cost_facts"].rows == 4
    assert sorted(p.relative_to(root).as_posix() for p in stable_files(root)) == [
        "core/cost_facts/2025-01/2025-01-30.parquet",
        "core/cost_facts/2025-01/2025-01-31.parquet",
        "core/cost_facts/2025-02/2025-02-01.parquet",
        "finance/invoices/data.parquet",
    ]
    snapshot = serving.snapshot_path(root)
    assert snapshot == tmp_path / "serving.duckdb"
    with duckdb.connect(str(snapshot), read_only=True) as reader:
        assert reader.execute(
            "SELECT BillingCurrency, sum(BilledCost) FROM core.cost_facts GROUP BY 1 ORDER BY 1"
        ).fetchall() == [("EUR", Decimal("2.5")), ("USD", Decimal("11.26"))]
        assert reader.execute("SELECT * FROM finance.invoices").fetchall() == [
            ("INV-1", Decimal("11.26"))
        ]
        # Types survive: the day is a DATE inside the files, money stays DECIMAL(38, 12).
        assert reader.execute("DESCRIBE core.cost_facts").fetchall()[:2] == [
            ("charge_date", "DATE", "YES", None, None, None),
            ("BilledCost", "DECIMAL(38,12)", "YES", None, None, None),
        ]
    # pandas reads a table folder as it is: no second, string-typed charge_date from the path.
    frame = pd.read_parquet(root / "core" / "cost_facts")
    assert list(frame.columns) == ["charge_date", "BilledCost", "BillingCurrency"]
    assert len(frame) == 4


def test_a_held_reader_keeps_its_snapshot_and_new_readers_see_the_publish(tmp_path):
    con = warehouse(tmp_path / "warehouse.duckdb")
    root = tmp_path / "serving"
    serving.publish(con, root)
    held = duckdb.connect(str(serving.snapshot_path(root)), read_only=True)
    total = "SELECT count(*), sum(BilledCost) FROM core.cost_facts"
    assert held.execute(total).fetchone() == (4, Decimal("13.76"))

    # A restated day and a new column; 1 February emptied by its source.
    con.execute(
        """
        ALTER TABLE core.cost_facts ADD COLUMN x_Note VARCHAR;
        UPDATE core.cost_facts SET BilledCost = 20, x_Note = 'restated'
            WHERE charge_date = '2025-01-31';
        DELETE FROM core.cost_facts WHERE charge_date = '2025-02-01';
        """
    ).fetchall()
    done = {t.table: t for t in serving.publish(con, root, schemas=["core"], days=[D2, D3])}
    assert (done["core.cost_facts"].days_written, done["core.cost_facts"].days_removed) == (1, 1)
    assert not (root / "core/cost_facts/2025-02").exists()
    # The connection opened before the publish still reads its snapshot, whole and unchanged.
    assert held.execute(total).fetchone() == (4, Decimal("13.76"))
    held.close()
    with duckdb.connect(str(serving.snapshot_path(root)), read_only=True) as reader:
        assert reader.execute(total).fetchone() == (3, Decimal("23.75"))
        assert reader.execute(
            "SELECT charge_date, x_Note FROM core.cost_facts ORDER BY 1, 2 NULLS FIRST"
        ).fetchall() == [(D1, None), (D1, None), (D2, "restated")]
        # finance was not asked for: its file is the one of the first publish.
        assert reader.execute("SELECT count(*) FROM finance.invoices").fetchone() == (1,)
    # The stable names hold the new version for file readers.
    frame = pd.read_parquet(day_path(root, D2))
    assert frame["x_Note"].tolist() == ["restated"]


def day_path(root, day):
    return serving.day_file(root, "core.cost_facts", day)


def test_every_day_publish_removes_days_the_warehouse_lost(tmp_path):
    con = warehouse(tmp_path / "warehouse.duckdb")
    root = tmp_path / "serving"
    serving.publish(con, root)
    con.execute("DELETE FROM core.cost_facts WHERE charge_date < '2025-02-01'").fetchall()
    (done,) = serving.publish(con, root, schemas=["core"])
    assert (done.days_written, done.days_removed, done.rows) == (1, 2, 1)
    assert [p.name for p in stable_files(root) if "cost_facts" in str(p)] == ["2025-02-01.parquet"]
    # No file is ever left half written under its real name, nor as a stray temporary.
    assert not [p for p in root.rglob(".*") if p.is_file()]
