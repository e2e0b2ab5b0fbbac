"""The serving zone: what readers (notebooks, BI tools) query, never the pipeline's own file.

DuckDB lets one process write a database file, and a reader holding the file open blocks that
writer (``IO Error: Could not set lock on file``). So readers get their own copies, published
after each successful run, and the pipeline never opens them while a reader might:

* ``<serving>.duckdb`` (``data/serving.duckdb``): a read-only DuckDB snapshot with the same
  schemas and tables as the warehouse (``SELECT * FROM mart.daily_cost_by_team``). A publish
  copies the current snapshot to a temporary file, replaces the published days in the copy and
  renames the copy over the snapshot. A reader that has the snapshot open keeps reading the one
  it opened (the old file stays alive under its open handle, whole and unchanged) and is never
  in the way; a reader that connects afterwards gets the new one. In one Python process DuckDB
  shares an open database between connections to the same path, so close every connection to
  see a newer publish.
* ``<serving>/<schema>/<table>/<YYYY-MM>/<YYYY-MM-DD>.parquet``: one Parquet file per day for
  every table with a ``charge_date`` column (facts, amortized, allocated, marts, daily insights);
  ``<serving>/<schema>/<table>/data.parquet`` for the others (monthly finance tables, insight
  summaries). Each file is written under a temporary name and renamed over the old one, so
  pandas, Polars, Spark or a BI tool reading a file gets a whole day, old or new. The directory
  names carry no ``key=value`` (``charge_date`` is inside the files), so pandas and Polars read a
  table folder without inventing a second, string-typed ``charge_date``.

Days a table no longer has (a source cleared, a month replaced by a shorter one) are removed
from both. Nothing here imports Dagster: ``publish`` takes the warehouse connection (whose lock
makes the publisher the only one) and a folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from finops_assets.lib.warehouse import PARTITION_COLUMN, quote_identifier, split_table_name

SERVED_SCHEMAS = ("core", "mart", "insights", "finance")
WHOLE_TABLE_FILE = "data.parquet"
SNAPSHOT_ALIAS = "finops_serving_snapshot"
# zstd: about half the size of snappy on cost data, read as fast.
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880"


@dataclass(frozen=True)
class TablePublish:
    """What one publish did to one table."""

    table: str
    daily: bool
    days_written: int
    days_removed: int
    rows: int


def snapshot_path(serving_dir: Path) -> Path:
    """The read-only DuckDB snapshot beside the serving folder (``data/serving.duckdb``)."""
    return serving_dir.with_name(serving_dir.name + ".duckdb")


def served_tables(con: duckdb.DuckDBPyConnection, schemas: Iterable[str] = SERVED_SCHEMAS) -> dict:
    """``{schema.table: has charge_date}`` of the warehouse's tables and views in ``schemas``
    (bookkeeping tables, whose names start with ``_``, are not served)."""
    wanted = list(schemas)
    if not wanted:
        return {}
    rows = con.execute(
        f"""
        SELECT t.table_schema || '.' || t.table_name,
               bool_or(c.column_name = '{PARTITION_COLUMN}')
        FROM information_schema.tables AS t
        JOIN information_schema.columns AS c USING (table_catalog, table_schema, table_name)
        WHERE t.table_catalog = current_database() AND t.table_schema IN (SELECT unnest(?))
          AND NOT starts_with(t.table_name, '_')
        GROUP BY 1 ORDER BY 1
        """,
        [wanted],
    ).fetchall()
    return dict(rows)


def _table_dir(serving_dir: Path, table: str) -> Path:
    schema, name = split_table_name(table)
    return serving_dir / schema / name


def day_file(serving_dir: Path, table: str, day: date) -> Path:
    return _table_dir(serving_dir, table) / f"{day:%Y-%m}" / f"{day.isoformat()}.parquet"


def _literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _source(table: str) -> str:
    return ".".join(quote_identifier(p) for p in split_table_name(table))


def _copy_atomically(
    con: duckdb.DuckDBPyConnection, select_sql: str, params: Sequence, target: Path
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        con.execute(
            f"COPY ({select_sql}) TO {_literal(staging)} ({PARQUET_OPTIONS})", list(params)
        ).fetchall()
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        raise


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the month folder, once empty
    return True


def _published_days(serving_dir: Path, table: str) -> set[date]:
    days = set()
    for path in _table_dir(serving_dir, table).glob("*/*.parquet"):
        with contextlib.suppress(ValueError):
            days.add(date.fromisoformat(path.stem))
    return days


def _snapshot_table(table: str) -> str:
    schema, name = split_table_name(table)
    return f"{SNAPSHOT_ALIAS}.{quote_identifier(schema)}.{quote_identifier(name)}"


def _snapshot_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str] | None:
    schema, name = split_table_name(table)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [SNAPSHOT_ALIAS, schema, name],
    ).fetchall()
    return dict(rows) or None


def _prepare_snapshot_table(con: duckdb.DuckDBPyConnection, table: str, daily: bool) -> bool:
    """Make the snapshot's table able to take the warehouse's rows by name: create it, or add
    the new columns. Returns True when it must be filled whole (new, retyped or not daily)."""
    source, target = _source(table), _snapshot_table(table)
    schema, _ = split_table_name(table)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SNAPSHOT_ALIAS}.{quote_identifier(schema)}")
    con.fetchall()
    incoming = dict(
        (row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    )
    existing = _snapshot_columns(con, table)
    retyped = existing is not None and any(
        existing.get(c) not in (None, t) for c, t in incoming.items()
    )
    if existing is None or retyped or not daily:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source} LIMIT 0")
        con.fetchall()
        return True
    lowered = {c.lower() for c in existing}
    for column, data_type in incoming.items():
        if column.lower() not in lowered:
            con.execute(
                f"ALTER TABLE {target} ADD COLUMN {quote_identifier(column)} {data_type}"
            ).fetchall()
    return False


def publish_table(
    con: duckdb.DuckDBPyConnection,
    serving_dir: Path,
    table: str,
    daily: bool,
    days: Sequence[date] | None = None,
    snapshot: bool = True,
) -> TablePublish:
    """Publish ``table`` to the Parquet zone and (``snapshot``: the snapshot copy attached as
    ``SNAPSHOT_ALIAS``) the DuckDB snapshot: the given ``days`` (every day when None) of a
    daily table, or the whole of any other table."""
    source = _source(table)
    whole = _prepare_snapshot_table(con, table, daily) if snapshot else False
    if not daily:
        _copy_atomically(
            con, f"SELECT * FROM {source}", [], _table_dir(serving_dir, table) / WHOLE_TABLE_FILE
        )
        if snapshot:
            con.execute(f"INSERT INTO {_snapshot_table(table)} BY NAME SELECT * FROM {source}")
            con.fetchall()
        (rows,) = con.execute(f"SELECT count(*) FROM {source}").fetchone()
        return TablePublish(table, False, 1, 0, rows)
    counts = dict(
        con.execute(
            f"SELECT {PARTITION_COLUMN}, count(*) FROM {source} "
            + ("" if days is None else f"WHERE {PARTITION_COLUMN} IN (SELECT unnest(?::DATE[])) ")
            + "GROUP BY 1",
            [] if days is None else [list(days)],
        ).fetchall()
    )
    wanted = set(counts) | (_published_days(serving_dir, table) if days is None else set(days))
    written = removed = 0
    for day in sorted(wanted):
        if counts.get(day):
            _copy_atomically(
                con,
                f"SELECT * FROM {source} WHERE {PARTITION_COLUMN} = ?",
                [day],
                day_file(serving_dir, table, day),
            )
            written += 1
        elif _remove(day_file(serving_dir, table, day)):
            removed += 1
    if snapshot:
        target = _snapshot_table(table)
        if whole:  # a new or retyped table: every day, whatever was asked
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}").fetchall()
        elif days is None:
            con.execute(f"DELETE FROM {target}").fetchall()
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}").fetchall()
        else:
            day_list = sorted(set(days))
            con.execute(
                f"DELETE FROM {target} WHERE {PARTITION_COLUMN} IN (SELECT unnest(?::DATE[]))",
                [day_list],
            ).fetchall()
            con.execute(
                f"INSERT INTO {target} BY NAME SELECT * FROM {source} "
                f"WHERE {PARTITION_COLUMN} IN (SELECT unnest(?::DATE[]))",
                [day_list],
            ).fetchall()
    return TablePublish(table, True, written, removed, sum(counts.values()))


def publish(
    con: duckdb.DuckDBPyConnection,
    serving_dir: Path,
    *,
    schemas: Iterable[str] = SERVED_SCHEMAS,
    days: Sequence[date] | None = None,
) -> list[TablePublish]:
    """Publish every served table of ``schemas`` (``days`` of the daily ones, or all of them)
    to the Parquet zone and a new DuckDB snapshot, swapped in when complete. Callers hold the
    warehouse lock (``con``), which makes them the only publisher."""
    tables = served_tables(con, [s for s in schemas if s in SERVED_SCHEMAS])
    target = snapshot_path(serving_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    if target.exists():
        shutil.copyfile(target, staging)
    try:
        con.execute(f"ATTACH {_literal(staging)} AS {SNAPSHOT_ALIAS}").fetchall()
        try:
            done = [publish_table(con, serving_dir, t, d, days) for t, d in tables.items()]
            con.execute(f"CHECKPOINT {SNAPSHOT_ALIAS}").fetchall()
        finally:
            con.execute(f"DETACH {SNAPSHOT_ALIAS}").fetchall()
        os.replace(staging, target)
    finally:
        for leftover in (staging, Path(f"{staging}.wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return done
