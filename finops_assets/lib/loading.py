"""Read delivery files with DuckDB, and explain bad files precisely (every source uses this).

The fast path is one ``INSERT ... SELECT`` straight from the files (strict casts, no per-row
Python). Only when it fails do we spend time finding the file, column and rows to blame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import pycountry

from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.focus import (
    CHARGE_CATEGORIES,
    COLUMN_SUBSTITUTES,
    FOCUS_COLUMNS,
    LINEAGE_COLUMNS,
    MANDATORY_COLUMNS,
    MONEY,
    QUANTITY,
    REQUIRED_VALUES,
    TIMESTAMP,
)
from finops_assets.lib.warehouse import quote_identifier as q

# Cells exports write for "no value" (empty, Python's None, SQL's NULL/null, MySQL's \N) are
# read as NULL in every source; anything else that does not parse fails the load, named.
NULL_TOKENS = ("", "None", "null", "NULL", "\\N")
_NULLSTR = ", ".join("'" + token + "'" for token in NULL_TOKENS)  # SQL literals, no escapes
CSV_OPTIONS = f"header = true, all_varchar = true, nullstr = [{_NULLSTR}], union_by_name = true"
PLATFORM_COLUMNS = ("charge_date", *LINEAGE_COLUMNS, "x_Dataset", "x_BillingPeriod")
ISO_CURRENCIES = tuple(sorted(c.alpha_3 for c in pycountry.currencies))


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def reader_sql(fmt: str, paths: Sequence[str]) -> str:
    if fmt == "parquet":
        return f"read_parquet({sql_list(paths)}, filename = true, union_by_name = true)"
    return f"read_csv({sql_list(paths)}, {CSV_OPTIONS}, filename = true)"


@dataclass(frozen=True)
class SourceFile:
    key: str  # landing key, recorded as x_SourceFile
    path: str  # local path the engine reads
    format: str
    columns: dict[str, str]  # column -> DuckDB type as read


def describe_file(
    con: duckdb.DuckDBPyConnection, path: str, fmt: str, where: str
) -> dict[str, str]:
    """Column names and types of one delivered file; a clear error when it cannot be read."""
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {reader_sql(fmt, [path])}").fetchall()
    except duckdb.Error as error:
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise DeliveryError(
            f"{where}: cannot read {kind} file ({str(error).splitlines()[0]}). The file is "
            "truncated or not a valid export. Fix: re-deliver it, or remove this delivery's "
            "manifest so the previous delivery is used."
        ) from None
    return {row[0]: row[1] for row in described if row[0] != "filename"}


def probe_file(
    con: duckdb.DuckDBPyConnection, key: str, path: str, fmt: str, where: str
) -> SourceFile:
    """Read a file's schema and refuse it early when it cannot be a FOCUS file."""
    columns = describe_file(con, path, fmt, where)
    by_lower = {c.lower() for c in columns}
    missing = []
    for column in MANDATORY_COLUMNS:
        substitutes = COLUMN_SUBSTITUTES.get(column, ())
        if column.lower() not in by_lower and not any(s.lower() in by_lower for s in substitutes):
            missing.append(column)
    if missing:
        near = {m: [c for c in columns if c.lower().replace("_", "") == m.lower()] for m in missing}
        hints = "; ".join(f"{m} looks renamed to {near[m][0]!r}" for m in missing if near[m])
        raise DeliveryError(
            f"{where}: missing mandatory FOCUS column(s) {', '.join(missing)}"
            + (f" ({hints})" if hints else "")
            + ". Fix: export the dataset in FOCUS format with these columns (names are "
            "case-sensitive), then re-deliver it."
        )
    return SourceFile(key=key, path=path, format=fmt, columns=columns)


