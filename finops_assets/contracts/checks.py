"""Turn a pandera model into a blocking, partition-aware Dagster asset check.

The contract runs in DuckDB: the model is compiled to one aggregate scan of the window
(``contracts/sql.py``), so a 5M-row day is never converted to pandas. Failures are counted per
column and check (failing rows), with sample rows (including the source file and the value) in
the check's metadata so the UI shows what broke. ``validate_in_batches`` is the same contract run
by pandera itself on pandas batches: the reference the SQL is tested against.
"""

from collections import Counter
from datetime import date

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from finops_assets.contracts.models import DATAFRAME_CHECKS_SQL
from finops_assets.contracts.sql import (
    compile_contract,
    failure_counts_sql,
    sample_rows_sql,
    summarize,
)
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import table_columns
from finops_assets.resources.warehouse import Warehouse

WAREHOUSE_POOL = "finops_warehouse"
BATCH_ROWS = 250_000
SAMPLE_ROWS = 10


def partition_window(
    context: dg.AssetCheckExecutionContext | dg.AssetExecutionContext,
) -> tuple[date, date]:
    key_range = context.partition_key_range
    return date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|")[:160] for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def validate_in_batches(
    model: type[pa.DataFrameModel], warehouse: Warehouse, table: str, days: tuple[date, date]
) -> tuple[int, Counter, list[dict]]:
    """Validate the window of ``table``; returns (rows checked, failures per (column, check),
    sample failing rows)."""
    schema = model.to_schema()
    wanted = set(schema.columns)
    failures: Counter = Counter()
    samples: list[dict] = []
    rows_checked = 0
    with warehouse.get_connection() as con:
        present = table_columns(con, table)
        if not present:  # the source has never delivered: nothing to validate
            return 0, failures, samples
        select = []
        for column, data_type in present.items():
            if column not in wanted:
                continue
            if data_type.startswith("DECIMAL"):
                select.append(f"CAST({q(column)} AS DOUBLE) AS {q(column)}")
            else:
                select.append(q(column))
        if "x_SourceFile" in present and "x_SourceFile" not in wanted:
            select.append("x_SourceFile")
        schema_name, table_name = table.split(".")
        reader = con.sql(
            f"SELECT {', '.join(select)} FROM {q(schema_name)}.{q(table_name)} "
            "WHERE charge_date BETWEEN ? AND ?",
            params=[days[0], days[1]],
        ).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            frame = batch.to_pandas(date_as_object=False)
            rows_checked += len(frame)
            try:
                model.validate(frame, lazy=True)
            except SchemaErrors as errors:
                cases = errors.failure_cases
                for (column, check), count in (
                    cases.fillna({"column": "(table)"}).groupby(["column", "check"]).size().items()
                ):
                    failures[(str(column), str(check))] += int(count)
                if len(samples) < SAMPLE_ROWS:
                    index = [i for i in cases["index"].dropna().unique()][
                        : SAMPLE_ROWS - len(samples)
                    ]
                    for i in index:
                        row = frame.loc[i]
                        failing = cases[cases["index"] == i]
                        samples.append(
                            {
                                "source_file": row.get("x_SourceFile", ""),
                                "failed": "; ".join(
                                    f"{c}: {k} ({v})"
                                    for c, k, v in failing[["column", "check", "failure_case"]]
                                    .astype(str)
                                    .itertuples(index=False)
                                ),
                            }
                        )
                    if not index:  # a column missing entirely, a table-level failure
                        samples.append({"source_file": "", "failed": str(cases.iloc[0].to_dict())})
    return rows_checked, failures, samples


def validate_in_sql(
    model: type[pa.DataFrameModel], warehouse: Warehouse, table: str, days: tuple[date, date]
) -> tuple[int, Counter, list[dict]]:
    """``validate_in_batches``' result, computed in DuckDB: the model compiled to one aggregate
    scan of the window (``contracts/sql.py``), then, only when something fails, one query for
    sample rows. Failures count failing rows per (column, check)."""
    with warehouse.get_connection() as con:
        present = table_columns(con, table)
        if not present:  # the source has never delivered: nothing to validate
            return 0, Counter(), []
        compiled = compile_contract(model, present, DATAFRAME_CHECKS_SQL)
        schema_name, table_name = table.split(".")
        qualified = f"{q(schema_name)}.{q(table_name)}"
        where = f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"
        counts = con.execute(failure_counts_sql(compiled, qualified, where)).fetchone()
        rows, failures = summarize(compiled, counts)
        samples: list[dict] = [
            {"source_file": "", "failed": f"column {c} is missing from {table}"}
            for c in compiled.missing_columns
        ]
        failing = [i for i, n in enumerate(counts[1:]) if n]
        if failing:
            lineage = "x_SourceFile" if "x_SourceFile" in present else "''"
            for sample in con.execute(
                sample_rows_sql(compiled, qualified, where, failing, SAMPLE_ROWS, lineage)
            ).fetchall():
                flags = sample[1:]
                failed = []
                for n, i in enumerate(failing):
                    if flags[2 * n]:
                        check = compiled.checks[i]
                        value = flags[2 * n + 1]
                        failed.append(
                            f"{check.column}: {check.check}"
                            + ("" if check.column == "(table)" else f" ({value})")
                        )
                samples.append({"source_file": sample[0] or "", "failed": "; ".join(failed)})
    return rows, failures, samples[:SAMPLE_ROWS]


def build_contract_check(
    model: type[pa.DataFrameModel],
    asset_key: dg.AssetKey,
    table: str,
    partitions_def: dg.PartitionsDefinition,
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="contract",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=f"Pandera contract {model.__name__}: {(model.__doc__ or '').strip()}",
    )
    def contract_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        rows, failures, samples = validate_in_sql(model, warehouse, table, days)
        summary = pd.DataFrame(
            [(c, k, n) for (c, k), n in failures.most_common()],
            columns=["column", "check", "failures"],
        )
        return dg.AssetCheckResult(
            passed=not failures,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{sum(failures.values())} contract violation(s) in {rows} rows of {table} "
                f"{days[0]}..{days[1]}"
                if failures
                else None
            ),
            metadata={
                "rows_checked": dg.MetadataValue.int(rows),
                "violations": dg.MetadataValue.int(sum(failures.values())),
                "failures_by_check": dg.MetadataValue.md(markdown_table(summary)),
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(pd.DataFrame(samples))),
            },
        )

    return contract_check
