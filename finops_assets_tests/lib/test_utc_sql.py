"""lib/warehouse.py's UTC helpers: the same dates, months and instants as DuckDB's time-zone
functions in a UTC session, whatever the session's TimeZone is."""

from datetime import UTC, date, datetime

import duckdb
import pytest

from finops_assets.lib.warehouse import utc_date, utc_instant, utc_month, utc_naive

INSTANTS = [
    "2025-01-31 23:59:59.999999+00",
    "2025-02-01 00:00:00+00",
    "2024-02-29 12:00:00+00",
    "1969-12-31 23:30:00+00",  # before the epoch: negative microseconds
    "2025-03-09 07:30:00+00",  # a DST change in New York
]


@pytest.mark.parametrize("session_zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_helpers_match_utc_time_zone_functions(session_zone):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INTEGER, ts TIMESTAMPTZ, naive TIMESTAMP)")
    con.executemany(
        "INSERT INTO t VALUES (?, CAST(? AS TIMESTAMPTZ), "
        "CAST(CAST(? AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP))",
        [[n, i, i] for n, i in enumerate([*INSTANTS, None])],
    )
    con.execute("SET TimeZone = 'UTC'")
    expected = con.execute(
        "SELECT CAST(ts AS DATE), strftime(ts, '%Y-%m'), timezone('UTC', ts), "
        "timezone('UTC', naive) FROM t ORDER BY id"
    ).fetchall()
    con.execute(f"SET TimeZone = '{session_zone}'")
    got = con.execute(
        f"SELECT {utc_date('ts')}, {utc_month('ts')}, {utc_naive('ts')}, "
        f"{utc_instant('naive')} FROM t ORDER BY id"
    ).fetchall()
    assert got == expected
    assert got[0][0] == date(2025, 1, 31) and got[1][1] == "2025-02"
    assert got[-1] == (None, None, None, None)
    # The instant built from naive UTC time is the same instant, shown in any zone.
    assert got[1][3].astimezone(UTC) == datetime(2025, 2, 1, tzinfo=UTC)