def diagnose_file_errors(
    con: duckdb.DuckDBPyConnection, files: Sequence[SourceFile], describe: dict[str, str]
) -> DeliveryError | None:
    """After a failed load: find the file, column and values that broke it."""
    for f in files:
        where = describe[f.key]
        source = reader_sql(f.format, [f.path])
        try:
            con.execute(f"SELECT count(*) FROM {source}").fetchone()
        except duckdb.Error as error:
            return DeliveryError(
                f"{where}: cannot be read to the end ({str(error).splitlines()[0]}). The file is "
                "truncated or malformed. Fix: re-deliver it, or remove this delivery's manifest "
                "so the previous delivery is used."
            )
        for column, source_type in f.columns.items():
            target = FOCUS_COLUMNS.get(column)
            if target not in (MONEY, QUANTITY, TIMESTAMP):
                continue
            if source_type == "VARCHAR":
                bad = f"NULLIF(trim({q(column)}), '') IS NOT NULL AND TRY_CAST(trim({q(column)}) AS {target}) IS NULL"
                value = f"{q(column)}"
            else:
                bad = f"{q(column)} IS NOT NULL AND TRY_CAST({q(column)} AS {target}) IS NULL"
                value = f"CAST({q(column)} AS VARCHAR)"
            count, samples = con.execute(
                f"SELECT count(*), list({value})[1:5] FROM {source} WHERE {bad}"
            ).fetchone()
            if count:
                expected = "a timestamp (ISO 8601, UTC)" if target == TIMESTAMP else "a number"
                return DeliveryError(
                    f"{where}: column {column} has {count} value(s) that are not {expected}, "
                    f"e.g. {samples}. Fix: correct the export (no currency symbols, thousands "
                    "separators or text in numeric columns) and re-deliver it."
                )
    return None


# (condition that marks a bad row, column to show, what is wrong) for typed FOCUS rows.
FOCUS_ROW_CHECKS: tuple[tuple[str, str, str], ...] = (
    *(
        (f"{column} IS NULL", column, "is empty but FOCUS requires a value")
        for column in REQUIRED_VALUES
    ),
    (
        f"BillingCurrency NOT IN (SELECT unnest({sql_list(ISO_CURRENCIES)}))",
        "BillingCurrency",
        "is not an ISO 4217 currency code",
    ),
    (
        f"lower(ChargeCategory) NOT IN (SELECT lower(unnest({sql_list(CHARGE_CATEGORIES)})))",
        "ChargeCategory",
        f"is not one of {', '.join(CHARGE_CATEGORIES)}",
    ),
)


def validate_loaded_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    days: tuple[date, date],
    describe: dict[str, str],
    checks: Sequence[tuple[str, str, str]] = FOCUS_ROW_CHECKS,
) -> None:
    """Checks on the freshly inserted rows, inside the write transaction (raises to roll back)."""
    window = f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"
    aggregates = ", ".join(
        f"count_if({condition}), list(CAST({q(column)} AS VARCHAR)) FILTER ({condition})[1:3]"
        for condition, column, _ in checks
    )
    rows = con.execute(
        f"SELECT x_SourceFile, {aggregates} FROM {table} WHERE {window} GROUP BY x_SourceFile ORDER BY 1"
    ).fetchall()
    problems = []
    for row in rows:
        source_file = row[0]
        for index, (_, column, message) in enumerate(checks):
            count, samples = row[1 + 2 * index], row[2 + 2 * index]
            if count:
                shown = f" e.g. {samples}" if any(s is not None for s in samples or []) else ""
                problems.append(
                    f"{describe.get(source_file, source_file)}: column {column} {message} "
                    f"in {count} row(s){shown}"
                )
    if problems:
        raise DeliveryError(
            "; ".join(problems[:10])
            + ". Fix: correct the export and re-deliver it; nothing was written for "
            f"{days[0]}..{days[1]}."
        )


def diagnose_by_file(
    con: duckdb.DuckDBPyConnection, per_file_sql: dict[str, str], describe: dict[str, str]
) -> DeliveryError | None:
    """After a failed load of several files: run each file's query alone and blame the first
    one that fails, with the engine's explanation (it names the column and value)."""
    for key, sql in per_file_sql.items():
        try:
            con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        except duckdb.Error as error:
            return DeliveryError(
                f"{describe.get(key, key)}: {str(error).splitlines()[0]}. Fix: correct the export "
                "(or re-copy a truncated file) and re-deliver it; nothing was written."
            )
