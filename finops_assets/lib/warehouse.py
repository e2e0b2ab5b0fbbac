"""Atomic, schema-evolving partition writes on a DuckDB warehouse.

Why not the stock DuckDB IO manager: it deletes and inserts outside one transaction (a failed
insert wipes the good partition) and inserts by position (reordered columns are silently swapped).
Here a partition replace is one transaction: evolve the schema explicitly (add nullable columns,
never drop data), delete the days' window, insert matched by column name, check the rows landed
in the window, run the caller's validation, commit. Any failure rolls back and the previous good
partition stays as it was.

DuckDB allows one read-write process per database file, so every connection goes through an
exclusive file lock: parallel backfill runs wait for each other instead of failing with lock errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from finops_assets.lib import run_log

PARTITION_COLUMN = "charge_date"


class WarehouseLockTimeout(RuntimeError):
    pass


class PartitionWriteError(RuntimeError):
    """A partition replace was rolled back; the previous partition is intact."""


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def split_table_name(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    if not name:
        raise ValueError(f"table name {table!r} must be schema-qualified, e.g. 'core.cost_facts'")
    return schema, name


def qualified(table: str) -> str:
    schema, name = split_table_name(table)
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


# --- UTC time without time-zone arithmetic -----------------------------------------------------
# Every instant we store is a TIMESTAMPTZ in UTC. DuckDB's ICU time-zone functions (a TIMESTAMPTZ
# cast to DATE, timezone('UTC', ...), date_trunc/strftime on TIMESTAMPTZ) cost about 50 ns a row
# each; the same UTC results from the epoch are about ten times cheaper, and a pass over a million
# rows does several of them. They also do not depend on the session's TimeZone setting.
def utc_naive(instant_sql: str) -> str:
    """The UTC wall-clock TIMESTAMP of a TIMESTAMPTZ (or naive UTC TIMESTAMP) expression."""
    return f"make_timestamp(epoch_us({instant_sql}))"


def utc_date(instant_sql: str) -> str:
    """The UTC calendar date of a TIMESTAMPTZ (or naive UTC TIMESTAMP) expression."""
    return f"CAST({utc_naive(instant_sql)} AS DATE)"


def utc_instant(naive_sql: str) -> str:
    """The TIMESTAMPTZ of a naive TIMESTAMP (or DATE) expression read as UTC wall-clock time."""
    return f"make_timestamptz(epoch_us({naive_sql}))"


def utc_month(instant_sql: str) -> str:
    """'YYYY-MM' of a TIMESTAMPTZ (or naive UTC TIMESTAMP) expression, in UTC."""
    return f"strftime({utc_naive(instant_sql)}, '%Y-%m')"


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, timeout_seconds: float) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (created if missing)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")  # noqa: SIM115 - closed in finally
    try:
        deadline = time.monotonic() + timeout_seconds
        delay = 0.05
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLockTimeout(
                        f"Waited {timeout_seconds:.0f} s for the warehouse lock {lock_path}. "
                        "Another process keeps the DuckDB file open: finish or stop it (a "
                        "long backfill, an open notebook), or raise the lock timeout."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def lock_path_for(database: str) -> Path:
    return Path(database + ".lock")


def configure_connection(con: duckdb.DuckDBPyConnection) -> None:
    # All timestamps are UTC; the partition day of a charge is its UTC date.
    con.execute("SET TimeZone = 'UTC'")
    # Row order never matters for us and keeping it costs memory on large inserts.
    con.execute("SET preserve_insertion_order = false")
    # Progress bars would land in Dagster's captured logs as noise.
    con.execute("SET enable_progress_bar = false")


@contextlib.contextmanager
def connect(
    database: str, *, lock_timeout_seconds: float = 3600, config: dict | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked, configured read-write connection to the warehouse file."""
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        lock = exclusive_lock(lock_path_for(database), lock_timeout_seconds)
    else:
        lock = contextlib.nullcontext()
    with lock:
        con = duckdb.connect(database, config=config or {})
        try:
            configure_connection(con)
            yield con
        finally:
            con.close()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = split_table_name(table)
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = split_table_name(table)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return {column: data_type for column, data_type in rows}


