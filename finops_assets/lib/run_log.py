"""Structured run logs: one JSON line per partition write, for a log shipper to index.

Every replace of a warehouse partition (raw, core, marts, insights) writes one line to the
``finops_assets.pipeline`` logger, which prints it as is to standard error (so Kubernetes, a
systemd journal or Dagster's own captured logs all get it):

    {"event": "partition_write", "table": "core.cost_facts", "source": "focus",
     "deliveries": "focus/aws/aws-focus@20250203T...", "partition": "2025-01-01..2025-01-31",
     "days": 31, "rows_in": 0, "rows_out": 9300, "cost_in": {}, "cost_out": {"USD": "1234.56"},
     "duration_seconds": 1.84, "run_id": "...", "job": "__ASSET_JOB", "ts": "2025-...Z"}

``rows_in`` / ``cost_in`` are what the days held before the write, ``rows_out`` / ``cost_out``
what they hold after, per currency (never summed across currencies), so a shipper can alert on
a write that replaced a month with much less. ``FINOPS_JSON_LOGS=0`` turns the lines off.
Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

LOGGER_NAME = "finops_assets.pipeline"
# Money and currency columns by table family, first match wins.
MONEY_COLUMNS = ("BilledCost", "billed_cost", "total_billed_cost", "pre_tax_amount")
CURRENCY_COLUMN = "BillingCurrency"
# Which source a raw table belongs to (x_Source in the later tables).
RAW_SOURCES = {
    "raw.aws_cur": "aws_cur",
    "raw.azure_cost": "azure_cost",
    "raw.gcp_billing": "gcp_billing",
    "raw.focus": "focus",
}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (Dagster's log capture
    and test harnesses replace it), not the one that existed when the logger was set up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def logger() -> logging.Logger:
    """The pipeline logger, with its JSON-lines handler on standard error installed once."""
    log = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("FINOPS_JSON_LOGS", "1").strip().lower() not in ("0", "false", "no", "off")


# The current run (set by the warehouse resource when a run starts; one run per process).
_RUN: dict = {}
# Raw tables whose money is an expression over provider columns (registered by their sources).
_MEASURES: dict[str, tuple[str, str]] = {}


def set_run(run_id: str | None, job: str | None, tags: Mapping[str, str] | None) -> None:
    _RUN.clear()
    _RUN.update({"run_id": run_id, "job": job, "tags": dict(tags or {})})


def register_measure(table: str, billed_sql: str, currency_sql: str) -> None:
    """How ``table`` states billed cost and currency (SQL over its columns)."""
    _MEASURES[table] = (billed_sql, currency_sql)


def money_column(columns: Sequence[str]) -> str | None:
    return next((c for c in MONEY_COLUMNS if c in columns), None)


def day_totals(con, table: str, days: Sequence[date]) -> tuple[int, dict[str, object]]:
    """Rows and Σ billed cost per currency of ``days`` of ``table`` (0 and {} when absent)."""
    from finops_assets.lib import warehouse as wh

    if not wh.table_exists(con, table):
        return 0, {}
    if table in _MEASURES:
        billed, currency = _MEASURES[table]
    else:
        columns = list(wh.table_columns(con, table))
        money = money_column(columns)
        billed = wh.quote_identifier(money) if money else "NULL"
        currency = CURRENCY_COLUMN if CURRENCY_COLUMN in columns else "''"
    rows = con.execute(
        f"SELECT {currency}, count(*), sum({billed}) FROM {wh.qualified(table)} "
        f"WHERE {wh.PARTITION_COLUMN} IN (SELECT unnest(?::DATE[])) GROUP BY 1",
        [sorted(set(days))],
    ).fetchall()
    return sum(r[1] for r in rows), {r[0]: r[2] for r in rows if r[2] is not None}


def log_write(
    table: str,
    days: Sequence[date],
    before: tuple[int, Mapping[str, object]],
    after: tuple[int, Mapping[str, object]],
    duration_seconds: float,
) -> str:
    """Emit the line of a committed write of the current run."""
    return emit(
        partition_write_record(
            table=table,
            days=days,
            rows_in=before[0],
            rows_out=after[0],
            cost_in=before[1],
            cost_out=after[1],
            duration_seconds=duration_seconds,
            run_id=_RUN.get("run_id"),
            job=_RUN.get("job"),
            tags=_RUN.get("tags"),
            now=datetime.now(UTC),
        )
    )


def _money(totals: Mapping[str, object]) -> dict[str, str]:
    return {
        str(currency): f"{Decimal(str(amount)):f}"
        for currency, amount in sorted(totals.items(), key=lambda kv: str(kv[0]))
        if amount is not None
    }


def partition_write_record(
    *,
    table: str,
    days: Sequence[date],
    rows_in: int,
    rows_out: int,
    cost_in: Mapping[str, object],
    cost_out: Mapping[str, object],
    duration_seconds: float,
    run_id: str | None = None,
    job: str | None = None,
    tags: Mapping[str, str] | None = None,
    now: datetime,
) -> dict:
    """The JSON object of one partition write (``now`` is the time of the write)."""
    ordered = sorted(set(days))
    tags = tags or {}
    source = RAW_SOURCES.get(table) or tags.get("finops/source")
    return {
        "event": "partition_write",
        "ts": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "table": table,
        "source": source,
        "deliveries": tags.get("finops/deliveries") or None,
        "partition": (f"{ordered[0].isoformat()}..{ordered[-1].isoformat()}" if ordered else None),
        "days": len(ordered),
        "rows_in": int(rows_in),
        "rows_out": int(rows_out),
        "cost_in": _money(cost_in),
        "cost_out": _money(cost_out),
        "duration_seconds": round(duration_seconds, 3),
        "run_id": run_id,
        "job": job,
    }


def emit(record: Mapping[str, object]) -> str:
    """Write ``record`` as one JSON line (when enabled); returns the line."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    if enabled():
        logger().info(line)
    return line
