"""duplicate_charges_sql narrows rows and files cheaply before hashing every FOCUS column: the
narrowing must never hide a duplicate nor invent one."""

from datetime import date

import duckdb

from finops_assets.contracts.money import duplicate_charges_sql
from finops_assets.lib.focus import FOCUS_COLUMNS

DAY = date(2025, 1, 15)


def _table(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; CREATE SCHEMA core")
    columns = {
        **FOCUS_COLUMNS,
        "charge_date": "DATE",
        "x_Dataset": "VARCHAR",
        "x_SourceFile": "VARCHAR",
    }
    con.execute(
        "CREATE TABLE core.cost_facts (" + ", ".join(f'"{c}" {t}' for c, t in columns.items()) + ")"
    )
    for row in rows:
        names = ", ".join(f'"{c}"' for c in row)
        con.execute(
            f"INSERT INTO core.cost_facts ({names}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
    return con


def _charge(cost: str, resource: str, **extra) -> dict:
    return {
        "BilledCost": cost,
        "EffectiveCost": cost,
        "BillingCurrency": "USD",
        "ChargePeriodStart": "2025-01-15 00:00:00+00",
        "ResourceId": resource,
        "charge_date": DAY,
        **extra,
    }


def _found(con) -> list[tuple]:
    return con.execute(duplicate_charges_sql("core.cost_facts"), [DAY, DAY]).fetchall()


def test_same_cheap_key_but_another_charge_is_not_a_duplicate():
    # Equal on every column the first filter hashes, different in ServiceName: two charges.
    con = _table(
        [
            _charge("1.5", "i-1", ServiceName="EC2", x_Dataset="a", x_SourceFile="a/1"),
            _charge("1.5", "i-1", ServiceName="S3", x_Dataset="b", x_SourceFile="b/1"),
        ]
    )
    assert _found(con) == []


def test_same_charge_in_two_datasets_is_found():
    con = _table(
        [
            _charge("1.5", "i-1", ServiceName="EC2", x_Dataset="a", x_SourceFile="a/1"),
            _charge("2.5", "i-2", ServiceName="EC2", x_Dataset="a", x_SourceFile="a/1"),
            _charge("1.5", "i-1", ServiceName="EC2", x_Dataset="b", x_SourceFile="b/1"),
        ]
    )
    assert _found(con) == [(DAY, "USD", "same charge in a and b", 2)]


def test_files_with_equal_sums_but_other_rows_are_not_copies():
    con = _table(
        [
            _charge("1", "i-1", x_Dataset="a", x_SourceFile="a/1"),
            _charge("2", "i-2", x_Dataset="a", x_SourceFile="a/1"),
            _charge("1", "i-3", x_Dataset="a", x_SourceFile="a/2"),
            _charge("2", "i-4", x_Dataset="a", x_SourceFile="a/2"),
        ]
    )
    assert _found(con) == []


def test_a_copied_file_is_found_among_others():
    rows = [
        _charge("1", "i-1", x_Dataset="a", x_SourceFile="a/1"),
        _charge("2", "i-2", x_Dataset="a", x_SourceFile="a/1"),
        _charge("1", "i-1", x_Dataset="a", x_SourceFile="a/copy"),
        _charge("2", "i-2", x_Dataset="a", x_SourceFile="a/copy"),
        _charge("7", "i-9", x_Dataset="a", x_SourceFile="a/other"),
    ]
    assert _found(_table(rows)) == [(DAY, "USD", "identical files a/1 and a/copy", 4)]
