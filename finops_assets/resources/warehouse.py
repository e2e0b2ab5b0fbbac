"""The embedded DuckDB warehouse: dagster-duckdb's resource plus a single-writer lock and
atomic partition replaces (see ``finops_assets.lib.warehouse`` for why)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from pydantic import Field

from finops_assets.lib import run_log, snapshots
from finops_assets.lib import warehouse as wh
from finops_assets.lib.totals import Totals, to_totals, totals_sql


class Warehouse(DuckDBResource):
    """DuckDB file warehouse. Every connection holds an exclusive lock on ``<database>.lock`` so
    parallel runs queue instead of failing with DuckDB lock errors."""

    lock_timeout_seconds: float = Field(default=3600, description="How long to wait for the lock.")

    def setup_for_execution(self, context) -> None:
        """Name the run in the structured write log (lib/run_log.py)."""
        run = context.dagster_run
        if run is not None:
            run_log.set_run(run.run_id, run.job_name, run.tags)

    @contextlib.contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:  # type: ignore[override]
        with wh.connect(
            self.database,
            lock_timeout_seconds=self.lock_timeout_seconds,
            config={"custom_user_agent": "finops_assets", **self.connection_config},
        ) as con:
            snapshots.refresh_views(con, self.database)
            yield con

    def replace_partitions(
        self,
        table: str,
        select_sql: str,
        days: Sequence[date],
        *,
        params: Sequence | None = None,
        validate: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        describe_error: Callable[[duckdb.DuckDBPyConnection, Exception], Exception | None]
        | None = None,
    ) -> wh.PartitionWrite:
        with self.get_connection() as con:
            return wh.replace_partitions(
                con,
                table,
                select_sql,
                days,
                params=params,
                validate=validate,
                describe_error=describe_error,
            )

    def clear_partitions(self, table: str, days: Sequence[date]) -> int:
        """Empty ``days`` of ``table`` (a source with no deliveries); returns rows removed."""
        with self.get_connection() as con:
            if not wh.table_exists(con, table):
                return 0
            if snapshots.is_snapshot_table(con, table):
                return snapshots.clear_snapshot_partitions(con, table, self.raw_zone(table), days)
            return con.execute(
                f"DELETE FROM {wh.qualified(table)} WHERE {wh.PARTITION_COLUMN} IN "
                "(SELECT unnest(?::DATE[]))",
                [sorted(days)],
            ).fetchone()[0]

    def raw_zone(self, table: str) -> Path:
        """Where the snapshots of a snapshot-backed raw table live (``lib.snapshots``)."""
        return snapshots.raw_zone(self.database, table)

    def has_table(self, table: str) -> bool:
        with self.get_connection() as con:
            return wh.table_exists(con, table)

    def query(self, sql: str, params: Sequence | None = None) -> pa.Table:
        with self.get_connection() as con:
            return con.sql(sql, params=params or None).to_arrow_table()

    def partition_totals(
        self,
        table: str,
        days: tuple[date, date],
        billed: str = "BilledCost",
        effective: str = "EffectiveCost",
        rows: str = "count(*)",
    ) -> dict[tuple[date, str], Totals]:
        """Rows and money per (day, currency) in a window of ``table`` (empty if no table yet)."""
        with self.get_connection() as con:
            if not wh.table_exists(con, table):
                return {}
            return to_totals(
                con.execute(totals_sql(table, days, billed, effective, rows)).fetchall()
            )

    def totals(self, sql: str) -> dict[tuple[date, str], Totals]:
        """Totals from a query returning (charge_date, currency, rows, billed, effective)."""
        with self.get_connection() as con:
            return to_totals(con.execute(sql).fetchall())
