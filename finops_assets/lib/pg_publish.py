"""The PostgreSQL publish target: the marts replicated into a database BI tools already use.

``FINOPS_PUBLISH_URL=postgresql://user:password@host:5432/db`` makes every serving publish also
replicate the published days of the ``mart`` tables into PostgreSQL, one transaction per day and
table: delete the day, ``COPY`` its rows in, compare the row count and every money column per
currency with the warehouse, commit. Anything that goes wrong (a lost connection, a constraint,
a total that does not match) rolls that day back, so PostgreSQL keeps the day as it was before,
and the error names the table and day.

Tables keep their schema and name (``mart.daily_cost_by_team``) and are declaratively
partitioned by charge month (``PARTITION BY RANGE (charge_date)``, one partition per month,
created when a day of it is first published), so a month is dropped or detached as one object
and queries on a date range only scan their months. Indexes, created on the parent and so on
every partition: ``charge_date``, and ``(<dimension>, charge_date)`` for the dimensions a
dashboard filters by (team, department, cost center, environment, provider, service category,
currency) when the table has them. A column the warehouse adds later is added here too
(nullable); a column whose type changed is an error, never a silent retype.

Nothing here imports Dagster. The URL is a credential: it is never logged, and errors show the
host and database only.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import duckdb
import pyarrow.csv as pacsv

from finops_assets.lib.warehouse import PARTITION_COLUMN, quote_identifier, split_table_name

PUBLISHED_SCHEMAS = ("mart",)
INDEXED_DIMENSIONS = (
    "team",
    "department",
    "cost_center",
    "environment",
    "ProviderName",
    "ServiceCategory",
    "BillingCurrency",
)
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_SIMPLE_TYPES = {
    "VARCHAR": "text",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(38, 0)",
    "UBIGINT": "numeric(20, 0)",
    "UINTEGER": "bigint",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "jsonb",
}


class PublishError(Exception):
    """A day that could not be replicated (it was rolled back)."""


@dataclass(frozen=True)
class DayPublish:
    table: str
    day: date
    rows: int


def describe_url(url: str) -> str:
    """``host:port/database`` of a PostgreSQL URL, without user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path}"


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB one (money stays exact: DECIMAL -> numeric)."""
    match = _DECIMAL.fullmatch(duckdb_type)
    if match:
        return f"numeric({match.group(1)}, {match.group(2)})"
    if duckdb_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[duckdb_type]
    return "text"  # lists, maps, structs: as DuckDB prints them


def _pg_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_table(table: str) -> str:
    schema, name = split_table_name(table)
    return f"{_pg_name(schema)}.{_pg_name(name)}"


def month_partition(table: str, day: date) -> tuple[str, date, date]:
    """The partition holding ``day``: its qualified name and [first day, first of next month)."""
    schema, name = split_table_name(table)
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return f"{_pg_name(schema)}.{_pg_name(f'{name}_{first:%Y_%m}')}", first, following


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    source = ".".join(quote_identifier(p) for p in split_table_name(table))
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def ensure_table(cursor, table: str, columns: dict[str, str]) -> None:
    """Create the partitioned table and its indexes, or add the warehouse's new columns."""
    schema, name = split_table_name(table)
    target = _pg_table(table)
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {_pg_name(schema)}")
    wanted = ", ".join(f"{_pg_name(c)} {pg_type(t)}" for c, t in columns.items())
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {target} ({wanted}) PARTITION BY RANGE ({PARTITION_COLUMN})"
    )
    cursor.execute(
        "SELECT column_name, data_type, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    )
    existing = {row[0]: row for row in cursor.fetchall()}
    for column, duck_type in columns.items():
        if column not in existing:
            cursor.execute(
                f"ALTER TABLE {target} ADD COLUMN {_pg_name(column)} {pg_type(duck_type)}"
            )
            continue
        match = _DECIMAL.fullmatch(duck_type)
        have = existing[column]
        if match and have[1] == "numeric" and (have[2], have[3]) != tuple(map(int, match.groups())):
            raise PublishError(
                f"{table}.{column} is numeric({have[2]}, {have[3]}) in PostgreSQL but "
                f"{duck_type} in the warehouse; alter the PostgreSQL column (or drop the table to "
                "have it created again) and publish again"
            )
    indexed = [PARTITION_COLUMN] + [
        f"{c}, {PARTITION_COLUMN}" for c in INDEXED_DIMENSIONS if c in columns
    ]
    for spec in indexed:
        parts = ", ".join(_pg_name(p.strip()) for p in spec.split(","))
        index_name = _pg_name(f"{name}_{spec.split(',')[0].strip().lower()}_idx"[:63])
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {index_name} ON {target} ({parts})")


def _ensure_partition(cursor, table: str, day: date) -> None:
    partition, first, following = month_partition(table, day)
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {_pg_table(table)} "
        f"FOR VALUES FROM (%s) TO (%s)",
        (first, following),
    )


