"""Raw tables kept as immutable snapshots of the delivered files, exposed as a typed DuckDB view.

A snapshot-backed raw table ``raw.<source>`` is not a second typed copy of every column: each
delivered file is copied once, as delivered, into the managed raw zone beside the warehouse
(``<warehouse dir>/<warehouse stem>.raw/<table>/``; a CSV is converted once to Parquet, every
column kept as the text it was delivered as), and ``raw.<source>`` is a view over those files
that types the columns and adds the lineage columns. Which file serves which days is recorded in
``raw.<source>__snapshots`` (one row per snapshot and day range, with the typed SELECT of the
file), inside the warehouse, so replacing days is one DuckDB transaction exactly like a table
write: the registry rows and the view change together or not at all, and the previous good data
stays when a load is refused. Snapshot files are never rewritten (a file's name is derived from
its dataset, delivery, landing key and size); files no registry row refers to any more are removed
after the commit.

What belongs here: the raw zone's layout, copying a file into it, the registry and the view, the
atomic replace. What does not: provider layouts and typing (``defs/sources/<provider>/``).
No Dagster here."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from finops_assets.lib import run_log
from finops_assets.lib import warehouse as wh
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.loading import reader_sql, sql_literal

REGISTRY_SUFFIX = "__snapshots"
# Stands for the raw zone's folder in the SELECTs the registry keeps, so a warehouse moved with
# its raw zone (or restored from a copy) still finds its snapshots: the views are rebuilt with the
# folder they are found in (``refresh_views``).
ZONE_MARKER = "@@FINOPS_RAW_ZONE@@"


@dataclass(frozen=True)
class SnapshotEntry:
    """Days ``first``..``last`` of a raw table come from ``select_sql`` (the typed rows of one
    snapshot file, every day; it must return ``charge_date``)."""

    snapshot: str  # the snapshot file (absolute path, or its name inside the zone)
    select_sql: str
    first: date
    last: date

    def relative_to(self, zone: Path) -> SnapshotEntry:
        """The entry as the registry keeps it: the file's name, the zone's folder marked."""
        return SnapshotEntry(
            Path(self.snapshot).name,
            self.select_sql.replace(str(zone), ZONE_MARKER),
            self.first,
            self.last,
        )


def raw_zone(database: str, table: str) -> Path:
    """Where the snapshots of ``table`` live: ``<dir>/<stem>.raw/<schema>.<name>/`` beside the
    warehouse file (a temporary folder for an in-memory warehouse)."""
    if database == ":memory:":
        base = Path(tempfile.gettempdir()) / f"finops-memory-{os.getpid()}.raw"
    else:
        path = Path(database).resolve()
        base = path.with_name(f"{path.stem}.raw")
    return base / table


def registry_table(table: str) -> str:
    return f"{table}{REGISTRY_SUFFIX}"


def is_snapshot_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return wh.table_exists(con, registry_table(table))


def take_snapshot(
    con: duckdb.DuckDBPyConnection,
    zone: Path,
    local_path: str,
    fmt: str,
    identity: Sequence[str],
) -> Path:
    """The snapshot of one delivered file (copied once; reused when already taken).

    ``identity`` (dataset, delivery id, landing key) names the snapshot together with the file's
    size, so the same delivery is never copied twice and a file the provider later overwrites in
    the landing zone leaves the snapshot as it was. Parquet is copied byte for byte; CSV is
    converted once to Parquet with every column as delivered text (our CSV reader's options)."""
    zone.mkdir(parents=True, exist_ok=True)
    size = os.path.getsize(local_path)
    digest = hashlib.sha256("\x1f".join([*identity, str(size), fmt]).encode()).hexdigest()[:32]
    target = zone / f"{digest}.parquet"
    if target.exists():
        return target
    partial = zone / f".{digest}.{os.getpid()}.partial"
    try:
        if fmt == "parquet":
            shutil.copyfile(local_path, partial)
        else:
            con.execute(
                f"COPY (SELECT * EXCLUDE (filename) FROM {reader_sql(fmt, [local_path])}) "
                f"TO {sql_literal(str(partial))} (FORMAT parquet, COMPRESSION zstd)"
            )
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target


def snapshot_file(
    con: duckdb.DuckDBPyConnection,
    zone: Path,
    local_path: str,
    fmt: str,
    identity: Sequence[str],
    where: str,
) -> Path:
    """``take_snapshot``, with a file that cannot be read to the end named (a CSV is read whole
    here, once)."""
    try:
        return take_snapshot(con, zone, local_path, fmt, identity)
    except duckdb.Error as error:
        raise DeliveryError(
            f"{where}: cannot be read to the end ({str(error).splitlines()[0]}). The file is "
            "truncated or malformed. Fix: re-deliver it, or remove this delivery's manifest so "
            "the previous delivery is used; nothing was written."
        ) from None


def snapshot_reader(path: Path | str) -> str:
    return f"read_parquet({sql_literal(str(path))})"


def _entries(con: duckdb.DuckDBPyConnection, table: str) -> list[SnapshotEntry]:
    if not is_snapshot_table(con, table):
        return []
    rows = con.execute(
        f"SELECT snapshot, select_sql, first_day, last_day FROM {wh.qualified(registry_table(table))} "
        "ORDER BY first_day, snapshot"
    ).fetchall()
    return [SnapshotEntry(*row) for row in rows]


def trim(entries: Iterable[SnapshotEntry], first: date, last: date) -> list[SnapshotEntry]:
    """``entries`` without the days ``first``..``last`` (an entry spanning them is split)."""
    out = []
    for entry in entries:
        if entry.last < first or entry.first > last:
            out.append(entry)
            continue
        if entry.first < first:
            out.append(
                SnapshotEntry(
                    entry.snapshot, entry.select_sql, entry.first, first - timedelta(days=1)
                )
            )
        if entry.last > last:
            out.append(
                SnapshotEntry(
                    entry.snapshot, entry.select_sql, last + timedelta(days=1), entry.last
                )
            )
    return out


def merge(entries: Iterable[SnapshotEntry]) -> list[SnapshotEntry]:
    """Adjacent or overlapping day ranges of the same snapshot and SELECT as one entry (a month
    loaded day by day is one branch of the view, not thirty)."""
    by_source: dict[tuple[str, str], list[SnapshotEntry]] = {}
    for entry in entries:
        by_source.setdefault((entry.snapshot, entry.select_sql), []).append(entry)
    out = []
    for group in by_source.values():
        group.sort(key=lambda e: e.first)
        current = group[0]
        for entry in group[1:]:
            if entry.first <= current.last + timedelta(days=1):
                current = SnapshotEntry(
                    current.snapshot,
                    current.select_sql,
                    current.first,
                    max(current.last, entry.last),
                )
            else:
                out.append(current)
                current = entry
        out.append(current)
    return sorted(out, key=lambda e: (e.first, e.snapshot))


def view_sql(entries: Sequence[SnapshotEntry], empty_sql: str | None, zone: Path) -> str:
    """The raw table's rows: each entry's SELECT limited to its days (``empty_sql``, any SELECT
    with the table's columns, gives the columns of a table no entry is left in)."""
    if not entries:
        if empty_sql is None:
            raise ValueError("a raw table without any snapshot needs a SELECT for its columns")
        sql = f"SELECT * FROM ({empty_sql}) WHERE false"
    else:
        sql = "\n UNION ALL BY NAME \n".join(
            f"SELECT * FROM ({e.select_sql}) WHERE {wh.PARTITION_COLUMN} BETWEEN "
            f"DATE '{e.first.isoformat()}' AND DATE '{e.last.isoformat()}'"
            for e in entries
        )
    return sql.replace(ZONE_MARKER, str(zone))


def _write_registry(
    con: duckdb.DuckDBPyConnection,
    table: str,
    zone: Path,
    entries: Sequence[SnapshotEntry],
    empty_sql: str | None,
) -> None:
    registry = wh.qualified(registry_table(table))
    con.execute(f"DELETE FROM {registry}")
    kept = [e.relative_to(zone) for e in entries]
    if kept:
        con.executemany(
            f"INSERT INTO {registry} VALUES (?, ?, ?, ?)",
            [[e.snapshot, e.select_sql, e.first, e.last] for e in kept],
        )
    empty = None
    if not kept and empty_sql:
        # No file may back an empty table (it is removed after the commit): typed NULLs.
        columns = wh.query_columns(con, empty_sql.replace(ZONE_MARKER, str(zone)))
        empty = "SELECT " + ", ".join(
            f"CAST(NULL AS {t}) AS {wh.quote_identifier(c)}" for c, t in columns.items()
        )
    con.execute(f"CREATE OR REPLACE VIEW {wh.qualified(table)} AS {view_sql(kept, empty, zone)}")


def snapshot_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every snapshot-backed table of the warehouse (``schema.name``)."""
    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND suffix(table_name, ?)",
        [REGISTRY_SUFFIX],
    ).fetchall()
    return [f"{schema}.{name[: -len(REGISTRY_SUFFIX)]}" for schema, name in rows]


def refresh_views(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    """Rebuild the view of every snapshot-backed table whose view points at another folder than
    its raw zone beside ``database`` (the warehouse and its raw zone were moved or copied)."""
    rebuilt = []
    for table in snapshot_tables(con):
        zone = raw_zone(database, table)
        schema, name = wh.split_table_name(table)
        row = con.execute(
            "SELECT sql FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
            [schema, name],
        ).fetchone()
        entries = _entries(con, table)
        if row is None or not entries or str(zone) in row[0]:
            continue
        if not all((zone / e.snapshot).exists() for e in entries):
            continue  # the warehouse was copied without its raw zone: nothing to point at
        con.execute(
            f"CREATE OR REPLACE VIEW {wh.qualified(table)} AS {view_sql(entries, None, zone)}"
        )
        rebuilt.append(table)
    return rebuilt


def _ensure_registry(con: duckdb.DuckDBPyConnection, table: str, zone: Path) -> None:
    """The registry, created on first use; a raw table still stored as a typed table (a
    warehouse written before snapshots) becomes one snapshot of its rows, then the view."""
    schema, _ = wh.split_table_name(table)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {wh.quote_identifier(schema)}")
    if is_snapshot_table(con, table):
        return
    con.execute(
        f"CREATE TABLE {wh.qualified(registry_table(table))} (snapshot VARCHAR NOT NULL, "
        "select_sql VARCHAR NOT NULL, first_day DATE NOT NULL, last_day DATE NOT NULL)"
    )
    if not wh.table_exists(con, table):
        return
    days = con.execute(
        f"SELECT min({wh.PARTITION_COLUMN}), max({wh.PARTITION_COLUMN}) FROM {wh.qualified(table)}"
    ).fetchone()
    if days[0] is not None:
        zone.mkdir(parents=True, exist_ok=True)
        path = zone / "typed-table-before-snapshots.parquet"
        con.execute(
            f"COPY (SELECT * FROM {wh.qualified(table)}) TO {sql_literal(str(path))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        entry = SnapshotEntry(str(path), f"SELECT * FROM {snapshot_reader(path)}", *days)
        entry = entry.relative_to(zone)
        con.execute(
            f"INSERT INTO {wh.qualified(registry_table(table))} VALUES (?, ?, ?, ?)",
            [entry.snapshot, entry.select_sql, entry.first, entry.last],
        )
    con.execute(f"DROP TABLE {wh.qualified(table)}")


def _count(con: duckdb.DuckDBPyConnection, table: str, first: date, last: date) -> int:
    if not wh.table_exists(con, table):
        return 0
    return con.execute(
        f"SELECT count(*) FROM {wh.qualified(table)} WHERE {wh.PARTITION_COLUMN} BETWEEN ? AND ?",
        [first, last],
    ).fetchone()[0]


def remove_unreferenced(con: duckdb.DuckDBPyConnection, table: str, zone: Path) -> list[Path]:
    """Delete snapshot files of ``table`` no registry row refers to (after a commit or a refused
    load). A reader still scanning one keeps its open file (POSIX)."""
    if not zone.is_dir():
        return []
    used = {Path(e.snapshot).name for e in _entries(con, table)}
    removed = []
    for path in zone.glob("*.parquet"):
        if path.name not in used:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(path)
    return removed


def replace_snapshot_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    zone: Path,
    entries: Sequence[SnapshotEntry],
    days: Sequence[date],
    *,
    empty_sql: str | None = None,
    validate: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    describe_error: Callable[[duckdb.DuckDBPyConnection, Exception], Exception | None]
    | None = None,
) -> wh.PartitionWrite:
    """Make ``entries`` the source of ``days`` (one contiguous window) of ``table``, atomically:
    the same contract as ``lib.warehouse.replace_partitions`` (``validate`` runs inside the
    transaction and may query the new rows through the view; raising rolls everything back)."""
    day_list = sorted(set(days))
    if not day_list:
        raise ValueError("replace_snapshot_partitions needs at least one day")
    first, last = day_list[0], day_list[-1]
    if (last - first).days + 1 != len(day_list):
        raise ValueError("replace_snapshot_partitions needs one contiguous window of days")
    for entry in entries:
        if entry.first < first or entry.last > last:
            raise ValueError(f"entry {entry.snapshot} covers days outside {first}..{last}")
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    try:
        created = not wh.table_exists(con, table)
        columns_before = {c.lower() for c in wh.table_columns(con, table)}
        totals_before = run_log.day_totals(con, table, day_list)
        _ensure_registry(con, table, zone)
        deleted = _count(con, table, first, last)
        before = _entries(con, table)
        kept = merge([*trim(before, first, last), *(e.relative_to(zone) for e in entries)])
        fallback = empty_sql or next((e.select_sql for e in [*entries, *before]), None)
        _write_registry(con, table, zone, kept, fallback)
        inserted = _count(con, table, first, last)
        added = tuple(
            (c, t)
            for c, t in wh.table_columns(con, table).items()
            if not created and c.lower() not in columns_before
        )
        if validate is not None:
            validate(con)
        totals_after = run_log.day_totals(con, table, day_list)
        con.execute("COMMIT")
    except Exception as error:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        try:
            # The diagnosis may read the new snapshots: they are removed after it.
            described = describe_error(con, error) if describe_error else None
        finally:
            with contextlib.suppress(duckdb.Error, OSError):
                remove_unreferenced(con, table, zone)
        if described is not None:
            raise described from error
        raise
    remove_unreferenced(con, table, zone)
    run_log.log_write(table, day_list, totals_before, totals_after, time.perf_counter() - started)
    return wh.PartitionWrite(
        table=table,
        days=tuple(day_list),
        rows_deleted=int(deleted),
        rows_inserted=int(inserted),
        schema_change=wh.SchemaChange(added_columns=added, created=created),
    )


def clear_snapshot_partitions(
    con: duckdb.DuckDBPyConnection, table: str, zone: Path, days: Sequence[date]
) -> int:
    """Empty ``days`` of a snapshot-backed table; returns the rows removed."""
    removed = 0
    if not _entries(con, table):
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        before = entries = _entries(con, table)
        for first, last in _runs(sorted(set(days))):
            removed += _count(con, table, first, last)
            entries = trim(entries, first, last)
        fallback = before[0].select_sql if before else None
        _write_registry(con, table, zone, merge(entries), fallback)
        con.execute("COMMIT")
    except Exception:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    remove_unreferenced(con, table, zone)
    return removed


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