def query_columns(
    con: duckdb.DuckDBPyConnection, select_sql: str, params: Sequence | None = None
) -> dict[str, str]:
    """Column names and types a query would return, without running it."""
    described = con.execute(f"DESCRIBE {select_sql}", params or []).fetchall()
    return {row[0]: row[1] for row in described}


@dataclass(frozen=True)
class SchemaChange:
    added_columns: tuple[tuple[str, str], ...]
    created: bool


def evolve_schema(
    con: duckdb.DuckDBPyConnection, table: str, incoming: dict[str, str]
) -> SchemaChange:
    """Create the table, or add the incoming query's new columns as nullable columns.

    Never drops or retypes a column: a type conflict is an error for a person to resolve, because
    silently retyping would rewrite every old partition.
    """
    schema, _ = split_table_name(table)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
    if not table_exists(con, table):
        columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in incoming.items())
        con.execute(f"CREATE TABLE {qualified(table)} ({columns})")
        return SchemaChange(added_columns=(), created=True)
    # DuckDB identifiers are case-insensitive. A column whose type differs from the table's is
    # cast by the name-matched insert; an impossible cast fails the transaction with context.
    existing = {c.lower() for c in table_columns(con, table)}
    added = []
    for column, data_type in incoming.items():
        if column.lower() not in existing:
            con.execute(
                f"ALTER TABLE {qualified(table)} ADD COLUMN {quote_identifier(column)} {data_type}"
            )
            added.append((column, data_type))
    return SchemaChange(added_columns=tuple(added), created=False)


@dataclass(frozen=True)
class PartitionWrite:
    table: str
    days: tuple[date, ...]
    rows_deleted: int
    rows_inserted: int
    schema_change: SchemaChange


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    select_sql: str,
    days: Sequence[date],
    *,
    params: Sequence | None = None,
    validate: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    describe_error: Callable[[duckdb.DuckDBPyConnection, Exception], Exception | None]
    | None = None,
) -> PartitionWrite:
    """Replace ``days`` of ``table`` with the rows of ``select_sql``, atomically.

    ``select_sql`` must return a ``charge_date`` column whose values all lie in ``days``.
    ``validate`` runs inside the transaction after the insert (it may query the new rows) and
    raises to roll back. ``describe_error`` runs after the rollback and may turn an engine error
    into a user-facing one (naming the file and column to fix).
    """
    day_list = sorted(set(days))
    if not day_list:
        raise ValueError("replace_partitions needs at least one day")
    incoming = query_columns(con, select_sql, params)
    if PARTITION_COLUMN not in incoming:
        raise ValueError(f"the query for {table} must return a {PARTITION_COLUMN} column")
    target = qualified(table)
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    try:
        change = evolve_schema(con, table, incoming)
        before = run_log.day_totals(con, table, day_list)
        deleted = con.execute(
            f"DELETE FROM {target} WHERE {PARTITION_COLUMN} IN (SELECT unnest(?::DATE[]))",
            [day_list],
        ).fetchone()[0]
        insert_params = list(params or [])
        inserted = con.execute(
            f"INSERT INTO {target} BY NAME {select_sql}", insert_params
        ).fetchone()[0]
        # The window was emptied above, so every inserted row must be back inside it; a row
        # outside would silently overwrite or orphan another partition.
        in_window = con.execute(
            f"SELECT count(*) FROM {target} WHERE {PARTITION_COLUMN} IN (SELECT unnest(?::DATE[]))",
            [day_list],
        ).fetchone()[0]
        if in_window != inserted:
            raise PartitionWriteError(
                f"{inserted - in_window} of {inserted} rows for {table} have a {PARTITION_COLUMN} "
                f"outside {day_list[0]}..{day_list[-1]}; nothing was written."
            )
        if validate is not None:
            validate(con)
        after = run_log.day_totals(con, table, day_list)
        con.execute("COMMIT")
    except Exception as error:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        described = describe_error(con, error) if describe_error else None
        if described is not None:
            raise described from error
        raise
    run_log.log_write(table, day_list, before, after, time.perf_counter() - started)
    return PartitionWrite(
        table=table,
        days=tuple(day_list),
        rows_deleted=int(deleted),
        rows_inserted=int(inserted),
        schema_change=change,
    )