def _money_columns(columns: dict[str, str]) -> list[str]:
    return [c for c, t in columns.items() if _DECIMAL.fullmatch(t)]


def _totals_sql(columns: dict[str, str], quote) -> str:
    money = ", ".join(f"sum({quote(c)})" for c in _money_columns(columns)) or "NULL"
    currency = quote("BillingCurrency") if "BillingCurrency" in columns else "''"
    return f"SELECT {currency}, count(*), {money}"


def _csv(con: duckdb.DuckDBPyConnection, table: str, day: date, columns: Sequence[str]) -> bytes:
    source = ".".join(quote_identifier(p) for p in split_table_name(table))
    select = ", ".join(quote_identifier(c) for c in columns)
    batch = con.execute(
        f"SELECT {select} FROM {source} WHERE {PARTITION_COLUMN} = ?", [day]
    ).to_arrow_table()
    buffer = io.BytesIO()
    # Every value quoted, NULLs as an unquoted empty field: PostgreSQL's CSV reads "" as an empty
    # string and an empty field as NULL.
    pacsv.write_csv(
        batch, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    )
    return buffer.getvalue()


def publish_days(
    con: duckdb.DuckDBPyConnection, url: str, table: str, days: Sequence[date]
) -> list[DayPublish]:
    """Replicate ``days`` of ``table`` (a daily warehouse table) into PostgreSQL, one
    transaction per day. A day the warehouse no longer has is deleted there too."""
    import psycopg2

    columns = _columns(con, table)
    if PARTITION_COLUMN not in columns:
        raise PublishError(f"{table} has no {PARTITION_COLUMN} column: only daily tables publish")
    names = list(columns)
    source = ".".join(quote_identifier(p) for p in split_table_name(table))
    where = f"{describe_url(url)} {table}"
    done = []
    try:
        pg = psycopg2.connect(url, connect_timeout=10, application_name="finops_assets")
    except psycopg2.Error as error:
        raise PublishError(f"cannot connect to {describe_url(url)}: {error}".strip()) from None
    with contextlib.closing(pg):
        with pg, pg.cursor() as cursor:  # one transaction for the table's shape
            ensure_table(cursor, table, columns)
        expected_sql = _totals_sql(columns, quote_identifier)
        for day in sorted(set(days)):
            expected = {
                row[0]: row[1:]
                for row in con.execute(
                    f"{expected_sql} FROM {source} WHERE {PARTITION_COLUMN} = ? GROUP BY 1",
                    [day],
                ).fetchall()
            }
            payload = _csv(con, table, day, names) if expected else b""
            try:
                with pg, pg.cursor() as cursor:  # commit on success, roll back on any error
                    if expected:
                        _ensure_partition(cursor, table, day)
                    cursor.execute(
                        f"DELETE FROM {_pg_table(table)} WHERE {PARTITION_COLUMN} = %s", (day,)
                    )
                    if payload:
                        cursor.copy_expert(
                            f"COPY {_pg_table(table)} ({', '.join(_pg_name(n) for n in names)}) "
                            "FROM STDIN WITH (FORMAT csv)",
                            io.BytesIO(payload),
                        )
                    cursor.execute(
                        f"{_totals_sql(columns, _pg_name)} FROM {_pg_table(table)} "
                        f"WHERE {PARTITION_COLUMN} = %s GROUP BY 1",
                        (day,),
                    )
                    found = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
                    if _normalized(found) != _normalized(expected):
                        raise PublishError(
                            f"{where} {day}: PostgreSQL holds {_normalized(found)} after the copy "
                            f"but the warehouse has {_normalized(expected)}; rolled back"
                        )
            except psycopg2.Error as error:
                diag = getattr(error, "diag", None)
                message = (getattr(diag, "message_primary", None) or str(error)).strip()
                raise PublishError(
                    f"{where} {day}: {message}; rolled back, PostgreSQL keeps the day as it was"
                ) from None
            done.append(DayPublish(table, day, sum(int(v[0]) for v in expected.values())))
    return done


def _normalized(totals: dict) -> dict:
    """Row count and money sums per currency, as exact decimals (NULL sums as 0)."""
    return {
        currency: tuple(Decimal(0) if v is None else Decimal(v) for v in values)
        for currency, values in sorted(totals.items(), key=lambda kv: str(kv[0]))
    }
